//! The persistent schema: everything Hearth must remember across power cuts.
//!
//! Owns: the `State` type and its bounds, validation of invariants, the schema version and migrations
//! from older versions, and the [`handle`] through which every change is validated, persisted and published.
//! Must not touch: sockets, files or flash directly (the store room owns the bytes on flash).
//!
//! Every collection and string is a `heapless` type, so an encoded record has a known maximum size
//! ([`MAX_RECORD`]); `tests::full_state_fits` fills every bound and checks it.
//!
//! Encoding is postcard (not self-describing): the schema version travels in the store's record header and
//! [`decode`] migrates older versions (see [`v1`], [`v2`], [`v3`], [`v4`]; `v3` and `v4` are frozen copies of the types,
//! so later changes cannot alter how an old record reads).
//!
//! Runtime-only facts (last-seen times between coarse flushes, scan progress, mapping status) are not here.

pub mod handle;
mod settle;
pub mod v1;
pub mod v2;
pub mod v3;
pub mod v4;
pub mod visible;
pub mod wear;

use core::net::IpAddr;
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

pub use handle::{Handle, UpdateError};

/// Version of the encoding written by this build. Bump it, keep the old shape in a `vN` module and add a
/// migration in [`decode`] whenever a field is added, removed or changes meaning.
pub const SCHEMA_VERSION: u16 = 5;

/// Largest encoded state the store must hold. The full-bounds test proves the schema fits. 17 KiB since schema 5
/// (the ACME settings and account took 617 bytes; schema 4 filled 16 252 of 16 384).
pub const MAX_RECORD: usize = 17 * 1024;

/// Longest name (account, library, API token) in UTF-8 bytes; with the other bounds it fixes the largest record.
pub const MAX_NAME: usize = 32;
/// Accounts of every role together (owner, 15 Home members, 12 friends).
pub const MAX_ACCOUNTS: usize = 28;
/// Home members besides the owner (the Plex Home limit).
pub const MAX_MEMBERS: usize = 15;
/// Friends: remote accounts with their own password.
pub const MAX_FRIENDS: usize = 12;
/// Signed-in devices of all accounts together; when full, a new sign-in replaces the same account's least recently
/// seen device, or is refused if that account has none.
pub const MAX_DEVICES: usize = 64;
/// API tokens the owner made for scripts and hooks.
pub const MAX_API_TOKENS: usize = 16;
/// Libraries; also the bound of every list of library ids (shares, DLNA's choice).
pub const MAX_LIBRARIES: usize = 16;
/// Media folders of all libraries together (one pool, so the record bound is on the total).
pub const MAX_FOLDERS: usize = 16;
/// Longest media folder path in bytes.
pub const MAX_PATH: usize = 112;
/// Networks in one list (LAN networks, allowed without auth).
pub const MAX_NETS: usize = 8;
/// Trusted reverse proxies whose X-Forwarded-For is believed.
pub const MAX_PROXIES: usize = 4;
/// Longest device name in bytes (`X-Plex-Device-Name`, or the owner's new name for it).
pub const MAX_DEVICE_NAME: usize = 24;
/// Longest product name (`X-Plex-Product`) in bytes.
pub const MAX_PRODUCT: usize = 20;
/// Longest reflector URL in bytes.
pub const MAX_URL: usize = 96;
/// STUN servers the remote room asks for the public address.
pub const MAX_STUN: usize = 2;
/// A Let's Encrypt ECDSA leaf and intermediate take about 1.9 KiB.
pub const MAX_CERT: usize = 2304;
/// PKCS#8 of an ECDSA P-256/P-384 or Ed25519 key (RSA keys do not fit; the API says so).
pub const MAX_KEY: usize = 320;
/// Reset history kept (the newest last); enough to see a watchdog loop that leads to safe mode.
pub const MAX_RESETS: usize = 8;
/// Host names the owner adds for the Host check (schema 4), e.g. a dynamic-DNS name.
pub const MAX_HOST_NAMES: usize = 4;
/// Longest added host name; a DNS name has at most 253 characters (RFC 1035 §2.3.4), real ones far fewer.
pub const MAX_HOST_NAME: usize = 128;
/// Longest ACME account URL (RFC 8555 §7.3: the `Location` of newAccount), e.g.
/// `https://acme-v02.api.letsencrypt.org/acme/acct/2345678901` (58 bytes).
pub const MAX_ACCOUNT_URL: usize = 96;
/// The ACME account key: ECDSA P-256 in PKCS#8 DER (138 bytes as ring writes it).
pub const MAX_ACCOUNT_KEY: usize = 160;
/// Let's Encrypt's production directory (RFC 8555 §7.1.1): the default ACME CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// An account, library or token name, bounded by [`MAX_NAME`].
pub type Name = String<MAX_NAME>;
/// An account's id, from [`State::next_id`]: never reused, so a deleted account's tokens cannot come back.
pub type AccountId = u16;
/// A device's id, from [`State::next_id`] (never reused).
pub type DeviceId = u16;
/// A library's id, from [`State::next_id`] (never reused); catalog items and shares refer to it.
pub type LibraryId = u8;
/// Unix time in seconds (u32 lasts until 2106 and keeps records small).
pub type Time = u32;

