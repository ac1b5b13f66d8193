//! The Plex-compatible client API (DESIGN.md "APIs"): the subset python-plexapi needs to list sections, list
//! and read items and download parts. XML MediaContainer by default, JSON with `Accept: application/json`.
//! Music is artist → album → track (Plex types 8, 9, 10); photos are albums (one per folder, type 14) of
//! photos (type 13). What Hearth does not build (cancel refresh, filters other than title and ids) answers
//! 501 with a message.

// Handlers return ready error responses through `Result`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use super::routes::Call;
use super::{Body, Format, error, full, xml_escape};
use crate::auth::Visible;
use crate::library::search::{Order, fold};
use crate::library::{Group, Item, kind::Media};
use crate::state::{Library, LibraryKind};
use hyper::{Response, StatusCode, header};

pub mod hubs;
mod listing;
pub mod pictures;
pub mod progress;

/// An attribute value.
enum Val {
    S(String),
    N(u64),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::S(s.into())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::S(s)
    }
}
impl From<u64> for Val {
    fn from(n: u64) -> Val {
        Val::N(n)
    }
}

/// One element of a MediaContainer: XML tag, the JSON array it goes into, attributes, children.
struct Node {
    tag: &'static str,
    json: &'static str,
    attrs: Vec<(&'static str, Val)>,
    kids: Vec<Node>,
}

impl Node {
    fn new(tag: &'static str, json: &'static str) -> Node {
        Node {
            tag,
            json,
            attrs: Vec::new(),
            kids: Vec::new(),
        }
    }
    fn a(mut self, k: &'static str, v: impl Into<Val>) -> Node {
        self.attrs.push((k, v.into()));
        self
    }
    fn opt(self, k: &'static str, v: Option<impl Into<Val>>) -> Node {
        match v {
            Some(v) => self.a(k, v),
            None => self,
        }
    }
    fn kid(mut self, n: Node) -> Node {
        self.kids.push(n);
        self
    }

    fn xml(&self, out: &mut String, depth: usize) {
        out.push_str(&"  ".repeat(depth));
        out.push('<');
        out.push_str(self.tag);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            match v {
                Val::S(s) => out.push_str(&xml_escape(s)),
                Val::N(n) => out.push_str(&n.to_string()),
            }
            out.push('"');
        }
        if self.kids.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            for k in &self.kids {
                k.xml(out, depth + 1);
            }
            out.push_str(&"  ".repeat(depth));
            out.push_str("</");
            out.push_str(self.tag);
            out.push_str(">\n");
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.attrs {
            let v = match v {
                Val::S(s) => serde_json::Value::String(s.clone()),
                Val::N(n) => serde_json::Value::from(*n),
            };
            m.insert((*k).into(), v);
        }
        for k in &self.kids {
            let arr = m
                .entry(k.json)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(a) = arr {
                a.push(k.json());
            }
        }
        serde_json::Value::Object(m)
    }
}

/// Answer a MediaContainer in the client's format.
fn container(format: Format, root: Node) -> Response<Body> {
    match format {
        Format::Json => super::json(&serde_json::json!({ "MediaContainer": root.json() })),
        Format::Xml => {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            root.xml(&mut s, 0);
            Response::builder()
                .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(full(s))
                .expect("valid response")
        }
    }
}

fn media_container() -> Node {
    Node::new("MediaContainer", "MediaContainer")
}

/// The libraries this caller may see: what the access rule decided ([`crate::auth::Caller::sees`]).
fn visible(call: &Call) -> Visible {
    call.caller.sees()
}

fn query(call: &Call, key: &str) -> Option<String> {
    call.req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| super::routes::percent_decode(v).unwrap_or_default())
    })
}

/// `X-Plex-Container-Start`/`-Size` from headers or the query (start 0 and no limit when absent); a value
/// that is not a whole number is refused (400) rather than taken for the whole list.
fn window(call: &Call) -> Result<(usize, usize), Response<Body>> {
    let get = |k: &str| -> Result<Option<usize>, Response<Body>> {
        let Some(v) = call.req.headers().get(k).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).or_else(|| query(call, k))
        else {
            return Ok(None);
        };
        let v = v.trim();
        v.parse::<u64>().map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX))).map_err(|_| {
            let shown: String = v.chars().take(40).collect();
            error(StatusCode::BAD_REQUEST, &format!("{k} must be a whole number of 0 or more, not {shown:?}."), call.format)
        })
    };
    Ok((get("X-Plex-Container-Start")?.unwrap_or(0), get("X-Plex-Container-Size")?.unwrap_or(usize::MAX)))
}

