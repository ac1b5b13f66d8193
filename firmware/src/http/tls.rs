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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
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

/// Build the rustls configuration for a stored certificate, with the provider's suites in
/// [`aes_first`]'s order (AES-GCM first when `aes_first`, else ChaCha20-Poly1305), which the server keeps
/// over the client's.
pub fn server_config(tls: &state::Tls, aes_first: bool) -> Result<ServerConfig, TlsError> {
    let certs = unpack_chain(&tls.chain).ok_or(TlsError::BadCertificate("stored chain is damaged"))?;
    let key = PrivateKeyDer::try_from(tls.key.to_vec()).map_err(|_| TlsError::NoKey)?;
    let mut suites = provider();
    suites.cipher_suites = ordered(&suites.cipher_suites, aes_first);
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(suites))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Generate(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::UnsupportedKey(e.to_string()))?;
    cfg.ignore_client_order = true;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Kernel TLS (http::ktls) takes the session keys from rustls after the handshake.
    cfg.enable_secret_extraction = true;
    Ok(cfg)
}

/// The AEAD of a cipher suite, as far as the suite order cares: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    /// The AEAD of a suite by its IANA name (RFC 8446 B.4, RFC 5289, RFC 7905); None for a suite rustls does
    /// not offer.
    pub fn of(suite: rustls::CipherSuite) -> Option<Aead> {
        let name = suite.as_str()?;
        if name.contains("AES_128_GCM") {
            Some(Aead::Aes128Gcm)
        } else if name.contains("AES_256_GCM") {
            Some(Aead::Aes256Gcm)
        } else if name.contains("CHACHA20_POLY1305") {
            Some(Aead::ChaCha20Poly1305)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Aead::Aes128Gcm => "AES-128-GCM",
            Aead::Aes256Gcm => "AES-256-GCM",
            Aead::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        }
    }
}

/// Whether this CPU has AES and carry-less multiply instructions (AES-GCM in hardware): ARMv8's AES/PMULL
/// (aarch64 HWCAP_AES, armv7 HWCAP2_AES and HWCAP2_PMULL), x86's AES-NI and PCLMULQDQ. Without them AES-GCM
/// runs table code, several times slower than ChaCha20-Poly1305 on NEON (and not constant-time in the
/// kernel's generic driver), for the kernel's TLS and for ring alike.
pub fn aes_hardware() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(target_arch = "arm")]
    {
        // Linux arch/arm/include/uapi/asm/hwcap.h: HWCAP2_AES (1 << 0), HWCAP2_PMULL (1 << 1).
        let hwcap2 = unsafe { nix::libc::getauxval(nix::libc::AT_HWCAP2) };
        hwcap2 & 0b11 == 0b11
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "arm", target_arch = "x86_64")))]
    {
        false
    }
}

/// The suite order the server answers with: whether AES-GCM goes first (AES-128 before AES-256, then ChaCha20)
/// or ChaCha20-Poly1305 does. The rule of Go's crypto/tls (cipher_suites.go, `aesgcmPreferred` and
/// `hasAESGCMHardwareSupport`): AES-GCM first only when this CPU has AES-GCM instructions and the client's own
/// first known suite is AES-GCM (a client that lists ChaCha20 first says it has no AES hardware). AES-128
/// before AES-256: ten rounds instead of fourteen, the 128-bit security level every browser asks for first;
/// on a box whose streams are encrypted by its CPU (kernel TLS, issue 24) that is throughput. RFC 8446 4.1.1
/// leaves the choice among offered suites to the server.
pub fn aes_first(aes_hardware: bool, client_suites: &[rustls::CipherSuite]) -> bool {
    aes_hardware && client_suites.iter().find_map(|s| Aead::of(*s)).is_some_and(|a| a != Aead::ChaCha20Poly1305)
}

/// `suites` in the server's order (stable within an AEAD: TLS 1.3 before 1.2 and ECDSA before RSA as given).
fn ordered(suites: &[rustls::SupportedCipherSuite], aes_first: bool) -> Vec<rustls::SupportedCipherSuite> {
    let rank = |s: &rustls::SupportedCipherSuite| match (Aead::of(s.suite()), aes_first) {
        (Some(Aead::Aes128Gcm), true) | (Some(Aead::ChaCha20Poly1305), false) => 0,
        (Some(Aead::Aes128Gcm), false) | (Some(Aead::Aes256Gcm), true) => 1,
        (Some(Aead::Aes256Gcm), false) | (Some(Aead::ChaCha20Poly1305), true) => 2,
        (None, _) => 3,
    };
    let mut out = suites.to_vec();
    out.sort_by_key(|s| (rank(s), s.version().version != rustls::ProtocolVersion::TLSv1_3));
    out
}

/// The TLS server for one certificate: two rustls configurations that differ only in their suite order
/// ([`aes_first`]); the ClientHello picks one.
#[derive(Clone)]
pub struct Handshake {
    aes_first: Arc<ServerConfig>,
    chacha_first: Arc<ServerConfig>,
    aes_hardware: bool,
}

impl Handshake {
    pub fn new(tls: &state::Tls) -> Result<Handshake, TlsError> {
        Ok(Handshake {
            aes_first: Arc::new(server_config(tls, true)?),
            chacha_first: Arc::new(server_config(tls, false)?),
            aes_hardware: aes_hardware(),
        })
    }

