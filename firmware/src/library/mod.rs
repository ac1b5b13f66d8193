//! Libraries: the scanner, the catalog of items, the index file, the watcher and the media kinds.
//!
//! Owns: what is in each library (items with stable ids, titles, sizes, containers, durations, codecs), the
//! show and season groupings, the photo albums (one per folder), the artist and album groupings of music (from the tags, else from the folders:
//! `Artist/Album/01 - Title.flac`, with `CD1`/`Disc 2` folders as disc numbers), scan progress, the index file `library-index.bin` in the data folder, and the
//! inotify watcher, what is known about covers ([`art`]: where, never the picture bytes) and the sidecar
//! subtitles beside a video ([`sidecar`]), and each person's watch state with its file `watch-state.bin` beside the
//! index ([`viewing`]: written in batches, never in the flash record). Libraries and folders themselves are in the state (changed through `Handle::update` by
//! the API); this room follows them.
//! Must not touch: sockets or HTTP (the http room renders the catalog), media bytes for clients (stream room),
//! the flash store (items are not state: they can always be rebuilt by a scan).
//!
//! Index file (`library-index.bin`), written whole to a temporary file, fsynced, then renamed over the old:
//!
//! ```text
//! offset 0  magic  b"HIDX"
//! offset 4  version u16 little-endian (INDEX_VERSION)
//! offset 6  postcard(Index { next_id: u32, items: Vec<Item>, groups: Vec<Group> })
//! ```
//!
//! Version 1 had no `Group::album`; it is read into version 2 with `album: None` (same ids), and the next scan
//! of a music library reads the tags of its tracks once.
//!
//! Ids: every item, show and season has a u32 id that never changes while its path (or show name and
//! season number) stays; ids are never reused. A damaged or missing index means new ids for everything.

pub mod art;
pub mod kind;
pub mod matroska;
pub mod mp4;
pub mod name;
pub mod probe;
pub mod quarantine;
pub mod scan;
pub mod search;
mod shelves;
pub mod sidecar;
pub mod viewing;
pub mod watch;

use crate::state::{Handle, LibraryId, LibraryKind, State};
use kind::Media;
use serde::{Deserialize, Serialize};
use shelves::Shelves;
use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Name of the index file in the data folder (layout in the module doc): the catalog as the last scan left it, so a
/// restart lists the items at once and keeps their ids.
pub const INDEX_FILE: &str = "library-index.bin";
/// First four bytes of the index file; another file under that name is not read (a new scan builds the index).
pub const INDEX_MAGIC: &[u8; 4] = b"HIDX";
/// Version of the index encoding written by this build; version 1 is still read (see the module doc).
pub const INDEX_VERSION: u16 = 2;
const OFFSET_VERSION: usize = 4;
const OFFSET_PAYLOAD: usize = 6;

/// Id of an item or a group (show, season, artist, album, photo album): one counter for both, never reused, stable
/// while the path stays, so clients' links keep working across scans.
pub type ItemId = u32;

/// One media file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Never reused; see [`ItemId`].
    pub id: ItemId,
    /// The library the item's folder belongs to.
    pub library: LibraryId,
    /// Absolute path, raw bytes (names need not be UTF-8).
    pub path: Box<[u8]>,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Video, audio or photo, by the extension and the magic bytes.
    pub media: Media,
    /// Container as the probe named it ("mp4", "mkv", "flac", ...).
    pub container: Box<str>,
    /// From the file name (movies, shows) or the tags (music).
    pub title: Box<str>,
    /// A movie's year from its name, or a track's from its tags; never for shows.
    pub year: Option<u16>,
    /// Show and season group ids, season and episode numbers; for a music track: artist and album group
    /// ids, disc and track numbers; for a photo in an album: the album's id twice and zeros.
    pub episode: Option<Episode>,
    /// Playing time in milliseconds, when the headers say.
    pub duration_ms: Option<u64>,
    /// Codec of the first video track as the container names it (`avc1`, `V_MPEG4/ISO/AVC`).
    pub video_codec: Option<Box<str>>,
    /// Codec of the first audio track as the container names it.
    pub audio_codec: Option<Box<str>>,
    /// Unix seconds when first seen.
    pub added: u32,
}

