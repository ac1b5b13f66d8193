//! The hierarchy DLNA shows, built from flat catalog items for the libraries DLNA may show.
//!
//! ```text
//! 0 (root)
//! └─ L<library>                       object.container.storageFolder, one per DLNA library
//!    ├─ Movies:       i<item>          object.item.videoItem.movie
//!    ├─ Shows:        L<l>.s<show> → L<l>.s<show>.<season> → i<item> (episodes by number)
//!    ├─ Music:        L<l>.a<artist> → L<l>.a<artist>.<album> → i<item> (tracks by number)
//!    └─ Photos, other videos: L<l>.f<folder> ... → i<item> (the folders on disk)
//! ```
//! Ids of containers are derived from names (FNV-1a), of items from the catalog's stable item id, so they
//! survive rebuilds as long as the names do.

use super::catalog::{Catalog, Item, Kind, Medium, fnv1a, medium};
use crate::library::art::{CoverInfo, Origin};
use crate::library::sidecar::{Format, Subtitle};
use crate::state::{Library, LibraryId, LibraryKind};
use std::collections::HashMap;
use std::sync::Arc;

/// The object id of the root container ("0", fixed by ContentDirectory).
pub const ROOT: &str = "0";

/// One object of the ContentDirectory: a container (library, folder, show, album...) or an item.
#[derive(Debug)]
pub struct Node {
    /// The ContentDirectory object id.
    pub id: String,
    /// "-1" for the root (ContentDirectory:1 §2.8.2).
    pub parent: String,
    /// `dc:title`.
    pub title: String,
    /// `upnp:class`, e.g. `object.item.videoItem`.
    pub class: &'static str,
    /// Default order key (season, episode or track number).
    pub rank: u32,
    /// Indexes into [`View::nodes`], in default order.
    pub children: Vec<usize>,
    /// The catalog item for an item object; `None` for a container.
    pub item: Option<Item>,
}

impl Node {
    /// A container has no item.
    pub fn is_container(&self) -> bool {
        self.item.is_none()
    }
}

/// An immutable snapshot; rebuilt when the catalog or the DLNA library choice changes.
#[derive(Debug)]
pub struct View {
    /// All objects; index 0 is the root.
    pub nodes: Vec<Node>,
    index: HashMap<String, usize>,
    items: HashMap<u64, usize>,
    /// SystemUpdateID of this snapshot.
    pub update_id: u32,
    /// The libraries it holds, in order.
    pub libraries: Vec<LibraryId>,
    /// Where covers and subtitles are asked for at listing time; None (a view built for a test or the fuzzer)
    /// lists neither.
    pub source: Option<Source>,
}

/// The catalog a view was built from, kept for what is looked up per listing rather than per build (covers,
/// sidecar subtitles: they read files, so only the objects of a page ask).
#[derive(Clone)]
pub struct Source(pub Arc<dyn Catalog>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source")
    }
}

/// How deep below a container its art is looked for (show → season → episode is two).
const ART_DEPTH: usize = 4;

impl View {
    /// The hierarchy of `libraries` from the catalog, at SystemUpdateID `update_id`.
    pub fn build(libraries: &[Library], catalog: &dyn Catalog, update_id: u32) -> View {
        let mut v = View {
            nodes: Vec::new(),
            index: HashMap::new(),
            items: HashMap::new(),
            update_id,
            libraries: libraries.iter().map(|l| l.id).collect(),
            source: None,
        };
        let root = v.container(ROOT.into(), None, "Hearth".into(), "object.container", 0);
        for (rank, lib) in libraries.iter().enumerate() {
            // Libraries keep the owner's order.
            let l = v.container(format!("L{}", lib.id), Some(root), lib.name.to_string(), "object.container.storageFolder", rank as u32);
            for item in catalog.items(lib.id) {
                let parent = match (&item.kind, lib.kind) {
                    (Kind::Episode { show, season, .. }, _) => {
                        let sid = format!("L{}.s{:x}", lib.id, fnv1a(show.as_bytes()));
                        let s = v.container(sid.clone(), Some(l), show.clone(), "object.container.storageFolder", 0);
                        let title = if *season == 0 { "Specials".to_string() } else { format!("Season {season}") };
                        v.container(format!("{sid}.{season}"), Some(s), title, "object.container.storageFolder", *season as u32)
                    }
                    (Kind::Track { artist, album, .. }, _) => {
                        let aid = format!("L{}.a{:x}", lib.id, fnv1a(artist.as_bytes()));
                        let a = v.container(aid.clone(), Some(l), artist.clone(), "object.container.person.musicArtist", 0);
                        let bid = format!("{aid}.{:x}", fnv1a(album.as_bytes()));
                        v.container(bid, Some(a), album.clone(), "object.container.album.musicAlbum", 0)
                    }
                    (_, LibraryKind::Photos | LibraryKind::OtherVideos) => v.folder(lib.id, l, &item.folder),
                    _ => l,
                };
                let rank = match &item.kind {
                    Kind::Episode { episode, .. } => *episode as u32,
                    Kind::Track { number, .. } => number.unwrap_or(u16::MAX) as u32,
                    _ => 0,
                };
                let id = format!("i{:016x}", item.id);
                if v.index.contains_key(&id) {
                    continue;
                }
                let key = item.id;
                let n = v.push(Node {
                    id,
                    parent: v.nodes[parent].id.clone(),
                    title: item.title.clone(),
                    class: item.class(),
                    rank,
                    children: Vec::new(),
                    item: Some(item),
                });
                v.nodes[parent].children.push(n);
                v.items.insert(key, n);
            }
        }
        // Default order: containers before items, then by rank, then by title.
        let keys: Vec<(bool, u32, String)> =
            v.nodes.iter().map(|n| (!n.is_container(), n.rank, n.title.to_lowercase())).collect();
        for n in &mut v.nodes {
            n.children.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
        }
        v
    }

