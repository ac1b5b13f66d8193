//! Signed-in devices (each holds one token) and API tokens for tools.

use super::{created, id_param, ok, scope_name};
use crate::auth::{AuthError, Caller, home, token};
use crate::http::body;
use crate::http::refused::{Refused, reply};
use crate::http::routes::Call;
use crate::http::Body;
use crate::state::{self, Scope, State};
use hyper::Response;
use serde::Deserialize;
use serde_json::{Value, json};

/// `GET /api/v1/tokens` (Owner).
pub async fn list_tokens(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let v: Vec<Value> = s
        .api_tokens
        .iter()
        .map(|t| json!({ "id": t.id, "name": t.name.as_str(), "scope": scope_name(t.scope), "created": t.created }))
        .collect();
    reply(ok(json!({ "tokens": v })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenBody {
    name: String,
    scope: String,
}

/// `POST /api/v1/tokens` (Owner): `{name, scope: read_library | refresh_library | admin}` → the token, once.
pub async fn create_token(mut call: Call) -> Response<Body> {
    reply(async {
        let b: NewTokenBody = body::json(&mut call.req).await?;
        let name = home::name("an API token", &b.name)?;
        let scope = match b.scope.as_str() {
            "read_library" => Scope::ReadLibrary,
            "refresh_library" => Scope::RefreshLibrary,
            "admin" => Scope::Admin,
            _ => return Err(Refused::bad("scope is one of read_library, refresh_library, admin")),
        };
        let (text, hash) = token::mint();
        let now = crate::system::clock::now();
        let id = call.ctx.state.update(|s| home::add_api_token(s, name.clone(), scope, hash, now)).await?;
        created(json!({ "id": id, "name": name.as_str(), "scope": scope_name(scope), "token": text, "created": now }))
    }
    .await)
}

/// `DELETE /api/v1/tokens/{id}` (Owner).
pub async fn revoke_token(call: Call) -> Response<Body> {
    reply(async {
        let id = revoke(call, "API token", |s| &mut s.api_tokens, |t| t.id).await?;
        ok(json!({ "revoked": id }))
    }
    .await)
}

/// Remove the record `{id}` of the list `list` picks (404 naming `what` when there is none): revoking a token
/// or a device is removing its record. Answers the id.
async fn revoke<T, const N: usize>(
    call: Call,
    what: &'static str,
    list: fn(&mut State) -> &mut heapless::Vec<T, N>,
    id_of: fn(&T) -> u16,
) -> Result<u16, Refused> {
    let id = id_param(&call)?;
    call.ctx
        .state
        .update(|s| {
            let v = list(s);
            let before = v.len();
            v.retain(|t| id_of(t) != id);
            if v.len() == before {
                return Err(AuthError::NotFound(format!("there is no {what} with id {id}")));
            }
            Ok(())
        })
        .await?;
    Ok(id)
}

/// `GET /api/v1/devices` (Owner): every signed-in device.
pub async fn list_devices(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let here = match call.caller {
        Caller::Account { device, .. } => Some(device),
        _ => None,
    };
    let v: Vec<Value> = s
        .devices
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "account": d.account,
                "account_name": s.account(d.account).map(|a| a.name.as_str()).unwrap_or(""),
                "name": d.name.as_str(),
                "product": d.product.as_str(),
                "created": d.created,
                "last_seen": call.ctx.auth.last_seen(d.id).unwrap_or(d.last_seen).max(d.last_seen),
                "this_device": Some(d.id) == here,
            })
        })
        .collect();
    reply(ok(json!({ "devices": v })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

/// `PATCH /api/v1/devices/{id}` (Owner): `{name}`.
pub async fn rename_device(mut call: Call) -> Response<Body> {
    reply(async {
        let id = id_param(&call)?;
        let b: RenameBody = body::json(&mut call.req).await?;
        let t = b.name.trim();
        if t.is_empty() || t.chars().any(char::is_control) {
            return Err(Refused::bad("a device name is some text without control characters"));
        }
        let name: heapless::String<{ state::MAX_DEVICE_NAME }> = state::bounded("the device name", t)?;
        call.ctx
            .state
            .update(|s| {
                let d = s.devices.iter_mut().find(|d| d.id == id).ok_or_else(|| AuthError::NotFound(format!("there is no device with id {id}")))?;
                d.name = name.clone();
                Ok::<_, AuthError>(())
            })
            .await?;
        ok(json!({ "id": id, "name": name.as_str() }))
    }
    .await)
}

/// `DELETE /api/v1/devices/{id}` (Owner): revoke; the device gets 401 "sign in again" from now on.
pub async fn revoke_device(call: Call) -> Response<Body> {
    reply(async {
        let id = revoke(call, "device", |s| &mut s.devices, |d| d.id).await?;
        tracing::info!(device = id, "device revoked");
        ok(json!({ "revoked": id }))
    }
    .await)
}