fn section_type(kind: LibraryKind) -> &'static str {
    match kind {
        LibraryKind::Movies | LibraryKind::OtherVideos => "movie",
        LibraryKind::Shows => "show",
        LibraryKind::Music => "artist",
        LibraryKind::Photos => "photo",
    }
}

/// `GET /`: the server's MediaContainer. (A browser asking for `/` was sent to /web/ by the dispatcher, before
/// the access rule.)
pub async fn root(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let name = if s.settings.friendly_name.is_empty() {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "Hearth".into())
    } else {
        s.settings.friendly_name.to_string()
    };
    let root = media_container()
        .a("size", 1u64)
        .a("friendlyName", name)
        .a("machineIdentifier", s.machine_identifier())
        .a("version", crate::VERSION)
        .a("platform", "Linux")
        .a("multiuser", "1")
        .a("myPlex", "0")
        .a("transcoderVideo", "0")
        .a("transcoderAudio", "0")
        .a("allowSync", "0")
        .a("updatedAt", crate::system::clock::unix_now())
        .kid(
            Node::new("Directory", "Directory")
                .a("key", "library")
                .a("title", "library"),
        );
    container(call.format, root)
}

/// `GET /library`.
pub async fn library(call: Call) -> Response<Body> {
    let root = media_container()
        .a("size", 1u64)
        .a("identifier", "com.plexapp.plugins.library")
        .a("title1", "Plex Library")
        .kid(
            Node::new("Directory", "Directory")
                .a("key", "sections")
                .a("title", "Library Sections"),
        );
    container(call.format, root)
}

fn section_node(call: &Call, l: &Library) -> Node {
    let s = call.ctx.state.snapshot();
    let progress = call.ctx.library.progress_of(l.id).view();
    let mut n = Node::new("Directory", "Directory")
        .a("key", l.id as u64)
        .a("type", section_type(l.kind))
        .a("title", l.name.as_str())
        .a("agent", "tv.plex.agents.none")
        .a("scanner", "Hearth")
        .a("language", "xn")
        .a("uuid", format!("{}-{:02x}", s.machine_identifier(), l.id))
        .a("refreshing", if progress.running { "1" } else { "0" })
        .a("updatedAt", crate::system::clock::unix_now());
    for (i, f) in s.folders.iter().filter(|f| f.library == l.id).enumerate() {
        n = n.kid(
            Node::new("Location", "Location")
                .a("id", i as u64 + 1)
                .a("path", f.path.as_str()),
        );
    }
    n
}

/// `GET /library/sections`.
pub async fn sections(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let vis = visible(&call);
    let mut root = media_container().a("title1", "Plex Library");
    let mut count = 0u64;
    for l in s.libraries.iter().filter(|l| vis.allows(l.id)) {
        root = root.kid(section_node(&call, l));
        count += 1;
    }
    container(call.format, root.a("size", count))
}

/// The library a `{id}` names, if this caller may see it.
fn find_section(call: &Call) -> Result<Library, Response<Body>> {
    let id = call.params.get("id").and_then(|v| v.parse::<u8>().ok());
    let s = call.ctx.state.snapshot();
    let vis = visible(call);
    id.and_then(|id| {
        s.libraries
            .iter()
            .find(|l| l.id == id && vis.allows(l.id))
            .cloned()
    })
    .ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "There is no library section with that id.",
            call.format,
        )
    })
}

/// `GET /library/sections/{id}/all`.
pub async fn section_all(call: Call) -> Response<Body> {
    section_list(call, None)
}

/// `GET /library/sections/{id}/albums`: a music section's albums (what `type=9` lists).
pub async fn section_albums(call: Call) -> Response<Body> {
    section_list(call, Some(9))
}

