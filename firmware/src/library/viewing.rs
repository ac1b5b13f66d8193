//! Watch state per person (issue 20 part 4): for each (account, item) the view offset, how often it was
//! watched to the end, when it was last viewed and whether it counts as watched now. Plex Home's point: each
//! member (and friend, and the owner) has their own.
//!
//! Owns: the rules of a viewing ([`Book`], sans-IO: a change in, the new viewing out; the caps and the
//! per-account rate limit are enforced there), and the watch-state file `watch-state.bin` in the data folder,
//! beside the catalog index (DESIGN.md "Files on the box": written often, so never in the flash record).
//! Must not touch: HTTP (the http room turns requests into [`Change`]s and viewings into attributes), the
//! access rule (callers reach a change only for items they may see), the flash store.
//!
//! Keys: the account id the auth room gives a caller (never reused, so the entries of a removed account can
//! never be shown to anyone; they are dropped at the next write) and the catalog's item id (stable across
//! rescans and restarts while the path stays, never reused). The catalog gives new ids to everything when its
//! index is lost, so each entry also keeps a check of the item's path ([`path_check`]): an entry whose id now
//! names another file is ignored and dropped at the next write.
//!
//! Writes are batched: a change only marks the book dirty; a writer thread saves it at most once every
//! [`batch`] (30 s by default, `--watch-state-batch-secs`), and the clean stop saves it once more. Each save
//! is atomic: the whole file to `watch-state.tmp` (mode 0600), fsync, rename over `watch-state.bin`, fsync
//! the folder. A power cut or `kill -9` therefore leaves the file of the last batch or of the one before it,
//! never a mix; at most the changes since the last batch are lost.
//!
//! File layout (all integers little-endian):
//!
//! ```text
//! offset 0   magic    b"HWST"
//! offset 4   version  u16 (VERSION = 1)
//! offset 6   flags    u16 (0)
//! offset 8   length   u32: bytes of payload
//! offset 12  crc      u32: CRC-32C (Castagnoli) of bytes 0..12 and the payload
//! offset 16  payload  postcard(Vec<Entry>), entries sorted by (account, item):
//!            Entry = account u16 | item u32 | path_check u32 | offset_ms u64 | count u32 | last_viewed u32
//!                    | watched bool          (postcard varints; about 15-20 bytes an entry)
//! ```
//!
//! A file that is truncated, has a bad CRC, another magic or a newer version is kept aside as
//! `watch-state.damaged` (replacing an older one), the log says so, and the book starts empty: the server
//! always starts.

use super::ItemId;
use crate::state::AccountId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Name of the watch-state file in the data folder (layout in the module doc).
pub const FILE: &str = "watch-state.bin";
/// Where a damaged watch-state file is kept aside.
pub const DAMAGED: &str = "watch-state.damaged";
const MAGIC: &[u8; 4] = b"HWST";
/// Version of the file encoding written by this build.
pub const VERSION: u16 = 1;
const OFFSET_VERSION: usize = 4;
const OFFSET_FLAGS: usize = 6;
const OFFSET_LEN: usize = 8;
const OFFSET_CRC: usize = 12;
const HEADER: usize = 16;
static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Entries one account may have; past it the least recently viewed entry of that account goes.
pub const MAX_PER_ACCOUNT: usize = 10_000;
/// Entries in all; past it the least recently viewed entry of the account with the most goes.
pub const MAX_TOTAL: usize = 50_000;
/// Changes one account may make at once (a burst) ...
pub const BURST: u32 = 60;
/// ... and how fast its allowance refills: one change a second (a Plex client sends one timeline every 10 s
/// per playing device).
pub const REFILL: Duration = Duration::from_secs(1);
/// Plex's default "video played threshold" (server setting `LibraryVideoPlayedThreshold`, 90 %): a view
/// offset at or past this share of the duration marks the item watched and clears the offset.
pub const PLAYED_PERCENT: u64 = 90;

