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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub enabled: bool,
    pub manual_port: Option<u16>,
    /// Whole Mbit/s; 0 = not set.
    pub upload_mbps: u16,
    pub reflector_url: String<MAX_URL>,
    pub stun_servers: Vec<String<64>, MAX_STUN>,
    pub last_mapping: Option<Mapping>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub friendly_name: Name,
    pub lan_networks: Vec<Net, MAX_NETS>,
    pub allowed_without_auth: Vec<Net, MAX_NETS>,
    pub treat_wan_ip_as_lan: bool,
    pub trusted_proxies: Vec<Net, MAX_PROXIES>,
    pub secure_connections: SecureConnections,
    pub dlna: Dlna,
    pub remote: Remote,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub machine_id: [u8; 16],
    pub accounts: Vec<Account, MAX_ACCOUNTS>,
    pub devices: Vec<Device, MAX_DEVICES>,
    pub api_tokens: Vec<ApiToken, MAX_API_TOKENS>,
    pub settings: Settings,
    pub tls: Option<Tls>,
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    pub folders: Vec<Folder, MAX_FOLDERS>,
    pub resets: Vec<Reset, MAX_RESETS>,
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