fn section_list(call: Call, forced: Option<u32>) -> Response<Body> {
    let lib = match find_section(&call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let default = match lib.kind {
        LibraryKind::Movies | LibraryKind::OtherVideos => 1,
        LibraryKind::Shows => 2,
        LibraryKind::Music => 8,
        LibraryKind::Photos => 14,
    };
    let ty = forced
        .or_else(|| query(&call, "type").and_then(|t| t.parse::<u32>().ok()))
        .unwrap_or(default);
    let filter = match Filter::parse(call.req.uri().query().unwrap_or("")) {
        Ok(f) => f,
        Err(why) => return error(StatusCode::NOT_IMPLEMENTED, &why, call.format),
    };
    let (start, size) = match window(&call) {
        Ok(w) => w,
        Err(r) => return r,
    };
    // R-F5: the rows are a snapshot of the catalog; their nodes are made and written one at a time
    // (plex::listing), so a 20,000-item listing never exists whole as nodes or text. A library's own items
    // are walked in the catalog's title order by id, filtered on the way, and only the page is copied out.
    let order = if filter.newest { Order::Newest } else { Order::Title };
    let ids = || Rows::Ids(call.ctx.library.item_ids(order, |g| g.library == lib.id && filter.leaf(g.title, g.episode, g.media)));
    let rows = match (lib.kind, ty) {
        (LibraryKind::Movies | LibraryKind::OtherVideos, 1) => ids(),
        (LibraryKind::Shows, 2) | (LibraryKind::Music, 8) => Rows::Groups(call.ctx.library.shows(lib.id)),
        (LibraryKind::Shows, 3) => Rows::Groups(
            call.ctx
                .library
                .shows(lib.id)
                .iter()
                .flat_map(|show| call.ctx.library.seasons(show.id))
                .collect(),
        ),
        (LibraryKind::Shows, 4) => Rows::Items(
            call.ctx
                .library
                .shows(lib.id)
                .iter()
                .flat_map(|show| call.ctx.library.episodes(show.id))
                .collect(),
        ),
        (LibraryKind::Music, 9) => Rows::Groups(call.ctx.library.albums(lib.id, None)),
        (LibraryKind::Music, 10) | (LibraryKind::Photos, 13) => ids(),
        (LibraryKind::Photos, 14) => Rows::Groups(call.ctx.library.albums(lib.id, None)),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("This section has no items of type {ty}."),
                call.format,
            );
        }
    };
    if filter.newest && !matches!(rows, Rows::Ids(_)) {
        let why = format!("Hearth sorts by addedAt only movies, tracks and photos; /library/sections/{}/recentlyAdded lists what is new.", lib.id);
        return error(StatusCode::NOT_IMPLEMENTED, &why, call.format);
    }
    let rows = rows.filtered(&filter);
    let total = rows.len();
    let shown = total.saturating_sub(start).min(size);
    let root = media_container()
        .a("size", shown as u64)
        .a("totalSize", total as u64)
        .a("offset", start as u64)
        .a("librarySectionID", lib.id as u64)
        .a("librarySectionTitle", lib.name.as_str())
        .a("viewGroup", section_type(lib.kind));
    let tail = (query(&call, "includeMeta").as_deref() == Some("1")).then(|| meta(&lib, ty));
    let format = call.format;
    let kids: Box<dyn Iterator<Item = Node> + Send> = match rows {
        Rows::Items(v) => Box::new(v.into_iter().skip(start).take(size).map(move |i| item_node(&call, &lib, &i))),
        Rows::Ids(v) => Box::new(
            v.into_iter().skip(start).take(size).filter_map(move |id| Some(item_node(&call, &lib, &call.ctx.library.item(id)?))),
        ),
        Rows::Groups(v) => Box::new(v.into_iter().skip(start).take(size).map(move |g| group_node(&call, &lib, &g))),
    };
    listing::respond(format, root, "Metadata", shown, kids, tail)
}

/// What a section listing lists: items or groups, in the catalog's order (`Ids`: items already filtered,
/// copied out of the catalog only for the page shown).
enum Rows {
    Items(Vec<Item>),
    Ids(Vec<crate::library::ItemId>),
    Groups(Vec<Group>),
}

impl Rows {
    fn filtered(self, filter: &Filter) -> Rows {
        match self {
            Rows::Items(mut v) => {
                v.retain(|i| filter.item(i));
                Rows::Items(v)
            }
            Rows::Groups(mut v) => {
                v.retain(|g| filter.group(g));
                Rows::Groups(v)
            }
            Rows::Ids(v) => Rows::Ids(v),
        }
    }

    fn len(&self) -> usize {
        match self {
            Rows::Items(v) => v.len(),
            Rows::Ids(v) => v.len(),
            Rows::Groups(v) => v.len(),
        }
    }
}

/// The filters `/library/sections/{id}/all` honours. Anything else that would narrow the list is refused
/// (501) rather than ignored, so a client never takes the whole list for a filtered one.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filter {
    /// `title=` (Plex's "contains", case- and accent-insensitive: folded as search folds).
    title: Option<String>,
    /// `artist.id=` (albums and tracks of an artist), `album.id=` (tracks of an album), `show.id=`
    /// (seasons and episodes of a show).
    artist: Option<u32>,
    album: Option<u32>,
    show: Option<u32>,
    /// `sort=addedAt:desc` (or `<type>.addedAt:desc`, as python-plexapi's `section.recentlyAdded()` sends it):
    /// newest first. Built for the item listings (movies, tracks, photos).
    newest: bool,
}