/// An argon2id result: the per-secret random salt and the derived hash. Parameters are fixed per schema
/// version (auth room) so they are not repeated in every record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    /// Random per secret, so equal passwords give different hashes.
    pub salt: [u8; 16],
    /// 128-bit argon2id output.
    pub hash: [u8; 16],
}

/// SHA-256 of a 256-bit random bearer token, first 128 bits. The token itself is returned once and never
/// stored; 128 bits of a hash of a 256-bit random value cannot be inverted or collided by guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 16]);

/// What an account is in the Home, which decides how it signs in and what it sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The account that claimed the server. Exactly one once claimed.
    Owner,
    /// A managed Home user: no password, optional PIN, sees the libraries in `shares`.
    Member,
    /// A remote account with a password; sees only the libraries in `shares`.
    Friend,
}

/// A person who can sign in: the owner, a Home member or a friend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Never reused (see [`AccountId`]).
    pub id: AccountId,
    /// Owner, Home member or friend: decides how the account signs in and what it sees.
    pub role: Role,
    /// The account's name; unique on the server regardless of case.
    pub name: Name,
    /// The sign-in password: the owner's and friends'; a Home member has none.
    pub password: Option<Secret>,
    /// The PIN that guards switching to this account in the Home; having one makes the server secured.
    pub pin: Option<Secret>,
    /// Libraries this account may see. Ignored for the owner, who sees everything.
    pub shares: Vec<LibraryId, MAX_LIBRARIES>,
    /// When the account was made.
    pub created: Time,
}

/// A signed-in app on some client: the bearer token it was given, whose account it acts for, and what the owner sees
/// of it in the device list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Never reused (see [`DeviceId`]).
    pub id: DeviceId,
    /// The account the device acts for.
    pub account: AccountId,
    /// Hash of the device's bearer token (the token itself is never stored).
    pub token: TokenHash,
    /// First 64 bits of SHA-256 of `X-Plex-Client-Identifier`: finds the device again when it signs in anew.
    pub client: [u8; 8],
    /// `X-Plex-Device-Name` or `X-Plex-Device`, renamable by the owner.
    pub name: String<MAX_DEVICE_NAME>,
    /// `X-Plex-Product`.
    pub product: String<MAX_PRODUCT>,
    /// When the device first signed in.
    pub created: Time,
    /// Written coarsely (see the auth room), never per request.
    pub last_seen: Time,
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Browse and stream every library.
    ReadLibrary,
    /// ReadLibrary plus trigger refreshes (library update hooks).
    RefreshLibrary,
    /// Everything the owner can do through the API.
    Admin,
}

/// A bearer token the owner made for a script or a library update hook (not tied to a device).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Never reused; the API names the token by it.
    pub id: u16,
    /// The owner's label for the token.
    pub name: Name,
    /// What the token may do.
    pub scope: Scope,
    /// Hash of the bearer token, shown once at creation and never stored.
    pub token: TokenHash,
    /// When the token was made.
    pub created: Time,
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net {
    /// The network address (host bits are ignored by [`Net::contains`]).
    pub addr: IpAddr,
    /// Prefix length in bits (0-32 for IPv4, 0-128 for IPv6).
    pub prefix: u8,
}

