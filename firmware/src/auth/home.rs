//! Changes to accounts, devices and tokens, as pure edits of a [`State`] (the handlers run them inside
//! `Handle::update`, `hearth recover` runs them on the opened state). Each either succeeds or returns an
//! [`AuthError`] before touching anything the caller could observe: `update` discards the copy on refusal.

use super::AuthError;
use super::token::Client;
use crate::state::{
    self, Account, AccountId, ApiToken, Device, DeviceId, LibraryId, MAX_LIBRARIES, Name, Role, Scope, Secret, State,
    Time, TokenHash,
};

/// Check a name `raw` for `what` (an account, a token): trimmed, not empty, no control characters, within
/// [`crate::state::MAX_NAME`] bytes; the error says which rule failed.
pub fn name(what: &'static str, raw: &str) -> Result<Name, AuthError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(AuthError::BadInput(format!("{what} needs a name")));
    }
    if t.chars().any(char::is_control) {
        return Err(AuthError::BadInput(format!("{what}'s name must not contain control characters")));
    }
    Ok(state::bounded("the name", t)?)
}

/// Whether an account other than `except` already has the name `n`, compared case-insensitively.
pub fn name_taken(s: &State, n: &str, except: Option<AccountId>) -> bool {
    s.accounts.iter().any(|a| Some(a.id) != except && a.name.to_lowercase() == n.to_lowercase())
}

/// Check a list of library ids to share: each must exist; duplicates are dropped.
pub fn shares(s: &State, ids: &[LibraryId]) -> Result<heapless::Vec<LibraryId, MAX_LIBRARIES>, AuthError> {
    let mut out = heapless::Vec::new();
    for id in ids {
        if !s.libraries.iter().any(|l| l.id == *id) {
            return Err(AuthError::BadInput(format!("library {id} does not exist; share only existing libraries")));
        }
        if !out.contains(id) {
            state::push("shared libraries", &mut out, *id)?;
        }
    }
    Ok(out)
}

/// Create the owner. Refused when claimed (the access rule already says so; this keeps recover honest too).
pub fn claim(s: &mut State, owner: Name, password: Secret, remote_access: bool, now: Time) -> Result<AccountId, AuthError> {
    if s.is_claimed() {
        return Err(AuthError::Conflict("this server is already claimed".into()));
    }
    let id = s.allocate_id()?;
    let account = Account { id, role: Role::Owner, name: owner, password: Some(password), pin: None, shares: Default::default(), created: now };
    state::push("accounts", &mut s.accounts, account)?;
    // Seed "Remote Access": unless disabled, the server attempts to set up remote access after the claim.
    s.settings.remote.enabled = remote_access;
    Ok(id)
}

/// Add an account (member or friend).
pub fn add_account(s: &mut State, mut account: Account) -> Result<AccountId, AuthError> {
    if account.role == Role::Owner {
        return Err(AuthError::BadInput("there is only one owner".into()));
    }
    if name_taken(s, &account.name, None) {
        return Err(AuthError::Conflict(format!("the name {:?} is already taken", account.name.as_str())));
    }
    let (count, max, what) = match account.role {
        Role::Member => (s.accounts.iter().filter(|a| a.role == Role::Member).count(), state::MAX_MEMBERS, "Home members"),
        _ => (s.accounts.iter().filter(|a| a.role == Role::Friend).count(), state::MAX_FRIENDS, "friends"),
    };
    if count >= max {
        return Err(AuthError::Conflict(format!("the Home already has the most {what} it can hold ({max})")));
    }
    account.id = s.allocate_id()?;
    let id = account.id;
    state::push("accounts", &mut s.accounts, account)?;
    Ok(id)
}

/// The account `id` if it has `role`, for an edit; a member's id given as a friend's is not found.
pub fn account_mut(s: &mut State, id: AccountId, role: Role) -> Result<&mut Account, AuthError> {
    s.accounts
        .iter_mut()
        .find(|a| a.id == id && a.role == role)
        .ok_or_else(|| AuthError::NotFound(format!("there is no {} with id {id}", role_word(role))))
}