/// How often the writer saves a dirty book, at most (`--watch-state-batch-secs`).
static BATCH_SECS: AtomicU64 = AtomicU64::new(30);

/// The batch interval: a changed book is written at most this often.
pub fn batch() -> Duration {
    Duration::from_secs(BATCH_SECS.load(Ordering::Relaxed).max(1))
}

/// Set the batch interval (serve's `--watch-state-batch-secs`; 1..=3600).
pub fn set_batch(d: Duration) {
    BATCH_SECS.store(d.as_secs().clamp(1, 3600), Ordering::Relaxed);
}

/// The watch state of one person for one item, as metadata shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Viewing {
    /// Where playback stopped, in milliseconds (0: not in progress). Plex's `viewOffset`.
    pub offset_ms: u64,
    /// How often it was watched to the end (scrobbled). Plex's `viewCount`.
    pub count: u32,
    /// Unix seconds of the last change. Plex's `lastViewedAt`.
    pub last_viewed: u32,
    /// Counts as watched now: scrobbled (or played past the threshold) and not started again since.
    pub watched: bool,
}

impl Viewing {
    /// In progress: started, not finished ("Continue watching", onDeck).
    pub fn in_progress(&self) -> bool {
        self.offset_ms > 0 && !self.watched
    }
}

/// One entry of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    account: AccountId,
    item: ItemId,
    path_check: u32,
    offset_ms: u64,
    count: u32,
    last_viewed: u32,
    watched: bool,
}

/// What a person did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Playback is at `offset_ms` (a timeline or progress report); `duration_ms` when known (from the
    /// client, else the catalog) decides whether this counts as watched.
    Offset { offset_ms: u64, duration_ms: Option<u64> },
    /// Watched to the end (`/:/scrobble`, "mark as played").
    Scrobble,
    /// Not watched (`/:/unscrobble`, "mark as unplayed"): count and offset go to zero.
    Unscrobble,
}

/// Why a change was refused; nothing was stored.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The account's allowance ([`BURST`], [`REFILL`]) is spent.
    #[error("Too many watch-state updates from this account; wait a few seconds and try again.")]
    TooFast,
}

/// The item a change is about: its id and the check of its path ([`path_check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The catalog's id of the item.
    pub item: ItemId,
    /// [`path_check`] of the item's path.
    pub path_check: u32,
}

/// The check of an item's path kept with its entries: CRC-32C of the path bytes.
pub fn path_check(path: &[u8]) -> u32 {
    CRC32C.checksum(path)
}

/// A per-account allowance of changes (token bucket: [`BURST`], refilled one per [`REFILL`]).
#[derive(Clone, Copy, Debug)]
struct Allowance {
    tokens: u32,
    /// Milliseconds (of the caller's clock) of the last refill.
    at_ms: u64,
}

/// The watch state of every account, in memory, with its rules. Sans-IO: time comes in as arguments.
#[derive(Debug, Default)]
pub struct Book {
    entries: BTreeMap<(AccountId, ItemId), Entry>,
    allowance: HashMap<AccountId, Allowance>,
}

impl Book {
    /// The viewing of `account` for `target`, if there is one for this very file.
    pub fn get(&self, account: AccountId, target: Target) -> Option<Viewing> {
        self.entries
            .get(&(account, target.item))
            .filter(|e| e.path_check == target.path_check)
            .map(view)
    }

    /// Every entry of one account: (item, path check, viewing).
    pub fn of_account(&self, account: AccountId) -> Vec<(Target, Viewing)> {
        self.entries
            .range((account, 0)..=(account, ItemId::MAX))
            .map(|(_, e)| (Target { item: e.item, path_check: e.path_check }, view(e)))
            .collect()
    }

    /// Whether this account has any entry at all (listings skip the look-ups when not).
    pub fn has_any(&self, account: AccountId) -> bool {
        self.entries.range((account, 0)..=(account, ItemId::MAX)).next().is_some()
    }

