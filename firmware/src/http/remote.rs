//! `/api/v1/remote`: remote-access settings, status and server mapping; Enable / Retry / Disable.
//! Documented in docs/remote-api.md.

use super::routes::Call;
use super::{Body, Ctx, Format, MAX_BODY, error, json};
use crate::remote::status::Reason;
use crate::state::{self, MAX_STUN, State, StateError, UpdateError};
use http_body_util::{BodyExt, Limited};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

/// The whole group: settings, status (with its sentence), server mapping, last mapping.
fn view(ctx: &Ctx, s: &State) -> Value {
    let r = &s.settings.remote;
    let v = ctx.remote.view();
    let mut status = serde_json::to_value(&v.status).unwrap_or(Value::Null);
    status["sentence"] = Value::String(v.status.sentence());
    if let crate::remote::status::Status::Unsuccessful { reason } = &v.status {
        status["reason"]["sentence"] = Value::String(reason.sentence());
    }
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

fn not_claimed(format: Format) -> Response<Body> {
    error(StatusCode::CONFLICT, &Reason::NotClaimed.sentence(), format)
}

fn refused(format: Format, e: UpdateError<String>) -> Response<Body> {
    match e {
        UpdateError::Rejected(m) => error(StatusCode::BAD_REQUEST, &m, format),
        UpdateError::Invalid(e) => error(StatusCode::BAD_REQUEST, &e.to_string(), format),
        UpdateError::Store(m) => error(StatusCode::INTERNAL_SERVER_ERROR, &m, format),
    }
}

/// A settings change, every field optional; validated completely before anything is applied.
#[derive(Default, Debug)]
pub struct Change {
    enabled: Option<bool>,
    manual_port: Option<Option<u16>>,
    upload_kbps: Option<u32>,
    stream_kbps: Option<u32>,
    reflector_url: Option<String>,
    stun_servers: Option<Vec<String>>,
}

/// The most a bitrate setting takes: 10 Gbit/s.
const MAX_KBPS: u64 = 10_000_000;

/// Parse and validate a PUT body. The error is a sentence the owner can act on.
pub fn parse_change(body: &[u8]) -> Result<Change, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "The body must be a JSON object.".to_string())?;
    let obj = v.as_object().ok_or("The body must be a JSON object.")?;
    let mut c = Change::default();
    for (k, v) in obj {
        match k.as_str() {
            "enabled" => c.enabled = Some(v.as_bool().ok_or("enabled must be true or false.")?),
            "manual_port" => {
                c.manual_port = Some(match v {
                    Value::Null => None,
                    v => {
                        let p = v.as_u64().filter(|p| (1..=65535).contains(p)).ok_or(
                            "manual_port must be a whole number from 1 to 65535 (the external port you forwarded), \
                             or null for automatic mapping.",
                        )?;
                        Some(p as u16)
                    }
                })
            }
            "upload_kbps" | "stream_kbps" => {
                let n = v.as_u64().filter(|n| *n <= MAX_KBPS).ok_or_else(|| {
                    format!("{k} must be a whole number of kbit/s from 0 (no limit) to {MAX_KBPS}.")
                })? as u32;
                if k == "upload_kbps" { c.upload_kbps = Some(n) } else { c.stream_kbps = Some(n) }
            }
            "reflector_url" => {
                let u = v.as_str().ok_or("reflector_url must be a string (empty for none).")?.trim();
                if !u.is_empty() {
                    crate::remote::fetch::split_url(u).map_err(|_| {
                        "reflector_url must look like http://reflector.example:32499 (plain http, no user name)."
                            .to_string()
                    })?;
                }
                if u.len() > state::MAX_URL {
                    return Err(format!("reflector_url is longer than {} characters.", state::MAX_URL));
                }
                c.reflector_url = Some(u.to_string());
            }
            "stun_servers" => {
                let list = v.as_array().ok_or("stun_servers must be a list of \"host:port\" strings.")?;
                if list.len() > MAX_STUN {
                    return Err(format!("At most {MAX_STUN} STUN servers."));
                }
                let mut out = Vec::new();
                for s in list {
                    let s = s.as_str().ok_or("stun_servers must be a list of \"host:port\" strings.")?.trim();
                    let ok = s.len() <= 64
                        && s.rsplit_once(':').is_some_and(|(h, p)| {
                            !h.is_empty()
                                && p.parse::<u16>().is_ok_and(|p| p != 0)
                                && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
                        });
                    if !ok {
                        return Err(format!("{s:?} is not a STUN server: write host:port, like stun.example.net:3478."));
                    }
                    out.push(s.to_string());
                }
                c.stun_servers = Some(out);
            }
            "last_mapping" => return Err("last_mapping is kept by the server and cannot be set.".into()),
            other => return Err(format!("Unknown setting {other:?}.")),
        }
    }
    Ok(c)
}

