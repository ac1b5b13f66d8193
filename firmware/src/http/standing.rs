//! Whether the caller of a running stream still stands (review finding A-F11): the access rule, asked again
//! with the same token against the newest state. The stream room keeps the running streams and asks at every
//! state change ([`crate::stream::Streams::recheck`]); this room owns the question, in [`still_admitted`].
//!
//! A stream is held by the token it was admitted with (its hash; never the text), so a device removed and a new
//! one given the same id does not inherit the old stream, and a password change (which signs the account's other
//! devices out) ends those devices' streams.

use crate::auth::{Access, Caller, Identity, Origin, decide, token};
use crate::state::{LibraryId, State, TokenHash};
use crate::stream::Standing;

/// The [`Standing`] of a stream admitted for `caller` from `origin` under `state` (the state it was admitted
/// under, which names the caller's token).
pub fn standing(caller: &Caller, origin: Origin, state: &State) -> Standing {
    let held: Option<TokenHash> = match *caller {
        Caller::Account { device, .. } => state.devices.iter().find(|d| d.id == device).map(|d| d.token),
        Caller::Tool { token, .. } => state.api_tokens.iter().find(|t| t.id == token).map(|t| t.token),
        Caller::Bypass | Caller::Anyone | Caller::Dlna { .. } => None,
    };
    let by_token = matches!(caller, Caller::Account { .. } | Caller::Tool { .. });
    Box::new(move |s: &State, library: LibraryId| {
        if by_token && held.is_none() {
            return false;
        }
        still_admitted(held.as_ref(), &origin, library, s)
    })
}

/// The re-check, in one place: the caller holding `held` (None: no token, a bypass network) from `origin` may
/// still read `library` under `state`. It is the fast path's admission (`Access::Libraries`) plus the
/// caller's visible libraries, exactly as a new part request would be decided.
pub fn still_admitted(held: Option<&TokenHash>, origin: &Origin, library: LibraryId, state: &State) -> bool {
    let identity = match held {
        Some(h) => token::identify_hash(h, state),
        None => Identity::Anonymous,
    };
    match decide(Access::Libraries, &identity, origin, state) {
        Ok(caller) => caller.sees().allows(library),
        Err(_) => false,
    }
}
