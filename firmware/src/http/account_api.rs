//! The JSON API of the auth room under `/api/v1/`: claim, sign-in, Home, members, friends, API tokens,
//! devices, password and PIN, network and DLNA settings, and the server summary. Documented in docs/api.md.
//!
//! Every handler runs after the access rule let the caller in (the class is in the route table). Bad input is
//! 400/404/409/413 with a sentence; nothing stored changes on any refusal (changes run inside one
//! `Handle::update`, which discards its copy when the closure refuses).

// Refusals are finished responses handed straight back to hyper, once per request; boxing them buys nothing.
#![allow(clippy::result_large_err)]

use super::routes::Call;
use super::{Body, Format, MAX_BODY, error};
use crate::auth::line::Seat;
use crate::auth::lockout::{Key, Source};
use crate::auth::{AuthError, Caller, home, secret, token};
use crate::state::{self, Account, AccountId, LibraryId, Net, Role, Scope, Secret, State, UpdateError};
use http_body_util::BodyExt;
use hyper::{Response, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Instant;

type Answer = Result<Response<Body>, Response<Body>>;

/// The warning the owner acknowledges to turn DLNA on while the server is secured (seed wording).
pub const DLNA_WARNING: &str = "Turning DLNA on while the server is secured gives any DLNA device on your local \
network unrestricted access to the libraries DLNA shows, without a token or PIN. Hearth answers DLNA from LAN \
addresses only.";

fn reply(r: Answer) -> Response<Body> {
    r.unwrap_or_else(|e| e)
}

fn ok(v: Value) -> Answer {
    Ok(super::json(&v))
}

fn created(v: Value) -> Answer {
    let mut r = super::json(&v);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

fn fail(e: AuthError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = error(status, &e.to_string(), Format::Json);
    if let AuthError::Locked(d) = e {
        let secs = d.as_secs().max(1).to_string();
        r.headers_mut().insert(header::RETRY_AFTER, secs.parse().expect("digits"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
    }
    r
}

fn bad(msg: impl Into<String>) -> Response<Body> {
    fail(AuthError::BadInput(msg.into()))
}

fn update_failed(e: UpdateError<AuthError>) -> Response<Body> {
    match e {
        UpdateError::Rejected(e) => fail(e),
        UpdateError::Invalid(e) => fail(AuthError::State(e)),
        UpdateError::Store(m) => error(StatusCode::SERVICE_UNAVAILABLE, &m, Format::Json),
    }
}

/// Read and parse a JSON body: over [`MAX_BODY`] → 413, not JSON or wrong shape → 400 with serde's reason.
async fn body<T: DeserializeOwned>(call: &mut Call) -> Result<T, Response<Body>> {
    let too_big = || {
        error(StatusCode::PAYLOAD_TOO_LARGE, &format!("The request body is larger than {MAX_BODY} bytes."), Format::Json)
    };
    let declared = call.req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_big());
    }
    let bytes = match http_body_util::Limited::new(call.req.body_mut(), MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_big()),
        Err(_) => return Err(bad("the request body could not be read")),
    };
    if bytes.is_empty() {
        return Err(bad("this needs a JSON body"));
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the request body is not the JSON expected here: {e}")))
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

fn id_param(call: &Call) -> Result<u16, Response<Body>> {
    call.params
        .get("id")
        .and_then(|v| v.parse::<u16>().ok())
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "There is no such id here; ids are numbers.", Format::Json))
}

fn caller_account(call: &Call) -> Result<(AccountId, Role, state::DeviceId), Response<Body>> {
    match call.caller {
        Caller::Account { account, role, device, .. } => Ok((account, role, device)),
        _ => Err(fail(AuthError::Forbidden("this needs an account's token, not a tool's".into()))),
    }
}

/// A secret no account has: unknown names cost the same hashing time as known ones.
fn decoy() -> Secret {
    Secret { salt: [0x5a; 16], hash: [0; 16] }
}

/// Check a password or PIN with lockout: the attempt takes its place in the budget of `keys` before hashing
/// (blocked keys are refused without hashing); a wrong secret, a refused-busy attempt and an abandoned one all
/// count as failures, logged with the source address (never the secret).
async fn verify(call: &Call, keys: &[Key], what: &'static str, given: &str, stored: Option<Secret>) -> Result<(), AuthError> {
    let guard = &call.ctx.auth;
    let attempt = match guard.lockout.reserve(keys, Instant::now()) {
        Ok(a) => a,
        Err(b) => {
            tracing::warn!(source = %call.origin.addr, what, "attempt refused while locked out");
            return Err(AuthError::Locked(b.0));
        }
    };
    let seat = Seat { source: Some(Source::of(call.origin.addr, call.origin.lan)), lan: call.origin.lan, clean: attempt.clean() };
    let known = stored.is_some();
    let checked = guard.hasher.check(seat, given.to_owned(), stored.unwrap_or_else(decoy)).await;
    if matches!(checked, Ok(true)) && known {
        attempt.succeed();
        return Ok(());
    }
    let block = attempt.fail(Instant::now());
    let origin = lan_word(call.origin.lan);
    if let Err(busy) = checked {
        tracing::warn!(source = %call.origin.addr, origin, what, blocked_secs = block.as_secs(), "sign-in attempt refused busy (counted as a failure)");
        return Err(busy.into());
    }
    tracing::warn!(source = %call.origin.addr, origin, what, blocked_secs = block.as_secs(), "failed sign-in attempt");
    Err(if what == "PIN" { AuthError::WrongPin } else { AuthError::WrongPassword })
}

/// The lockout keys of an attempt for `account`: the account as seen from the caller's side, and the caller's
/// source prefix (see `auth::lockout`).
fn keys(call: &Call, account: &str) -> [Key; 2] {
    [Key::Account(account.to_lowercase(), call.origin.lan), Key::source(call.origin.addr, call.origin.lan)]
}

/// Mint a token and record the device for `account` (runs inside an update).
async fn issue(call: &Call, account: AccountId) -> Result<(String, state::DeviceId), Response<Body>> {
    let client = token::Client::from_headers(call.req.headers());
    let (text, hash) = token::mint();
    let now = crate::auth::now();
    let id = call
        .ctx
        .state
        .update(|s| {
            if s.account(account).is_none() {
                return Err(AuthError::NotFound("that account was just removed".into()));
            }
            home::add_device(s, account, &client, hash, now)
        })
        .await
        .map_err(update_failed)?;
    Ok((text, id))
}

// ---------------------------------------------------------------------------------------------------------
// Server summary, claim, sign-in, sign-out

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
        let b: ClaimBody = body(&mut call).await?;
        let name = home::name("the owner", &b.name).map_err(fail)?;
        if let Some(p) = secret::password_problem(&b.password, &name) {
            return Err(bad(p));
        }
        let sealed = call.ctx.auth.hasher.seal(b.password).await.map_err(|e| fail(e.into()))?;
        let client = token::Client::from_headers(call.req.headers());
        let (text, hash) = token::mint();
        let now = crate::auth::now();
        let (owner, device) = call
            .ctx
            .state
            .update(|s| {
                let owner = home::claim(s, name.clone(), sealed, b.remote_access, now)?;
                let device = home::add_device(s, owner, &client, hash, now)?;
                Ok((owner, device))
            })
            .await
            .map_err(update_failed)?;
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
        let b: SignInBody = body(&mut call).await?;
        let s = call.ctx.state.snapshot();
        // Home members have no password: their names answer like unknown names, after the same decoy hash, so
        // sign-in does not tell which names are members (A-F10).
        let account = s
            .accounts
            .iter()
            .find(|a| a.name.to_lowercase() == b.name.trim().to_lowercase() && a.role != Role::Member)
            .cloned();
        let keys = keys(&call, b.name.trim());
        let stored = account.as_ref().and_then(|a| a.password.clone());
        verify(&call, &keys, "password", &b.password, stored).await.map_err(fail)?;
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
            .await
            .map_err(update_failed)?;
        ok(json!({ "signed_out": true }))
    }
    .await)
}

