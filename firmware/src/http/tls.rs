//! HTTPS on port 32400: the certificate Hearth makes for itself, certificates the owner installs, and the
//! rustls configuration built from whichever is in the state.
//!
//! Owns: making the self-signed ECDSA P-256 certificate (rcgen) once the server is claimed, checking an
//! owner's certificate and key (PEM; the key matches the leaf; the leaf is valid now), the encoding of the chain
//! in `state::Tls`, and the cached `rustls::ServerConfig`.
//! Must not touch: the socket loop (conn.rs sniffs the first byte and calls [`Certificates::acceptor`]).
//!
//! `state::Tls::chain` layout (DER certificates, leaf first):
//!
//! ```text
//! | len u16 BE | DER cert (len bytes) | len u16 BE | DER cert | ...
//! ```

use crate::state::{self, Handle, MAX_CERT, MAX_KEY, SecureConnections, State};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio_rustls::TlsAcceptor;

/// The certificate Hearth makes for itself is valid this long (then remade; see [`keep_certificate`]).
pub const SELF_SIGNED_DAYS: i64 = 3650;

/// Why a certificate could not be installed or made; the text tells the owner what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    #[error("the certificate is not PEM (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("the private key is not a PEM PKCS#8, SEC1 or PKCS#1 key")]
    NoKey,
    #[error("the certificate chain is {0} bytes; at most {MAX_CERT} fit on flash (leave out the root)")]
    ChainTooLarge(usize),
    #[error("the private key is {0} bytes; at most {MAX_KEY} fit on flash (use an ECDSA P-256/P-384 or Ed25519 key)")]
    KeyTooLarge(usize),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the key type is not supported: {0}")]
    UnsupportedKey(String),
    #[error("the certificate cannot be read: {0}")]
    BadCertificate(&'static str),
    #[error("the certificate is not valid yet (from {0} UTC)")]
    NotYetValid(String),
    #[error("the certificate expired on {0} UTC")]
    Expired(String),
    #[error("the certificate could not be made: {0}")]
    Generate(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Pack DER certificates into the stored chain layout.
pub fn pack_chain(certs: &[CertificateDer<'_>]) -> Result<heapless::Vec<u8, MAX_CERT>, TlsError> {
    let total: usize = certs.iter().map(|c| c.len() + 2).sum();
    let mut out = heapless::Vec::new();
    for c in certs {
        let len = u16::try_from(c.len()).map_err(|_| TlsError::ChainTooLarge(total))?;
        out.extend_from_slice(&len.to_be_bytes()).map_err(|_| TlsError::ChainTooLarge(total))?;
        out.extend_from_slice(c).map_err(|_| TlsError::ChainTooLarge(total))?;
    }
    Ok(out)
}

/// Unpack the stored chain; None when the bytes do not follow the layout.
pub fn unpack_chain(bytes: &[u8]) -> Option<Vec<CertificateDer<'static>>> {
    let mut certs = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let der = rest.get(2..2 + len)?;
        certs.push(CertificateDer::from(der.to_vec()));
        rest = &rest[2 + len..];
    }
    (!certs.is_empty()).then_some(certs)
}

/// Make the self-signed certificate: ECDSA P-256, the box's names and addresses as subject alternative names.
pub fn self_signed(names: &[String], addrs: &[IpAddr], now: i64) -> Result<state::Tls, TlsError> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().map(String::as_str).unwrap_or("hearth"));
    dn.push(DnType::OrganizationName, "Hearth media server");
    params.distinguished_name = dn;
    for n in names {
        if let Ok(n) = n.clone().try_into() {
            params.subject_alt_names.push(SanType::DnsName(n));
        }
    }
    for a in addrs {
        params.subject_alt_names.push(SanType::IpAddress(*a));
    }
    let day = 86_400;
    let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).map_err(|e| TlsError::Generate(e.to_string()));
    params.not_before = at(now - day)?;
    params.not_after = at(now + SELF_SIGNED_DAYS * day)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let chain = pack_chain(&[cert.der().clone()])?;
    let der = key.serialize_der();
    let key = heapless::Vec::from_slice(&der).map_err(|_| TlsError::KeyTooLarge(der.len()))?;
    Ok(state::Tls { chain, key, custom: false })
}

