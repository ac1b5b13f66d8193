//! How the catalog holds its items in memory: one fixed-size [`Record`] per item in a `Vec` sorted by id (found
//! by binary search), and all of their text in one arena. A record's file name and title sit side by side in
//! the arena; the folder part of the path is stored once per folder; container and codec names are interned.
//! About 72 bytes of record plus the name and title bytes per item, instead of an owned [`Item`] with five
//! heap strings in a map node.
//!
//! Records are rebuilt, never edited: a scan's result goes into a fresh set of shelves (the other libraries'
//! records copied across), so the arena never holds text of items that are gone.

use super::kind::Media;
use super::{Episode, Group, Item, ItemId};
use crate::state::LibraryId;
use serde::Serialize;
use std::collections::HashMap;

/// Sentinel for "no folder" (a path without a `/`, which the scanner never makes) and "no duration".
const NONE32: u32 = u32::MAX;
const NO_DURATION: u64 = u64::MAX;

/// One item, fixed size. Text is in [`Shelves::text`] at `text`: the file name (`name_len` bytes) then the
/// title (`title_len` bytes).
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    /// The item's id (the records are sorted by it).
    pub id: ItemId,
    folder: u32,
    text: u32,
    name_len: u16,
    title_len: u16,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    duration_ms: u64,
    added: u32,
    /// Show and season group ids; 0 when the item is not an episode (ids start at 1).
    show: ItemId,
    season: ItemId,
    season_no: u16,
    episode_no: u16,
    /// 0 = no year.
    year: u16,
    /// Indexes into [`Shelves::words`] plus one; 0 = none.
    container: u16,
    video_codec: u16,
    audio_codec: u16,
    /// The library the item's folder belongs to.
    pub library: LibraryId,
    /// Video, audio or photo.
    pub media: Media,
}

impl Record {
    /// Unix seconds when the item was first seen.
    pub fn added(&self) -> u32 {
        self.added
    }

    /// The item's place in its show, artist or album, if it has one (see [`Item::episode`]).
    pub fn episode(&self) -> Option<Episode> {
        (self.show != 0).then_some(Episode {
            show: self.show,
            season: self.season,
            season_no: self.season_no,
            episode_no: self.episode_no,
        })
    }
}

/// The catalog in compact form: fixed-size records sorted by id with their text in one buffer and folder paths and
/// codec names stored once, so a large library takes little memory; [`Shelves::view`] gives owned [`Item`]s.
#[derive(Default)]
pub(super) struct Shelves {
    /// Sorted by id.
    items: Vec<Record>,
    /// Sorted by id.
    pub groups: Vec<Group>,
    text: Vec<u8>,
    /// Folder paths (the part of an item's path before its last `/`), as (start, len) in `text`.
    folders: Vec<(u32, u32)>,
    folder_index: HashMap<Box<[u8]>, u32>,
    /// Container and codec names.
    words: Vec<Box<str>>,
    /// The next id [`Shelves::allocate`] hands out.
    pub next_id: u32,
    /// Positions in `items` in title order (case-insensitive, then id), made by [`Shelves::finish`]: a page of
    /// a 10,000-item listing needs no sort per request.
    by_title: Vec<u32>,
    /// Positions in `items`, newest `added` first (then the higher id), made by [`Shelves::finish`].
    by_added: Vec<u32>,
}

impl Shelves {
    /// Shelves holding `items` (any order) and `groups`.
    pub fn from_items(items: Vec<Item>, groups: Vec<Group>, next_id: u32) -> Shelves {
        let mut sh = Shelves {
            next_id,
            ..Shelves::default()
        };
        sh.items.reserve_exact(items.len());
        for i in &items {
            sh.push(i);
        }
        drop(items);
        sh.groups = groups;
        sh.finish();
        sh
    }

    /// Empty shelves with the same id counter, holding copies of the records `keep` selects.
    pub fn carry(&self, keep: impl Fn(&Record) -> bool) -> Shelves {
        let mut next = Shelves {
            next_id: self.next_id,
            ..Shelves::default()
        };
        for r in self.items.iter().filter(|r| keep(r)) {
            next.push(&self.view(r));
        }
        next.groups = self.groups.clone();
        next
    }