/// `GET /api/v1/me` (Account): the calling account.
pub async fn me(call: Call) -> Response<Body> {
    reply(async {
        let (account, _, device) = caller_account(&call)?;
        let s = call.ctx.state.snapshot();
        let a = s.account(account).ok_or_else(|| fail(AuthError::NotFound("your account was removed".into())))?;
        let mut v = account_json(a);
        v["device"] = json!(device);
        v["server_secured"] = json!(s.is_secured());
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
        let b: PasswordBody = body(&mut call).await?;
        let (account, _, device) = caller_account(&call)?;
        let s = call.ctx.state.snapshot();
        let a = s.account(account).cloned().ok_or_else(|| fail(AuthError::NotFound("your account was removed".into())))?;
        let Some(stored) = a.password.clone() else {
            return Err(bad("Home members have no password; the owner can set a PIN for you"));
        };
        if let Some(p) = secret::password_problem(&b.new, &a.name) {
            return Err(bad(p));
        }
        verify(&call, &keys(&call, &a.name), "password", &b.current, Some(stored)).await.map_err(fail)?;
        let sealed = call.ctx.auth.hasher.seal(b.new).await.map_err(|e| fail(e.into()))?;
        let revoked = call
            .ctx
            .state
            .update(|s| {
                home::account_mut(s, account, a.role)?.password = Some(sealed);
                Ok(home::revoke_devices(s, account, Some(device)))
            })
            .await
            .map_err(update_failed)?;
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

/// `PUT /api/v1/me/pin` (Account): set or remove the caller's own PIN (proof: the password, or for members the
/// current PIN). Setting any PIN secures the server.
pub async fn set_own_pin(mut call: Call) -> Response<Body> {
    reply(async {
        let b: OwnPinBody = body(&mut call).await?;
        let (account, _, _) = caller_account(&call)?;
        let s = call.ctx.state.snapshot();
        let a = s.account(account).cloned().ok_or_else(|| fail(AuthError::NotFound("your account was removed".into())))?;
        if let Some(p) = b.pin.as_deref().and_then(secret::pin_problem) {
            return Err(bad(p));
        }
        let k = keys(&call, &a.name);
        if let Some(stored) = a.password.clone() {
            let Some(given) = b.current_password else { return Err(bad("send current_password to change your PIN")) };
            verify(&call, &k, "password", &given, Some(stored)).await.map_err(fail)?;
        } else if let Some(stored) = a.pin.clone() {
            let Some(given) = b.current_pin else { return Err(bad("send current_pin to change your PIN")) };
            verify(&call, &k, "PIN", &given, Some(stored)).await.map_err(fail)?;
        }
        let pin_set = b.pin.is_some();
        let sealed = match b.pin {
            Some(p) => Some(call.ctx.auth.hasher.seal(p).await.map_err(|e| fail(e.into()))?),
            None => None,
        };
        let secured = call
            .ctx
            .state
            .update(|s| {
                // Securing the server turns DLNA off: the state update does that (`State::settle`).
                home::account_mut(s, account, a.role)?.pin = sealed;
                Ok(s.is_secured())
            })
            .await
            .map_err(update_failed)?;
        ok(json!({ "has_pin": pin_set, "server_secured": secured }))
    }
    .await)
}

// ---------------------------------------------------------------------------------------------------------
// Home

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
        let b: SwitchBody = body(&mut call).await?;
        let (_, role, _) = caller_account(&call)?;
        let s = call.ctx.state.snapshot();
        let target = s
            .account(b.id)
            .filter(|a| matches!(a.role, Role::Owner | Role::Member))
            .cloned()
            .ok_or_else(|| fail(AuthError::NotFound(format!("there is no Home profile with id {}", b.id))))?;
        match (&target.pin, target.role) {
            (Some(stored), _) => {
                let Some(given) = b.pin else { return Err(bad("this profile has a PIN: send it as pin")) };
                let keys = [Key::Account(format!("#{}", target.id), call.origin.lan), Key::source(call.origin.addr, call.origin.lan)];
                verify(&call, &keys, "PIN", &given, Some(stored.clone())).await.map_err(fail)?;
            }
            (None, Role::Owner) if role != Role::Owner => {
                return Err(fail(AuthError::Forbidden(
                    "the owner's profile has no PIN, so only the owner's password opens it: sign in with it".into(),
                )));
            }
            (None, _) => {}
        }
        let (text, device) = issue(&call, target.id).await?;
        tracing::info!(source = %call.origin.addr, account = target.id, device, "switched Home profile");
        ok(json!({ "token": text, "device": device, "account": account_json(&target) }))
    }
    .await)
}