/// Check an owner's PEM certificate chain and key and turn them into the stored form.
pub fn custom(cert_pem: &[u8], key_pem: &[u8], now: i64) -> Result<state::Tls, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey)?;
    let (not_before, not_after) = validity(&certs[0])?;
    if now < not_before {
        return Err(TlsError::NotYetValid(format_time(not_before)));
    }
    if now > not_after {
        return Err(TlsError::Expired(format_time(not_after)));
    }
    let key_der = key.secret_der().to_vec();
    let signing = provider()
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError::UnsupportedKey(e.to_string()))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing);
    certified.keys_match().map_err(|_| TlsError::KeyMismatch)?;
    let chain = pack_chain(&certs)?;
    let key = heapless::Vec::from_slice(&key_der).map_err(|_| TlsError::KeyTooLarge(key_der.len()))?;
    Ok(state::Tls { chain, key, custom: true })
}

/// Build the rustls configuration for a stored certificate.
pub fn server_config(tls: &state::Tls) -> Result<ServerConfig, TlsError> {
    let certs = unpack_chain(&tls.chain).ok_or(TlsError::BadCertificate("stored chain is damaged"))?;
    let key = PrivateKeyDer::try_from(tls.key.to_vec()).map_err(|_| TlsError::NoKey)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::UnsupportedKey(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Kernel TLS (http::ktls) takes the session keys from rustls after the handshake.
    cfg.enable_secret_extraction = true;
    Ok(cfg)
}

/// The running server's view of HTTPS: a cached acceptor for the certificate in the state.
pub struct Certificates {
    cached: Mutex<Option<(heapless::Vec<u8, MAX_CERT>, TlsAcceptor)>>,
}

impl Default for Certificates {
    fn default() -> Self {
        Certificates { cached: Mutex::new(None) }
    }
}

impl Certificates {
    /// The acceptor for TLS connections, or None when HTTPS is off (Disabled, or no certificate yet).
    pub fn acceptor(&self, state: &State) -> Option<TlsAcceptor> {
        if state.settings.secure_connections == SecureConnections::Disabled {
            return None;
        }
        let tls = state.tls.as_ref()?;
        let mut cached = self.cached.lock().unwrap();
        if let Some((chain, acceptor)) = cached.as_ref()
            && *chain == tls.chain {
                return Some(acceptor.clone());
            }
        match server_config(tls) {
            Ok(cfg) => {
                let acceptor = TlsAcceptor::from(Arc::new(cfg));
                *cached = Some((tls.chain.clone(), acceptor.clone()));
                Some(acceptor)
            }
            Err(e) => {
                tracing::error!(error = %e, "the stored certificate cannot be used; HTTPS is off");
                None
            }
        }
    }
}

/// Once the server is claimed, make sure it has a certificate: make the self-signed one when there is none
/// (at claim, or after the owner removed theirs) and remake it before it expires.
pub async fn keep_certificate(handle: Handle) {
    let mut rx = handle.subscribe();
    loop {
        let needs = {
            let s = rx.borrow_and_update();
            s.is_claimed() && s.tls.is_none()
        };
        if needs {
            let names = box_names();
            let addrs = box_addresses();
            let now = crate::system::clock::unix_now() as i64;
            match tokio::task::spawn_blocking(move || self_signed(&names, &addrs, now)).await {
                Ok(Ok(tls)) => {
                    let stored = handle
                        .update(|s| {
                            if s.tls.is_none() {
                                s.tls = Some(tls);
                            }
                            Ok::<_, state::StateError>(())
                        })
                        .await;
                    match stored {
                        Ok(()) => tracing::info!("made the server's self-signed certificate"),
                        Err(e) => tracing::error!(error = %e, "could not store the new certificate"),
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "could not make a certificate"),
                Err(_) => {}
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Host names the certificate covers: the hostname, hostname.local, localhost.
pub fn box_names() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(h) = nix::unistd::gethostname()
        && let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
            names.push(h.to_string());
            if !h.contains('.') {
                names.push(format!("{h}.local"));
            }
        }
    names.push("localhost".into());
    names
}

/// Addresses the certificate covers: every address of every interface that is up.
pub fn box_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    for a in crate::system::ifaces::addresses() {
        if !out.contains(&a.addr) {
            out.push(a.addr);
        }
    }
    if out.is_empty() {
        out.push(IpAddr::from([127, 0, 0, 1]));
    }
    out
}

/// `notBefore` and `notAfter` of a DER certificate, as unix seconds ([`crate::wire::certificate::validity`]);
/// what is wrong with a certificate that has none is said in the error.
pub fn validity(cert: &[u8]) -> Result<(i64, i64), TlsError> {
    crate::wire::certificate::validity(cert).map_err(TlsError::BadCertificate)
}

fn format_time(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = crate::wire::calendar::civil_from_days(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_as_dates_and_damage_is_refused() {
        assert_eq!(format_time(2_147_483_648), "2038-01-19 03:14");
        assert!(validity(&[0x30, 0x82, 0xFF]).is_err());
    }

    const NOW: i64 = 1_795_000_000; // 2026-11-18

    fn pem(label: &str, der: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = String::new();
        for chunk in der.chunks(3) {
            let n = chunk.iter().fold(0u32, |a, &b| a << 8 | b as u32) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    b64.push('=');
                }
            }
        }
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    fn make(not_before: (i32, u8, u8), not_after: (i32, u8, u8)) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["nas.example.org".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let cert = p.self_signed(&key).unwrap();
        (pem("CERTIFICATE", cert.der()), pem("PRIVATE KEY", &key.serialize_der()))
    }

    #[test]
    fn self_signed_covers_names_and_serves() {
        let tls = self_signed(&["nas".into(), "nas.local".into()], &["192.168.1.5".parse().unwrap()], NOW).unwrap();
        assert!(!tls.custom);
        let certs = unpack_chain(&tls.chain).unwrap();
        let (nb, na) = validity(&certs[0]).unwrap();
        assert!(nb < NOW && na > NOW + 9 * 365 * 86_400, "{nb} {na}");
        server_config(&tls).unwrap();
        println!("self-signed certificate: chain {} bytes, key {} bytes", tls.chain.len(), tls.key.len());
    }

    #[test]
    fn owner_certificate_is_checked() {
        let (cert, key) = make((2025, 1, 1), (2030, 1, 1));
        let tls = custom(cert.as_bytes(), key.as_bytes(), NOW).unwrap();
        assert!(tls.custom);
        server_config(&tls).unwrap();

        let (_, other_key) = make((2025, 1, 1), (2030, 1, 1));
        assert_eq!(custom(cert.as_bytes(), other_key.as_bytes(), NOW), Err(TlsError::KeyMismatch));

        let (old, old_key) = make((2020, 1, 1), (2024, 6, 1));
        let err = custom(old.as_bytes(), old_key.as_bytes(), NOW).unwrap_err();
        assert_eq!(err.to_string(), "the certificate expired on 2024-06-01 00:00 UTC");

        let (future, fkey) = make((2030, 1, 1), (2031, 1, 1));
        assert!(matches!(custom(future.as_bytes(), fkey.as_bytes(), NOW), Err(TlsError::NotYetValid(_))));

        assert_eq!(custom(b"hello", key.as_bytes(), NOW), Err(TlsError::NoCertificate));
        assert_eq!(custom(cert.as_bytes(), b"nope", NOW), Err(TlsError::NoKey));
    }

    #[test]
    fn chain_layout_round_trips_and_rejects_damage() {
        let a = CertificateDer::from(vec![1u8, 2, 3]);
        let b = CertificateDer::from(vec![9u8; 300]);
        let packed = pack_chain(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(&packed[..5], &[0, 3, 1, 2, 3]);
        assert_eq!(unpack_chain(&packed).unwrap(), vec![a, b]);
        assert!(unpack_chain(&packed[..packed.len() - 1]).is_none());
        assert!(unpack_chain(&[]).is_none());
        let huge = CertificateDer::from(vec![0u8; MAX_CERT]);
        assert!(matches!(pack_chain(&[huge]), Err(TlsError::ChainTooLarge(_))));
    }

}
