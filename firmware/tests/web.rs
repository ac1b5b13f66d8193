//! The setup page and the System API as a browser and the page see them: the built binary on 127.0.0.1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

mod common;
use common::Server;

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
    assert!(body.contains("<script src=\"watch.js\""));
    for (path, ctype) in [("/web/app.js", "text/javascript"), ("/web/app.css", "text/css"), ("/web/watch.js", "text/javascript")] {
        let (st, head, body) = srv.call("GET", path, &[], None);
        assert_eq!(st, 200, "{path}");
        assert!(head.contains(&format!("content-type: {ctype}")), "{head}");
        assert!(head.contains("content-security-policy:"), "{head}");
        total += body.len();
    }
    assert!(total < hearth::http::web::BUDGET, "the page is {total} bytes");

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

    let token = srv.claim("Ada", "hearth by the fire");

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
    // Its wear so far and the pace it keeps (R-F8): figures the System screen shows in a line.
    assert!(v["store"]["erases_per_block"].is_u64() && v["store"]["slot_bytes"].as_u64() > Some(0), "{v}");
    assert_eq!(v["store"]["write_budget"]["erases_per_block_per_hour"], 2.0, "{v}");
    assert!(v["uptime_seconds"].is_u64());
    // The parts of the System screen that read live sources are there, in the shapes the page reads.
    assert!(v["watchdog"].is_object() && v["log"].is_array(), "{v}");
    for class in ["lan_bytes", "remote_stream_bytes", "remote_download_bytes"] {
        assert!(v["egress"][class].is_u64(), "{class}: {v}");
    }

    // Secure connections and the certificate: Hearth made its own at the claim.
    let auth = [("X-Plex-Token", token.as_str())];
    let cert = common::wait_for("the certificate Hearth makes at the claim", 5, || {
        let (_, _, body) = srv.call("GET", "/api/v1/settings/tls", &auth, None);
        let cert = serde_json::from_str::<serde_json::Value>(&body).unwrap();
        (!cert["certificate"].is_null()).then_some(cert)
    });
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
    let (st, head, _) = srv.call("GET", "/web/", &[("Host", "localhost:32400"), ("Accept", CHROME_ACCEPT)], None);
    assert!(st == 301 && head.contains("location: https://localhost:32400/web/"), "{head}");
}

/// Bytes that look like an MP4 to the library's recogniser, then `len` bytes of a pattern.
fn fake_mp4(path: &Path, len: usize) -> Vec<u8> {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..len).map(|i| (i * 7 % 251) as u8));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &v).unwrap();
    v
}

