//! End to end against the built binary: covers and sidecar subtitles through the Plex-compatible routes
//! (`/library/metadata/{id}/thumb`, `/library/streams/{id}`), behind the same access rule as the item itself.
//! `cargo test -p hearth --test pictures`.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::path::Path;

fn fake_mp4(path: &Path) {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..4000).map(|i| (i * 7 % 251) as u8));
    write(path, &v);
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A JPEG header for `w`×`h`: SOI, APP0, SOF0, SOS, EOI (nothing on the box decodes pixels).
fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    j.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    j.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
    j.extend_from_slice(&h.to_be_bytes());
    j.extend_from_slice(&w.to_be_bytes());
    j.extend_from_slice(&[1, 1, 0x11, 0, 0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0x3F, 0, 0x12, 0x34, 0xFF, 0xD9]);
    j
}

/// A GET as the first request on a fresh connection; (status, lower-cased head, body bytes).
fn fetch(srv: &Server, path: &str, token: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nX-Plex-Token: {token}\r\n{extra}Connection: close\r\n\r\n", srv.addr);
    let (st, head, body) = srv.raw(raw.as_bytes());
    (st, head.to_ascii_lowercase(), body)
}

fn get(srv: &Server, path: &str, token: &str) -> (u16, Value) {
    srv.json("GET", path, &[("X-Plex-Token", token)], None)
}

