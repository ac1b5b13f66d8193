//! /api/v1/remote against the real listener and the real remote task, in-process; the reflector as the
//! built `hearth reflector` binary on loopback. (The router side is proven in tests/netlab/run.)

mod common;

use hearth::http;
use hearth::remote;
use hearth::state::{self, Handle, State};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Box_ {
    addr: SocketAddr,
    handle: Handle,
    ctx: Arc<http::Ctx>,
    _srv: common::InProcess,
}

/// The owner's admin API token for every test server (the hash goes into each claimed state).
fn owner_token() -> &'static (String, hearth::state::TokenHash) {
    static TOKEN: std::sync::OnceLock<(String, hearth::state::TokenHash)> = std::sync::OnceLock::new();
    TOKEN.get_or_init(hearth::auth::token::mint)
}

/// An in-process server (tests/common) with the remote-access task beside it; claimed: an owner and the
/// owner's admin API token.
async fn start(claimed: bool) -> Box_ {
    let b = start_without_task(claimed).await;
    let srv = &b._srv;
    let cfg = remote::Config { internal_port: srv.addr.port(), check_every: Duration::from_secs(1), ..Default::default() };
    let beat = hearth::system::watchdog::Heartbeats::default().register("remote access");
    tokio::spawn(remote::run(srv.handle.clone(), srv.ctx.remote.clone(), cfg, srv.stopping(), beat));
    b
}

/// The server without the remote-access task: for tests of what the API itself does with the settings (the task,
/// when running with remote access disabled, forgets a stored mapping on its own and would race them).
async fn start_without_task(claimed: bool) -> Box_ {
    let mut s = State::new([9; 16]);
    if claimed {
        s.accounts.push(common::test_owner()).unwrap();
        s.api_tokens
            .push(hearth::state::ApiToken {
                id: 2,
                name: state::bounded("name", "remote tests").unwrap(),
                scope: hearth::state::Scope::Admin,
                token: owner_token().1,
                created: 0,
            })
            .unwrap();
        s.next_id = 3;
    }
    let srv = common::InProcess::start(s).await;
    Box_ { addr: srv.addr, handle: srv.handle.clone(), ctx: srv.ctx.clone(), _srv: srv }
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Type: application/json\r\n\
         X-Plex-Token: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        owner_token().0,
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let text = String::from_utf8(out).unwrap();
    let code: u16 = text[9..12].parse().unwrap();
    let json = text.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null)).unwrap();
    (code, json)
}