impl Filter {
    /// Query parameters that change nothing about which items are listed.
    const HARMLESS: &'static [&'static str] = &[
        "type", "includeMeta", "includeAdvanced", "includeGuids", "includeCollections",
        "includeExternalMedia", "includeFields", "excludeAllLeaves", "checkFiles",
    ];

    fn parse(q: &str) -> Result<Filter, String> {
        let mut f = Filter::default();
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let k = super::routes::percent_decode(k).unwrap_or_default();
            let v = super::routes::percent_decode(v).unwrap_or_default();
            let id = || v.parse::<u32>().map_err(|_| format!("{k} must be a number, not {v:?}."));
            match k.as_str() {
                "title" => f.title = Some(fold(&v)),
                "artist.id" => f.artist = Some(id()?),
                "album.id" => f.album = Some(id()?),
                "show.id" => f.show = Some(id()?),
                // Default order is by title; newest first is the other order built.
                "sort" => {
                    let field = v.split_once('.').filter(|(t, _)| !t.contains(':')).map_or(v.as_str(), |(_, f)| f);
                    match field.split_once(':').unwrap_or((field, "")) {
                        ("titleSort", "" | "asc") | ("", "") => {}
                        ("addedAt", "desc") => f.newest = true,
                        _ => return Err(format!("Hearth cannot filter or sort by {v:?}; it sorts by titleSort and addedAt:desc.")),
                    }
                }
                k if k.starts_with("X-Plex-") || Self::HARMLESS.contains(&k) => {}
                other => {
                    return Err(format!(
                        "Hearth cannot filter or sort by {other:?}; it filters by title, artist.id, album.id and show.id."
                    ));
                }
            }
        }
        Ok(f)
    }

    fn title_matches(&self, t: &str) -> bool {
        self.title.as_ref().is_none_or(|want| fold(t).contains(want.as_str()))
    }

    fn item(&self, i: &Item) -> bool {
        self.leaf(&i.title, i.episode, i.media)
    }

    /// An item by its title, place and media (what the catalog's walk shows of it).
    fn leaf(&self, title: &str, e: Option<crate::library::Episode>, media: Media) -> bool {
        self.title_matches(title)
            && self.artist.is_none_or(|a| e.is_some_and(|e| e.show == a && media == Media::Audio))
            && self.album.is_none_or(|a| e.is_some_and(|e| e.season == a && media == Media::Audio))
            && self.show.is_none_or(|s| e.is_some_and(|e| e.show == s && media == Media::Video))
    }

    fn group(&self, g: &Group) -> bool {
        let title = g.album.as_deref().unwrap_or(&g.show);
        self.title_matches(title)
            && self.artist.is_none_or(|a| g.album.is_some() && g.parent == a || g.is_top() && g.id == a)
            && self.album.is_none_or(|a| g.album.is_some() && g.id == a)
            && self.show.is_none_or(|s| g.season.is_some() && g.parent == s || g.is_top() && g.id == s)
    }
}

/// The `Meta` block of `includeMeta=1`: which types a section lists and the filter fields of each, as Plex
/// describes them (python-plexapi reads it before it filters, e.g. for an artist's albums).
fn meta(lib: &Library, active: u32) -> Node {
    let types: &[(u32, &str, &str, &[&str])] = match lib.kind {
        LibraryKind::Movies | LibraryKind::OtherVideos => &[(1, "movie", "Movies", &[])],
        LibraryKind::Shows => &[
            (2, "show", "Shows", &["show.id"]),
            (3, "season", "Seasons", &[]),
            (4, "episode", "Episodes", &[]),
        ],
        // Each type lists its own id field: python-plexapi finds `album.id` among the album type's fields, so
        // `searchTracks(filters={"album.id": ..})` and `artist.albums()` name the right field.
        LibraryKind::Music => &[
            (8, "artist", "Artists", &["artist.id"]),
            (9, "album", "Albums", &["album.id"]),
            (10, "track", "Tracks", &[]),
        ],
        LibraryKind::Photos => &[(14, "photoalbum", "Albums", &[]), (13, "photo", "Photos", &[])],
    };
    let mut m = Node::new("Meta", "Meta");
    for (ty, name, title, ids) in types {
        let mut t = Node::new("Type", "Type")
            .a("key", format!("/library/sections/{}/all?type={ty}", lib.id))
            .a("type", *name)
            .a("title", *title)
            .a("active", if *ty == active { "1" } else { "0" })
            .kid(Node::new("Field", "Field").a("key", "title").a("title", "Title").a("type", "string"));
        for id in *ids {
            t = t.kid(Node::new("Field", "Field").a("key", *id).a("title", *id).a("type", "integer"));
        }
        // The orders built: python-plexapi checks a sort against these before it asks.
        t = t.kid(Node::new("Sort", "Sort").a("key", "titleSort").a("title", "Title").a("defaultDirection", "asc"));
        if matches!(ty, 1 | 10 | 13) {
            t = t.kid(Node::new("Sort", "Sort").a("key", "addedAt").a("title", "Date Added").a("defaultDirection", "desc"));
        }
        m = m.kid(t);
    }
    m.kid(
        Node::new("FieldType", "FieldType")
            .a("type", "string")
            .kid(Node::new("Operator", "Operator").a("key", "=").a("title", "contains")),
    )
    .kid(
        Node::new("FieldType", "FieldType")
            .a("type", "integer")
            .kid(Node::new("Operator", "Operator").a("key", "=").a("title", "is")),
    )
}

