//! The setup page and the System API as a browser and the page see them: the built binary on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hearth");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "hearth did not start listening on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, addr }
    }

    /// One request; answers (status, lower-cased head, body).
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String, String) {
        let host = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) { "" } else { "Host: x\r\n" };
        let mut raw = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n");
        for (k, v) in headers {
            raw += &format!("{k}: {v}\r\n");
        }
        if let Some(b) = body {
            raw += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len());
        }
        raw += "\r\n";
        raw += body.unwrap_or("");
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head.to_ascii_lowercase(), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CHROME_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

#[test]
fn browsers_get_the_page_with_its_guards_and_api_clients_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());

    let (st, head, _) = srv.call("GET", "/", &[("Accept", CHROME_ACCEPT)], None);
    assert_eq!(st, 302, "{head}");
    assert!(head.contains("\r\nlocation: /web/"), "{head}");
    // Plex clients and scripts ask for / without text/html: never redirected to a page.
    for accept in ["application/json", "application/xml", "*/*"] {
        let (st, _, _) = srv.call("GET", "/", &[("Accept", accept)], None);
        assert_ne!(st, 302, "{accept}");
    }
    let (st, head, _) = srv.call("GET", "/web", &[], None);
    assert_eq!((st, head.contains("location: /web/")), (302, true));

    let (st, head, body) = srv.call("GET", "/web/", &[("Accept", CHROME_ACCEPT)], None);
    assert_eq!(st, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(head.contains("content-security-policy: default-src 'self'"), "{head}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(body.contains("<script src=\"app.js\""));
    let mut total = body.len();
    for (path, ctype) in [("/web/app.js", "text/javascript"), ("/web/app.css", "text/css")] {
        let (st, head, body) = srv.call("GET", path, &[], None);
        assert_eq!(st, 200, "{path}");
        assert!(head.contains(&format!("content-type: {ctype}")), "{head}");
        assert!(head.contains("content-security-policy:"), "{head}");
        total += body.len();
    }
    assert!(total < 64 * 1024, "the page is {total} bytes");

    // A browser revalidating its cached copy gets 304 and no body while the firmware is the same.
    let (_, head, _) = srv.call("GET", "/web/app.js", &[], None);
    let etag = head.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an ETag").to_string();
    let (st, _, body) = srv.call("GET", "/web/app.js", &[("If-None-Match", &etag)], None);
    assert_eq!((st, body.len()), (304, 0));
    let (st, _, _) = srv.call("GET", "/web/app.js", &[("If-None-Match", "\"0000000000000000\"")], None);
    assert_eq!(st, 200);
}

#[test]
fn system_status_is_for_the_owner_and_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    // Before the claim nothing private answers.
    assert_eq!(srv.call("GET", "/api/v1/system", &[], None).0, 403);

    let claim = r#"{"name":"Ada","password":"hearth by the fire"}"#;
    let (st, _, body) = srv.call("POST", "/api/v1/claim", &[("X-Plex-Client-Identifier", "t1")], Some(claim));
    assert_eq!(st, 201, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_string();

    assert_eq!(srv.call("GET", "/api/v1/system", &[], None).0, 401, "no token after the claim");
    let (st, _, body) = srv.call("GET", "/api/v1/system", &[("X-Plex-Token", &token)], None);
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["recovered_from_damage"], false);
    assert_eq!(v["safe_mode"]["active"], false);
    // The claim was written to flash: the store says so.
    assert!(v["store"]["seq"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["store"]["records_written"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["uptime_seconds"].is_u64());
    // Parts without a source are left out, not made up.
    for absent in ["watchdog", "log", "egress"] {
        assert!(v.get(absent).is_none(), "{absent} has no source in this build: {v}");
    }

    // Secure connections and the certificate: Hearth made its own at the claim.
    let auth = [("X-Plex-Token", token.as_str())];
    let mut cert = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, _, body) = srv.call("GET", "/api/v1/settings/tls", &auth, None);
        cert = serde_json::from_str::<serde_json::Value>(&body).unwrap();
        if !cert["certificate"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cert["secure_connections"], "preferred", "{cert}");
    assert_eq!(cert["certificate"]["custom"], false, "{cert}");
    assert_eq!(cert["certificate"]["sha256"].as_str().unwrap().len(), 32 * 3 - 1, "{cert}");
    let (st, _, body) = srv.call("PUT", "/api/v1/settings/tls", &auth, Some(r#"{"secure_connections":"sometimes"}"#));
    assert_eq!(st, 400, "{body}");
    let (st, _, body) = srv.call("PUT", "/api/v1/settings/tls", &auth, Some(r#"{"certificate_pem":"x"}"#));
    assert!(st == 400 && body.contains("together"), "{body}");
    let key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0IGtleSBtYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
    let bad = serde_json::json!({"certificate_pem": "-----BEGIN CERTIFICATE-----\nbm8=\n-----END CERTIFICATE-----\n", "key_pem": key});
    let (st, _, body) = srv.call("PUT", "/api/v1/settings/tls", &auth, Some(&bad.to_string()));
    assert_eq!(st, 400, "{body}");
    assert!(!body.contains("c2VjcmV0"), "the key is never echoed: {body}");
    let (_, _, after) = srv.call("GET", "/api/v1/settings/tls", &auth, None);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&after).unwrap(), cert, "a refusal changes nothing");
    // Required: plain HTTP is refused from then on (browsers would be sent to https://).
    let (st, _, body) = srv.call("PUT", "/api/v1/settings/tls", &auth, Some(r#"{"secure_connections":"required"}"#));
    assert_eq!(st, 200, "{body}");
    let (st, _, body) = srv.call("GET", "/api/v1/settings/tls", &auth, None);
    assert!(st == 403 && body.contains("secure connections"), "{st} {body}");
    let (st, head, _) = srv.call("GET", "/web/", &[("Host", "box:32400"), ("Accept", CHROME_ACCEPT)], None);
    assert!(st == 301 && head.contains("location: https://box:32400/web/"), "{head}");
}

#[test]
fn system_status_is_refused_to_members() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let claim = r#"{"name":"Ada","password":"hearth by the fire"}"#;
    let (_, _, body) = srv.call("POST", "/api/v1/claim", &[("X-Plex-Client-Identifier", "t1")], Some(claim));
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
    // A member (not the owner) is refused.
    let (st, _, body) =
        srv.call("POST", "/api/v1/members", &[("X-Plex-Token", &token)], Some(r#"{"name":"Kim","pin":"2468"}"#));
    assert_eq!(st, 201, "{body}");
    let kim = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_u64().unwrap();
    let sw = format!(r#"{{"id":{kim},"pin":"2468"}}"#);
    let (st, _, body) = srv.call("POST", "/api/v1/home/switch", &[("X-Plex-Token", &token), ("X-Plex-Client-Identifier", "t2")], Some(&sw));
    assert_eq!(st, 200, "{body}");
    let kim_token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
    assert_eq!(srv.call("GET", "/api/v1/system", &[("X-Plex-Token", &kim_token)], None).0, 403);
}
