//! `/api/v1/remote`: remote-access settings, status and server mapping; Enable / Retry / Disable.
//! Documented in docs/remote-api.md. What a change may hold and how it applies is the remote room's
//! (`remote::settings`); this file reads the body, runs the change in one state update and answers.

use super::body;
use super::refused::{Refused, reply};
use super::routes::Call;
use super::{Body, Ctx, json};
use crate::remote::settings::{self, Change};
use crate::remote::status::Status;
use crate::state::State;
use hyper::Response;
use serde_json::{Value, json};

/// The status as the API shows it: its fields, its sentence, and for a failure the reason's own sentence and
/// its protocol detail (the page's "Show details").
fn status_doc(st: &Status) -> Value {
    let mut status = serde_json::to_value(st).unwrap_or(Value::Null);
    status["sentence"] = Value::String(st.sentence());
    if let Status::Unsuccessful { reason } = st {
        status["reason"]["sentence"] = Value::String(reason.sentence());
        status["reason"]["detail"] = reason.detail().map_or(Value::Null, Value::String);
    }
    status
}

/// The whole group: settings, status (with its sentence), server mapping, last mapping.
fn view(ctx: &Ctx, s: &State) -> Value {
    let r = &s.settings.remote;
    let v = ctx.remote.view();
    // IPv4's status joined with IPv6's (an IPv6-only line is a success), then the reason's sentence and detail.
    let (shown, sentence) = crate::remote::status::with_ipv6(&v.status, &v.ipv6);
    let mut status = status_doc(&shown);
    status["sentence"] = Value::String(sentence);
    status["families"] = json!({ "ipv4": crate::remote::status::ipv4_family(&v.status), "ipv6": v.ipv6 });
    json!({
        "settings": {
            "enabled": r.enabled,
            "manual_port": r.manual_port,
            "upload_kbps": r.upload_kbps,
            "stream_kbps": r.stream_kbps,
            "reflector_url": r.reflector_url.as_str(),
            "stun_servers": r.stun_servers.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        },
        "status": status,
        "server_mapping": v.mapping,
        "last_mapping": r.last_mapping.as_ref().map(|m| json!({
            "method": crate::remote::status::method_name(m.method),
            "gateway": m.gateway,
            "external_addr": m.external_addr,
            "external_port": m.external_port,
            "internal_port": m.internal_port,
            "lease_secs": m.lease_secs,
            "obtained": m.obtained,
        })),
        "attempt_ms": v.attempt_ms,
        "attempts": v.attempts,
    })
}

/// `GET /api/v1/remote`.
pub async fn get(call: Call) -> Response<Body> {
    current(&call.ctx)
}

fn current(ctx: &Ctx) -> Response<Body> {
    json(&view(ctx, &ctx.state.snapshot()))
}

/// `PUT /api/v1/remote`: a settings change, checked and applied by the remote room (`remote::settings`).
pub async fn put(mut call: Call) -> Response<Body> {
    reply(async {
        let bytes = body::read(&mut call.req).await?;
        let change = settings::parse_change(&bytes).map_err(Refused::bad)?;
        call.ctx.state.update(|s| settings::apply(change, s)).await?;
        Ok(current(&call.ctx))
    }
    .await)
}

/// The published state, when the server is claimed (Enable and Retry need an owner; 409 otherwise).
fn claimed(ctx: &Ctx) -> Result<std::sync::Arc<State>, Refused> {
    let s = ctx.state.snapshot();
    if !s.is_claimed() {
        return Err(settings::Refusal::NotClaimed.into());
    }
    Ok(s)
}

/// `POST /api/v1/remote/enable`: turn on (or, when on, re-run the attempt).
pub async fn enable(call: Call) -> Response<Body> {
    reply(async {
        if claimed(&call.ctx)?.settings.remote.enabled {
            call.ctx.remote.retry();
        } else {
            call.ctx.state.update(|s| settings::apply(Change::switch(true), s)).await?;
        }
        Ok(current(&call.ctx))
    }
    .await)
}

/// `POST /api/v1/remote/retry`.
pub async fn retry(call: Call) -> Response<Body> {
    reply(async {
        if !claimed(&call.ctx)?.settings.remote.enabled {
            return Err(Refused::conflict("Remote access is off: press Enable to turn it on."));
        }
        call.ctx.remote.retry();
        Ok(current(&call.ctx))
    }
    .await)
}

/// How long Disable waits for the remote task to delete the mapping and publish "off" before answering. An
/// attempt that is running finishes first (about 7 s when no router answers); past this the answer says "off"
/// anyway, because that is what the stored switch now makes the status.
const DISABLE_SETTLES: std::time::Duration = std::time::Duration::from_secs(3);

/// `POST /api/v1/remote/disable`: turn off; the task deletes the mapping from the router. The answer shows the
/// new status ("disabled"), not the one before the switch.
pub async fn disable(call: Call) -> Response<Body> {
    reply(async {
        let mut views = call.ctx.remote.subscribe();
        call.ctx.state.update(|s| settings::apply(Change::switch(false), s)).await?;
        let off = |v: &crate::remote::View| v.status == Status::Disabled;
        let settled = tokio::time::timeout(DISABLE_SETTLES, views.wait_for(off)).await.is_ok_and(|r| r.is_ok());
        let s = call.ctx.state.snapshot();
        let mut doc = view(&call.ctx, &s);
        if !settled && !s.settings.remote.enabled {
            doc["status"] = status_doc(&Status::Disabled);
        }
        Ok(json(&doc))
    }
    .await)
}