/// Where an item sits in its library's tree: show and season (a show's episode), artist and album (a track), or a
/// photo album; see [`Item::episode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The show's (or artist's, or photo album's) group id.
    pub show: ItemId,
    /// The season's (or album's) group id; a photo album's id again.
    pub season: ItemId,
    /// Season number (0: specials or none), or a track's disc number.
    pub season_no: u16,
    /// Episode number, or a track's number on its disc.
    pub episode_no: u16,
}

impl Item {
    /// The item's absolute path as a file system path.
    pub fn path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.path))
    }
    /// The file name as text (lossy for names that are not UTF-8).
    pub fn file_name(&self) -> String {
        self.path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    /// The modification time in whole seconds (Plex's `updatedAt`), rounded down also before 1970.
    pub fn mtime_secs(&self) -> i64 {
        self.mtime_ns.div_euclid(1_000_000_000)
    }
}

/// A show or a season of one (Shows library), an artist or an album of one (Music library), or a photo album
/// (Photos library: one folder below the library folder, `show` empty, `parent` 0, `album` the folder path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Never reused, from the same counter as items' ids; see [`ItemId`].
    pub id: ItemId,
    /// The library the group belongs to.
    pub library: LibraryId,
    /// The show's name (show, season) or the artist's name (artist, album).
    pub show: Box<str>,
    /// None for the show itself, Some(n) for season n. None for artists and albums.
    pub season: Option<u16>,
    /// The show's or artist's id (for a season or album; its own id for a show or artist).
    pub parent: ItemId,
    /// The album's title: Some for an album, None for everything else.
    pub album: Option<Box<str>>,
}

