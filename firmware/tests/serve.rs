//! `hearth serve` as a user runs it: the built binary on 127.0.0.1, a temporary data folder.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::Server;

/// Send `raw` as it is; the status and the whole answer as text.
fn request(s: &Server, raw: &str) -> (u16, String) {
    let (status, head, body) = s.raw(raw.as_bytes());
    (status, head + &String::from_utf8_lossy(&body))
}

fn get(s: &Server, path: &str) -> (u16, String) {
    request(s, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
}

fn machine_id(body: &str) -> String {
    let at = body.find("machineIdentifier=\"").expect("machineIdentifier in identity") + 19;
    body[at..at + 32].to_string()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn identity_is_stable_across_restarts_and_stop_is_clean() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let first = Server::start(&data);
    let (status, body) = get(&first, "/identity");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<MediaContainer") && body.contains("version=\""), "{body}");
    let id = machine_id(&body);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let (code, stdout) = first.stop();
    assert_eq!(code, 0, "SIGTERM is a clean stop; it printed: {stdout}");
    assert!(stdout.contains("Set it up at http://127.0.0.1:"), "setup URL printed: {stdout}");
    assert!(data.join("flash.img").exists());

    let second = Server::start(&data);
    assert_eq!(machine_id(&get(&second, "/identity").1), id, "machineIdentifier kept in the flash store");
}

#[test]
fn unknown_paths_and_methods_get_a_message() {
    let dir = tempdir();
    let s = Server::start(&dir.path().join("d"));
    let (status, body) = get(&s, "/no/such/thing");
    assert_eq!(status, 404);
    assert!(body.contains("There is no GET /no/such/thing on this server."), "{body}");
    let (status, body) = request(&s,
        "DELETE /identity HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(body.contains("\"message\":\"DELETE is not allowed here; use GET.\""), "{body}");
    let (status, body) = request(&s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");
}

#[test]
fn oversized_and_garbage_heads_are_refused_without_disturbing_others() {
    let dir = tempdir();
    let s = Server::start(&dir.path().join("d"));
    let huge = format!("GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    let (status, body) = request(&s, &huge);
    assert_eq!(status, 431, "{body}");
    let (status, _) = request(&s, "\x01\x02 nonsense\r\n\r\n");
    assert_eq!(status, 400);
    // A client that sends half a head and stalls does not block anyone else.
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"GET /identity HTTP/1.1\r\nHo").unwrap();
    assert_eq!(get(&s, "/identity").0, 200);
    // ...and is cut off after the head timeout (10 s).
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the slow client gets no answer, only a close");
    assert!(t.elapsed() < Duration::from_secs(15));
}

#[test]
fn foreign_flash_file_is_refused_until_format() {
    let dir = tempdir();
    let data = dir.path().join("d");
    std::fs::create_dir_all(&data).unwrap();
    let flash = data.join("flash.img");
    std::fs::write(&flash, vec![0x42u8; 128 * 1024]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a Hearth store") && err.contains("--format"), "{err}");
    assert!(std::fs::read(&flash).unwrap().iter().all(|b| *b == 0x42), "nothing was erased");

    // With --format it starts, on a fresh state.
    let s = Server::start_with(&data, &["--format"], &[]);
    assert_eq!(get(&s, "/identity").0, 200);
}

#[test]
fn bad_command_lines_and_unusable_data_folders() {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bogus") && err.contains("usage: hearth"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).args(["serve", "--listen", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen wants an address"));

    let dir = tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let data: PathBuf = file.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&data.display().to_string()), "the error names the path: {err}");
}

/// A stop sent the moment Hearth says it is running (an init system stopping a service right after start, a user
/// pressing Ctrl-C on the first line) is a clean stop, every time: exit status 0, not the default action's kill.
#[test]
fn a_stop_right_after_start_is_clean() {
    let dir = tempdir();
    let data = dir.path().join("d");
    for round in 0..15 {
        let s = Server::start(&data);
        let (code, stdout) = s.stop();
        assert_eq!(code, 0, "round {round}: SIGTERM right after the setup URL is a clean stop; it printed: {stdout}");
    }
}
