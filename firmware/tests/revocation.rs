//! Revocation reaches what is already running, and recovery cleans up what an attacker may have left (review
//! findings A-F11, A-F14). `cargo test -p hearth --test revocation`.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

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
    let mut rec = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["recover", "--password-stdin", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rec.stdin.take().unwrap().write_all(b"recovered at home\n").unwrap();
    let out = rec.wait_with_output().unwrap();
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
