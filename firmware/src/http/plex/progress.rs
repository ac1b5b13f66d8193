//! Watch state through the Plex client API (issue 20 part 4), as python-plexapi and Plex clients call it:
//!
//! - `GET /:/timeline?ratingKey=ID&key=/library/metadata/ID&time=MS&duration=MS&state=playing|paused|stopped`
//!   (`Playable.updateTimeline`; clients send one every ~10 s while playing, and on pause and stop),
//! - `GET /:/progress?key=ID&identifier=com.plexapp.plugins.library&time=MS&state=...` (`updateProgress`),
//! - `GET /:/scrobble?key=ID&identifier=com.plexapp.plugins.library` (`markPlayed`; on a show, season, artist
//!   or album: every episode or track under it), `GET /:/unscrobble` (`markUnplayed`),
//! - `GET /library/onDeck`, `GET /library/sections/{id}/onDeck` (`Library.onDeck`, `LibrarySection.onDeck`):
//!   the caller's items in progress, newest first, then for each show they watch whose next episode is not
//!   started, that next episode (Plex's On Deck),
//! - `GET /hubs/continueWatching/items`, `GET /hubs/sections/{id}/continueWatching/items`
//!   (`PlexServer.continueWatching`, `LibrarySection.continueWatching`): the same deck under the name Plex
//!   gave the row in 2020 ("Continue Watching" merged On Deck's next episodes with the items in progress).
//!
//! The item comes from the query and is bound by the access rule before the handler runs
//! ([`crate::http::routes::item_from_query`]): an item the caller cannot see answers the same 404 as its
//! metadata, and nothing is stored. Every change is the caller's own: a signed-in account's, or the owner's
//! for an API token and an unsecured LAN bypass (as a Plex server token is the owner's). The state itself and
//! its rules (the 90 % played threshold, caps, the per-account rate limit, batched writes) are the library
//! room's ([`crate::library::viewing`]).

use super::{Found, Node, container, find_metadata, find_section, item_node, media_container, query, visible, window};
use crate::auth::Caller;
use crate::http::routes::Call;
use crate::http::{Body, error};
use crate::library::viewing::{Change, Refused, Target, Viewing};
use crate::library::{Catalog, Item, ItemId, kind::Media};
use crate::state::{AccountId, Library, LibraryId};
use hyper::{Response, StatusCode};
use std::collections::{HashMap, HashSet};

/// What `identifier` must be when given: Plex's library plug-in, the only keeper of watch state.
const LIBRARY_IDENTIFIER: &str = "com.plexapp.plugins.library";
/// How far past the item's known end a reported time may be (players report the end a little late).
const END_SLACK_MS: u64 = 60_000;
/// At most this many items on deck.
const DECK_MAX: usize = 100;

/// The account whose watch state this caller reads and writes (see the module doc); None for callers that
/// are nobody (DLNA, public routes).
pub(super) fn account_of(call: &Call) -> Option<AccountId> {
    match call.caller {
        Caller::Account { account, .. } => Some(account),
        Caller::Tool { .. } | Caller::Bypass => call.ctx.state.snapshot().owner().map(|o| o.id),
        Caller::Anyone | Caller::Dlna { .. } => None,
    }
}

/// The caller's viewing of an item, if they have one.
fn viewing_of(call: &Call, account: AccountId, i: &Item) -> Option<Viewing> {
    call.ctx.library.viewings().read(|b| b.get(account, Catalog::target(i)))
}

/// `viewOffset`, `viewCount`, `lastViewedAt` on an item's node: the caller's own, when set.
pub(super) fn with_viewing(call: &Call, i: &Item, n: Node) -> Node {
    let Some(v) = account_of(call).and_then(|a| viewing_of(call, a, i)) else { return n };
    n.opt("viewOffset", (v.offset_ms > 0).then_some(v.offset_ms))
        .opt("viewCount", (v.count > 0).then_some(v.count as u64))
        .opt("lastViewedAt", (v.last_viewed > 0).then_some(v.last_viewed as u64))
}

