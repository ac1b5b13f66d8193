//! Home members and friends: one set of handlers for both, generic over the role ([`People`]). The route
//! table names `list::<Members>`, `add::<Friends>` and so on; what differs between the roles (members have a
//! PIN and no password, friends sign in with a password) is decided from the role, in one place.

use super::{account_json, created, id_param, ok};
use crate::auth::{AuthError, home, secret};
use crate::http::body;
use crate::http::refused::{Answer, Refused, reply};
use crate::http::routes::Call;
use crate::http::Body;
use crate::state::{Account, AccountId, LibraryId, Name, Role, Secret};
use hyper::Response;
use serde::Deserialize;
use serde_json::{Value, json};

/// Which accounts a set of handlers manages.
pub trait People: Send + 'static {
    /// The role of those accounts.
    const ROLE: Role;
}

/// Home members (`/api/v1/members`): a PIN, no password; the first one secures the server.
pub struct Members;

impl People for Members {
    const ROLE: Role = Role::Member;
}

/// Friends (`/api/v1/friends`): sign in with a password, see the libraries shared with them.
pub struct Friends;

impl People for Friends {
    const ROLE: Role = Role::Friend;
}

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

/// `GET /api/v1/members`, `GET /api/v1/friends` (Owner).
pub async fn list<P: People>(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let v: Vec<Value> = s.accounts.iter().filter(|a| a.role == P::ROLE).map(account_json).collect();
    reply(ok(json!({ "accounts": v })))
}

/// `POST /api/v1/members` `{name, pin?, shares?}` (the first member, or any PIN, secures the server);
/// `POST /api/v1/friends` `{name, password, pin?, shares?}` (Owner).
pub async fn add<P: People>(call: Call) -> Response<Body> {
    reply(add_account(call, P::ROLE).await)
}

/// `PATCH /api/v1/members/{id}` `{name?, pin? (null removes), shares?}`; `PATCH /api/v1/friends/{id}`
/// `{name?, password? (signs out their devices), pin?, shares?}` (Owner).
pub async fn edit<P: People>(call: Call) -> Response<Body> {
    reply(edit_account(call, P::ROLE).await)
}

/// `DELETE /api/v1/members/{id}`, `DELETE /api/v1/friends/{id}` (Owner): the account and its devices go.
pub async fn remove<P: People>(call: Call) -> Response<Body> {
    reply(remove_account(call, P::ROLE).await)
}

/// Members have no password; friends need one that passes `secret::password_problem`.
fn password_for(role: Role, name: &str, password: Option<String>, adding: bool) -> Result<Option<String>, Refused> {
    match (role, password) {
        (Role::Member, Some(_)) => Err(Refused::bad("Home members have no password; give them a PIN instead")),
        (Role::Friend, None) if adding => Err(Refused::bad("a friend needs a password (they sign in with it)")),
        (_, Some(p)) => match secret::password_problem(&p, name) {
            Some(problem) => Err(Refused::bad(problem)),
            None => Ok(Some(p)),
        },
        (_, None) => Ok(None),
    }
}

/// Refuse what the stored state already refuses, before spending hashing time: unknown libraries, a taken name.
fn precheck(call: &Call, name: Option<&Name>, except: Option<AccountId>, shares: Option<&[LibraryId]>) -> Result<(), Refused> {
    let s = call.ctx.state.snapshot();
    if let Some(sh) = shares {
        home::shares(&s, sh)?;
    }
    if let Some(n) = name
        && home::name_taken(&s, n, except)
    {
        return Err(AuthError::Conflict(format!("the name {:?} is already taken", n.as_str())).into());
    }
    Ok(())
}

async fn seal(call: &Call, secret: Option<String>) -> Result<Option<Secret>, Refused> {
    match secret {
        Some(p) => Ok(Some(call.ctx.auth.hasher.seal(p).await.map_err(AuthError::from)?)),
        None => Ok(None),
    }
}

