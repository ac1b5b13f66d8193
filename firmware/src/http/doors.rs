//! The shell of the doors against the browser (issue 18, A-F1, A-F2, A-F7's vector), checked once for every
//! request before its handler: the Host and Origin doors of the auth room ([`crate::auth::doors`]) with this
//! box's names, and the body type of state-changing requests.
//!
//! Body type: a POST, PUT, PATCH or DELETE that carries a body must say `Content-Type: application/json`
//! (parameters such as `; charset=utf-8` allowed), or the type its route names ([`Route::accepts`], e.g. a
//! firmware upload), else 415 (RFC 9110 §15.5.16). A browser sends `text/plain`, form or multipart bodies to
//! another site without asking (a CORS "simple request"); `application/json` needs a preflight this server
//! never grants, so no other site can send one.
//!
//! `Sec-Fetch-Site` is not checked: every browser that sends it also sends `Origin` on the requests that
//! matter (all non-GET requests, and cross-origin ones in CORS mode), which the Origin door already judges,
//! and a `cross-site` navigation to `/web/` from a bookmark page must keep working.
//!
//! [`Route::accepts`]: super::routes::Route::accepts

use crate::auth::doors::{OwnNames, Refused, host_door, origin_door};
use crate::state::{SecureConnections, State};
use crate::wire::{Fields, Head};
use hyper::{HeaderMap, Method, header};

/// The body type every state-changing route takes unless it names another.
pub const JSON: &str = "application/json";

/// The Host and Origin doors for a request with these header values (`http11`: HTTP/1.1 rather than 1.0;
/// `secure`: it came over TLS).
pub fn browser(state: &State, host: Option<&str>, origin: Option<&str>, http11: bool, secure: bool) -> Result<(), Refused> {
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
    let names = OwnNames { hostname: &hostname, added: &state.settings.host_names };
    let authority = host_door(host, http11, &names)?;
    origin_door(origin, authority.as_ref(), secure)
}

/// [`browser`] for a request hyper parsed. A second Host line is refused here too (RFC 9112 §3.2), as the
/// head parser refuses it on the heads the connection loop reads ([`crate::wire::head::Bad::TwoHosts`]).
pub fn browser_request<B>(state: &State, req: &hyper::Request<B>, secure: bool) -> Result<(), Refused> {
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        let bad = crate::wire::head::Bad::TwoHosts;
        return Err(Refused { status: bad.status(), message: bad.message().into() });
    }
    let http11 = req.version() >= hyper::Version::HTTP_11;
    browser(state, text(req.headers(), "host"), text(req.headers(), "origin"), http11, secure)
}

/// [`browser`] for a request head the connection loop parsed (plain TCP, the stream fast path).
pub fn browser_head(state: &State, head: &Head) -> Result<(), Refused> {
    browser(state, text(head, "host"), text(head, "origin"), head.http11(), false)
}

/// A field as the doors read it: a value that is not text becomes a NUL, which no door accepts.
fn text<'a>(fields: &'a impl Fields, name: &str) -> Option<&'a str> {
    fields.text(name).map(|v| v.unwrap_or("\u{0}"))
}

/// What a plain-HTTP request gets when secure connections are "Required" (see [`insecure`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Insecure {
    /// A browser: 301 to this https:// address of the same page.
    Redirect(String),
    /// Any other client: 403 with [`REQUIRED_TLS`].
    Refuse,
}

/// Why a plain-HTTP request is refused when secure connections are "Required".
pub const REQUIRED_TLS: &str = "This server requires secure connections: use https:// on the same address and port.";

/// The secure-connections door, for both engines (the fast path's parsed head, hyper's request): Ok unless
/// the request came over plain HTTP (`secure` false) while the setting is "Required". Then a browser (it
/// accepts `text/html` and names a Host we can echo) is sent to `https://{host}{target}`, and any other
/// client is refused.
pub fn insecure(state: &State, fields: &impl Fields, target: &str, secure: bool) -> Result<(), Insecure> {
    if secure || state.settings.secure_connections != SecureConnections::Required {
        return Ok(());
    }
    let host = fields.text("host").and_then(Result::ok).filter(|h| valid_host(h));
    let browser = fields.text("accept").and_then(Result::ok).is_some_and(|v| v.contains("text/html"));
    match (browser, host) {
        (true, Some(host)) => Err(Insecure::Redirect(format!("https://{host}{target}"))),
        _ => Err(Insecure::Refuse),
    }
}

/// A Host header we are willing to echo into a redirect: host[:port], no path, no userinfo.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// The body-type door (see the module doc): Ok unless `method` changes state, the request carries a body and
/// its Content-Type is not `accepts`.
pub fn body_type(method: &Method, headers: &HeaderMap, accepts: &str) -> Result<(), Refused> {
    let changes = matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let body = length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if !changes || !body {
        return Ok(());
    }
    let given = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?"));
    if given.is_some_and(|t| media_type_is(t, accepts)) {
        return Ok(());
    }
    let said = match given {
        Some(t) => format!("Content-Type {:?}", t),
        None => "no Content-Type".into(),
    };
    Err(Refused {
        status: 415,
        message: format!(
            "This request has a body with {said}; this server takes only {accepts} here. Send the body as {accepts} \
             with \"Content-Type: {accepts}\"."
        ),
    })
}

/// `value` (a Content-Type) is the media type `want`, ignoring case and parameters (RFC 9110 §8.3.1).
pub fn media_type_is(value: &str, want: &str) -> bool {
    value.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn state_changing_bodies_must_be_json() {
        let json = [("content-length", "2"), ("content-type", "application/json")];
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(body_type(&m, &headers(&json), JSON).is_ok());
            for bad in ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json"] {
                let r = body_type(&m, &headers(&[("content-length", "2"), ("content-type", bad)]), JSON).unwrap_err();
                assert_eq!(r.status, 415, "{m} {bad}");
                assert!(r.message.contains("application/json"), "{}", r.message);
            }
            let r = body_type(&m, &headers(&[("content-length", "2")]), JSON).unwrap_err();
            assert!(r.message.contains("no Content-Type"), "{}", r.message);
            let chunked = [("transfer-encoding", "chunked"), ("content-type", "text/plain")];
            assert_eq!(body_type(&m, &headers(&chunked), JSON).unwrap_err().status, 415);
        }
        for ok in ["Application/JSON", "application/json; charset=utf-8", " application/json ;charset=\"utf-8\""] {
            assert!(body_type(&Method::POST, &headers(&[("content-length", "2"), ("content-type", ok)]), JSON).is_ok(), "{ok}");
        }
    }

    #[test]
    fn bodiless_and_reading_requests_pass_and_a_route_can_name_its_type() {
        assert!(body_type(&Method::POST, &headers(&[]), JSON).is_ok(), "no body: nothing to misread");
        assert!(body_type(&Method::POST, &headers(&[("content-length", "0"), ("content-type", "text/plain")]), JSON).is_ok());
        assert!(body_type(&Method::GET, &headers(&[("content-length", "2"), ("content-type", "text/plain")]), JSON).is_ok());
        let upload = [("content-length", "9"), ("content-type", "application/octet-stream")];
        assert!(body_type(&Method::POST, &headers(&upload), "application/octet-stream").is_ok());
        assert_eq!(body_type(&Method::POST, &headers(&upload), JSON).unwrap_err().status, 415);
    }
}