// ---------------------------------------------------------------------------------------------------------
// Members and friends

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    name: String,
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    shares: Vec<LibraryId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditAccountBody {
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; null: removed; a string: the new PIN.
    #[serde(default)]
    pin: Option<Value>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    shares: Option<Vec<LibraryId>>,
}

fn list(call: &Call, role: Role) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let v: Vec<Value> = s.accounts.iter().filter(|a| a.role == role).map(account_json).collect();
    super::json(&json!({ "accounts": v }))
}

async fn add(mut call: Call, role: Role) -> Answer {
    let b: NewAccountBody = body(&mut call).await?;
    let name = home::name("an account", &b.name).map_err(fail)?;
    if role == Role::Member && b.password.is_some() {
        return Err(bad("Home members have no password; give them a PIN instead"));
    }
    if let Some(p) = b.pin.as_deref().and_then(secret::pin_problem) {
        return Err(bad(p));
    }
    let password = match (role, b.password) {
        (Role::Friend, None) => return Err(bad("a friend needs a password (they sign in with it)")),
        (Role::Friend, Some(p)) => {
            if let Some(problem) = secret::password_problem(&p, &name) {
                return Err(bad(problem));
            }
            Some(p)
        }
        _ => None,
    };
    {
        // Refuse before spending hashing time.
        let s = call.ctx.state.snapshot();
        home::shares(&s, &b.shares).map_err(fail)?;
        if home::name_taken(&s, &name, None) {
            return Err(fail(AuthError::Conflict(format!("the name {:?} is already taken", name.as_str()))));
        }
    }
    let hasher = &call.ctx.auth.hasher;
    let pin = match b.pin {
        Some(p) => Some(hasher.seal(p).await.map_err(|e| fail(e.into()))?),
        None => None,
    };
    let password = match password {
        Some(p) => Some(hasher.seal(p).await.map_err(|e| fail(e.into()))?),
        None => None,
    };
    let now = crate::auth::now();
    let (id, secured) = call
        .ctx
        .state
        .update(|s| {
            let shares = home::shares(s, &b.shares)?;
            let a = Account { id: 0, role, name: name.clone(), password, pin, shares, created: now };
            let id = home::add_account(s, a)?;
            Ok((id, s.is_secured()))
        })
        .await
        .map_err(update_failed)?;
    let s = call.ctx.state.snapshot();
    let mut v = s.account(id).map(account_json).unwrap_or(Value::Null);
    v["server_secured"] = json!(secured);
    created(v)
}

