//! Files on the box (issue 18 item 4), end to end against the built binary: the data folder is the owner's
//! alone (A-F8), a media file is opened only as a regular file inside its library folder (A-F9), and a media
//! file that turned into a FIFO after the scan costs no connection worker (R-F4).
//!
//! The swaps below happen after the scan and are requested at once, inside the watcher's quiet window (800 ms
//! before it rescans): what is checked is what the open at request time does, not what the next scan drops.

mod common;

use common::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Generous: the answers below come at once or never; this only ends a test that would hang.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes that look like an MP4 to the recogniser, then `len` bytes of `fill`.
fn fake_mp4(path: &Path, len: usize, fill: u8) -> Vec<u8> {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend(std::iter::repeat_n(fill, len));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &v).unwrap();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// A claimed server with one Movies library over `media` holding `want` items; (server, owner token).
fn library(data: &Path, media: &Path, want: usize) -> (Server, String) {
    let server = Server::start(data);
    let token = server.claim("Owner", "films and shows");
    let body = serde_json::json!({ "name": "Films", "kind": "movies", "folders": [media] }).to_string();
    let (st, v) = server.json("POST", "/api/v1/libraries", &[("X-Plex-Token", &token)], Some(&body));
    assert_eq!(st, 201, "{v}");
    server.library_ready(&token, v["id"].as_u64().unwrap(), want as u64);
    (server, token)
}

/// Part URLs by title.
fn parts(server: &Server, token: &str) -> Vec<(String, String)> {
    let (st, v) = server.json("GET", "/library/sections/1/all", &[("X-Plex-Token", token)], None);
    assert_eq!(st, 200, "{v}");
    v["MediaContainer"]["Metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["title"].as_str().unwrap().to_owned(), m["Media"][0]["Part"][0]["key"].as_str().unwrap().to_owned()))
        .collect()
}

fn key<'a>(parts: &'a [(String, String)], title: &str) -> &'a str {
    &parts.iter().find(|(t, _)| t == title).unwrap_or_else(|| panic!("no {title} in {parts:?}")).1
}

/// A part request on a fresh connection. `copy` sends it in absolute form, which the fast path leaves to hyper
/// (the copy path). Answers (status, body); status 0 when the connection closed or timed out without a head.
fn part(server: &Server, token: &str, key: &str, copy: bool) -> (u16, Vec<u8>) {
    let target = if copy { format!("http://{}{key}", server.addr) } else { key.to_owned() };
    let raw = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nConnection: close\r\n\r\n");
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |p| p + 4);
    let status = std::str::from_utf8(&out[..split]).ok().and_then(|h| h.get(9..12)).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out[split..].to_vec())
}

#[test]
fn a_f8_data_folder_is_private() {
    // The usual umask: without care, folders come out 0755 and files 0644. This test binary runs nothing
    // that minds it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    fake_mp4(&media.join("Alpha (2001).mp4"), 1000, 1);

    // A new data folder (and the folder above it, also made by Hearth).
    let data = dir.path().join("new").join("data");
    let (server, _) = library(&data, &media, 1);
    server.stop_cleanly();
    assert_eq!(mode(&data), 0o700, "the data folder");
    let mut files = 0;
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        files += 1;
    }
    assert!(files >= 3, "flash.img, lock and library-index.bin at least");

    // A data folder someone left open (an older Hearth, a copy, a chmod) is closed at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["flash.img", "library-index.bin", "lock"] {
        std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = Server::start(&data);
    assert_eq!(mode(&data), 0o700, "the data folder, tightened at start");
    for name in ["flash.img", "library-index.bin", "lock"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}, tightened at start");
    }
    server.stop_cleanly();
}

