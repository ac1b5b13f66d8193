//! Certificates browsers trust, from an ACME CA (RFC 8555): for the public IPv4 address (RFC 8738 IP
//! identifiers; Let's Encrypt's `shortlived` profile where the CA offers profiles) or for a domain the owner
//! enters in `Settings::acme`. HTTP-01 (RFC 8555 §8.3) through an external port-80 mapping to Hearth, made
//! the same way as the main mapping ([`super::mapping::map_any`]) and deleted once the order is done.
//!
//! Owns: when to order and renew ([`plan`], sans-IO: at 1/3 of the validity left, backoff after a failure),
//! the HTTP-01 answers while an order is pending ([`Control::answer`], served by the http room's challenge
//! route), what the Network screen says about the certificate ([`View`]), the ACME account and which
//! certificate it issued (`State::acme`), and the task that does the order ([`order`], through our own HTTPS
//! client [`transport`] with timeouts and size caps).
//! Must not touch: the listener or rustls server config (the http room serves whatever `State::tls` holds and
//! reloads it when it changes); an owner's own certificate (never replaced: ACME waits until the owner goes
//! back to one Hearth makes).
//!
//! On failure nothing stored changes: the self-signed certificate stays and [`View`] says why.

pub mod order;
pub mod transport;

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// The first retry after a failed order; doubled after each further failure up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(60);
/// The longest wait between failed orders (a CA's rate limits allow a few failures an hour).
pub const BACKOFF_MAX: Duration = Duration::from_secs(6 * 3600);
/// Pending HTTP-01 answers at most (one per identifier of the one order we run).
pub const MAX_ANSWERS: usize = 4;

/// Where getting a certificate stands, as the Network/TLS screen shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The owner did not ask for one.
    #[default]
    Off,
    /// Asked for, but something must come first (remote access, a public address, the owner's certificate).
    Waiting,
    /// An order runs now.
    Ordering,
    /// The CA's certificate is served.
    Issued,
    /// The last order failed; the self-signed certificate stays.
    Failed,
}

/// What the ACME part of the TLS screen shows: one plain sentence, the protocol detail under it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct View {
    /// Where it stands.
    pub stage: Stage,
    /// One sentence an owner can act on.
    pub sentence: String,
    /// The CA's or the network's own words (shown under "Show details").
    pub detail: Option<String>,
    /// The name or address the certificate is (to be) for.
    pub identifier: Option<String>,
    /// The CA's host (from the directory URL).
    pub ca: Option<String>,
    /// Milliseconds from the order's start to the certificate being stored (and so served).
    pub order_ms: Option<u64>,
    /// Unix seconds of the next order or renewal, when one is planned.
    pub next_order: Option<u64>,
    /// Orders tried since start (tests and the page see that a forced renewal ran).
    pub orders: u64,
}

/// Shared between the ACME task and the http room: the published view, the pending HTTP-01 answers, and the
/// "renew now" button.
#[derive(Clone)]
pub struct Control {
    view: Arc<watch::Sender<View>>,
    renew: Arc<watch::Sender<u64>>,
    answers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            view: Arc::new(watch::channel(View::default()).0),
            renew: Arc::new(watch::channel(0).0),
            answers: Arc::default(),
        }
    }
}

impl Control {
    /// The view as last published.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// Order a new certificate now, whatever the schedule says (the owner's "Renew now").
    pub fn renew_now(&self) {
        self.renew.send_modify(|n| *n += 1);
    }

    /// The key authorization for an HTTP-01 token (RFC 8555 §8.3), only while an order with that exact token
    /// is pending; None for anything else.
    pub fn answer(&self, token: &str) -> Option<String> {
        let answers = self.answers.lock().unwrap();
        answers.iter().find(|(t, _)| t == token).map(|(_, a)| a.clone())
    }

    fn publish(&self, f: impl FnOnce(&mut View)) {
        self.view.send_modify(f);
    }

    fn subscribe_renew(&self) -> watch::Receiver<u64> {
        self.renew.subscribe()
    }

    fn offer(&self, token: String, key_authorization: String) {
        let mut answers = self.answers.lock().unwrap();
        if answers.len() < MAX_ANSWERS {
            answers.push((token, key_authorization));
        }
    }

    fn withdraw_all(&self) {
        self.answers.lock().unwrap().clear();
    }
}

/// What the served certificate is, as [`plan`] needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// Nothing yet (not claimed), or Hearth's own self-signed certificate.
    SelfSigned,
    /// The owner installed one: ACME leaves it alone.
    Owners,
    /// Ours from the CA, valid from..until (unix seconds), for this identifier.
    Acme { not_before: i64, not_after: i64 },
}

/// What the task should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing to do; the sentence says why (shown as [`Stage::Off`] or [`Stage::Waiting`]).
    Idle(Stage, &'static str),
    /// Order at this unix time (now or in the past = at once).
    OrderAt(i64),
}

/// The inputs of [`plan`]: the owner's wish, what is served, and how the last orders went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// `Settings::acme.enabled` on a claimed server.
    pub wanted: bool,
    /// Remote access is on and successful (there is a public address and a router to ask for port 80), or the
    /// owner gave a domain (their DNS points at us; port 80 is their business).
    pub reachable: bool,
    /// What `State::tls` holds.
    pub served: Served,
    /// The identifier changed since the served certificate was issued (new public address or domain).
    pub identifier_changed: bool,
    /// Failed orders in a row, and when the last one failed.
    pub failures: u32,
    /// Unix seconds of the last failure.
    pub failed_at: i64,
}

/// When to order (sans-IO): at once when nothing of ours is served or the identifier changed; otherwise when
/// a third of the certificate's validity is left (Let's Encrypt's advice for 6-day certificates as for 90-day
/// ones); never sooner than the backoff after failures ([`backoff`]).
pub fn plan(f: &Facts) -> Next {
    if !f.wanted {
        return Next::Idle(Stage::Off, "Certificates from an ACME CA are off; Hearth serves its own self-signed certificate.");
    }
    if f.served == Served::Owners {
        return Next::Idle(Stage::Waiting, "You installed your own certificate; go back to Hearth's certificate to get one from the CA.");
    }
    if !f.reachable {
        return Next::Idle(
            Stage::Waiting,
            "Waiting for remote access to work: the CA checks this server through your public address, port 80.",
        );
    }
    let due = match f.served {
        Served::Acme { not_before, not_after } if !f.identifier_changed => renew_at(not_before, not_after),
        _ => i64::MIN,
    };
    let retry = if f.failures == 0 { i64::MIN } else { f.failed_at + backoff(f.failures).as_secs() as i64 };
    Next::OrderAt(due.max(retry))
}

/// The renewal time: when a third of the validity is left.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_after - (not_after - not_before).max(0) / 3
}

/// The wait after `failures` failed orders in a row: [`BACKOFF_FIRST`], doubled each time, at most
/// [`BACKOFF_MAX`].
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST.saturating_mul(1 << shift).min(BACKOFF_MAX)
}

/// The host of an `https://host[:port]/path` URL, for "ACME from <CA>".
pub fn ca_name(directory_url: &str) -> String {
    let rest = directory_url.split_once("://").map_or(directory_url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

/// `notBefore` and `notAfter` of a DER certificate, unix seconds ([`crate::wire::certificate::validity`], the
/// reader the http room uses too); `None` for a certificate without a readable validity.
pub fn validity(cert: &[u8]) -> Option<(i64, i64)> {
    crate::wire::certificate::validity(cert).ok()
}

#[cfg(test)]
mod tests;