async fn edit(mut call: Call, role: Role) -> Answer {
    let id = id_param(&call)?;
    let b: EditAccountBody = body(&mut call).await?;
    if role == Role::Member && b.password.is_some() {
        return Err(bad("Home members have no password; give them a PIN instead"));
    }
    let name = match &b.name {
        Some(n) => Some(home::name("an account", n).map_err(fail)?),
        None => None,
    };
    enum PinChange {
        Keep,
        Remove,
        Set(String),
    }
    let pin = match b.pin {
        None => PinChange::Keep,
        Some(Value::Null) => PinChange::Remove,
        Some(Value::String(p)) => {
            if let Some(problem) = secret::pin_problem(&p) {
                return Err(bad(problem));
            }
            PinChange::Set(p)
        }
        Some(_) => return Err(bad("pin is a string of 4 to 8 digits, or null to remove it")),
    };
    {
        let s = call.ctx.state.snapshot();
        if !s.accounts.iter().any(|a| a.id == id && a.role == role) {
            return Err(fail(AuthError::NotFound(format!("there is no {} with id {id}", home::role_word(role)))));
        }
        if let Some(sh) = &b.shares {
            home::shares(&s, sh).map_err(fail)?;
        }
        if let Some(n) = &name
            && home::name_taken(&s, n, Some(id))
        {
            return Err(fail(AuthError::Conflict(format!("the name {:?} is already taken", n.as_str()))));
        }
        if let Some(p) = &b.password {
            let n = name.clone().unwrap_or_else(|| s.account(id).map(|a| a.name.clone()).unwrap_or_default());
            if let Some(problem) = secret::password_problem(p, &n) {
                return Err(bad(problem));
            }
        }
    }
    let hasher = &call.ctx.auth.hasher;
    let sealed_pin = match pin {
        PinChange::Set(p) => Some(Some(hasher.seal(p).await.map_err(|e| fail(e.into()))?)),
        PinChange::Remove => Some(None),
        PinChange::Keep => None,
    };
    let sealed_password = match b.password {
        Some(p) => Some(hasher.seal(p).await.map_err(|e| fail(e.into()))?),
        None => None,
    };
    let (revoked, secured) = call
        .ctx
        .state
        .update(|s| {
            let shares = match &b.shares {
                Some(sh) => Some(home::shares(s, sh)?),
                None => None,
            };
            if let Some(n) = &name
                && home::name_taken(s, n, Some(id))
            {
                return Err(AuthError::Conflict(format!("the name {:?} is already taken", n.as_str())));
            }
            let mut revoked = 0;
            let a = home::account_mut(s, id, role)?;
            if let Some(n) = name {
                a.name = n;
            }
            if let Some(p) = sealed_pin {
                a.pin = p;
            }
            if let Some(sh) = shares {
                a.shares = sh;
            }
            if let Some(p) = sealed_password {
                a.password = Some(p);
                // A password change revokes that account's tokens.
                revoked = home::revoke_devices(s, id, None);
            }
            Ok((revoked, s.is_secured()))
        })
        .await
        .map_err(update_failed)?;
    let s = call.ctx.state.snapshot();
    let mut v = s.account(id).map(account_json).unwrap_or(Value::Null);
    v["signed_out_devices"] = json!(revoked);
    v["server_secured"] = json!(secured);
    ok(v)
}