impl Net {
    /// Whether `ip` is in this network; an IPv4-mapped IPv6 address counts as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let p = self.prefix.min(32) as u32;
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let p = self.prefix.min(128) as u32;
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| self.contains(IpAddr::V4(a))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

impl core::str::FromStr for Net {
    type Err = StateError;
    fn from_str(s: &str) -> Result<Self, StateError> {
        let bad = || StateError::Invalid("a network looks like 192.168.1.0/24 or fd00::/8");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Net { addr, prefix })
    }
}

impl core::fmt::Display for Net {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Whether plain HTTP is answered, redirected to HTTPS, or the only way in (Plex's "Secure connections").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecureConnections {
    /// Plain HTTP gets a redirect (browsers) or 403 (others).
    Required,
    #[default]
    Preferred,
    /// HTTPS is not offered.
    Disabled,
}

/// The owner's DLNA settings; whether DLNA actually runs is [`State::dlna_effectively_on`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dlna {
    /// The owner's switch.
    pub enabled: bool,
    /// The owner turned DLNA back on while the server was secured and acknowledged the warning that any DLNA
    /// device gets unrestricted access. Cleared whenever the server becomes secured again.
    pub reenabled_secured: bool,
    /// Libraries DLNA shows; empty means all.
    pub libraries: Vec<LibraryId, MAX_LIBRARIES>,
}

impl Default for Dlna {
    fn default() -> Self {
        Dlna { enabled: true, reenabled_secured: false, libraries: Vec::new() }
    }
}

/// How the last port mapping was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MappingMethod {
    UpnpIgd,
    Pcp,
    NatPmp,
    Manual,
}

/// The last mapping that succeeded, kept so a restart can renew or delete it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// How the mapping was made: UPnP IGD, PCP, NAT-PMP, or by hand.
    pub method: MappingMethod,
    /// The router that made the mapping (the IGD, PCP or NAT-PMP server).
    pub gateway: IpAddr,
    /// The public address the router reported, if it said; requests from it count as LAN ("treat WAN IP as LAN").
    pub external_addr: Option<IpAddr>,
    /// The port open on the router's public side.
    pub external_port: u16,
    /// The local port the router forwards to.
    pub internal_port: u16,
    /// 0 = permanent.
    pub lease_secs: u32,
    /// When the mapping was made or last renewed; with `lease_secs`, when it runs out.
    pub obtained: Time,
}

/// The owner's remote access settings (reachability from outside the LAN).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// On after the claim unless the owner unticked it.
    pub enabled: bool,
    /// Some = the owner forwarded this external port by hand; no automatic mapping is tried.
    pub manual_port: Option<u16>,
    /// Internet upload speed, the cap on all remote egress, in kbit/s. 0 = not set (uncapped).
    pub upload_kbps: u32,
    /// Limit remote stream bitrate, per stream, in kbit/s. 0 = original (uncapped).
    pub stream_kbps: u32,
    /// Where `hearth reflector` runs; empty = not verified from outside.
    pub reflector_url: String<MAX_URL>,
    /// STUN servers as host:port.
    pub stun_servers: Vec<String<64>, MAX_STUN>,
    /// The last mapping that succeeded, so a restart renews or deletes it instead of leaving it on the router.
    pub last_mapping: Option<Mapping>,
}

impl Default for Remote {
    fn default() -> Self {
        Remote {
            enabled: false,
            manual_port: None,
            upload_kbps: 0,
            stream_kbps: 0,
            reflector_url: String::new(),
            stun_servers: Vec::new(),
            last_mapping: None,
        }
    }
}

