//! The watcher: inotify on every directory a scan visited; changes are coalesced per library and turned
//! into one rescan once the library has been quiet for [`QUIET`] (or after [`MAX_DELAY`] of constant churn).

use super::Catalog;
use crate::state::LibraryId;
use crate::system::watchdog::Beat;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A library must be quiet this long after a change before it is rescanned.
pub const QUIET: Duration = Duration::from_millis(800);
/// A library that keeps changing is rescanned at least this often.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

type Dirty = Arc<Mutex<HashMap<LibraryId, (Instant, Instant)>>>;

/// The inotify watcher over every folder of every library: marks a library dirty on a change and asks for a rescan
/// once its folders are quiet (or after [`MAX_DELAY`] of steady change).
pub struct Watcher {
    watches: Watches,
    owners: Arc<Mutex<HashMap<WatchDescriptor, LibraryId>>>,
    /// The watchdog's library-watcher heartbeat, bumped by the coalescer on each round (every 200 ms).
    beat: Arc<Mutex<Option<Beat>>>,
}

impl Watcher {
    /// Start the reader and coalescer threads.
    pub fn start(catalog: Weak<Catalog>) -> std::io::Result<Watcher> {
        let mut inotify = Inotify::init()?;
        let watches = inotify.watches();
        let owners: Arc<Mutex<HashMap<WatchDescriptor, LibraryId>>> = Arc::default();
        let dirty: Dirty = Arc::default();
        {
            let owners = owners.clone();
            let dirty = dirty.clone();
            std::thread::Builder::new()
                .name("inotify".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let events = match inotify.read_events_blocking(&mut buf) {
                            Ok(e) => e,
                            Err(e) => {
                                tracing::warn!(error = %e, "inotify read failed; watcher stopped");
                                return;
                            }
                        };
                        let now = Instant::now();
                        for ev in events {
                            if ev.mask.contains(EventMask::IGNORED) {
                                owners.lock().unwrap().remove(&ev.wd);
                                continue;
                            }
                            let lib = owners.lock().unwrap().get(&ev.wd).copied();
                            if let Some(lib) = lib {
                                dirty
                                    .lock()
                                    .unwrap()
                                    .entry(lib)
                                    .and_modify(|e| e.1 = now)
                                    .or_insert((now, now));
                            }
                        }
                    }
                })?;
        }
        let beat: Arc<Mutex<Option<Beat>>> = Arc::default();
        let bump = beat.clone();
        std::thread::Builder::new()
            .name("coalescer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(200));
                    let Some(catalog) = catalog.upgrade() else {
                        if let Some(b) = bump.lock().unwrap().as_ref() {
                            b.rest();
                        }
                        return;
                    };
                    if let Some(b) = bump.lock().unwrap().as_ref() {
                        b.bump();
                    }
                    let now = Instant::now();
                    let due: Vec<LibraryId> = {
                        let mut d = dirty.lock().unwrap();
                        let due: Vec<LibraryId> = d
                            .iter()
                            .filter(|(_, (first, last))| {
                                now - *last >= QUIET || now - *first >= MAX_DELAY
                            })
                            .map(|(l, _)| *l)
                            .collect();
                        for l in &due {
                            d.remove(l);
                        }
                        due
                    };
                    for l in due {
                        tracing::debug!(library = l, "changes on disk; rescanning");
                        catalog.refresh(l);
                    }
                }
            })?;
        Ok(Watcher { watches, owners, beat })
    }

    /// Report liveness to the watchdog through `beat` from now on.
    pub fn set_heartbeat(&self, beat: Beat) {
        *self.beat.lock().unwrap() = Some(beat);
    }

    /// Watch these directories for library `lib` (adding a directory twice is harmless).
    pub fn watch_dirs(&mut self, lib: LibraryId, dirs: &[PathBuf]) {
        let mask = WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::ATTRIB
            | WatchMask::DONT_FOLLOW
            | WatchMask::ONLYDIR;
        let mut warned = false;
        for d in dirs {
            match self.watches.add(d, mask) {
                Ok(wd) => {
                    self.owners.lock().unwrap().insert(wd, lib);
                }
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(dir = %d.display(), error = %e, "cannot watch; raise fs.inotify.max_user_watches");
                }
                Err(_) => {}
            }
        }
    }
}