async fn remove(call: Call, role: Role) -> Answer {
    let id = id_param(&call)?;
    let secured = call
        .ctx
        .state
        .update(|s| {
            home::remove_account(s, id, role)?;
            Ok(s.is_secured())
        })
        .await
        .map_err(update_failed)?;
    ok(json!({ "removed": id, "server_secured": secured }))
}

/// `GET /api/v1/members` (Owner).
pub async fn list_members(call: Call) -> Response<Body> {
    list(&call, Role::Member)
}
/// `POST /api/v1/members` (Owner): `{name, pin?, shares?}`. The first member (or any PIN) secures the server.
pub async fn add_member(call: Call) -> Response<Body> {
    reply(add(call, Role::Member).await)
}
/// `PATCH /api/v1/members/{id}` (Owner): `{name?, pin? (null removes), shares?}`.
pub async fn edit_member(call: Call) -> Response<Body> {
    reply(edit(call, Role::Member).await)
}
/// `DELETE /api/v1/members/{id}` (Owner): removes the member and signs out its devices.
pub async fn remove_member(call: Call) -> Response<Body> {
    reply(remove(call, Role::Member).await)
}
/// `GET /api/v1/friends` (Owner).
pub async fn list_friends(call: Call) -> Response<Body> {
    list(&call, Role::Friend)
}
/// `POST /api/v1/friends` (Owner): `{name, password, pin?, shares?}`.
pub async fn add_friend(call: Call) -> Response<Body> {
    reply(add(call, Role::Friend).await)
}
/// `PATCH /api/v1/friends/{id}` (Owner): `{name?, password? (signs out their devices), pin?, shares?}`.
pub async fn edit_friend(call: Call) -> Response<Body> {
    reply(edit(call, Role::Friend).await)
}
/// `DELETE /api/v1/friends/{id}` (Owner).
pub async fn remove_friend(call: Call) -> Response<Body> {
    reply(remove(call, Role::Friend).await)
}

// ---------------------------------------------------------------------------------------------------------
// API tokens

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
        let b: NewTokenBody = body(&mut call).await?;
        let name = home::name("an API token", &b.name).map_err(fail)?;
        let scope = match b.scope.as_str() {
            "read_library" => Scope::ReadLibrary,
            "refresh_library" => Scope::RefreshLibrary,
            "admin" => Scope::Admin,
            _ => return Err(bad("scope is one of read_library, refresh_library, admin")),
        };
        let (text, hash) = token::mint();
        let now = crate::auth::now();
        let id = call
            .ctx
            .state
            .update(|s| home::add_api_token(s, name.clone(), scope, hash, now))
            .await
            .map_err(update_failed)?;
        created(json!({ "id": id, "name": name.as_str(), "scope": scope_name(scope), "token": text, "created": now }))
    }
    .await)
}

