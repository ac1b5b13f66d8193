//! Schema version 1, kept only to migrate records written by it.
//!
//! Differences from version 2 (migrated to 2, then to the current one by [`super::v2::migrate`]):
//! - `Remote` had `upload_mbps: u16` (whole Mbit/s) and no per-stream bitrate limit; version 2 stores both
//!   caps in kbit/s (`upload_kbps`, `stream_kbps`) so a slow uplink like 0.5 Mbit/s can be expressed.
//! - There was no safe mode (version 2 adds `State::safe_mode`).
//!
//! Its unchanged parts are the frozen version 3 types ([`super::v3`]), never today's: version 1 was defined in
//! 9012a71 as these two structs over the version 2 types, which version 3 kept byte for byte (4101bde only added
//! `State::run`). `fixtures/v1.rec`, written by that code, proves these types read the real bytes.

use super::v3::{
    Account, ApiToken, Device, Dlna, Folder, Library, Mapping, Net, Reset, SafeMode, SecureConnections, Tls,
    MAX_ACCOUNTS, MAX_API_TOKENS, MAX_DEVICES, MAX_FOLDERS, MAX_LIBRARIES, MAX_NETS, MAX_PROXIES, MAX_RESETS,
    MAX_STUN, MAX_URL, Name,
};
use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Frozen schema 1 copy of the remote access settings: the upload cap in whole Mbit/s and no per-stream
/// limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// On after the claim unless the owner unticked it.
    pub enabled: bool,
    /// Some = the owner forwarded this external port by hand.
    pub manual_port: Option<u16>,
    /// Whole Mbit/s; 0 = not set.
    pub upload_mbps: u16,
    /// Where `hearth reflector` runs; empty = not verified from outside.
    pub reflector_url: String<MAX_URL>,
    /// STUN servers as host:port.
    pub stun_servers: Vec<String<64>, MAX_STUN>,
    /// The last mapping that succeeded.
    pub last_mapping: Option<Mapping>,
}

/// Frozen schema 1 copy of the owner's server settings (its `remote` is this module's [`Remote`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Shown to apps and DLNA devices. Empty = the hostname.
    pub friendly_name: Name,
    /// Networks counted as LAN. Empty = the server's own subnets.
    pub lan_networks: Vec<Net, MAX_NETS>,
    /// Networks allowed without auth; ignored while secured.
    pub allowed_without_auth: Vec<Net, MAX_NETS>,
    /// Requests from the public address of the last mapping count as LAN.
    pub treat_wan_ip_as_lan: bool,
    /// X-Forwarded-For is believed only from these.
    pub trusted_proxies: Vec<Net, MAX_PROXIES>,
    /// Whether plain HTTP is served, redirected or refused.
    pub secure_connections: SecureConnections,
    /// The owner's DLNA settings.
    pub dlna: Dlna,
    /// The owner's remote access settings, schema 1 shape.
    pub remote: Remote,
}

/// Frozen schema 1 copy of everything Hearth kept on flash: no safe mode, no clean-stop marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Stable across restarts (`machineIdentifier`).
    pub machine_id: [u8; 16],
    /// Every account: owner, Home members, friends.
    pub accounts: Vec<Account, MAX_ACCOUNTS>,
    /// Signed-in devices of all accounts.
    pub devices: Vec<Device, MAX_DEVICES>,
    /// API tokens the owner made.
    pub api_tokens: Vec<ApiToken, MAX_API_TOKENS>,
    /// The owner's settings, schema 1 shape.
    pub settings: Settings,
    /// The HTTPS certificate; `None` before the claim.
    pub tls: Option<Tls>,
    /// The owner's libraries.
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    /// Media folders of all libraries.
    pub folders: Vec<Folder, MAX_FOLDERS>,
    /// Reset history, newest last.
    pub resets: Vec<Reset, MAX_RESETS>,
    /// Next id for accounts, devices, tokens and libraries (never reused).
    pub next_id: u16,
}

/// Version 1 → version 2: Mbit/s become kbit/s, no per-stream limit yet, safe mode off.
pub fn migrate(old: State) -> super::v2::State {
    let s = old.settings;
    super::v2::State {
        machine_id: old.machine_id,
        accounts: old.accounts,
        devices: old.devices,
        api_tokens: old.api_tokens,
        settings: super::v3::Settings {
            friendly_name: s.friendly_name,
            lan_networks: s.lan_networks,
            allowed_without_auth: s.allowed_without_auth,
            treat_wan_ip_as_lan: s.treat_wan_ip_as_lan,
            trusted_proxies: s.trusted_proxies,
            secure_connections: s.secure_connections,
            dlna: s.dlna,
            remote: super::v3::Remote {
                enabled: s.remote.enabled,
                manual_port: s.remote.manual_port,
                upload_kbps: u32::from(s.remote.upload_mbps) * 1000,
                stream_kbps: 0,
                reflector_url: s.remote.reflector_url,
                stun_servers: s.remote.stun_servers,
                last_mapping: s.remote.last_mapping,
            },
        },
        tls: old.tls,
        libraries: old.libraries,
        folders: old.folders,
        resets: old.resets,
        safe_mode: SafeMode { active: false, since: 0 },
        next_id: old.next_id,
    }
}
