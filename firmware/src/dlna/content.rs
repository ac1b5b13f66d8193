//! ContentDirectory:1 and ConnectionManager:1 actions over a [`View`]: pure functions from an [`Action`] to a
//! response envelope or a [`Fault`]. DIDL-Lite per ContentDirectory:1 §2.8 and the DLNA guidelines.

use super::catalog::{Kind, protocol_info};
use super::soap::{Action, Fault, response};
use super::view::{Node, View};
use crate::library::art::{CoverInfo, Mime};
use crate::wire::xml_escape;
use std::cmp::Ordering;
use std::fmt::Write;

/// The ContentDirectory:1 service type, as actions and the description name it.
pub const CDS: &str = "urn:schemas-upnp-org:service:ContentDirectory:1";
/// The ConnectionManager:1 service type, as actions and the description name it.
pub const CMS: &str = "urn:schemas-upnp-org:service:ConnectionManager:1";

/// Most objects returned by one Browse or Search; clients page with StartingIndex (CDS:1 §2.7.4.2 allows
/// returning fewer than requested).
pub const MAX_RETURNED: usize = 2000;

/// What GetSearchCapabilities answers: the properties renderers are told they may search on.
pub const SEARCH_CAPS: &str = "dc:title,upnp:class";
/// What GetSortCapabilities answers: the properties SortCriteria may name.
pub const SORT_CAPS: &str = "dc:title,dc:date,upnp:originalTrackNumber";

/// Answer a ContentDirectory:1 action. `base` is `http://<address the client reached>:<port>`.
pub fn content_directory(a: &Action, view: &View, base: &str) -> Result<String, Fault> {
    let update = view.update_id.to_string();
    match a.name.as_str() {
        "GetSearchCapabilities" => Ok(response(CDS, &a.name, &[("SearchCaps", SEARCH_CAPS)])),
        "GetSortCapabilities" => Ok(response(CDS, &a.name, &[("SortCaps", SORT_CAPS)])),
        "GetSystemUpdateID" => Ok(response(CDS, &a.name, &[("Id", &update)])),
        "Browse" => {
            let id = a.arg("ObjectID").ok_or(Fault::InvalidArgs)?;
            let flag = a.arg("BrowseFlag").ok_or(Fault::InvalidArgs)?;
            let start = count_arg(a, "StartingIndex")?;
            let count = count_arg(a, "RequestedCount")?;
            let sort = parse_sort(a.arg("SortCriteria").unwrap_or(""))?;
            let node = view.get(id).ok_or(Fault::NoSuchObject)?;
            let (didl, returned, total) = match flag {
                "BrowseMetadata" => (didl(view, [node].into_iter(), base), 1, 1),
                "BrowseDirectChildren" => {
                    let mut all: Vec<&Node> = view.children(node).collect();
                    sort_nodes(&mut all, &sort);
                    page(view, all, start, count, base)
                }
                _ => return Err(Fault::InvalidArgs),
            };
            Ok(response(CDS, &a.name, &[
                ("Result", &didl),
                ("NumberReturned", &returned.to_string()),
                ("TotalMatches", &total.to_string()),
                ("UpdateID", &update),
            ]))
        }
        "Search" => {
            let id = a.arg("ContainerID").ok_or(Fault::InvalidArgs)?;
            let criteria = parse_criteria(a.arg("SearchCriteria").ok_or(Fault::InvalidArgs)?)?;
            let start = count_arg(a, "StartingIndex")?;
            let count = count_arg(a, "RequestedCount")?;
            let sort = parse_sort(a.arg("SortCriteria").unwrap_or(""))?;
            let node = view.get(id).ok_or(Fault::NoSuchObject)?;
            let mut all: Vec<&Node> = view.descendants(node).into_iter().filter(|n| criteria.matches(n)).collect();
            sort_nodes(&mut all, &sort);
            let (didl, returned, total) = page(view, all, start, count, base);
            Ok(response(CDS, &a.name, &[
                ("Result", &didl),
                ("NumberReturned", &returned.to_string()),
                ("TotalMatches", &total.to_string()),
                ("UpdateID", &update),
            ]))
        }
        // Samsung's extensions to ContentDirectory:1 (MiniDLNA upnpsoap.c `SamsungGetFeatureList` and
        // `SamsungSetBookmark`, Gerbera, UMS #1676): TVs call them on the standard service type.
        "X_GetFeatureList" => Ok(response(CDS, &a.name, &[("FeatureList", &feature_list())])),
        "X_SetBookmark" => set_bookmark(a, view).map(|()| response(CDS, &a.name, &[])),
        _ => Err(Fault::InvalidAction),
    }
}

/// Samsung's `samsung.com_BASICVIEW` feature list (the `FeatureList` of `X_GetFeatureList`, an XML document sent
/// as text): where the TV's video, audio and image views start. Every kind starts at the root, where each DLNA
/// library is a folder (Hearth's libraries are not split by medium the way MiniDLNA's top containers are).
pub fn feature_list() -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Features xmlns=\"urn:schemas-upnp-org:av:avs\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"urn:schemas-upnp-org:av:avs http://www.upnp.org/schemas/av/avs.xsd\">\
         <Feature name=\"samsung.com_BASICVIEW\" version=\"1\">",
    );
    for class in ["object.item.videoItem", "object.item.audioItem", "object.item.imageItem"] {
        let _ = write!(s, "<container id=\"{}\" type=\"{class}\"/>", super::view::ROOT);
    }
    s.push_str("</Feature></Features>");
    s
}

