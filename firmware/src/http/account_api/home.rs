//! The Home: the profile picker on a shared device, and switching it to a profile with that profile's PIN.

use super::{account_json, caller_account, issue, ok, role_name};
use crate::auth::lockout::Key;
use crate::auth::proof::Kind;
use crate::auth::AuthError;
use crate::http::body;
use crate::http::refused::{Refused, reply};
use crate::http::routes::Call;
use crate::http::Body;
use crate::state::{AccountId, Role};
use hyper::Response;
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/home/users` (Home): the profile picker: owner and members, and whether each has a PIN.
pub async fn home_users(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let users: Vec<Value> = s
        .accounts
        .iter()
        .filter(|a| matches!(a.role, Role::Owner | Role::Member))
        .map(|a| json!({ "id": a.id, "name": a.name.as_str(), "role": role_name(a.role), "has_pin": a.pin.is_some() }))
        .collect();
    reply(ok(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    id: AccountId,
    #[serde(default)]
    pin: Option<String>,
}

/// `POST /api/v1/home/switch` (Home): switch this device to a Home profile with its PIN → a token for it.
pub async fn home_switch(mut call: Call) -> Response<Body> {
    reply(async {
        let b: SwitchBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let (_, role, _) = caller_account(&call)?;
        let s = call.ctx.state.snapshot();
        let target = s
            .account(b.id)
            .filter(|a| matches!(a.role, Role::Owner | Role::Member))
            .cloned()
            .ok_or_else(|| AuthError::NotFound(format!("there is no Home profile with id {}", b.id)))?;
        match (&target.pin, target.role) {
            (Some(stored), _) => {
                let Some(given) = b.pin else { return Err(Refused::bad("this profile has a PIN: send it as pin")) };
                let keys = [Key::Account(format!("#{}", target.id), call.origin.lan), Key::source(call.origin.addr, call.origin.lan)];
                call.ctx.auth.verify(&call.origin, &keys, Kind::Pin, &given, Some(stored.clone())).await?;
            }
            (None, Role::Owner) if role != Role::Owner => {
                return Err(AuthError::Forbidden(
                    "the owner's profile has no PIN, so only the owner's password opens it: sign in with it".into(),
                )
                .into());
            }
            (None, _) => {}
        }
        let (text, device) = issue(&call, target.id).await?;
        tracing::info!(source = %call.origin.addr, account = target.id, device, "switched Home profile");
        ok(json!({ "token": text, "device": device, "account": account_json(&target) }))
    }
    .await)
}