    /// Sort, drop the folder lookup and spare capacity: call after the last [`Shelves::push`].
    pub fn finish(&mut self) {
        self.items.sort_unstable_by_key(|r| r.id);
        self.groups.sort_unstable_by_key(|g| g.id);
        let mut by_title: Vec<u32> = (0..self.items.len() as u32).collect();
        // Items are sorted by id, so a stable sort by the title keeps ids in order among equal titles.
        by_title.sort_by_cached_key(|at| self.title(&self.items[*at as usize]).to_lowercase());
        let mut by_added: Vec<u32> = (0..self.items.len() as u32).collect();
        by_added.sort_by_key(|at| std::cmp::Reverse((self.items[*at as usize].added, self.items[*at as usize].id)));
        self.by_title = by_title;
        self.by_added = by_added;
        self.folder_index = HashMap::new();
        self.items.shrink_to_fit();
        self.groups.shrink_to_fit();
        self.text.shrink_to_fit();
        self.folders.shrink_to_fit();
        self.words.shrink_to_fit();
    }

    /// Add an item, its folder path and codec names stored once; call [`Shelves::finish`] after the last one (it
    /// sorts by id).
    pub fn push(&mut self, i: &Item) {
        let (folder, name) = match i.path.iter().rposition(|b| *b == b'/') {
            Some(slash) => (self.folder(&i.path[..slash]), &i.path[slash + 1..]),
            None => (NONE32, &i.path[..]),
        };
        let text = self.text.len() as u32;
        let name_len = name.len().min(u16::MAX as usize);
        let title_len = floor_char_boundary(&i.title, u16::MAX as usize);
        self.text.extend_from_slice(&name[..name_len]);
        self.text.extend_from_slice(&i.title.as_bytes()[..title_len]);
        let e = i.episode;
        let record = Record {
            id: i.id,
            folder,
            text,
            name_len: name_len as u16,
            title_len: title_len as u16,
            size: i.size,
            mtime_ns: i.mtime_ns,
            duration_ms: i.duration_ms.unwrap_or(NO_DURATION),
            added: i.added,
            show: e.map_or(0, |e| e.show),
            season: e.map_or(0, |e| e.season),
            season_no: e.map_or(0, |e| e.season_no),
            episode_no: e.map_or(0, |e| e.episode_no),
            year: i.year.unwrap_or(0),
            container: self.word(Some(&i.container)),
            video_codec: self.word(i.video_codec.as_deref()),
            audio_codec: self.word(i.audio_codec.as_deref()),
            library: i.library,
            media: i.media,
        };
        self.items.push(record);
    }

    fn folder(&mut self, path: &[u8]) -> u32 {
        if let Some(f) = self.folder_index.get(path) {
            return *f;
        }
        let f = self.folders.len() as u32;
        self.folders.push((self.text.len() as u32, path.len() as u32));
        self.text.extend_from_slice(path);
        self.folder_index.insert(path.into(), f);
        f
    }

    fn word(&mut self, w: Option<&str>) -> u16 {
        let Some(w) = w else { return 0 };
        if let Some(at) = self.words.iter().position(|x| &**x == w) {
            return at as u16 + 1;
        }
        if self.words.len() >= u16::MAX as usize - 1 {
            return 0;
        }
        self.words.push(w.into());
        self.words.len() as u16
    }

    fn words_at(&self, at: u16) -> Option<&str> {
        (at != 0).then(|| &*self.words[at as usize - 1])
    }

    /// All item records, sorted by id.
    pub fn records(&self) -> &[Record] {
        &self.items
    }

    /// All item records in title order (case-insensitive, then id) or newest first.
    pub fn ordered(&self, newest: bool) -> impl Iterator<Item = &Record> {
        let order = if newest { &self.by_added } else { &self.by_title };
        order.iter().map(|at| &self.items[*at as usize])
    }

    /// The item record with this id (binary search).
    pub fn record(&self, id: ItemId) -> Option<&Record> {
        self.items
            .binary_search_by_key(&id, |r| r.id)
            .ok()
            .map(|at| &self.items[at])
    }