/// A GET whose body is bytes (media), on its own connection: (status, body).
fn get_bytes(srv: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        raw += &format!("{k}: {v}\r\n");
    }
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(format!("{raw}\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let status = String::from_utf8_lossy(&out[9..12]).parse().unwrap_or(0);
    (status, out[end..].to_vec())
}

fn egress(srv: &Server, token: &str) -> [u64; 3] {
    let v = srv.system(token);
    ["lan_bytes", "remote_stream_bytes", "remote_download_bytes"].map(|k| v["egress"][k].as_u64().expect(k))
}

/// Poll the egress counters until `want` holds (a counter grows right after the send that fed the client).
fn egress_until(srv: &Server, token: &str, want: impl Fn([u64; 3]) -> bool) -> [u64; 3] {
    common::wait_for("the egress counters", 5, || Some(egress(srv, token)).filter(|e| want(*e)))
}

#[test]
fn the_system_screen_counts_egress_per_class_and_shows_the_log_and_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let film = fake_mp4(&dir.path().join("media/Big.Buck.Bunny.2008.mp4"), 256 * 1024);
    let size = film.len() as u64;
    let srv = Server::start(&dir.path().join("data"));
    let password = "hearth by the fire";
    let token = srv.claim("Ada", password);
    let auth = [("X-Plex-Token", token.as_str()), ("Accept", "application/json")];

    // Nothing has been streamed yet.
    assert_eq!(egress(&srv, &token), [0, 0, 0]);

    let lib = format!(r#"{{"name":"Films","kind":"movies","folders":["{}"]}}"#, dir.path().join("media").display());
    let (st, _, body) = srv.call("POST", "/api/v1/libraries", &auth, Some(&lib));
    assert_eq!(st, 201, "{body}");
    let key = srv.first_part(Some(&token), 1);

    // LAN (loopback is LAN by default), the sendfile fast path: the whole film.
    let (st, body) = get_bytes(&srv, &key, &[("X-Plex-Token", &token)]);
    assert_eq!((st, body == film), (200, true));
    let e = egress_until(&srv, &token, |e| e[0] >= size);
    assert_eq!(e, [size, 0, 0], "only the LAN counter grew, by the film's bytes");

    // LAN through hyper (a part request after an API request on one connection is copied): a range of 1000.
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(
        s,
        "GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET {key} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nRange: bytes=1000-1999\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(out.ends_with(&film[1000..2000]), "the range came back");
    let e = egress_until(&srv, &token, |e| e[0] >= size + 1000);
    assert_eq!(e, [size + 1000, 0, 0]);

    // With the LAN declared elsewhere, loopback is remote: a stream and a download land in their classes.
    let (st, _, body) = srv.call("PUT", "/api/v1/bandwidth", &auth, Some(r#"{"lan_networks":["10.0.0.0/8"]}"#));
    assert_eq!(st, 200, "{body}");
    let (st, body) = get_bytes(&srv, &key, &[("X-Plex-Token", &token), ("Range", "bytes=0-4095")]);
    assert_eq!((st, &body[..]), (206, &film[..4096]));
    egress_until(&srv, &token, |e| e == [size + 1000, 4096, 0]);
    let (st, body) = get_bytes(&srv, &format!("{key}?download=1"), &[("X-Plex-Token", &token)]);
    assert_eq!((st, body == film), (200, true));
    egress_until(&srv, &token, |e| e == [size + 1000, 4096, size]);

    // The recent log shows a failed sign-in with its source address, and never a secret.
    let wrong = "not the password at all";
    let (st, _, _) = srv.call("POST", "/api/v1/sign-in", &[("X-Plex-Client-Identifier", "t9")], Some(&format!(r#"{{"name":"Ada","password":"{wrong}"}}"#)));
    assert_eq!(st, 401);
    let v = srv.system(&token);
    let log: Vec<&str> = v["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let failed = log.iter().find(|l| l.contains("failed sign-in attempt")).unwrap_or_else(|| panic!("{log:#?}"));
    assert!(failed.contains("WARN") && failed.contains("127.0.0.1"), "{failed}");
    for secret in [wrong, password, token.as_str()] {
        assert!(!log.iter().any(|l| l.contains(secret)), "a secret in the log: {log:#?}");
    }

    // `hearth serve` on a host: the heartbeat checks run without a device, and the screen says why.
    assert!(v["watchdog"]["Device"].as_str().unwrap().starts_with("none: "), "{v}");
    assert!(v["watchdog"]["Petting"].as_str().unwrap().starts_with("no device"), "{v}");
    assert!(v["watchdog"]["Heartbeat: runtime canary"].as_str().unwrap().ends_with(" s ago"), "{v}");
    // The server's own memory, as the owner sees it (a few MiB resident; the peak is never below it).
    let (rss, peak) = (v["memory"]["rss_kib"].as_u64().unwrap(), v["memory"]["peak_rss_kib"].as_u64().unwrap());
    assert!(rss > 1024 && peak >= rss, "{v}");
}

#[test]
fn system_status_is_refused_to_members() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let token = srv.claim("Ada", "hearth by the fire");
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

/// What the web client asks before it plays (`GET /api/v1/me`): whether this caller's streams are remote, and the
/// most one remote stream gets (the stream cap, never above the upload cap). The LAN is never limited.
#[test]
fn me_says_whether_the_caller_is_remote_and_its_stream_limit() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let token = srv.claim("Ada", "hearth by the fire");
    let auth = [("X-Plex-Token", token.as_str())];
    let me = || {
        let (st, v) = srv.json("GET", "/api/v1/me", &auth, None);
        assert_eq!(st, 200, "{v}");
        (v["remote"].clone(), v["stream_limit_kbps"].clone())
    };
    let put = |body: &str| assert_eq!(srv.json("PUT", "/api/v1/bandwidth", &auth, Some(body)).0, 200, "{body}");
    assert_eq!(me(), (false.into(), serde_json::Value::Null));
    put(r#"{"stream_kbps":2000,"upload_kbps":1500}"#);
    assert_eq!(me(), (false.into(), serde_json::Value::Null), "the LAN is not limited");
    // The owner lists the LAN networks without loopback: this caller is now outside them.
    put(r#"{"lan_networks":["192.0.2.0/24"]}"#);
    assert_eq!(me(), (true.into(), 1500.into()), "the upload cap is below the stream cap");
    put(r#"{"upload_kbps":0}"#);
    assert_eq!(me(), (true.into(), 2000.into()));
    put(r#"{"stream_kbps":0}"#);
    assert_eq!(me(), (true.into(), serde_json::Value::Null), "no cap set: no limit");
}
