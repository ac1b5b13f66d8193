//! End to end against the built binary: per-person watch state (issue 20 part 4). Two Home members and a
//! friend: one person's progress is never visible to another; a timeline for an item of a library not shared
//! with the caller answers the metadata's 404 and changes nothing; onDeck lists the caller's own items in
//! progress and the next episode; the state survives a clean restart and a `kill -9` (the file is the old
//! batch or the new one, never a mix); a damaged file is kept aside and the server starts empty and says so.
//! `cargo test -p hearth --test progress`.

mod common;

use common::{Server, wait_for};
use hearth::library::viewing::{Book, DAMAGED, FILE};
use serde_json::{Value, json};
use std::path::Path;

/// Bytes that look like an MP4 to the recogniser (no duration in them: the client's duration counts).
fn fake_mp4(path: &Path) {
    let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    v.extend((0..4000).map(|i| (i * 7 % 251) as u8));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &v).unwrap();
}

fn get(srv: &Server, path: &str, token: &str) -> (u16, Value) {
    srv.json("GET", path, &[("X-Plex-Token", token)], None)
}

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

fn rk(v: &Value) -> String {
    v["ratingKey"].as_str().map(str::to_owned).unwrap_or_else(|| v["ratingKey"].to_string())
}

/// The item's node as `token` sees it.
fn item(srv: &Server, id: &str, token: &str) -> Value {
    let (st, v) = get(srv, &format!("/library/metadata/{id}"), token);
    assert_eq!(st, 200, "{v}");
    metadata(&v)[0].clone()
}

/// `viewOffset`, `viewCount` of an item as `token` sees it (None when absent).
fn state(srv: &Server, id: &str, token: &str) -> (Option<u64>, Option<u64>) {
    let n = item(srv, id, token);
    (n["viewOffset"].as_u64(), n["viewCount"].as_u64())
}

fn timeline(srv: &Server, token: &str, id: &str, time: u64, duration: u64, st: &str) -> (u16, Value) {
    get(srv, &format!("/:/timeline?ratingKey={id}&key=%2Flibrary%2Fmetadata%2F{id}&time={time}&duration={duration}&state={st}"), token)
}

fn deck(srv: &Server, token: &str) -> Vec<(String, Option<u64>)> {
    let (st, v) = get(srv, "/library/onDeck", token);
    assert_eq!(st, 200, "{v}");
    metadata(&v).iter().map(|m| (rk(m), m["viewOffset"].as_u64())).collect()
}

