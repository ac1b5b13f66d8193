//! Handlers for the Plex-style and health endpoints that exist in every state.

use super::routes::Call;
use super::{Body, Format, full, xml_escape};
use hyper::{Response, header};

/// `GET /identity`: Plex's unauthenticated identity document (python-plexapi reads machineIdentifier).
pub async fn identity(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let id = s.machine_identifier();
    let claimed = s.is_claimed();
    match call.format {
        Format::Json => super::json(&serde_json::json!({
            "MediaContainer": {
                "size": 0,
                "claimed": claimed,
                "machineIdentifier": id,
                "version": crate::VERSION,
            }
        })),
        Format::Xml => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MediaContainer size=\"0\" claimed=\"{}\" \
                 machineIdentifier=\"{}\" version=\"{}\">\n</MediaContainer>\n",
                u8::from(claimed),
                xml_escape(&id),
                xml_escape(crate::VERSION)
            );
            Response::builder()
                .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(full(body))
                .expect("valid response")
        }
    }
}

/// `GET /health`: liveness for monitors and the watchdog; no private facts.
pub async fn health(call: Call) -> Response<Body> {
    let uptime = call.ctx.started.elapsed().as_secs();
    super::json(&serde_json::json!({ "status": "ok", "uptime": uptime }))
}
