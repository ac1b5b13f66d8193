//! Issue 9 on a host: reset reasons, safe mode and the systemd watchdog protocol, with the built `hearth serve`
//! as a user (or a systemd unit) runs it. The same code runs as the board's init; tests/qemu covers the board.

use hearth::state::{self, ResetReason, Run};
use hearth::store::{NorFile, Opened, Store};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::Server;

fn call(s: &Server, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth: Vec<(&str, &str)> = token.map(|t| ("X-Plex-Token", t)).into_iter().collect();
    s.json(method, path, &auth, (!body.is_empty()).then_some(body))
}

fn reasons(system: &Value) -> Vec<String> {
    system["resets"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap().to_string()).collect()
}


/// Edit the stored state of a stopped server the way an earlier run would have left it.
fn edit_state(data: &Path, change: impl FnOnce(&mut state::State)) {
    let flash = NorFile::open_or_create(&data.join("flash.img"), 128 * 1024, 4096).unwrap();
    let (mut store, opened) = Store::open(flash).unwrap();
    let Opened::Found(rec) = opened else { panic!("the server wrote a record") };
    let mut s = state::decode(rec.schema, &rec.payload).unwrap();
    change(&mut s);
    store.write(state::SCHEMA_VERSION, &state::encode(&s).unwrap()).unwrap();
}

fn now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32
}

#[test]
fn each_start_names_why_the_last_run_ended() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let token = s.claim("Owner", "a long owner secret");
    assert_eq!(reasons(&s.system(&token)), Vec::<String>::new(), "a new box has no previous run");
    s.stop_cleanly();

    let s = Server::start(dir.path());
    assert_eq!(reasons(&s.system(&token)), ["clean"], "SIGTERM is a clean stop");
    let at = s.system(&token)["resets"][0]["at"].as_u64().unwrap() as i64;
    assert!((at - now() as i64).abs() < 60, "the reset has the time of this start ({at})");
    s.kill();

    let s = Server::start(dir.path());
    assert_eq!(reasons(&s.system(&token)), ["power_loss", "clean"], "SIGKILL: no clean-stop marker; newest first");
    s.kill();

    // A run that panicked wrote its marker in the panic hook; a run whose watchdog starved wrote "starving".
    edit_state(dir.path(), |st| st.run = Run::Crashed);
    let s = Server::start(dir.path());
    assert_eq!(reasons(&s.system(&token))[0], "crash");
    s.kill();
    edit_state(dir.path(), |st| st.run = Run::Starving);
    let s = Server::start(dir.path());
    let sys = s.system(&token);
    assert_eq!(reasons(&sys), ["watchdog", "crash", "power_loss", "clean"]);
    assert_eq!(sys["safe_mode"]["active"], false, "one watchdog reset is not safe mode");
    let wd = sys["watchdog"].as_object().unwrap();
    for beat in ["runtime canary", "listener", "store writer", "remote access", "DLNA", "library watcher", "connection worker 0"] {
        assert!(wd.contains_key(&format!("Heartbeat: {beat}")), "the System screen lists the {beat} heartbeat: {wd:?}");
    }
    assert!(wd["Device"].as_str().unwrap().starts_with("none: "), "on a host the page says why there is no device");
    s.stop_cleanly();

    // Eight are kept.
    for _ in 0..5 {
        Server::start(dir.path()).kill();
    }
    let s = Server::start(dir.path());
    let r = reasons(&s.system(&token));
    assert_eq!(r.len(), 8);
    assert_eq!(r[..5], ["power_loss"; 5]);
    assert_eq!(r[5..], ["clean", "watchdog", "crash"], "the oldest dropped, newest first");
    s.stop_cleanly();
}

#[test]
fn three_watchdog_resets_within_fifteen_minutes_start_safe_mode_until_the_owner_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let token = s.claim("Owner", "a long owner secret");
    let (st, v) = call(&s, "GET", "/api/v1/server", None, "");
    assert_eq!((st, &v["dlna_effectively_on"], &v["safe_mode"]), (200, &Value::Bool(true), &Value::Bool(false)));
    s.stop_cleanly();
    // Two watchdog resets 10 and 4 minutes ago; the run that just ended starved its watchdog: the third.
    let t = now();
    edit_state(dir.path(), |st| {
        st.record_reset(ResetReason::Watchdog, t - 600);
        st.record_reset(ResetReason::Watchdog, t - 240);
        st.run = Run::Starving;
    });
    let s = Server::start(dir.path());
    let sys = s.system(&token);
    assert_eq!(sys["safe_mode"]["active"], true, "{sys}");
    let (_, v) = call(&s, "GET", "/api/v1/server", None, "");
    assert_eq!(v["safe_mode"], true, "the page's banner reads this");
    assert_eq!(v["dlna_effectively_on"], false, "DLNA is off in safe mode");
    let (st, _) = call(&s, "POST", "/api/v1/remote/enable", Some(&token), "");
    assert_eq!(st, 200);
    let status = common::wait_for("the remote status to name safe mode", 5, || {
        let (_, v) = call(&s, "GET", "/api/v1/remote", Some(&token), "");
        Some(v["status"].clone()).filter(|st| st["reason"]["kind"] == "safe_mode")
    });
    assert_eq!(status["state"], "unsuccessful", "remote access does not start in safe mode: {status}");
    assert!(status["reason"]["sentence"].as_str().unwrap().contains("Safe mode is on"), "{status}");
    s.stop_cleanly();

    // Still on after a clean restart: only the owner clears it.
    let s = Server::start(dir.path());
    assert_eq!(s.system(&token)["safe_mode"]["active"], true);
    let (st, _) = call(&s, "DELETE", "/api/v1/system/safe-mode", None, "");
    assert!(st == 401 || st == 403, "only the owner clears safe mode ({st})");
    let (st, v) = call(&s, "DELETE", "/api/v1/system/safe-mode", Some(&token), "");
    assert_eq!((st, &v["was_active"]), (200, &Value::Bool(true)), "{v}");
    let (_, v) = call(&s, "GET", "/api/v1/server", None, "");
    assert_eq!((&v["safe_mode"], &v["dlna_effectively_on"]), (&Value::Bool(false), &Value::Bool(true)), "DLNA follows its switch again");
    s.stop_cleanly();
    let s = Server::start(dir.path());
    assert_eq!(s.system(&token)["safe_mode"]["active"], false, "cleared for good");
    s.stop_cleanly();
}

#[test]
fn speaks_the_systemd_watchdog_protocol_when_run_by_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("notify");
    let systemd = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    systemd.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with(&data, &[], &[("NOTIFY_SOCKET", sock.to_str().unwrap()), ("WATCHDOG_USEC", "2000000")]);
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    // READY=1 once serving, then WATCHDOG=1 every half second (a quarter of WATCHDOG_USEC) while healthy.
    while got.iter().filter(|m: &&String| *m == "WATCHDOG=1").count() < 3 && Instant::now() < deadline {
        let n = systemd.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got.contains(&"READY=1".to_string()), "{got:?}");
    assert!(got.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3, "{got:?}");
    s.signal(nix::sys::signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stopping = false;
    while !stopping && Instant::now() < deadline {
        let n = systemd.recv(&mut buf).unwrap();
        stopping = &buf[..n] == b"STOPPING=1";
    }
    assert!(stopping, "a clean stop says STOPPING=1");
    let mut child = s;
    assert!(child.child.wait().unwrap().success());
}
