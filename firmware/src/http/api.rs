//! Handlers for the Plex-style and health endpoints that exist in every state, and the power request.

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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerAsk {
    action: crate::system::PowerAction,
}

/// `POST /api/v1/system/reboot`: ask init mode to stop cleanly (flush the store, sync) and restart the board.
/// Body `{"action": "reboot" | "poweroff"}` or empty for reboot. 202: the reboot starts after this answer.
pub async fn reboot(mut call: Call) -> Response<Body> {
    use super::body;
    use super::refused::{Refused, reply};
    use hyper::StatusCode;
    reply(async {
        let Some(power) = call.ctx.power.clone() else {
            return Err(Refused::conflict(
                "this Hearth runs as an ordinary program on a host (hearth serve), not as the board's init; \
                 restart it or the host instead",
            ));
        };
        let bytes = body::read(&mut call.req).await?;
        let action = if bytes.iter().all(u8::is_ascii_whitespace) {
            crate::system::PowerAction::Reboot
        } else {
            body::parse::<PowerAsk>(&bytes, body::Quote::Reason)?.action
        };
        tracing::info!(peer = %call.peer, ?action, "power request through the API");
        power.request(action);
        let mut r = super::json(&serde_json::json!({ "action": action, "status": "stopping" }));
        *r.status_mut() = StatusCode::ACCEPTED;
        Ok(r)
    }
    .await)
}