/// The word for `r` in messages ("owner", "Home member", "friend").
pub fn role_word(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Member => "Home member",
        Role::Friend => "friend",
    }
}

/// Remove a member or friend with its devices. The owner cannot be removed.
pub fn remove_account(s: &mut State, id: AccountId, role: Role) -> Result<(), AuthError> {
    if s.account(id).is_some_and(|a| a.role == Role::Owner) {
        return Err(AuthError::BadInput("the owner cannot be removed".into()));
    }
    account_mut(s, id, role)?;
    s.accounts.retain(|a| a.id != id);
    s.devices.retain(|d| d.account != id);
    Ok(())
}

/// Revoke every device token of `account` except `keep`.
pub fn revoke_devices(s: &mut State, account: AccountId, keep: Option<DeviceId>) -> usize {
    let before = s.devices.len();
    s.devices.retain(|d| d.account != account || Some(d.id) == keep);
    before - s.devices.len()
}

/// Record a signed-in device. The same client signing in again for the same account gets a new token on its old
/// record (the old token stops working). Full: the account's least recently seen device makes room.
pub fn add_device(s: &mut State, account: AccountId, client: &Client, token: TokenHash, now: Time) -> Result<DeviceId, AuthError> {
    if let Some(d) = s.devices.iter_mut().find(|d| d.account == account && d.client == client.client) {
        d.token = token;
        d.name = client.name.clone();
        d.product = client.product.clone();
        d.last_seen = now;
        return Ok(d.id);
    }
    if s.devices.is_full() {
        let oldest = s.devices.iter().enumerate().filter(|(_, d)| d.account == account).min_by_key(|(_, d)| d.last_seen);
        match oldest {
            Some((i, _)) => {
                s.devices.remove(i);
            }
            None => {
                return Err(AuthError::Conflict(format!(
                    "this server already has {} signed-in devices; the owner must remove one first",
                    state::MAX_DEVICES
                )));
            }
        }
    }
    let id = s.allocate_id()?;
    let d = Device {
        id,
        account,
        token,
        client: client.client,
        name: client.name.clone(),
        product: client.product.clone(),
        created: now,
        last_seen: now,
    };
    state::push("devices", &mut s.devices, d)?;
    Ok(id)
}

/// Add an API token `name` with `scope` and the hash of its token; refused when the name is taken
/// (case-insensitively) or the tokens are full. Returns the new token's id.
pub fn add_api_token(s: &mut State, name: Name, scope: Scope, token: TokenHash, now: Time) -> Result<u16, AuthError> {
    if s.api_tokens.iter().any(|t| t.name.to_lowercase() == name.to_lowercase()) {
        return Err(AuthError::Conflict(format!("an API token named {:?} already exists", name.as_str())));
    }
    if s.api_tokens.is_full() {
        return Err(AuthError::Conflict(format!("there are already {} API tokens; revoke one first", state::MAX_API_TOKENS)));
    }
    let id = s.allocate_id()?;
    state::push("API tokens", &mut s.api_tokens, ApiToken { id, name, scope, token, created: now })?;
    Ok(id)
}

/// Owner recovery (`hearth recover`, the recovery file): new password, no PIN, every owner device signed out.
/// Nothing else changes.
pub fn recover_owner(s: &mut State, password: Secret) -> Result<usize, AuthError> {
    let Some(owner) = s.accounts.iter_mut().find(|a| a.role == Role::Owner) else {
        return Err(AuthError::Conflict("this server is not claimed: there is no owner to recover".into()));
    };
    owner.password = Some(password);
    owner.pin = None;
    let id = owner.id;
    Ok(revoke_devices(s, id, None))
}

/// Merge in-memory last-seen times into the devices (one coarse write).
pub fn apply_last_seen(s: &mut State, seen: &std::collections::HashMap<DeviceId, Time>) {
    for d in s.devices.iter_mut() {
        if let Some(t) = seen.get(&d.id) {
            d.last_seen = d.last_seen.max(*t);
        }
    }
}
