//! The one mapping from the rooms' errors to HTTP: a status and a sentence a person can act on.
//!
//! Every API handler returns `Result<Response, Refused>` ([`Answer`]) and lets `?` turn a room's error into a
//! [`Refused`] through the `From` impls here:
//!
//! | error                          | status                                                         |
//! |--------------------------------|----------------------------------------------------------------|
//! | `auth::AuthError`              | its own (`AuthError::status`): 400/401/403/404/409/429/503     |
//! | `state::StateError`            | 409 full or a taken name, 404 missing, 400 otherwise           |
//! | `state::UpdateError<E>`        | `E`'s, the `StateError`'s, or 503 when flash refused the write |
//! | `library::LibraryError`        | 400 (a folder the owner named), 503 (the index file)           |
//! | `http::body::BodyError`        | 413 / 408 / 400 (see `body`)                                   |
//! | `remote::settings::Refusal`    | 409 not claimed, 400 a bad setting                             |
//! | `dlna::switch::Refusal`        | 409 with the warning to acknowledge                            |
//!
//! Must not touch: what the errors mean (their rooms), or anything stored.

use super::{Body, Format, error};
use crate::auth::AuthError;
use crate::state::{StateError, UpdateError};
use hyper::{Response, StatusCode, header};

/// A handler's answer: the response, or the refusal to render.
pub type Answer = Result<Response<Body>, Refused>;

/// A refusal: the status and the sentence the client shows (`{"error": {"status", "message"}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// Seconds for a `Retry-After` header (lockout, busy hasher).
    pub retry_after: Option<u64>,
}

impl Refused {
    /// A refusal with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Refused {
        Refused { status, message: message.into(), retry_after: None }
    }

    /// 400: the request itself is wrong.
    pub fn bad(message: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: what the request names is not there.
    pub fn not_found(message: impl Into<String>) -> Refused {
        Refused::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request clashes with what is stored.
    pub fn conflict(message: impl Into<String>) -> Refused {
        Refused::new(StatusCode::CONFLICT, message)
    }

    /// The error response in `format` (the JSON API always answers JSON).
    pub fn response(self, format: Format) -> Response<Body> {
        let mut r = error(self.status, &self.message, format);
        if let Some(secs) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        r
    }
}

impl From<Refused> for Response<Body> {
    fn from(r: Refused) -> Response<Body> {
        r.response(Format::Json)
    }
}

/// The response of an [`Answer`], refusals rendered as JSON.
pub fn reply(a: Answer) -> Response<Body> {
    a.unwrap_or_else(Response::from)
}

impl From<AuthError> for Refused {
    fn from(e: AuthError) -> Refused {
        let e = match e {
            AuthError::State(e) => return e.into(),
            e => e,
        };
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let retry_after = match &e {
            AuthError::Locked(d) => Some(d.as_secs().max(1)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(2),
            _ => None,
        };
        Refused { status, message: e.to_string(), retry_after }
    }
}

impl From<StateError> for Refused {
    fn from(e: StateError) -> Refused {
        match e {
            StateError::Full { what, max } => {
                Refused::conflict(format!("Hearth holds at most {max} {what}; remove one first."))
            }
            StateError::Duplicate(name) => Refused::conflict(format!("the name {name:?} is already taken; pick another")),
            e @ StateError::Missing { .. } => Refused::not_found(e.to_string()),
            e => Refused::bad(e.to_string()),
        }
    }
}

impl<E: Into<Refused>> From<UpdateError<E>> for Refused {
    fn from(e: UpdateError<E>) -> Refused {
        match e {
            UpdateError::Rejected(e) => e.into(),
            UpdateError::Invalid(e) => e.into(),
            UpdateError::Store(m) => Refused::new(StatusCode::SERVICE_UNAVAILABLE, m),
        }
    }
}

impl From<crate::library::LibraryError> for Refused {
    fn from(e: crate::library::LibraryError) -> Refused {
        match e {
            crate::library::LibraryError::Index { .. } => Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            e => Refused::bad(e.to_string()),
        }
    }
}

impl From<crate::dlna::switch::Refusal> for Refused {
    fn from(r: crate::dlna::switch::Refusal) -> Refused {
        Refused::conflict(r.sentence())
    }
}

impl From<crate::remote::settings::Refusal> for Refused {
    fn from(r: crate::remote::settings::Refusal) -> Refused {
        let status = match r {
            crate::remote::settings::Refusal::NotClaimed => StatusCode::CONFLICT,
            crate::remote::settings::Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        Refused::new(status, r.sentence())
    }
}

impl From<std::convert::Infallible> for Refused {
    fn from(e: std::convert::Infallible) -> Refused {
        match e {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_room_error_has_its_status() {
        assert_eq!(Refused::from(AuthError::WrongPin).status, StatusCode::UNAUTHORIZED);
        let locked = Refused::from(AuthError::Locked(Duration::from_secs(30)));
        assert_eq!((locked.status, locked.retry_after), (StatusCode::TOO_MANY_REQUESTS, Some(30)));
        let full = Refused::from(StateError::Full { what: "libraries", max: 16 });
        assert!(full.status == StatusCode::CONFLICT && full.message.contains("at most 16"), "{full:?}");
        let gone = Refused::from(StateError::Missing { what: "library", id: 3 });
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        let flash: UpdateError<AuthError> = UpdateError::Store("write failed".into());
        assert_eq!(Refused::from(flash).status, StatusCode::SERVICE_UNAVAILABLE);
        let inner: UpdateError<AuthError> = UpdateError::Rejected(AuthError::Conflict("taken".into()));
        assert_eq!(Refused::from(inner).status, StatusCode::CONFLICT);
        let r = Refused::from(AuthError::Locked(Duration::from_secs(5))).response(Format::Json);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    }
}
