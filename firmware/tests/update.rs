//! Firmware updates on the host (issue 19): `hearth serve --slots FILE` with files standing in for the boot-state
//! and slot partitions, bundles made by `hearth bundle` with the development key. Each refusal must leave the
//! slot files and the boot state exactly as they were.

mod common;

use common::Server;
use hearth::update::bootstate::{self, Outcome};
use hearth::update::slot::Slot;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BOARD: &str = "qemu-virt-aarch64";
const SLOT_SIZE: usize = 256 * 1024;

fn dev_key() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../board/keys/dev-update.pk8")
}

fn hearth(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().unwrap()
}

/// The running version and one newer.
fn versions() -> (String, String) {
    let v = hearth::update::bundle::Version::parse(hearth::VERSION).unwrap();
    (v.to_string(), hearth::update::bundle::Version(v.0, v.1, v.2 + 1).to_string())
}

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    /// A box booted from `booted` with the given boot-state variables (none: blank partition, defaults).
    fn new(booted: &str, confirm_after_secs: u32, vars: &[(&str, &str)]) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("data")).unwrap();
        std::fs::write(p.join("bootstate"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(p.join("a"), vec![0xAA; SLOT_SIZE]).unwrap();
        std::fs::write(p.join("b"), vec![0xBB; SLOT_SIZE]).unwrap();
        if !vars.is_empty() {
            let mut s = bootstate::BootState::default();
            for (k, v) in vars {
                s.set(k, v);
            }
            bootstate::write_file(&p.join("bootstate"), &s).unwrap();
        }
        let toml = format!(
            "board = \"{BOARD}\"\nbooted = \"{booted}\"\nbootstate = \"{}\"\na = \"{}\"\nb = \"{}\"\nconfirm_after_secs = {confirm_after_secs}\n",
            p.join("bootstate").display(), p.join("a").display(), p.join("b").display()
        );
        std::fs::write(p.join("slots.toml"), toml).unwrap();
        Bench { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&self) -> Server {
        let slots = self.path("slots.toml");
        Server::start_with(&self.path("data"), &["--slots", slots.to_str().unwrap()], &[])
    }

    /// Bytes of the slot files and the boot state.
    fn disk(&self) -> Vec<Vec<u8>> {
        ["a", "b", "bootstate"].iter().map(|f| std::fs::read(self.path(f)).unwrap()).collect()
    }

    fn bootstate(&self) -> bootstate::BootState {
        bootstate::read_file(&self.path("bootstate")).unwrap().0
    }

    /// `hearth bundle` with `key`; the bundle's bytes.
    fn bundle_with(&self, key: &Path, board: &str, version: &str, min: &str, image: &[u8]) -> Vec<u8> {
        let img = self.path("slot.img");
        let out = self.path("out.bundle");
        std::fs::write(&img, image).unwrap();
        let o = hearth(&["bundle", "--key", key.to_str().unwrap(), "--board", board, "--version", version, "--min-version", min,
            "--image", img.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    }

    fn bundle(&self, version: &str, image: &[u8]) -> Vec<u8> {
        self.bundle_with(&dev_key(), BOARD, version, "0.0.0", image)
    }
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn upload(s: &Server, token: &str, query: &str, bundle: &[u8]) -> (u16, Value) {
    let mut raw = format!(
        "POST /api/v1/system/update{query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\
         X-Plex-Token: {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bundle.len()
    )
    .into_bytes();
    raw.extend_from_slice(bundle);
    let (status, _, body) = s.raw(&raw);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn a_good_bundle_is_written_to_the_other_slot_and_boots_next() {
    let bench = Bench::new("A", 600, &[]);
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    let (_, newer) = versions();
    let img = image(100_000);
    let (st, v) = upload(&s, &token, "", &bench.bundle(&newer, &img));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["restart_into"], newer.as_str());
    let disk = bench.disk();
    assert_eq!(&disk[1][..img.len()], &img[..], "slot B holds the image");
    assert_eq!(&disk[1][SLOT_SIZE - 64 * 1024..][..8], b"HEARTHUP", "and its footer");
    assert!(disk[0].iter().all(|b| *b == 0xAA), "slot A untouched");
    let state = bench.bootstate();
    assert_eq!((state.order(), state.left(Slot::B)), (vec![Slot::B, Slot::A], 3));
    let u = state.last_update().unwrap();
    assert_eq!((u.outcome, u.slot, u.version.as_str()), (Outcome::Pending, Slot::B, newer.as_str()));
    let sys = s.system(&token);
    let slots = &sys["update"]["slots"];
    assert_eq!(slots["booted"], "A");
    assert_eq!(slots["other_version"], newer.as_str());
    assert_eq!(slots["next_boot"], "B");
    assert_eq!(sys["update"]["trusts_dev_key"], true);
    let msg = slots["last_update"]["message"].as_str().unwrap();
    assert!(msg.contains(&newer) && msg.contains("restart"), "{msg}");
}

#[test]
fn refused_bundles_leave_the_slots_and_the_boot_order_as_they_were() {
    let bench = Bench::new("A", 600, &[("BOOT_ORDER", "A B"), ("BOOT_A_LEFT", "3")]);
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    let (current, newer) = versions();
    let img = image(20_000);
    let good = bench.bundle(&newer, &img);
    let other_key = bench.path("other.pk8");
    assert!(hearth(&["bundle", "--new-key", other_key.to_str().unwrap()]).status.success());
    let mut changed = good.clone();
    *changed.last_mut().unwrap() ^= 0x01;
    // (case, bundle, status, words in the message, refused before the first image byte: slot B untouched too)
    let cases: Vec<(&str, Vec<u8>, u16, &str, bool)> = vec![
        ("bad signature", bench.bundle_with(&other_key, BOARD, &newer, "0.0.0", &img), 403, "not signed by a key this firmware trusts", true),
        ("other board", bench.bundle_with(&dev_key(), "rpi4", &newer, "0.0.0", &img), 422, "for the board \"rpi4\"", true),
        ("too large", bench.bundle(&newer, &image(SLOT_SIZE)), 413, "does not fit in slot B", true),
        ("downgrade", bench.bundle(&current, &img), 409, "allow_downgrade=1", true),
        ("not a bundle", b"PK\x03\x04 a zip file, not a bundle at all; long enough to fill a header........".to_vec(), 400, "not a Hearth update bundle", true),
        ("needs a newer running version", bench.bundle_with(&dev_key(), BOARD, &newer, &newer, &img), 422, "install an update to", true),
        ("truncated", good[..good.len() - 100].to_vec(), 400, "truncated", false),
        ("image changed after signing", changed, 422, "changed or damaged after signing", false),
    ];
    let before = bench.disk();
    for (name, bundle, status, words, before_image) in cases {
        let (st, v) = upload(&s, &token, "", &bundle);
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(st, status, "{name}: {v}");
        assert!(msg.contains(words), "{name}: {msg}");
        let now = bench.disk();
        assert!(now[0] == before[0], "{name}: the booted slot A changed");
        if before_image {
            assert!(now[2] == before[2], "{name}: the boot state changed");
            assert!(now[1] == before[1], "{name}: slot B changed although the bundle was refused before its image");
        } else {
            // Slot B was written in part: the boot order is as it was, and B has no tries left, so a
            // half-written B is never booted.
            let state = bench.bootstate();
            assert_eq!(state.order(), [Slot::A, Slot::B], "{name}: the boot order changed");
            assert_eq!((state.left(Slot::A), state.left(Slot::B)), (3, 0), "{name}: slot B kept tries");
        }
        assert_eq!(s.system(&token)["update"]["slots"]["next_boot"], "A", "{name}");
    }
    // The owner insists: the same version goes in with the flag.
    let (st, v) = upload(&s, &token, "?allow_downgrade=1", &bench.bundle(&current, &img));
    assert_eq!(st, 200, "{v}");
    assert_eq!(bench.bootstate().order(), [Slot::B, Slot::A]);
}

#[test]
fn only_the_owner_may_install_and_only_as_octet_stream() {
    let bench = Bench::new("A", 600, &[]);
    let s = bench.start();
    let _token = s.claim("owner", "correct horse battery");
    let before = bench.disk();
    let (_, newer) = versions();
    let (st, _) = upload(&s, "not-a-token", "", &bench.bundle(&newer, &image(1000)));
    assert_eq!(st, 401);
    let (st, _, _) = s.call("POST", "/api/v1/system/update", &[("Host", &s.addr)], Some("{}"));
    assert!(st == 401 || st == 415, "{st}");
    assert!(bench.disk() == before);
}

fn wait_for(s: &Server, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.system(token);
        if done(&v["update"]["slots"]) {
            return v;
        }
        assert!(Instant::now() < until, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_healthy_start_confirms_the_update() {
    let (_, newer) = versions();
    let pending = format!("pending B {newer}");
    let bench = Bench::new("B", 1, &[("BOOT_ORDER", "B A"), ("BOOT_A_LEFT", "3"), ("BOOT_B_LEFT", "2"), ("HEARTH_UPDATE", &pending)]);
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    let v = wait_for(&s, &token, "confirmed", |sl| sl["confirmed"] == true);
    assert_eq!(v["update"]["slots"]["last_update"]["outcome"], "confirmed");
    let state = bench.bootstate();
    assert_eq!((state.order(), state.left(Slot::B)), (vec![Slot::B, Slot::A], 3));
}

#[test]
fn a_rollback_is_noticed_repaired_and_reported() {
    let bench = Bench::new("A", 600, &[("BOOT_ORDER", "B A"), ("BOOT_A_LEFT", "2"), ("BOOT_B_LEFT", "0"), ("HEARTH_UPDATE", "pending B 9.9.9")]);
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    let v = s.system(&token);
    assert_eq!(v["update"]["slots"]["last_update"]["message"], "update to 9.9.9 failed, rolled back");
    assert_eq!(v["update"]["slots"]["next_boot"], "A");
    let state = bench.bootstate();
    assert_eq!(state.order(), [Slot::A, Slot::B]);
    assert_eq!(state.last_update().unwrap().outcome, Outcome::Failed);
}

#[test]
fn one_install_at_a_time() {
    use std::io::Write;
    let bench = Bench::new("A", 600, &[]);
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    let (_, newer) = versions();
    let bundle = bench.bundle(&newer, &image(100_000));
    // The first upload sends its head and part of the image, then waits.
    let mut first = std::net::TcpStream::connect(&s.addr).unwrap();
    let head = format!(
        "POST /api/v1/system/update HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n\
         X-Plex-Token: {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bundle.len()
    );
    first.write_all(head.as_bytes()).unwrap();
    first.write_all(&bundle[..10_000]).unwrap();
    // The System screen says when it runs; then a second upload is turned away.
    wait_for(&s, &token, "the first install running", |sl| sl["installing"] == true);
    let (st, v) = upload(&s, &token, "", &bundle);
    assert_eq!(st, 409, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("another update is being installed"), "{v}");
    assert_eq!(bench.bootstate().order(), [Slot::A, Slot::B], "the boot order is untouched");
    drop(first);
}

/// Issue 19 deliverable 6, with the test hook that fakes a newer schema (`HEARTH_TEST_SCHEMA_AHEAD=1`: this
/// build writes its records as schema + 1, which a build without the hook cannot read, like an older firmware
/// after a rollback). `cargo test -p hearth --features test-hooks --test update`.
#[cfg(feature = "test-hooks")]
#[test]
fn an_unconfirmed_newer_schema_never_reaches_flash() {
    let bench = Bench::new("A", 600, &[]);
    let slots = bench.path("slots.toml");
    let set_confirm = |secs: u32| {
        let t = std::fs::read_to_string(&slots).unwrap();
        let t: String = t.lines().map(|l| if l.starts_with("confirm_after_secs") { format!("confirm_after_secs = {secs}\n") } else { format!("{l}\n") }).collect();
        std::fs::write(&slots, t).unwrap();
    };
    let args = ["--slots", slots.to_str().unwrap()];
    let ahead = [("HEARTH_TEST_SCHEMA_AHEAD", "1")];
    // The old firmware: an owner with a token and a setting.
    let s = bench.start();
    let token = s.claim("owner", "correct horse battery");
    s.stop_cleanly();
    // The "new" firmware starts, serves, never confirms (600 s), stops: the record stays in the old schema.
    let s = Server::start_with(&bench.path("data"), &args, &ahead);
    assert_eq!(s.system(&token)["update"]["slots"]["confirmed"], false);
    s.stop_cleanly();
    // Rolled back: the old firmware reads everything.
    let s = bench.start();
    assert_eq!(s.system(&token)["update"]["slots"]["booted"], "A", "the owner's token still works");
    s.stop_cleanly();
    // The same with a confirmed start: now the newer schema is written, and the old firmware cannot read it
    // (so the first half of this test would have failed without the hold).
    set_confirm(1);
    let s = Server::start_with(&bench.path("data"), &args, &ahead);
    wait_for(&s, &token, "confirmed", |sl| sl["confirmed"] == true);
    s.stop_cleanly();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(bench.path("data"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "an old firmware must not read the newer schema: {out:?}");
}

#[test]
fn hearth_update_installs_from_a_console() {
    let bench = Bench::new("A", 600, &[]);
    let (current, newer) = versions();
    let img = image(50_000);
    let file = bench.path("console.bundle");
    std::fs::write(&file, bench.bundle(&current, &img)).unwrap();
    let slots = bench.path("slots.toml");
    let o = hearth(&["update", file.to_str().unwrap(), "--slots", slots.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("allow_downgrade=1 (--allow-downgrade)"), "{o:?}");
    assert_eq!(bench.bootstate().order(), [Slot::A, Slot::B]);
    std::fs::write(&file, bench.bundle(&newer, &img)).unwrap();
    let o = hearth(&["update", file.to_str().unwrap(), "--slots", slots.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("version {newer} is installed in slot B")), "{o:?}");
    assert_eq!(&bench.disk()[1][..img.len()], &img[..]);
    assert_eq!(bench.bootstate().order(), [Slot::B, Slot::A]);
}
