//! The access rule (DESIGN.md "The seeds' rules, made exact"): one pure function, [`decide`].
//!
//! Every route declares an [`Access`] class in the route table (`http::routes::ROUTES`); the dispatcher
//! resolves the caller's [`Identity`] and [`Origin`] and asks [`decide`] before the handler runs.
//!
//! The classes, in words (the table test in `auth::table_test` derives its expectations from this list):
//!
//! | class | unclaimed | claimed (secured or not) |
//! |---|---|---|
//! | `Public` | anyone | anyone |
//! | `Claim` | LAN only (WAN: 403) | 409 already claimed |
//! | `SignIn` | 403 claim first | anyone (lockout applies in the handler) |
//! | `Account` | 403 | any account token (owner, member, friend) |
//! | `Home` | 403 | owner or Home member token |
//! | `Libraries` | 403 | any account or API token; bypass network (unsecured only) |
//! | `Library(s)` | 403 | owner, any API token, member/friend with library `s` shared; bypass (unsecured only) |
//! | `Refresh(s)` | 403 | owner, API token scope refresh or admin; bypass (unsecured only) |
//! | `Owner` | 403 | owner token or API token scope admin |
//! | `Item(i)` | 403 | like `Libraries`, and the item's library among those the caller sees; else 404 as if missing |
//! | `Dlna(via)` | LAN origins only, while DLNA is effectively on | the same (no tokens: DLNA has none) |
//! | `Gdm` | nothing (403: no name, no id before the claim) | LAN origins only (no tokens: a GDM search has none) |
//!
//! What a caller sees ([`Caller::sees`], computed here and nowhere else): the owner, API tokens and bypass
//! networks every library; Home members and friends the libraries shared with them; DLNA the libraries the
//! owner chose for DLNA (all when the choice is empty); anyone else nothing. Every route that lists or returns
//! items filters by it. `Item` routes (metadata, children, leaves, parts) are bound at dispatch to the library
//! of the item they name; an item the caller may not see answers exactly what a missing item answers (404),
//! so ids reveal nothing about other libraries.
//!
//! DLNA (`Dlna(Ssdp)` on UDP 1900, `Dlna(Http)` on TCP 32469) answers LAN origins only, in every state, by the
//! same origin rule as 32400 ([`super::origin`]: IPv6, IPv4-mapped addresses, "treat WAN IP as LAN"), and
//! nothing while DLNA is not effectively on (off, safe mode, or secured without the owner's re-enable).
//!
//! Claimed, for every class but `Public`, `Claim` and `SignIn`: a malformed token is 401, a well-formed token
//! that matches no device or API token (revoked, signed out, never issued) is 401 "sign in again", no token is
//! 401 unless the class lets a bypass network in and the server is not secured. A valid token that the class does
//! not admit is 403. "Networks allowed without auth" let clients without a token browse, stream and refresh
//! libraries only; owner settings always need a token. Secured: the bypass list is ignored, whatever it says.

use crate::state::{AccountId, DeviceId, LibraryId, Role, Scope, State};
use core::net::IpAddr;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, in any state: `/identity`, `/health`, `/api/v1/server`. Must reveal nothing private.
    Public,
    /// Claiming an unclaimed server: LAN origins only.
    Claim,
    /// Password sign-in: once claimed, from anywhere (lockout and bounded hashing in the handler).
    SignIn,
    /// Any signed-in account (owner, Home member, friend): its own profile, password, PIN, sign-out.
    Account,
    /// The owner or a Home member: the profile picker and member switch.
    Home,
    /// The list of libraries (the handler shows each caller only what it may see).
    Libraries,
    /// One library's content.
    Library(Section),
    /// Refreshing a library.
    Refresh(Section),
    /// Owner settings and management.
    Owner,
    /// One item (metadata, children, leaves, part): declared with the item-id parameter, bound at dispatch to
    /// the item's library.
    Item(Section),
    /// A DLNA renderer or control point, through one of DLNA's doors.
    Dlna(Via),
    /// A Plex client's GDM search on UDP 32414 (the `gdm` room): answered while claimed, to LAN origins.
    Gdm,
}

/// Which DLNA door a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// UDP 1900: searches.
    Ssdp,
    /// TCP 32469: description, control, media.
    Http,
}

/// Which library a `Library`/`Refresh` route is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Declared in the route table: the library id is the path parameter of this name.
    Param(&'static str),
    /// Resolved at dispatch.
    Id(LibraryId),
    /// The parameter is missing or not a library id: no one but the owner may pass (the handler answers 404).
    /// For `Item`: no such item; no one passes (404).
    Unknown,
}