/// `GET /library/sections/{id}/collections`: Hearth keeps no collections; an empty list (python-plexapi asks
/// before it filters).
pub async fn section_collections(call: Call) -> Response<Body> {
    let lib = match find_section(&call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let root = media_container()
        .a("size", 0u64)
        .a("totalSize", 0u64)
        .a("librarySectionID", lib.id as u64)
        .a("librarySectionTitle", lib.name.as_str());
    container(call.format, root)
}

/// `GET /library/sections/{id}/refresh`: queue a scan (Plex answers 200 with no body).
pub async fn section_refresh(call: Call) -> Response<Body> {
    let lib = match find_section(&call) {
        Ok(l) => l,
        Err(r) => return r,
    };
    if query(&call, "path").is_some() {
        tracing::debug!(
            library = lib.id,
            "partial refresh asked; scanning the whole library"
        );
    }
    call.ctx.library.refresh(lib.id);
    Response::builder()
        .status(StatusCode::OK)
        .body(super::empty())
        .expect("valid response")
}

/// `DELETE /library/sections/{id}/refresh`: cancelling a scan is not built.
pub async fn section_refresh_cancel(call: Call) -> Response<Body> {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "Hearth cannot cancel a scan; it finishes on its own.",
        call.format,
    )
}

fn part_ext(item: &Item) -> String {
    let name = item.file_name();
    match name.rsplit_once('.') {
        Some((_, e))
            if !e.is_empty() && e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            e.to_ascii_lowercase()
        }
        _ => item.container.to_string(),
    }
}

fn item_node(call: &Call, lib: &Library, i: &Item) -> Node {
    let (tag, json, ty) = match (i.media, i.episode.is_some()) {
        (Media::Video, true) => ("Video", "Metadata", "episode"),
        (Media::Video, false) if lib.kind == LibraryKind::OtherVideos => {
            ("Video", "Metadata", "movie")
        }
        (Media::Video, false) => ("Video", "Metadata", "movie"),
        (Media::Audio, _) => ("Track", "Metadata", "track"),
        (Media::Photo, _) => ("Photo", "Metadata", "photo"),
    };
    let mtime = i.mtime_secs().max(0) as u64;
    let part = Node::new("Part", "Part")
        .a("id", i.id as u64)
        .a(
            "key",
            format!("/library/parts/{}/{}/file.{}", i.id, mtime, part_ext(i)),
        )
        .a("file", i.path().to_string_lossy().into_owned())
        .a("size", i.size)
        .a("container", &*i.container)
        .opt("duration", i.duration_ms);
    let media = Node::new("Media", "Media")
        .a("id", i.id as u64)
        .a("container", &*i.container)
        .opt("duration", i.duration_ms)
        .opt("videoCodec", i.video_codec.as_deref())
        .opt("audioCodec", i.audio_codec.as_deref())
        .kid(part);
    let mut n = Node::new(tag, json)
        .a("ratingKey", i.id as u64)
        .a("key", format!("/library/metadata/{}", i.id))
        .a("guid", format!("local://{}", i.id))
        .a("type", ty)
        .a("title", &*i.title)
        .a("librarySectionID", lib.id as u64)
        .a("librarySectionTitle", lib.name.as_str())
        .a("librarySectionKey", format!("/library/sections/{}", lib.id))
        .opt("year", i.year.map(u64::from))
        .opt("duration", i.duration_ms)
        .a("addedAt", i.added as u64)
        .a("updatedAt", mtime)
        .opt("thumb", pictures::thumb_key(call, i.id));
    if let Some(e) = i.episode
        && i.media == Media::Audio
    {
        // A track: parent = album (parentIndex = disc), grandparent = artist.
        let album = call.ctx.library.group(e.season);
        n = n
            .a("index", e.episode_no as u64)
            .a("parentIndex", e.season_no as u64)
            .a("parentRatingKey", e.season as u64)
            .a("parentKey", format!("/library/metadata/{}", e.season))
            .a(
                "parentTitle",
                album.as_ref().and_then(|g| g.album.as_deref()).unwrap_or_default(),
            )
            .a("grandparentRatingKey", e.show as u64)
            .a("grandparentKey", format!("/library/metadata/{}", e.show))
            .a(
                "grandparentTitle",
                album.map(|g| g.show.to_string()).unwrap_or_default(),
            );
    } else if let Some(e) = i.episode
        && i.media == Media::Photo
    {
        let album = call.ctx.library.group(e.season);
        n = n
            .a("parentRatingKey", e.season as u64)
            .a("parentKey", format!("/library/metadata/{}", e.season))
            .a(
                "parentTitle",
                album.as_ref().and_then(|g| g.album.as_deref()).unwrap_or_default(),
            );
    } else if let Some(e) = i.episode {
        let show = call.ctx.library.group(e.show);
        n = n
            .a("index", e.episode_no as u64)
            .a("parentIndex", e.season_no as u64)
            .a("parentRatingKey", e.season as u64)
            .a("parentKey", format!("/library/metadata/{}", e.season))
            .a("parentTitle", format!("Season {}", e.season_no))
            .a("grandparentRatingKey", e.show as u64)
            .a("grandparentKey", format!("/library/metadata/{}", e.show))
            .a(
                "grandparentTitle",
                show.map(|g| g.show.to_string()).unwrap_or_default(),
            );
    }
    progress::with_viewing(call, i, n).kid(media)
}

