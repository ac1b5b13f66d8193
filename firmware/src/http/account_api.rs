//! The JSON API of the auth room under `/api/v1/`, by domain (documented in docs/api.md):
//!
//! - [`session`]: the server summary, claim, sign-in and sign-out, the calling account, its password and PIN;
//! - [`home`]: the Home profile picker and switching profiles;
//! - [`accounts`]: Home members and friends, one set of handlers for both roles;
//! - [`devices`]: signed-in devices and API tokens;
//! - [`settings`]: network and DLNA settings.
//!
//! Every handler runs after the access rule let the caller in (the class is in the route table). Bodies are
//! read by [`super::body`] (unknown fields refused by name); refusals are [`Refused`] (one mapping from the
//! rooms' errors). Nothing stored changes on any refusal: changes run inside one `Handle::update`, which
//! discards its copy when the closure refuses. The rules live in their rooms (`auth::home`, `auth::proof`,
//! `dlna::switch`); these files read, call and answer.

pub mod accounts;
pub mod devices;
pub mod home;
pub mod session;
pub mod settings;

use super::refused::{Answer, Refused};
use super::routes::Call;
use crate::auth::{AuthError, Caller, home as rules, token};
use crate::state::{self, Account, AccountId, Role, Scope};
use hyper::StatusCode;
use serde_json::{Value, json};

/// The warning the owner acknowledges to turn DLNA on while the server is secured (the DLNA room's).
pub use crate::dlna::switch::WARNING as DLNA_WARNING;

fn ok(v: Value) -> Answer {
    Ok(super::json(&v))
}

fn created(v: Value) -> Answer {
    let mut r = super::json(&v);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

fn lan_word(lan: bool) -> &'static str {
    if lan { "lan" } else { "wan" }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Member => "member",
        Role::Friend => "friend",
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::ReadLibrary => "read_library",
        Scope::RefreshLibrary => "refresh_library",
        Scope::Admin => "admin",
    }
}

fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name.as_str(),
        "role": role_name(a.role),
        "has_password": a.password.is_some(),
        "has_pin": a.pin.is_some(),
        "shares": a.shares.as_slice(),
        "created": a.created,
    })
}

fn id_param(call: &Call) -> Result<u16, Refused> {
    call.params
        .get("id")
        .and_then(|v| v.parse::<u16>().ok())
        .ok_or_else(|| Refused::not_found("There is no such id here; ids are numbers."))
}

fn caller_account(call: &Call) -> Result<(AccountId, Role, state::DeviceId), Refused> {
    match call.caller {
        Caller::Account { account, role, device, .. } => Ok((account, role, device)),
        _ => Err(AuthError::Forbidden("this needs an account's token, not a tool's".into()).into()),
    }
}

/// The calling account as stored now (404 when it was removed meanwhile).
fn own_account(call: &Call) -> Result<Account, Refused> {
    let (account, _, _) = caller_account(call)?;
    let s = call.ctx.state.snapshot();
    s.account(account).cloned().ok_or_else(|| AuthError::NotFound("your account was removed".into()).into())
}

/// Mint a token and record the device for `account` (in one update); the token's text, shown once.
async fn issue(call: &Call, account: AccountId) -> Result<(String, state::DeviceId), Refused> {
    let client = token::Client::from_headers(call.req.headers());
    let (text, hash) = token::mint();
    let now = crate::system::clock::now();
    let id = call
        .ctx
        .state
        .update(|s| {
            if s.account(account).is_none() {
                return Err(AuthError::NotFound("that account was just removed".into()));
            }
            rules::add_device(s, account, &client, hash, now)
        })
        .await?;
    Ok((text, id))
}