    /// Whether some entry belongs to an account `exists` no longer knows (removed: its entries must go).
    pub fn has_stale_account(&self, exists: impl Fn(AccountId) -> bool) -> bool {
        let mut last = None;
        self.entries.keys().any(|&(a, _)| {
            let new = last != Some(a);
            last = Some(a);
            new && !exists(a)
        })
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Charge one change to `account`'s allowance at `now_ms`.
    fn charge(&mut self, account: AccountId, now_ms: u64) -> Result<(), Refused> {
        let a = self.allowance.entry(account).or_insert(Allowance { tokens: BURST, at_ms: now_ms });
        let refill = REFILL.as_millis() as u64;
        let earned = now_ms.saturating_sub(a.at_ms) / refill;
        if earned > 0 {
            a.tokens = (a.tokens as u64 + earned).min(BURST as u64) as u32;
            a.at_ms += earned * refill;
        }
        if a.tokens == 0 {
            return Err(Refused::TooFast);
        }
        a.tokens -= 1;
        Ok(())
    }

    /// Apply one change for several items at once (a show marked played: every episode), charged as one.
    /// `now_ms` is a monotonic clock for the rate limit, `unix` the wall clock for `lastViewedAt`. Returns
    /// whether anything changed.
    pub fn apply(&mut self, account: AccountId, targets: &[Target], change: Change, now_ms: u64, unix: u32) -> Result<bool, Refused> {
        self.charge(account, now_ms)?;
        let mut changed = false;
        for t in targets {
            changed |= self.apply_one(account, *t, change, unix);
        }
        if changed {
            self.enforce_caps(account);
        }
        Ok(changed)
    }

    fn apply_one(&mut self, account: AccountId, t: Target, change: Change, unix: u32) -> bool {
        let key = (account, t.item);
        let blank = Entry { account, item: t.item, path_check: t.path_check, offset_ms: 0, count: 0, last_viewed: 0, watched: false };
        // An entry about another file under a reused id (a lost index) starts over.
        let old = self.entries.get(&key).copied().filter(|e| e.path_check == t.path_check);
        let mut e = old.unwrap_or(blank);
        match change {
            Change::Offset { offset_ms, duration_ms } => {
                let played = duration_ms.is_some_and(|d| d > 0 && offset_ms.saturating_mul(100) >= d.saturating_mul(PLAYED_PERCENT));
                if played {
                    // Past the threshold: watched once (not again for each later report), offset cleared.
                    if !e.watched {
                        e.count = e.count.saturating_add(1);
                    }
                    e.watched = true;
                    e.offset_ms = 0;
                } else if offset_ms > 0 {
                    // Started again after being watched: in progress again ("Continue watching"); the
                    // count stays.
                    e.watched = false;
                    e.offset_ms = offset_ms;
                } else {
                    // Plex ignores a time of 0 (python-plexapi: "setting the time to 0 will not work"); a
                    // player that reports 0 before it has loaded must not wipe the place.
                    return false;
                }
            }
            Change::Scrobble => {
                e.count = e.count.saturating_add(1);
                e.watched = true;
                e.offset_ms = 0;
            }
            Change::Unscrobble => {
                e.count = 0;
                e.watched = false;
                e.offset_ms = 0;
            }
        }
        e.last_viewed = unix;
        if e.offset_ms == 0 && e.count == 0 && !e.watched {
            // Nothing left to remember.
            return self.entries.remove(&key).is_some();
        }
        if old == Some(e) {
            return false;
        }
        self.entries.insert(key, e);
        true
    }

    /// Drop the least recently viewed entries of `account` past [`MAX_PER_ACCOUNT`], then of the biggest
    /// account past [`MAX_TOTAL`].
    fn enforce_caps(&mut self, account: AccountId) {
        let count = self.entries.range((account, 0)..=(account, ItemId::MAX)).count();
        if count > MAX_PER_ACCOUNT {
            self.evict_oldest(account, count - MAX_PER_ACCOUNT);
        }
        if self.entries.len() > MAX_TOTAL {
            let mut per: HashMap<AccountId, usize> = HashMap::new();
            for (a, _) in self.entries.keys() {
                *per.entry(*a).or_default() += 1;
            }
            let mut per: Vec<(AccountId, usize)> = per.into_iter().collect();
            per.sort_by_key(|&(a, n)| (std::cmp::Reverse(n), a));
            let mut excess = self.entries.len() - MAX_TOTAL;
            for (a, n) in per {
                if excess == 0 {
                    break;
                }
                let take = excess.min(n);
                self.evict_oldest(a, take);
                excess -= take;
            }
        }
    }

    /// Remove the `n` least recently viewed entries of `account`.
    fn evict_oldest(&mut self, account: AccountId, n: usize) {
        let mut keys: Vec<(u32, ItemId)> = self
            .entries
            .range((account, 0)..=(account, ItemId::MAX))
            .map(|(k, e)| (e.last_viewed, k.1))
            .collect();
        keys.sort_unstable();
        for (_, item) in keys.into_iter().take(n) {
            self.entries.remove(&(account, item));
        }
    }

    /// Keep only entries of accounts that still exist and of items that still hold the same file. Returns
    /// how many went.
    pub fn retain(&mut self, account_exists: impl Fn(AccountId) -> bool, item_is: impl Fn(Target) -> bool) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|&(a, _), e| account_exists(a) && item_is(Target { item: e.item, path_check: e.path_check }));
        self.allowance.retain(|a, _| account_exists(*a));
        before - self.entries.len()
    }

    /// The file's bytes (layout in the module doc).
    pub fn encode(&self) -> Vec<u8> {
        let entries: Vec<Entry> = self.entries.values().copied().collect();
        let payload = postcard::to_allocvec(&entries).expect("entries encode");
        let mut out = Vec::with_capacity(HEADER + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut d = CRC32C.digest();
        d.update(&out[..OFFSET_CRC]);
        d.update(&payload);
        out.extend_from_slice(&d.finalize().to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// A book from the file's bytes, or why they are not a watch-state file this build can read.
    pub fn decode(bytes: &[u8]) -> Result<Book, String> {
        if bytes.len() < HEADER {
            return Err(format!("only {} bytes; the header alone is {HEADER}", bytes.len()));
        }
        if &bytes[..4] != MAGIC {
            return Err("not a Hearth watch-state file (wrong magic)".into());
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
        let version = u16_at(OFFSET_VERSION);
        if version != VERSION {
            return Err(format!("version {version}; this Hearth reads version {VERSION}"));
        }
        if u16_at(OFFSET_FLAGS) != 0 {
            return Err("unknown flags".into());
        }
        let len = u32_at(OFFSET_LEN) as usize;
        let payload = &bytes[HEADER..];
        if payload.len() != len {
            return Err(format!("truncated or extended: the header says {len} bytes of entries, the file has {}", payload.len()));
        }
        let mut d = CRC32C.digest();
        d.update(&bytes[..OFFSET_CRC]);
        d.update(payload);
        if d.finalize() != u32_at(OFFSET_CRC) {
            return Err("checksum mismatch".into());
        }
        let entries: Vec<Entry> = postcard::from_bytes(payload).map_err(|e| format!("entries unreadable: {e}"))?;
        let mut book = Book::default();
        for e in entries {
            book.entries.insert((e.account, e.item), e);
        }
        Ok(book)
    }
}

fn view(e: &Entry) -> Viewing {
    Viewing { offset_ms: e.offset_ms, count: e.count, last_viewed: e.last_viewed, watched: e.watched }
}

/// What the writer has done since start (the bench and the log read it).
#[derive(Debug, Default)]
pub struct Writes {
    /// Files written (each one rename).
    pub files: AtomicU64,
    /// Bytes written.
    pub bytes: AtomicU64,
    /// fsync calls (file and folder: two per file).
    pub fsyncs: AtomicU64,
}

/// The book and its file: the shell around [`Book`] that the catalog holds.
pub struct Viewings {
    book: Mutex<Book>,
    /// Changed since the last save.
    dirty: Mutex<bool>,
    /// One save at a time (the writer thread and the clean stop).
    saving: Mutex<()>,
    path: PathBuf,
    started: std::time::Instant,
    /// What was written.
    pub writes: Writes,
}

impl Viewings {
    /// Read the watch-state file in `data_dir` (a damaged one is kept aside and the book starts empty).
    pub fn open(data_dir: &Path) -> Viewings {
        let path = data_dir.join(FILE);
        let _ = std::fs::remove_file(path.with_extension("tmp"));
        let book = match std::fs::read(&path) {
            Ok(bytes) => Book::decode(&bytes).unwrap_or_else(|why| {
                let aside = data_dir.join(DAMAGED);
                let kept = std::fs::rename(&path, &aside);
                tracing::warn!(
                    path = %path.display(), %why, kept_as = %aside.display(), kept = kept.is_ok(),
                    "watch-state file damaged; kept aside, watch state starts empty"
                );
                Book::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "watch-state file unreadable; watch state starts empty");
                Book::default()
            }
        };
        Viewings {
            book: Mutex::new(book),
            dirty: Mutex::new(false),
            saving: Mutex::new(()),
            path,
            started: std::time::Instant::now(),
            writes: Writes::default(),
        }
    }

    /// Read the book.
    pub fn read<T>(&self, f: impl FnOnce(&Book) -> T) -> T {
        f(&self.book.lock().unwrap())
    }

    /// Apply a change (see [`Book::apply`]); the file follows with the next batch.
    pub fn apply(&self, account: AccountId, targets: &[Target], change: Change) -> Result<bool, Refused> {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let unix = crate::system::clock::unix_now().min(u32::MAX as u64) as u32;
        let changed = self.book.lock().unwrap().apply(account, targets, change, now_ms, unix)?;
        if changed {
            *self.dirty.lock().unwrap() = true;
        }
        Ok(changed)
    }

    /// Whether there are changes not yet written.
    pub fn dirty(&self) -> bool {
        *self.dirty.lock().unwrap()
    }

    /// Have the next save write the file even without a change (e.g. an account was removed).
    pub fn mark_dirty(&self) {
        *self.dirty.lock().unwrap() = true;
    }

    /// Write the book now if it changed (drops entries `keep` refuses first). Blocking: call off the runtime.
    pub fn save(&self, account_exists: impl Fn(AccountId) -> bool, item_is: impl Fn(Target) -> bool) {
        let _one = self.saving.lock().unwrap();
        {
            let mut dirty = self.dirty.lock().unwrap();
            if !*dirty {
                return;
            }
            *dirty = false;
        }
        let bytes = {
            let mut book = self.book.lock().unwrap();
            let gone = book.retain(&account_exists, &item_is);
            if gone > 0 {
                tracing::info!(entries = gone, "watch state of removed accounts or items dropped");
            }
            book.encode()
        };
        match super::write_atomically(&self.path, &bytes) {
            Ok(()) => {
                self.writes.files.fetch_add(1, Ordering::Relaxed);
                self.writes.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.writes.fsyncs.fetch_add(2, Ordering::Relaxed);
            }
            Err(e) => {
                *self.dirty.lock().unwrap() = true;
                tracing::error!(path = %self.path.display(), error = %e, "watch-state file could not be written; trying again with the next batch");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AccountId = 1;
    const B: AccountId = 2;
    fn t(item: ItemId) -> Target {
        Target { item, path_check: path_check(format!("/m/{item}.mp4").as_bytes()) }
    }
    fn offset(ms: u64, dur: u64) -> Change {
        Change::Offset { offset_ms: ms, duration_ms: Some(dur) }
    }

    #[test]
    fn offsets_scrobbles_and_the_played_threshold() {
        let mut b = Book::default();
        assert!(b.apply(A, &[t(5)], offset(60_000, 1_000_000), 0, 100).unwrap());
        assert_eq!(b.get(A, t(5)), Some(Viewing { offset_ms: 60_000, count: 0, last_viewed: 100, watched: false }));
        assert!(b.get(A, t(5)).unwrap().in_progress());
        // Another person's state is their own.
        assert_eq!(b.get(B, t(5)), None);
        // 89.9 % is not watched; 90 % is, once, however many reports follow; the offset is cleared.
        b.apply(A, &[t(5)], offset(899_999, 1_000_000), 0, 101).unwrap();
        assert!(!b.get(A, t(5)).unwrap().watched);
        b.apply(A, &[t(5)], offset(900_000, 1_000_000), 0, 102).unwrap();
        b.apply(A, &[t(5)], offset(950_000, 1_000_000), 0, 103).unwrap();
        assert_eq!(b.get(A, t(5)), Some(Viewing { offset_ms: 0, count: 1, last_viewed: 103, watched: true }));
        // Started again: in progress, the count stays.
        b.apply(A, &[t(5)], offset(10_000, 1_000_000), 0, 104).unwrap();
        assert_eq!(b.get(A, t(5)), Some(Viewing { offset_ms: 10_000, count: 1, last_viewed: 104, watched: false }));
        b.apply(A, &[t(5)], Change::Scrobble, 0, 105).unwrap();
        assert_eq!(b.get(A, t(5)), Some(Viewing { offset_ms: 0, count: 2, last_viewed: 105, watched: true }));
        // Unscrobble forgets it entirely.
        assert!(b.apply(A, &[t(5)], Change::Unscrobble, 0, 106).unwrap());
        assert_eq!(b.get(A, t(5)), None);
        assert!(b.is_empty());
        // A time of 0 changes nothing (as in Plex).
        b.apply(A, &[t(7)], offset(60_000, 1_000_000), 0, 108).unwrap();
        assert!(!b.apply(A, &[t(7)], offset(0, 1_000_000), 0, 109).unwrap());
        assert_eq!(b.get(A, t(7)).unwrap().offset_ms, 60_000);
        // Unknown duration: the offset is kept, never "watched".
        b.apply(A, &[t(6)], Change::Offset { offset_ms: 5_000_000, duration_ms: None }, 0, 107).unwrap();
        assert!(b.get(A, t(6)).unwrap().in_progress());
    }

    #[test]
    fn an_entry_about_another_file_under_the_same_id_is_not_shown() {
        let mut b = Book::default();
        b.apply(A, &[t(5)], Change::Scrobble, 0, 1).unwrap();
        let other = Target { item: 5, path_check: path_check(b"/m/another.mkv") };
        assert_eq!(b.get(A, other), None);
        // A change about the new file starts over instead of counting on the old file's count.
        b.apply(A, &[other], Change::Scrobble, 0, 2).unwrap();
        assert_eq!(b.get(A, other).unwrap().count, 1);
        assert_eq!(b.get(A, t(5)), None);
    }

    #[test]
    fn the_rate_limit_refuses_a_flood_and_refills() {
        let mut b = Book::default();
        for i in 0..BURST {
            b.apply(A, &[t(1)], offset(1000 + i as u64, 1_000_000), 0, 1).unwrap();
        }
        let before = b.get(A, t(1));
        assert_eq!(b.apply(A, &[t(1)], offset(42, 1_000_000), 500, 1), Err(Refused::TooFast));
        assert_eq!(b.get(A, t(1)), before, "a refused change stores nothing");
        // Another account is not held back by A's flood.
        assert!(b.apply(B, &[t(1)], offset(42, 1_000_000), 500, 1).is_ok());
        // Two seconds later A has two changes again, not more.
        assert!(b.apply(A, &[t(1)], offset(43, 1_000_000), 2_000, 1).is_ok());
        assert!(b.apply(A, &[t(1)], offset(44, 1_000_000), 2_000, 1).is_ok());
        assert_eq!(b.apply(A, &[t(1)], offset(45, 1_000_000), 2_000, 1), Err(Refused::TooFast));
    }

    #[test]
    fn caps_drop_the_least_recently_viewed() {
        let mut b = Book::default();
        // One account marks a whole large library played (one change, many items).
        let targets: Vec<Target> = (1..=MAX_PER_ACCOUNT as u32 + 5).map(t).collect();
        for (n, chunk) in targets.chunks(1000).enumerate() {
            b.apply(A, chunk, Change::Scrobble, n as u64 * 10_000, n as u32).unwrap();
        }
        assert_eq!(b.len(), MAX_PER_ACCOUNT);
        // The first ones (least recently viewed) went, the newest stayed.
        assert_eq!(b.get(A, t(1)), None);
        assert!(b.get(A, t(MAX_PER_ACCOUNT as u32 + 5)).is_some());
    }

    #[test]
    fn the_file_round_trips_and_damage_is_refused() {
        let mut b = Book::default();
        b.apply(A, &[t(5)], offset(60_000, 1_000_000), 0, 100).unwrap();
        b.apply(B, &[t(7)], Change::Scrobble, 0, 200).unwrap();
        let bytes = b.encode();
        assert_eq!(&bytes[..4], b"HWST");
        let back = Book::decode(&bytes).unwrap();
        assert_eq!(back.get(A, t(5)), b.get(A, t(5)));
        assert_eq!(back.get(B, t(7)), b.get(B, t(7)));
        // Every truncation and every single flipped bit is refused, never read as other entries.
        for n in 0..bytes.len() {
            assert!(Book::decode(&bytes[..n]).is_err(), "truncated to {n}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(Book::decode(&bad).is_err(), "bit {bit} of byte {i}");
            }
        }
        assert!(Book::decode(b"garbage garbage garbage").unwrap_err().contains("magic"));
    }

    #[test]
    fn removed_accounts_and_items_are_dropped() {
        let mut b = Book::default();
        b.apply(A, &[t(5), t(6)], Change::Scrobble, 0, 1).unwrap();
        b.apply(B, &[t(5)], Change::Scrobble, 0, 1).unwrap();
        assert!(b.has_stale_account(|a| a != B));
        assert!(!b.has_stale_account(|_| true));
        assert_eq!(b.retain(|a| a != B, |x| x.item != 6), 2);
        assert!(!b.has_stale_account(|a| a != B));
        assert!(b.get(A, t(5)).is_some());
        assert!(!b.has_any(B));
    }

    #[test]
    fn a_damaged_file_is_kept_aside_and_the_book_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"HWST\x01\x00\x00\x00trunc").unwrap();
        let v = Viewings::open(dir.path());
        assert!(v.read(|b| b.is_empty()));
        assert_eq!(std::fs::read(dir.path().join(DAMAGED)).unwrap(), b"HWST\x01\x00\x00\x00trunc");
        // The next save writes a good file, 0600.
        v.apply(A, &[t(5)], Change::Scrobble).unwrap();
        v.save(|_| true, |_| true);
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.path().join(FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(v.writes.fsyncs.load(Ordering::Relaxed), 2);
        let again = Viewings::open(dir.path());
        assert_eq!(again.read(|b| b.get(A, t(5))).unwrap().count, 1);
        // Nothing changed: no write.
        again.save(|_| true, |_| true);
        assert_eq!(again.writes.files.load(Ordering::Relaxed), 0);
    }
}
