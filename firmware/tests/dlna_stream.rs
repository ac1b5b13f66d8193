//! Review finding C-3 against the built binary: DLNA's media bodies (TCP 32469) take the stream room's path, the
//! one the main port's parts take, not a loop of their own.
//!
//! How the test knows it is the shared path: only the stream room's sender counts a body in
//! `GET /api/v1/streams` (`zeroCopyBytes` per sendfile call, `responses` per answer, `active` while a body runs),
//! and only it ends a body whose file was cut short with a reset (SO_LINGER 0) instead of a clean close. DLNA's
//! old loop counted LAN egress alone and ended a cut file with a FIN.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

/// DLNA listens on the fixed port 32469 of the `--listen` address: an address of this test's own.
const IP: &str = "127.0.34.70";

struct Hearth {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hearth serve --listen IP:0`; waits for its "is running" line.
fn start() -> Hearth {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", &format!("{IP}:0"), "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains(" is running. ") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "hearth exited before it listened");
    }
    let port: u16 = line.split(&format!("http://{IP}:")).nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).unwrap();
    Hearth { child, addr: format!("{IP}:{port}").parse().unwrap(), _data: data }
}

/// One request on a fresh connection, read to its end: (status, lower-cased head, body).
fn request(to: SocketAddr, raw: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").map_or(all.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&all[..split]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.contains("\r\ntransfer-encoding: chunked") { common::dechunk(&all[split..]) } else { all[split..].to_vec() };
    (status, head, body)
}

/// An API call as the owner: the parsed JSON answer.
fn api(h: &Hearth, method: &str, path: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Plex-Token: {token}\r\nX-Plex-Client-Identifier: t1\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    let (st, _, b) = request(h.addr, &raw);
    (st, serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null))
}

/// Bytes the scanner takes for an MP4 (an `ftyp` box), then `len` bytes of a pattern.
fn fake_mp4(path: &Path, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..len).map(|i| (i * 7 % 251) as u8));
    std::fs::write(path, &v).unwrap();
    v
}

/// The stream room's counters as `GET /api/v1/streams` shows them: (zeroCopyBytes, responses, active).
fn counters(h: &Hearth, token: &str) -> (u64, u64, u64) {
    let (st, v) = api(h, "GET", "/api/v1/streams", token, "");
    assert_eq!(st, 200, "{v}");
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {v}"));
    (n("zeroCopyBytes"), n("responses"), n("active"))
}

/// C-3: a DLNA download is counted by the stream room byte for byte, a body in flight is one of its running
/// streams, and a file cut short under the send ends with the stream room's reset; byte-exact GET, HEAD and a
/// range still answer as before.
#[test]
fn c_3_dlna_streams_take_the_stream_rooms_path() {
    let media = tempfile::tempdir().unwrap();
    let path = media.path().join("Big Buck Bunny (2008).mp4");
    let film = fake_mp4(&path, 32 << 20);
    let h = start();
    let (st, v) = api(&h, "POST", "/api/v1/claim", "", r#"{"name":"Owner","password":"films and shows"}"#);
    assert_eq!(st, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let body = format!(r#"{{"name":"Films","kind":"movies","folders":["{}"]}}"#, media.path().display());
    let (st, v) = api(&h, "POST", "/api/v1/libraries", &token, &body);
    assert_eq!(st, 201, "{v}");
    let section = v["id"].as_u64().unwrap();
    let key = common::wait_for("the film to be listed", 30, || {
        let (_, v) = api(&h, "GET", &format!("/library/sections/{section}/all"), &token, "");
        Some(v["MediaContainer"]["Metadata"][0]["Media"][0]["Part"][0]["key"].as_str()?.to_owned())
    });
    let id: u64 = key.split('/').nth(3).unwrap().parse().unwrap();
    let dlna: SocketAddr = format!("{IP}:32469").parse().unwrap();
    let res = format!("/res/{id:016x}.mp4");
    let get = |extra: &str| format!("GET {res} HTTP/1.1\r\nHost: {dlna}\r\n{extra}Connection: close\r\n\r\n");
    common::wait_for("DLNA to show the film", 30, || (request(dlna, &get("Range: bytes=0-0\r\n")).0 == 206).then_some(()));

    let (zero_copy, responses, _) = counters(&h, &token);
    let (st, head, got) = request(dlna, &get("transferMode.dlna.org: Streaming\r\n"));
    assert_eq!(st, 200, "{head}");
    assert!(got == film, "the DLNA download is the file, byte for byte ({} of {} bytes)", got.len(), film.len());
    assert!(head.contains("contentfeatures.dlna.org: ") && head.contains("transfermode.dlna.org: streaming"), "{head}");
    let after = counters(&h, &token);
    assert_eq!(after.0 - zero_copy, film.len() as u64, "the stream room counted the DLNA body's bytes as zero-copy bytes");
    assert_eq!(after.1 - responses, 1, "the stream room counted the DLNA answer");
    let (st, head, got) = request(dlna, &get("Range: bytes=10-19\r\n"));
    assert_eq!((st, &got[..]), (206, &film[10..20]), "{head}");
    let (st, head, got) = request(dlna, &format!("HEAD {res} HTTP/1.1\r\nHost: {dlna}\r\nConnection: close\r\n\r\n"));
    assert!(st == 200 && got.is_empty() && head.contains(&format!("content-length: {}\r\n", film.len())), "{head}");
    assert_eq!(counters(&h, &token).0 - after.0, 10, "a range sends its bytes only, HEAD none");

    // A body in flight, held by a reader that stops reading: one of the stream room's running streams.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.connect(&dlna.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(get("").as_bytes()).unwrap();
    let mut r = BufReader::with_capacity(1024, s);
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    let mut first = vec![0u8; 64 * 1024];
    r.read_exact(&mut first).unwrap();
    common::wait_for("the DLNA body to be a running stream", 10, || (counters(&h, &token).2 == 1).then_some(()));
    // Cut the file under the send: the stream room resets the connection rather than close it as if complete.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1 << 20).unwrap();
    let mut rest = Vec::new();
    let ended = r.read_to_end(&mut rest);
    assert!(
        matches!(&ended, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "a DLNA body whose file was cut short ends with a reset, as on the main port: {ended:?} after {} bytes",
        first.len() + rest.len()
    );
    assert!(first.len() + rest.len() < film.len(), "a cut file is never padded out");
    common::wait_for("the cut stream to end", 10, || (counters(&h, &token).2 == 0).then_some(()));
}