fn group_node(call: &Call, lib: &Library, g: &Group) -> Node {
    let leaves = call.ctx.library.leaf_count(g.id) as u64;
    let n = Node::new("Directory", "Metadata")
        .a("ratingKey", g.id as u64)
        .a("key", format!("/library/metadata/{}/children", g.id))
        .a("guid", format!("local://{}", g.id))
        .a("librarySectionID", lib.id as u64)
        .a("librarySectionTitle", lib.name.as_str())
        .a("librarySectionKey", format!("/library/sections/{}", lib.id))
        .a("leafCount", leaves)
        .a("viewedLeafCount", progress::viewed_leaves(call, g.id))
        .opt("thumb", pictures::thumb_key(call, g.id));
    if let Some(title) = g.album.as_deref()
        && lib.kind == LibraryKind::Photos
    {
        // Plex's photo album: a Directory of type "photo".
        return n.a("type", "photo").a("title", title);
    }
    if let Some(title) = g.album.as_deref() {
        return n
            .a("type", "album")
            .a("title", title)
            .a("parentRatingKey", g.parent as u64)
            .a("parentKey", format!("/library/metadata/{}", g.parent))
            .a("parentTitle", &*g.show);
    }
    if lib.kind == LibraryKind::Music {
        return n
            .a("type", "artist")
            .a("title", &*g.show)
            .a("childCount", call.ctx.library.albums(lib.id, Some(g.id)).len() as u64);
    }
    match g.season {
        None => n
            .a("type", "show")
            .a("title", &*g.show)
            .a("childCount", call.ctx.library.seasons(g.id).len() as u64),
        Some(no) => n
            .a("type", "season")
            .a("title", format!("Season {no}"))
            .a("index", no as u64)
            .a("parentRatingKey", g.parent as u64)
            .a("parentKey", format!("/library/metadata/{}", g.parent))
            .a("parentTitle", &*g.show),
    }
}

/// What a metadata id names: a playable item (movie, episode, track, photo) or a group of them (show,
/// season, artist, album, photo album).
enum Found {
    Item(Item),
    Group(Group),
}

impl Found {
    fn library(&self) -> crate::state::LibraryId {
        match self {
            Found::Item(i) => i.library,
            Found::Group(g) => g.library,
        }
    }
}

/// An item or group by id, if visible: its library and what it is. Not found and not visible answer alike.
fn find_metadata(call: &Call) -> Result<(Library, Found), Response<Body>> {
    // The words the access rule answers for an item the caller may not see: the same for both.
    let nf = || error(StatusCode::NOT_FOUND, crate::auth::Denial::NoSuchItem.message(), call.format);
    let id = call.params.get("id").and_then(|v| v.parse::<u32>().ok()).ok_or_else(nf)?;
    let found = match call.ctx.library.item(id) {
        Some(i) => Found::Item(i),
        None => Found::Group(call.ctx.library.group(id).ok_or_else(nf)?),
    };
    let s = call.ctx.state.snapshot();
    let lib = s.libraries.iter().find(|l| l.id == found.library()).cloned().filter(|l| visible(call).allows(l.id));
    Ok((lib.ok_or_else(nf)?, found))
}

/// The prologue of the routes under a group (`children`, `allLeaves`): the group the id names, or 404 with
/// `not_a_group` when it names a playable item.
fn find_group(call: &Call, not_a_group: &str) -> Result<(Library, Group), Response<Body>> {
    match find_metadata(call)? {
        (lib, Found::Group(g)) => Ok((lib, g)),
        (_, Found::Item(_)) => Err(error(StatusCode::NOT_FOUND, not_a_group, call.format)),
    }
}

