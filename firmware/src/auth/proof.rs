//! Proving who you are with a secret: checking a password or PIN under the lockout ([`Guard::verify`]), and
//! which proof a change of one's own PIN needs ([`pin_change`]).
//!
//! Owns: the order of a checked attempt (take a place in the lockout budget of its [`Key`]s before hashing; a
//! blocked key is refused without hashing; unknown names cost a decoy hash like known ones; a wrong secret, a
//! busy refusal and an abandoned attempt all count as failures) and the log line of each failure, with the
//! source address and never the secret. The http room calls these; it decides nothing about secrets itself.

use super::lockout::{Key, Source};
use super::{AuthError, Guard, Origin, line::Seat};
use crate::state::{Account, Secret};
use std::time::Instant;

/// Which secret an attempt checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An owner's or friend's password.
    Password,
    /// A 4-8 digit PIN.
    Pin,
}

impl Kind {
    /// The word for logs and messages.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::Pin => "PIN",
        }
    }
}

/// A secret the caller gave, and the sealed one it must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// Password or PIN.
    pub kind: Kind,
    /// What the caller sent.
    pub given: String,
    /// What the account has.
    pub stored: Secret,
}

/// The proof an account must give to set or remove its own PIN (`PUT /api/v1/me/pin`): its password when it
/// has one (owner, friends); for a Home member (no password) its current PIN when one is set; nothing for a
/// member without a PIN yet. Refused (400) when the needed proof was not sent.
pub fn pin_change(account: &Account, current_password: Option<String>, current_pin: Option<String>) -> Result<Option<Proof>, AuthError> {
    let need = |what: &str| AuthError::BadInput(format!("send {what} to change your PIN"));
    if let Some(stored) = account.password.clone() {
        let given = current_password.ok_or_else(|| need("current_password"))?;
        return Ok(Some(Proof { kind: Kind::Password, given, stored }));
    }
    if let Some(stored) = account.pin.clone() {
        let given = current_pin.ok_or_else(|| need("current_pin"))?;
        return Ok(Some(Proof { kind: Kind::Pin, given, stored }));
    }
    Ok(None)
}

/// The lockout keys of an attempt on the account called `name`: the account as seen from the caller's side,
/// and the caller's source prefix (see `auth::lockout`).
pub fn keys(origin: &Origin, name: &str) -> [Key; 2] {
    [Key::Account(name.to_lowercase(), origin.lan), Key::source(origin.addr, origin.lan)]
}

/// A secret no account has: unknown names cost the same hashing time as known ones.
fn decoy() -> Secret {
    Secret { salt: [0x5a; 16], hash: [0; 16] }
}

fn lan_word(lan: bool) -> &'static str {
    if lan { "lan" } else { "wan" }
}

impl Guard {
    /// Check `given` against `stored` (`None`: no such account, checked against a decoy and refused) from
    /// `origin`, with lockout on `keys`. Every failure is logged with the source address.
    pub async fn verify(&self, origin: &Origin, keys: &[Key], kind: Kind, given: &str, stored: Option<Secret>) -> Result<(), AuthError> {
        let what = kind.word();
        let attempt = match self.lockout.reserve(keys, Instant::now()) {
            Ok(a) => a,
            Err(b) => {
                tracing::warn!(source = %origin.addr, what, "attempt refused while locked out");
                return Err(AuthError::Locked(b.0));
            }
        };
        let seat = Seat { source: Some(Source::of(origin.addr, origin.lan)), lan: origin.lan, clean: attempt.clean() };
        let known = stored.is_some();
        let checked = self.hasher.check(seat, given.to_owned(), stored.unwrap_or_else(decoy)).await;
        if matches!(checked, Ok(true)) && known {
            attempt.succeed();
            return Ok(());
        }
        let block = attempt.fail(Instant::now());
        let side = lan_word(origin.lan);
        if let Err(busy) = checked {
            tracing::warn!(source = %origin.addr, origin = side, what, blocked_secs = block.as_secs(), "sign-in attempt refused busy (counted as a failure)");
            return Err(busy.into());
        }
        tracing::warn!(source = %origin.addr, origin = side, what, blocked_secs = block.as_secs(), "failed sign-in attempt");
        Err(match kind {
            Kind::Pin => AuthError::WrongPin,
            Kind::Password => AuthError::WrongPassword,
        })
    }

    /// [`Guard::verify`] of a [`Proof`].
    pub async fn prove(&self, origin: &Origin, keys: &[Key], proof: Proof) -> Result<(), AuthError> {
        self.verify(origin, keys, proof.kind, &proof.given, Some(proof.stored)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Role;

    fn account(role: Role, password: bool, pin: bool) -> Account {
        let secret = |b| Secret { salt: [b; 16], hash: [b; 16] };
        Account {
            id: 7,
            role,
            name: "kid".try_into().unwrap(),
            password: password.then(|| secret(1)),
            pin: pin.then(|| secret(2)),
            shares: Default::default(),
            created: 0,
        }
    }

    #[test]
    fn an_account_with_a_password_proves_with_it() {
        let a = account(Role::Friend, true, true);
        let p = pin_change(&a, Some("pw".into()), Some("1234".into())).unwrap().unwrap();
        assert_eq!((p.kind, p.given.as_str(), p.stored), (Kind::Password, "pw", a.password.clone().unwrap()));
        let e = pin_change(&a, None, Some("1234".into())).unwrap_err();
        assert!(e.to_string().contains("current_password") && e.status() == 400, "a PIN is not enough: {e}");
    }

    #[test]
    fn a_member_proves_with_the_current_pin_or_nothing_before_the_first() {
        let a = account(Role::Member, false, true);
        let p = pin_change(&a, None, Some("1234".into())).unwrap().unwrap();
        assert_eq!(p.kind, Kind::Pin);
        assert!(pin_change(&a, Some("pw".into()), None).unwrap_err().to_string().contains("current_pin"));
        assert_eq!(pin_change(&account(Role::Member, false, false), None, None).unwrap(), None);
    }
}
