//! Schema version 4, frozen: the types as version 4 wrote them, kept only to migrate records written by it.
//!
//! Nothing here imports today's types, so a later change to the current schema cannot change what a version 4
//! record decodes as. Difference from version 5: there was no ACME (`Settings::acme`, the owner's choice of a
//! certificate from an ACME CA, and `State::acme`, the ACME account and the certificate it issued); a version
//! 4 record migrates with ACME off, no account and nothing issued.
//!
//! `fixtures/v4.rec` is a full state written by the version 4 code (`todays_fixture()` of main at d1e4d02);
//! the state tests decode and migrate it.

use core::net::IpAddr;
use heapless::{String, Vec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Schema 4's bound on a name (account, library, API token) in UTF-8 bytes.
pub const MAX_NAME: usize = 32;
/// Schema 4's bound on accounts of every role together.
pub const MAX_ACCOUNTS: usize = 28;
/// Schema 4's bound on signed-in devices of all accounts together.
pub const MAX_DEVICES: usize = 64;
/// Schema 4's bound on API tokens.
pub const MAX_API_TOKENS: usize = 16;
/// Schema 4's bound on libraries and on every list of library ids.
pub const MAX_LIBRARIES: usize = 16;
/// Schema 4's bound on media folders of all libraries together.
pub const MAX_FOLDERS: usize = 16;
/// Schema 4's bound on a media folder path in bytes.
pub const MAX_PATH: usize = 112;
/// Schema 4's bound on networks in one list (LAN networks, allowed without auth).
pub const MAX_NETS: usize = 8;
/// Schema 4's bound on trusted reverse proxies.
pub const MAX_PROXIES: usize = 4;
/// Schema 4's bound on a device name in bytes.
pub const MAX_DEVICE_NAME: usize = 24;
/// Schema 4's bound on a product name (`X-Plex-Product`) in bytes.
pub const MAX_PRODUCT: usize = 20;
/// Schema 4's bound on the reflector URL in bytes.
pub const MAX_URL: usize = 96;
/// Schema 4's bound on STUN servers.
pub const MAX_STUN: usize = 2;
/// Schema 4's bound on the stored certificate chain in bytes.
pub const MAX_CERT: usize = 2304;
/// Schema 4's bound on the stored PKCS#8 private key in bytes.
pub const MAX_KEY: usize = 320;
/// Schema 4's bound on the reset history.
pub const MAX_RESETS: usize = 8;
/// Schema 4's bound on host names the owner added.
pub const MAX_HOST_NAMES: usize = 4;
/// Schema 4's bound on one added host name in bytes.
pub const MAX_HOST_NAME: usize = 128;

/// Schema 4's bounded name (account, library, API token).
pub type Name = String<MAX_NAME>;
/// Schema 4's account id, from `State::next_id`.
pub type AccountId = u16;
/// Schema 4's device id, from `State::next_id`.
pub type DeviceId = u16;
/// Schema 4's library id, from `State::next_id`.
pub type LibraryId = u8;
/// Unix time in seconds, as schema 4 stored it.
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

/// Frozen schema 4 copy of [`super::Role`]: what an account is in the Home.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The account that claimed the server. Exactly one once claimed.
    Owner,
    /// A managed Home user: no password, optional PIN, sees the libraries in `shares`.
    Member,
    /// A remote account with a password; sees only the libraries in `shares`.
    Friend,
}

/// Frozen schema 4 copy of [`super::Account`]: a person who can sign in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Never reused.
    pub id: AccountId,
    /// Owner, Home member or friend.
    pub role: Role,
    /// The account's name, unique on the server.
    pub name: Name,
    /// The sign-in password: the owner's and friends'; a Home member has none.
    pub password: Option<Secret>,
    /// The PIN that guards switching to this account in the Home.
    pub pin: Option<Secret>,
    /// Libraries this account may see. Ignored for the owner, who sees everything.
    pub shares: Vec<LibraryId, MAX_LIBRARIES>,
    /// When the account was made.
    pub created: Time,
}

/// Frozen schema 4 copy of [`super::Device`]: a signed-in app and the account it acts for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Never reused.
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

/// Frozen schema 4 copy of [`super::Scope`]: what an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Browse and stream every library.
    ReadLibrary,
    /// ReadLibrary plus trigger refreshes (library update hooks).
    RefreshLibrary,
    /// Everything the owner can do through the API.
    Admin,
}

/// Frozen schema 4 copy of [`super::ApiToken`]: a bearer token the owner made for a script or hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Never reused; the API names the token by it.
    pub id: u16,
    /// The owner's label for the token.
    pub name: Name,
    /// What the token may do.
    pub scope: Scope,
    /// Hash of the bearer token (shown once at creation, never stored).
    pub token: TokenHash,
    /// When the token was made.
    pub created: Time,
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

/// Frozen schema 4 copy of [`super::SecureConnections`]: whether plain HTTP is served, redirected
/// or refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecureConnections {
    /// Plain HTTP gets a redirect (browsers) or 403 (others).
    Required,
    Preferred,
    /// HTTPS is not offered.
    Disabled,
}

/// Frozen schema 4 copy of [`super::Dlna`]: the owner's DLNA settings.
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

