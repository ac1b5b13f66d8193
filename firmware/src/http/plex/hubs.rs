//! Search, "Recently added" and the home screen's rows (issue 20, part 1), Plex-shaped as python-plexapi reads
//! them:
//!
//! - `GET /hubs`, `GET /hubs/sections/{id}` (`Library.hubs()`, `LibrarySection.hubs()`): `Hub` elements for a
//!   home screen, "Continue Watching" (the caller's deck, plex/progress.rs) and "Recently Added in NAME" per
//!   library, each with up to `count` items and a `key` that lists them all.
//! - `GET /hubs/search?query=&limit=&sectionId=`: a MediaContainer of `Hub` elements, one per kind of thing
//!   found (movie, show, episode, artist, album, track, photo), each holding up to `limit` items as
//!   `/library/metadata` lists them (`PlexServer.search()` reads `Hub` and its children). Best matches first
//!   (the title starts with the text, then a word in it does, then anywhere), then by title. A hub with more
//!   matches than it shows says `more="1"` and names the whole list in `key` (`/library/all`).
//! - `GET /library/all?title=&type=`: every visible item (or show, artist, album, photo album) whose title
//!   contains the text, in title order, paged (`Library.search()`, and a hub's `key`).
//! - `GET /library/recentlyAdded`, `GET /library/sections/{id}/recentlyAdded`: newest first, as Plex groups
//!   them: a new episode shows as its season, a new track as its album, a new photo as its album; movies and
//!   loose photos as themselves. `addedAt` of a group is its newest item's. Paged.
//!
//! Titles match case- and accent-insensitively ([`crate::library::search`]). Only the libraries the access
//! rule let the caller see are searched ([`crate::auth::Caller::sees`]); the catalog is walked in place and
//! only what is shown is copied out of it.

// Handlers return ready error responses through `Result`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use super::{Call, Node, container, error, find_section, group_node, item_node, listing, media_container, query, visible, window};
use crate::http::Body;
use crate::library::search::{Glance, MAX_QUERY, Needle, Order};
use crate::library::{Group, ItemId, kind::Media};
use crate::state::{Library, LibraryId, LibraryKind};
use hyper::{Response, StatusCode};
use std::collections::HashSet;

/// Items per hub when the client names no `limit`.
pub const DEFAULT_LIMIT: usize = 10;
/// Most items per hub, whatever `limit` asks (a larger limit is taken as this).
pub const MAX_LIMIT: usize = 100;

/// The hubs of a search, in the order they are answered: Plex search type, `type`, title.
const HUBS: [(u32, &str, &str); 7] = [
    (1, "movie", "Movies"),
    (2, "show", "Shows"),
    (4, "episode", "Episodes"),
    (8, "artist", "Artists"),
    (9, "album", "Albums"),
    (10, "track", "Tracks"),
    (13, "photo", "Photos"),
];

/// Plex's search type of an item: movie 1, episode 4, track 10, photo 13.
fn item_type(kind: LibraryKind, g: &Glance<'_>) -> u32 {
    match (g.media, kind) {
        (Media::Audio, _) => 10,
        (Media::Photo, _) => 13,
        (Media::Video, LibraryKind::Shows) if g.episode.is_some() => 4,
        (Media::Video, _) => 1,
    }
}

/// Plex's search type of a group: show 2, season 3, artist 8, album 9, photo album 14.
fn group_type(kind: LibraryKind, g: &Group) -> u32 {
    match kind {
        LibraryKind::Photos => 14,
        LibraryKind::Music if g.album.is_some() => 9,
        LibraryKind::Music => 8,
        _ if g.season.is_some() => 3,
        _ => 2,
    }
}

/// The title a group is shown and found by.
fn group_title(g: &Group) -> &str {
    g.album.as_deref().unwrap_or(&g.show)
}

/// The hub a search type is shown in (photo albums with the photos).
fn hub_of(ty: u32) -> Option<usize> {
    let ty = if ty == 14 { 13 } else { ty };
    HUBS.iter().position(|(t, _, _)| *t == ty)
}

/// One thing a list shows: an item (by id; copied out only when shown) or a group.
enum Entry {
    Item(ItemId),
    Group(Group),
}

/// The libraries this caller may see (all of them, or the one `sectionId` names), by id.
fn searched(call: &Call, section: Option<&str>) -> Result<Vec<Library>, Response<Body>> {
    let vis = visible(call);
    let mut libs: Vec<Library> = call.ctx.state.snapshot().libraries.iter().filter(|l| vis.allows(l.id)).cloned().collect();
    if let Some(want) = section {
        let want = want.parse::<LibraryId>().ok();
        libs.retain(|l| Some(l.id) == want);
        if libs.is_empty() {
            return Err(error(StatusCode::NOT_FOUND, "There is no library section with that id.", call.format));
        }
    }
    Ok(libs)
}