/// The owner's server settings, as the settings page and API show them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Shown to apps and DLNA devices. Empty = the hostname.
    pub friendly_name: Name,
    /// Networks counted as LAN. Empty = the server's own subnets.
    pub lan_networks: Vec<Net, MAX_NETS>,
    /// "List of IP addresses and networks that are allowed without auth". Ignored while secured.
    pub allowed_without_auth: Vec<Net, MAX_NETS>,
    /// Requests from the public address of the last mapping count as LAN (for routers that loop back to their WAN
    /// address).
    pub treat_wan_ip_as_lan: bool,
    /// X-Forwarded-For is believed only from these.
    pub trusted_proxies: Vec<Net, MAX_PROXIES>,
    /// Whether plain HTTP is served, redirected or refused.
    pub secure_connections: SecureConnections,
    /// The owner's DLNA settings.
    pub dlna: Dlna,
    /// The owner's remote access settings.
    pub remote: Remote,
    /// Names besides IP addresses, the box's hostname and `localhost` that a request's `Host` may carry
    /// (schema 4): a dynamic-DNS name, a name in the owner's DNS.
    /// Stored lower-case without a trailing dot; see [`host_name`].
    pub host_names: Vec<HostName, MAX_HOST_NAMES>,
    /// A certificate browsers trust, from an ACME CA (schema 5; see [`AcmeSettings`]).
    pub acme: AcmeSettings,
}

/// The owner's choice of a certificate from an ACME CA (RFC 8555), for the public IPv4 address (RFC 8738) or a
/// domain of theirs; the remote room's ACME task follows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeSettings {
    /// Order and renew a certificate while remote access is on.
    pub enabled: bool,
    /// The name to certify; `None` = the public IPv4 address the router reports.
    pub domain: Option<HostName>,
    /// The CA's directory URL (RFC 8555 §7.1.1); default [`LETS_ENCRYPT`].
    pub directory_url: String<MAX_URL>,
}

impl Default for AcmeSettings {
    fn default() -> Self {
        AcmeSettings { enabled: false, domain: None, directory_url: String::try_from(LETS_ENCRYPT).unwrap() }
    }
}

/// An ACME account (RFC 8555 §7.3): where it lives on the CA and its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeAccount {
    /// The directory the account was made at; another directory needs a new account.
    pub directory_url: String<MAX_URL>,
    /// The account URL the CA answered (`kid` of every later request, RFC 8555 §6.2).
    pub url: String<MAX_ACCOUNT_URL>,
    /// The account key, ECDSA P-256 as PKCS#8 DER.
    pub key: Vec<u8, MAX_ACCOUNT_KEY>,
}

/// What the ACME task keeps: its account and which certificate it issued (schema 5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acme {
    /// The account at the CA, made on the first order.
    pub account: Option<AcmeAccount>,
    /// SHA-256 of the leaf the CA issued: `tls` holds the ACME certificate exactly when its leaf has this hash
    /// (so an owner's certificate or a fresh self-signed one is never taken for it).
    pub issued: Option<[u8; 32]>,
}

/// A host name the owner added: a DNS name (letters, digits, hyphens, dots) or an IP address.
pub type HostName = String<MAX_HOST_NAME>;

/// Check and normalise a host name the owner wants to add: a DNS name by the RFC 1123 §2.1 label rules
/// (1–63 letters, digits or hyphens, not starting or ending with a hyphen; 253 characters at most) or an IP
/// address (IPv6 with or without brackets). The result is lower-case, without the trailing dot of a fully
/// qualified name; a port is refused (`:` is not part of a name).
pub fn host_name(raw: &str) -> Result<HostName, StateError> {
    let bad = StateError::Invalid(
        "a host name looks like home.example.net (letters, digits, hyphens and dots) or an IP address",
    );
    let raw = raw.trim();
    let s = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    let v6 = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(&s);
    if let Ok(ip) = v6.parse::<IpAddr>() {
        return bounded("a host name", &ip.to_string());
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // An all-digit last label would read as a (malformed) IPv4 address (RFC 3986 §3.2.2).
    let numeric_tld = s.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if s.is_empty() || s.len() > 253 || !s.split('.').all(label_ok) || numeric_tld {
        return Err(bad);
    }
    bounded("a host name", &s)
}

/// The HTTPS certificate chain and its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// DER certificates, leaf first, each prefixed by its u16 length.
    pub chain: Vec<u8, MAX_CERT>,
    /// PKCS#8 DER private key.
    pub key: Vec<u8, MAX_KEY>,
    /// Installed by the owner (true) or made by Hearth at claim (false).
    pub custom: bool,
}

