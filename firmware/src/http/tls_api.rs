//! `GET/PUT /api/v1/settings/tls` (Owner): "Secure connections" (Required / Preferred / Disabled) and the
//! certificate — Hearth's self-signed one or one the owner installs (PEM chain + key).
//!
//! Owns: the JSON shape of these two routes and their input checks. The certificate checks themselves
//! (PEM, key matches leaf, valid now, fits on flash) are `tls::custom`; making the self-signed certificate is
//! `tls::keep_certificate`, which remakes it whenever the state has none (so "use self-signed" clears the
//! owner's certificate and lets that task make a fresh one).
//! Since schema 5 also the ACME settings (`"acme": {"enabled", "domain", "directory_url"}`), "renew now", what
//! the ACME task says ([`crate::remote::acme::View`]), which certificate is served (self-signed / custom /
//! ACME from <CA>) and until when, and the HTTP-01 answer ([`challenge`], RFC 8555 §8.3).
//! Must not touch: the private key on the way out — it is never answered, logged or echoed in an error.

use super::body;
use super::refused::{Refused, reply};
use super::routes::Call;
use super::{Body, json, tls};
use crate::remote::acme;
use crate::state::{SecureConnections, State, StateError};
use hyper::Response;
use serde::Deserialize;
use serde_json::{Value, json};

fn mode_name(m: SecureConnections) -> &'static str {
    match m {
        SecureConnections::Required => "required",
        SecureConnections::Preferred => "preferred",
        SecureConnections::Disabled => "disabled",
    }
}

/// Which certificate is served: Hearth's own, the owner's, or the one the ACME task got (its leaf hash is
/// `State::acme.issued`).
fn source(s: &State) -> &'static str {
    match acme::order::served(s) {
        acme::Served::Acme { .. } => "acme",
        acme::Served::Owners => "custom",
        acme::Served::SelfSigned => "self_signed",
    }
}

fn view(s: &State, a: &acme::View) -> Value {
    let cert = s.tls.as_ref().map(|t| {
        let chain = tls::unpack_chain(&t.chain).unwrap_or_default();
        let (not_before, not_after) = chain.first().and_then(|c| tls::validity(c).ok()).unwrap_or((0, 0));
        let fingerprint = chain.first().map(|c| {
            ring::digest::digest(&ring::digest::SHA256, c).as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
        });
        let source = source(s);
        let issuer = match source {
            "acme" => format!("ACME from {}", acme::ca_name(&s.settings.acme.directory_url)),
            "custom" => "your certificate".to_string(),
            _ => "self-signed by Hearth".to_string(),
        };
        json!({
            "custom": t.custom,
            "source": source,
            "issuer": issuer,
            "chain_length": chain.len(),
            "not_before": not_before,
            "not_after": not_after,
            "sha256": fingerprint,
        })
    });
    let set = &s.settings.acme;
    json!({
        "secure_connections": mode_name(s.settings.secure_connections),
        "certificate": cert,
        "acme": {
            "enabled": set.enabled,
            "domain": set.domain.as_deref(),
            "directory_url": set.directory_url.as_str(),
            "status": a,
        },
    })
}

/// `GET /api/v1/settings/tls`.
pub async fn get(call: Call) -> Response<Body> {
    json(&view(&call.ctx.state.snapshot(), &call.ctx.remote.acme.view()))
}

/// The ACME part of a change: each field optional; `domain` "" or null = the public IPv4 address.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcmeChange {
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "some_or_null")]
    domain: Option<Option<String>>,
    directory_url: Option<String>,
}

/// `"domain": null` is a change (back to the public address), unlike a missing field.
fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Check the ACME part before anything changes.
fn acme_change(c: &AcmeChange) -> Result<(Option<Option<crate::state::HostName>>, Option<heapless::String<{ crate::state::MAX_URL }>>), Refused> {
    let domain = match c.domain.as_ref() {
        None => None,
        Some(None) => Some(None),
        Some(Some(d)) if d.trim().is_empty() => Some(None),
        Some(Some(d)) => match crate::state::host_name(d) {
            Ok(n) => Some(Some(n)),
            Err(e) => return Err(Refused::bad(format!("acme.domain: {e}."))),
        },
    };
    let url = match c.directory_url.as_deref().map(str::trim) {
        None => None,
        Some(u) => {
            let ok = u.starts_with("https://") && u.len() > 8 && u.parse::<hyper::Uri>().is_ok_and(|x| x.host().is_some());
            if !ok {
                return Err(Refused::bad("acme.directory_url is the CA's https:// directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory."));
            }
            Some(crate::state::bounded("acme.directory_url", u).map_err(|e| Refused::bad(format!("{e}.")))?)
        }
    };
    Ok((domain, url))
}

