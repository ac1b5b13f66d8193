//! HTTP on TCP 32400: listener, dispatch, the route table and the API handlers.
//!
//! Owns: accepting connections, reading request heads (httparse, 16 KiB limit, head timeout), handing each
//! connection to the stream fast path or to hyper (through [`rewind::Rewind`], which replays the bytes already
//! read), the route table ([`routes`]) and error bodies a person can act on.
//! Must not touch: the flash store (it goes through the state handle) or file bytes of media (stream room).
//!
//! Dispatch (DESIGN.md "Dispatch"): hyper cannot sendfile (hyper#140, hyper#3026), so the head of each request
//! is read here first; media GET/HEAD go to the fast path, everything else to hyper's HTTP/1 connection.

pub mod account_api;
pub mod api;
pub mod body;
pub mod conn;
pub mod deadline;
pub mod doors;
pub mod exchange;
pub mod folders;
pub mod ktls;
pub mod libraries;
pub mod plex;
pub mod refused;
pub mod remote;
pub mod rewind;
pub mod routes;
pub mod standing;
pub mod system_api;
pub mod tls;
pub mod tls_api;
pub mod update_api;
pub mod web;

use crate::state::Handle;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Response, StatusCode, header};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use conn::serve;

/// The head limits are the wire room's (one head parser for every door).
pub use crate::wire::{HEAD_TIMEOUT, MAX_HEAD};
/// Largest request body accepted by API handlers; larger gets 413.
pub const MAX_BODY: usize = 64 * 1024;

/// The body type of every response Hearth sends: boxed so handlers, errors and the page share one type.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// What every handler can reach.
pub struct Ctx {
    /// The state handle: snapshots to read, validated updates to change it.
    pub state: Handle,
    /// When the server started, for the uptime that `/health` and the system API report.
    pub started: Instant,
    /// Neither flash slot held a valid record at start; running on defaults.
    pub recovered_from_damage: bool,
    /// The data directory the server runs on (state file, catalog index).
    pub data_dir: PathBuf,
    /// The HTTPS acceptor cached for the certificate in the state.
    pub certificates: tls::Certificates,
    /// The auth room's runtime part: hashing, lockout, last-seen times, own subnets.
    pub auth: std::sync::Arc<crate::auth::Guard>,
    /// The libraries' items (library room).
    pub library: Arc<crate::library::Catalog>,
    /// Stream counters and the pacer (stream room).
    pub streams: Arc<crate::stream::Streams>,
    /// Reboot/power-off requests to init mode; `None` under `hearth serve` on a host.
    pub power: Option<crate::system::PowerSwitch>,
    /// Remote-access status and the Retry button (the remote room's task publishes here).
    pub remote: crate::remote::Control,
}

impl Ctx {
    /// Also opens the library catalog (index file in `data_dir`), starts its scanner and watcher, and has the
    /// pacer follow the state. Call inside the tokio runtime.
    pub fn new(state: Handle, recovered_from_damage: bool, data_dir: PathBuf) -> Ctx {
        let library = crate::library::Catalog::open(&data_dir, state.clone());
        library.start();
        let streams = crate::stream::Streams::new();
        streams.follow(state.subscribe());
        Ctx {
            state,
            started: Instant::now(),
            recovered_from_damage,
            data_dir,
            certificates: Default::default(),
            auth: std::sync::Arc::new(crate::auth::Guard::new()),
            library,
            streams,
            power: None,
            remote: Default::default(),
        }
    }
}

/// A whole body from bytes already in memory.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// An empty body (for 204, HEAD and redirects).
pub fn empty() -> Body {
    full(Bytes::new())
}

/// How the client wants its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    /// The format the request's `Accept` asks for: JSON when it names `application/json`, XML (Plex's
    /// default) otherwise.
    pub fn of(headers: &hyper::HeaderMap) -> Format {
        let json = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if json { Format::Json } else { Format::Xml }
    }
}

/// An error answer: a status and a sentence that says what to do.
pub fn error(status: StatusCode, message: &str, format: Format) -> Response<Body> {
    let (ctype, body) = match format {
        Format::Json => (
            "application/json",
            serde_json::json!({ "error": { "status": status.as_u16(), "message": message } })
                .to_string(),
        ),
        Format::Xml => (
            "text/xml; charset=utf-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response code=\"{}\" status=\"{}\"/>\n",
                status.as_u16(),
                xml_escape(message)
            ),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .body(full(body))
        .expect("valid response")
}

/// JSON answer with 200.
pub fn json(value: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(value.to_string()))
        .expect("valid response")
}

/// XML escaping lives in the wire room (shared with DLNA); kept here for the handlers that write XML.
pub use crate::wire::xml_escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
