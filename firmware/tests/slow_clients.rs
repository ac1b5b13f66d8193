//! Slow and greedy clients against the built binary (robustness review 2026-12-04: R-F2, R-F3, R-F5).
//!
//! Sources are loopback addresses other than 127.0.0.1 (every 127/8 address is this host): the flood comes from
//! 127.0.0.2, the client that must still be served from 127.0.0.3. Bodies never arrive; the server's body
//! deadline is set long (`HEARTH_BODY_TIMEOUT_MS`) so the other source is asked while the flood still holds its
//! connections, and the test then waits for the server to close them. Figures (fds, latency, RSS) are printed by
//! `scripts/slow-clients`, not asserted here.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The body deadline the servers here run with: long enough that the flood still holds its connections while
/// the other source is served (a server without a per-source cap would keep that source waiting past
/// [`PATIENCE`]).
const BODY_DEADLINE_MS: u64 = 20_000;
/// How long the other source waits for an answer before the test calls it locked out.
const PATIENCE: Duration = Duration::from_secs(10);

struct Hearth {
    child: Child,
    /// The 32400-style port (kernel-picked) on `ip`.
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hearth serve --listen IP:0` with the body deadline above and, when `nofile` is given, `RLIMIT_NOFILE` soft
/// and hard at that value (so the server cannot raise its own limit past it).
fn start(ip: &str, nofile: Option<u64>) -> Hearth {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(["serve", "--listen", &format!("{ip}:0"), "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .env("HEARTH_BODY_TIMEOUT_MS", BODY_DEADLINE_MS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(n) = nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n).map_err(std::io::Error::from)
            });
        }
    }
    let mut child = cmd.spawn().expect("start hearth");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .split(&format!("http://{ip}:"))
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Hearth { child, addr: format!("{ip}:{port}").parse().unwrap(), _data: data }
}

/// The test process opens more sockets than the usual 1,024: raise its own soft limit to the hard one.
fn raise_own_fd_limit(want: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    assert!(hard >= want, "this test needs {want} fds; the hard limit is {hard}");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into())?;
    s.connect_timeout(&to.into(), timeout)?;
    Ok(s.into())
}

/// One request from `from` on a fresh connection, read to its end within [`PATIENCE`]: (status, lower-cased
/// head, body with any chunked coding removed).
fn request_from(from: &str, to: SocketAddr, raw: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = connect_from(from, to, PATIENCE)?;
    s.set_read_timeout(Some(PATIENCE))?;
    s.write_all(raw.as_bytes())?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    Ok(split_answer(&all))
}

fn split_answer(all: &[u8]) -> (u16, String, Vec<u8>) {
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").map_or(all.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&all[..split]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.contains("\r\ntransfer-encoding: chunked") { dechunk(&all[split..]) } else { all[split..].to_vec() };
    (status, head, body)
}

/// Undo `Transfer-Encoding: chunked` (RFC 9112 §7.1).
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().split(';').next().unwrap().trim(), 16)
            .expect("a hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n", "a chunk ends in CRLF");
        rest = &rest[size + 2..];
    }
}

/// Claim the server from 127.0.0.1 (LAN); the owner's token.
fn claim(h: &Hearth) -> String {
    let body = r#"{"name":"Owner","password":"films and shows"}"#;
    let raw = format!(
        "POST /api/v1/claim HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nContent-Type: application/json\r\nX-Plex-Client-Identifier: t1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    let (st, _, b) = request_from("127.0.0.1", h.addr, &raw).unwrap();
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

fn get(h: &Hearth, from: &str, path: &str, token: &str, accept: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    request_from(
        from,
        h.addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {}\r\nX-Plex-Token: {token}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n", h.addr),
    )
}

/// A movies library over `folder`, waited for until its scan lists `want` items; the library's id.
fn add_movies(h: &Hearth, token: &str, folder: &Path, want: u64) -> u64 {
    let body = format!(r#"{{"name":"Films","kind":"movies","folders":["{}"]}}"#, folder.display());
    let raw = format!(
        "POST /api/v1/libraries HTTP/1.1\r\nHost: {}\r\nX-Plex-Token: {token}\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.addr,
        body.len()
    );
    let (st, _, b) = request_from("127.0.0.1", h.addr, &raw).unwrap();
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
    let id = serde_json::from_slice::<serde_json::Value>(&b).unwrap()["id"].as_u64().unwrap();
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, _, b) = get(h, "127.0.0.1", "/api/v1/libraries", token, "application/json").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        let l = v["libraries"].as_array().unwrap().iter().find(|l| l["id"] == id).unwrap().clone();
        if l["items"] == want && l["progress"]["running"] == false {
            return id;
        }
        assert!(Instant::now() < until, "the library never reached {want} items: {l}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Bytes the scanner takes for an MP4 (an `ftyp` box), then `len` bytes of a pattern.
fn fake_mp4(path: &Path, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..len).map(|i| (i * 7 % 251) as u8));
    std::fs::write(path, &v).unwrap();
    v
}

/// `n` connections from `from`, each sending `head` (which announces a body) and then nothing. Connections the
/// server refuses at once are kept too: every one must end.
fn flood(from: &str, to: SocketAddr, n: usize, head: &str) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        if let Ok(mut s) = connect_from(from, to, Duration::from_secs(2)) {
            let _ = s.write_all(head.as_bytes());
            held.push(s);
        }
    }
    held
}

/// Wait (at most the body deadline and a margin) until the server has ended every flood connection; answers
/// how many were told 408 and how many were still open at the end.
fn wait_closed(held: Vec<TcpStream>) -> (usize, usize) {
    let until = Instant::now() + Duration::from_millis(BODY_DEADLINE_MS) + Duration::from_secs(30);
    let (mut told_408, mut open) = (0, 0);
    for mut s in held {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        s.set_read_timeout(Some(left)).unwrap();
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) if got.starts_with(b"HTTP/1.1 408 ") => told_408 += 1,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => open += 1,
            _ => {}
        }
    }
    (told_408, open)
}

/// R-F2: 1,100 connections from one source announce a sign-in body and never send it, against a server limited
/// to 1,024 fds. Another source still gets `/identity` and a media part, and the server ends every slow
/// connection by itself (408 for those it had accepted).
#[test]
fn r_f2_slow_bodies_do_not_lock_out_other_sources() {
    raise_own_fd_limit(2048);
    let media = tempfile::tempdir().unwrap();
    let film = fake_mp4(&media.path().join("Big Buck Bunny (2008).mp4"), 256 * 1024);
    let h = start("127.0.0.1", Some(1024));
    let token = claim(&h);
    let lib = add_movies(&h, &token, media.path(), 1);
    let (_, _, b) = get(&h, "127.0.0.1", &format!("/library/sections/{lib}/all"), &token, "application/json").unwrap();
    let list: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let part = list["MediaContainer"]["Metadata"][0]["Media"][0]["Part"][0]["key"].as_str().unwrap().to_owned();

    let sign_in = format!(
        "POST /api/v1/sign-in HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n",
        h.addr
    );
    let held = flood("127.0.0.2", h.addr, 1100, &sign_in);

    let (st, _, body) = get(&h, "127.0.0.3", "/identity", "", "application/json")
        .unwrap_or_else(|e| panic!("/identity from another source during the flood: {e}"));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("machineIdentifier"));
    let (st, _, body) =
        get(&h, "127.0.0.3", &part, &token, "*/*").unwrap_or_else(|e| panic!("a media part from another source during the flood: {e}"));
    assert_eq!(st, 200);
    assert!(body == film, "the part's bytes are the film's ({} bytes of {})", body.len(), film.len());

    let (told_408, open) = wait_closed(held);
    assert_eq!(open, 0, "connections whose body never came are closed by the server");
    assert!(told_408 > 0, "the held ones are told 408 Request Timeout");
    let (st, _, _) = get(&h, "127.0.0.2", "/identity", "", "application/json").unwrap();
    assert_eq!(st, 200, "the flooding source is served again once its connections are gone");
}

/// R-F3: the same on DLNA (TCP 32469, on the listen address): 100 connections from one source announce a SOAP
/// body and never send it; a renderer at another source still reads the device description, and the server
/// ends the slow connections by itself.
#[test]
fn r_f3_dlna_slow_bodies_do_not_lock_out_renderers() {
    // DLNA listens on the fixed port 32469 of the --listen address: one of its own, so no other test's server
    // holds it.
    let h = start("127.0.34.69", None);
    let dlna: SocketAddr = "127.0.34.69:32469".parse().unwrap();
    let description = format!("GET /description.xml HTTP/1.1\r\nHost: {dlna}\r\nConnection: close\r\n\r\n");
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _, _)) = request_from("127.0.0.4", dlna, &description) {
            break;
        }
        assert!(Instant::now() < until, "DLNA never answered on {dlna}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let browse = format!(
        "POST /control/cds HTTP/1.1\r\nHost: {dlna}\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nSOAPACTION: \"urn:schemas-upnp-org:service:ContentDirectory:1#Browse\"\r\nContent-Length: 16000\r\n\r\n"
    );
    let held = flood("127.0.0.2", dlna, 100, &browse);

    let (st, _, body) = request_from("127.0.0.3", dlna, &description)
        .unwrap_or_else(|e| panic!("the description from another source during the flood: {e}"));
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("urn:schemas-upnp-org:device:MediaServer:1"));

    let (told_408, open) = wait_closed(held);
    assert_eq!(open, 0, "connections whose body never came are closed by the server");
    assert!(told_408 > 0, "the held ones are told 408 Request Timeout");
    let (st, _, _) = request_from("127.0.0.2", dlna, &description).unwrap();
    assert_eq!(st, 200, "the flooding source is served again once its connections are gone");
    drop(h);
}

/// R-F5: the unpaged listing of a 20,000-item library is complete and well-formed in XML and JSON, and it is
/// streamed (chunked, written as it is made) rather than built whole in memory first. The memory it costs is
/// printed by `scripts/slow-clients`.
#[test]
fn r_f5_unpaged_listing_is_streamed() {
    const N: usize = 20_000;
    let media = tempfile::tempdir().unwrap();
    for i in 0..N {
        fake_mp4(&media.path().join(format!("Film {i:05} (2001).mp4")), 16);
    }
    let h = start("127.0.0.1", None);
    let token = claim(&h);
    let lib = add_movies(&h, &token, media.path(), N as u64);
    let path = format!("/library/sections/{lib}/all");

    let (st, head, body) = get(&h, "127.0.0.1", &path, &token, "application/xml").unwrap();
    assert_eq!(st, 200);
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "the XML listing is streamed: {head}");
    let mut reader = quick_xml::Reader::from_reader(&body[..]);
    let (mut videos, mut parts, mut open, mut root_size) = (0, 0, 0i32, None);
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).unwrap_or_else(|e| panic!("the XML listing is well-formed: {e}"));
        let element = match &event {
            quick_xml::events::Event::Start(e) => {
                open += 1;
                e
            }
            quick_xml::events::Event::Empty(e) => e,
            quick_xml::events::Event::End(_) => {
                open -= 1;
                buf.clear();
                continue;
            }
            quick_xml::events::Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        match element.name().as_ref() {
            "Video" => videos += 1,
            "Part" => parts += 1,
            "MediaContainer" => {
                root_size = element.try_get_attribute("size").unwrap().map(|a| a.value.into_owned())
            }
            _ => {}
        }
        buf.clear();
    }
    assert_eq!(open, 0, "every element is closed");
    assert_eq!((videos, parts), (N, N), "every film and its part are listed");
    assert_eq!(root_size.as_deref(), Some("20000"));

    let (st, head, body) = get(&h, "127.0.0.1", &path, &token, "application/json").unwrap();
    assert_eq!(st, 200);
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "the JSON listing is streamed: {head}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("the JSON listing parses");
    let items = v["MediaContainer"]["Metadata"].as_array().expect("a Metadata array");
    assert_eq!(items.len(), N);
    assert_eq!((v["MediaContainer"]["size"].as_u64(), v["MediaContainer"]["totalSize"].as_u64()), (Some(N as u64), Some(N as u64)));
    let keys: std::collections::BTreeSet<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), N, "every item once");
}