/// A MediaContainer of the page of `rows` under group `g` the client asked for (`X-Plex-Container-Start`/
/// `-Size`), titled as Plex titles them (`title2`: the album, for `children`). Nodes are made for the page only.
fn group_container(call: &Call, lib: &Library, g: &Group, title2: Option<&str>, view_group: &str, rows: Rows) -> Response<Body> {
    let (start, size) = match window(call) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let total = rows.len();
    let kids: Vec<Node> = match rows {
        Rows::Items(v) => v.iter().skip(start).take(size).map(|i| item_node(call, lib, i)).collect(),
        Rows::Ids(v) => v.iter().skip(start).take(size).filter_map(|id| Some(item_node(call, lib, &call.ctx.library.item(*id)?))).collect(),
        Rows::Groups(v) => v.iter().skip(start).take(size).map(|g| group_node(call, lib, g)).collect(),
    };
    let mut root = media_container()
        .a("size", kids.len() as u64)
        .a("totalSize", total as u64)
        .a("offset", start as u64)
        .a("librarySectionID", lib.id as u64)
        .a("key", g.id as u64)
        .a("title1", &*g.show)
        .opt("title2", title2)
        .a("viewGroup", view_group);
    for k in kids {
        root = root.kid(k);
    }
    container(call.format, root)
}

/// `GET /library/metadata/{id}`.
pub async fn metadata(call: Call) -> Response<Body> {
    let (lib, found) = match find_metadata(&call) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let node = match &found {
        Found::Item(i) => pictures::with_subtitles(item_node(&call, &lib, &pictures::learn(&call, i).await), &call, i).await,
        Found::Group(g) => group_node(&call, &lib, g),
    };
    let root = media_container()
        .a("size", 1u64)
        .a("librarySectionID", lib.id as u64)
        .a("librarySectionTitle", lib.name.as_str())
        .kid(node);
    container(call.format, root)
}

/// `GET /library/metadata/{id}/children`: a show's seasons, a season's episodes, an artist's albums, an
/// album's tracks.
pub async fn children(call: Call) -> Response<Body> {
    let (lib, g) = match find_group(&call, "That item has no children; only shows, seasons, artists and albums do.") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let artist = lib.kind == LibraryKind::Music && g.is_top();
    let library = &call.ctx.library;
    let rows = match g.season {
        None if artist => Rows::Groups(library.albums(lib.id, Some(g.id))),
        None if g.album.is_some() => {
            let mut v = library.episodes(g.id);
            if lib.kind == LibraryKind::Photos {
                v.sort_by(|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(a.id.cmp(&b.id)));
            }
            Rows::Items(v)
        }
        None => Rows::Groups(library.seasons(g.id)),
        Some(_) => Rows::Items(library.episodes(g.id)),
    };
    let view_group = match (artist, g.album.is_some(), g.season.is_none()) {
        (true, _, _) => "album",
        (_, true, _) if lib.kind == LibraryKind::Photos => "photo",
        (_, true, _) => "track",
        (_, _, true) => "season",
        _ => "episode",
    };
    group_container(&call, &lib, &g, g.album.as_deref(), view_group, rows)
}

/// `GET /library/metadata/{id}/allLeaves`: every episode of a show (or season), every track of an artist (or
/// album).
pub async fn all_leaves(call: Call) -> Response<Body> {
    let (lib, g) = match find_group(&call, "That item has no episodes or tracks; only shows, seasons, artists and albums do.") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows = Rows::Items(call.ctx.library.episodes(g.id));
    let view_group = if lib.kind == LibraryKind::Music { "track" } else { "episode" };
    group_container(&call, &lib, &g, None, view_group, rows)
}