impl Group {
    /// A show or an artist: the top of its library's tree.
    pub fn is_top(&self) -> bool {
        self.season.is_none() && self.album.is_none()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Index {
    next_id: u32,
    items: Vec<Item>,
    groups: Vec<Group>,
}

/// Index version 1: groups without `album`.
#[derive(Deserialize)]
struct IndexV1 {
    next_id: u32,
    items: Vec<Item>,
    groups: Vec<GroupV1>,
}

#[derive(Deserialize)]
struct GroupV1 {
    id: ItemId,
    library: LibraryId,
    show: Box<str>,
    season: Option<u16>,
    parent: ItemId,
}

/// Why a media folder cannot be added, or the index not saved; the text is shown to the owner as it is.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("the folder {0} does not exist")]
    Missing(String),
    #[error("{0} is not a folder")]
    NotADirectory(String),
    #[error("the folder {0} cannot be read by Hearth: {1}")]
    Unreadable(String, String),
    #[error("a media folder must be an absolute path like /media/films, not {0:?}")]
    NotAbsolute(String),
    #[error("the folder path is not valid UTF-8; rename or mount it under a UTF-8 path")]
    NotUtf8,
    #[error("the index file {path} could not be written: {reason}")]
    Index { path: String, reason: String },
}

/// Scan progress of one library (runtime only).
#[derive(Default)]
pub struct Progress {
    /// A scan of this library is queued or running.
    pub running: AtomicBool,
    /// Files looked at in the current (or last) scan.
    pub seen: AtomicU64,
    /// Files counted in the last finished scan (the estimate's total).
    pub last_total: AtomicU64,
    /// When the current (or last) scan began.
    pub started: Mutex<Option<Instant>>,
    /// How long the last finished scan took, in milliseconds (at least 1 once one finished).
    pub finished_ms: AtomicU64,
    /// Folders that could not be read in the last scan, with the reason.
    pub problems: Mutex<Vec<String>>,
    /// Scans finished since start.
    pub scans: AtomicU64,
}

/// What `/api/v1/libraries/{id}/progress` shows.
#[derive(Clone, Debug, Serialize)]
pub struct ProgressView {
    /// A scan is queued or running.
    pub running: bool,
    /// Files looked at in the current scan (or the last one when none runs).
    pub files_seen: u64,
    /// Files looked at per second in the current scan (or the last one when none runs).
    pub files_per_second: f64,
    /// Seconds left, from the last scan's total; None while unknown.
    pub estimate_seconds: Option<f64>,
    /// How long the last finished scan took, in milliseconds; 0 before the first.
    pub last_scan_ms: u64,
    /// Scans finished since start.
    pub scans: u64,
    /// Folders that could not be read in the last scan, with the reason.
    pub problems: Vec<String>,
}

impl Progress {
    /// The progress as the API shows it: files per second and the seconds left, estimated from the last scan's total.
    pub fn view(&self) -> ProgressView {
        let running = self.running.load(Ordering::SeqCst);
        let seen = self.seen.load(Ordering::Relaxed);
        let elapsed = self
            .started
            .lock()
            .unwrap()
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        let last_ms = self.finished_ms.load(Ordering::Relaxed);
        let rate = if running {
            if elapsed > 0.0 {
                seen as f64 / elapsed
            } else {
                0.0
            }
        } else if last_ms > 0 {
            seen as f64 / (last_ms as f64 / 1000.0)
        } else {
            0.0
        };
        let total = self.last_total.load(Ordering::Relaxed);
        let estimate = if !running {
            Some(0.0)
        } else if total > 0 && rate > 0.0 {
            Some(total.saturating_sub(seen) as f64 / rate)
        } else {
            None
        };
        ProgressView {
            running,
            files_seen: seen,
            files_per_second: (rate * 10.0).round() / 10.0,
            estimate_seconds: estimate.map(|e| (e * 10.0).round() / 10.0),
            last_scan_ms: last_ms,
            scans: self.scans.load(Ordering::Relaxed),
            problems: self.problems.lock().unwrap().clone(),
        }
    }
}

/// The catalog: every library's items, the scanner queue and the watcher. Cheap to share (`Arc`).
pub struct Catalog {
    shelves: RwLock<Shelves>,
    progress: Mutex<HashMap<LibraryId, Arc<Progress>>>,
    index_path: PathBuf,
    state: Handle,
    queue: Mutex<Option<std::sync::mpsc::Sender<LibraryId>>>,
    pending: Mutex<BTreeSet<LibraryId>>,
    watcher: Mutex<Option<watch::Watcher>>,
    /// Bumped whenever any item is added, removed or changed (DLNA's SystemUpdateID follows it).
    generation: AtomicU64,
    /// Files that took a probe down with them, skipped until they change.
    quarantine: quarantine::Quarantine,
    /// What is known about items' and groups' covers (no picture bytes; see [`art`]).
    covers: art::Covers,
    /// Each person's watch state, saved in batches beside the index ([`viewing`]).
    viewings: viewing::Viewings,
}

impl Catalog {
    /// Load the index (if any) and start the scanner thread. Call [`Catalog::start`] inside the runtime.
    pub fn open(data_dir: &Path, state: Handle) -> Arc<Catalog> {
        let index_path = data_dir.join(INDEX_FILE);
        // A temporary index left by a write that was cut or failed holds nothing the index does not (R-F9).
        let _ = std::fs::remove_file(index_path.with_extension("tmp"));
        let index = read_index(&index_path).unwrap_or_else(|why| {
            if index_path.exists() {
                tracing::warn!(path = %index_path.display(), %why, "library index unreadable; items get new ids");
            }
            Index { next_id: 1, ..Index::default() }
        });
        let shelves = Shelves::from_items(index.items, index.groups, index.next_id.max(1));
        release_free_memory();
        let catalog = Arc::new(Catalog {
            shelves: RwLock::new(shelves),
            progress: Mutex::new(HashMap::new()),
            index_path,
            state,
            queue: Mutex::new(None),
            pending: Mutex::new(BTreeSet::new()),
            watcher: Mutex::new(None),
            generation: AtomicU64::new(0),
            quarantine: quarantine::Quarantine::open(data_dir),
            covers: art::Covers::default(),
            viewings: viewing::Viewings::open(data_dir),
        });
        let (tx, rx) = std::sync::mpsc::channel::<LibraryId>();
        *catalog.queue.lock().unwrap() = Some(tx);
        let weak = Arc::downgrade(&catalog);
        std::thread::Builder::new()
            .name("scanner".into())
            .spawn(move || {
                while let Ok(id) = rx.recv() {
                    let Some(c) = weak.upgrade() else { return };
                    c.pending.lock().unwrap().remove(&id);
                    c.scan_now(id);
                }
            })
            .expect("spawn scanner");
        let weak = Arc::downgrade(&catalog);
        std::thread::Builder::new()
            .name("watch-state".into())
            .spawn(move || loop {
                std::thread::sleep(viewing::batch());
                let Some(c) = weak.upgrade() else { return };
                c.save_viewings();
            })
            .expect("spawn watch-state writer");
        catalog
    }