async fn add_account(mut call: Call, role: Role) -> Answer {
    let b: NewAccountBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
    let name = home::name("an account", &b.name)?;
    if role == Role::Member && b.password.is_some() {
        return Err(Refused::bad("Home members have no password; give them a PIN instead"));
    }
    if let Some(p) = b.pin.as_deref().and_then(secret::pin_problem) {
        return Err(Refused::bad(p));
    }
    let password = password_for(role, &name, b.password, true)?;
    precheck(&call, Some(&name), None, Some(&b.shares))?;
    let pin = seal(&call, b.pin).await?;
    let password = seal(&call, password).await?;
    let now = crate::system::clock::now();
    let (id, secured) = call
        .ctx
        .state
        .update(|s| {
            let shares = home::shares(s, &b.shares)?;
            let a = Account { id: 0, role, name: name.clone(), password, pin, shares, created: now };
            let id = home::add_account(s, a)?;
            Ok::<_, AuthError>((id, s.is_secured()))
        })
        .await?;
    let s = call.ctx.state.snapshot();
    let mut v = s.account(id).map(account_json).unwrap_or(Value::Null);
    v["server_secured"] = json!(secured);
    created(v)
}

/// A PIN edit: absent keeps it, null removes it, a string sets it.
enum PinChange {
    Keep,
    Remove,
    Set(String),
}

impl PinChange {
    fn of(v: Option<Value>) -> Result<PinChange, Refused> {
        match v {
            None => Ok(PinChange::Keep),
            Some(Value::Null) => Ok(PinChange::Remove),
            Some(Value::String(p)) => match secret::pin_problem(&p) {
                Some(problem) => Err(Refused::bad(problem)),
                None => Ok(PinChange::Set(p)),
            },
            Some(_) => Err(Refused::bad("pin is a string of 4 to 8 digits, or null to remove it")),
        }
    }
}

/// An edit with its secrets sealed, ready to run inside the update.
struct Edit {
    name: Option<Name>,
    /// `Some(None)` removes the PIN.
    pin: Option<Option<Secret>>,
    password: Option<Secret>,
    shares: Option<Vec<LibraryId>>,
}

impl Edit {
    /// Apply to account `id`; answers the devices signed out (a password change signs them all out) and
    /// whether the server is secured afterwards.
    fn apply(self, s: &mut crate::state::State, id: AccountId, role: Role) -> Result<(usize, bool), AuthError> {
        let shares = self.shares.as_deref().map(|sh| home::shares(s, sh)).transpose()?;
        if let Some(n) = &self.name
            && home::name_taken(s, n, Some(id))
        {
            return Err(AuthError::Conflict(format!("the name {:?} is already taken", n.as_str())));
        }
        let a = home::account_mut(s, id, role)?;
        if let Some(n) = self.name {
            a.name = n;
        }
        if let Some(p) = self.pin {
            a.pin = p;
        }
        if let Some(sh) = shares {
            a.shares = sh;
        }
        let mut revoked = 0;
        if let Some(p) = self.password {
            a.password = Some(p);
            revoked = home::revoke_devices(s, id, None);
        }
        Ok((revoked, s.is_secured()))
    }
}

async fn edit_account(mut call: Call, role: Role) -> Answer {
    let id = id_param(&call)?;
    let b: EditAccountBody = body::json_quoting(&mut call.req, body::Quote::Never).await?;
    if role == Role::Member && b.password.is_some() {
        return Err(Refused::bad("Home members have no password; give them a PIN instead"));
    }
    let name = b.name.as_deref().map(|n| home::name("an account", n)).transpose()?;
    let pin = PinChange::of(b.pin)?;
    let current = call.ctx.state.snapshot().accounts.iter().find(|a| a.id == id && a.role == role).map(|a| a.name.clone());
    let Some(current) = current else {
        return Err(AuthError::NotFound(format!("there is no {} with id {id}", home::role_word(role))).into());
    };
    precheck(&call, name.as_ref(), Some(id), b.shares.as_deref())?;
    let password = password_for(role, name.as_ref().unwrap_or(&current), b.password, false)?;
    let pin = match pin {
        PinChange::Set(p) => Some(seal(&call, Some(p)).await?),
        PinChange::Remove => Some(None),
        PinChange::Keep => None,
    };
    let edit = Edit { name, pin, password: seal(&call, password).await?, shares: b.shares };
    let (revoked, secured) = call.ctx.state.update(|s| edit.apply(s, id, role)).await?;
    let s = call.ctx.state.snapshot();
    let mut v = s.account(id).map(account_json).unwrap_or(Value::Null);
    v["signed_out_devices"] = json!(revoked);
    v["server_secured"] = json!(secured);
    ok(v)
}

async fn remove_account(call: Call, role: Role) -> Answer {
    let id = id_param(&call)?;
    let secured = call
        .ctx
        .state
        .update(|s| {
            home::remove_account(s, id, role)?;
            Ok::<_, AuthError>(s.is_secured())
        })
        .await?;
    ok(json!({ "removed": id, "server_secured": secured }))
}