/// Frozen schema 4 copy of [`super::MappingMethod`]: how the last port mapping was made.
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
    /// The router that made the mapping.
    pub gateway: IpAddr,
    /// The public address the router reported, if it said.
    pub external_addr: Option<IpAddr>,
    /// The port open on the router's public side.
    pub external_port: u16,
    /// The local port the router forwards to.
    pub internal_port: u16,
    /// 0 = permanent.
    pub lease_secs: u32,
    /// When the mapping was made or last renewed.
    pub obtained: Time,
}

/// Frozen schema 4 copy of [`super::Remote`]: the owner's remote access settings.
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
    /// The last mapping that succeeded, so a restart renews or deletes it.
    pub last_mapping: Option<Mapping>,
}

/// Frozen schema 4 copy of [`super::Settings`]: the owner's server settings, without `host_names`
/// (added in schema 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Shown to apps and DLNA devices. Empty = the hostname.
    pub friendly_name: Name,
    /// Networks counted as LAN. Empty = the server's own subnets.
    pub lan_networks: Vec<Net, MAX_NETS>,
    /// "List of IP addresses and networks that are allowed without auth". Ignored while secured.
    pub allowed_without_auth: Vec<Net, MAX_NETS>,
    /// Requests from the public address of the last mapping count as LAN.
    pub treat_wan_ip_as_lan: bool,
    /// X-Forwarded-For is believed only from these.
    pub trusted_proxies: Vec<Net, MAX_PROXIES>,
    /// Whether plain HTTP is served, redirected or refused.
    pub secure_connections: SecureConnections,
    /// The owner's DLNA settings.
    pub dlna: Dlna,
    /// The owner's remote access settings.
    pub remote: Remote,
    /// Names besides IP addresses, the box's hostname and `localhost` that a request's `Host` may carry.
    pub host_names: Vec<String<MAX_HOST_NAME>, MAX_HOST_NAMES>,
}

/// Frozen schema 4 copy of [`super::Tls`]: the HTTPS certificate chain and its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// DER certificates, leaf first, each prefixed by its u16 length.
    pub chain: Vec<u8, MAX_CERT>,
    /// PKCS#8 DER private key.
    pub key: Vec<u8, MAX_KEY>,
    /// Installed by the owner (true) or made by Hearth at claim (false).
    pub custom: bool,
}

/// Frozen schema 4 copy of [`super::LibraryKind`]: what a library holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LibraryKind {
    Movies,
    Shows,
    Music,
    Photos,
    OtherVideos,
}

/// Frozen schema 4 copy of [`super::Library`]: a library as the owner named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// Never reused.
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

/// Frozen schema 4 copy of [`super::ResetReason`]: why the previous run ended.
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

/// Frozen schema 4 copy of [`super::Reset`]: one entry of the reset history.
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Run {
    /// Stopped cleanly (reboot, power-off, SIGTERM), or never ran.
    Stopped,
    Running,
    /// The watchdog thread stopped petting because a heartbeat went stale: a watchdog reset is due. Written
    /// without waiting (the stalled part may be the store writer itself, then the next start reads `Running`).
    Starving,
    /// Hearth panicked; written by the panic hook as it goes down.
    Crashed,
}

/// Safe mode: too many watchdog resets in a short time. Remote access and DLNA stay off until cleared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The HTTPS certificate; `None` before the claim.
    pub tls: Option<Tls>,
    /// The owner's libraries.
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    /// Media folders of all libraries.
    pub folders: Vec<Folder, MAX_FOLDERS>,
    /// Newest last; at most [`MAX_RESETS`].
    pub resets: Vec<Reset, MAX_RESETS>,
    /// Set by too many watchdog resets in a short time.
    pub safe_mode: SafeMode,
    /// Next id for accounts, devices, tokens and libraries (never reused).
    pub next_id: u16,
    /// The clean-stop marker (schema 4).
    pub run: Run,
}

/// Carry a part whose shape is the same in version 3 and today over by one re-encode: postcard is not
/// self-describing, so equal shapes mean equal bytes (the fixture test proves it for every part).
fn same<A: Serialize, B: DeserializeOwned>(a: &A) -> Result<B, postcard::Error> {
    postcard::from_bytes(&postcard::to_allocvec(a)?)
}

/// Migrate a version 4 state to today's: everything kept, ACME off with no account and nothing issued.
pub fn migrate(old: State) -> Result<super::State, postcard::Error> {
    let s = old.settings;
    Ok(super::State {
        machine_id: old.machine_id,
        accounts: same(&old.accounts)?,
        devices: same(&old.devices)?,
        api_tokens: same(&old.api_tokens)?,
        settings: super::Settings {
            friendly_name: same(&s.friendly_name)?,
            lan_networks: same(&s.lan_networks)?,
            allowed_without_auth: same(&s.allowed_without_auth)?,
            treat_wan_ip_as_lan: s.treat_wan_ip_as_lan,
            trusted_proxies: same(&s.trusted_proxies)?,
            secure_connections: same(&s.secure_connections)?,
            dlna: same(&s.dlna)?,
            remote: same(&s.remote)?,
            host_names: same(&s.host_names)?,
            acme: super::AcmeSettings::default(),
        },
        tls: same(&old.tls)?,
        libraries: same(&old.libraries)?,
        folders: same(&old.folders)?,
        resets: same(&old.resets)?,
        safe_mode: same(&old.safe_mode)?,
        next_id: old.next_id,
        run: same(&old.run)?,
        acme: super::Acme::default(),
    })
}