fn apply(c: Change, s: &mut State) -> Result<(), String> {
    if c.enabled == Some(true) && !s.is_claimed() {
        return Err(Reason::NotClaimed.sentence());
    }
    let r = &mut s.settings.remote;
    if let Some(e) = c.enabled {
        r.enabled = e;
    }
    if let Some(p) = c.manual_port {
        r.manual_port = p;
    }
    if let Some(n) = c.upload_kbps {
        r.upload_kbps = n;
    }
    if let Some(n) = c.stream_kbps {
        r.stream_kbps = n;
    }
    if let Some(u) = c.reflector_url {
        r.reflector_url = state::bounded("the reflector URL", &u).map_err(|e: StateError| e.to_string())?;
    }
    if let Some(list) = c.stun_servers {
        r.stun_servers.clear();
        for s in list {
            let b = state::bounded("a STUN server", &s).map_err(|e: StateError| e.to_string())?;
            state::push("STUN servers", &mut r.stun_servers, b).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `PUT /api/v1/remote`.
pub async fn put(call: Call) -> Response<Body> {
    let Call { ctx, req, format, .. } = call;
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "The body is larger than 64 KiB.", format),
    };
    let change = match parse_change(&body) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m, format),
    };
    if change.enabled == Some(true) && !ctx.state.snapshot().is_claimed() {
        return not_claimed(format);
    }
    match ctx.state.update(|s| apply(change, s)).await {
        Ok(()) => current(&ctx),
        Err(e) => refused(format, e),
    }
}

/// `POST /api/v1/remote/enable`: turn on (or, when on, re-run the attempt).
pub async fn enable(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    if !s.is_claimed() {
        return not_claimed(call.format);
    }
    if s.settings.remote.enabled {
        call.ctx.remote.retry();
        return get(call).await;
    }
    let r = call.ctx.state.update(|s| apply(Change { enabled: Some(true), ..Default::default() }, s)).await;
    match r {
        Ok(()) => get(call).await,
        Err(e) => refused(call.format, e),
    }
}

/// `POST /api/v1/remote/retry`.
pub async fn retry(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    if !s.is_claimed() {
        return not_claimed(call.format);
    }
    if !s.settings.remote.enabled {
        return error(StatusCode::CONFLICT, "Remote access is off: press Enable to turn it on.", call.format);
    }
    call.ctx.remote.retry();
    get(call).await
}

/// `POST /api/v1/remote/disable`: turn off; the task deletes the mapping from the router.
pub async fn disable(call: Call) -> Response<Body> {
    let r = call.ctx.state.update(|s| apply(Change { enabled: Some(false), ..Default::default() }, s)).await;
    match r {
        Ok(()) => get(call).await,
        Err(e) => refused(call.format, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_port_is_checked() {
        assert_eq!(parse_change(br#"{"manual_port": 443}"#).unwrap().manual_port, Some(Some(443)));
        assert_eq!(parse_change(br#"{"manual_port": null}"#).unwrap().manual_port, Some(None));
        for bad in [r#"{"manual_port": 0}"#, r#"{"manual_port": 65536}"#, r#"{"manual_port": -1}"#, r#"{"manual_port": "80"}"#, r#"{"manual_port": 8.5}"#] {
            let e = parse_change(bad.as_bytes()).unwrap_err();
            assert!(e.contains("1 to 65535"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_fields_are_checked() {
        assert!(parse_change(br#"{"reflector_url": "ftp://x"}"#).unwrap_err().contains("http://"));
        assert!(parse_change(br#"{"stun_servers": ["a:1","b:2","c:3"]}"#).unwrap_err().contains("At most"));
        assert!(parse_change(br#"{"stun_servers": ["nohostport"]}"#).unwrap_err().contains("host:port"));
        assert!(parse_change(br#"{"upload_kbps": 99999999999}"#).unwrap_err().contains("upload_kbps"));
        assert!(parse_change(br#"{"colour": 1}"#).unwrap_err().contains("Unknown setting"));
        assert!(parse_change(b"[1]").is_err());
        let c = parse_change(br#"{"upload_kbps": 20000, "stream_kbps": 4000, "stun_servers": ["11.0.0.1:3478"]}"#).unwrap();
        assert_eq!((c.upload_kbps, c.stream_kbps), (Some(20000), Some(4000)));
    }
}