    fn push(&mut self, node: Node) -> usize {
        self.index.insert(node.id.clone(), self.nodes.len());
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn container(&mut self, id: String, parent: Option<usize>, title: String, class: &'static str, rank: u32) -> usize {
        if let Some(i) = self.index.get(&id) {
            return *i;
        }
        let parent_id = parent.map(|p| self.nodes[p].id.clone()).unwrap_or_else(|| "-1".into());
        let n = self.push(Node { id, parent: parent_id, title, class, rank, children: Vec::new(), item: None });
        if let Some(p) = parent {
            self.nodes[p].children.push(n);
        }
        n
    }

    /// The container for a folder path below a library, creating its ancestors.
    fn folder(&mut self, library: u8, top: usize, path: &str) -> usize {
        let mut at = top;
        let mut so_far = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(part);
            let id = format!("L{library}.f{:x}", fnv1a(so_far.as_bytes()));
            at = self.container(id, Some(at), part.to_string(), "object.container.storageFolder", 0);
        }
        at
    }

    /// The object with this id (Browse's ObjectID).
    pub fn get(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|i| &self.nodes[*i])
    }

    /// The direct children of `node`, in their default order.
    pub fn children<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a Node> + 'a {
        node.children.iter().map(|c| &self.nodes[*c])
    }

    /// Every node below `node`, depth first (Search scope).
    pub fn descendants<'a>(&'a self, node: &'a Node) -> Vec<&'a Node> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = node.children.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            let n = &self.nodes[i];
            out.push(n);
            stack.extend(n.children.iter().rev().copied());
        }
        out
    }

    /// An item by its catalog id (res URLs).
    pub fn item(&self, id: u64) -> Option<&Item> {
        self.items.get(&id).and_then(|i| self.nodes[*i].item.as_ref())
    }

    /// This view, asking `catalog` for covers and subtitles when it lists objects.
    pub fn with_source(mut self, catalog: Arc<dyn Catalog>) -> View {
        self.source = Some(Source(catalog));
        self
    }

    /// The art of `node` (`upnp:albumArtURI`): the item whose cover stands for it and what that cover is. An
    /// audio or video item's cover (embedded, or a cover file beside it or in its folders), a photo's EXIF
    /// thumbnail (never the photo itself: its `res` is that), and for a container below a library the art of
    /// its first item (an album's embedded cover, a show's `poster.jpg`, a photo folder's first thumbnail).
    pub fn art(&self, node: &Node) -> Option<(u64, CoverInfo)> {
        let source = self.source.as_ref()?;
        let mut at = node;
        for _ in 0..ART_DEPTH {
            if at.item.is_some() || at.id == ROOT || at.parent == ROOT {
                break;
            }
            at = self.children(at).next()?;
        }
        let item = at.item.as_ref()?;
        let info = source.0.cover_info(item.id)?;
        (info.origin != Origin::Photo).then_some((item.id, info))
    }

    /// The SRT sidecars of a video item (what TVs read: `res` entries and Samsung's `CaptionInfo`); empty for
    /// other items and without a source.
    pub fn subtitles(&self, item: &Item) -> Vec<Subtitle> {
        match (&self.source, medium(item.mime)) {
            (Some(source), Medium::Video) => source.0.subtitles(item.id).into_iter().filter(|s| s.format == Format::Srt).collect(),
            _ => Vec::new(),
        }
    }

    /// Items (not containers) in the view.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }
}
