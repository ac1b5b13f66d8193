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

fn hearth(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).stdin(std::process::Stdio::null()).output().unwrap()
}

/// R-F9: `hearth serve --help` prints the usage (exit 0, as `hearth --help` does); `--version` with an extra
/// word and an option given twice are usage errors (exit 2) that name the mistake, not silently ignored.
#[test]
fn r_f9_command_line_mistakes_are_named() {
    let out = hearth(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("usage: hearth"));

    let out = hearth(&["--version", "extra"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"extra\""), "{}", String::from_utf8_lossy(&out.stderr));

    let out = hearth(&["serve", "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:1", "--data-dir", "/nonexistent/x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen is given twice"), "{err}");
}

/// R-F9: `hearth recover` with a mistyped data folder refuses with a message naming it, and creates nothing
/// (before: it created the folder and a new flash file, then said "not claimed").
#[test]
fn r_f9_recover_refuses_a_missing_data_folder() {
    let dir = tempdir();
    let data = dir.path().join("hearth-dat");
    let out = hearth(&["recover", "--password-stdin", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&data.display().to_string()) && err.contains("no Hearth data"), "{err}");
    assert!(!data.exists(), "nothing is created");
}

/// R-F9: a flash file of only zeros holds nothing and is formatted, and the log says so in one line.
#[test]
fn r_f9_an_all_zero_flash_file_is_formatted_with_a_log_line() {
    let dir = tempdir();
    std::fs::write(dir.path().join("flash.img"), vec![0u8; 128 * 1024]).unwrap();
    let out = hearth(&["recover", "--password-stdin", "--data-dir", dir.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("only zeros").count(), 1, "{err}");
    assert!(err.contains("not claimed"), "the formatted store is a fresh one: {err}");
}

/// R-F9: a filesystem too small for the flash file gives a clear error and leaves no `flash.creating` behind
/// to fill it. The child's RLIMIT_FSIZE stands in for the small filesystem (a write past it fails, EFBIG).
#[test]
fn r_f9_a_flash_file_that_does_not_fit_leaves_nothing_behind() {
    use std::os::unix::process::CommandExt;
    let dir = tempdir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--flash-size", "1048576", "--data-dir"]).arg(dir.path());
    // SAFETY: between fork and exec the closure only makes two async-signal-safe system calls (setrlimit and
    // sigaction through signal()) and touches no memory the parent's threads use.
    unsafe {
        cmd.pre_exec(|| {
            let limit = nix::libc::rlimit { rlim_cur: 64 * 1024, rlim_max: 64 * 1024 };
            if nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Without this the write past the limit raises SIGXFSZ and the kernel kills the process.
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGXFSZ, nix::sys::signal::SigHandler::SigIgn)?;
            Ok(())
        });
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("flash.img") && err.contains("could not be opened"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!left.iter().any(|n| n.to_string_lossy().starts_with("flash")), "left behind: {left:?}");
}

/// R-F9: a `library-index.tmp` left by a failed or cut index write is removed at the next start.
#[test]
fn r_f9_a_stale_index_tmp_is_removed_at_start() {
    let dir = tempdir();
    let tmp = dir.path().join("library-index.tmp");
    std::fs::write(&tmp, b"").unwrap();
    let s = Server::start(dir.path());
    assert!(!tmp.exists(), "library-index.tmp is still there");
    s.stop_cleanly();
}