/// `X_SetBookmark(CategoryType, RID, ObjectID, PosSecond)`: a Samsung TV saves where playback stopped. Accepted
/// for an item the caller sees with a whole number of seconds (else 402/701, as for any action); nothing is
/// stored, because Hearth keeps no playback progress yet (the TV resumes from its own memory, or from the start).
fn set_bookmark(a: &Action, view: &View) -> Result<(), Fault> {
    let id = a.arg("ObjectID").ok_or(Fault::InvalidArgs)?;
    count_arg(a, "PosSecond")?;
    match view.get(id) {
        Some(n) if !n.is_container() => Ok(()),
        _ => Err(Fault::NoSuchObject),
    }
}

/// Answer a ConnectionManager:1 action. We only serve (Source); one implicit connection, id 0 (CM:1 §2.4).
pub fn connection_manager(a: &Action, view: &View) -> Result<String, Fault> {
    match a.name.as_str() {
        "GetProtocolInfo" => {
            let mut mimes: Vec<String> = view
                .nodes
                .iter()
                .filter_map(|n| n.item.as_ref())
                .map(|i| protocol_info(i.mime, i.resolution))
                .collect();
            for m in ["video/mp4", "video/x-matroska", "audio/mpeg", "audio/flac", "image/jpeg", "image/png"] {
                mimes.push(protocol_info(m, None));
            }
            mimes.sort();
            mimes.dedup();
            Ok(response(CMS, &a.name, &[("Source", &mimes.join(",")), ("Sink", "")]))
        }
        "GetCurrentConnectionIDs" => Ok(response(CMS, &a.name, &[("ConnectionIDs", "0")])),
        "GetCurrentConnectionInfo" => {
            let id = a.arg("ConnectionID").ok_or(Fault::InvalidArgs)?;
            if id.trim().parse::<i32>().map_err(|_| Fault::InvalidArgs)? != 0 {
                return Err(Fault::InvalidConnection);
            }
            Ok(response(CMS, &a.name, &[
                ("RcsID", "-1"),
                ("AVTransportID", "-1"),
                ("ProtocolInfo", ""),
                ("PeerConnectionManager", ""),
                ("PeerConnectionID", "-1"),
                ("Direction", "Output"),
                ("Status", "OK"),
            ]))
        }
        _ => Err(Fault::InvalidAction),
    }
}

/// ui4 arguments: digits only; negative or out of range is 402 (UDA 1.1 §3.2.2).
fn count_arg(a: &Action, name: &str) -> Result<usize, Fault> {
    let v = a.arg(name).ok_or(Fault::InvalidArgs)?.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Fault::InvalidArgs);
    }
    v.parse::<u32>().map(|n| n as usize).map_err(|_| Fault::InvalidArgs)
}

fn page(view: &View, all: Vec<&Node>, start: usize, count: usize, base: &str) -> (String, usize, usize) {
    let total = all.len();
    let want = if count == 0 { MAX_RETURNED } else { count.min(MAX_RETURNED) };
    let slice: Vec<&Node> = all.into_iter().skip(start).take(want).collect();
    let n = slice.len();
    (didl(view, slice.into_iter(), base), n, total)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Title,
    Date,
    Track,
}

/// `+dc:title,-dc:date` (CDS:1 §2.5.7). Empty: the default order.
fn parse_sort(s: &str) -> Result<Vec<(SortKey, bool)>, Fault> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (asc, prop) = match part.as_bytes()[0] {
            b'+' => (true, &part[1..]),
            b'-' => (false, &part[1..]),
            _ => return Err(Fault::BadSortCriteria),
        };
        let key = match prop {
            "dc:title" => SortKey::Title,
            "dc:date" => SortKey::Date,
            "upnp:originalTrackNumber" => SortKey::Track,
            _ => return Err(Fault::BadSortCriteria),
        };
        out.push((key, asc));
    }
    Ok(out)
}