#[test]
fn a_f9_symlink_swapped_in_after_the_scan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let data = dir.path().join("data");
    fake_mp4(&media.join("Alpha (2001).mp4"), 1000, 1);
    fake_mp4(&media.join("Beta (2002).mp4"), 1000, 2);
    let real = fake_mp4(&media.join("Real (2003).mp4"), 1000, 3);
    // Links that stay inside the library folder are followed, as the scanner does, relative or absolute.
    std::os::unix::fs::symlink("Real (2003).mp4", media.join("Relative (2004).mp4")).unwrap();
    std::os::unix::fs::symlink(media.join("Real (2003).mp4"), media.join("Absolute (2005).mp4")).unwrap();
    // A file outside every library: what a swapped-in link must never deliver.
    let secret = fake_mp4(&dir.path().join("outside").join("secret.mp4"), 1000, 0x5e);
    let (server, token) = library(&data, &media, 5);
    let parts = parts(&server, &token);
    for copy in [false, true] {
        for title in ["Relative", "Absolute"] {
            assert_eq!(part(&server, &token, key(&parts, title), copy), (200, real.clone()), "{title}, copy path {copy}");
        }
    }

    // Swap two scanned films for links out of the library folder: the flash file (TLS key, password hashes)
    // and a file elsewhere. Request them at once, one on the fast path and one on the copy path.
    let flash = std::fs::read(data.join("flash.img")).unwrap();
    for (name, target) in [("Alpha (2001).mp4", data.join("flash.img")), ("Beta (2002).mp4", dir.path().join("outside/secret.mp4"))] {
        std::fs::remove_file(media.join(name)).unwrap();
        std::os::unix::fs::symlink(target, media.join(name)).unwrap();
    }
    let fast = part(&server, &token, key(&parts, "Alpha"), false);
    let copied = part(&server, &token, key(&parts, "Beta"), true);
    let fast_other = part(&server, &token, key(&parts, "Beta"), false);
    let copied_other = part(&server, &token, key(&parts, "Alpha"), true);
    for (what, (status, body)) in [("fast path, flash", &fast), ("copy path, outside file", &copied), ("fast path, outside file", &fast_other), ("copy path, flash", &copied_other)] {
        assert_eq!(*status, 404, "{what}: {} bytes", body.len());
        assert!(
            !body.windows(64).any(|w| flash.windows(64).any(|f| f == w) || secret.windows(64).any(|s| s == w)),
            "{what}: the answer carries bytes from outside the library"
        );
    }
    server.stop_cleanly();
}

#[test]
fn r_f4_fifo_swapped_in_does_not_block_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let data = dir.path().join("data");
    fake_mp4(&media.join("Alpha (2001).mp4"), 1000, 1);
    let other = fake_mp4(&media.join("Other (2002).mp4"), 1000, 2);
    let (server, token) = library(&data, &media, 2);
    let parts = parts(&server, &token);
    let (fifo_key, other_key) = (key(&parts, "Alpha").to_owned(), key(&parts, "Other").to_owned());

    // The film becomes a FIFO nobody writes to; requests for it on more connections than there are
    // connection workers, at once (on the fast path and the copy path), so a blocking open would hold every
    // worker.
    let fifo = media.join("Alpha (2001).mp4");
    std::fs::remove_file(&fifo).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let n = 2 * std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
    let stuck: Vec<_> = (0..n)
        .map(|i| {
            let raw = format!(
                "GET {}{fifo_key} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nConnection: close\r\n\r\n",
                if i % 2 == 1 { format!("http://{}", server.addr) } else { String::new() }
            );
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            s.write_all(raw.as_bytes()).unwrap();
            s
        })
        .collect();

    // Meanwhile, other connections are served.
    let (st, _, body) = server.call("GET", "/identity", &[], None);
    assert_eq!(st, 200, "/identity while FIFO requests wait: {body}");
    assert_eq!(part(&server, &token, &other_key, false), (200, other.clone()), "another part, fast path");
    assert_eq!(part(&server, &token, &other_key, true), (200, other), "another part, copy path");

    // And the FIFO requests got an error, not a hang.
    for (i, s) in stuck.into_iter().enumerate() {
        let mut status = String::new();
        let _ = BufReader::new(s).read_line(&mut status);
        let code: u16 = status.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!((400..600).contains(&code), "FIFO request {i} answered {status:?}");
    }
    server.stop_cleanly();
}
