//! Both address families on the default listener (issue 21, deliverable 1): `hearth serve --listen [::]:PORT`
//! answers IPv4 and IPv6 clients on one socket, and an IPv4 client arriving there as `::ffff:127.0.0.1` is
//! judged as the IPv4 address it is (the LAN rule lets it claim the server).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Hearth {
    child: Child,
    port: u16,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hearth serve --listen LISTEN` (port 0: the kernel picks it; the setup line names it).
fn start(listen: &str, data: &std::path::Path) -> Hearth {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", listen, "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "hearth exited before it listened");
        if let Some(url) = line.split(" Set it up at ").nth(1) {
            let port = url.trim().trim_end_matches("/web/").rsplit(':').next().unwrap().parse().unwrap();
            break port;
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Hearth { child, port }
}

/// One request to `to` naming `host`; (status, body).
fn call(to: SocketAddr, host: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n");
    if let Some(b) = body {
        raw += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}", b.len());
    } else {
        raw += "\r\n";
    }
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn ipv6_loopback_works() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn the_default_listener_answers_both_families_and_judges_mapped_ipv4_as_ipv4() {
    if !ipv6_loopback_works() {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let h = start("[::]:0", dir.path());
    let v4: SocketAddr = format!("127.0.0.1:{}", h.port).parse().unwrap();
    let v6: SocketAddr = format!("[::1]:{}", h.port).parse().unwrap();
    let (s4, id4) = call(v4, &v4.to_string(), "GET", "/identity", None);
    let (s6, id6) = call(v6, &v6.to_string(), "GET", "/identity", None);
    assert_eq!((s4, s6), (200, 200), "{id4} / {id6}");
    assert_eq!(id4, id6, "one server behind both families");
    // Claiming is for LAN sources only: 127.0.0.1 reaches the dual-stack socket as ::ffff:127.0.0.1 and
    // must still count as the loopback (LAN) address it is.
    let claim = r#"{"name": "ada", "password": "a long enough password"}"#;
    let (st, body) = call(v4, &v4.to_string(), "POST", "/api/v1/claim", Some(claim));
    assert_eq!(st, 201, "claim over IPv4 on the dual-stack socket: {body}");
}

#[test]
fn an_ipv6_listen_address_is_accepted_and_served() {
    if !ipv6_loopback_works() {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let h = start("[::1]:0", dir.path());
    let v6: SocketAddr = format!("[::1]:{}", h.port).parse().unwrap();
    let (st, body) = call(v6, &v6.to_string(), "GET", "/identity", None);
    assert_eq!(st, 200, "{body}");
    let claim = r#"{"name": "ada", "password": "a long enough password"}"#;
    let (st, body) = call(v6, &v6.to_string(), "POST", "/api/v1/claim", Some(claim));
    assert_eq!(st, 201, "::1 is this box: LAN: {body}");
}