fn kind_of(libs: &[Library], id: LibraryId) -> Option<LibraryKind> {
    libs.iter().find(|l| l.id == id).map(|l| l.kind)
}

/// The text of query parameter `name` as a form encodes it (`+` is a space: python-plexapi's `urlencode`),
/// None when absent; 400 when it is not percent-encoded UTF-8.
fn text(call: &Call, name: &str) -> Result<Option<String>, Response<Body>> {
    let Some(raw) = call.req.uri().query().unwrap_or("").split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    }) else {
        return Ok(None);
    };
    super::super::routes::percent_decode(&raw.replace('+', " ")).map(Some).ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, &format!("The {name}= text is not valid percent-encoded UTF-8."), call.format)
    })
}

/// The search text of `query`/`title`: present, not blank, not longer than [`MAX_QUERY`] bytes.
fn needle(call: &Call, name: &str, text: Option<String>) -> Result<Needle, Response<Body>> {
    let text = text.unwrap_or_default();
    if text.len() > MAX_QUERY {
        return Err(error(
            StatusCode::BAD_REQUEST,
            &format!("The search text is {} bytes long; Hearth searches titles with at most {MAX_QUERY}.", text.len()),
            call.format,
        ));
    }
    Needle::new(&text)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, &format!("Give the words to search for in {name}= (it is empty)."), call.format))
}

/// Items per hub from the query parameter `name` (search's `limit=`, the home hubs' `count=`): 1 or more
/// ([`DEFAULT_LIMIT`] when absent, at most [`MAX_LIMIT`]).
fn per_hub(call: &Call, name: &str) -> Result<usize, Response<Body>> {
    match query(call, name) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
            _ => {
                let shown: String = v.chars().take(40).collect();
                Err(error(StatusCode::BAD_REQUEST, &format!("{name} must be a whole number of 1 or more, not {shown:?}."), call.format))
            }
        },
    }
}

/// A node for an entry, or None when its item went away since the list was made (a scan in between).
fn entry_node(call: &Call, libs: &[Library], e: &Entry) -> Option<Node> {
    match e {
        Entry::Item(id) => {
            let item = call.ctx.library.item(*id)?;
            let lib = libs.iter().find(|l| l.id == item.library)?;
            Some(item_node(call, lib, &item))
        }
        Entry::Group(g) => {
            let lib = libs.iter().find(|l| l.id == g.library)?;
            Some(group_node(call, lib, g))
        }
    }
}

/// `GET /hubs/search`.
pub async fn search(call: Call) -> Response<Body> {
    match search_hubs(&call) {
        Ok(r) | Err(r) => r,
    }
}

fn search_hubs(call: &Call) -> Result<Response<Body>, Response<Body>> {
    let q = text(call, "query")?.unwrap_or_default();
    let mut needle = needle(call, "query", Some(q.clone()))?;
    let limit = per_hub(call, "limit")?;
    let libs = searched(call, query(call, "sectionId").as_deref())?;
    // (rank, entry) per hub, each in title order as found; ranked below.
    let mut found: Vec<Vec<(u8, Entry)>> = HUBS.iter().map(|_| Vec::new()).collect();
    let mut groups = call.ctx.library.groups_where(|g| kind_of(&libs, g.library).is_some() && g.season.is_none());
    groups.sort_by_cached_key(|g| (group_title(g).to_lowercase(), g.id));
    for g in groups {
        let Some(kind) = kind_of(&libs, g.library) else { continue };
        if let (Some(hub), Some(rank)) = (hub_of(group_type(kind, &g)), needle.rank(group_title(&g))) {
            found[hub].push((rank, Entry::Group(g)));
        }
    }
    call.ctx.library.each_item(Order::Title, |g| {
        let Some(kind) = kind_of(&libs, g.library) else { return };
        if let (Some(hub), Some(rank)) = (hub_of(item_type(kind, g)), needle.rank(g.title)) {
            found[hub].push((rank, Entry::Item(g.id)));
        }
    });
    let mut root = media_container();
    let mut hubs = 0u64;
    for (at, mut entries) in found.into_iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let (ty, name, title) = HUBS[at];
        // Stable: equal ranks keep their title order. Photo albums before photos of the same rank.
        entries.sort_by_key(|(rank, e)| (*rank, !matches!(e, Entry::Group(_))));
        let total = entries.len();
        let kids: Vec<Node> = entries.iter().take(limit).filter_map(|(_, e)| entry_node(call, &libs, e)).collect();
        root = root.kid(hub_node(name, title, name, format!("/library/all?type={ty}&title={}", encode(&q)), total, kids));
        hubs += 1;
    }
    Ok(container(call.format, root.a("size", hubs)))
}

