//! Review finding R-F1 end to end with the built `hearth serve`: a crafted MP4 in a library neither takes the
//! server down nor hides the other files, and a file that did kill a probe (the run died with the probe marker
//! naming it) is quarantined at the next start, skipped while unchanged, listed for the owner, and the previous
//! run's reset reason is `crash`.

mod common;

use common::Server;
use serde_json::Value;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A small well-formed MP4: ftyp, mdat, moov with a 3 s mvhd and one avc1 video track.
fn normal_mp4() -> Vec<u8> {
    let full = |kind: &[u8; 4], body: &[u8]| mp4_box(kind, &[&[0u8, 0, 0, 0][..], body].concat());
    let mut mvhd = vec![0u8; 8];
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    mvhd.extend_from_slice(&3000u32.to_be_bytes());
    mvhd.extend_from_slice(&[0u8; 80]);
    let hdlr = full(b"hdlr", &[&[0u8; 4][..], b"vide", &[0u8; 13]].concat());
    let stsd = full(b"stsd", &[&1u32.to_be_bytes()[..], &mp4_box(b"avc1", &[0u8; 78])].concat());
    let stbl = mp4_box(b"stbl", &stsd);
    let trak = mp4_box(b"trak", &mp4_box(b"mdia", &[hdlr, mp4_box(b"minf", &stbl)].concat()));
    let moov = mp4_box(b"moov", &[full(b"mvhd", &mvhd), trak].concat());
    [mp4_box(b"ftyp", b"isom\0\0\0\0isomavc1"), mp4_box(b"mdat", &[0u8; 256]), moov].concat()
}

/// The file of R-F1: ftyp, then moov/trak/mdia/minf/stbl each with a 64-bit largesize that fills a sparse 40
/// GiB file, then `stts` with entry_count 0xFFFFFFFF (4 KiB on disk).
fn evil_mp4(path: &Path) {
    let len: u64 = 40 << 30;
    let mut head = mp4_box(b"ftyp", b"isom\0\0\0\0isom");
    let mut left = len - head.len() as u64;
    for k in [b"moov", b"trak", b"mdia", b"minf", b"stbl"] {
        head.extend_from_slice(&1u32.to_be_bytes());
        head.extend_from_slice(k);
        head.extend_from_slice(&left.to_be_bytes());
        left -= 16;
    }
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"stts");
    head.extend_from_slice(&left.to_be_bytes());
    head.extend_from_slice(&[0, 0, 0, 0]);
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    let f = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, &head).unwrap();
    f.set_len(len).unwrap();
}

fn libraries(s: &Server, token: &str) -> Value {
    let (st, v) = s.json("GET", "/api/v1/libraries", &[("X-Plex-Token", token)], None);
    assert_eq!(st, 200, "{v}");
    v
}

/// Wait until library 1 has finished `scans` scans.
fn wait_scans(s: &Server, token: &str, scans: u64) -> Value {
    common::wait_for(&format!("scan {scans} of library 1 to finish"), 60, || {
        let v = libraries(s, token);
        let p = &v["libraries"][0]["progress"];
        (p["scans"].as_u64().unwrap_or(0) >= scans && p["running"] == false).then_some(v)
    })
}

/// Library 1's items as the Plex API lists them: (file title, duration if probed).
fn items(s: &Server, token: &str) -> Vec<(String, Option<u64>)> {
    let (st, v) = s.json("GET", "/library/sections/1/all", &[("X-Plex-Token", token)], None);
    assert_eq!(st, 200, "{v}");
    let mut out: Vec<(String, Option<u64>)> = v["MediaContainer"]["Metadata"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| (m["title"].as_str().unwrap().to_string(), m["Media"][0]["duration"].as_u64()))
        .collect();
    out.sort();
    out
}

fn new_films_library(s: &Server, token: &str, folder: &Path) {
    let body = serde_json::json!({ "name": "Films", "kind": "movies", "folders": [folder.to_str().unwrap()] }).to_string();
    let (st, v) = s.json("POST", "/api/v1/libraries", &[("X-Plex-Token", token)], Some(&body));
    assert_eq!(st, 201, "{v}");
}