    /// The group with this id (binary search).
    pub fn group(&self, id: ItemId) -> Option<&Group> {
        self.groups
            .binary_search_by_key(&id, |g| g.id)
            .ok()
            .map(|at| &self.groups[at])
    }

    /// The item's title as the scan named it.
    pub fn title(&self, r: &Record) -> &str {
        let start = r.text as usize + r.name_len as usize;
        std::str::from_utf8(&self.text[start..start + r.title_len as usize]).unwrap_or_default()
    }

    /// The item's absolute path, raw bytes.
    pub fn path(&self, r: &Record) -> Vec<u8> {
        let name = &self.text[r.text as usize..r.text as usize + r.name_len as usize];
        if r.folder == NONE32 {
            return name.to_vec();
        }
        let (start, len) = self.folders[r.folder as usize];
        let folder = &self.text[start as usize..(start + len) as usize];
        let mut p = Vec::with_capacity(folder.len() + 1 + name.len());
        p.extend_from_slice(folder);
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    /// The record as an owned item (what the rest of Hearth sees).
    pub fn view(&self, r: &Record) -> Item {
        Item {
            id: r.id,
            library: r.library,
            path: self.path(r).into(),
            size: r.size,
            mtime_ns: r.mtime_ns,
            media: r.media,
            container: self.words_at(r.container).unwrap_or_default().into(),
            title: self.title(r).into(),
            year: (r.year != 0).then_some(r.year),
            episode: r.episode(),
            duration_ms: (r.duration_ms != NO_DURATION).then_some(r.duration_ms),
            video_codec: self.words_at(r.video_codec).map(Into::into),
            audio_codec: self.words_at(r.audio_codec).map(Into::into),
            added: r.added,
        }
    }

    /// A new id for an item or a group; ids are never reused.
    pub fn allocate(&mut self) -> ItemId {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    /// The id of a show or artist (season None) or of a season, made on first sight.
    pub fn make_group(
        &mut self,
        library: LibraryId,
        show: &str,
        season: Option<u16>,
        parent: ItemId,
    ) -> ItemId {
        let key = show.to_lowercase();
        if let Some(g) = self
            .groups
            .iter()
            .find(|g| {
                g.library == library
                    && g.album.is_none()
                    && g.season == season
                    && g.show.to_lowercase() == key
            })
        {
            return g.id;
        }
        let id = self.allocate();
        let parent = if season.is_none() { id } else { parent };
        // Ids only grow, so pushing keeps the groups sorted.
        self.groups.push(Group {
            id,
            library,
            show: show.into(),
            season,
            parent,
            album: None,
        });
        id
    }

    /// The id of an album of the artist `artist` (group id), made on first sight. Albums of the same title by
    /// other artists are other albums.
    pub fn make_album(
        &mut self,
        library: LibraryId,
        artist_name: &str,
        title: &str,
        artist: ItemId,
    ) -> ItemId {
        let key = title.to_lowercase();
        if let Some(g) = self.groups.iter().find(|g| {
            g.library == library
                && g.parent == artist
                && g.album.as_deref().is_some_and(|a| a.to_lowercase() == key)
        }) {
            return g.id;
        }
        let id = self.allocate();
        self.groups.push(Group {
            id,
            library,
            show: artist_name.into(),
            season: None,
            parent: artist,
            album: Some(title.into()),
        });
        id
    }

    /// The index file's payload: the same postcard layout as `Index { next_id, items: Vec<Item>, groups }`,
    /// written item by item.
    pub fn index(&self) -> impl Serialize + '_ {
        IndexOut(self)
    }
}

struct IndexOut<'a>(&'a Shelves);
struct ItemsOut<'a>(&'a Shelves);

impl Serialize for IndexOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Index", 3)?;
        st.serialize_field("next_id", &self.0.next_id)?;
        st.serialize_field("items", &ItemsOut(self.0))?;
        st.serialize_field("groups", &self.0.groups)?;
        st.end()
    }
}

