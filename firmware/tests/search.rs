//! End to end against the built binary: search (`/hubs/search`, `/library/all`) and "Recently added"
//! (`/library/recentlyAdded`, `/library/sections/{id}/recentlyAdded`) answer from the libraries the caller
//! sees and nothing else, page, and refuse bad input with a message. `cargo test -p hearth --test search`.

mod common;

use common::Server;
use serde_json::{Value, json};
use std::path::Path;

fn fake_mp4(path: &Path) {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..2000).map(|i| (i * 7 % 251) as u8));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &v).unwrap();
}

fn get(srv: &Server, path: &str, token: &str) -> (u16, Value) {
    srv.json("GET", path, &[("X-Plex-Token", token)], None)
}

fn library(srv: &Server, owner: &str, name: &str, kind: &str, folder: &Path, items: u64) -> u64 {
    let body = json!({"name": name, "kind": kind, "folders": [folder]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/libraries", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_u64().unwrap();
    srv.library_ready(owner, id, items);
    id
}

/// (hub type, titles in it) of a search, in the order answered.
fn hubs(v: &Value) -> Vec<(String, Vec<String>)> {
    let hubs = v["MediaContainer"]["Hub"].as_array().cloned().unwrap_or_default();
    hubs.iter()
        .map(|h| {
            let titles = h["Metadata"].as_array().cloned().unwrap_or_default();
            let titles: Vec<String> = titles.iter().map(|m| m["title"].as_str().unwrap().to_owned()).collect();
            assert_eq!(h["size"].as_u64(), Some(titles.len() as u64), "a hub's size is what it holds: {h}");
            (h["type"].as_str().unwrap().to_owned(), titles)
        })
        .collect()
}

fn search(srv: &Server, token: &str, q: &str) -> Vec<(String, Vec<String>)> {
    let (st, v) = get(srv, &format!("/hubs/search?query={q}&limit=10"), token);
    assert_eq!(st, 200, "{v}");
    hubs(&v)
}

fn titles(v: &Value) -> Vec<String> {
    let items = v["MediaContainer"]["Metadata"].as_array().cloned().unwrap_or_default();
    items.iter().map(|m| m["title"].as_str().unwrap().to_owned()).collect()
}

fn message(v: &Value) -> String {
    v["error"]["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn search_and_recently_added_show_only_what_the_caller_sees() {
    let data = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let (films, secret, tv) = (media.path().join("films"), media.path().join("secret"), media.path().join("tv"));
    for name in ["Amélie (2001).mp4", "Metropolis (1927).mp4", "Camera Obscura (2020).mp4"] {
        fake_mp4(&films.join(name));
    }
    for name in ["Secret Amelie Plan (2024).mp4", "Hidden Metropolis (2023).mp4"] {
        fake_mp4(&secret.join(name));
    }
    fake_mp4(&tv.join("Amelie Street").join("Amelie.Street.S01E01.Pilot.mp4"));
    fake_mp4(&tv.join("Amelie Street").join("Amelie.Street.S01E02.Metropolis.Night.mp4"));

    let srv = Server::start(data.path());
    let owner = srv.claim("Owner", "owner's long password");
    let films_id = library(&srv, &owner, "Films", "movies", &films, 3);
    let secret_id = library(&srv, &owner, "Secret", "movies", &secret, 2);
    let tv_id = library(&srv, &owner, "TV", "shows", &tv, 2);

    // The owner finds across every library, case- and accent-insensitively, best matches first.
    let found = search(&srv, &owner, "AMELIE");
    assert_eq!(
        found,
        [
            ("movie".into(), vec!["Amélie".to_string(), "Secret Amelie Plan".into()]),
            ("show".into(), vec!["Amelie Street".into()]),
        ],
        "titles starting with the text come before those with it inside"
    );
    assert_eq!(search(&srv, &owner, "am%C3%A9lie")[0].1, ["Amélie", "Secret Amelie Plan"], "é in the query matches e");
    assert_eq!(search(&srv, &owner, "amelie+street"), [("show".into(), vec!["Amelie Street".to_string()])], "+ is a space");
    let found = search(&srv, &owner, "metropolis");
    assert_eq!(found[0], ("movie".into(), vec!["Metropolis".to_string(), "Hidden Metropolis".into()]));
    assert_eq!(found[1], ("episode".into(), vec!["Metropolis Night".to_string()]));
    // A hub with more than the limit says so and names the whole list.
    let (st, v) = get(&srv, "/hubs/search?query=m&limit=1", &owner);
    assert_eq!(st, 200, "{v}");
    let movies = &v["MediaContainer"]["Hub"][0];
    assert_eq!((movies["type"].as_str(), movies["more"].as_str(), movies["size"].as_u64()), (Some("movie"), Some("1"), Some(1)), "{v}");
    let (st, all) = get(&srv, movies["key"].as_str().unwrap(), &owner);
    assert_eq!(st, 200, "{all}");
    assert_eq!(titles(&all), ["Amélie", "Camera Obscura", "Hidden Metropolis", "Metropolis", "Secret Amelie Plan"]);
    // The item in a hub is the item as /library/metadata shows it.
    let amelie = &search_json(&srv, &owner, "amelie")["MediaContainer"]["Hub"][0]["Metadata"][0];
    let (_, meta) = get(&srv, &format!("/library/metadata/{}", amelie["ratingKey"]), &owner);
    assert_eq!(amelie["Media"], meta["MediaContainer"]["Metadata"][0]["Media"]);

    // A friend with Films: Films' titles only, from every door.
    let body = json!({"name": "Bob", "password": "bobs own secret", "shares": [films_id]}).to_string();
    assert_eq!(srv.json("POST", "/api/v1/friends", &[("X-Plex-Token", &owner)], Some(&body)).0, 201);
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[], Some(r#"{"name":"bob","password":"bobs own secret"}"#));
    assert_eq!(st, 200, "{v}");
    let bob = v["token"].as_str().unwrap().to_owned();
    assert_eq!(search(&srv, &bob, "amelie"), [("movie".into(), vec!["Amélie".to_string()])]);
    assert_eq!(search(&srv, &bob, "metropolis"), [("movie".into(), vec!["Metropolis".to_string()])]);
    assert_eq!(search(&srv, &bob, "hidden"), []);
    let (st, v) = get(&srv, "/library/all?title=secret", &bob);
    assert_eq!((st, titles(&v)), (200, vec![]), "{v}");
    let (_, v) = get(&srv, "/library/recentlyAdded", &bob);
    let mut seen = titles(&v);
    seen.sort();
    assert_eq!(seen, ["Amélie", "Camera Obscura", "Metropolis"]);
    let (st, _) = get(&srv, &format!("/library/sections/{secret_id}/recentlyAdded"), &bob);
    assert_eq!(st, 403, "a library not shared with the friend");
    let (st, v) = get(&srv, &format!("/hubs/search?query=amelie&sectionId={secret_id}"), &bob);
    assert_eq!(st, 404, "{v}");

    // A Home member with TV only: never a film's title, by search, /library/all or recently added.
    let body = json!({"name": "Kid", "pin": "2468", "shares": [tv_id]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/members", &[("X-Plex-Token", &owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let sw = json!({"id": v["id"], "pin": "2468"}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", &owner), ("X-Plex-Client-Identifier", "tv-1")], Some(&sw));
    assert_eq!(st, 200, "{v}");
    let kid = v["token"].as_str().unwrap().to_owned();
    assert_eq!(search(&srv, &kid, "amelie"), [("show".into(), vec!["Amelie Street".to_string()])]);
    assert_eq!(search(&srv, &kid, "metropolis"), [("episode".into(), vec!["Metropolis Night".to_string()])]);
    for path in ["/library/recentlyAdded", "/library/all", "/hubs/search?query=e&limit=100"] {
        let (st, _, body) = srv.call("GET", path, &[("X-Plex-Token", &kid)], None);
        assert_eq!(st, 200, "{path}");
        for film in ["Amélie", "Metropolis\"", "Camera", "Secret", "Hidden"] {
            assert!(!body.contains(film), "{path} shows the member {film:?}: {body}");
        }
    }
    let (_, v) = get(&srv, "/library/recentlyAdded", &kid);
    assert_eq!(titles(&v), ["Season 1"], "new episodes show as their season");
    assert_eq!(v["MediaContainer"]["Metadata"][0]["type"], "season");
    for lib in [films_id, secret_id] {
        let (st, v) = get(&srv, &format!("/library/sections/{lib}/recentlyAdded"), &kid);
        assert_eq!(st, 403, "{v}");
    }

    // Newest first, paged: a film added later comes first for the owner; pages carry their place.
    fake_mp4(&films.join("Zardoz (1974).mp4"));
    assert_eq!(srv.call("GET", &format!("/library/sections/{films_id}/refresh"), &[("X-Plex-Token", &owner)], None).0, 200);
    srv.library_ready(&owner, films_id, 4);
    let (_, v) = get(&srv, &format!("/library/sections/{films_id}/recentlyAdded?X-Plex-Container-Start=0&X-Plex-Container-Size=2"), &owner);
    assert_eq!(titles(&v)[0], "Zardoz", "{v}");
    let mc = &v["MediaContainer"];
    assert_eq!((mc["size"].as_u64(), mc["totalSize"].as_u64(), mc["offset"].as_u64()), (Some(2), Some(4), Some(0)));
    assert!(mc["Metadata"][0]["addedAt"].as_u64() >= mc["Metadata"][1]["addedAt"].as_u64());
    let (_, v) = srv.json(
        "GET",
        "/library/recentlyAdded",
        &[("X-Plex-Token", &owner), ("X-Plex-Container-Start", "6"), ("X-Plex-Container-Size", "5")],
        None,
    );
    let mc = &v["MediaContainer"];
    assert_eq!((mc["size"].as_u64(), mc["totalSize"].as_u64(), mc["offset"].as_u64()), (Some(1), Some(7), Some(6)), "{v}");
    let (_, v) = get(&srv, &format!("/library/sections/{films_id}/all?sort=movie.addedAt%3Adesc&X-Plex-Container-Size=1"), &owner);
    assert_eq!(titles(&v), ["Zardoz"], "a listing sorted newest first: {v}");
    let (st, v) = get(&srv, &format!("/library/sections/{tv_id}/all?sort=addedAt:desc"), &owner);
    assert_eq!(st, 501, "shows are not sorted by addedAt: {v}");
    assert!(message(&v).contains("recentlyAdded"), "{v}");
    // Children and leaves page too.
    let (_, v) = get(&srv, &format!("/library/sections/{tv_id}/all"), &owner);
    let show = v["MediaContainer"]["Metadata"][0]["ratingKey"].as_u64().unwrap();
    let (_, v) = get(&srv, &format!("/library/metadata/{show}/allLeaves?X-Plex-Container-Start=1&X-Plex-Container-Size=5"), &owner);
    let mc = &v["MediaContainer"];
    assert_eq!((titles(&v), mc["totalSize"].as_u64(), mc["offset"].as_u64()), (vec!["Metropolis Night".to_string()], Some(2), Some(1)), "{v}");
}

fn search_json(srv: &Server, token: &str, q: &str) -> Value {
    let (st, v) = get(srv, &format!("/hubs/search?query={q}"), token);
    assert_eq!(st, 200, "{v}");
    v
}

#[test]
fn bad_search_and_paging_input_is_refused_with_a_message() {
    let data = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    fake_mp4(&media.path().join("Metropolis (1927).mp4"));
    let srv = Server::start(data.path());
    let owner = srv.claim("Owner", "owner's long password");
    let films = library(&srv, &owner, "Films", "movies", media.path(), 1);

    let long = "a".repeat(10 * 1024);
    let cases: Vec<(String, &str)> = vec![
        ("/hubs/search".into(), "query= (it is empty)"),
        ("/hubs/search?query=".into(), "query= (it is empty)"),
        ("/hubs/search?query=%20%20".into(), "query= (it is empty)"),
        (format!("/hubs/search?query={long}"), "10240 bytes long; Hearth searches titles with at most 256"),
        (format!("/library/all?title={long}"), "at most 256"),
        ("/hubs/search?query=%zz".into(), "not valid percent-encoded UTF-8"),
        ("/hubs/search?query=m&limit=0".into(), "limit must be a whole number of 1 or more, not \"0\""),
        ("/hubs/search?query=m&limit=ten".into(), "limit must be a whole number"),
        ("/library/all?type=7".into(), "type must be a Plex search type"),
        ("/library/recentlyAdded?X-Plex-Container-Start=-1".into(), "X-Plex-Container-Start must be a whole number of 0 or more, not \"-1\""),
        ("/library/recentlyAdded?X-Plex-Container-Size=lots".into(), "X-Plex-Container-Size must be a whole number"),
        (format!("/library/sections/{films}/all?X-Plex-Container-Start=x"), "X-Plex-Container-Start must be"),
        (format!("/library/sections/{films}/recentlyAdded?X-Plex-Container-Size=1.5"), "X-Plex-Container-Size must be"),
        ("/library/all?X-Plex-Container-Start=9999999999999999999999".into(), "X-Plex-Container-Start must be"),
    ];
    for (path, says) in &cases {
        let (st, v) = get(&srv, path, &owner);
        assert_eq!(st, 400, "{path}: {v}");
        assert!(message(&v).contains(says), "{path}: {v}");
    }
    // In a header too, and in XML.
    let (st, _, body) = srv.call("GET", "/library/recentlyAdded", &[("X-Plex-Token", &owner), ("X-Plex-Container-Size", "x")], None);
    assert_eq!(st, 400);
    assert!(body.contains("X-Plex-Container-Size must be a whole number"), "{body}");
    // A filter /library/all does not build is refused, not ignored.
    let (st, v) = get(&srv, "/library/all?year=1927", &owner);
    assert_eq!(st, 501, "{v}");
    // Nothing changed: the library lists as before, and a start past the end is an empty page, not an error.
    let (st, v) = get(&srv, &format!("/library/sections/{films}/all?X-Plex-Container-Start=5"), &owner);
    let mc = &v["MediaContainer"];
    assert_eq!((st, mc["size"].as_u64(), mc["totalSize"].as_u64()), (200, Some(0), Some(1)), "{v}");
    // XML is the default: the hub shape python-plexapi parses.
    let (st, _, xml) = srv.call("GET", "/hubs/search?query=metro", &[("X-Plex-Token", &owner)], None);
    assert_eq!(st, 200);
    assert!(xml.contains("<Hub title=\"Movies\" type=\"movie\" hubIdentifier=\"movie\""), "{xml}");
    assert!(xml.contains("<Video ratingKey="), "{xml}");
}
