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
pub mod conn;
pub mod deadline;
pub mod doors;
pub mod exchange;
pub mod libraries;
pub mod plex;
pub mod remote;
pub mod rewind;
pub mod routes;
pub mod standing;
pub mod system_api;
pub mod tls;
pub mod tls_api;
pub mod update_api;
pub mod web;
pub mod workers;

use crate::state::Handle;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Response, StatusCode, header};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use conn::serve;

/// Largest request head accepted; larger gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// A client must send its whole request head within this time.
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Largest request body accepted by API handlers; larger gets 413.
pub const MAX_BODY: usize = 64 * 1024;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// What every handler can reach.
pub struct Ctx {
    pub state: Handle,
    pub started: Instant,
    /// Neither flash slot held a valid record at start; running on defaults.
    pub recovered_from_damage: bool,
    pub data_dir: PathBuf,
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

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

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

/// Escape text for an XML attribute or element.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
