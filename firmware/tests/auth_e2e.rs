//! End to end against the built binary on 127.0.0.1: claim, sign-in, Home member with PIN, revocation,
//! restart, owner recovery. `cargo test -p hearth --test auth_e2e`.
//! Sign-in floods (lockout budget, fair hashing line, a clean source signing in during a flood) are asserted in
//! `signin_e2e.rs`; the memory they cost is printed by `scripts/signin-memory`.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Server, preset};


/// One HTTP/1.1 request by port (for threads that do not hold the server): the status and the body text.
fn http_raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn tok(t: &str) -> String {
    t.to_owned()
}

fn msg(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or("").to_owned()
}


const OWNER_PW: &str = "blue tiger lamp";

fn claim(srv: &Server) -> String {
    let (st, v) = srv.json("POST", "/api/v1/claim", &[("X-Plex-Client-Identifier", "laptop-1")], Some(&json!({"name": "Ada", "password": OWNER_PW}).to_string()));
    assert_eq!(st, 201, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

#[test]
fn claim_is_refused_from_outside_the_lan() {
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.1 is a trusted proxy: X-Forwarded-For says where the request comes from.
    preset(dir.path(), |s| s.settings.trusted_proxies.push("127.0.0.1/32".parse().unwrap()).unwrap());
    let srv = Server::start(dir.path());
    let wan = [("X-Forwarded-For", "203.0.113.9")];
    let (st, v) = srv.json("GET", "/api/v1/server", &wan, None);
    assert_eq!((st, v["your_origin"].as_str()), (200, Some("wan")));
    let body = json!({"name": "Mallory", "password": "a good password"}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/claim", &wan, Some(&body));
    assert_eq!(st, 403, "{v}");
    assert!(msg(&v).contains("local network"), "{v}");
    // Nothing else private answers before the claim either, from anywhere.
    assert_eq!(srv.json("GET", "/api/v1/members", &[], None).0, 403);
    assert_eq!(srv.json("POST", "/api/v1/sign-in", &[], Some(&body)).0, 403);
    let (_, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!(v["claimed"], false, "the refused claim changed nothing");
    // The same request from the LAN (no forwarding) claims.
    let (st, v) = srv.json("POST", "/api/v1/claim", &[], Some(&body));
    assert_eq!(st, 201, "{v}");
    let owner = v["token"].as_str().unwrap().to_owned();
    assert_eq!(srv.json("POST", "/api/v1/claim", &[], Some(&body)).0, 409, "claimed once only");
    // The lan_networks setting decides too: with 10.0.0.0/8 as the LAN, 127.0.0.1 is WAN.
    let auth = [("X-Plex-Token", owner.as_str())];
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"lan_networks":["10.0.0.0/8"]}"#));
    assert_eq!(st, 200, "{v}");
    assert_eq!(srv.json("GET", "/api/v1/server", &[], None).1["your_origin"], "wan");
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"lan_networks":["10.0.0.0/33"]}"#));
    assert_eq!(st, 400, "{v}");
    assert_eq!(srv.json("GET", "/api/v1/settings/network", &auth, None).1["lan_networks"], json!(["10.0.0.0/8"]));
    srv.stop_cleanly();
}

#[test]
fn accounts_home_revocation_restart_and_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let (_, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!((v["claimed"].as_bool(), v["your_origin"].as_str()), (Some(false), Some("lan")));

    // Claim with a weak password is refused with the reason; nothing changes.
    let (st, v) = srv.json("POST", "/api/v1/claim", &[], Some(r#"{"name":"Ada","password":"short"}"#));
    assert_eq!(st, 400);
    assert!(msg(&v).contains("at least 8"), "{v}");
    let owner = claim(&srv);

    // Sign-in: wrong password 401, right password a token for a second device.
    let (st, _) = srv.json("POST", "/api/v1/sign-in", &[], Some(&json!({"name": "ada", "password": "wrong password"}).to_string()));
    assert_eq!(st, 401);
    let phone_hdrs = [("X-Plex-Client-Identifier", "phone-7"), ("X-Plex-Product", "Plex for iOS"), ("X-Plex-Device-Name", "Ada's phone")];
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &phone_hdrs, Some(&json!({"name": "Ada", "password": OWNER_PW}).to_string()));
    assert_eq!(st, 200, "{v}");
    let phone = tok(v["token"].as_str().unwrap());
    let phone_device = v["device"].as_u64().unwrap();
    assert_ne!(phone, owner);

    // Tokens: header, Bearer, query parameter; none → 401; garbage → 401.
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &phone)], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("Authorization", &format!("Bearer {phone}"))], None).0, 200);
    assert_eq!(srv.json("GET", &format!("/api/v1/me?X-Plex-Token={phone}"), &[], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/me", &[], None).0, 401);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", "garbage")], None).0, 401);
    let (_, v) = srv.json("GET", "/api/v1/devices", &[("X-Plex-Token", &owner)], None);
    let names: Vec<&str> = v["devices"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Ada's phone"), "{v}");

    // Bad input: 413, 400, 409 — and nothing stored changes.
    let auth = [("X-Plex-Token", owner.as_str())];
    let big = vec![b' '; hearth::http::MAX_BODY + 1];
    assert_eq!(http_raw(srv.port, "POST", "/api/v1/members", &auth, Some(&big)).0, 413);
    let (st, v) = srv.json("POST", "/api/v1/members", &auth, Some("{\"name\": "));
    assert_eq!(st, 400);
    assert!(msg(&v).contains("JSON"), "{v}");
    assert_eq!(srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"Kid","pin":"12a4"}"#)).0, 400);
    let (st, v) = srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"Kid","shares":[9]}"#));
    assert_eq!(st, 400);
    assert!(msg(&v).contains("does not exist"), "{v}");
    assert_eq!(srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"ada"}"#)).0, 409);
    let (_, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!((v["secured"].as_bool(), v["dlna_effectively_on"].as_bool()), (Some(false), Some(true)));

    // A member with a PIN secures the server and turns DLNA off.
    let (st, v) = srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"Kid","pin":"2468"}"#));
    assert_eq!(st, 201, "{v}");
    let kid = v["id"].as_u64().unwrap();
    assert_eq!(v["server_secured"], true);
    let (_, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!((v["secured"].as_bool(), v["dlna_effectively_on"].as_bool()), (Some(true), Some(false)));

    // Switch to the member: wrong PIN 401, right PIN a member token that cannot manage the Home.
    let sw = |pin: &str| json!({"id": kid, "pin": pin}).to_string();
    assert_eq!(srv.json("POST", "/api/v1/home/switch", &auth, Some(&sw("0000"))).0, 401);
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", &owner), ("X-Plex-Client-Identifier", "tv-1")], Some(&sw("2468")));
    assert_eq!(st, 200, "{v}");
    let kid_token = tok(v["token"].as_str().unwrap());
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &kid_token)], None).1["name"], "Kid");
    assert_eq!(srv.json("GET", "/api/v1/members", &[("X-Plex-Token", &kid_token)], None).0, 403);

    // DLNA comes back only with the warning acknowledged.
    let (st, v) = srv.json("PUT", "/api/v1/settings/dlna", &auth, Some(r#"{"enabled":true}"#));
    assert_eq!(st, 409);
    assert!(msg(&v).contains("unrestricted access"), "{v}");
    let (st, v) = srv.json("PUT", "/api/v1/settings/dlna", &auth, Some(r#"{"enabled":true,"acknowledge_warning":true}"#));
    assert_eq!((st, v["effectively_on"].as_bool()), (200, Some(true)), "{v}");

    // Revoke the phone: it gets 401 telling it to sign in again.
    assert_eq!(srv.json("DELETE", &format!("/api/v1/devices/{phone_device}"), &auth, None).0, 200);
    let (st, v) = srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &phone)], None);
    assert_eq!(st, 401);
    assert!(msg(&v).contains("Sign in again"), "{v}");

    // Restart: accounts, tokens and revocations survive.
    srv.stop_cleanly();
    let srv = Server::start(dir.path());
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &owner)], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &kid_token)], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &phone)], None).0, 401);
    let (_, v) = srv.json("GET", "/api/v1/server", &[], None);
    assert_eq!((v["secured"].as_bool(), v["dlna_effectively_on"].as_bool()), (Some(true), Some(true)));

    // A password change signs out the account's other devices, not this one.
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &phone_hdrs, Some(&json!({"name": "Ada", "password": OWNER_PW}).to_string()));
    assert_eq!(st, 200, "{v}");
    let phone = tok(v["token"].as_str().unwrap());
    let new_pw = "green river stone";
    let (st, v) = srv.json("POST", "/api/v1/me/password", &[("X-Plex-Token", &phone)], Some(&json!({"current": OWNER_PW, "new": new_pw}).to_string()));
    assert_eq!((st, v["signed_out_devices"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &owner)], None).0, 401);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &phone)], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &kid_token)], None).0, 200, "other accounts keep their devices");

    // `hearth recover` refuses while the server runs (the data folder is locked)...
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["recover", "--password-stdin", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"), "{}", String::from_utf8_lossy(&out.stderr));
    srv.stop_cleanly();
    // ...and with the server stopped: new password, no PIN, owner devices signed out, nothing else touched.
    let out = common::recover(dir.path(), "recovered at home");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let srv = Server::start(dir.path());
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &phone)], None).0, 401, "owner devices signed out");
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &kid_token)], None).0, 200, "members untouched");
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[], Some(&json!({"name": "Ada", "password": "recovered at home"}).to_string()));
    assert_eq!(st, 200, "{v}");
    let owner = tok(v["token"].as_str().unwrap());
    let (_, v) = srv.json("GET", "/api/v1/members", &[("X-Plex-Token", &owner)], None);
    assert_eq!(v["accounts"].as_array().unwrap().len(), 1, "{v}");
    srv.stop_cleanly();

    // The recovery file: applied at the next start, then deleted.
    let file = dir.path().join("recover-owner");
    std::fs::write(&file, "from the file 42\n").unwrap();
    let srv = Server::start(dir.path());
    assert!(!file.exists(), "the recovery file is deleted");
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &owner)], None).0, 401);
    let (st, _) = srv.json("POST", "/api/v1/sign-in", &[], Some(&json!({"name": "Ada", "password": "from the file 42"}).to_string()));
    assert_eq!(st, 200);
    srv.stop_cleanly();
}

