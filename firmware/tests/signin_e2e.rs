//! Sign-in that cannot be turned against the box (issue 18 item 3), end to end against the built binary on
//! loopback. Every client binds its own 127.x source address, so the server sees distinct sources.
//! `cargo test -p hearth --test signin_e2e`. The memory figure (A-F4) is `scripts/signin-memory`.

use hearth::auth::lockout::FREE;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

mod common;
use common::{Server, preset};

const OWNER_PW: &str = "blue tiger lamp";

/// A connection to the server from source address `src` (any 127.x address is ours on loopback).
fn connect(src: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{src}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// The bytes of one JSON request (`Connection: close`).
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    req.into_bytes()
}

/// Send `req` on `s` and read the answer: status and body.
fn exchange(mut s: TcpStream, req: &[u8]) -> (u16, Value) {
    s.write_all(req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// One JSON POST from source address `src`.
fn post_from(src: &str, port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    exchange(connect(src, port), &request("POST", path, headers, body))
}

fn sign_in_body(name: &str, password: &str) -> String {
    json!({"name": name, "password": password}).to_string()
}


/// Six wrong passwords from one source block that source, not the owner typing the right one elsewhere; attempts
/// from the WAN never block the LAN.
#[test]
fn a_f7_other_sources_cannot_lock_the_owner_out() {
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.1 is a trusted proxy: its X-Forwarded-For plays WAN sources.
    preset(dir.path(), |s| s.settings.trusted_proxies.push("127.0.0.1/32".parse().unwrap()).unwrap());
    let srv = Server::start(dir.path());
    srv.claim("boss", OWNER_PW);
    let port = srv.port;
    let wrong = sign_in_body("boss", "not the password");
    let right = sign_in_body("boss", OWNER_PW);
    for i in 0..=FREE {
        let (st, v) = post_from("127.0.2.1", port, "/api/v1/sign-in", &[], &wrong);
        assert_eq!(st, 401, "wrong password {i}: {v}");
    }
    let (st, v) = post_from("127.0.2.2", port, "/api/v1/sign-in", &[], &right);
    assert_eq!(st, 200, "the owner from a clean source is not refused by another source's failures: {v}");
    let (st, v) = post_from("127.0.2.3", port, "/api/v1/sign-in", &[], &sign_in_body(" BOSS ", OWNER_PW));
    assert_eq!(st, 200, "{v}");

    // The WAN: a dozen wrong passwords from several internet addresses...
    for i in 0..12 {
        let xff = format!("203.0.113.{}", i + 1);
        let (st, v) = post_from("127.0.0.1", port, "/api/v1/sign-in", &[("X-Forwarded-For", &xff)], &wrong);
        assert!(st == 401 || st == 429, "{st} {v}");
    }
    // ...block neither the owner at home nor the owner on the internet from an address that has not failed.
    let (st, v) = post_from("127.0.2.4", port, "/api/v1/sign-in", &[], &right);
    assert_eq!(st, 200, "WAN attempts do not block the LAN: {v}");
    let (st, v) = post_from("127.0.0.1", port, "/api/v1/sign-in", &[("X-Forwarded-For", "198.51.100.7")], &right);
    assert_eq!(st, 200, "a clean WAN source is not refused by the block other sources caused: {v}");
    srv.stop_cleanly();
}

/// A member's name answers a password sign-in exactly like an unknown name: 401 with the same sentence.
#[test]
fn a_f10_member_names_answer_like_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", OWNER_PW);
    let (st, v) = srv.json("POST", "/api/v1/members", &[("X-Plex-Token", &owner)], Some(r#"{"name":"Kid","pin":"2468"}"#));
    assert_eq!(st, 201, "{v}");
    let port = srv.port;
    let (member, member_body) = post_from("127.0.2.1", port, "/api/v1/sign-in", &[], &sign_in_body("Kid", "some password"));
    let (unknown, unknown_body) = post_from("127.0.2.2", port, "/api/v1/sign-in", &[], &sign_in_body("Nobody", "some password"));
    let (owner_wrong, owner_body) = post_from("127.0.2.3", port, "/api/v1/sign-in", &[], &sign_in_body("Ada", "some password"));
    assert_eq!((member, &member_body), (unknown, &unknown_body), "a member's name must not be told apart");
    assert_eq!((member, &member_body), (owner_wrong, &owner_body));
    assert_eq!(member, 401);
    srv.stop_cleanly();
}

/// Forty concurrent PIN guesses for the owner's profile: at most the lockout budget is checked.
#[test]
fn a_f6_concurrent_guesses_cannot_exceed_the_lockout_budget() {
    const GUESSES: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", OWNER_PW);
    let auth = [("X-Plex-Token", owner.as_str())];
    let (st, v) = srv.json("PUT", "/api/v1/me/pin", &auth, Some(&json!({"current_password": OWNER_PW, "pin": "4321"}).to_string()));
    assert_eq!(st, 200, "{v}");
    let owner_id = srv.json("GET", "/api/v1/me", &auth, None).1["id"].as_u64().unwrap();
    let (st, v) = srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"Kid"}"#));
    assert_eq!(st, 201, "{v}");
    let kid = v["id"].as_u64().unwrap();
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", &owner), ("X-Plex-Client-Identifier", "tv")], Some(&json!({"id": kid}).to_string()));
    assert_eq!(st, 200, "{v}");
    let kid_token = v["token"].as_str().unwrap().to_owned();

    // The member guesses the owner's PIN, all at once from one connection each.
    let go = Arc::new(Barrier::new(GUESSES));
    let port = srv.port;
    let started = Instant::now();
    let guesses: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (go, kid_token) = (go.clone(), kid_token.clone());
            std::thread::spawn(move || {
                let s = connect("127.0.2.9", port);
                let body = json!({"id": owner_id, "pin": format!("{}", 1000 + i)}).to_string();
                let req = request("POST", "/api/v1/home/switch", &[("X-Plex-Token", &kid_token)], &body);
                go.wait();
                exchange(s, &req).0
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    // FREE + 1 at once; a straggler on a loaded machine may start after the first 1 s block ended, and after
    // each later one (1, 2, 4 ... s): at most log2(D + 1) more in D seconds.
    let budget = FREE as usize + 1 + (started.elapsed().as_secs_f64() + 1.0).log2().floor() as usize;
    assert!(statuses.iter().all(|s| [401, 429, 503].contains(s)), "{statuses:?}");
    assert!(count(401) >= 1, "some guesses are checked: {statuses:?}");
    assert!(count(401) + count(503) <= budget, "at most {budget} guesses may be taken from the budget: {statuses:?}");
    srv.stop_cleanly();
}

/// A flood from many sources: every refused-busy answer counts against its source like a failure, so no source
/// gets more attempts than the lockout schedule allows, and a clean source signs in during the flood.
#[test]
fn a_f5_busy_attempts_count_and_a_legit_source_still_signs_in() {
    const SOURCES: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    srv.claim("Ada", OWNER_PW);
    let port = srv.port;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Answers each source has had so far: the flood is at full pressure once every source has spent its free
    // failures, and the clean sign-in must be followed by more of the flood.
    let answered: Arc<Vec<AtomicUsize>> = Arc::new((0..SOURCES).map(|_| AtomicUsize::new(0)).collect());
    let started = Instant::now();
    let attackers: Vec<_> = (0..SOURCES)
        .map(|i| {
            let stop = stop.clone();
            let answered = answered.clone();
            std::thread::spawn(move || {
                let src = format!("127.0.3.{}", i + 1);
                let mut counts = std::collections::BTreeMap::<u16, usize>::new();
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let body = sign_in_body(&format!("guess-{i}-{n}"), "wrong password");
                    let (st, _) = post_from(&src, port, "/api/v1/sign-in", &[], &body);
                    *counts.entry(st).or_default() += 1;
                    answered[i].fetch_add(1, Ordering::SeqCst);
                    if st != 401 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                counts
            })
        })
        .collect();
    let answers = || answered.iter().map(|n| n.load(Ordering::SeqCst)).collect::<Vec<_>>();
    common::wait_for("every source to spend its free failures", 60, || answers().iter().all(|&n| n > FREE as usize).then_some(()));
    let (legit, v) = post_from("127.0.2.2", port, "/api/v1/sign-in", &[], &sign_in_body("Ada", OWNER_PW));
    let after = answers();
    common::wait_for("every source to be answered again after the clean sign-in", 60, || {
        answers().iter().zip(&after).all(|(now, then)| now > then).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let per_source: Vec<_> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    let flood_secs = started.elapsed().as_secs_f64();
    assert_eq!(legit, 200, "a clean source signs in during the flood: {v}");
    // After the free failures each one blocks its source for 1, 2, 4, ... seconds, so in a flood of D seconds a
    // source can have at most FREE + 1 + log2(D + 1) attempts taken from its budget, busy ones included.
    let bound = FREE as usize + 1 + (flood_secs + 1.0).log2().floor() as usize;
    for (i, counts) in per_source.iter().enumerate() {
        let taken = counts.get(&401).unwrap_or(&0) + counts.get(&503).unwrap_or(&0);
        assert!(taken <= bound, "source 127.0.3.{}: {counts:?} in {flood_secs:.1} s (at most {bound})", i + 1);
    }
    srv.stop_cleanly();
}