impl Access {
    /// Resolve a `Section::Param` from the captured path parameters: a library id for `Library`/`Refresh`, the
    /// library of the item whose id the parameter holds for `Item` (`library_of` asks the catalog; items and
    /// groups such as shows and albums both have ids).
    pub fn bind(self, param: impl Fn(&str) -> Option<String>, library_of: impl Fn(u32) -> Option<LibraryId>) -> Access {
        let bind = |s: Section, item: bool| match s {
            Section::Param(name) => {
                let id = if item {
                    param(name).and_then(|v| v.parse::<u32>().ok()).and_then(&library_of)
                } else {
                    param(name).and_then(|v| v.parse::<LibraryId>().ok())
                };
                id.map_or(Section::Unknown, Section::Id)
            }
            other => other,
        };
        match self {
            Access::Library(s) => Access::Library(bind(s, false)),
            Access::Refresh(s) => Access::Refresh(bind(s, false)),
            Access::Item(s) => Access::Item(bind(s, true)),
            other => other,
        }
    }
}

pub use crate::state::visible::{Libraries, Visible};

/// The libraries the owner chose for DLNA, all when the choice is empty (what a DLNA caller sees).
pub fn dlna_libraries(state: &State) -> Visible {
    let chosen = &state.settings.dlna.libraries;
    if chosen.is_empty() {
        Visible::All
    } else {
        Visible::Only(chosen.iter().copied().collect())
    }
}

/// The caller, as its token says (resolved by [`super::token::identify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No token presented.
    Anonymous,
    /// Something was presented that is not a Hearth token.
    Malformed,
    /// A well-formed token that matches no device or API token: revoked, signed out or never issued.
    Unknown,
    /// A device token of an account.
    Account { account: AccountId, role: Role, device: DeviceId },
    /// An API token for a tool.
    Tool { token: u16, scope: Scope },
}

/// Where the request comes from, after X-Forwarded-For from trusted proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The caller's address: the socket peer, or, when the peer is a trusted proxy, the nearest X-Forwarded-For hop
    /// that is not one (IPv4-mapped addresses read as IPv4).
    pub addr: IpAddr,
    /// In the LAN networks (or the server's own public address with "treat WAN IP as LAN").
    pub lan: bool,
}

/// Why a request is refused. Each has a status and a sentence a person can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// 403: nothing but claim works before the claim.
    NotClaimed,
    /// 403: claim from a non-LAN origin.
    ClaimFromWan,
    /// 409: claim on a claimed server.
    AlreadyClaimed,
    /// 401: no token.
    SignInRequired,
    /// 401: not a Hearth token.
    MalformedToken,
    /// 401: revoked or unknown token.
    SignInAgain,
    /// 403: the account or tool may not do this.
    Forbidden,
    /// 403: the library is not shared with this account.
    NotShared,
    /// 404: no such item, or an item of a library the caller may not see (the same answer, on purpose).
    NoSuchItem,
    /// 403: DLNA answers sources on the local network only.
    DlnaLanOnly,
    /// 403: DLNA is off (switched off, safe mode, or the server became secured and the owner did not re-enable it).
    DlnaOff,
    /// 403: GDM discovery answers sources on the local network only.
    GdmLanOnly,
}

impl Denial {
    /// The HTTP status this refusal is answered with (401, 403, 404 or 409).
    pub fn status(self) -> u16 {
        match self {
            Denial::NotClaimed
            | Denial::ClaimFromWan
            | Denial::Forbidden
            | Denial::NotShared
            | Denial::DlnaLanOnly
            | Denial::DlnaOff
            | Denial::GdmLanOnly => 403,
            Denial::NoSuchItem => 404,
            Denial::AlreadyClaimed => 409,
            Denial::SignInRequired | Denial::MalformedToken | Denial::SignInAgain => 401,
        }
    }

    /// The sentence shown to the person refused, saying what to do next.
    pub fn message(self) -> &'static str {
        match self {
            Denial::NotClaimed => "This server is not claimed yet. Claim it from a computer on its local network at /web/.",
            Denial::ClaimFromWan => {
                "This server can only be claimed from its local network. Open the setup page from a computer at home."
            }
            Denial::AlreadyClaimed => "This server is already claimed. Sign in with the owner's account.",
            Denial::SignInRequired => "Sign in first: this needs a token (X-Plex-Token or Authorization: Bearer).",
            Denial::MalformedToken => "The token sent is not a Hearth token. Sign in again to get a new one.",
            Denial::SignInAgain => {
                "This device was signed out or its token was revoked (password change or device removal). Sign in again."
            }
            Denial::Forbidden => "Your account may not do this. Ask the server's owner.",
            Denial::NotShared => "This library is not shared with your account. Ask the server's owner to share it.",
            Denial::NoSuchItem => "There is no item with that id.",
            Denial::DlnaLanOnly => "DLNA answers devices on the local network only.",
            Denial::DlnaOff => "DLNA is off on this server.",
            Denial::GdmLanOnly => "Plex apps find this server by discovery on the local network only; elsewhere, connect by address.",
        }
    }
}

/// Who passed, for handlers that show each caller only its part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A `Public`, `Claim` or `SignIn` route: the token (if any) was not looked at.
    Anyone,
    /// No token, from a network allowed without auth on an unsecured server (sees what the owner sees).
    Bypass,
    /// A signed-in account's device; `sees` is every library for the owner, the shared ones otherwise.
    Account { account: AccountId, role: Role, device: DeviceId, sees: Visible },
    /// An API token (sees every library).
    Tool { token: u16, scope: Scope },
    /// A DLNA device on the LAN; `sees` is the libraries chosen for DLNA.
    Dlna { sees: Visible },
}