fn library(srv: &Server, owner: &str, name: &str, folder: &Path) -> u64 {
    let body = json!({"name": name, "kind": "movies", "folders": [folder]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/libraries", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_u64().unwrap();
    srv.library_ready(owner, id, 1);
    id
}

/// The only item of a section, as `token` lists it.
fn only_item(srv: &Server, section: u64, token: &str) -> Value {
    let (st, v) = get(srv, &format!("/library/sections/{section}/all"), token);
    assert_eq!(st, 200, "{v}");
    v["MediaContainer"]["Metadata"][0].clone()
}

fn rating_key(v: &Value) -> String {
    v["ratingKey"].as_str().map(str::to_owned).unwrap_or_else(|| v["ratingKey"].to_string())
}

#[test]
fn covers_and_subtitles_are_served_to_those_who_see_the_item_and_to_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let (films, secret, clips) = (dir.path().join("films"), dir.path().join("secret"), dir.path().join("clips"));
    let poster = jpeg(600, 900);
    fake_mp4(&films.join("Alpha.mp4"));
    write(&films.join("Poster.JPG"), &poster);
    let srt = "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello & <i>welcome</i>\r\n\r\n2\r\nbroken timing\r\n\r\n";
    write(&films.join("Alpha.en.srt"), srt.as_bytes());
    write(&films.join("Alpha.de.srt"), b"1\n00:00:03,000 --> 00:00:04,000\nGr\xfc\xdfe\n");
    write(&films.join("Alpha.zz.srt"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    fake_mp4(&secret.join("Bravo.mp4"));
    write(&secret.join("folder.jpg"), &jpeg(300, 300));
    write(&secret.join("Bravo.srt"), b"1\n00:00:01,000 --> 00:00:02,000\nsecret words\n");
    fake_mp4(&clips.join("Clip.mp4"));

    let srv = Server::start(&dir.path().join("data"));
    let owner = srv.claim("Ada", "blue tiger lamp");
    let (a, b, c) = (library(&srv, &owner, "Films", &films), library(&srv, &owner, "Secret", &secret), library(&srv, &owner, "Clips", &clips));

    // The listing names the thumb where there is art, and only there.
    let alpha = only_item(&srv, a, &owner);
    let id = rating_key(&alpha);
    assert_eq!(alpha["thumb"], format!("/library/metadata/{id}/thumb"), "{alpha}");
    let clip = only_item(&srv, c, &owner);
    assert!(clip.get("thumb").is_none(), "no art, no thumb: {clip}");

    // The thumb is the poster as stored, with a validator; asked again with it: 304.
    let (st, head, body) = fetch(&srv, &format!("/library/metadata/{id}/thumb"), &owner, "");
    assert_eq!((st, body == poster), (200, true), "{head}");
    assert!(head.contains("content-type: image/jpeg") && head.contains("cache-control: private"), "{head}");
    let etag = head.lines().find_map(|l| l.strip_prefix("etag: ")).expect("an etag").trim().to_owned();
    let (st, _, body) = fetch(&srv, &format!("/library/metadata/{id}/thumb"), &owner, &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((st, body.len()), (304, 0));
    let (st, v) = get(&srv, &format!("/library/metadata/{}/thumb", rating_key(&clip)), &owner);
    assert_eq!(st, 404);
    assert!(v["error"]["message"].as_str().unwrap().contains("poster.jpg"), "{v}");

    // The item's metadata lists its sidecars as subtitle streams; each is served as stored or as WebVTT.
    let (_, v) = get(&srv, &format!("/library/metadata/{id}"), &owner);
    let streams = v["MediaContainer"]["Metadata"][0]["Media"][0]["Part"][0]["Stream"].as_array().cloned().unwrap_or_default();
    let by_lang = |code: &str| streams.iter().find(|s| s["languageTag"] == code).unwrap_or_else(|| panic!("{code}: {v}")).clone();
    assert_eq!(streams.len(), 3, "{v}");
    let (en, de, zz) = (by_lang("en"), by_lang("de"), by_lang("zz"));
    assert_eq!((&en["streamType"], &en["codec"], &en["languageCode"]), (&json!(3), &json!("srt"), &json!("eng")));
    let key = en["key"].as_str().unwrap();
    let (st, head, body) = fetch(&srv, key, &owner, "");
    assert_eq!((st, String::from_utf8(body).unwrap()), (200, srt.replace("\r\n", "\n")), "{head}");
    let (st, head, body) = fetch(&srv, &format!("{key}?format=vtt"), &owner, "");
    assert!(head.contains("content-type: text/vtt"), "{head}");
    assert_eq!(
        (st, String::from_utf8(body).unwrap()),
        (200, "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello &amp; <i>welcome</i>\n\n".to_owned())
    );
    let (st, _, body) = fetch(&srv, &format!("{}?format=vtt", de["key"].as_str().unwrap()), &owner, "");
    assert_eq!(st, 200);
    assert!(String::from_utf8(body).unwrap().contains("Grüße"), "Latin-1 becomes UTF-8");
    // Bad input: a picture named .srt, and a format Hearth does not make.
    let (st, v) = get(&srv, zz["key"].as_str().unwrap(), &owner);
    assert_eq!(st, 422, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("Alpha.zz.srt cannot be shown"), "{v}");
    let (st, v) = get(&srv, &format!("{key}?format=ass"), &owner);
    assert_eq!(st, 400, "{v}");
    assert_eq!(std::fs::read(films.join("Alpha.en.srt")).unwrap(), srt.as_bytes(), "nothing stored changes");

    // A friend with Films only: Films' thumb and subtitle, and of Secret exactly what a missing id gets.
    let body = json!({"name": "Bob", "password": "bobs own secret", "shares": [a]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/friends", &[("X-Plex-Token", &owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[], Some(r#"{"name":"bob","password":"bobs own secret"}"#));
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&srv, &format!("/library/metadata/{id}/thumb"), &bob, "").0, 200);
    assert_eq!(fetch(&srv, key, &bob, "").0, 200);

    let bravo = rating_key(&only_item(&srv, b, &owner));
    let (_, v) = get(&srv, &format!("/library/metadata/{bravo}"), &owner);
    let bravo_sub = v["MediaContainer"]["Metadata"][0]["Media"][0]["Part"][0]["Stream"][0]["key"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&srv, &format!("/library/metadata/{bravo}/thumb"), &owner, "").0, 200, "the owner sees Secret's art");
    assert_eq!(fetch(&srv, &bravo_sub, &owner, "").0, 200);
    let missing_thumb = get(&srv, "/library/metadata/999999/thumb", &bob);
    let missing_sub = get(&srv, &format!("/library/streams/{}", hearth::library::sidecar::stream_id(999_999, 0).unwrap()), &bob);
    assert_eq!(missing_thumb.0, 404);
    assert_eq!(get(&srv, &format!("/library/metadata/{bravo}/thumb"), &bob), missing_thumb, "Secret's art is hidden");
    assert_eq!(get(&srv, &bravo_sub, &bob), missing_sub, "Secret's subtitle is hidden");
    assert_eq!(missing_sub.0, 404);
    let (_, _, body) = fetch(&srv, &bravo_sub, &bob, "");
    assert!(!String::from_utf8_lossy(&body).contains("secret words"));
}