    /// Each person's watch state ([`viewing`]).
    pub fn viewings(&self) -> &viewing::Viewings {
        &self.viewings
    }

    /// What the watch state keys an item by: its id and the check of its path.
    pub fn target(item: &Item) -> viewing::Target {
        viewing::Target { item: item.id, path_check: viewing::path_check(&item.path) }
    }

    /// Write the watch state now if it changed, without the entries of removed accounts and of ids that no
    /// longer hold the same file. Blocking (the writer thread, the clean stop through `spawn_blocking`).
    pub fn save_viewings(&self) {
        let s = self.state.snapshot();
        // An account removed since the last save: its entries go with the next write even if nothing else changed.
        if !self.viewings.dirty() && self.viewings.read(|b| b.has_stale_account(|a| s.account(a).is_some())) {
            self.viewings.mark_dirty();
        }
        if !self.viewings.dirty() {
            return;
        }
        self.viewings.save(
            |a| s.account(a).is_some(),
            |t| self.item(t.item).is_some_and(|i| Catalog::target(&i) == t),
        );
    }

    /// The watchdog's library-watcher heartbeat: bumped by the watcher's coalescer thread; resting when
    /// inotify is unavailable (changes are then picked up by refresh only, as the log says).
    pub fn set_heartbeat(&self, beat: crate::system::watchdog::Beat) {
        match self.watcher.lock().unwrap().as_ref() {
            Some(w) => w.set_heartbeat(beat),
            None => beat.rest(),
        }
    }

    /// Start the watcher and scan every library once. Needs a tokio runtime (the watcher's coalescer).
    pub fn start(self: &Arc<Self>) {
        match watch::Watcher::start(Arc::downgrade(self)) {
            Ok(w) => *self.watcher.lock().unwrap() = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; changes are picked up by refresh only")
            }
        }
        let s = self.state.snapshot();
        // Items of libraries deleted while Hearth was stopped.
        self.retain_libraries(&s);
        for l in &s.libraries {
            self.refresh(l.id);
        }
    }

    /// Queue a scan of one library (coalesced: a scan already queued is not queued twice).
    pub fn refresh(&self, id: LibraryId) {
        if !self.pending.lock().unwrap().insert(id) {
            return;
        }
        self.progress_of(id).running.store(true, Ordering::SeqCst);
        if let Some(q) = self.queue.lock().unwrap().as_ref() {
            let _ = q.send(id);
        }
    }

    /// The progress counters of a library (made on first ask), shared with its running scan.
    pub fn progress_of(&self, id: LibraryId) -> Arc<Progress> {
        self.progress.lock().unwrap().entry(id).or_default().clone()
    }