/// `viewedLeafCount` of a show, season, artist or album: how many of its episodes or tracks the caller has
/// watched.
pub(super) fn viewed_leaves(call: &Call, group: ItemId) -> u64 {
    let Some(account) = account_of(call) else { return 0 };
    if !call.ctx.library.viewings().read(|b| b.has_any(account)) {
        return 0;
    }
    let leaves = call.ctx.library.episodes(group);
    call.ctx.library.viewings().read(|b| {
        leaves.iter().filter(|i| b.get(account, Catalog::target(i)).is_some_and(|v| v.count > 0)).count() as u64
    })
}

fn bad(call: &Call, message: &str) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, message, call.format)
}

/// A millisecond count from the query: None when absent; an error a person can act on when not a number.
fn millis(call: &Call, name: &str, required: bool) -> Result<Option<u64>, Response<Body>> {
    match query(call, name) {
        Some(v) if !v.is_empty() => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| bad(call, &format!("{name} must be a whole number of milliseconds, not {v:?}."))),
        _ if required => Err(bad(call, &format!("{name} (milliseconds) is missing."))),
        _ => Ok(None),
    }
}

/// The checks every change makes before it is applied: the identifier, and the account.
fn prologue(call: &Call) -> Result<AccountId, Response<Body>> {
    if let Some(id) = query(call, "identifier")
        && id != LIBRARY_IDENTIFIER
    {
        return Err(bad(call, &format!("Hearth keeps watch state for its library only (identifier={LIBRARY_IDENTIFIER}), not for {id:?}.")));
    }
    account_of(call).ok_or_else(|| {
        error(StatusCode::FORBIDDEN, "Watch state belongs to a person; sign in to keep yours.", call.format)
    })
}

/// A playback report (`timeline`, `progress`): where playback is, and (optionally) how long the item is.
fn report(call: Call, duration_param: bool) -> Response<Body> {
    let account = match prologue(&call) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match query(&call, "state").as_deref() {
        None | Some("playing" | "paused" | "stopped" | "buffering") => {}
        Some(other) => return bad(&call, &format!("state must be playing, paused, stopped or buffering, not {other:?}.")),
    }
    let time = match millis(&call, "time", true) {
        Ok(t) => t.unwrap_or_default(),
        Err(r) => return r,
    };
    // python-plexapi sends `duration=None` for an item whose duration it does not know: unknown, not an error.
    let told = if duration_param && query(&call, "duration").as_deref() != Some("None") {
        match millis(&call, "duration", false) {
            Ok(d) => d,
            Err(r) => return r,
        }
    } else {
        None
    };
    let (_, found) = match find_metadata(&call) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Found::Item(item) = found else {
        return bad(&call, "Playback progress is kept for films, episodes, tracks and photos, not for a show, season, artist or album.");
    };
    // The catalog's duration wins over the client's; either bounds the time.
    let duration = item.duration_ms.or(told).filter(|d| *d > 0);
    if let Some(d) = duration
        && time > d.saturating_add(END_SLACK_MS)
    {
        return bad(&call, &format!("time {time} ms is past the end of the item ({d} ms)."));
    }
    apply(&call, account, &[Catalog::target(&item)], Change::Offset { offset_ms: time, duration_ms: duration })
}

fn apply(call: &Call, account: AccountId, targets: &[Target], change: Change) -> Response<Body> {
    match call.ctx.library.viewings().apply(account, targets, change) {
        Ok(_) => container(call.format, media_container().a("size", 0u64)),
        Err(e @ Refused::TooFast) => error(StatusCode::TOO_MANY_REQUESTS, &e.to_string(), call.format),
    }
}

/// `GET /:/timeline`.
pub async fn timeline(call: Call) -> Response<Body> {
    report(call, true)
}

/// `GET /:/progress`.
pub async fn progress(call: Call) -> Response<Body> {
    report(call, false)
}

