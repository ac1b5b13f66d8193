//! GDM discovery against the built binary (issue 20 part 5): nothing answers before the claim, a claimed server
//! answers a search with what Plex clients read (its id, its name without colons, its HTTP port), a source that
//! is not LAN gets nothing, and one source is answered a few times, not a hundred. The GDM port is moved with
//! `--gdm-port` so tests beside this one (and a real Plex server) keep 32414; python-plexapi's own scan on 32414
//! is in tests/plexapi (in a network namespace of its own).

mod common;

use common::{Server, preset, wait_for};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const SEARCH: &[u8] = b"M-SEARCH * HTTP/1.0";

/// A UDP port free now (the kernel's pick); GDM binds it a moment later.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Every answer that arrives within `window`.
fn answers(sock: &UdpSocket, window: Duration) -> Vec<String> {
    let until = Instant::now() + window;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    out
}

/// The `Name: value` lines of an answer, as python-plexapi splits them.
fn fields(answer: &str) -> Vec<(String, String)> {
    answer
        .lines()
        .filter(|l| l.contains(':'))
        .map(|l| {
            let parts: Vec<&str> = l.split(':').collect();
            assert_eq!(parts.len(), 2, "a second colon in {l:?}");
            (parts[0].to_owned(), parts[1].trim().to_owned())
        })
        .collect()
}

#[test]
fn gdm_answers_lan_searches_only_once_claimed() {
    let dir = tempfile::tempdir().unwrap();
    preset(dir.path(), |s| s.settings.friendly_name = "Den: films".try_into().unwrap());
    let port = free_udp_port();
    let srv = Server::start_with(dir.path(), &["--gdm-port", &port.to_string()], &[]);
    let to = format!("127.0.0.1:{port}");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();

    // Unclaimed: nothing, not even the name or the id.
    sock.send_to(SEARCH, &to).unwrap();
    assert_eq!(answers(&sock, Duration::from_millis(800)), Vec::<String>::new(), "an unclaimed server answered");

    let owner = srv.claim("Ada", "a long owner password");
    let answer = wait_for("a GDM answer after the claim", 10, || {
        sock.send_to(SEARCH, &to).unwrap();
        answers(&sock, Duration::from_millis(300)).into_iter().next()
    });
    let (_, identity) = srv.json("GET", "/identity", &[], None);
    let id = identity["MediaContainer"]["machineIdentifier"].as_str().unwrap().to_owned();
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer:?}");
    let got = fields(&answer);
    let field = |k: &str| got.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no {k} in {answer:?}"));
    assert_eq!(field("Content-Type"), "plex/media-server");
    assert_eq!(field("Resource-Identifier"), id);
    assert_eq!(field("Name"), "Den films");
    assert_eq!(field("Port"), srv.port.to_string());
    assert_eq!(field("Version"), hearth::VERSION);
    // Drain what the polling above may have left in flight.
    answers(&sock, Duration::from_millis(300));

    // Not a search: nothing.
    sock.send_to(b"GET / HTTP/1.0\r\n\r\n", &to).unwrap();
    assert!(answers(&sock, Duration::from_millis(300)).is_empty());

    // The owner's LAN networks leave loopback out: 127.0.0.1 is no longer LAN, and gets nothing.
    let auth = [("X-Plex-Token", owner.as_str())];
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"lan_networks":["10.0.0.0/8"]}"#));
    assert_eq!(st, 200, "{v}");
    sock.send_to(SEARCH, &to).unwrap();
    let quiet = answers(&sock, Duration::from_millis(1500));
    assert_eq!(quiet, Vec::<String>::new(), "a source outside the LAN networks was answered");
    // Back to the default rule: answered again.
    let (st, v) = srv.json("PUT", "/api/v1/settings/network", &auth, Some(r#"{"lan_networks":[]}"#));
    assert_eq!(st, 200, "{v}");
    wait_for("a GDM answer on the LAN again", 10, || {
        sock.send_to(SEARCH, &to).unwrap();
        answers(&sock, Duration::from_millis(500)).into_iter().next()
    });

    // One source (answered once just now) asking a hundred times is answered a few times (4, then one a second).
    for _ in 0..100 {
        sock.send_to(b"M-SEARCH * HTTP/1.1\r\n\r\n", &to).unwrap();
    }
    let n = answers(&sock, Duration::from_millis(800)).len();
    assert!((1..=6).contains(&n), "{n} answers to 100 searches");
}

#[test]
fn a_taken_gdm_port_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    // Someone else holds the port on every address (a Plex Media Server on this host).
    let holder = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let srv = Server::start_with(dir.path(), &["--gdm-port", &port.to_string()], &[]);
    srv.claim("Ada", "a long owner password");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(SEARCH, format!("127.0.0.1:{port}")).unwrap();
    assert!(answers(&sock, Duration::from_millis(500)).is_empty());
    // The holder got the search, not Hearth; Hearth still serves HTTP.
    holder.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = holder.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], SEARCH);
    assert_eq!(srv.json("GET", "/identity", &[], None).0, 200);
}
