//! HTTPS sessions served by the same dispatch as plain ones (issue 24): keep-alive across API and part
//! requests, Range, the egress counter, and what a client that sends a KeyUpdate or an alert mid-stream gets.
//! This host's kernel has no `tls` ULP, so here these prove the user-space fallback and the System screen's
//! word for it; tests/qemu/run proves the kernel path in the guest. `cargo test -p hearth --test ktls`.

mod common;

use common::Server;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OWNER_PW: &str = "hearth by the fire";

/// The test trusts the box's self-signed certificate whatever it is: what is proven here is the session.
#[derive(Debug)]
struct AnyCertificate;

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

async fn connect(addr: &str, tls12: bool) -> tokio_rustls::client::TlsStream<TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] =
        if tls12 { &[&rustls::version::TLS12] } else { &[&rustls::version::TLS13] };
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.expect("TLS handshake")
}

/// A claimed server (HTTPS preferred, the default) with one movie library holding `film` bytes; the owner's
/// token, the part's key, the film.
struct Box_ {
    srv: Server,
    owner: String,
    key: String,
    film: Vec<u8>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn start(len: usize) -> Box_ {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let mut film = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    film.extend((0..len - film.len()).map(|i| (i * 7 % 251) as u8));
    std::fs::write(media.path().join("Film (2020).mp4"), &film).unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", OWNER_PW);
    let body = json!({"name": "Films", "kind": "movies", "folders": [media.path().to_str().unwrap()]}).to_string();
    let (st, lib) = srv.json("POST", "/api/v1/libraries", &[("X-Plex-Token", &owner)], Some(&body));
    assert_eq!(st, 201, "{lib}");
    let key = srv.first_part(Some(&owner), lib["id"].as_u64().unwrap());
    common::wait_for("the certificate", 30, || {
        let (_, v) = srv.json("GET", "/api/v1/settings/tls", &[("X-Plex-Token", &owner)], None);
        (!v["certificate"].is_null()).then_some(())
    });
    Box_ { srv, owner, key, film, _dirs: (dir, media) }
}

/// Read one response (Content-Length framed, or none for HEAD / no body): (status, lower-cased head, body).
async fn response<S: AsyncRead + Unpin>(s: &mut S, head_only: bool) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    s.read_exact(&mut body).await?;
    Ok((status, head, body))
}

fn request(b: &Box_, method: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Plex-Token: {}\r\nAccept: application/json\r\n{extra}\r\n", b.srv.addr, b.owner)
}

fn tls_facts(b: &Box_) -> Value {
    b.srv.system(&b.owner)["tls"].clone()
}

/// What this host's kernel offers: the path the System screen must name.
fn expected_path() -> &'static str {
    let ulps = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    if ulps.split_whitespace().any(|u| u == "tls") { "kernel TLS" } else { "user-space TLS (kernel has no tls module)" }
}