/// Scrobble or unscrobble: the item, or every episode or track under a group.
fn mark(call: Call, change: Change) -> Response<Body> {
    let account = match prologue(&call) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let targets: Vec<Target> = match find_metadata(&call) {
        Ok((_, Found::Item(i))) => vec![Catalog::target(&i)],
        Ok((_, Found::Group(g))) => call.ctx.library.episodes(g.id).iter().map(Catalog::target).collect(),
        Err(r) => return r,
    };
    apply(&call, account, &targets, change)
}

/// `GET /:/scrobble`: watched.
pub async fn scrobble(call: Call) -> Response<Body> {
    mark(call, Change::Scrobble)
}

/// `GET /:/unscrobble`: not watched.
pub async fn unscrobble(call: Call) -> Response<Body> {
    mark(call, Change::Unscrobble)
}

/// `GET /library/onDeck`.
pub async fn on_deck(call: Call) -> Response<Body> {
    deck(call, None)
}

/// `GET /library/sections/{id}/onDeck`.
pub async fn section_on_deck(call: Call) -> Response<Body> {
    match find_section(&call) {
        Ok(lib) => deck(call, Some(lib.id)),
        Err(r) => r,
    }
}

/// The caller's deck, in the libraries they may see (one section, when given): items in progress, newest
/// first, and the next episode of each show they watch (after the last episode they watched, not itself
/// watched) when no episode of that show is in progress.
fn deck(call: Call, section: Option<LibraryId>) -> Response<Body> {
    let snapshot = call.ctx.state.snapshot();
    let vis = visible(&call);
    let libs: HashMap<LibraryId, Library> = snapshot
        .libraries
        .iter()
        .filter(|l| vis.allows(l.id) && section.is_none_or(|s| s == l.id))
        .map(|l| (l.id, l.clone()))
        .collect();
    let deck = deck_items(&call, &libs);
    let total = deck.len();
    let (start, size) = match window(&call) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut root = media_container()
        .a("totalSize", total as u64)
        .a("offset", start as u64)
        .a("identifier", LIBRARY_IDENTIFIER)
        .a("mixedParents", "1")
        .a("title1", "On Deck");
    let mut shown = 0u64;
    for item in deck.into_iter().skip(start).take(size) {
        let lib = &libs[&item.library];
        root = root.kid(item_node(&call, lib, &item));
        shown += 1;
    }
    container(call.format, root.a("size", shown))
}

/// The deck's items in the libraries `libs` (the caller may see them all), newest activity first, at most
/// [`DECK_MAX`]: also the Continue Watching hub of `GET /hubs` (plex/hubs.rs).
pub(super) fn deck_items(call: &Call, libs: &HashMap<LibraryId, Library>) -> Vec<Item> {
    let library = &call.ctx.library;
    let entries = match account_of(call) {
        Some(a) => library.viewings().read(|b| b.of_account(a)),
        None => Vec::new(),
    };
    let mut deck: Vec<(u32, Item)> = Vec::new();
    let mut watched: HashSet<ItemId> = HashSet::new();
    // Shows the caller watches: the newest activity in each, and whether an episode is in progress.
    let mut shows: HashMap<ItemId, (u32, bool)> = HashMap::new();
    for (t, v) in entries {
        let Some(item) = library.item(t.item).filter(|i| Catalog::target(i) == t && libs.contains_key(&i.library)) else {
            continue;
        };
        if v.watched {
            watched.insert(item.id);
        }
        if let Some(e) = item.episode
            && item.media == Media::Video
        {
            let s = shows.entry(e.show).or_insert((0, false));
            s.0 = s.0.max(v.last_viewed);
            s.1 |= v.in_progress();
        }
        if v.in_progress() {
            deck.push((v.last_viewed, item));
        }
    }
    for (show, (last, in_progress)) in shows {
        if in_progress {
            continue;
        }
        let episodes = library.episodes(show);
        let Some(at) = episodes.iter().rposition(|i| watched.contains(&i.id)) else { continue };
        if let Some(next) = episodes[at + 1..].iter().find(|i| !watched.contains(&i.id)) {
            deck.push((last, next.clone()));
        }
    }
    deck.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    deck.truncate(DECK_MAX);
    deck.into_iter().map(|(_, item)| item).collect()
}
