//! End to end against the built binary: every item route asks the one access rule (issue 18 item 2, review
//! finding C-1). A friend with library A asks for library B's show, season, episode and part by id, over the
//! stream fast path and over hyper's copy path: each answer is exactly what a missing id gets. A Home member
//! with no share sees nothing. `cargo test -p hearth --test one_rule`.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// Bytes that look like an MP4 to the recogniser.
fn fake_mp4(path: &Path) {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..4000).map(|i| (i * 7 % 251) as u8));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &v).unwrap();
}

fn get(srv: &Server, path: &str, token: &str) -> (u16, Value) {
    srv.json("GET", path, &[("X-Plex-Token", token)], None)
}

/// Create a library through the owner API and wait until its scan lists `want` items; its id.
fn library(srv: &Server, owner: &str, name: &str, kind: &str, folder: &Path, want: u64) -> u64 {
    let body = json!({"name": name, "kind": kind, "folders": [folder]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/libraries", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_u64().unwrap();
    srv.library_ready(owner, id, want);
    id
}

fn metadata(v: &Value) -> Vec<Value> {
    v["MediaContainer"]["Metadata"].as_array().cloned().unwrap_or_default()
}

fn part_key(item: &Value) -> String {
    item["Media"][0]["Part"][0]["key"].as_str().unwrap().to_owned()
}

/// A part request as the first request on a fresh connection: the stream fast path. Status and body.
fn part_fast(srv: &Server, key: &str, token: &str) -> Answer {
    let (st, _, body) = srv.raw(format!("GET {key} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nConnection: close\r\n\r\n").as_bytes());
    (st, body)
}

/// A part request after a chunked request on the same connection: hyper keeps that connection, so the part is
/// answered by the route table's copy path. The second answer's status and body.
fn part_copy(srv: &Server, key: &str, token: &str) -> Answer {
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let raw = format!(
        "GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         GET {key} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    // Skip the first answer (identity, with a Content-Length).
    let text = String::from_utf8_lossy(&out).into_owned();
    let first_end = text.find("\r\n\r\n").expect("a first answer") + 4;
    let len: usize = text[..first_end]
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("the first answer has a length");
    let second = &out[first_end + len..];
    let head_end = second.windows(4).position(|w| w == b"\r\n\r\n").map_or(second.len(), |p| p + 4);
    let status = String::from_utf8_lossy(&second[..head_end]).get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, second[head_end..].to_vec())
}

struct Lab {
    srv: Server,
    owner: String,
    /// A film of library A.
    film: String,
    film_part: String,
    /// Library B's show, season and episode ids and the episode's part key.
    show: String,
    season: String,
    episode: String,
    episode_part: String,
    a: u64,
    _dir: tempfile::TempDir,
}

/// A claimed server with library A (one film) and library B (one show, one season, one episode).
fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    fake_mp4(&dir.path().join("films/Alpha.Film.2001.mp4"));
    fake_mp4(&dir.path().join("shows/Bravo Secret/Season 1/Bravo.Secret.S01E01.mp4"));
    let srv = Server::start(&dir.path().join("data"));
    let owner = srv.claim("Ada", "blue tiger lamp");
    let a = library(&srv, &owner, "LibA", "movies", &dir.path().join("films"), 1);
    let b = library(&srv, &owner, "LibB", "shows", &dir.path().join("shows"), 1);
    let film = metadata(&get(&srv, &format!("/library/sections/{a}/all"), &owner).1)[0].clone();
    let show = metadata(&get(&srv, &format!("/library/sections/{b}/all"), &owner).1)[0]["ratingKey"].clone();
    let show = show.as_str().map(str::to_owned).unwrap_or_else(|| show.to_string());
    let season = metadata(&get(&srv, &format!("/library/metadata/{show}/children"), &owner).1)[0]["ratingKey"].clone();
    let season = season.as_str().map(str::to_owned).unwrap_or_else(|| season.to_string());
    let episode = metadata(&get(&srv, &format!("/library/metadata/{season}/children"), &owner).1)[0].clone();
    let rk = |v: &Value| v["ratingKey"].as_str().map(str::to_owned).unwrap_or_else(|| v["ratingKey"].to_string());
    Lab {
        film: rk(&film),
        film_part: part_key(&film),
        show,
        season,
        episode: rk(&episode),
        episode_part: part_key(&episode),
        srv,
        owner,
        a,
        _dir: dir,
    }
}

/// Every item route for `id`.
fn item_routes(id: &str) -> [String; 3] {
    [format!("/library/metadata/{id}"), format!("/library/metadata/{id}/children"), format!("/library/metadata/{id}/allLeaves")]
}

/// A status and body.
type Answer = (u16, Vec<u8>);

/// What a missing id answers on every item route and on both part paths, for this caller.
fn missing(lab: &Lab, token: &str) -> (Vec<(u16, Value)>, Answer, Answer) {
    let routes = item_routes("999999").iter().map(|r| get(&lab.srv, r, token)).collect();
    let key = "/library/parts/999999/1/file.mp4";
    (routes, part_fast(&lab.srv, key, token), part_copy(&lab.srv, key, token))
}

/// Library B's show, season and episode on every item route, and the episode's part on both paths, answer
/// exactly what a missing id answers (404, same body).
fn assert_b_is_hidden(lab: &Lab, token: &str, who: &str) {
    let (gone, gone_fast, gone_copy) = missing(lab, token);
    assert_eq!(gone[0].0, 404, "{who}: a missing id is 404: {:?}", gone[0]);
    for id in [&lab.show, &lab.season, &lab.episode] {
        for (route, want) in item_routes(id).iter().zip(&gone) {
            let got = get(&lab.srv, route, token);
            assert_eq!(&got, want, "{who}: {route} (library B) must answer as a missing id does");
        }
    }
    assert_eq!(part_fast(&lab.srv, &lab.episode_part, token), gone_fast, "{who}: B's part on the fast path");
    assert_eq!(part_copy(&lab.srv, &lab.episode_part, token), gone_copy, "{who}: B's part on the copy path");
    assert_eq!(gone_fast.0, 404);
    assert_eq!(gone_copy.0, 404);
}

#[test]
fn c_1_friend_cannot_reach_another_librarys_items() {
    let lab = lab();
    let owner = &lab.owner;
    // The owner reaches everything, on both paths (the lab is sound).
    for id in [&lab.show, &lab.season, &lab.episode] {
        assert_eq!(get(&lab.srv, &format!("/library/metadata/{id}"), owner).0, 200);
    }
    assert_eq!(get(&lab.srv, &format!("/library/metadata/{}/allLeaves", lab.show), owner).0, 200);
    assert_eq!(part_fast(&lab.srv, &lab.episode_part, owner).0, 200);
    assert_eq!(part_copy(&lab.srv, &lab.episode_part, owner).0, 200);

    let body = json!({"name": "Bob", "password": "bobs own secret", "shares": [lab.a]}).to_string();
    let (st, v) = lab.srv.json("POST", "/api/v1/friends", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let (st, v) = lab.srv.json("POST", "/api/v1/sign-in", &[], Some(r#"{"name":"bob","password":"bobs own secret"}"#));
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_owned();

    // Bob sees library A and its film, on both paths...
    let (st, v) = get(&lab.srv, "/library/sections", &bob);
    assert_eq!(st, 200);
    let titles: Vec<&str> = v["MediaContainer"]["Directory"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["LibA"]);
    assert_eq!(get(&lab.srv, &format!("/library/metadata/{}", lab.film), &bob).0, 200);
    assert_eq!(part_fast(&lab.srv, &lab.film_part, &bob).0, 200);
    assert_eq!(part_copy(&lab.srv, &lab.film_part, &bob).0, 200);
    // ...and nothing of library B, by any id, on any path.
    assert_b_is_hidden(&lab, &bob, "friend with A");
}

#[test]
fn c_1_member_without_share_sees_nothing() {
    let lab = lab();
    let owner = &lab.owner;
    let (st, v) = lab.srv.json("POST", "/api/v1/members", &[("X-Plex-Token", owner)], Some(r#"{"name":"Kid"}"#));
    assert_eq!(st, 201, "{v}");
    let kid = v["id"].as_u64().unwrap();
    let sw = json!({"id": kid}).to_string();
    let (st, v) = lab.srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", owner), ("X-Plex-Client-Identifier", "tv-1")], Some(&sw));
    assert_eq!(st, 200, "{v}");
    let kid = v["token"].as_str().unwrap().to_owned();

    let (st, v) = get(&lab.srv, "/library/sections", &kid);
    assert_eq!(st, 200);
    assert!(v["MediaContainer"]["Directory"].as_array().is_none_or(|d| d.is_empty()), "{v}");
    assert_eq!(get(&lab.srv, &format!("/library/sections/{}/all", lab.a), &kid).0, 403);
    let (gone, gone_fast, gone_copy) = missing(&lab, &kid);
    assert_eq!(get(&lab.srv, &format!("/library/metadata/{}", lab.film), &kid), gone[0], "A's film is hidden too");
    assert_eq!(part_fast(&lab.srv, &lab.film_part, &kid), gone_fast);
    assert_eq!(part_copy(&lab.srv, &lab.film_part, &kid), gone_copy);
    assert_b_is_hidden(&lab, &kid, "member without a share");
}