async fn wait_state(b: &Box_, want: &str, after: u64) -> Value {
    for _ in 0..400 {
        let (_, v) = call(b.addr, "GET", "/api/v1/remote", None).await;
        if v["attempts"].as_u64().unwrap() > after && v["status"]["state"] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never became {want}");
}

#[tokio::test]
async fn an_unclaimed_server_refuses_remote_access() {
    let b = start(false).await;
    // Before the claim the access rule refuses every owner route, remote access included.
    let (code, v) = call(b.addr, "POST", "/api/v1/remote/enable", None).await;
    assert_eq!(code, 403);
    assert!(v["error"]["message"].as_str().unwrap().contains("not claimed yet"), "{v}");
    let (code, _) = call(b.addr, "PUT", "/api/v1/remote", Some(r#"{"enabled": true, "upload_kbps": 5}"#)).await;
    assert_eq!(code, 403);
    assert!(!b.handle.snapshot().settings.remote.enabled);
    assert_eq!(b.handle.snapshot().settings.remote.upload_kbps, 0, "a refused request changes nothing");
    // The remote task itself never maps and says why.
    let status = b.ctx.remote.view().status;
    let remote::status::Status::Unsuccessful { reason } = &status else { panic!("{status:?}") };
    assert_eq!(reason.kind(), "not_claimed");
    assert!(status.sentence().contains("Claim it first"), "{}", status.sentence());
}

#[tokio::test]
async fn settings_are_validated_and_kept() {
    let b = start(true).await;
    for bad in [r#"{"manual_port": 0}"#, r#"{"manual_port": 65536}"#, r#"{"manual_port": "x"}"#] {
        let (code, v) = call(b.addr, "PUT", "/api/v1/remote", Some(bad)).await;
        assert_eq!(code, 400, "{bad}");
        assert!(v["error"]["message"].as_str().unwrap().contains("1 to 65535"), "{v}");
    }
    let (code, v) = call(b.addr, "PUT", "/api/v1/remote", Some(r#"{"stun_servers": ["a:1", "b:2", "c:3"]}"#)).await;
    assert_eq!(code, 400, "{v}");
    let before = b.handle.snapshot();
    let (code, _) = call(b.addr, "PUT", "/api/v1/remote", Some(r#"{"upload_kbps": 1, "bogus": 2}"#)).await;
    assert_eq!(code, 400);
    assert_eq!(*b.handle.snapshot(), *before, "a refused request changes nothing");
    let good = r#"{"upload_kbps": 20000, "stream_kbps": 4000, "manual_port": 40400, "stun_servers": ["127.0.0.1:9"]}"#;
    let (code, v) = call(b.addr, "PUT", "/api/v1/remote", Some(good)).await;
    assert_eq!(code, 200, "{v}");
    let r = &b.handle.snapshot().settings.remote;
    assert_eq!((r.upload_kbps, r.stream_kbps, r.manual_port), (20000, 4000, Some(40400)));
    assert_eq!(v["settings"]["manual_port"], 40400);
    let (code, v) = call(b.addr, "POST", "/api/v1/remote/retry", None).await;
    assert_eq!(code, 409, "retry while off: {v}");
}

struct Reflector(Child, SocketAddr);

impl Drop for Reflector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn reflector(private: bool) -> Reflector {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(["reflector", "--listen", &addr.to_string()]);
    if private {
        cmd.arg("--allow-private-targets");
    }
    let r = Reflector(cmd.spawn().unwrap(), addr);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("reflector did not start");
}

#[tokio::test]
async fn manual_port_is_verified_by_the_reflector() {
    let b = start(true).await;
    let r = reflector(true).await;
    let url = format!("http://{}", r.1);
    let body = format!(r#"{{"manual_port": {}, "reflector_url": "{url}"}}"#, b.addr.port());
    assert_eq!(call(b.addr, "PUT", "/api/v1/remote", Some(&body)).await.0, 200);
    assert_eq!(call(b.addr, "POST", "/api/v1/remote/enable", None).await.0, 200);
    let v = wait_state(&b, "successful", 0).await;
    assert_eq!(v["status"]["method"], "manual port forward", "{v}");
    assert_eq!(v["status"]["verified"], true, "{v}");
    assert_eq!(v["status"]["external_port"], b.addr.port());
    // A port nobody forwards: not reachable, and the reason says how it was checked.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let attempts = v["attempts"].as_u64().unwrap();
    let body = format!(r#"{{"manual_port": {closed}}}"#);
    assert_eq!(call(b.addr, "PUT", "/api/v1/remote", Some(&body)).await.0, 200);
    let v = wait_state(&b, "unsuccessful", attempts).await;
    assert_eq!(v["status"]["reason"]["kind"], "not_reachable", "{v}");
    let how = v["status"]["reason"]["how"].as_str().unwrap();
    assert!(how.contains(&url) && how.contains(&format!("127.0.0.1:{closed}")), "{how}");
    // Disable: the status follows.
    assert_eq!(call(b.addr, "POST", "/api/v1/remote/disable", None).await.0, 200);
    wait_state(&b, "disabled", 0).await;
    assert!(!b.ctx.state.snapshot().settings.remote.enabled);
}

#[tokio::test]
async fn the_reflector_refuses_private_callers_and_names_strangers() {
    let b = start(true).await;
    let machine = b.handle.snapshot().machine_identifier();
    let public_only = reflector(false).await;
    let e = remote::reflector::ask(&format!("http://{}", public_only.1), b.addr.port(), &machine).await.unwrap_err();
    assert!(e.contains("403") && e.contains("only checks public addresses"), "{e}");
    let lab = reflector(true).await;
    let url = format!("http://{}", lab.1);
    let ok = remote::reflector::ask(&url, b.addr.port(), &machine).await.unwrap();
    assert!(ok.reachable, "{ok:?}");
    let other = remote::reflector::ask(&url, b.addr.port(), "0123456789abcdef0123456789abcdef").await.unwrap();
    assert!(!other.reachable && other.error.unwrap().contains("another server"));
}

/// Issue 21 §5: the answer to Disable shows the new status ("off"), not the one before the switch.
#[tokio::test]
async fn disable_answers_with_the_new_status() {
    let b = start(true).await;
    // A reflector that accepts and never answers keeps the attempt running ("mapping") while Disable comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let body = format!(r#"{{"manual_port": 40400, "reflector_url": "http://{}"}}"#, silent.local_addr().unwrap());
    assert_eq!(call(b.addr, "PUT", "/api/v1/remote", Some(&body)).await.0, 200);
    assert_eq!(call(b.addr, "POST", "/api/v1/remote/enable", None).await.0, 200);
    wait_state(&b, "mapping", 0).await;
    let (code, v) = call(b.addr, "POST", "/api/v1/remote/disable", None).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["settings"]["enabled"], false, "{v}");
    assert_eq!(v["status"]["state"], "disabled", "the answer shows the new status: {v}");
    assert!(v["status"]["sentence"].as_str().unwrap().starts_with("Remote access is off"), "{v}");
}

/// Issue 21 §5: switching to a manual port forgets the router mapping kept on flash (its external address
/// would otherwise still count as "this server's own public address").
#[tokio::test]
async fn a_manual_port_clears_the_last_mapping() {
    // Without the remote task: with remote access disabled it forgets a stored mapping by itself (stand_down),
    // which raced this test's reads on a loaded machine. What is checked here is the settings change alone.
    let b = start_without_task(true).await;
    let stored = state::Mapping {
        method: state::MappingMethod::UpnpIgd,
        gateway: "192.168.77.1".parse().unwrap(),
        external_addr: Some("11.0.0.2".parse().unwrap()),
        external_port: 32400,
        internal_port: 32400,
        lease_secs: 7200,
        obtained: 1,
    };
    b.handle
        .update(|s| {
            s.settings.remote.last_mapping = Some(stored);
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    let (_, v) = call(b.addr, "GET", "/api/v1/remote", None).await;
    assert_eq!(v["last_mapping"]["external_addr"], "11.0.0.2", "{v}");
    // Bitrates leave it alone; a manual port clears it.
    assert_eq!(call(b.addr, "PUT", "/api/v1/remote", Some(r#"{"upload_kbps": 1000}"#)).await.0, 200);
    assert!(b.handle.snapshot().settings.remote.last_mapping.is_some());
    let (code, v) = call(b.addr, "PUT", "/api/v1/remote", Some(r#"{"manual_port": 40400}"#)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["last_mapping"], Value::Null, "{v}");
    assert_eq!(b.handle.snapshot().settings.remote.last_mapping, None);
}
