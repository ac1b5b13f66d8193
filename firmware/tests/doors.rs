//! End to end against the built binary: the doors against the browser (issue 18, A-F1, A-F2, A-F7's vector).
//! A request a web page on another site could send (a text/plain form, a no-cors fetch, a foreign `Origin`)
//! or a page reached through a rebinding host name is turned away before it reaches a handler, while the
//! setup page on the server's own origin and Plex clients (Host = the address they dialled, no Origin) work.

mod common;

use common::Server;
use serde_json::Value;
use std::path::Path;

/// One raw request with the given head lines (no Host added) and body; (status, body text).
fn send(srv: &Server, method: &str, path: &str, lines: &[&str], body: &str) -> (u16, String) {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for l in lines {
        raw += l;
        raw += "\r\n";
    }
    if !body.is_empty() {
        raw += &format!("Content-Length: {}\r\n", body.len());
    }
    raw += "\r\n";
    raw += body;
    let (status, _, body) = srv.raw(raw.as_bytes());
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn claimed(srv: &Server) -> bool {
    let (st, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!(st, 200, "{v}");
    v["claimed"].as_bool().unwrap()
}

const CLAIM: &str = r#"{"name":"mallory","password":"evil=pass-123","remote_access":true}"#;

#[test]
fn a_f1_cross_site_claim_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path());
    let host = format!("Host: 127.0.0.1:{}", srv.port);
    // What a text/plain form or a no-cors fetch sends: no preflight, any body.
    let (st, text) = send(&srv, "POST", "/api/v1/claim", &[&host, "Content-Type: text/plain"], CLAIM);
    assert_eq!(st, 415, "{text}");
    assert!(text.contains("application/json"), "{text}");
    let (st, text) = send(&srv, "POST", "/api/v1/claim", &[&host, "Content-Type: application/x-www-form-urlencoded"], CLAIM);
    assert_eq!(st, 415, "{text}");
    // A page on another origin (another host, another port, a sandboxed frame) is refused whatever its type.
    for origin in ["http://evil.example", &format!("http://127.0.0.2:{}", srv.port), "http://127.0.0.1:8000", "null"] {
        let (st, text) = send(&srv, "POST", "/api/v1/claim", &[&host, "Content-Type: application/json", &format!("Origin: {origin}")], CLAIM);
        assert_eq!(st, 403, "{origin}: {text}");
        assert!(text.contains("another site"), "{text}");
    }
    // The reviewer's reproduction as a whole: text/plain, foreign Origin, rebinding Host.
    let rebinding = format!("Host: rebind.evil.example:{}", srv.port);
    let lines = [rebinding.as_str(), "Content-Type: text/plain", "Origin: http://evil.example", "Referer: http://evil.example/x"];
    let (st, text) = send(&srv, "POST", "/api/v1/claim", &lines, CLAIM);
    assert_eq!(st, 421, "{text}");
    assert!(!claimed(&srv), "the server stays unclaimed");

    // The setup page on the server's own origin still claims it.
    let own = format!("Origin: http://127.0.0.1:{}", srv.port);
    let body = r#"{"name":"ada","password":"correct horse"}"#;
    let (st, text) = send(&srv, "POST", "/api/v1/claim", &[&host, &own, "Content-Type: application/json; charset=utf-8"], body);
    assert_eq!(st, 201, "{text}");
    assert!(claimed(&srv));
}

#[test]
fn a_f7_cross_site_sign_in_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path());
    srv.claim("boss", "the right one");
    let host = format!("Host: 127.0.0.1:{}", srv.port);
    let right = r#"{"name":"boss","password":"the right one"}"#;
    let wrong = r#"{"name":"boss","password":"guess"}"#;
    // A page on another site cannot sign in (so it cannot guess, nor lock the owner out by guessing)...
    for _ in 0..8 {
        let (st, text) = send(&srv, "POST", "/api/v1/sign-in", &[&host, "Content-Type: text/plain"], wrong);
        assert_eq!(st, 415, "{text}");
        let (st, text) = send(&srv, "POST", "/api/v1/sign-in", &[&host, "Content-Type: application/json", "Origin: https://evil.example"], wrong);
        assert_eq!(st, 403, "{text}");
    }
    let (st, text) = send(&srv, "POST", "/api/v1/sign-in", &[&host, "Content-Type: text/plain"], right);
    assert_eq!(st, 415, "not even with the right password: {text}");
    // ...and none of that counted against the owner, who signs in from the real page.
    let own = format!("Origin: http://127.0.0.1:{}", srv.port);
    let (st, text) = send(&srv, "POST", "/api/v1/sign-in", &[&host, &own, "Content-Type: application/json", "Accept: application/json"], right);
    assert_eq!(st, 200, "{text}");
    let token: Value = serde_json::from_str(&text).unwrap();
    assert!(token["token"].is_string(), "{text}");
}

