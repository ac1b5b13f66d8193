//! Schema version 2, kept only to migrate records written by it.
//!
//! Difference from version 3: there was no clean-stop marker (`State::run`). A version 2 record migrates with
//! `Run::Stopped`, so the first start of a version 3 Hearth records no reason it cannot know. Its parts are the
//! frozen version 3 types ([`super::v3`]), which version 2 shared (4101bde changed no type but `State`), never
//! today's. `fixtures/v2.rec`, written by the version 2 code (9012a71), proves these types read the real bytes.

use super::v3::{
    Account, ApiToken, Device, Folder, Library, Reset, Run, SafeMode, Settings, Tls, MAX_ACCOUNTS, MAX_API_TOKENS,
    MAX_DEVICES, MAX_FOLDERS, MAX_LIBRARIES, MAX_RESETS,
};
use heapless::Vec;
use serde::{Deserialize, Serialize};

/// Frozen schema 2 copy of everything Hearth kept on flash: schema 3 without the clean-stop marker.
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
    /// The owner's settings.
    pub settings: Settings,
    /// The HTTPS certificate; `None` before the claim.
    pub tls: Option<Tls>,
    /// The owner's libraries.
    pub libraries: Vec<Library, MAX_LIBRARIES>,
    /// Media folders of all libraries.
    pub folders: Vec<Folder, MAX_FOLDERS>,
    /// Reset history, newest last.
    pub resets: Vec<Reset, MAX_RESETS>,
    /// Set by too many watchdog resets in a short time.
    pub safe_mode: SafeMode,
    /// Next id for accounts, devices, tokens and libraries (never reused).
    pub next_id: u16,
}

/// Version 2 → version 3: everything kept, the run marker says "stopped".
pub fn migrate(old: State) -> super::v3::State {
    super::v3::State {
        machine_id: old.machine_id,
        accounts: old.accounts,
        devices: old.devices,
        api_tokens: old.api_tokens,
        settings: old.settings,
        tls: old.tls,
        libraries: old.libraries,
        folders: old.folders,
        resets: old.resets,
        safe_mode: old.safe_mode,
        next_id: old.next_id,
        run: Run::Stopped,
    }
}