impl Serialize for ItemsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.items.iter().map(|r| self.0.view(r)))
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|at| s.is_char_boundary(*at)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::Index;
    use super::*;

    fn item(id: ItemId, path: &[u8], title: &str) -> Item {
        Item {
            id,
            library: 1,
            path: path.into(),
            size: 1 << 33,
            mtime_ns: -5,
            media: Media::Video,
            container: "mkv".into(),
            title: title.into(),
            year: None,
            episode: None,
            duration_ms: None,
            video_codec: None,
            audio_codec: None,
            added: 1_700_000_000,
        }
    }

    /// Every field survives the compact form, and the index file it writes is byte for byte what the owned
    /// items wrote before: ids (and everything else) survive an upgrade and a restart.
    #[test]
    fn items_and_index_bytes_survive_the_compact_form() {
        let mut items = vec![
            item(7, b"/media/films/Big.Buck.Bunny.2008.mp4", "Big Buck Bunny"),
            item(3, b"/media/films/caf\xe9.mp4", "caf\u{fffd}"),
            item(12, b"/top-level.mkv", "top-level"),
            item(9, b"/media/tv/The Show/The.Show.S01E02.mkv", "The Show"),
        ];
        items[0].year = Some(2008);
        items[0].duration_ms = Some(596_000);
        items[0].video_codec = Some("h264".into());
        items[0].audio_codec = Some("aac".into());
        items[0].container = "mp4".into();
        items[1].media = Media::Audio;
        items[3].library = 2;
        items[3].episode = Some(Episode { show: 10, season: 11, season_no: 1, episode_no: 2 });
        items[3].duration_ms = Some(0);
        let groups = vec![
            Group { id: 10, library: 2, show: "The Show".into(), season: None, parent: 10, album: None },
            Group { id: 11, library: 2, show: "The Show".into(), season: Some(1), parent: 10, album: None },
        ];
        let sh = Shelves::from_items(items.clone(), groups.clone(), 13);
        let mut by_id = items.clone();
        by_id.sort_by_key(|i| i.id);
        let views: Vec<Item> = sh.records().iter().map(|r| sh.view(r)).collect();
        assert_eq!(views, by_id);
        assert_eq!(sh.record(9).map(|r| sh.view(r)), Some(items[3].clone()));
        assert!(sh.record(8).is_none());
        assert_eq!(sh.group(11), Some(&groups[1]));

        let before = postcard::to_allocvec(&Index { next_id: 13, items: by_id, groups }).unwrap();
        assert_eq!(postcard::to_allocvec(&sh.index()).unwrap(), before);
    }

    /// The orders listings walk (made once per scan): title case-insensitively then id, and newest first then
    /// the higher id; rebuilt shelves (a scan's result) carry them too.
    #[test]
    fn shelves_keep_title_order_and_newest_first() {
        let mut items = vec![
            item(1, b"/a/1.mkv", "zebra"),
            item(2, b"/a/2.mkv", "Alpha"),
            item(3, b"/a/3.mkv", "alpha"),
            item(4, b"/a/4.mkv", "Émile"),
            item(5, b"/a/5.mkv", "beta"),
        ];
        for (i, added) in items.iter_mut().zip([30, 10, 50, 20, 50]) {
            i.added = added;
        }
        let sh = Shelves::from_items(items.clone(), Vec::new(), 6);
        let ids = |newest| sh.ordered(newest).map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(false), [2, 3, 5, 1, 4]);
        assert_eq!(ids(true), [5, 3, 1, 4, 2]);
        let mut next = sh.carry(|r| r.id != 3);
        next.finish();
        assert_eq!(next.ordered(false).map(|r| r.id).collect::<Vec<_>>(), [2, 5, 1, 4]);
    }

    #[test]
    fn carrying_keeps_the_chosen_records_and_the_id_counter() {
        let items = vec![item(1, b"/a/x.mkv", "x"), item(2, b"/b/y.mkv", "y")];
        let mut sh = Shelves::from_items(items.clone(), Vec::new(), 3);
        let mut next = sh.carry(|r| r.id == 2);
        assert_eq!(next.allocate(), 3);
        next.finish();
        sh = next;
        let views: Vec<Item> = sh.records().iter().map(|r| sh.view(r)).collect();
        assert_eq!(views, [items[1].clone()]);
    }
}