fn sort_nodes(nodes: &mut [&Node], keys: &[(SortKey, bool)]) {
    if keys.is_empty() {
        return;
    }
    nodes.sort_by(|a, b| {
        for (k, asc) in keys {
            let o = match k {
                SortKey::Title => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
                SortKey::Date => date(a).cmp(&date(b)),
                SortKey::Track => track(a).cmp(&track(b)),
            };
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn date(n: &Node) -> u64 {
    n.item.as_ref().map(|i| i.modified).unwrap_or(0)
}

fn track(n: &Node) -> u32 {
    match n.item.as_ref().map(|i| &i.kind) {
        Some(Kind::Track { number: Some(t), .. }) => *t as u32,
        _ => u32::MAX,
    }
}

/// DIDL-Lite for these objects (CDS:1 §2.8; DLNA guidelines 7.3.x for res attributes).
pub fn didl<'a>(view: &View, nodes: impl Iterator<Item = &'a Node>, base: &str) -> String {
    let mut s = String::from(
        "<DIDL-Lite xmlns=\"urn:schemas-upnp-org:metadata-1-0/DIDL-Lite/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:upnp=\"urn:schemas-upnp-org:metadata-1-0/upnp/\" xmlns:dlna=\"urn:schemas-dlna-org:metadata-1-0/\" \
         xmlns:sec=\"http://www.sec.co.kr/\">",
    );
    for n in nodes {
        let id = xml_escape(&n.id);
        let parent = xml_escape(&n.parent);
        let title = xml_escape(&n.title);
        match &n.item {
            None => {
                let _ = write!(
                    s,
                    "<container id=\"{id}\" parentID=\"{parent}\" restricted=\"1\" searchable=\"1\" childCount=\"{}\">\
                     <dc:title>{title}</dc:title><upnp:class>{}</upnp:class>",
                    n.children.len(),
                    n.class
                );
                album_art(&mut s, view, n, base);
                s.push_str("</container>");
            }
            Some(i) => {
                let _ = write!(s, "<item id=\"{id}\" parentID=\"{parent}\" restricted=\"1\"><dc:title>{title}</dc:title>");
                let _ = write!(s, "<upnp:class>{}</upnp:class>", i.class());
                album_art(&mut s, view, n, base);
                if i.modified > 0 {
                    let _ = write!(s, "<dc:date>{}</dc:date>", iso_date(i.modified));
                }
                match &i.kind {
                    Kind::Track { artist, album, number } => {
                        let _ = write!(
                            s,
                            "<upnp:artist>{a}</upnp:artist><dc:creator>{a}</dc:creator><upnp:album>{}</upnp:album>",
                            xml_escape(album),
                            a = xml_escape(artist)
                        );
                        if let Some(t) = number {
                            let _ = write!(s, "<upnp:originalTrackNumber>{t}</upnp:originalTrackNumber>");
                        }
                    }
                    Kind::Episode { show, season, episode } => {
                        let _ = write!(
                            s,
                            "<upnp:seriesTitle>{}</upnp:seriesTitle><upnp:episodeSeason>{season}</upnp:episodeSeason>\
                             <upnp:episodeNumber>{episode}</upnp:episodeNumber>",
                            xml_escape(show)
                        );
                    }
                    _ => {}
                }
                let _ = write!(s, "<res protocolInfo=\"{}\" size=\"{}\"", xml_escape(&protocol_info(i.mime, i.resolution)), i.size);
                if let Some(d) = i.duration {
                    // CDS:1 Appendix B.2.1: H+:MM:SS[.F+].
                    let ms = d.as_millis();
                    let _ = write!(s, " duration=\"{}:{:02}:{:02}.{:03}\"", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
                }
                if let Some((w, h)) = i.resolution {
                    let _ = write!(s, " resolution=\"{w}x{h}\"");
                }
                let _ = write!(s, ">{}</res>", xml_escape(&res_url(base, i.id, i.extension())));
                captions(&mut s, view, i, base);
                s.push_str("</item>");
            }
        }
    }
    s.push_str("</DIDL-Lite>");
    s
}

/// `upnp:albumArtURI` of a node with art ([`View::art`]), its DLNA profile by the picture's size (DLNA guidelines
/// 7.3.61: the profile named in `dlna:profileID`).
fn album_art(s: &mut String, view: &View, n: &Node, base: &str) {
    if let Some((id, info)) = view.art(n) {
        let url = xml_escape(&art_url(base, id, info.mime));
        let _ = write!(s, "<upnp:albumArtURI dlna:profileID=\"{}\">{url}</upnp:albumArtURI>", art_profile(&info));
    }
}

/// A video's SRT sidecars: a `res` each (`text/srt`, what LG TVs read) and Samsung's `sec:CaptionInfoEx`.
fn captions(s: &mut String, view: &View, item: &super::catalog::Item, base: &str) {
    for sub in view.subtitles(item) {
        let url = xml_escape(&subtitle_url(base, item.id, sub.index));
        let _ = write!(s, "<res protocolInfo=\"http-get:*:text/srt:*\">{url}</res><sec:CaptionInfoEx sec:type=\"srt\">{url}</sec:CaptionInfoEx>");
    }
}

/// The DLNA media format profile of a cover (DLNA guidelines 7.1.3: JPEG_TN up to 160×160, JPEG_SM 640×480,
/// JPEG_MED 1024×768, JPEG_LRG 4096×4096; PNG_TN up to 160×160, PNG_LRG). Unknown sizes take the largest.
pub fn art_profile(info: &CoverInfo) -> &'static str {
    let fits = |w, h| info.size.is_some_and(|(x, y)| x <= w && y <= h);
    match info.mime {
        Mime::Png if fits(160, 160) => "PNG_TN",
        Mime::Png => "PNG_LRG",
        Mime::Jpeg if fits(160, 160) => "JPEG_TN",
        Mime::Jpeg if fits(640, 480) => "JPEG_SM",
        Mime::Jpeg if fits(1024, 768) => "JPEG_MED",
        Mime::Jpeg => "JPEG_LRG",
    }
}

/// Where the cover of item `id` is served: `<base>/art/<id as 16 hex digits>.jpg` (or `.png`).
pub fn art_url(base: &str, id: u64, mime: Mime) -> String {
    let ext = if mime == Mime::Png { "png" } else { "jpg" };
    format!("{base}/art/{id:016x}.{ext}")
}

/// Where sidecar `index` of video item `id` is served: `<base>/sub/<id as 16 hex digits>.<index>.srt`.
pub fn subtitle_url(base: &str, id: u64, index: u8) -> String {
    format!("{base}/sub/{id:016x}.{index}.srt")
}

/// The URL a renderer streams an item from: `<base>/res/<id as 16 hex digits>.<extension>` (the extension helps
/// renderers that go by it).
pub fn res_url(base: &str, id: u64, ext: &str) -> String {
    format!("{base}/res/{id:016x}.{ext}")
}

/// Unix seconds to `YYYY-MM-DD` (dc:date is ISO 8601).
fn iso_date(secs: u64) -> String {
    let (y, m, d) = crate::wire::calendar::civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A parsed SearchCriteria (CDS:1 §2.5.5), the subset renderers send.
#[derive(Debug, PartialEq, Eq)]
pub enum Criteria {
    All,
    Contains(Prop, String),
    Equals(Prop, String),
    DerivedFrom(String),
    Exists(Prop, bool),
    And(Box<Criteria>, Box<Criteria>),
    Or(Box<Criteria>, Box<Criteria>),
}

/// A property a search criterion tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prop {
    Title,
    Class,
    Artist,
    Album,
}

impl Criteria {
    /// Whether the node meets the criteria (string comparisons ignore case).
    pub fn matches(&self, n: &Node) -> bool {
        match self {
            Criteria::All => true,
            Criteria::Contains(p, v) => prop(n, *p).is_some_and(|x| x.to_lowercase().contains(&v.to_lowercase())),
            Criteria::Equals(p, v) => prop(n, *p).is_some_and(|x| x.eq_ignore_ascii_case(v)),
            Criteria::DerivedFrom(c) => n.class == c || n.class.strip_prefix(c.as_str()).is_some_and(|r| r.starts_with('.')),
            Criteria::Exists(p, want) => prop(n, *p).is_some() == *want,
            Criteria::And(a, b) => a.matches(n) && b.matches(n),
            Criteria::Or(a, b) => a.matches(n) || b.matches(n),
        }
    }
}

fn prop(n: &Node, p: Prop) -> Option<&str> {
    match (p, n.item.as_ref().map(|i| &i.kind)) {
        (Prop::Title, _) => Some(&n.title),
        (Prop::Class, _) => Some(n.class),
        (Prop::Artist, Some(Kind::Track { artist, .. })) => Some(artist),
        (Prop::Album, Some(Kind::Track { album, .. })) => Some(album),
        _ => None,
    }
}

/// Parse SearchCriteria; anything outside the subset is 708.
pub fn parse_criteria(s: &str) -> Result<Criteria, Fault> {
    if s.len() > 1024 {
        return Err(Fault::BadSearchCriteria);
    }
    let tokens = tokenize(s).ok_or(Fault::BadSearchCriteria)?;
    if tokens.len() == 1 && tokens[0] == Token::Word("*".into()) {
        return Ok(Criteria::All);
    }
    let mut p = Parser { t: &tokens, i: 0, depth: 0 };
    let c = p.or().ok_or(Fault::BadSearchCriteria)?;
    if p.i != tokens.len() {
        return Err(Fault::BadSearchCriteria);
    }
    Ok(c)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokenize(s: &str) -> Option<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next()? {
                        '\\' => v.push(chars.next()?),
                        '"' => break,
                        c => v.push(c),
                    }
                }
                out.push(Token::Quoted(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
        if out.len() > 256 {
            return None;
        }
    }
    Some(out)
}

struct Parser<'a> {
    t: &'a [Token],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn word(&mut self, w: &str) -> bool {
        if matches!(self.t.get(self.i), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Option<Criteria> {
        let mut left = self.and()?;
        while self.word("or") {
            left = Criteria::Or(Box::new(left), Box::new(self.and()?));
        }
        Some(left)
    }

    fn and(&mut self) -> Option<Criteria> {
        let mut left = self.atom()?;
        while self.word("and") {
            left = Criteria::And(Box::new(left), Box::new(self.atom()?));
        }
        Some(left)
    }

    fn atom(&mut self) -> Option<Criteria> {
        if self.t.get(self.i) == Some(&Token::Open) {
            self.depth += 1;
            if self.depth > 16 {
                return None;
            }
            self.i += 1;
            let c = self.or()?;
            if self.t.get(self.i) != Some(&Token::Close) {
                return None;
            }
            self.i += 1;
            self.depth -= 1;
            return Some(c);
        }
        let Some(Token::Word(p)) = self.t.get(self.i) else { return None };
        let prop = match p.as_str() {
            "dc:title" => Prop::Title,
            "upnp:class" => Prop::Class,
            "upnp:artist" | "dc:creator" => Prop::Artist,
            "upnp:album" => Prop::Album,
            _ => return None,
        };
        let Some(Token::Word(op)) = self.t.get(self.i + 1) else { return None };
        let op = op.to_ascii_lowercase();
        if op == "exists" {
            let Some(Token::Word(b)) = self.t.get(self.i + 2) else { return None };
            self.i += 3;
            return Some(Criteria::Exists(prop, b.eq_ignore_ascii_case("true")));
        }
        let Some(Token::Quoted(v)) = self.t.get(self.i + 2) else { return None };
        self.i += 3;
        match op.as_str() {
            "contains" => Some(Criteria::Contains(prop, v.clone())),
            "=" => Some(Criteria::Equals(prop, v.clone())),
            "derivedfrom" if prop == Prop::Class => Some(Criteria::DerivedFrom(v.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlna::catalog::{Catalog, Item};
    use crate::state::{Library, LibraryKind};
    use std::path::PathBuf;

    struct Fixed(Vec<Item>);
    impl Catalog for Fixed {
        fn generation(&self) -> u64 {
            1
        }
        fn items(&self, library: u8) -> Vec<Item> {
            self.0.iter().filter(|i| i.library == library).cloned().collect()
        }
    }

    fn item(id: u64, library: u8, title: &str, kind: Kind, folder: &str, mime: &'static str) -> Item {
        Item {
            id,
            library,
            path: PathBuf::from(format!("/m/{id}.bin")),
            folder: folder.into(),
            title: title.into(),
            kind,
            size: 1000 + id,
            modified: 1_700_000_000 + id,
            mime,
            duration: Some(std::time::Duration::from_millis(3_723_456)),
            resolution: None,
        }
    }

    fn view() -> View {
        let ep = |s, e| Kind::Episode { show: "Lost".into(), season: s, episode: e };
        let tr = |n| Kind::Track { artist: "Nina".into(), album: "Pastel".into(), number: Some(n) };
        let items = vec![
            item(1, 1, "Alien", Kind::Movie, "", "video/mp4"),
            item(2, 1, "Brazil", Kind::Movie, "", "video/x-matroska"),
            item(3, 2, "Pilot 2", ep(1, 2), "", "video/mp4"),
            item(4, 2, "Pilot", ep(1, 1), "", "video/mp4"),
            item(5, 2, "Again", ep(2, 1), "", "video/mp4"),
            item(6, 3, "Two", tr(2), "", "audio/mpeg"),
            item(7, 3, "One", tr(1), "", "audio/mpeg"),
            item(8, 4, "Beach", Kind::Photo, "2024/Summer", "image/jpeg"),
        ];
        let libs = [
            Library { id: 1, kind: LibraryKind::Movies, name: "Films".try_into().unwrap() },
            Library { id: 2, kind: LibraryKind::Shows, name: "TV".try_into().unwrap() },
            Library { id: 3, kind: LibraryKind::Music, name: "Music".try_into().unwrap() },
            Library { id: 4, kind: LibraryKind::Photos, name: "Photos".try_into().unwrap() },
        ];
        View::build(&libs, &Fixed(items), 42)
    }

    fn action(name: &str, args: &[(&str, &str)]) -> Action {
        Action { service: CDS.into(), name: name.into(), args: args.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect() }
    }

    fn browse(v: &View, id: &str, flag: &str, start: &str, count: &str, sort: &str) -> Result<String, Fault> {
        let a = action("Browse", &[
            ("ObjectID", id),
            ("BrowseFlag", flag),
            ("Filter", "*"),
            ("StartingIndex", start),
            ("RequestedCount", count),
            ("SortCriteria", sort),
        ]);
        content_directory(&a, v, "http://10.0.0.1:32469")
    }

    /// The DIDL inside a response, unescaped once (it travels as text).
    fn didl_of(r: &str) -> String {
        let s = r.split("<Result>").nth(1).unwrap().split("</Result>").next().unwrap();
        s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
    }

    fn ids(didl: &str) -> Vec<String> {
        didl.split(" id=\"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
    }

    #[test]
    fn hierarchy_libraries_shows_seasons_episodes() {
        let v = view();
        let root = browse(&v, "0", "BrowseDirectChildren", "0", "0", "").unwrap();
        assert!(root.contains("<TotalMatches>4</TotalMatches>") && root.contains("<UpdateID>42</UpdateID>"));
        assert_eq!(ids(&didl_of(&root)), ["L1", "L2", "L3", "L4"]);
        let tv = didl_of(&browse(&v, "L2", "BrowseDirectChildren", "0", "0", "").unwrap());
        let show = &ids(&tv)[0];
        assert!(tv.contains("<dc:title>Lost</dc:title>") && tv.contains("childCount=\"2\""));
        let seasons = didl_of(&browse(&v, show, "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(seasons.find("Season 1").unwrap() < seasons.find("Season 2").unwrap());
        let s1 = &ids(&seasons)[0];
        let eps = didl_of(&browse(&v, s1, "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(eps.find(">Pilot<").unwrap() < eps.find(">Pilot 2<").unwrap(), "episodes in episode order");
        assert!(eps.contains("<upnp:episodeNumber>1</upnp:episodeNumber>"));
        assert!(eps.contains("duration=\"1:02:03.456\"") && eps.contains("size=\"1004\""));
        assert!(eps.contains(">http://10.0.0.1:32469/res/0000000000000004.bin</res>"));
        assert!(eps.contains("DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS=01700000000000000000000000000000"));
    }

    #[test]
    fn music_artists_albums_tracks_and_photo_folders() {
        let v = view();
        let artists = didl_of(&browse(&v, "L3", "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(artists.contains("object.container.person.musicArtist"));
        let albums = didl_of(&browse(&v, &ids(&artists)[0], "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(albums.contains("object.container.album.musicAlbum"));
        let tracks = didl_of(&browse(&v, &ids(&albums)[0], "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(tracks.find(">One<").unwrap() < tracks.find(">Two<").unwrap());
        assert!(tracks.contains("DLNA.ORG_PN=MP3;") && tracks.contains("<upnp:artist>Nina</upnp:artist>"));
        let y = didl_of(&browse(&v, "L4", "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(y.contains("<dc:title>2024</dc:title>"));
        let summer = didl_of(&browse(&v, &ids(&y)[0], "BrowseDirectChildren", "0", "0", "").unwrap());
        let beach = didl_of(&browse(&v, &ids(&summer)[0], "BrowseDirectChildren", "0", "0", "").unwrap());
        assert!(beach.contains("DLNA.ORG_PN=JPEG_LRG") && beach.contains("DLNA.ORG_FLAGS=00F0"));
    }

    #[test]
    fn metadata_paging_and_sorting() {
        let v = view();
        let m = browse(&v, "i0000000000000001", "BrowseMetadata", "0", "0", "").unwrap();
        assert!(m.contains("<NumberReturned>1</NumberReturned>") && didl_of(&m).contains("parentID=\"L1\""));
        let page = browse(&v, "L1", "BrowseDirectChildren", "1", "1", "").unwrap();
        assert!(page.contains("<NumberReturned>1</NumberReturned><TotalMatches>2</TotalMatches>"));
        assert!(didl_of(&page).contains(">Brazil<"));
        let past = browse(&v, "L1", "BrowseDirectChildren", "50", "10", "").unwrap();
        assert!(past.contains("<NumberReturned>0</NumberReturned><TotalMatches>2</TotalMatches>"));
        let desc = didl_of(&browse(&v, "L1", "BrowseDirectChildren", "0", "0", "-dc:title").unwrap());
        assert!(desc.find(">Brazil<").unwrap() < desc.find(">Alien<").unwrap());
        let huge = browse(&v, "L1", "BrowseDirectChildren", "0", "4294967295", "").unwrap();
        assert!(huge.contains("<NumberReturned>2</NumberReturned>"));
    }

    /// A catalog with covers and sidecars: item 1 (a film) has two SRT sidecars and a WebVTT one; tracks 6 and 7
    /// have an embedded 150×150 JPEG; photo 8 is its own picture (no EXIF thumbnail).
    struct Dressed(Fixed);
    impl Catalog for Dressed {
        fn generation(&self) -> u64 {
            1
        }
        fn items(&self, library: u8) -> Vec<Item> {
            self.0.items(library)
        }
        fn cover_info(&self, id: u64) -> Option<CoverInfo> {
            use crate::library::art::Origin;
            match id {
                6 | 7 => Some(CoverInfo { mime: Mime::Jpeg, size: Some((150, 150)), origin: Origin::Embedded }),
                2 => Some(CoverInfo { mime: Mime::Png, size: Some((1000, 1500)), origin: Origin::File }),
                8 => Some(CoverInfo { mime: Mime::Jpeg, size: Some((4000, 3000)), origin: Origin::Photo }),
                _ => None,
            }
        }
        fn subtitles(&self, id: u64) -> Vec<crate::library::sidecar::Subtitle> {
            use crate::library::sidecar::{Format, Subtitle};
            let sub = |index: u8, format| Subtitle { index, stream: 0, path: PathBuf::new(), format, language: None, forced: false };
            if id == 1 { vec![sub(0, Format::Srt), sub(1, Format::Vtt), sub(2, Format::Srt)] } else { Vec::new() }
        }
    }

    fn dressed() -> View {
        let plain = view();
        let items: Vec<Item> = plain.nodes.iter().filter_map(|n| n.item.clone()).collect();
        let libs = [
            Library { id: 1, kind: LibraryKind::Movies, name: "Films".try_into().unwrap() },
            Library { id: 3, kind: LibraryKind::Music, name: "Music".try_into().unwrap() },
            Library { id: 4, kind: LibraryKind::Photos, name: "Photos".try_into().unwrap() },
        ];
        let catalog = std::sync::Arc::new(Dressed(Fixed(items)));
        View::build(&libs, &*catalog, 1).with_source(catalog)
    }

    /// Artwork in DIDL: a track's embedded cover as `upnp:albumArtURI` with the profile its size gives
    /// (JPEG_TN up to 160×160), its album and artist containers showing it too, a film's poster file with its
    /// PNG profile; a photo that is its own picture (no thumbnail), the root and the libraries get none.
    #[test]
    fn album_art_in_didl() {
        let v = dressed();
        let art = |id: u64| format!("<upnp:albumArtURI dlna:profileID=\"JPEG_TN\">http://h:1/art/{id:016x}.jpg</upnp:albumArtURI>");
        let browse_h = |id: &str| didl_of(&content_directory(&action("Browse", &[
            ("ObjectID", id), ("BrowseFlag", "BrowseDirectChildren"), ("Filter", "*"), ("StartingIndex", "0"), ("RequestedCount", "0"), ("SortCriteria", ""),
        ]), &v, "http://h:1").unwrap());
        let root = browse_h("0");
        assert!(!root.contains("albumArtURI"), "libraries have no art of their own: {root}");
        let artists = browse_h("L3");
        assert!(artists.contains(&art(7)), "an artist shows its first album's cover: {artists}");
        let albums = browse_h(&ids(&artists)[0]);
        assert!(albums.contains(&art(7)), "{albums}");
        let tracks = browse_h(&ids(&albums)[0]);
        assert!(tracks.contains(&art(7)) && tracks.contains(&art(6)), "{tracks}");
        assert!(tracks.contains("xmlns:dlna=\"urn:schemas-dlna-org:metadata-1-0/\""));
        let films = browse_h("L1");
        assert!(films.contains("<upnp:albumArtURI dlna:profileID=\"PNG_LRG\">http://h:1/art/0000000000000002.png</upnp:albumArtURI>"), "{films}");
        let photos = browse_h(&ids(&browse_h(&ids(&browse_h("L4"))[0]))[0]);
        assert!(photos.contains(">Beach<") && !photos.contains("albumArtURI"), "a photo is not its own thumbnail: {photos}");
    }

    /// Sidecar subtitles in DIDL: each SRT sidecar of a video as a `text/srt` res (LG) and a
    /// `sec:CaptionInfoEx` (Samsung), after the media's own res; WebVTT sidecars are not offered to TVs.
    #[test]
    fn subtitles_in_didl() {
        let v = dressed();
        let m = didl_of(&content_directory(&action("Browse", &[
            ("ObjectID", "i0000000000000001"), ("BrowseFlag", "BrowseMetadata"), ("Filter", "*"), ("StartingIndex", "0"), ("RequestedCount", "0"), ("SortCriteria", ""),
        ]), &v, "http://h:1").unwrap());
        for i in [0, 2] {
            let url = format!("http://h:1/sub/0000000000000001.{i}.srt");
            assert!(m.contains(&format!("<res protocolInfo=\"http-get:*:text/srt:*\">{url}</res>")), "{m}");
            assert!(m.contains(&format!("<sec:CaptionInfoEx sec:type=\"srt\">{url}</sec:CaptionInfoEx>")), "{m}");
        }
        assert!(!m.contains(".1.srt"), "the WebVTT sidecar is not listed: {m}");
        assert!(m.find("/res/0000000000000001").unwrap() < m.find("text/srt").unwrap(), "the media's res comes first: {m}");
        assert!(m.contains("xmlns:sec=\"http://www.sec.co.kr/\""));
        let mut r = quick_xml::Reader::from_str(&m);
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("the DIDL is not well-formed XML: {e}: {m}"),
            }
        }
    }

    /// TVs sort by title and date: GetSortCapabilities names both, and Browse honours `+dc:title` and `-dc:date`
    /// (Alien is older than Brazil in the fixture).
    #[test]
    fn sort_by_title_and_date() {
        let v = view();
        let caps = content_directory(&action("GetSortCapabilities", &[]), &v, "").unwrap();
        assert!(caps.contains("<SortCaps>dc:title,dc:date"), "{caps}");
        let order = |sort: &str| ids(&didl_of(&browse(&v, "L1", "BrowseDirectChildren", "0", "0", sort).unwrap()));
        assert_eq!(order("+dc:title"), ["i0000000000000001", "i0000000000000002"]);
        assert_eq!(order("-dc:date"), ["i0000000000000002", "i0000000000000001"]);
        assert_eq!(order("+dc:date"), ["i0000000000000001", "i0000000000000002"]);
    }

    /// Samsung's X_GetFeatureList: the BASICVIEW feature list as the FeatureList argument (an XML document as
    /// text), with video, audio and image views at a container that exists.
    #[test]
    fn samsung_feature_list() {
        let v = view();
        let r = content_directory(&action("X_GetFeatureList", &[]), &v, "").unwrap();
        assert!(r.contains("<u:X_GetFeatureListResponse xmlns:u=\"urn:schemas-upnp-org:service:ContentDirectory:1\">"), "{r}");
        let list = r.split("<FeatureList>").nth(1).unwrap().split("</FeatureList>").next().unwrap();
        let list = list.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
        assert!(list.contains("<Features xmlns=\"urn:schemas-upnp-org:av:avs\"") && list.contains("<Feature name=\"samsung.com_BASICVIEW\" version=\"1\">"), "{list}");
        for class in ["object.item.videoItem", "object.item.audioItem", "object.item.imageItem"] {
            let id = list.split(&format!("type=\"{class}\"")).next().unwrap().rsplit("id=\"").next().unwrap().split('"').next().unwrap();
            assert!(v.get(id).is_some_and(|n| n.is_container()), "{class} starts at container {id:?}, which exists");
        }
        assert!(quick_xml::Reader::from_str(&list).read_event().is_ok());
    }

    /// Samsung's X_SetBookmark is accepted for an item (nothing stored: no progress store yet); a container, an
    /// unknown object or a position that is not a whole number of seconds is refused as any action would be.
    #[test]
    fn samsung_set_bookmark() {
        let v = view();
        let mark = |id: &str, pos: &str| {
            let a = action("X_SetBookmark", &[("CategoryType", "1"), ("RID", "0"), ("ObjectID", id), ("PosSecond", pos)]);
            content_directory(&a, &v, "")
        };
        let ok = mark("i0000000000000001", "754").unwrap();
        assert!(ok.contains("<u:X_SetBookmarkResponse xmlns:u=\"urn:schemas-upnp-org:service:ContentDirectory:1\"></u:X_SetBookmarkResponse>"), "{ok}");
        assert_eq!(mark("i00000000000000ff", "1"), Err(Fault::NoSuchObject));
        assert_eq!(mark("L1", "1"), Err(Fault::NoSuchObject));
        assert_eq!(mark("i0000000000000001", "-3"), Err(Fault::InvalidArgs));
        assert_eq!(content_directory(&action("X_SetBookmark", &[("PosSecond", "1")]), &v, ""), Err(Fault::InvalidArgs));
    }

    #[test]
    fn bad_arguments_are_the_right_faults() {
        let v = view();
        assert_eq!(browse(&v, "nope", "BrowseDirectChildren", "0", "0", ""), Err(Fault::NoSuchObject));
        assert_eq!(browse(&v, "0", "BrowseEverything", "0", "0", ""), Err(Fault::InvalidArgs));
        assert_eq!(browse(&v, "0", "BrowseDirectChildren", "-1", "0", ""), Err(Fault::InvalidArgs));
        assert_eq!(browse(&v, "0", "BrowseDirectChildren", "0", "-5", ""), Err(Fault::InvalidArgs));
        assert_eq!(browse(&v, "0", "BrowseDirectChildren", "0", "99999999999999", ""), Err(Fault::InvalidArgs));
        assert_eq!(browse(&v, "0", "BrowseDirectChildren", "0", "0", "+upnp:nonsense"), Err(Fault::BadSortCriteria));
        assert_eq!(content_directory(&action("Browse", &[("ObjectID", "0")]), &v, ""), Err(Fault::InvalidArgs));
        assert_eq!(content_directory(&action("DestroyObject", &[]), &v, ""), Err(Fault::InvalidAction));
    }

    #[test]
    fn search_title_and_class() {
        let v = view();
        let s = |c: &str| {
            content_directory(
                &action("Search", &[
                    ("ContainerID", "0"),
                    ("SearchCriteria", c),
                    ("Filter", "*"),
                    ("StartingIndex", "0"),
                    ("RequestedCount", "0"),
                    ("SortCriteria", "+dc:title"),
                ]),
                &v,
                "http://h",
            )
        };
        let r = s("(upnp:class derivedfrom \"object.item.videoItem\" and dc:title contains \"pilot\")").unwrap();
        assert!(r.contains("<TotalMatches>2</TotalMatches>"), "{r}");
        let r = s("upnp:class derivedfrom \"object.item.audioItem\"").unwrap();
        assert!(r.contains("<TotalMatches>2</TotalMatches>"));
        let r = s("upnp:class = \"object.container.album.musicAlbum\" or dc:title = \"alien\"").unwrap();
        assert!(r.contains("<TotalMatches>2</TotalMatches>"));
        assert!(s("*").unwrap().contains("<TotalMatches>"));
        for bad in ["dc:title", "dc:title contains", "foo:bar = \"x\"", "(dc:title contains \"a\"", "dc:title contains \"unterminated"] {
            assert_eq!(s(bad), Err(Fault::BadSearchCriteria), "{bad}");
        }
        assert_eq!(parse_criteria(&"(".repeat(100)), Err(Fault::BadSearchCriteria));
    }

    #[test]
    fn connection_manager_actions() {
        let v = view();
        let a = |n: &str, args: &[(&str, &str)]| Action { service: CMS.into(), name: n.into(), args: args.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect() };
        let p = connection_manager(&a("GetProtocolInfo", &[]), &v).unwrap();
        assert!(p.contains("http-get:*:audio/mpeg:DLNA.ORG_PN=MP3;DLNA.ORG_OP=01"));
        assert!(connection_manager(&a("GetCurrentConnectionIDs", &[]), &v).unwrap().contains("<ConnectionIDs>0</ConnectionIDs>"));
        assert!(connection_manager(&a("GetCurrentConnectionInfo", &[("ConnectionID", "0")]), &v).unwrap().contains("<Direction>Output</Direction>"));
        assert_eq!(connection_manager(&a("GetCurrentConnectionInfo", &[("ConnectionID", "7")]), &v), Err(Fault::InvalidConnection));
        assert_eq!(connection_manager(&a("GetCurrentConnectionInfo", &[("ConnectionID", "x")]), &v), Err(Fault::InvalidArgs));
    }

    #[test]
    fn dates_are_iso() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(1_709_208_000), "2024-02-29");
    }
}