/// A claimed server whose loopback is allowed without auth (what the reviewer's rebinding reproduction used),
/// with one Movies library holding one film; the owner token and the film's part path.
fn open_server_with_a_film(srv: &Server, media: &Path) -> (String, String) {
    let token = srv.claim("ada", "correct horse");
    let auth = [("X-Plex-Token", token.as_str())];
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"allowed_without_auth":["127.0.0.1/32"]}"#));
    assert_eq!(st, 200, "{v}");
    let film = media.join("Film (2020).mp4");
    std::fs::create_dir_all(media).unwrap();
    let mut bytes = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    bytes.extend((0..50_000).map(|i| (i * 7 % 251) as u8));
    std::fs::write(&film, &bytes).unwrap();
    let body = serde_json::json!({ "name": "Films", "kind": "movies", "folders": [media] }).to_string();
    let (st, v) = srv.json("POST", "/api/v1/libraries", &auth, Some(&body));
    assert_eq!(st, 201, "{v}");
    let part = srv.first_part(None, 1);
    (token, part)
}

#[test]
fn a_f2_rebinding_host_is_misdirected() {
    let data = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path());
    let (token, part) = open_server_with_a_film(&srv, media.path());
    let token_line = format!("X-Plex-Token: {token}");
    let paths = ["/library/sections", part.as_str(), "/web/", "/api/v1/me", "/identity"];
    for host in ["attacker.example", &format!("attacker.example:{}", srv.port), "127.0.0.1.nip.io", "hearth.example"] {
        for path in paths {
            let host_line = format!("Host: {host}");
            let (st, text) = send(&srv, "GET", path, &[&host_line, &token_line, "Accept: application/json"], "");
            assert_eq!(st, 421, "{host} {path}: {text}");
            assert!(text.contains("Network settings"), "{text}");
            assert!(!text.contains("Films") && !text.contains("ada"), "nothing useful: {text}");
        }
    }
    // A part as the second request on a kept-alive connection takes the fast path too.
    let raw = format!(
        "GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET {part} HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"
    );
    let (st, _, rest) = srv.raw(raw.as_bytes());
    assert_eq!(st, 200);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("HTTP/1.1 421"), "{rest}");

    // What Plex clients and python-plexapi send: the address they dialled, with its port, and no Origin.
    for host in [format!("127.0.0.1:{}", srv.port), format!("localhost:{}", srv.port), format!("[::1]:{}", srv.port)] {
        let host_line = format!("Host: {host}");
        for path in paths {
            let (st, text) = send(&srv, "GET", path, &[&host_line, &token_line, "Accept: application/json"], "");
            assert_eq!(st, 200, "{host} {path}: {text}");
        }
    }
    // RFC 9112 §3.2: HTTP/1.1 needs a Host; HTTP/1.0 may omit it.
    let (st, _, _) = srv.raw(b"GET /identity HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(st, 400);
    let (st, _, _) = srv.raw(b"GET /identity HTTP/1.0\r\n\r\n");
    assert_eq!(st, 200);
}

#[test]
fn a_host_name_the_owner_adds_is_accepted() {
    let data = tempfile::tempdir().unwrap();
    let srv = Server::start(data.path());
    let token = srv.claim("ada", "correct horse");
    let auth = [("X-Plex-Token", token.as_str())];
    let named = format!("Host: Home.Example.NET.:{}", srv.port);
    let (st, _) = send(&srv, "GET", "/identity", &[&named], "");
    assert_eq!(st, 421, "not before the owner adds it");
    // A bad name is refused with a reason and changes nothing.
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"host_names":["home.example.net","not a name"]}"#));
    assert_eq!(st, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("not a name"), "{v}");
    let (_, v) = srv.json("GET", "/api/v1/settings/network", &auth, None);
    assert_eq!(v["host_names"], serde_json::json!([]), "{v}");
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"host_names":["Home.Example.Net."]}"#));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["host_names"], serde_json::json!(["home.example.net"]), "{v}");
    let (st, text) = send(&srv, "GET", "/identity", &[&named], "");
    assert_eq!(st, 200, "{text}");
    // The page on that name may change things too (same origin).
    let own = format!("Origin: https://home.example.net:{}", srv.port);
    let (st, text) = send(&srv, "PUT", "/api/v1/settings/network", &[&named, &own, &format!("X-Plex-Token: {token}"), "Content-Type: application/json"], r#"{"treat_wan_ip_as_lan":true}"#);
    assert_eq!(st, 200, "{text}");
    // It is kept across a restart.
    srv.stop_cleanly();
    let srv = Server::start(data.path());
    let named = format!("Host: home.example.net:{}", srv.port);
    assert_eq!(send(&srv, "GET", "/identity", &[&named], "").0, 200);
}
