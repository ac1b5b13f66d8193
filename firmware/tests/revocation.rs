//! Revocation reaches what is already running, and recovery cleans up what an attacker may have left (review
//! findings A-F11, A-F14). `cargo test -p hearth --test revocation`.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OWNER_PW: &str = "hearth by the fire";

fn ok(srv: &Server, method: &str, path: &str, token: &str, body: Value) -> Value {
    let (st, v) = srv.json(method, path, &[("X-Plex-Token", token)], Some(&body.to_string()));
    assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
    v
}

/// A-F14: after a takeover, recovery gave the owner a new password but left the attacker's admin API token
/// working and said nothing about the accounts the attacker may have made. Now both recovery paths revoke every
/// API token and list the accounts (names and roles, no secrets).
#[test]
fn a_f14_recovery_revokes_api_tokens_and_lists_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", OWNER_PW);
    // What an attacker with the owner's session leaves behind: an admin token and a friend account.
    let tool = ok(&srv, "POST", "/api/v1/tokens", &owner, json!({"name": "backup", "scope": "admin"}));
    let tool = tool["token"].as_str().unwrap().to_owned();
    ok(&srv, "POST", "/api/v1/friends", &owner, json!({"name": "Mallory", "password": "mallory's secret pw"}));
    assert_eq!(srv.json("GET", "/api/v1/system", &[("X-Plex-Token", &tool)], None).0, 200, "the token works");
    srv.stop_cleanly();

    // `hearth recover` on the console.
    let out = common::recover(dir.path(), "recovered at home");
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 API token(s) revoked"), "{said}");
    assert!(said.contains("Ada (owner)") && said.contains("Mallory (friend)"), "the accounts are listed: {said}");
    for secret in ["recovered at home", "mallory's secret pw", tool.as_str()] {
        assert!(!said.contains(secret), "a secret was printed: {said}");
    }
    let srv = Server::start(dir.path());
    let (st, _) = srv.json("GET", "/api/v1/system", &[("X-Plex-Token", &tool)], None);
    assert_eq!(st, 401, "the attacker's admin token is revoked");
    let v = srv.json("POST", "/api/v1/sign-in", &[], Some(&json!({"name": "Ada", "password": "recovered at home"}).to_string())).1;
    let owner = v["token"].as_str().unwrap().to_owned();

    // The recovery file on a box without a console: the same, and the log lists the accounts.
    let tool = ok(&srv, "POST", "/api/v1/tokens", &owner, json!({"name": "again", "scope": "read_library"}));
    let tool = tool["token"].as_str().unwrap().to_owned();
    srv.stop_cleanly();
    std::fs::write(dir.path().join("recover-owner"), "from the file 42\n").unwrap();
    let srv = Server::start(dir.path());
    assert_eq!(srv.json("GET", "/library/sections", &[("X-Plex-Token", &tool)], None).0, 401, "API tokens revoked");
    let v = srv.json("POST", "/api/v1/sign-in", &[], Some(&json!({"name": "Ada", "password": "from the file 42"}).to_string())).1;
    let owner = v["token"].as_str().unwrap().to_owned();
    let log = srv.system(&owner)["log"].to_string();
    assert!(log.contains("owner recovered") && log.contains("Mallory (friend)"), "{log}");
    assert!(!log.contains("from the file 42"), "the password is never logged: {log}");
    srv.stop_cleanly();
}

/// The film: 300 MB, sparse (a real MP4 head, then a hole), in a movie library of a claimed server.
struct Film {
    srv: Server,
    owner: String,
    key: String,
    size: u64,
    _media: tempfile::TempDir,
}

fn film() -> Film {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let size = 300_000_000u64;
    let path = media.path().join("Film (2020).mp4");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"\0\0\0\x10ftypisom\0\0\x02\0").unwrap();
    f.write_all(&(0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>()).unwrap();
    f.set_len(size).unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", OWNER_PW);
    let folder = media.path().to_str().unwrap();
    let lib = ok(&srv, "POST", "/api/v1/libraries", &owner, json!({"name": "Films", "kind": "movies", "folders": [folder]}));
    let lib = lib["id"].as_u64().unwrap();
    let key = srv.first_part(Some(&owner), lib);
    std::mem::forget(dir); // the server's data folder lives as long as the test process
    Film { srv, owner, key, size, _media: media }
}

