//! The server summary, claim, sign-in and sign-out, and the calling account with its password and PIN.

use super::{account_json, caller_account, created, issue, lan_word, ok, own_account};
use crate::auth::proof::{self, Kind};
use crate::auth::{AuthError, home, secret, token};
use crate::http::body;
use crate::http::refused::{Refused, reply};
use crate::http::routes::Call;
use crate::http::Body;
use crate::state::Role;
use hyper::Response;
use serde::Deserialize;
use serde_json::json;

/// `GET /api/v1/server` (Public): what the setup page needs before anyone signs in. Nothing private.
pub async fn server(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    reply(ok(json!({
        "name": s.settings.friendly_name.as_str(),
        "version": crate::VERSION,
        "machine_identifier": s.machine_identifier(),
        "claimed": s.is_claimed(),
        "secured": s.is_secured(),
        "dlna_effectively_on": s.dlna_effectively_on(),
        "remote_access_enabled": s.settings.remote.enabled,
        "recovered_from_damage": call.ctx.recovered_from_damage,
        "safe_mode": s.safe_mode.active,
        "your_origin": lan_word(call.origin.lan),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    name: String,
    password: String,
    #[serde(default = "yes")]
    remote_access: bool,
}

fn yes() -> bool {
    true
}

/// `POST /api/v1/claim` (Claim): create the owner; answers the owner's first token.
pub async fn claim(mut call: Call) -> Response<Body> {
    reply(async {
        let b: ClaimBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let name = home::name("the owner", &b.name)?;
        if let Some(p) = secret::password_problem(&b.password, &name) {
            return Err(Refused::bad(p));
        }
        let sealed = call.ctx.auth.hasher.seal(b.password).await.map_err(AuthError::from)?;
        let client = token::Client::from_headers(call.req.headers());
        let (text, hash) = token::mint();
        let now = crate::system::clock::now();
        let (owner, device) = call
            .ctx
            .state
            .update(|s| {
                let owner = home::claim(s, name.clone(), sealed, b.remote_access, now)?;
                let device = home::add_device(s, owner, &client, hash, now)?;
                Ok::<_, AuthError>((owner, device))
            })
            .await?;
        tracing::info!(source = %call.origin.addr, "the server was claimed");
        let s = call.ctx.state.snapshot();
        created(json!({ "token": text, "device": device, "account": s.account(owner).map(account_json) }))
    }
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    name: String,
    password: String,
}

/// `POST /api/v1/sign-in` (SignIn): name and password → a device token.
pub async fn sign_in(mut call: Call) -> Response<Body> {
    reply(async {
        let b: SignInBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let s = call.ctx.state.snapshot();
        // Home members have no password: their names answer like unknown names, after the same decoy hash, so
        // sign-in does not tell which names are members (A-F10).
        let account = s
            .accounts
            .iter()
            .find(|a| a.name.to_lowercase() == b.name.trim().to_lowercase() && a.role != Role::Member)
            .cloned();
        let keys = proof::keys(&call.origin, b.name.trim());
        let stored = account.as_ref().and_then(|a| a.password.clone());
        call.ctx.auth.verify(&call.origin, &keys, Kind::Password, &b.password, stored).await?;
        let account = account.expect("verified accounts exist");
        let (text, device) = issue(&call, account.id).await?;
        tracing::info!(source = %call.origin.addr, account = account.id, device, "signed in");
        ok(json!({ "token": text, "device": device, "account": account_json(&account) }))
    }
    .await)
}

/// `POST /api/v1/sign-out` (Account): revoke the calling device's token.
pub async fn sign_out(call: Call) -> Response<Body> {
    reply(async {
        let (_, _, device) = caller_account(&call)?;
        call.ctx
            .state
            .update(|s| {
                s.devices.retain(|d| d.id != device);
                Ok::<_, AuthError>(())
            })
            .await?;
        ok(json!({ "signed_out": true }))
    }
    .await)
}

/// `GET /api/v1/me` (Account): the calling account, whether it calls from outside the LAN, and its remote
/// stream limit.
pub async fn me(call: Call) -> Response<Body> {
    reply(async {
        let (_, _, device) = caller_account(&call)?;
        let a = own_account(&call)?;
        let mut v = account_json(&a);
        v["device"] = json!(device);
        let s = call.ctx.state.snapshot();
        v["server_secured"] = json!(s.is_secured());
        // What the web client needs before it plays (docs/web.md "Watch"): whether this caller's streams are
        // remote (paced by the stream room, `stream::pace`), and the most one remote stream may get: the
        // "Limit remote stream bitrate" cap, never above "Internet upload speed" (0 = not set). LAN: no limit.
        let remote = !call.origin.lan;
        let r = &s.settings.remote;
        let limit = [r.stream_kbps, r.upload_kbps].into_iter().filter(|k| *k > 0).min();
        v["remote"] = json!(remote);
        v["stream_limit_kbps"] = json!(limit.filter(|_| remote));
        ok(v)
    }
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current: String,
    new: String,
}

/// `POST /api/v1/me/password` (Account): change the caller's password; every other device of the account is
/// signed out.
pub async fn change_password(mut call: Call) -> Response<Body> {
    reply(async {
        let b: PasswordBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let (account, _, device) = caller_account(&call)?;
        let a = own_account(&call)?;
        let Some(stored) = a.password.clone() else {
            return Err(Refused::bad("Home members have no password; the owner can set a PIN for you"));
        };
        if let Some(p) = secret::password_problem(&b.new, &a.name) {
            return Err(Refused::bad(p));
        }
        let keys = proof::keys(&call.origin, &a.name);
        call.ctx.auth.verify(&call.origin, &keys, Kind::Password, &b.current, Some(stored)).await?;
        let sealed = call.ctx.auth.hasher.seal(b.new).await.map_err(AuthError::from)?;
        let revoked = call
            .ctx
            .state
            .update(|s| {
                home::account_mut(s, account, a.role)?.password = Some(sealed);
                Ok::<_, AuthError>(home::revoke_devices(s, account, Some(device)))
            })
            .await?;
        tracing::info!(source = %call.origin.addr, account, revoked, "password changed; other devices signed out");
        ok(json!({ "changed": true, "signed_out_devices": revoked }))
    }
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnPinBody {
    #[serde(default)]
    current_password: Option<String>,
    #[serde(default)]
    current_pin: Option<String>,
    /// The new PIN, or null to remove it.
    pin: Option<String>,
}

/// `PUT /api/v1/me/pin` (Account): set or remove the caller's own PIN, with the proof `auth::proof::pin_change`
/// asks for (the password, or for members the current PIN). Setting any PIN secures the server.
pub async fn set_own_pin(mut call: Call) -> Response<Body> {
    reply(async {
        let b: OwnPinBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let a = own_account(&call)?;
        if let Some(p) = b.pin.as_deref().and_then(secret::pin_problem) {
            return Err(Refused::bad(p));
        }
        if let Some(given) = proof::pin_change(&a, b.current_password, b.current_pin)? {
            call.ctx.auth.prove(&call.origin, &proof::keys(&call.origin, &a.name), given).await?;
        }
        let pin_set = b.pin.is_some();
        let sealed = match b.pin {
            Some(p) => Some(call.ctx.auth.hasher.seal(p).await.map_err(AuthError::from)?),
            None => None,
        };
        let secured = call
            .ctx
            .state
            .update(|s| {
                // Securing the server turns DLNA off: the state update does that (`State::settle`).
                home::account_mut(s, a.id, a.role)?.pin = sealed;
                Ok::<_, AuthError>(s.is_secured())
            })
            .await?;
        ok(json!({ "has_pin": pin_set, "server_secured": secured }))
    }
    .await)
}
