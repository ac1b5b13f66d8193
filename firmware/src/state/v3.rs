//! Schema version 3, frozen: the types as version 3 wrote them, kept only to migrate records written by it.
//!
//! Nothing here imports today's types, so a later change to the current schema cannot change what a version 3
//! record decodes as. Difference from version 4: `Settings` had no `host_names` (the names, such as a
//! dynamic-DNS name, the owner added for the Host check); a version 3 record migrates with none.
//!
//! `fixtures/v3.rec` is a full state written by the version 3 code (main at 3b368cf); the state tests decode
//! and migrate it.

use core::net::IpAddr;
use heapless::{String, Vec};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const MAX_NAME: usize = 32;
pub const MAX_ACCOUNTS: usize = 28;
pub const MAX_DEVICES: usize = 64;
pub const MAX_API_TOKENS: usize = 16;
pub const MAX_LIBRARIES: usize = 16;
pub const MAX_FOLDERS: usize = 16;
pub const MAX_PATH: usize = 112;
pub const MAX_NETS: usize = 8;
pub const MAX_PROXIES: usize = 4;
pub const MAX_DEVICE_NAME: usize = 24;
pub const MAX_PRODUCT: usize = 20;
pub const MAX_URL: usize = 96;
pub const MAX_STUN: usize = 2;
pub const MAX_CERT: usize = 2304;
pub const MAX_KEY: usize = 320;
pub const MAX_RESETS: usize = 8;

pub type Name = String<MAX_NAME>;
pub type AccountId = u16;
pub type DeviceId = u16;
pub type LibraryId = u8;
pub type Time = u32;

/// An argon2id result: the per-secret random salt and the derived hash. Parameters are fixed per schema
/// version (auth room) so they are not repeated in every record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub salt: [u8; 16],
    /// 128-bit argon2id output.
    pub hash: [u8; 16],
}

/// SHA-256 of a 256-bit random bearer token, first 128 bits. The token itself is returned once and never
/// stored; 128 bits of a hash of a 256-bit random value cannot be inverted or collided by guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 16]);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// The account that claimed the server. Exactly one once claimed.
    Owner,
    /// A managed Home user: no password, optional PIN, sees the libraries in `shares`.
    Member,
    /// A remote account with a password; sees only the libraries in `shares`.
    Friend,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub role: Role,
    pub name: Name,
    pub password: Option<Secret>,
    pub pin: Option<Secret>,
    /// Libraries this account may see. Ignored for the owner, who sees everything.
    pub shares: Vec<LibraryId, MAX_LIBRARIES>,
    pub created: Time,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub account: AccountId,
    pub token: TokenHash,
    /// First 64 bits of SHA-256 of `X-Plex-Client-Identifier`: finds the device again when it signs in anew.
    pub client: [u8; 8],
    /// `X-Plex-Device-Name` or `X-Plex-Device`, renamable by the owner.
    pub name: String<MAX_DEVICE_NAME>,
    /// `X-Plex-Product`.
    pub product: String<MAX_PRODUCT>,
    pub created: Time,
    /// Written coarsely (see the auth room), never per request.
    pub last_seen: Time,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Browse and stream every library.
    ReadLibrary,
    /// ReadLibrary plus trigger refreshes (library update hooks).
    RefreshLibrary,
    /// Everything the owner can do through the API.
    Admin,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: u16,
    pub name: Name,
    pub scope: Scope,
    pub token: TokenHash,
    pub created: Time,
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecureConnections {
    /// Plain HTTP gets a redirect (browsers) or 403 (others).
    Required,
    Preferred,
    /// HTTPS is not offered.
    Disabled,
}

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
    pub method: MappingMethod,
    pub gateway: IpAddr,
    pub external_addr: Option<IpAddr>,
    pub external_port: u16,
    pub internal_port: u16,
    /// 0 = permanent.
    pub lease_secs: u32,
    pub obtained: Time,
}

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
    pub last_mapping: Option<Mapping>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Shown to apps and DLNA devices. Empty = the hostname.
    pub friendly_name: Name,
    /// Networks counted as LAN. Empty = the server's own subnets.
    pub lan_networks: Vec<Net, MAX_NETS>,
    /// "List of IP addresses and networks that are allowed without auth". Ignored while secured.
    pub allowed_without_auth: Vec<Net, MAX_NETS>,
    pub treat_wan_ip_as_lan: bool,
    /// X-Forwarded-For is believed only from these.
    pub trusted_proxies: Vec<Net, MAX_PROXIES>,
    pub secure_connections: SecureConnections,
    pub dlna: Dlna,
    pub remote: Remote,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls {
    /// DER certificates, leaf first, each prefixed by its u16 length.
    pub chain: Vec<u8, MAX_CERT>,
    /// PKCS#8 DER private key.
    pub key: Vec<u8, MAX_KEY>,
    /// Installed by the owner (true) or made by Hearth at claim (false).
    pub custom: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LibraryKind {
    Movies,
    Shows,
    Music,
    Photos,
    OtherVideos,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    pub id: LibraryId,
    pub kind: LibraryKind,
    pub name: Name,
}

/// A media folder. Folders of all libraries share one pool so the bound is on the total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folder {
    pub library: LibraryId,
    pub path: String<MAX_PATH>,
}

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    pub reason: ResetReason,
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
    pub active: bool,
    pub since: Time,
}

/// Everything Hearth keeps on flash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Stable across restarts; shown as 32 hex digits (`machineIdentifier`).
    pub machine_id: [u8; 16],
    pub accounts: Vec<Account, MAX_ACCOUNTS>,
    pub devices: Vec<Device, MAX_DEVICES>,
    pub api_tokens: Vec<ApiToken, MAX_API_TOKENS>,
    pub settings: Settings,
    pub tls: Option<Tls>,
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    pub folders: Vec<Folder, MAX_FOLDERS>,
    /// Newest last; at most [`MAX_RESETS`].
    pub resets: Vec<Reset, MAX_RESETS>,
    pub safe_mode: SafeMode,
    /// Next id for accounts, devices, tokens and libraries (never reused).
    pub next_id: u16,
    /// The clean-stop marker (schema 3).
    pub run: Run,
}

/// Carry a part whose shape is the same in version 3 and today over by one re-encode: postcard is not
/// self-describing, so equal shapes mean equal bytes (the fixture test proves it for every part).
fn same<A: Serialize, B: DeserializeOwned>(a: &A) -> Result<B, postcard::Error> {
    postcard::from_bytes(&postcard::to_allocvec(a)?)
}

/// Version 3 → version 4: everything kept, no host names added yet.
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
            host_names: Vec::new(),
        },
        tls: same(&old.tls)?,
        libraries: same(&old.libraries)?,
        folders: same(&old.folders)?,
        resets: same(&old.resets)?,
        safe_mode: same(&old.safe_mode)?,
        next_id: old.next_id,
        run: same(&old.run)?,
    })
}