/// Sign in as the owner from another device; its token and device id.
fn device(srv: &Server, client: &str, password: &str) -> (String, u64) {
    let body = json!({"name": "Ada", "password": password}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[("X-Plex-Client-Identifier", client)], Some(&body));
    assert_eq!(st, 200, "{v}");
    (v["token"].as_str().unwrap().to_owned(), v["device"].as_u64().unwrap())
}

/// Start reading the film with `token` (after `before`, raw requests sent first on the same connection), read
/// 1 MiB of it slowly, call `revoke`, then read on as fast as possible: the body bytes read in all, and whether
/// the connection ended (EOF or reset) within the guard. Without revocation reaching the stream, the client
/// reads the whole 300 MB.
fn read_then(f: &Film, token: &str, before: &str, revoke: impl FnOnce()) -> (u64, bool) {
    let mut s = TcpStream::connect(&f.srv.addr).unwrap();
    let host = format!("Host: {}\r\n", f.srv.addr);
    let req = format!("{before}GET {} HTTP/1.1\r\n{host}X-Plex-Token: {token}\r\n\r\n", f.key);
    s.write_all(req.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = Vec::new();
    // Up to the part's head (the last head on the connection), then 1 MiB of body, slowly.
    let body_start = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the film's head: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        let lower = seen.to_ascii_lowercase();
        if let Some(p) = lower.windows(20).position(|w| w == b"accept-ranges: bytes")
            && let Some(end) = seen[p..].windows(4).position(|w| w == b"\r\n\r\n")
        {
            break p + end + 4;
        }
    };
    let mut read = (seen.len() - body_start) as u64;
    while read < 1 << 20 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended before any revocation");
        read += n as u64;
        std::thread::sleep(Duration::from_millis(2));
    }
    revoke();
    let guard = Instant::now() + Duration::from_secs(5);
    let ended = loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break Instant::now() < guard,
            Ok(n) => read += n as u64,
        }
        if Instant::now() > guard {
            break false;
        }
    };
    (read, ended)
}

/// A-F11: a device revoked (or signed out by a password change) while it streamed kept streaming to the end:
/// 300 MB in 10.8 s after the revocation. Now the running stream ends, on the sendfile fast path and on the
/// copy path (a connection hyper serves after a chunked request), long before the whole film is read.
#[test]
fn a_f11_revoking_a_device_ends_its_running_stream() {
    let f = film();
    let owner = f.owner.clone();
    let revoke = |id: u64| {
        let (st, v) = f.srv.json("DELETE", &format!("/api/v1/devices/{id}"), &[("X-Plex-Token", &owner)], None);
        assert_eq!(st, 200, "{v}");
    };

    // Fast path: revoke the device.
    let (tv, id) = device(&f.srv, "tv", OWNER_PW);
    let (read, ended) = read_then(&f, &tv, "", || revoke(id));
    assert!(ended && read < f.size, "fast path, device revoked: read {read} of {} bytes, ended: {ended}", f.size);

    // Copy path: a chunked request first hands the connection to hyper; the part is copied through FileBody.
    let (tv, id) = device(&f.srv, "tv-copy", OWNER_PW);
    let chunked = format!("GET /identity HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", f.srv.addr);
    let (read, ended) = read_then(&f, &tv, &chunked, || revoke(id));
    assert!(ended && read < f.size, "copy path, device revoked: read {read} of {} bytes, ended: {ended}", f.size);

    // A password change signs the account's other devices out, and so ends their streams.
    let (phone, _) = device(&f.srv, "phone", OWNER_PW);
    let new_pw = "green river stone";
    let (read, ended) = read_then(&f, &phone, "", || {
        let body = json!({"current": OWNER_PW, "new": new_pw}).to_string();
        let (st, v) = f.srv.json("POST", "/api/v1/me/password", &[("X-Plex-Token", &owner)], Some(&body));
        assert_eq!(st, 200, "{v}");
    });
    assert!(ended && read < f.size, "password change: read {read} of {} bytes, ended: {ended}", f.size);

    // An API token revoked ends its stream too.
    let tool = ok(&f.srv, "POST", "/api/v1/tokens", &owner, json!({"name": "player", "scope": "read_library"}));
    let (tool, tool_id) = (tool["token"].as_str().unwrap().to_owned(), tool["id"].as_u64().unwrap());
    let (read, ended) = read_then(&f, &tool, "", || {
        let (st, v) = f.srv.json("DELETE", &format!("/api/v1/tokens/{tool_id}"), &[("X-Plex-Token", &owner)], None);
        assert_eq!(st, 200, "{v}");
    });
    assert!(ended && read < f.size, "API token revoked: read {read} of {} bytes, ended: {ended}", f.size);
}