/// Issue 24 deliverables 1–2 on this host: one HTTPS connection carries an API exchange, a Range part, a whole
/// part, a HEAD and another API exchange, each answer byte-exact, in both TLS versions; the egress counter
/// grew by the body bytes; the System screen says which TLS path runs and counts the sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_https_connection_keeps_alive_across_api_and_part_requests() {
    let b = tokio::task::spawn_blocking(|| start(3 << 20)).await.unwrap();
    let before = b.srv.system(&b.owner)["egress"]["lan_bytes"].as_u64().unwrap();
    let range = (100_000usize, 2_500_000usize);
    for tls12 in [false, true] {
        let mut s = connect(&b.srv.addr, tls12).await;
        s.write_all(request(&b, "GET", "/api/v1/system", "").as_bytes()).await.unwrap();
        let (st, _, body) = response(&mut s, false).await.unwrap();
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        let tls: Value = serde_json::from_slice::<Value>(&body).unwrap()["tls"].clone();
        assert_eq!(tls["path"], expected_path(), "{tls}");

        let r = format!("Range: bytes={}-{}\r\n", range.0, range.1);
        s.write_all(request(&b, "GET", &b.key, &r).as_bytes()).await.unwrap();
        let (st, head, body) = response(&mut s, false).await.unwrap();
        assert_eq!(st, 206, "{head}");
        assert!(body == b.film[range.0..=range.1], "the range's bytes are the file's ({} bytes)", body.len());

        // Pipelined: a whole part and a HEAD in one write.
        let two = request(&b, "GET", &b.key, "") + &request(&b, "HEAD", &b.key, "");
        s.write_all(two.as_bytes()).await.unwrap();
        let (st, _, body) = response(&mut s, false).await.unwrap();
        assert_eq!(st, 200);
        assert!(body == b.film, "the whole part is the file ({} of {} bytes)", body.len(), b.film.len());
        let (st, head, _) = response(&mut s, true).await.unwrap();
        assert_eq!(st, 200);
        assert!(head.contains(&format!("content-length: {}", b.film.len())), "{head}");

        s.write_all(request(&b, "GET", "/identity", "Connection: close\r\n").as_bytes()).await.unwrap();
        let (st, head, _) = response(&mut s, false).await.unwrap();
        assert_eq!(st, 200, "{head}");
    }
    let after = b.srv.system(&b.owner)["egress"]["lan_bytes"].as_u64().unwrap();
    let sent = 2 * (range.1 - range.0 + 1 + b.film.len()) as u64;
    assert!(after - before >= sent, "egress counted the HTTPS bodies: {} < {sent}", after - before);
    let tls = tls_facts(&b);
    let counted = if tls["kernel"] == true { &tls["kernel_sessions"] } else { &tls["user_space_sessions"] };
    assert!(counted.as_u64().unwrap() >= 2, "{tls}");
    assert_eq!(tls["lost_sessions"], 0, "{tls}");
}

/// Bad input: a TLS 1.3 KeyUpdate between two requests. The session goes on (user space: rustls follows it)
/// or ends without a byte (kernel: the keys cannot follow); never a wrong byte; the server serves the next
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_update_continues_or_ends_the_session_cleanly() {
    let b = tokio::task::spawn_blocking(|| start(1 << 20)).await.unwrap();
    let mut s = connect(&b.srv.addr, false).await;
    s.write_all(request(&b, "GET", &b.key, "Range: bytes=0-9999\r\n").as_bytes()).await.unwrap();
    let (st, _, body) = response(&mut s, false).await.unwrap();
    assert_eq!((st, &body[..]), (206, &b.film[..10_000]));
    s.get_mut().1.refresh_traffic_keys().expect("a KeyUpdate");
    s.write_all(request(&b, "GET", &b.key, "").as_bytes()).await.unwrap();
    match response(&mut s, false).await {
        Ok((st, _, body)) => assert!(st == 200 && body == b.film, "after the KeyUpdate: {st}, {} bytes", body.len()),
        Err(e) => assert!(tls_facts(&b)["kernel"] == true, "only a kernel session may end here: {e}"),
    }
    let mut again = connect(&b.srv.addr, false).await;
    again.write_all(request(&b, "GET", "/identity", "").as_bytes()).await.unwrap();
    assert_eq!(response(&mut again, false).await.unwrap().0, 200, "the next connection is served");
}

/// Bad input: a close_notify alert in the middle of a part body. The server stops or finishes the body (never
/// corrupt bytes: what arrives is a prefix of the file), and the worker serves the next connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_mid_stream_ends_the_session_cleanly() {
    let b = tokio::task::spawn_blocking(|| start(8 << 20)).await.unwrap();
    let mut s = connect(&b.srv.addr, false).await;
    s.write_all(request(&b, "GET", &b.key, "").as_bytes()).await.unwrap();
    let mut got = vec![0u8; 64 * 1024];
    s.read_exact(&mut got).await.unwrap();
    // close_notify (RFC 8446 §6.1) while the body is still coming.
    s.get_mut().1.send_close_notify();
    s.flush().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    got.extend_from_slice(&rest);
    let body_start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = &got[body_start..];
    assert!(body.len() <= b.film.len() && body == &b.film[..body.len()], "a prefix of the file ({} bytes)", body.len());
    let mut again = connect(&b.srv.addr, false).await;
    again.write_all(request(&b, "GET", "/identity", "").as_bytes()).await.unwrap();
    assert_eq!(response(&mut again, false).await.unwrap().0, 200, "the next connection is served");
}