fn reasons(system: &Value) -> Vec<String> {
    system["resets"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap().to_string()).collect()
}

#[test]
fn r_f1_hostile_mp4_is_skipped_not_fatal() {
    let t = tempfile::tempdir().unwrap();
    let films = t.path().join("films");
    std::fs::create_dir_all(&films).unwrap();
    std::fs::write(films.join("Normal.mp4"), normal_mp4()).unwrap();
    evil_mp4(&films.join("Evil.mp4"));
    let s = Server::start(&t.path().join("data"));
    let token = s.claim("Owner", "films and shows");
    new_films_library(&s, &token, &films);
    let v = wait_scans(&s, &token, 1);
    assert_eq!(v["libraries"][0]["items"], 2, "both files are listed: {v}");
    assert_eq!(
        items(&s, &token),
        [("Evil".to_string(), None), ("Normal".to_string(), Some(3000))],
        "the normal file has its probed duration, the crafted one is listed without probe data"
    );
    // And again: a refresh probes nothing new, and a restart reads the index the scan saved.
    let (st, _) = s.json("POST", "/api/v1/libraries/1/refresh", &[("X-Plex-Token", &token)], None);
    assert_eq!(st, 202);
    wait_scans(&s, &token, 2);
    s.stop_cleanly();
    let s = Server::start(&t.path().join("data"));
    wait_scans(&s, &token, 1);
    assert_eq!(items(&s, &token).len(), 2);
    assert_eq!(reasons(&s.system(&token))[0], "clean", "no run died");
}

#[test]
fn r_f1_a_file_that_killed_a_probe_is_quarantined() {
    let t = tempfile::tempdir().unwrap();
    let films = t.path().join("films");
    std::fs::create_dir_all(&films).unwrap();
    std::fs::write(films.join("Normal.mp4"), normal_mp4()).unwrap();
    let killer = films.join("Killer.mp4");
    std::fs::write(&killer, normal_mp4()).unwrap();
    let data = t.path().join("data");
    let s = Server::start(&data);
    let token = s.claim("Owner", "films and shows");
    new_films_library(&s, &token, &films);
    wait_scans(&s, &token, 1);
    assert_eq!(items(&s, &token).len(), 2);
    // The run dies inside a probe of Killer.mp4: no clean stop, and the probe marker still names the file
    // (size, mtime in ns, path in hex; library::quarantine).
    s.kill();
    let m = std::fs::metadata(&killer).unwrap();
    let hex: String = killer.as_os_str().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let line = format!("{} {} {hex}\n", m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec());
    std::fs::write(data.join("probing"), line).unwrap();

    let s = Server::start(&data);
    assert_eq!(reasons(&s.system(&token))[0], "crash", "a death in a probe is a crash, not a power loss");
    let v = wait_scans(&s, &token, 1);
    assert_eq!(v["skipped"], serde_json::json!([killer.to_str().unwrap()]), "listed for the owner: {v}");
    assert_eq!(items(&s, &token), [("Normal".to_string(), Some(3000))], "skipped while unchanged");
    // Still skipped at the start after that (the list is kept in the data folder).
    s.stop_cleanly();
    let s = Server::start(&data);
    let v = wait_scans(&s, &token, 1);
    assert_eq!(v["skipped"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(items(&s, &token).len(), 1);
    assert_eq!(reasons(&s.system(&token))[0], "clean");
    // The file changes (replaced): it is read again and leaves the list.
    std::fs::write(&killer, [normal_mp4(), vec![0u8; 16]].concat()).unwrap();
    let (st, _) = s.json("POST", "/api/v1/libraries/1/refresh", &[("X-Plex-Token", &token)], None);
    assert_eq!(st, 202);
    let v = wait_scans(&s, &token, 2);
    assert_eq!(v["skipped"], serde_json::json!([]), "{v}");
    assert_eq!(items(&s, &token).len(), 2);
}