    /// Forget the items of libraries that no longer exist, and save.
    pub fn retain_libraries(&self, s: &State) {
        let live: BTreeSet<LibraryId> = s.libraries.iter().map(|l| l.id).collect();
        let changed = {
            let mut sh = self.shelves.write().unwrap();
            let before = sh.records().len() + sh.groups.len();
            let mut next = sh.carry(|r| live.contains(&r.library));
            next.groups.retain(|g| live.contains(&g.library));
            next.finish();
            *sh = next;
            before != sh.records().len() + sh.groups.len()
        };
        if changed {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.progress
            .lock()
            .unwrap()
            .retain(|id, _| live.contains(id));
        if changed {
            self.save();
        }
    }

    /// Scan one library now, on this thread.
    pub fn scan_now(&self, id: LibraryId) {
        let s = self.state.snapshot();
        let Some(lib) = s.libraries.iter().find(|l| l.id == id).cloned() else {
            self.retain_libraries(&s);
            return;
        };
        let roots = roots_of(&s, id);
        let progress = self.progress_of(id);
        progress.running.store(true, Ordering::SeqCst);
        progress.seen.store(0, Ordering::Relaxed);
        *progress.started.lock().unwrap() = Some(Instant::now());
        let started = Instant::now();
        let old: HashMap<Box<[u8]>, Item> = {
            let sh = self.shelves.read().unwrap();
            sh.records()
                .iter()
                .filter(|r| r.library == id)
                .map(|r| {
                    let i = sh.view(r);
                    (i.path.clone(), i)
                })
                .collect()
        };
        let outcome = scan::scan(&roots, kind::wanted(lib.kind), &old, &progress.seen, &self.quarantine);
        let found = outcome.files.len();
        self.apply(id, lib.kind, &roots, outcome.files, &old, &outcome.unreadable);
        drop(old);
        self.save();
        release_free_memory();
        if let Some(w) = self.watcher.lock().unwrap().as_mut() {
            w.watch_dirs(id, &outcome.dirs);
        }
        let ms = started.elapsed().as_millis() as u64;
        progress.finished_ms.store(ms.max(1), Ordering::Relaxed);
        progress
            .last_total
            .store(progress.seen.load(Ordering::Relaxed), Ordering::Relaxed);
        *progress.problems.lock().unwrap() = outcome.problems;
        progress.scans.fetch_add(1, Ordering::Relaxed);
        progress
            .running
            .store(self.pending.lock().unwrap().contains(&id), Ordering::SeqCst);
        tracing::info!(library = id, items = found, ms, "scan finished");
        self.learn_covers(id);
    }

    /// Replace a library's items with a scan's findings, keeping ids by path.
    fn apply(
        &self,
        id: LibraryId,
        kind: LibraryKind,
        roots: &[PathBuf],
        files: Vec<scan::Found>,
        old: &HashMap<Box<[u8]>, Item>,
        unreadable: &[PathBuf],
    ) {
        let now = crate::system::clock::now();
        let mut shelves = self.shelves.write().unwrap();
        // The other libraries' items as they are; this library's from the scan (and the unreadable folders).
        let mut next = shelves.carry(|r| r.library != id);
        let sh = &mut next;
        let mut keep: BTreeSet<ItemId> = BTreeSet::new();
        for f in files {
            let (item_id, added) = match old.get(&f.path) {
                Some(o) => (o.id, o.added),
                None => (sh.allocate(), now),
            };
            let (title, year, episode) = if kind == LibraryKind::Music {
                let track = music_track(sh, id, roots, &f, old.get(&f.path));
                (track.title, track.year, Some(track.episode))
            } else {
                named_by_path(sh, id, kind, roots, &f.path)
            };
            if let Some(e) = episode {
                keep.insert(e.show);
                keep.insert(e.season);
            }
            sh.push(&Item {
                id: item_id,
                library: id,
                path: f.path,
                size: f.size,
                mtime_ns: f.mtime_ns,
                media: f.media,
                container: f.container.into(),
                title: title.into(),
                year,
                episode,
                duration_ms: f.probed.duration_ms,
                video_codec: f.probed.video_codec.map(Into::into),
                audio_codec: f.probed.audio_codec.map(Into::into),
                added,
            });
            keep.insert(item_id);
        }
        keep_unreadable(sh, old, unreadable, &mut keep);
        sh.groups
            .retain(|g| g.library != id || keep.contains(&g.id));
        next.finish();
        let held: Vec<Item> = next
            .records()
            .iter()
            .filter(|r| r.library == id)
            .map(|r| next.view(r))
            .collect();
        let changed =
            held.len() != old.len() || held.iter().any(|i| old.get(&i.path) != Some(i));
        *shelves = next;
        if changed {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Changes whenever any item of any library is added, removed or changed (not on scans that find
    /// everything as it was).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The files skipped because a probe of them ended the run that read them (oldest first).
    pub fn quarantined(&self) -> Vec<String> {
        self.quarantine.list()
    }

    /// The state handle the catalog follows (libraries and their folders).
    pub fn state(&self) -> &Handle {
        &self.state
    }

    fn save(&self) {
        let bytes = {
            let sh = self.shelves.read().unwrap();
            let mut out = Vec::with_capacity(64 + sh.records().len() * 128);
            out.extend_from_slice(INDEX_MAGIC);
            out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
            match postcard::to_allocvec(&sh.index()) {
                Ok(p) => out.extend_from_slice(&p),
                Err(e) => {
                    tracing::error!(error = %e, "library index could not be encoded");
                    return;
                }
            }
            out
        };
        if let Err(e) = write_atomically(&self.index_path, &bytes) {
            tracing::error!(path = %self.index_path.display(), error = %e, "library index could not be written");
        }
    }

    /// Items of one library, in title order.
    pub fn items(&self, library: LibraryId) -> Vec<Item> {
        // The shelves keep the title order (made once per scan): no sort per request.
        let sh = self.shelves.read().unwrap();
        sh.ordered(false).filter(|r| r.library == library).map(|r| sh.view(r)).collect()
    }

    /// How many items a library has now.
    pub fn item_count(&self, library: LibraryId) -> usize {
        self.shelves
            .read()
            .unwrap()
            .records()
            .iter()
            .filter(|r| r.library == library)
            .count()
    }

    /// The item with this id, if there is one now.
    pub fn item(&self, id: ItemId) -> Option<Item> {
        let sh = self.shelves.read().unwrap();
        sh.record(id).map(|r| sh.view(r))
    }

    /// The library of an item or a group (show, season, artist, album, photo album) by id: what the access rule
    /// binds item routes to (`auth::Access::Item`).
    pub fn library_of(&self, id: ItemId) -> Option<LibraryId> {
        self.item(id).map(|i| i.library).or_else(|| self.group(id).map(|g| g.library))
            .or_else(|| sidecar::stream_of(id).and_then(|(item, _)| self.item(item)).map(|i| i.library))
    }

    /// The group (show, season, artist, album, photo album) with this id, if there is one now.
    pub fn group(&self, id: ItemId) -> Option<Group> {
        self.shelves.read().unwrap().group(id).cloned()
    }

    /// Shows (or artists) of a library, in name order.
    pub fn shows(&self, library: LibraryId) -> Vec<Group> {
        let sh = self.shelves.read().unwrap();
        let mut v: Vec<Group> = sh
            .groups
            .iter()
            .filter(|g| g.library == library && g.is_top())
            .cloned()
            .collect();
        v.sort_by_key(|a| a.show.to_lowercase());
        v
    }

    /// Albums of an artist (or, with `None`, of the whole library `library`), by artist and title.
    pub fn albums(&self, library: LibraryId, artist: Option<ItemId>) -> Vec<Group> {
        let sh = self.shelves.read().unwrap();
        let mut v: Vec<Group> = sh
            .groups
            .iter()
            .filter(|g| {
                g.library == library && g.album.is_some() && artist.is_none_or(|a| g.parent == a)
            })
            .cloned()
            .collect();
        v.sort_by_key(|g| {
            (
                g.show.to_lowercase(),
                g.album.as_deref().unwrap_or_default().to_lowercase(),
                g.id,
            )
        });
        v
    }

    /// Seasons of a show, in order.
    pub fn seasons(&self, show: ItemId) -> Vec<Group> {
        let sh = self.shelves.read().unwrap();
        let mut v: Vec<Group> = sh
            .groups
            .iter()
            .filter(|g| g.season.is_some() && g.parent == show)
            .cloned()
            .collect();
        v.sort_by_key(|g| g.season);
        v
    }

    /// Episodes of a season (or of a whole show), in order; tracks of an album (or of an artist) by disc and
    /// track number.
    pub fn episodes(&self, group: ItemId) -> Vec<Item> {
        let sh = self.shelves.read().unwrap();
        let mut v: Vec<Item> = sh
            .records()
            .iter()
            .filter(|r| {
                r.episode()
                    .is_some_and(|e| e.season == group || e.show == group)
            })
            .map(|r| sh.view(r))
            .collect();
        v.sort_by_key(|i| i.episode.map(|e| (e.season_no, e.episode_no, i.id)));
        v
    }

    /// Count of episodes under a group.
    pub fn leaf_count(&self, group: ItemId) -> usize {
        let sh = self.shelves.read().unwrap();
        sh.records()
            .iter()
            .filter(|r| {
                r.episode()
                    .is_some_and(|e| e.season == group || e.show == group)
            })
            .count()
    }
}

fn read_index(path: &Path) -> Result<Index, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < OFFSET_PAYLOAD || &bytes[..4] != INDEX_MAGIC {
        return Err("not a Hearth library index".into());
    }
    let version = u16::from_le_bytes([bytes[OFFSET_VERSION], bytes[OFFSET_VERSION + 1]]);
    match version {
        INDEX_VERSION => postcard::from_bytes(&bytes[OFFSET_PAYLOAD..]).map_err(|e| e.to_string()),
        1 => {
            let v1: IndexV1 = postcard::from_bytes(&bytes[OFFSET_PAYLOAD..]).map_err(|e| e.to_string())?;
            Ok(Index {
                next_id: v1.next_id,
                items: v1.items,
                groups: v1
                    .groups
                    .into_iter()
                    .map(|g| Group {
                        id: g.id,
                        library: g.library,
                        show: g.show,
                        season: g.season,
                        parent: g.parent,
                        album: None,
                    })
                    .collect(),
            })
        }
        _ => Err(format!("index version {version} is newer than this Hearth ({INDEX_VERSION})")),
    }
}

/// Write `path` whole through `path.tmp` (0600), fsync, rename, fsync the folder: afterwards the file is the old
/// one or the new one, never a mix. On failure (a full disk) the temporary file is removed, so a failed write
/// leaves the old file and nothing else. The library index and the watch state ([`viewing`]) are written so.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let written = (|| {
        // Media paths are the owner's business (A-F8): 0600 whatever the umask, like the rest of the data folder.
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the folder is (rename(2) and fsync(2) on Linux).
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A scan allocates and frees a lot (the walk, probes, the index encoding); glibc keeps freed memory in its
/// arenas. Give it back so the idle footprint is the catalog, not the last scan's peak. (musl returns large
/// frees by itself.)
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The folders of one library, as the state lists them.
pub fn roots_of(s: &State, id: LibraryId) -> Vec<PathBuf> {
    s.folders
        .iter()
        .filter(|f| f.library == id)
        .map(|f| PathBuf::from(f.path.as_str()))
        .collect()
}

/// The library folder a file of `library` is served from: the outermost of its folders that holds `path`
/// (folders may nest; the scanner follows links that stay inside the folder it walked, so inside the
/// outermost too). None when none holds it any more (the folder was removed after the scan).
pub fn root_of(s: &State, library: LibraryId, path: &Path) -> Option<PathBuf> {
    roots_of(s, library)
        .into_iter()
        .filter(|r| path.starts_with(r))
        .min_by_key(|r| r.components().count())
}

/// Title, year and grouping of a video or photo file, read from its path: a show's episode gets its show and
/// season groups (made on first sight; a file without an episode pattern takes its folder as the show), a photo
/// its album (the folders below the library folder, `2024/Summer`; none for photos in the library folder
/// itself), a movie none. Shows carry no year: a year in an episode's name is part of the show's name.
fn named_by_path(
    sh: &mut Shelves,
    library: LibraryId,
    kind: LibraryKind,
    roots: &[PathBuf],
    path: &[u8],
) -> (String, Option<u16>, Option<Episode>) {
    let parsed = name::parse(stem(path));
    let episode = if kind == LibraryKind::Shows {
        let (show, season_no, episode_no) = match parsed.episode.clone() {
            Some(e) => e,
            None => (parent_name(path), 0, 0),
        };
        let show_id = sh.make_group(library, &show, None, 0);
        let season_id = sh.make_group(library, &show, Some(season_no), show_id);
        Some(Episode {
            show: show_id,
            season: season_id,
            season_no,
            episode_no,
        })
    } else if kind == LibraryKind::Photos {
        let dirs = folders_below_root(roots, path);
        (!dirs.is_empty()).then(|| {
            let album = sh.make_album(library, "", &dirs.join("/"), 0);
            Episode {
                show: album,
                season: album,
                season_no: 0,
                episode_no: 0,
            }
        })
    } else {
        None
    };
    let title = if parsed.title.is_empty() {
        String::from_utf8_lossy(stem(path)).into_owned()
    } else {
        parsed.title
    };
    let year = if kind == LibraryKind::Shows { None } else { parsed.year };
    (title, year, episode)
}

/// Items under folders that could not be read this time stay (ids, groups and all) until they can be, so a
/// disk that is slow to mount does not empty its library.
fn keep_unreadable(
    sh: &mut Shelves,
    old: &HashMap<Box<[u8]>, Item>,
    unreadable: &[PathBuf],
    keep: &mut BTreeSet<ItemId>,
) {
    for o in old.values() {
        if !keep.contains(&o.id) && unreadable.iter().any(|u| o.path().starts_with(u)) {
            keep.insert(o.id);
            sh.push(o);
            if let Some(e) = o.episode {
                keep.insert(e.show);
                keep.insert(e.season);
            }
        }
    }
}

fn stem(path: &[u8]) -> &[u8] {
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
    match name.iter().rposition(|b| *b == b'.') {
        Some(0) | None => name,
        Some(dot) => &name[..dot],
    }
}

/// A music track as the shelves keep it.
struct Track {
    title: String,
    year: Option<u16>,
    episode: Episode,
}

/// Artist, album, disc, track and title of one audio file: an unchanged file keeps what its item had; a
/// probed one takes its tags, and the folders and file name fill what the tags leave out (`Artist/Album/`,
/// a `CD2` or `Disc 2` folder, `01 - Title`). The artist and album groups are made on first sight.
fn music_track(
    sh: &mut Shelves,
    library: LibraryId,
    roots: &[PathBuf],
    f: &scan::Found,
    old: Option<&Item>,
) -> Track {
    if f.reused
        && let Some(o) = old
        && let Some(e) = o.episode
        && sh.group(e.show).is_some()
        && sh.group(e.season).is_some()
    {
        return Track {
            title: o.title.to_string(),
            year: o.year,
            episode: e,
        };
    }
    let tags = f.probed.tags.clone().unwrap_or_default();
    let named = name::track(stem(&f.path));
    let folders = name::music_folders(&folders_below_root(roots, &f.path));
    let artist = tags.artist.or(folders.artist).unwrap_or_else(|| "Unknown Artist".into());
    let album = tags.album.or(folders.album).unwrap_or_else(|| "Unknown Album".into());
    let artist_id = sh.make_group(library, &artist, None, 0);
    let album_id = sh.make_album(library, &artist, &album, artist_id);
    Track {
        title: tags.title.unwrap_or(named.title),
        year: tags.year,
        episode: Episode {
            show: artist_id,
            season: album_id,
            season_no: tags.disc.or(named.disc).or(folders.disc).unwrap_or(1),
            episode_no: tags.track.or(named.track).unwrap_or(0),
        },
    }
}

/// The folder names between the library folder that holds `path` (the innermost, when folders nest) and the
/// file, outermost first. DLNA's folder views use the same.
pub fn folders_below_root(roots: &[PathBuf], path: &[u8]) -> Vec<String> {
    let p = Path::new(OsStr::from_bytes(path));
    let Some(dir) = p.parent() else { return Vec::new() };
    let below = roots
        .iter()
        .filter_map(|r| dir.strip_prefix(r).ok())
        .min_by_key(|rest| rest.components().count());
    below
        .map(|rest| {
            rest.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_name(path: &[u8]) -> String {
    let p = Path::new(OsStr::from_bytes(path));
    p.parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}


/// Check a folder the owner wants to add: absolute, UTF-8 (the state stores text), an existing readable
/// directory. Returns the path as given (no symlink resolution: the scanner keeps within it).
pub fn check_folder(path: &str) -> Result<String, LibraryError> {
    if !path.starts_with('/') {
        return Err(LibraryError::NotAbsolute(path.into()));
    }
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let p = Path::new(trimmed);
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LibraryError::Missing(trimmed.into()));
        }
        Err(e) => return Err(LibraryError::Unreadable(trimmed.into(), e.to_string())),
    };
    if !meta.is_dir() {
        return Err(LibraryError::NotADirectory(trimmed.into()));
    }
    std::fs::read_dir(p).map_err(|e| LibraryError::Unreadable(trimmed.into(), e.to_string()))?;
    Ok(trimmed.into())
}

#[cfg(test)]
mod tests;