    /// Read the ClientHello, pick the suite order for it, and finish the handshake.
    pub async fn accept<IO>(&self, io: IO) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        let cfg = match aes_first(self.aes_hardware, start.client_hello().cipher_suites()) {
            true => self.aes_first.clone(),
            false => self.chacha_first.clone(),
        };
        let tls = start.into_stream(cfg).await?;
        if let Some(aead) = tls.get_ref().1.negotiated_cipher_suite().and_then(|s| Aead::of(s.suite())) {
            SESSIONS[aead as usize].fetch_add(1, Ordering::Relaxed);
        }
        Ok(tls)
    }
}

/// Finished handshakes since start, by [`Aead`].
static SESSIONS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// `tls.suites` in `GET /api/v1/system`: which AEAD goes first for a client that lists AES-GCM first, and how
/// many sessions each AEAD took since start.
pub fn suite_facts() -> serde_json::Value {
    let first = if aes_hardware() { Aead::Aes128Gcm } else { Aead::ChaCha20Poly1305 };
    let sessions: serde_json::Map<String, serde_json::Value> = [Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::ChaCha20Poly1305]
        .iter()
        .map(|a| (a.name().to_string(), SESSIONS[*a as usize].load(Ordering::Relaxed).into()))
        .collect();
    serde_json::json!({ "aes_hardware": aes_hardware(), "preferred": first.name(), "sessions": sessions })
}

/// The running server's view of HTTPS: a cached [`Handshake`] for the certificate in the state.
pub struct Certificates {
    cached: Mutex<Option<(heapless::Vec<u8, MAX_CERT>, Handshake)>>,
}

impl Default for Certificates {
    fn default() -> Self {
        Certificates { cached: Mutex::new(None) }
    }
}

impl Certificates {
    /// The handshake for TLS connections, or None when HTTPS is off (Disabled, or no certificate yet).
    pub fn handshake(&self, state: &State) -> Option<Handshake> {
        if state.settings.secure_connections == SecureConnections::Disabled {
            return None;
        }
        let tls = state.tls.as_ref()?;
        let mut cached = self.cached.lock().unwrap();
        if let Some((chain, handshake)) = cached.as_ref()
            && *chain == tls.chain {
                return Some(handshake.clone());
            }
        match Handshake::new(tls) {
            Ok(handshake) => {
                *cached = Some((tls.chain.clone(), handshake.clone()));
                Some(handshake)
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
    use rustls::CipherSuite as C;

    #[test]
    fn aes_goes_first_only_with_aes_hardware_and_a_client_that_lists_aes_first() {
        let browser = [C::TLS13_AES_128_GCM_SHA256, C::TLS13_AES_256_GCM_SHA384, C::TLS13_CHACHA20_POLY1305_SHA256];
        let no_aes_phone = [C::TLS13_CHACHA20_POLY1305_SHA256, C::TLS13_AES_128_GCM_SHA256];
        // An unknown suite (GREASE, RFC 8701) before the first known one does not count.
        let grease = [C::Unknown(0x0a0a), C::TLS13_CHACHA20_POLY1305_SHA256, C::TLS13_AES_128_GCM_SHA256];
        assert!(aes_first(true, &browser));
        assert!(!aes_first(true, &no_aes_phone));
        assert!(!aes_first(true, &grease));
        assert!(!aes_first(false, &browser), "a box without AES instructions prefers ChaCha20");
        assert!(!aes_first(true, &[]));
    }

    #[test]
    fn suites_are_ordered_aes_128_then_256_then_chacha_or_chacha_first() {
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        let names = |aes: bool| -> Vec<(Option<Aead>, bool)> {
            ordered(&all, aes).iter().map(|s| (Aead::of(s.suite()), s.version().version == rustls::ProtocolVersion::TLSv1_3)).collect()
        };
        let aes = names(true);
        assert_eq!(aes.len(), all.len(), "no suite is dropped");
        assert_eq!(aes[0], (Some(Aead::Aes128Gcm), true));
        assert_eq!(aes[1].0, Some(Aead::Aes128Gcm), "TLS 1.2's AES-128-GCM before any AES-256");
        assert!(aes.iter().position(|a| a.0 == Some(Aead::Aes256Gcm)) < aes.iter().position(|a| a.0 == Some(Aead::ChaCha20Poly1305)));
        let chacha = names(false);
        assert_eq!(chacha[0], (Some(Aead::ChaCha20Poly1305), true));
        assert!(chacha.iter().position(|a| a.0 == Some(Aead::Aes128Gcm)) < chacha.iter().position(|a| a.0 == Some(Aead::Aes256Gcm)));
    }

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
        server_config(&tls, true).unwrap();
        println!("self-signed certificate: chain {} bytes, key {} bytes", tls.chain.len(), tls.key.len());
    }

    #[test]
    fn owner_certificate_is_checked() {
        let (cert, key) = make((2025, 1, 1), (2030, 1, 1));
        let tls = custom(cert.as_bytes(), key.as_bytes(), NOW).unwrap();
        assert!(tls.custom);
        server_config(&tls, true).unwrap();

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