/// What a library holds, which decides how its files are named, grouped and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LibraryKind {
    Movies,
    Shows,
    Music,
    Photos,
    OtherVideos,
}

/// A library as the owner named it; its folders are in [`State::folders`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// Never reused (see [`LibraryId`]).
    pub id: LibraryId,
    /// What the library holds.
    pub kind: LibraryKind,
    /// The owner's name for the library.
    pub name: Name,
}

/// A media folder. Folders of all libraries share one pool so the bound is on the total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    /// The library that has this folder.
    pub library: LibraryId,
    /// Absolute path on the box.
    pub path: String<MAX_PATH>,
}

/// Why the previous run ended, as the next start found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResetReason {
    /// Power came back without a clean-stop marker.
    PowerLoss,
    /// The watchdog reset the board (WDIOF_CARDRESET or the host equivalent).
    Watchdog,
    /// Hearth stopped cleanly (reboot, power-off, SIGTERM).
    Clean,
    /// Hearth itself failed (panic or fatal error) before a clean stop.
    Crash,
}

/// One entry of the reset history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    /// Why the run ended.
    pub reason: ResetReason,
    /// When the next start found it.
    pub at: Time,
}

/// The clean-stop marker (issue 9): how the running Hearth stands, so the next start can tell why the last run
/// ended. Set to `Running` at start and to `Stopped` by a clean stop; found as `Running` at the next start it
/// means the run ended without one (power cut, or the process was killed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Run {
    /// Stopped cleanly (reboot, power-off, SIGTERM), or never ran.
    #[default]
    Stopped,
    Running,
    /// The watchdog thread stopped petting because a heartbeat went stale: a watchdog reset is due. Written
    /// without waiting (the stalled part may be the store writer itself, then the next start reads `Running`).
    Starving,
    /// Hearth panicked; written by the panic hook as it goes down.
    Crashed,
}

/// Safe mode: too many watchdog resets in a short time. Remote access and DLNA stay off until cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeMode {
    /// On: remote access and DLNA stay off until the owner clears it.
    pub active: bool,
    /// When safe mode began.
    pub since: Time,
}

/// Everything Hearth keeps on flash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Stable across restarts; shown as 32 hex digits (`machineIdentifier`).
    pub machine_id: [u8; 16],
    /// Every account: owner, Home members, friends.
    pub accounts: Vec<Account, MAX_ACCOUNTS>,
    /// Signed-in devices of all accounts.
    pub devices: Vec<Device, MAX_DEVICES>,
    /// API tokens the owner made.
    pub api_tokens: Vec<ApiToken, MAX_API_TOKENS>,
    /// The owner's settings.
    pub settings: Settings,
    /// The HTTPS certificate; `None` before the claim (a self-signed one is made once the server is claimed).
    pub tls: Option<Tls>,
    /// The owner's libraries.
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    /// Media folders of all libraries (see [`Folder`]).
    pub folders: Vec<Folder, MAX_FOLDERS>,
    /// Newest last; at most [`MAX_RESETS`].
    pub resets: Vec<Reset, MAX_RESETS>,
    /// Set by too many watchdog resets in a short time.
    pub safe_mode: SafeMode,
    /// Next id for accounts, devices, tokens and libraries (never reused).
    pub next_id: u16,
    /// The clean-stop marker (schema 3).
    pub run: Run,
    /// The ACME account and which certificate it issued (schema 5).
    pub acme: Acme,
}