/// A member with these shares, switched to on a device of its own: its token.
fn member(srv: &Server, owner: &str, name: &str, shares: &[u64]) -> String {
    let body = json!({"name": name, "shares": shares}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/members", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let sw = json!({"id": v["id"]}).to_string();
    let device = format!("tv-{name}");
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", owner), ("X-Plex-Client-Identifier", &device)], Some(&sw));
    assert_eq!(st, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

fn friend(srv: &Server, owner: &str, name: &str, shares: &[u64]) -> String {
    let body = json!({"name": name, "password": "a friend's own secret", "shares": shares}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/friends", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let body = json!({"name": name, "password": "a friend's own secret"}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/sign-in", &[("X-Plex-Client-Identifier", "friend-laptop")], Some(&body));
    assert_eq!(st, 200, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

struct Lab {
    srv: Server,
    owner: String,
    films: u64,
    shows: u64,
    /// Films "Alpha" and "Charlie".
    alpha: String,
    charlie: String,
    /// The show and its episodes 1..3.
    show: String,
    episodes: Vec<String>,
    dir: tempfile::TempDir,
}

fn lab(args: &[&str]) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    fake_mp4(&dir.path().join("films/Alpha.2001.mp4"));
    fake_mp4(&dir.path().join("films/Charlie.2003.mp4"));
    for e in 1..=3 {
        fake_mp4(&dir.path().join(format!("shows/Bravo/Season 1/Bravo.S01E0{e}.mp4")));
    }
    let srv = Server::start_with(&dir.path().join("data"), args, &[]);
    // Remote access off: nothing here needs it, and a clean stop then has no router to tell.
    let body = json!({"name": "Ada", "password": "blue tiger lamp", "remote_access": false}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/claim", &[("X-Plex-Client-Identifier", "t1")], Some(&body));
    assert_eq!(st, 201, "{v}");
    let owner = v["token"].as_str().unwrap().to_owned();
    let films = library(&srv, &owner, "Films", "movies", &dir.path().join("films"), 2);
    let shows = library(&srv, &owner, "Shows", "shows", &dir.path().join("shows"), 3);
    let list = metadata(&get(&srv, &format!("/library/sections/{films}/all"), &owner).1);
    let find = |t: &str| rk(list.iter().find(|m| m["title"] == t).unwrap());
    let show = rk(&metadata(&get(&srv, &format!("/library/sections/{shows}/all"), &owner).1)[0]);
    let episodes = metadata(&get(&srv, &format!("/library/metadata/{show}/allLeaves"), &owner).1).iter().map(rk).collect();
    Lab { alpha: find("Alpha"), charlie: find("Charlie"), srv, owner, films, shows, show, episodes, dir }
}

#[test]
fn one_persons_watch_state_is_never_anothers() {
    let lab = lab(&[]);
    let (srv, owner) = (&lab.srv, &lab.owner);
    let shows = lab.shows;
    let a = member(srv, owner, "Ann", &[lab.films, shows]);
    let b = member(srv, owner, "Ben", &[lab.films]);
    let f = friend(srv, owner, "fred", &[lab.films]);

    // Ann is 10 minutes into Alpha (of 100) and watched episode 1.
    assert_eq!(timeline(srv, &a, &lab.alpha, 600_000, 6_000_000, "playing").0, 200);
    let (st, _) = get(srv, &format!("/:/scrobble?key={}&identifier=com.plexapp.plugins.library", lab.episodes[0]), &a);
    assert_eq!(st, 200);
    assert_eq!(state(srv, &lab.alpha, &a), (Some(600_000), None));
    assert_eq!(state(srv, &lab.episodes[0], &a), (None, Some(1)));
    assert!(item(srv, &lab.alpha, &a)["lastViewedAt"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(item(srv, &lab.show, &a)["viewedLeafCount"], 1);

    // Nobody else sees any of it: not the other member, not the friend, not the owner.
    for (who, t) in [("Ben", &b), ("fred", &f), ("owner", owner)] {
        let n = item(srv, &lab.alpha, t);
        for attr in ["viewOffset", "viewCount", "lastViewedAt"] {
            assert!(n.get(attr).is_none(), "{who} sees Ann's {attr}: {n}");
        }
        assert!(deck(srv, t).is_empty(), "{who}'s deck shows Ann's items");
    }
    assert_eq!(item(srv, &lab.show, owner)["viewedLeafCount"], 0);

    // Ben and the friend ask about an episode of the show library they are not shared: the metadata's 404,
    // with the same words, and Ann's state of it does not change.
    let ep = &lab.episodes[0];
    for (who, t) in [("Ben", &b), ("fred", &f)] {
        let hidden = get(srv, &format!("/library/metadata/{ep}"), t);
        assert_eq!(hidden.0, 404, "{who}");
        assert_eq!(timeline(srv, t, ep, 5_000, 6_000_000, "playing"), hidden, "{who}'s timeline");
        assert_eq!(get(srv, &format!("/:/unscrobble?key={ep}&identifier=com.plexapp.plugins.library"), t), hidden, "{who}'s unscrobble");
        assert_eq!(get(srv, &format!("/:/progress?key={ep}&identifier=com.plexapp.plugins.library&time=5000&state=stopped"), t), hidden);
        // A key for a visible item with a ratingKey of a hidden one is no item either.
        let mixed = get(srv, &format!("/:/timeline?ratingKey={ep}&key=/library/metadata/{}&time=1&state=playing", lab.alpha), t);
        assert_eq!(mixed.0, 404, "{who}");
    }
    assert_eq!(state(srv, ep, &a), (None, Some(1)));

    // The friend's own progress on the same film is theirs; Ann's stays.
    assert_eq!(timeline(srv, &f, &lab.alpha, 30_000, 6_000_000, "paused").0, 200);
    assert_eq!(state(srv, &lab.alpha, &f), (Some(30_000), None));
    assert_eq!(state(srv, &lab.alpha, &a), (Some(600_000), None));

    // Ann's deck: Alpha in progress, and episode 2 (the next after the watched one). The friend's: Alpha at
    // the friend's own offset.
    // (Newest first: both were touched within a second or two, so the order is not asserted here.)
    let mut names = deck(srv, &a);
    names.sort();
    let mut want = vec![(lab.alpha.clone(), Some(600_000)), (lab.episodes[1].clone(), None)];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(deck(srv, &f), [(lab.alpha.clone(), Some(30_000))]);
    let (st, v) = get(srv, &format!("/library/sections/{shows}/onDeck"), &a);
    assert_eq!((st, metadata(&v).len()), (200, 1), "the show section's deck: the next episode only");
    assert_eq!(get(srv, &format!("/library/sections/{shows}/onDeck"), &b).0, 403, "Ben has no show section");
    // Plex's "Continue Watching" hub is the same deck, each caller's own, under the same access rule.
    for (who, token) in [("Ann", &a), ("the friend", &f)] {
        let (st, v) = get(srv, "/hubs/continueWatching/items", token);
        assert_eq!(st, 200, "{who}: {v}");
        let mut cw: Vec<(String, Option<u64>)> = metadata(&v).iter().map(|m| (rk(m), m["viewOffset"].as_u64())).collect();
        let mut d = deck(srv, token);
        cw.sort();
        d.sort();
        assert_eq!(cw, d, "{who}: continueWatching lists the deck");
    }
    let (st, v) = get(srv, &format!("/hubs/sections/{shows}/continueWatching/items"), &a);
    assert_eq!((st, metadata(&v).iter().map(rk).collect::<Vec<_>>()), (200, vec![lab.episodes[1].clone()]), "{v}");
    assert_eq!(get(srv, &format!("/hubs/sections/{shows}/continueWatching/items"), &b).0, 403, "Ben has no show section");
    // The home screen's rows: Ann's deck first, then what is new in each library she sees, each with its items.
    let hubs = |path: &str, token: &str| -> Vec<(String, u64, String, Vec<String>)> {
        let (st, v) = get(srv, path, token);
        assert_eq!(st, 200, "{path}: {v}");
        let list = v["MediaContainer"]["Hub"].as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|h| {
                let kids = h["Metadata"].as_array().cloned().unwrap_or_default().iter().map(rk).collect();
                (h["hubIdentifier"].as_str().unwrap().to_owned(), h["size"].as_u64().unwrap(), h["more"].to_string(), kids)
            })
            .collect()
    };
    let home = hubs("/hubs", &a);
    let ids: Vec<&str> = home.iter().map(|h| h.0.as_str()).collect();
    assert_eq!(ids, ["home.continue", "home.movie.recent", "home.show.recent"]);
    let mut cw = home[0].3.clone();
    cw.sort();
    let mut d: Vec<String> = deck(srv, &a).into_iter().map(|(id, _)| id).collect();
    d.sort();
    assert_eq!(cw, d, "Continue Watching is Ann's deck");
    let mut films_new = home[1].3.clone();
    films_new.sort();
    let mut want = vec![lab.alpha.clone(), lab.charlie.clone()];
    want.sort();
    assert_eq!((home[1].1, films_new), (2, want), "both films are new");
    assert_eq!(home[2].1, 1, "the new episodes stand for their season: {home:?}");
    let few = hubs("/hubs?count=1", &a);
    assert!(few.iter().all(|h| h.1 == 1 && h.3.len() == 1), "{few:?}");
    assert_eq!(few[1].2, "\"1\"", "a hub with more than it shows says more=1: {few:?}");
    let only = hubs(&format!("/hubs?contentDirectoryID={}&identifier=home.movie.recent", lab.films), &a);
    assert_eq!(only.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["home.movie.recent"]);
    // Ben sees the films only: no show row, no episode anywhere.
    let bens = hubs("/hubs", &b);
    assert!(bens.iter().all(|h| h.0 != "home.show.recent" && !h.3.iter().any(|k| lab.episodes.contains(k))), "{bens:?}");
    let section = hubs(&format!("/hubs/sections/{shows}"), &a);
    assert_eq!(section.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["show.inprogress", "show.recentlyadded"]);
    assert_eq!(section[0].3, [lab.episodes[1].clone()], "the show section's Continue Watching: the next episode");
    assert_eq!(get(srv, &format!("/hubs/sections/{shows}"), &b).0, 403, "Ben has no show section");
    for bad in ["/hubs?count=0", "/hubs?count=many", "/hubs?contentDirectoryID=films"] {
        let (st, v) = get(srv, bad, &a);
        assert_eq!(st, 400, "{bad}: {v}");
    }

    // Past 90 % counts as watched, once; the offset is cleared and Alpha leaves the deck.
    timeline(srv, &a, &lab.alpha, 5_500_000, 6_000_000, "playing");
    timeline(srv, &a, &lab.alpha, 5_900_000, 6_000_000, "stopped");
    assert_eq!(state(srv, &lab.alpha, &a), (None, Some(1)));
    assert!(!deck(srv, &a).iter().any(|(id, _)| *id == lab.alpha));

    // Bad input: a clear 400 and nothing stored changes.
    timeline(srv, &a, &lab.charlie, 1_000, 6_000_000, "playing");
    let before = item(srv, &lab.charlie, &a);
    for q in [
        format!("ratingKey={}&time=abc&state=playing", lab.charlie),
        format!("ratingKey={}&time=5000&state=flying", lab.charlie),
        format!("ratingKey={}&state=playing", lab.charlie),
        format!("ratingKey={}&time=99000000&duration=6000000&state=playing", lab.charlie),
        format!("ratingKey={}&time=5000&duration=long&state=playing", lab.charlie),
    ] {
        let (st, v) = get(srv, &format!("/:/timeline?{q}"), &a);
        assert_eq!(st, 400, "{q}: {v}");
        assert!(v.to_string().len() > 20, "{q}: a message: {v}");
    }
    let (st, _) = get(srv, &format!("/:/scrobble?key={}&identifier=com.example.other", lab.charlie), &a);
    assert_eq!(st, 400);
    assert_eq!(item(srv, &lab.charlie, &a), before);

    // Unscrobble forgets; a scrobble of the show marks every episode.
    get(srv, &format!("/:/unscrobble?key={ep}&identifier=com.plexapp.plugins.library"), &a);
    assert_eq!(state(srv, ep, &a), (None, None));
    get(srv, &format!("/:/scrobble?key={}&identifier=com.plexapp.plugins.library", lab.show), &a);
    assert_eq!(item(srv, &lab.show, &a)["viewedLeafCount"], 3);

    // XML carries the same attributes.
    let (_, _, xml) = srv.call("GET", &format!("/library/metadata/{}", lab.charlie), &[("X-Plex-Token", &a)], None);
    assert!(xml.contains("viewOffset=\"1000\""), "{xml}");
    let (_, _, xml) = srv.call("GET", &format!("/library/metadata/{}", lab.charlie), &[("X-Plex-Token", &b)], None);
    assert!(!xml.contains("viewOffset"), "{xml}");
}

#[test]
fn a_flood_of_timelines_is_refused_and_changes_nothing() {
    let lab = lab(&[]);
    let (srv, owner) = (&lab.srv, &lab.owner);
    let mut refused = 0;
    for t in 1..=80u64 {
        let (st, _) = timeline(srv, owner, &lab.alpha, t * 1000, 6_000_000, "playing");
        if st == 429 {
            refused += 1;
        } else {
            assert_eq!(st, 200);
        }
    }
    assert!(refused >= 10, "only {refused} of 80 refused");
    let (offset, _) = state(srv, &lab.alpha, owner);
    assert!(offset.unwrap() < 80_000, "a refused timeline stored its offset: {offset:?}");
}

fn book(data: &Path) -> Option<Book> {
    let bytes = std::fs::read(data.join(FILE)).ok()?;
    Some(Book::decode(&bytes).expect("the watch-state file is always whole"))
}

#[test]
fn watch_state_survives_restarts_kills_and_damage() {
    let lab = lab(&["--watch-state-batch-secs", "1"]);
    let Lab { srv, owner, alpha, dir, .. } = lab;
    let data = dir.path().join("data");
    // A batch is written within the batch interval...
    timeline(&srv, &owner, &alpha, 60_000, 6_000_000, "playing");
    wait_for("the first batch", 10, || book(&data).filter(|b| b.len() == 1));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(data.join(FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    // ...so a kill -9 after it keeps it.
    srv.kill();
    let srv = Server::start(&data);
    assert_eq!(state(&srv, &alpha, &owner), (Some(60_000), None));

    // Killed while timelines stream in and batches are written: the file is one whole batch, and what the
    // server shows after is one of the offsets sent.
    let srv = {
        drop(srv);
        Server::start_with(&data, &["--watch-state-batch-secs", "1"], &[])
    };
    let sent: Vec<u64> = (1..=25).map(|n| 60_000 + n * 1000).collect();
    for (n, t) in sent.iter().enumerate() {
        timeline(&srv, &owner, &alpha, *t, 6_000_000, "playing");
        if n % 5 == 4 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    srv.kill();
    let b = book(&data).expect("a file");
    assert_eq!(b.len(), 1);
    let srv = Server::start(&data);
    let (offset, _) = state(&srv, &alpha, &owner);
    assert!(offset == Some(60_000) || sent.contains(&offset.unwrap()), "{offset:?} was never sent");

    // A clean stop writes the last changes, whatever the batch interval (default 30 s here).
    timeline(&srv, &owner, &alpha, 777_000, 6_000_000, "stopped");
    srv.stop_cleanly();
    let srv = Server::start(&data);
    assert_eq!(state(&srv, &alpha, &owner), (Some(777_000), None));
    srv.kill();

    // A truncated file: the server starts, says so, keeps the file aside and starts empty.
    let whole = std::fs::read(data.join(FILE)).unwrap();
    std::fs::write(data.join(FILE), &whole[..whole.len() - 3]).unwrap();
    let srv = Server::start(&data);
    assert_eq!(state(&srv, &alpha, &owner), (None, None));
    assert_eq!(std::fs::read(data.join(DAMAGED)).unwrap(), whole[..whole.len() - 3]);
    let log = srv.system(&owner)["log"].to_string();
    assert!(log.contains("watch-state file damaged"), "the log does not say so: {log}");
    srv.kill();
    // Garbage: the same; the next batch writes a good file again.
    std::fs::write(data.join(FILE), b"this is not a watch-state file at all").unwrap();
    let srv = Server::start_with(&data, &["--watch-state-batch-secs", "1"], &[]);
    assert_eq!(state(&srv, &alpha, &owner), (None, None));
    timeline(&srv, &owner, &alpha, 5_000, 6_000_000, "paused");
    wait_for("a good file again", 10, || book(&data).filter(|b| b.len() == 1));
    srv.kill();
}

#[test]
fn a_removed_members_watch_state_goes_with_the_next_batch() {
    let lab = lab(&["--watch-state-batch-secs", "1"]);
    let data = lab.dir.path().join("data");
    let (srv, owner) = (&lab.srv, &lab.owner);
    let body = json!({"name": "Kim", "shares": [lab.films]}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/members", &[("X-Plex-Token", owner)], Some(&body));
    assert_eq!(st, 201, "{v}");
    let kim_id = v["id"].as_u64().unwrap();
    let sw = json!({"id": kim_id}).to_string();
    let (st, v) = srv.json("POST", "/api/v1/home/switch", &[("X-Plex-Token", owner), ("X-Plex-Client-Identifier", "tv-kim")], Some(&sw));
    assert_eq!(st, 200, "{v}");
    let kim = v["token"].as_str().unwrap().to_owned();
    timeline(srv, &kim, &lab.alpha, 60_000, 6_000_000, "playing");
    timeline(srv, owner, &lab.charlie, 1_000, 6_000_000, "playing");
    wait_for("both entries written", 10, || book(&data).filter(|b| b.len() == 2));
    let (st, v) = srv.json("DELETE", &format!("/api/v1/members/{kim_id}"), &[("X-Plex-Token", owner)], None);
    assert!(st == 200 || st == 204, "{st} {v}");
    // Nothing else changes, yet the next batch drops Kim's entry and keeps the owner's.
    wait_for("Kim's entry to go", 10, || book(&data).filter(|b| b.len() == 1));
    assert_eq!(state(srv, &lab.charlie, owner), (Some(1_000), None));
}