impl Caller {
    /// The libraries this caller may see: what every listing and item route filters by.
    pub fn sees(&self) -> Visible {
        match *self {
            Caller::Bypass | Caller::Tool { .. } => Visible::All,
            Caller::Account { sees, .. } | Caller::Dlna { sees } => sees,
            Caller::Anyone => Visible::NOTHING,
        }
    }
}

/// The outcome of [`decide`]: who passed, or why the request is refused.
pub type Decision = Result<Caller, Denial>;

/// The access rule. Pure: same inputs, same answer; no clocks, no I/O.
pub fn decide(access: Access, identity: &Identity, origin: &Origin, state: &State) -> Decision {
    let exists = |id: LibraryId| state.libraries.iter().any(|l| l.id == id);
    match access {
        Access::Public => return Ok(Caller::Anyone),
        Access::Dlna(_) => {
            // DLNA has no tokens; the same LAN rule as every other door (A-F3, C-2), in every state.
            return if !state.dlna_effectively_on() {
                Err(Denial::DlnaOff)
            } else if !origin.lan {
                Err(Denial::DlnaLanOnly)
            } else {
                Ok(Caller::Dlna { sees: dlna_libraries(state) })
            };
        }
        Access::Claim => {
            return if state.is_claimed() {
                Err(Denial::AlreadyClaimed)
            } else if origin.lan {
                Ok(Caller::Anyone)
            } else {
                Err(Denial::ClaimFromWan)
            };
        }
        _ if !state.is_claimed() => return Err(Denial::NotClaimed),
        Access::SignIn => return Ok(Caller::Anyone),
        // GDM has no tokens; the same LAN rule as every other door. Before the claim the arm above refused it.
        Access::Gdm => return if origin.lan { Ok(Caller::Anyone) } else { Err(Denial::GdmLanOnly) },
        _ => {}
    }
    let caller = match *identity {
        Identity::Malformed => return Err(Denial::MalformedToken),
        Identity::Unknown => return Err(Denial::SignInAgain),
        Identity::Anonymous => {
            let bypass_class =
                matches!(access, Access::Libraries | Access::Library(_) | Access::Refresh(_) | Access::Item(_));
            let listed = state.settings.allowed_without_auth.iter().any(|n| n.contains(origin.addr));
            // Seed: secured → "networks allowed without auth" is ignored, whatever it says.
            if !(bypass_class && listed && !state.is_secured()) {
                return Err(Denial::SignInRequired);
            }
            Caller::Bypass
        }
        Identity::Account { account, role, device } => {
            // The token resolved against this state, but be strict anyway: the account must exist with that role.
            match state.account(account) {
                Some(a) if a.role == role => {
                    let sees = if role == Role::Owner {
                        Visible::All
                    } else {
                        Visible::Only(a.shares.iter().copied().filter(|id| exists(*id)).collect())
                    };
                    Caller::Account { account, role, device, sees }
                }
                _ => return Err(Denial::SignInAgain),
            }
        }
        Identity::Tool { token, scope } => Caller::Tool { token, scope },
    };
    let shared = |s: Section| match s {
        Section::Id(id) => exists(id) && caller.sees().allows(id),
        _ => false,
    };
    let ok = match (access, caller) {
        // An item the caller may not see is answered as a missing one (no existence leak).
        (Access::Item(s), _) => {
            if !shared(s) {
                return Err(Denial::NoSuchItem);
            }
            true
        }
        // The Anonymous arm above lets a bypass caller reach library classes only.
        (Access::Libraries | Access::Library(_) | Access::Refresh(_), Caller::Bypass) => true,
        (Access::Account, Caller::Account { .. }) => true,
        (Access::Account, _) => false,
        (Access::Home, Caller::Account { role, .. }) => matches!(role, Role::Owner | Role::Member),
        (Access::Home, _) => false,
        (Access::Libraries, _) => true,
        (Access::Library(_), Caller::Account { role: Role::Owner, .. }) => true,
        (Access::Library(_), Caller::Tool { .. }) => true,
        (Access::Library(s), Caller::Account { .. }) => {
            if !shared(s) {
                return Err(Denial::NotShared);
            }
            true
        }
        (Access::Refresh(_), Caller::Account { role, .. }) => role == Role::Owner,
        (Access::Refresh(_), Caller::Tool { scope, .. }) => matches!(scope, Scope::RefreshLibrary | Scope::Admin),
        (Access::Owner, Caller::Account { role, .. }) => role == Role::Owner,
        (Access::Owner, Caller::Tool { scope, .. }) => scope == Scope::Admin,
        (_, Caller::Anyone | Caller::Bypass | Caller::Dlna { .. }) => false,
        (Access::Public | Access::Claim | Access::SignIn | Access::Dlna(_) | Access::Gdm, _) => true,
    };
    if ok { Ok(caller) } else { Err(Denial::Forbidden) }
}
