//! The owner's folder picker against the built binary (issue 20 part 6): `GET /api/v1/folders` lists the
//! roots and sub-folders for the owner, refuses members, friends and anonymous callers, and answers bad paths
//! with a status and a sentence.

mod common;

use common::Server;
use serde_json::{Value, json};

fn names(v: &Value) -> Vec<String> {
    v["folders"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect()
}

fn enc(p: &str) -> String {
    p.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn the_owner_browses_folders_and_nobody_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let root = media.path().canonicalize().unwrap();
    for d in ["Films", "films old", "Music", ".cache", "Films/Action"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    std::fs::write(root.join("notes.txt"), b"not a folder").unwrap();
    std::os::unix::fs::symlink(root.join("Films"), root.join("Shortcut")).unwrap();
    let srv = Server::start(dir.path());
    let owner = srv.claim("Ada", "a long owner password");
    let auth = [("X-Plex-Token", owner.as_str())];
    let at = |p: &str| format!("/api/v1/folders?path={}", enc(p));

    // The roots: media mounts (none need exist here) first, then "/".
    let (st, v) = srv.json("GET", "/api/v1/folders", &auth, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["path"], Value::Null);
    let last = v["folders"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"name": "/", "path": "/"}));
    assert!(v["folders"].as_array().unwrap().iter().rev().skip(1).all(|f| f["media"] == true), "{v}");

    // A folder: sub-folders only, sorted, dot-folders hidden, the symlink marked with where it leads.
    let (st, v) = srv.json("GET", &at(root.to_str().unwrap()), &auth, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(names(&v), ["Films", "films old", "Music", "Shortcut"]);
    assert_eq!(v["path"], root.to_str().unwrap());
    assert_eq!(v["parent"], root.parent().unwrap().to_str().unwrap());
    assert_eq!(v["truncated"], false);
    let link = &v["folders"][3];
    assert_eq!((link["link"].clone(), link["path"].clone()), (json!(true), json!(root.join("Films").to_str().unwrap())));
    assert!(v["folders"][0].get("link").is_none());
    let (_, v) = srv.json("GET", &format!("{}&hidden=1", at(root.to_str().unwrap())), &auth, None);
    assert_eq!(names(&v)[0], ".cache");
    // Through a link with a trailing slash: the real folder is named.
    let (st, v) = srv.json("GET", &at(&format!("{}/Shortcut/", root.display())), &auth, None);
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["path"].as_str().unwrap(), names(&v)), (root.join("Films").to_str().unwrap(), vec!["Action".to_owned()]));

    // Bad paths: a status and a sentence each.
    let refused = |path: &str, status: u16, words: &str| {
        let (st, v) = srv.json("GET", path, &auth, None);
        let msg = v["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert_eq!(st, status, "{path}: {v}");
        assert!(msg.contains(words), "{path}: {msg:?} should say {words:?}");
    };
    refused("/api/v1/folders?path=media/films", 400, "not absolute");
    refused(&at(&format!("{}/Films/../..", root.display())), 400, ". or ..");
    refused(&at(root.join("notes.txt").to_str().unwrap()), 400, "is a file");
    refused(&at(root.join("notes.txt/x").to_str().unwrap()), 400, "not a folder");
    refused(&at(root.join("missing").to_str().unwrap()), 404, "There is no folder");
    refused("/api/v1/folders?path=%2Fa%00b", 400, "NUL");
    refused("/api/v1/folders?path=%ZZ", 400, "percent-encoded");

    // Members, friends and callers without a token may not look at the server's disks.
    let (st, v) = srv.json("POST", "/api/v1/members", &auth, Some(r#"{"name":"Kid","pin":"2468"}"#));
    assert_eq!(st, 201, "{v}");
    let sw = json!({"id": v["id"], "pin": "2468"}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[auth[0], ("X-Plex-Client-Identifier", "tv-1")], Some(&sw));
    assert_eq!(st, 200, "{v}");
    let kid = v["token"].as_str().unwrap().to_owned();
    let (st, v) = srv.json("POST", "/api/v1/friends", &auth, Some(r#"{"name":"Bob","password":"bobs own secret"}"#));
    assert_eq!(st, 201, "{v}");
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[("X-Plex-Client-Identifier", "bob-1")], Some(r#"{"name":"bob","password":"bobs own secret"}"#));
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_owned();
    for (who, token) in [("member", kid.as_str()), ("friend", bob.as_str())] {
        let (st, v) = srv.json("GET", &at(root.to_str().unwrap()), &[("X-Plex-Token", token)], None);
        assert_eq!(st, 403, "{who}: {v}");
        assert!(v.get("folders").is_none(), "{who}");
    }
    assert_eq!(srv.json("GET", "/api/v1/folders", &[], None).0, 401);
}

/// A FUSE file system that answers the kernel's INIT and nothing after: every look-up under it waits, as on a
/// network share whose server went away or a USB disk that stopped answering. Mounted in a mount namespace of
/// the calling test thread's own (the Hearth it starts inherits it), so nothing else on the machine sees it.
/// Dropping it detaches the mount and closes the FUSE device, which aborts the connection: the calls still
/// waiting end with ENOTCONN.
struct HungShare {
    dir: tempfile::TempDir,
    _fuse: std::fs::File,
}

impl HungShare {
    fn mount() -> HungShare {
        use nix::mount::{MsFlags, mount};
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("a mount namespace of its own (tests run as root)");
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).expect("private mounts");
        let dir = tempfile::tempdir().unwrap();
        let mut fuse = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse").expect("/dev/fuse");
        let options = format!("fd={},rootmode=40000,user_id=0,group_id=0,allow_other", fuse.as_raw_fd());
        mount(Some("hung"), dir.path(), Some("fuse.hung"), MsFlags::empty(), Some(options.as_str())).expect("FUSE mount");
        // The kernel's first request is FUSE_INIT (opcode 26; fuse_in_header: len u32, opcode u32, unique u64,
        // ...). The answer: fuse_out_header (len u32, error i32, unique u64) + fuse_init_out (64 bytes, protocol
        // 7.31, max_write 4096); nothing is read after it.
        let mut request = vec![0u8; 1 << 20];
        let n = fuse.read(&mut request).expect("FUSE_INIT");
        assert!(n >= 16 && u32::from_le_bytes(request[4..8].try_into().unwrap()) == 26, "first FUSE request is INIT");
        let mut reply = Vec::with_capacity(80);
        reply.extend_from_slice(&80u32.to_le_bytes());
        reply.extend_from_slice(&0i32.to_le_bytes());
        reply.extend_from_slice(&request[8..16]);
        let mut init = [0u8; 64];
        init[0..4].copy_from_slice(&7u32.to_le_bytes());
        init[4..8].copy_from_slice(&31u32.to_le_bytes());
        init[20..24].copy_from_slice(&4096u32.to_le_bytes());
        init[24..28].copy_from_slice(&1u32.to_le_bytes());
        reply.extend_from_slice(&init);
        fuse.write_all(&reply).expect("FUSE_INIT answered");
        HungShare { dir, _fuse: fuse }
    }
}

impl Drop for HungShare {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Review finding (2026-12-05 stop note, "check_folder on a connection worker"): adding a library, or a folder
/// to one, read the disk on the connection worker. A folder on a share that hangs froze that worker and every
/// connection on it until the watchdog reset the box. Now the check runs off the worker: 503 with a sentence
/// after the picker's deadline, nothing stored, and the worker (here the only one) answers others meanwhile.
#[test]
fn a_library_folder_on_a_hung_share_blocks_no_worker() {
    let share = HungShare::mount();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_on_one_core(dir.path());
    let owner = srv.claim("Ada", "a long owner password");
    let auth = [("X-Plex-Token", owner.as_str())];
    let films = share.dir.path().join("Films");
    let body = json!({"name": "Films", "kind": "movies", "folders": [films]}).to_string();

    let adding = std::thread::scope(|s| {
        let adding = s.spawn(|| {
            let at = std::time::Instant::now();
            (srv.json("POST", "/api/v1/libraries", &auth, Some(&body)), at.elapsed())
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        // The one worker answers while the check waits on the share.
        for _ in 0..3 {
            let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(3))).unwrap();
            use std::io::{Read, Write};
            s.write_all(format!("GET /identity HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", srv.addr).as_bytes()).unwrap();
            let mut out = Vec::new();
            let r = s.read_to_end(&mut out);
            assert!(
                r.is_ok() && out.starts_with(b"HTTP/1.1 200"),
                "the worker answered nothing while a folder check waited: {r:?} {}",
                String::from_utf8_lossy(&out)
            );
        }
        adding.join().unwrap()
    });
    let ((st, v), took) = adding;
    assert_eq!(st, 503, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("not answering"), "{msg:?}");
    assert!(took < std::time::Duration::from_secs(20), "answered after {took:?}");
    let (_, v) = srv.json("GET", "/api/v1/libraries", &auth, None);
    assert_eq!(v["libraries"], json!([]), "nothing stored: {v}");
}
