//! HTTPS and HTTP on one port, and the three "Secure connections" modes, against the real listener.

mod common;

use hearth::http::tls;
use hearth::state::{self, Handle, SecureConnections, State};
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An in-process server (tests/common) whose owner chose `mode`, once it has made its certificate; (address,
/// state handle, the certificate, the server: keep it, dropping it stops the listener).
async fn start(mode: SecureConnections) -> (SocketAddr, Handle, CertificateDer<'static>, common::InProcess) {
    let mut s = State::new([7; 16]);
    s.accounts.push(common::test_owner()).unwrap();
    s.settings.secure_connections = mode;
    let srv = common::InProcess::start(s).await;
    // The running server makes its own certificate once it sees a claimed state without one.
    tokio::spawn(tls::keep_certificate(srv.handle.clone()));
    let mut rx = srv.handle.subscribe();
    let cert = loop {
        if let Some(t) = rx.borrow_and_update().tls.as_ref() {
            break tls::unpack_chain(&t.chain).unwrap().remove(0);
        }
        rx.changed().await.unwrap();
    };
    (srv.addr, srv.handle.clone(), cert, srv)
}

fn connector(cert: &CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, raw: &str) -> String {
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &str = "GET /identity HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

async fn https_get(addr: SocketAddr, cert: &CertificateDer<'static>) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector(cert).connect(ServerName::try_from("localhost").unwrap(), tcp).await?;
    Ok(exchange(tls, GET).await)
}

#[tokio::test]
async fn preferred_serves_both_on_one_port() {
    let (addr, handle, cert, _dir) = start(SecureConnections::Preferred).await;
    let body = https_get(addr, &cert).await.expect("TLS handshake with the box's own certificate");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains(&handle.snapshot().machine_identifier()));
    let plain = exchange(TcpStream::connect(addr).await.unwrap(), GET).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
}

#[tokio::test]
async fn required_redirects_browsers_and_refuses_others() {
    let (addr, _handle, cert, _dir) = start(SecureConnections::Required).await;
    assert!(https_get(addr, &cert).await.unwrap().starts_with("HTTP/1.1 200"));
    let api = exchange(TcpStream::connect(addr).await.unwrap(), GET).await;
    assert!(api.starts_with("HTTP/1.1 403"), "{api}");
    assert!(api.contains("requires secure connections"), "{api}");
    let browser = exchange(
        TcpStream::connect(addr).await.unwrap(),
        "GET /web/?x=1 HTTP/1.1\r\nHost: localhost:32400\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(browser.starts_with("HTTP/1.1 301"), "{browser}");
    assert!(browser.to_lowercase().contains("location: https://localhost:32400/web/?x=1"), "{browser}");
}

#[tokio::test]
async fn disabled_offers_no_tls() {
    let (addr, _handle, cert, _dir) = start(SecureConnections::Disabled).await;
    assert!(https_get(addr, &cert).await.is_err(), "no TLS handshake when HTTPS is disabled");
    let plain = exchange(TcpStream::connect(addr).await.unwrap(), GET).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");
}

#[tokio::test]
async fn an_installed_certificate_replaces_the_self_signed_one() {
    let (addr, handle, old, _dir) = start(SecureConnections::Preferred).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let installed = tls::custom(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), hearth::system::clock::unix_now() as i64).unwrap();
    handle.update(|s| {
        let _: () = s.tls = Some(installed);
        Ok::<_, state::StateError>(())
    }).await.unwrap();
    let new = cert.der().clone();
    assert!(https_get(addr, &new).await.unwrap().starts_with("HTTP/1.1 200"));
    assert!(https_get(addr, &old).await.is_err(), "the old certificate is no longer served");
}

/// A-F2 over TLS: a DNS-rebinding name is misdirected on HTTPS too (certificates do not help: the browser
/// accepts whatever the rebinding site's name shows, the Host is what tells).
#[tokio::test]
async fn a_f2_rebinding_host_is_misdirected_over_tls() {
    let (addr, _handle, cert, _dir) = start(SecureConnections::Preferred).await;
    for (path, extra) in [("/identity", ""), ("/web/", ""), ("/library/sections", ""), ("/api/v1/me", "Accept: application/json\r\n")] {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector(&cert).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: attacker.example:{}\r\n{extra}Connection: close\r\n\r\n", addr.port());
        let answer = exchange(tls, &raw).await;
        assert!(answer.starts_with("HTTP/1.1 421"), "{path}: {answer}");
        assert!(answer.contains("Network settings"), "{answer}");
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector(&cert).connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let own = format!("GET /identity HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n", addr.port());
    assert!(exchange(tls, &own).await.starts_with("HTTP/1.1 200"));
}

/// A client offering `suites` in this order (TLS 1.3 only); the suite the server chose.
async fn negotiated(addr: SocketAddr, cert: &CertificateDer<'static>, suites: &[rustls::CipherSuite]) -> rustls::CipherSuite {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = suites
        .iter()
        .map(|want| *provider.cipher_suites.iter().find(|s| s.suite() == *want).unwrap())
        .collect();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let suite = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
    assert!(exchange(tls, GET).await.starts_with("HTTP/1.1 200"));
    suite
}

/// Issue 24: the box encrypts every HTTPS stream, so it picks the cheaper AEAD its CPU runs (Go's crypto/tls
/// rule, http::tls::aes_first): on a CPU with AES instructions, AES-128-GCM for a client that lists AES-256-GCM
/// first (curl, Python, rustls do); ChaCha20-Poly1305 for a client that lists it first (one without AES
/// hardware); the System screen names the order and counts sessions by AEAD.
#[tokio::test]
async fn the_server_picks_the_aead_its_cpu_and_the_client_run_fastest() {
    use rustls::CipherSuite as C;
    let (addr, _handle, cert, _srv) = start(SecureConnections::Preferred).await;
    let aes_hw = tls::aes_hardware();
    let curl_like = [C::TLS13_AES_256_GCM_SHA384, C::TLS13_CHACHA20_POLY1305_SHA256, C::TLS13_AES_128_GCM_SHA256];
    let got = negotiated(addr, &cert, &curl_like).await;
    assert_eq!(got, if aes_hw { C::TLS13_AES_128_GCM_SHA256 } else { C::TLS13_CHACHA20_POLY1305_SHA256 });
    let phone = [C::TLS13_CHACHA20_POLY1305_SHA256, C::TLS13_AES_128_GCM_SHA256, C::TLS13_AES_256_GCM_SHA384];
    assert_eq!(negotiated(addr, &cert, &phone).await, C::TLS13_CHACHA20_POLY1305_SHA256);
    // A client with only AES-256-GCM still gets it: the order is a preference, never a refusal.
    assert_eq!(negotiated(addr, &cert, &[C::TLS13_AES_256_GCM_SHA384]).await, C::TLS13_AES_256_GCM_SHA384);

    // What GET /api/v1/system shows as tls.suites (counted in this process; other tests' sessions add to it).
    let facts = &tls::suite_facts();
    assert_eq!(facts["aes_hardware"], aes_hw);
    assert_eq!(facts["preferred"], if aes_hw { "AES-128-GCM" } else { "ChaCha20-Poly1305" });
    let n = |a: &str| facts["sessions"][a].as_u64().unwrap();
    assert!(n("ChaCha20-Poly1305") >= 1 && n("AES-256-GCM") >= 1 && n("AES-128-GCM") >= u64::from(aes_hw), "{facts}");
}