/// A `Hub` element as python-plexapi reads it (`hubIdentifier` `id`, items of `ty`, `kids` shown of `total`:
/// `more="1"` when there are more, and `key` lists them all). Search and the home screen's rows.
fn hub_node(id: &str, title: &str, ty: &str, key: String, total: usize, kids: Vec<Node>) -> Node {
    let mut hub = Node::new("Hub", "Hub")
        .a("title", title)
        .a("type", ty)
        .a("hubIdentifier", id)
        .a("context", format!("hub.{id}"))
        .a("size", kids.len() as u64)
        .a("more", if total > kids.len() { "1" } else { "0" })
        .a("style", "shelf")
        .a("key", key);
    hub.kids = kids;
    hub
}

/// Percent-encoding of a query value (RFC 3986 §2.3: unreserved characters as they are).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query parameters `/library/all` honours besides `title` and `type`: harmless ones.
fn harmless(k: &str) -> bool {
    k.starts_with("X-Plex-")
        || matches!(k, "includeGuids" | "includeCollections" | "includeExternalMedia" | "includeMeta" | "includeAdvanced" | "sort")
}

/// `GET /library/all`: visible items and groups whose title contains `title=` (all when absent), of the
/// search type `type=` (every type when absent: groups first, then items), by title, paged.
pub async fn all(call: Call) -> Response<Body> {
    match all_list(call) {
        Ok(r) | Err(r) => r,
    }
}

fn all_list(call: Call) -> Result<Response<Body>, Response<Body>> {
    let q = call.req.uri().query().unwrap_or("");
    for kv in q.split('&').filter(|kv| !kv.is_empty()) {
        let k = kv.split_once('=').map_or(kv, |(k, _)| k);
        let k = super::super::routes::percent_decode(k).unwrap_or_default();
        if !(k == "title" || k == "type" || harmless(&k)) {
            let why = format!("Hearth cannot filter all libraries by {k:?}; it filters by title and type.");
            return Err(error(StatusCode::NOT_IMPLEMENTED, &why, call.format));
        }
    }
    let mut needle = match text(&call, "title")? {
        None => None,
        Some(t) => Some(needle(&call, "title", Some(t))?),
    };
    let ty = match query(&call, "type") {
        None => None,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if matches!(n, 1 | 2 | 3 | 4 | 8 | 9 | 10 | 13 | 14) => Some(n),
            _ => {
                let why = format!("type must be a Plex search type Hearth lists (1, 2, 3, 4, 8, 9, 10, 13, 14), not {t:?}.");
                return Err(error(StatusCode::BAD_REQUEST, &why, call.format));
            }
        },
    };
    let (start, size) = window(&call)?;
    let libs = searched(&call, None)?;
    let mut groups = call.ctx.library.groups_where(|g| {
        kind_of(&libs, g.library).is_some_and(|k| ty.is_none_or(|t| t == group_type(k, g)))
    });
    if let Some(n) = needle.as_mut() {
        groups.retain(|g| n.matches(group_title(g)));
    }
    groups.sort_by_cached_key(|g| (group_title(g).to_lowercase(), g.id));
    let ids = call.ctx.library.item_ids(Order::Title, |g| {
        kind_of(&libs, g.library).is_some_and(|k| ty.is_none_or(|t| t == item_type(k, g)))
            && needle.as_mut().is_none_or(|n| n.matches(g.title))
    });
    let entries: Vec<Entry> = groups.into_iter().map(Entry::Group).chain(ids.into_iter().map(Entry::Item)).collect();
    Ok(page(call, libs, entries, start, size, None))
}

/// The page `start`/`size` of `entries` as a streamed MediaContainer (nodes made only for the page).
fn page(call: Call, libs: Vec<Library>, entries: Vec<Entry>, start: usize, size: usize, section: Option<&Library>) -> Response<Body> {
    let total = entries.len();
    let shown = total.saturating_sub(start).min(size);
    let mut root = media_container().a("size", shown as u64).a("totalSize", total as u64).a("offset", start as u64);
    if let Some(l) = section {
        root = root.a("librarySectionID", l.id as u64).a("librarySectionTitle", l.name.as_str());
    }
    let format = call.format;
    let kids = entries.into_iter().skip(start).take(size).filter_map(move |e| entry_node(&call, &libs, &e));
    listing::respond(format, root, "Metadata", shown, kids, None)
}