/// `GET /library/parts/{id}/{ts}/{file}` on a hyper connection (TLS, or a plain connection hyper kept after a
/// chunked request): copied. On plain connections the fast path takes every other part request.
pub async fn part(call: Call) -> Response<Body> {
    use http_body_util::BodyExt;
    let h = call.req.headers();
    let get = |n: header::HeaderName| h.get(n).map(|v| v.as_bytes().to_vec());
    // RFC 9110 §14.2: a repeated Range is ignored, as on the fast path and DLNA (range::single).
    let ranges = h.get_all(header::RANGE).into_iter().map(|v| v.as_bytes());
    let (range, inm, ims, ir) = (
        crate::stream::range::single(ranges).map(<[u8]>::to_vec),
        get(header::IF_NONE_MATCH),
        get(header::IF_MODIFIED_SINCE),
        get(header::IF_RANGE),
    );
    let ask = crate::stream::Ask {
        item: call.params.get("id").and_then(|v| v.parse().ok()),
        head: call.req.method() == hyper::Method::HEAD,
        download: query(&call, "download").as_deref() == Some("1"),
        conditions: crate::stream::range::Conditions {
            if_none_match: inm.as_deref(),
            if_modified_since: ims.as_deref(),
            if_range: ir.as_deref(),
            range: range.as_deref(),
        },
        visible: visible(&call),
        peer: call.peer,
        lan: call.origin.lan,
    };
    let prepared = crate::stream::prepare(&call.ctx.library, &ask).await;
    call.ctx
        .streams
        .responses
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let prepared = match prepared {
        Ok(p) => p,
        Err(refused) => {
            let mut b = Response::builder().status(refused.status);
            for (n, v) in refused.fields() {
                b = b.header(n, v);
            }
            let body = if ask.head { super::empty() } else { full(refused.body()) };
            return b.body(body).expect("valid response");
        }
    };
    let mut b = Response::builder().status(prepared.status);
    for (n, v) in &prepared.headers {
        b = b.header(*n, v.as_str());
    }
    let body = super::empty();
    let Some((file, start, len)) = prepared.body else {
        return b.body(body).expect("valid response");
    };
    match crate::stream::FileBody::new(file, start, len, prepared.class, call.ctx.streams.clone())
        .await
    {
        Ok(fb) => {
            // A-F11: the copy ends once the caller no longer stands (device or token revoked, unshared).
            let library = ask.item.and_then(|id| call.ctx.library.item(id)).map_or(crate::state::LibraryId::MAX, |i| i.library);
            let standing = super::standing::standing(&call.caller, call.origin, &call.ctx.state.snapshot());
            b.body(fb.held(library, standing).boxed()).expect("valid response")
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("The file could not be read: {e}"),
            call.format,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::Episode;

    fn track(id: u32, title: &str, artist: u32, album: u32) -> Item {
        Item {
            id,
            library: 3,
            path: format!("/m/{id}.flac").into_bytes().into(),
            size: 1,
            mtime_ns: 0,
            media: Media::Audio,
            container: "flac".into(),
            title: title.into(),
            year: None,
            episode: Some(Episode { show: artist, season: album, season_no: 1, episode_no: 1 }),
            duration_ms: None,
            video_codec: None,
            audio_codec: None,
            added: 0,
        }
    }

    fn group(id: u32, name: &str, parent: u32, album: Option<&str>) -> Group {
        Group { id, library: 3, show: name.into(), season: None, parent, album: album.map(Into::into) }
    }

    #[test]
    fn filters_narrow_or_are_refused() {
        let f = |q: &str| Filter::parse(q);
        assert_eq!(f("type=9&includeGuids=1&X-Plex-Container-Start=0&sort=titleSort"), Ok(Filter::default()));
        assert_eq!(f("title=Star%20Man").unwrap().title.as_deref(), Some("star man"));
        assert_eq!(f("artist.id=5").unwrap().artist, Some(5));
        assert!(f("artist.id=five").unwrap_err().contains("must be a number"));
        // Filters and orders Hearth does not build are refused, never ignored.
        assert!(f("sort=movie.addedAt%3Adesc").unwrap().newest && f("sort=addedAt:desc").unwrap().newest);
        assert_eq!(f("sort=track.titleSort"), Ok(Filter::default()));
        for q in ["year=1994", "genre=rock", "sort=addedAt", "sort=year:desc", "title!=x", "unwatched=1"] {
            assert!(f(q).unwrap_err().contains("cannot filter"), "{q}");
        }

        let (artist, other) = (group(1, "Portishead", 1, None), group(4, "The Band", 4, None));
        let (dummy, live) = (group(2, "Portishead", 1, Some("Dummy")), group(5, "The Band", 4, Some("Live")));
        let songs = [track(10, "Wandering Star", 1, 2), track(11, "Opening", 4, 5)];
        // (query, groups kept, tracks kept)
        let table: &[(&str, &[u32], &[u32])] = &[
            ("", &[1, 2, 4, 5], &[10, 11]),
            ("title=STAR", &[], &[10]),
            ("title=live", &[5], &[]),
            ("artist.id=1", &[1, 2], &[10]),
            ("album.id=5", &[5], &[11]),
            ("artist.id=1&album.id=5", &[], &[]),
        ];
        for (q, groups, items) in table {
            let fl = f(q).unwrap();
            let g: Vec<u32> = [&artist, &dummy, &other, &live].iter().filter(|g| fl.group(g)).map(|g| g.id).collect();
            let i: Vec<u32> = songs.iter().filter(|i| fl.item(i)).map(|i| i.id).collect();
            assert_eq!((&g[..], &i[..]), (*groups, *items), "{q}");
        }
    }
}