/// `DELETE /api/v1/tokens/{id}` (Owner).
pub async fn revoke_token(call: Call) -> Response<Body> {
    reply(async {
        let id = id_param(&call)?;
        call.ctx
            .state
            .update(|s| {
                let before = s.api_tokens.len();
                s.api_tokens.retain(|t| t.id != id);
                if s.api_tokens.len() == before {
                    return Err(AuthError::NotFound(format!("there is no API token with id {id}")));
                }
                Ok(())
            })
            .await
            .map_err(update_failed)?;
        ok(json!({ "revoked": id }))
    }
    .await)
}

// ---------------------------------------------------------------------------------------------------------
// Devices

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
        let b: RenameBody = body(&mut call).await?;
        let t = b.name.trim();
        if t.is_empty() || t.chars().any(char::is_control) {
            return Err(bad("a device name is some text without control characters"));
        }
        let name: heapless::String<{ state::MAX_DEVICE_NAME }> = state::bounded("the device name", t).map_err(|e| fail(e.into()))?;
        call.ctx
            .state
            .update(|s| {
                let d = s.devices.iter_mut().find(|d| d.id == id).ok_or_else(|| AuthError::NotFound(format!("there is no device with id {id}")))?;
                d.name = name.clone();
                Ok(())
            })
            .await
            .map_err(update_failed)?;
        ok(json!({ "id": id, "name": name.as_str() }))
    }
    .await)
}

/// `DELETE /api/v1/devices/{id}` (Owner): revoke; the device gets 401 "sign in again" from now on.
pub async fn revoke_device(call: Call) -> Response<Body> {
    reply(async {
        let id = id_param(&call)?;
        call.ctx
            .state
            .update(|s| {
                let before = s.devices.len();
                s.devices.retain(|d| d.id != id);
                if s.devices.len() == before {
                    return Err(AuthError::NotFound(format!("there is no device with id {id}")));
                }
                Ok(())
            })
            .await
            .map_err(update_failed)?;
        tracing::info!(device = id, "device revoked");
        ok(json!({ "revoked": id }))
    }
    .await)
}

// ---------------------------------------------------------------------------------------------------------
// Network and DLNA settings

fn nets_json(n: &[Net]) -> Vec<String> {
    n.iter().map(|n| n.to_string()).collect()
}