#[test]
fn friends_api_tokens_and_lockout() {
    let dir = tempfile::tempdir().unwrap();
    // Libraries are made by the library room; here they are put straight into the state. 127.0.0.1 is a trusted
    // proxy so X-Forwarded-For can play a remote attacker.
    preset(dir.path(), |s| {
        use hearth::state::{Library, LibraryKind};
        s.libraries.push(Library { id: 1, kind: LibraryKind::Movies, name: "Films".try_into().unwrap() }).unwrap();
        s.libraries.push(Library { id: 2, kind: LibraryKind::Music, name: "Music".try_into().unwrap() }).unwrap();
        s.settings.trusted_proxies.push("127.0.0.1/32".parse().unwrap()).unwrap();
    });
    let srv = Server::start(dir.path());
    let owner = claim(&srv);
    let auth = [("X-Plex-Token", owner.as_str())];

    // Friends: shares must exist; the password must be good; names are unique.
    let (st, v) = srv.json("POST", "/api/v1/friends", &auth, Some(r#"{"name":"Bob","password":"bobs own secret","shares":[3]}"#));
    assert_eq!(st, 400, "{v}");
    assert_eq!(srv.json("POST", "/api/v1/friends", &auth, Some(r#"{"name":"Bob","shares":[1]}"#)).0, 400);
    let (st, v) = srv.json("POST", "/api/v1/friends", &auth, Some(r#"{"name":"Bob","password":"bobs own secret","shares":[1]}"#));
    assert_eq!(st, 201, "{v}");
    let bob = v["id"].as_u64().unwrap();
    assert_eq!(v["shares"], json!([1]));
    assert_eq!(v["server_secured"], false, "a friend without a PIN does not secure the server");
    assert_eq!(srv.json("POST", "/api/v1/friends", &auth, Some(r#"{"name":"BOB","password":"another secret 1"}"#)).0, 409);
    // Bob signs in from the internet and may not manage anything.
    let wan = ("X-Forwarded-For", "198.51.100.20");
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[wan], Some(r#"{"name":"bob","password":"bobs own secret"}"#));
    assert_eq!(st, 200, "{v}");
    let bob_token = tok(v["token"].as_str().unwrap());
    let (st, v) = srv.json("GET", "/api/v1/me", &[wan, ("X-Plex-Token", &bob_token)], None);
    assert_eq!((st, v["shares"].clone()), (200, json!([1])));
    assert_eq!(srv.json("GET", "/api/v1/friends", &[("X-Plex-Token", &bob_token)], None).0, 403);
    assert_eq!(srv.json("GET", "/api/v1/home/users", &[("X-Plex-Token", &bob_token)], None).0, 403);
    // The owner resets Bob's password: his devices are signed out.
    let (st, v) = srv.json("PATCH", &format!("/api/v1/friends/{bob}"), &auth, Some(r#"{"password":"a new bob secret","shares":[1,2]}"#));
    assert_eq!((st, v["signed_out_devices"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(srv.json("GET", "/api/v1/me", &[("X-Plex-Token", &bob_token)], None).0, 401);
    assert_eq!(srv.json("DELETE", "/api/v1/friends/4242", &auth, None).0, 404);
    let (_, me) = srv.json("GET", "/api/v1/me", &auth, None);
    let owner_id = me["id"].as_u64().unwrap();
    for kind in ["friends", "members"] {
        let (st, v) = srv.json("DELETE", &format!("/api/v1/{kind}/{owner_id}"), &auth, None);
        assert_eq!(st, 400, "{v}");
        assert!(msg(&v).contains("owner cannot be removed"), "{v}");
    }
    assert_eq!(srv.json("GET", "/api/v1/me", &auth, None).0, 200, "the owner is still there");

    // API tokens: shown once, scoped, listed without the token, revocable.
    let (st, v) = srv.json("POST", "/api/v1/tokens", &auth, Some(r#"{"name":"hook","scope":"read_library"}"#));
    assert_eq!(st, 201, "{v}");
    let (read_id, read_token) = (v["id"].as_u64().unwrap(), tok(v["token"].as_str().unwrap()));
    let (st, v) = srv.json("POST", "/api/v1/tokens", &auth, Some(r#"{"name":"admin script","scope":"admin"}"#));
    assert_eq!(st, 201, "{v}");
    let admin_token = tok(v["token"].as_str().unwrap());
    assert_eq!(srv.json("POST", "/api/v1/tokens", &auth, Some(r#"{"name":"x","scope":"root"}"#)).0, 400);
    assert_eq!(srv.json("POST", "/api/v1/tokens", &auth, Some(r#"{"name":"HOOK","scope":"admin"}"#)).0, 409);
    let (_, v) = srv.json("GET", "/api/v1/tokens", &auth, None);
    assert!(!v.to_string().contains(&read_token), "the list never shows tokens");
    assert_eq!(srv.json("GET", "/api/v1/friends", &[("X-Plex-Token", &admin_token)], None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/friends", &[("X-Plex-Token", &read_token)], None).0, 403);
    assert_eq!(srv.json("DELETE", &format!("/api/v1/tokens/{read_id}"), &auth, None).0, 200);
    assert_eq!(srv.json("GET", "/api/v1/friends", &[("X-Plex-Token", &read_token)], None).0, 401);

    // Lockout: a remote attacker walking the owner's password is slowed down and told when to retry...
    let attacker = ("X-Forwarded-For", "203.0.113.66");
    let wrong = json!({"name": "Ada", "password": "not the password"}).to_string();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let (st, _) = http_raw(srv.port, "POST", "/api/v1/sign-in", &[attacker], Some(wrong.as_bytes()));
        statuses.push(st);
    }
    assert_eq!(&statuses[..6], &[401; 6], "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    let (_, text) = http_raw(srv.port, "POST", "/api/v1/sign-in", &[attacker], Some(wrong.as_bytes()));
    assert!(text.contains("try again in"), "{text}");
    // ...even with the right password while blocked, from that address...
    let right = json!({"name": "Ada", "password": OWNER_PW}).to_string();
    assert_eq!(http_raw(srv.port, "POST", "/api/v1/sign-in", &[attacker], Some(right.as_bytes())).0, 429);
    // ...while the owner at home is not locked out.
    assert_eq!(http_raw(srv.port, "POST", "/api/v1/sign-in", &[], Some(right.as_bytes())).0, 200);
    srv.stop_cleanly();
}
