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