fn network_json(call: &Call, s: &State) -> Value {
    let set = &s.settings;
    json!({
        "lan_networks": nets_json(&set.lan_networks),
        "own_subnets": nets_json(&call.ctx.auth.subnets()),
        "allowed_without_auth": nets_json(&set.allowed_without_auth),
        "allowed_without_auth_ignored": s.is_secured(),
        "treat_wan_ip_as_lan": set.treat_wan_ip_as_lan,
        "trusted_proxies": nets_json(&set.trusted_proxies),
        "host_names": set.host_names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/settings/network` (Owner).
pub async fn network_settings(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    reply(ok(network_json(&call, &s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkBody {
    #[serde(default)]
    lan_networks: Option<Vec<String>>,
    #[serde(default)]
    allowed_without_auth: Option<Vec<String>>,
    #[serde(default)]
    treat_wan_ip_as_lan: Option<bool>,
    #[serde(default)]
    trusted_proxies: Option<Vec<String>>,
    /// Names a request's Host may carry besides the box's own (issue 18; see auth/doors.rs).
    #[serde(default)]
    host_names: Option<Vec<String>>,
}

/// The owner's host names, checked and normalised (`state::host_name`); duplicates after normalising are
/// kept once.
fn parse_host_names(v: &[String]) -> Result<heapless::Vec<state::HostName, { state::MAX_HOST_NAMES }>, Response<Body>> {
    let mut out = heapless::Vec::new();
    for raw in v {
        let n = state::host_name(raw)
            .map_err(|e| bad(format!("host_names: {raw:?} is not usable: {e}")))?;
        if !out.contains(&n) {
            state::push("host names", &mut out, n).map_err(|e| fail(e.into()))?;
        }
    }
    Ok(out)
}

fn parse_nets<const N: usize>(what: &'static str, v: &[String]) -> Result<heapless::Vec<Net, N>, Response<Body>> {
    let mut out = heapless::Vec::new();
    for raw in v {
        let n: Net = raw.parse().map_err(|_| bad(format!("{what}: {raw:?} is not a network like 192.168.1.0/24 or fd00::/8")))?;
        state::push(what, &mut out, n).map_err(|e| fail(e.into()))?;
    }
    Ok(out)
}

/// `PUT /api/v1/settings/network` (Owner): any of the five fields; absent fields stay.
pub async fn set_network_settings(mut call: Call) -> Response<Body> {
    reply(async {
        let b: NetworkBody = body(&mut call).await?;
        let lan = b.lan_networks.as_deref().map(|v| parse_nets("lan_networks", v)).transpose()?;
        let bypass = b.allowed_without_auth.as_deref().map(|v| parse_nets("allowed_without_auth", v)).transpose()?;
        let proxies = b.trusted_proxies.as_deref().map(|v| parse_nets("trusted_proxies", v)).transpose()?;
        let names = b.host_names.as_deref().map(parse_host_names).transpose()?;
        call.ctx
            .state
            .update(|s| {
                let set = &mut s.settings;
                if let Some(v) = lan {
                    set.lan_networks = v;
                }
                if let Some(v) = bypass {
                    set.allowed_without_auth = v;
                }
                if let Some(v) = proxies {
                    set.trusted_proxies = v;
                }
                if let Some(v) = b.treat_wan_ip_as_lan {
                    set.treat_wan_ip_as_lan = v;
                }
                if let Some(v) = names {
                    set.host_names = v;
                }
                Ok::<_, AuthError>(())
            })
            .await
            .map_err(update_failed)?;
        let s = call.ctx.state.snapshot();
        ok(network_json(&call, &s))
    }
    .await)
}

fn dlna_json(s: &State) -> Value {
    let d = &s.settings.dlna;
    json!({
        "enabled": d.enabled,
        "effectively_on": s.dlna_effectively_on(),
        "secured": s.is_secured(),
        "warning_acknowledged": d.reenabled_secured,
        "libraries": d.libraries.as_slice(),
        "warning": DLNA_WARNING,
    })
}

/// `GET /api/v1/settings/dlna` (Owner).
pub async fn dlna_settings(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    reply(ok(dlna_json(&s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DlnaBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    libraries: Option<Vec<LibraryId>>,
    #[serde(default)]
    acknowledge_warning: bool,
}

/// `PUT /api/v1/settings/dlna` (Owner): `{enabled?, libraries?, acknowledge_warning?}`. Turning DLNA on while
/// secured needs `acknowledge_warning: true` (409 with the warning otherwise); turning it off clears the
/// acknowledgement.
pub async fn set_dlna_settings(mut call: Call) -> Response<Body> {
    reply(async {
        let b: DlnaBody = body(&mut call).await?;
        call.ctx
            .state
            .update(|s| {
                let libraries = match &b.libraries {
                    Some(l) => Some(home::shares(s, l)?),
                    None => None,
                };
                let secured = s.is_secured();
                let d = &mut s.settings.dlna;
                let on = b.enabled.unwrap_or(d.enabled);
                if on && secured && !d.reenabled_secured && (b.enabled == Some(true) || b.acknowledge_warning) {
                    if !b.acknowledge_warning {
                        return Err(AuthError::Conflict(format!("{DLNA_WARNING} Send acknowledge_warning: true to turn it on.")));
                    }
                    d.reenabled_secured = true;
                }
                if !on {
                    d.reenabled_secured = false;
                }
                d.enabled = on;
                if let Some(l) = libraries {
                    d.libraries = l;
                }
                Ok(())
            })
            .await
            .map_err(update_failed)?;
        let s = call.ctx.state.snapshot();
        tracing::info!(dlna_on = s.dlna_effectively_on(), "DLNA settings changed");
        ok(dlna_json(&s))
    }
    .await)
}