/// Why a change to the state or a stored record was refused; the text is shown to the person who asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("too many {what} (at most {max})")]
    Full { what: &'static str, max: usize },
    #[error("{what} is too long (at most {max} bytes)")]
    TooLong { what: &'static str, max: usize },
    #[error("the name {0:?} is already taken")]
    Duplicate(std::string::String),
    #[error("{what} {id} does not exist")]
    Missing { what: &'static str, id: u32 },
    #[error("stored state could not be decoded (schema {schema}): {reason}")]
    Decode { schema: u16, reason: std::string::String },
}

/// Copy `s` into a bounded string, or say which field is too long.
pub fn bounded<const N: usize>(what: &'static str, s: &str) -> Result<String<N>, StateError> {
    String::try_from(s).map_err(|_| StateError::TooLong { what, max: N })
}

/// Push onto a bounded collection, or say which collection is full.
pub fn push<T, const N: usize>(what: &'static str, v: &mut Vec<T, N>, item: T) -> Result<(), StateError> {
    v.push(item).map_err(|_| StateError::Full { what, max: N })
}

impl State {
    /// A fresh, unclaimed state with a new random machine identifier.
    pub fn new(machine_id: [u8; 16]) -> Self {
        State {
            machine_id,
            accounts: Vec::new(),
            devices: Vec::new(),
            api_tokens: Vec::new(),
            settings: Settings::default(),
            tls: None,
            libraries: Vec::new(),
            folders: Vec::new(),
            resets: Vec::new(),
            safe_mode: SafeMode::default(),
            next_id: 1,
            run: Run::Stopped,
            acme: Acme::default(),
        }
    }

    /// The machine id as 32 lower-case hex digits (`machineIdentifier` in the Plex API, the DLNA UDN).
    pub fn machine_identifier(&self) -> std::string::String {
        self.machine_id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The account that claimed the server; `None` before the claim.
    pub fn owner(&self) -> Option<&Account> {
        self.accounts.iter().find(|a| a.role == Role::Owner)
    }

    /// The account with this id, of any role.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// Whether someone has claimed the server (there is an owner); before that only setup is open.
    pub fn is_claimed(&self) -> bool {
        self.owner().is_some()
    }

    /// DESIGN.md: secured when the Home has a member besides the owner, or any account has a PIN.
    pub fn is_secured(&self) -> bool {
        self.accounts.iter().any(|a| a.role == Role::Member || a.pin.is_some())
    }

    /// DLNA runs when the owner's switch is on and, if the server is secured, the owner re-enabled it after
    /// securing (warning acknowledged). Safe mode keeps it off.
    pub fn dlna_effectively_on(&self) -> bool {
        let d = &self.settings.dlna;
        d.enabled && (!self.is_secured() || d.reenabled_secured) && !self.safe_mode.active
    }

    /// Allocate a fresh id (accounts, devices, tokens, libraries share one counter).
    pub fn allocate_id(&mut self) -> Result<u16, StateError> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).ok_or(StateError::Invalid("ran out of ids"))?;
        Ok(id)
    }

    /// The lowest library id not in use (1..=255). Library ids are section ids for clients.
    pub fn free_library_id(&self) -> Result<LibraryId, StateError> {
        (1..=LibraryId::MAX)
            .find(|id| !self.libraries.iter().any(|l| l.id == *id))
            .ok_or(StateError::Full { what: "libraries", max: MAX_LIBRARIES })
    }

    /// Append a reset reason, dropping the oldest beyond [`MAX_RESETS`].
    pub fn record_reset(&mut self, reason: ResetReason, at: Time) {
        if self.resets.is_full() {
            self.resets.remove(0);
        }
        let _ = self.resets.push(Reset { reason, at });
    }

    /// Invariants every stored state satisfies. `update` refuses a change that breaks one.
    pub fn validate(&self) -> Result<(), StateError> {
        let owners = self.accounts.iter().filter(|a| a.role == Role::Owner).count();
        if owners > 1 {
            return Err(StateError::Invalid("there can be only one owner"));
        }
        let members = self.accounts.iter().filter(|a| a.role == Role::Member).count();
        if members > MAX_MEMBERS {
            return Err(StateError::Full { what: "Home members", max: MAX_MEMBERS });
        }
        let friends = self.accounts.iter().filter(|a| a.role == Role::Friend).count();
        if friends > MAX_FRIENDS {
            return Err(StateError::Full { what: "friends", max: MAX_FRIENDS });
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if a.name.trim().is_empty() {
                return Err(StateError::Invalid("an account needs a name"));
            }
            if self.accounts[..i].iter().any(|b| b.name.to_lowercase() == a.name.to_lowercase()) {
                return Err(StateError::Duplicate(a.name.as_str().into()));
            }
            if self.accounts[..i].iter().any(|b| b.id == a.id) {
                return Err(StateError::Invalid("two accounts share an id"));
            }
            if matches!(a.role, Role::Owner | Role::Friend) && a.password.is_none() {
                return Err(StateError::Invalid("owners and friends need a password"));
            }
            for l in &a.shares {
                if !self.libraries.iter().any(|x| x.id == *l) {
                    return Err(StateError::Missing { what: "library", id: *l as u32 });
                }
            }
        }
        for d in &self.devices {
            if self.account(d.account).is_none() {
                return Err(StateError::Missing { what: "account", id: d.account as u32 });
            }
        }
        for (i, l) in self.libraries.iter().enumerate() {
            if l.id == 0 || self.libraries[..i].iter().any(|b| b.id == l.id) {
                return Err(StateError::Invalid("library ids are unique and not 0"));
            }
            if l.name.trim().is_empty() {
                return Err(StateError::Invalid("a library needs a name"));
            }
            if self.libraries[..i].iter().any(|b| b.name.to_lowercase() == l.name.to_lowercase()) {
                return Err(StateError::Duplicate(l.name.as_str().into()));
            }
        }
        for f in &self.folders {
            if !self.libraries.iter().any(|l| l.id == f.library) {
                return Err(StateError::Missing { what: "library", id: f.library as u32 });
            }
            if !f.path.starts_with('/') {
                return Err(StateError::Invalid("a media folder must be an absolute path"));
            }
        }
        for l in &self.settings.dlna.libraries {
            if !self.libraries.iter().any(|x| x.id == *l) {
                return Err(StateError::Missing { what: "library", id: *l as u32 });
            }
        }
        for (i, n) in self.settings.host_names.iter().enumerate() {
            if host_name(n).ok().as_ref() != Some(n) {
                return Err(StateError::Invalid("a host name is not a DNS name or an IP address"));
            }
            if self.settings.host_names[..i].contains(n) {
                return Err(StateError::Duplicate(n.as_str().into()));
            }
        }
        if let Some(d) = &self.settings.acme.domain
            && host_name(d).ok().as_ref() != Some(d)
        {
            return Err(StateError::Invalid("the ACME domain is not a DNS name or an IP address"));
        }
        if !self.settings.acme.directory_url.starts_with("https://") {
            return Err(StateError::Invalid("the ACME directory is an https:// URL (RFC 8555 §6.1)"));
        }
        if self.settings.remote.manual_port == Some(0) {
            return Err(StateError::Invalid("the public port must be between 1 and 65535"));
        }
        if self.settings.remote.enabled && !self.is_claimed() {
            return Err(StateError::Invalid("remote access can only be turned on after the server is claimed"));
        }
        Ok(())
    }
}

/// Encode for the store. Fails only if the state breaks [`MAX_RECORD`], which the bounds make impossible.
pub fn encode(state: &State) -> Result<std::vec::Vec<u8>, StateError> {
    let bytes = postcard::to_allocvec(state).map_err(|_| StateError::Invalid("state could not be encoded"))?;
    if bytes.len() > MAX_RECORD {
        return Err(StateError::TooLong { what: "the state record", max: MAX_RECORD });
    }
    Ok(bytes)
}

/// Decode a record payload written with schema version `schema`, migrating older versions.
pub fn decode(schema: u16, payload: &[u8]) -> Result<State, StateError> {
    let err = |e: postcard::Error| StateError::Decode { schema, reason: e.to_string() };
    match schema {
        SCHEMA_VERSION => postcard::from_bytes::<State>(payload).map_err(err),
        4 => postcard::from_bytes::<v4::State>(payload).and_then(v4::migrate).map_err(err),
        3 => postcard::from_bytes::<v3::State>(payload).and_then(v3::migrate).and_then(v4::migrate).map_err(err),
        2 => postcard::from_bytes::<v2::State>(payload)
            .map(v2::migrate)
            .and_then(v3::migrate)
            .and_then(v4::migrate)
            .map_err(err),
        1 => postcard::from_bytes::<v1::State>(payload)
            .map(v1::migrate)
            .map(v2::migrate)
            .and_then(v3::migrate)
            .and_then(v4::migrate)
            .map_err(err),
        _ => Err(StateError::Decode { schema, reason: "written by a newer Hearth; update the firmware".into() }),
    }
}

#[cfg(test)]
mod tests;
