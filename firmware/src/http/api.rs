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

/// `POST /api/v1/system/reboot`: ask init mode to stop cleanly (flush the store, sync) and restart the board.
/// Body `{"action": "reboot" | "poweroff"}` or empty for reboot. 202: the reboot starts after this answer.
pub async fn reboot(call: Call) -> Response<Body> {
    use http_body_util::BodyExt;
    use hyper::StatusCode;
    let format = call.format;
    let Some(power) = call.ctx.power.clone() else {
        return super::error(
            StatusCode::CONFLICT,
            "this Hearth runs as an ordinary program on a host (hearth serve), not as the board's init; \
             restart it or the host instead",
            format,
        );
    };
    let body = match http_body_util::Limited::new(call.req.into_body(), super::MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return super::error(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large", format),
    };
    let action = if body.iter().all(u8::is_ascii_whitespace) {
        crate::system::PowerAction::Reboot
    } else {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Ask {
            action: crate::system::PowerAction,
        }
        match serde_json::from_slice::<Ask>(&body) {
            Ok(a) => a.action,
            Err(e) => {
                let msg = format!("the body must be {{\"action\": \"reboot\"}} or {{\"action\": \"poweroff\"}}: {e}");
                return super::error(StatusCode::BAD_REQUEST, &msg, format);
            }
        }
    };
    tracing::info!(peer = %call.peer, ?action, "power request through the API");
    power.request(action);
    let mut r = super::json(&serde_json::json!({ "action": action, "status": "stopping" }));
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}