/// RFC 8555 §8.3 HTTP-01: `GET /.well-known/acme-challenge/{token}` over plain HTTP, from any source, before
/// the Host, Origin and secure-connection doors (the CA asks for the address or domain as the Host and does
/// not follow a redirect to our port). Answered only while an order is pending and only for its exact token;
/// anything else under the prefix is 404. None: not this prefix (or over TLS): route as usual.
pub fn challenge<B>(ctx: &super::Ctx, req: &hyper::Request<B>, secure: bool) -> Option<Response<Body>> {
    let token = req.uri().path().strip_prefix("/.well-known/acme-challenge/")?;
    if secure || !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
        return None;
    }
    let (status, body) = match ctx.remote.acme.answer(token) {
        Some(key_authorization) => (hyper::StatusCode::OK, key_authorization),
        None => (hyper::StatusCode::NOT_FOUND, "There is no pending ACME check with this token.".to_string()),
    };
    let mut r = Response::new(super::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    Some(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    secure_connections: Option<String>,
    certificate_pem: Option<String>,
    key_pem: Option<String>,
    /// Drop the owner's certificate and go back to one Hearth makes.
    #[serde(default)]
    use_self_signed: bool,
    /// Certificates from an ACME CA (schema 5).
    acme: Option<AcmeChange>,
    /// Order a new ACME certificate now (the task must be on and able to order).
    #[serde(default)]
    acme_renew_now: bool,
}

/// `PUT /api/v1/settings/tls` `{"secure_connections"?, "certificate_pem"? + "key_pem"?, "use_self_signed"?,
/// "acme"?: {"enabled"?, "domain"?, "directory_url"?}, "acme_renew_now"?}`.
/// Everything is checked before anything changes.
pub async fn put(mut call: Call) -> Response<Body> {
    reply(async {
        // serde's reason could quote the body (the key): only syntax errors and field names are echoed.
        let c: Change = body::json_quoting(&mut call.req, body::Quote::Never).await?;
        let mode = match c.secure_connections.as_deref() {
            None => None,
            Some("required") => Some(SecureConnections::Required),
            Some("preferred") => Some(SecureConnections::Preferred),
            Some("disabled") => Some(SecureConnections::Disabled),
            Some(_) => return Err(Refused::bad("secure_connections is one of required, preferred, disabled.")),
        };
        let installed = match (c.certificate_pem, c.key_pem) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => return Err(Refused::bad("Send the certificate and its private key together.")),
            (Some(_), Some(_)) if c.use_self_signed => {
                return Err(Refused::bad("Either install a certificate or go back to the self-signed one, not both."));
            }
            (Some(cert), Some(key)) => match tls::custom(cert.as_bytes(), key.as_bytes(), crate::system::clock::unix_now() as i64) {
                Ok(t) => Some(t),
                Err(e) => return Err(Refused::bad(format!("That certificate cannot be used: {e}."))),
            },
        };
        let (acme_domain, acme_url) = match &c.acme {
            Some(a) => acme_change(a)?,
            None => (None, None),
        };
        let acme_enabled = c.acme.as_ref().and_then(|a| a.enabled);
        let use_self_signed = c.use_self_signed;
        call.ctx
            .state
            .update(|s| {
                if let Some(m) = mode {
                    if m == SecureConnections::Required && s.tls.is_none() && installed.is_none() {
                        return Err(StateError::Invalid("there is no certificate yet; it is made when the server is claimed"));
                    }
                    s.settings.secure_connections = m;
                }
                if let Some(t) = installed {
                    s.tls = Some(t);
                } else if use_self_signed && s.tls.as_ref().is_some_and(|t| t.custom) {
                    s.tls = None; // tls::keep_certificate makes a new self-signed one at once
                }
                if let Some(e) = acme_enabled {
                    s.settings.acme.enabled = e;
                }
                if let Some(d) = acme_domain {
                    s.settings.acme.domain = d;
                }
                if let Some(u) = acme_url {
                    s.settings.acme.directory_url = u;
                }
                Ok(())
            })
            .await?;
        if c.acme_renew_now {
            call.ctx.remote.acme.renew_now();
        }
        Ok(json(&view(&call.ctx.state.snapshot(), &call.ctx.remote.acme.view())))
    }
    .await)
}
