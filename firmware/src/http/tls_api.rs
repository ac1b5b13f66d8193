//! `GET/PUT /api/v1/settings/tls` (Owner): "Secure connections" (Required / Preferred / Disabled) and the
//! certificate — Hearth's self-signed one or one the owner installs (PEM chain + key).
//!
//! Owns: the JSON shape of these two routes and their input checks. The certificate checks themselves
//! (PEM, key matches leaf, valid now, fits on flash) are `tls::custom`; making the self-signed certificate is
//! `tls::keep_certificate`, which remakes it whenever the state has none (so "use self-signed" clears the
//! owner's certificate and lets that task make a fresh one).
//! Must not touch: the private key on the way out — it is never answered, logged or echoed in an error.

use super::body;
use super::refused::{Refused, reply};
use super::routes::Call;
use super::{Body, json, tls};
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

fn view(s: &State) -> Value {
    let cert = s.tls.as_ref().map(|t| {
        let chain = tls::unpack_chain(&t.chain).unwrap_or_default();
        let (not_before, not_after) = chain.first().and_then(|c| tls::validity(c).ok()).unwrap_or((0, 0));
        let fingerprint = chain.first().map(|c| {
            ring::digest::digest(&ring::digest::SHA256, c).as_ref().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
        });
        json!({
            "custom": t.custom,
            "chain_length": chain.len(),
            "not_before": not_before,
            "not_after": not_after,
            "sha256": fingerprint,
        })
    });
    json!({ "secure_connections": mode_name(s.settings.secure_connections), "certificate": cert })
}

/// `GET /api/v1/settings/tls`.
pub async fn get(call: Call) -> Response<Body> {
    json(&view(&call.ctx.state.snapshot()))
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
}

/// `PUT /api/v1/settings/tls` `{"secure_connections"?, "certificate_pem"? + "key_pem"?, "use_self_signed"?}`.
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
                Ok(())
            })
            .await?;
        Ok(json(&view(&call.ctx.state.snapshot())))
    }
    .await)
}