/// `GET /library/recentlyAdded`: what was added to the libraries this caller sees, newest first.
pub async fn recently_added(call: Call) -> Response<Body> {
    match recent(call, None) {
        Ok(r) | Err(r) => r,
    }
}

/// `GET /library/sections/{id}/recentlyAdded`: the same for one library.
pub async fn section_recently_added(call: Call) -> Response<Body> {
    let lib = match find_section(&call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    match recent(call, Some(lib)) {
        Ok(r) | Err(r) => r,
    }
}

fn recent(call: Call, section: Option<Library>) -> Result<Response<Body>, Response<Body>> {
    let (start, size) = window(&call)?;
    let mut libs = searched(&call, None)?;
    if let Some(l) = &section {
        libs.retain(|x| x.id == l.id);
    }
    let order = newest(&call, &libs);
    let total = order.len();
    let shown = total.saturating_sub(start).min(size);
    let mut root = media_container().a("size", shown as u64).a("totalSize", total as u64).a("offset", start as u64);
    if let Some(l) = &section {
        root = root.a("librarySectionID", l.id as u64).a("librarySectionTitle", l.name.as_str());
    }
    let format = call.format;
    let kids = order.into_iter().skip(start).take(size).filter_map(move |n| recent_node(&call, &libs, n));
    Ok(listing::respond(format, root, "Metadata", shown, kids, None))
}

/// One entry of "Recently added": an item, or the season it stands for, and when it (or the season's newest
/// episode) was added.
#[derive(Clone, Copy)]
struct Newest {
    id: ItemId,
    group: bool,
    added: u32,
    library: LibraryId,
}

/// "Recently added" in `libs`, newest first: an episode stands for its season, shown once, where its newest
/// episode puts it. Only ids and times are collected; what is shown is copied out when shown.
fn newest(call: &Call, libs: &[Library]) -> Vec<Newest> {
    let mut seen: HashSet<ItemId> = HashSet::new();
    let mut order: Vec<Newest> = Vec::new();
    call.ctx.library.each_item(Order::Newest, |g| {
        if kind_of(libs, g.library).is_none() {
            return;
        }
        match g.episode {
            Some(e) => {
                if seen.insert(e.season) {
                    order.push(Newest { id: e.season, group: true, added: g.added, library: g.library });
                }
            }
            None => order.push(Newest { id: g.id, group: false, added: g.added, library: g.library }),
        }
    });
    order
}

/// The node of a "Recently added" entry; a season says when its newest episode was added.
fn recent_node(call: &Call, libs: &[Library], n: Newest) -> Option<Node> {
    let entry = if n.group { Entry::Group(call.ctx.library.group(n.id)?) } else { Entry::Item(n.id) };
    let node = entry_node(call, libs, &entry)?;
    Some(if n.group { node.a("addedAt", n.added as u64) } else { node })
}

/// `GET /hubs`: the home screen's rows across the libraries the caller may see (`Library.hubs()`):
/// "Continue Watching" (`home.continue`, the caller's deck), then "Recently Added in NAME" for each library
/// (`home.<type>.recent`, with `librarySectionID`). `count=` items per hub ([`DEFAULT_LIMIT`], at most
/// [`MAX_LIMIT`]); `contentDirectoryID=1,2` only those libraries; `identifier=home.continue,...` only those
/// hubs. An empty hub is left out. A hub with more than it shows says `more="1"`; its `key` lists them all.
pub async fn home(call: Call) -> Response<Body> {
    match home_hubs(&call, None) {
        Ok(r) | Err(r) => r,
    }
}

/// `GET /hubs/sections/{id}`: the same rows for one library (`LibrarySection.hubs()`), as
/// `<type>.inprogress` and `<type>.recentlyadded`.
pub async fn section_home(call: Call) -> Response<Body> {
    let lib = match find_section(&call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    match home_hubs(&call, Some(lib)) {
        Ok(r) | Err(r) => r,
    }
}

fn home_hubs(call: &Call, section: Option<Library>) -> Result<Response<Body>, Response<Body>> {
    let count = per_hub(call, "count")?;
    let mut libs = searched(call, None)?;
    match &section {
        Some(l) => libs.retain(|x| x.id == l.id),
        None => {
            if let Some(ids) = text(call, "contentDirectoryID")? {
                let ids: Option<Vec<LibraryId>> = ids.split(',').map(|i| i.trim().parse().ok()).collect();
                let Some(ids) = ids else {
                    let say = "contentDirectoryID is a comma-separated list of library section ids.";
                    return Err(error(StatusCode::BAD_REQUEST, say, call.format));
                };
                libs.retain(|l| ids.contains(&l.id));
            }
        }
    }
    let wanted = text(call, "identifier")?.map(|w| w.split(',').map(|i| i.trim().to_string()).collect::<Vec<_>>());
    let wants = |id: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == id));
    let mut root = media_container();
    let mut hubs = 0u64;
    let (continue_id, continue_key) = match &section {
        Some(l) => (format!("{}.inprogress", super::section_type(l.kind)), format!("/hubs/sections/{}/continueWatching/items", l.id)),
        None => ("home.continue".to_string(), "/hubs/continueWatching/items".to_string()),
    };
    if wants(&continue_id) {
        let by_id: std::collections::HashMap<LibraryId, Library> = libs.iter().map(|l| (l.id, l.clone())).collect();
        let deck = super::progress::deck_items(call, &by_id);
        let kids: Vec<Node> = deck.iter().take(count).map(|i| item_node(call, &by_id[&i.library], i)).collect();
        if !kids.is_empty() {
            root = root.kid(hub_node(&continue_id, "Continue Watching", "mixed", continue_key, deck.len(), kids));
            hubs += 1;
        }
    }
    let order = newest(call, &libs);
    for l in &libs {
        let id = match &section {
            Some(_) => format!("{}.recentlyadded", super::section_type(l.kind)),
            None => format!("home.{}.recent", super::section_type(l.kind)),
        };
        if !wants(&id) {
            continue;
        }
        let mine: Vec<Newest> = order.iter().filter(|n| n.library == l.id).copied().collect();
        let kids: Vec<Node> = mine.iter().take(count).filter_map(|n| recent_node(call, &libs, *n)).collect();
        if kids.is_empty() {
            continue;
        }
        let key = format!("/library/sections/{}/recentlyAdded", l.id);
        let title = format!("Recently Added in {}", l.name.as_str());
        root = root.kid(hub_node(&id, &title, "mixed", key, mine.len(), kids).a("librarySectionID", l.id as u64));
        hubs += 1;
    }
    Ok(container(call.format, root.a("size", hubs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glance(media: Media, episode: bool) -> Glance<'static> {
        let e = crate::library::Episode { show: 1, season: 2, season_no: 1, episode_no: 1 };
        Glance { id: 9, library: 1, media, title: "t", added: 0, episode: episode.then_some(e) }
    }

    fn group(season: Option<u16>, album: Option<&str>) -> Group {
        Group { id: 1, library: 1, show: "s".into(), season, parent: 1, album: album.map(Into::into) }
    }

    /// Every kind of thing lands in the hub python-plexapi expects for it (by the `type` it builds from).
    #[test]
    fn things_land_in_their_hubs() {
        let hub = |ty: u32| hub_of(ty).map(|h| HUBS[h].1);
        assert_eq!(hub(item_type(LibraryKind::Movies, &glance(Media::Video, false))), Some("movie"));
        assert_eq!(hub(item_type(LibraryKind::OtherVideos, &glance(Media::Video, false))), Some("movie"));
        assert_eq!(hub(item_type(LibraryKind::Shows, &glance(Media::Video, true))), Some("episode"));
        assert_eq!(hub(item_type(LibraryKind::Music, &glance(Media::Audio, true))), Some("track"));
        assert_eq!(hub(item_type(LibraryKind::Photos, &glance(Media::Photo, false))), Some("photo"));
        assert_eq!(hub(group_type(LibraryKind::Shows, &group(None, None))), Some("show"));
        assert_eq!(hub(group_type(LibraryKind::Shows, &group(Some(1), None))), None, "seasons are not searched");
        assert_eq!(hub(group_type(LibraryKind::Music, &group(None, None))), Some("artist"));
        assert_eq!(hub(group_type(LibraryKind::Music, &group(None, Some("Dummy")))), Some("album"));
        assert_eq!(hub(group_type(LibraryKind::Photos, &group(None, Some("2024")))), Some("photo"));
    }

    #[test]
    fn hub_keys_encode_the_query() {
        assert_eq!(encode("Amélie & co/x"), "Am%C3%A9lie%20%26%20co%2Fx");
    }
}
