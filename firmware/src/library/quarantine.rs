//! Files that took a probe down with them: kept in a list in the data folder and skipped by later scans until
//! they change (review finding R-F1: one crafted file made every start abort).
//!
//! Before the scanner probes a file it writes which file into `probing`; after the probe it empties it. A run
//! that dies inside a probe (an abort, an out-of-memory kill, a watchdog reset of a probe that never ends)
//! leaves `probing` naming the file. The next start, before it decides the previous run's reset reason, moves
//! that file into `quarantine` ([`take_leftover`]), and the reason is `crash` rather than `power_loss` (see
//! [`crate::system::reset`]). Scans skip a quarantined file while its size and modification time are the
//! ones recorded; a file that changed (replaced, re-encoded) is probed again and leaves the list. The owner's
//! Libraries screen lists the quarantined files.
//!
//! `probing` is deliberately not fsynced: a process that dies leaves its page cache to the kernel, so the
//! marker survives an abort; only a power cut can lose it, and a power cut is not the file's fault. (An fsync
//! per probed file would cost a flash write per file on a first scan of 20,000 files.) A run that stopped
//! cleanly while a probe was under way is not a death: its leftover marker is dropped.
//!
//! Both files hold lines of the same form (mode 0600, the data folder's):
//!
//! ```text
//! <size in bytes, decimal> SP <mtime in ns since the epoch, decimal> SP <path bytes, lowercase hex> LF
//! ```

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file being probed now (empty between probes).
pub const PROBING_FILE: &str = "probing";
/// The quarantined files.
pub const QUARANTINE_FILE: &str = "quarantine";
/// Entries kept (the oldest go first): bounds the list a hostile share can grow.
pub const MAX_ENTRIES: usize = 256;

/// One file as it was when it was probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The file's path (bytes).
    pub path: Box<[u8]>,
    /// Size when it was probed; with `mtime_ns`, a changed file leaves the quarantine.
    pub size: u64,
    /// Modification time in nanoseconds when it was probed.
    pub mtime_ns: i64,
}

impl Entry {
    /// The line that records it.
    pub fn line(&self) -> String {
        let mut s = format!("{} {} ", self.size, self.mtime_ns);
        for b in self.path.iter() {
            s += &format!("{b:02x}");
        }
        s.push('\n');
        s
    }

    /// A line back into an entry (None for anything malformed).
    pub fn parse(line: &str) -> Option<Entry> {
        let mut parts = line.trim_end_matches('\n').split(' ');
        let size = parts.next()?.parse().ok()?;
        let mtime_ns = parts.next()?.parse().ok()?;
        let hex = parts.next()?;
        if parts.next().is_some() || hex.is_empty() || hex.len() % 2 != 0 {
            return None;
        }
        let path = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Entry { path: path.into(), size, mtime_ns })
    }

    /// The path as text (lossy for names that are not UTF-8).
    pub fn display(&self) -> String {
        super::scan::as_path(&self.path).to_string_lossy().into_owned()
    }
}

fn parse_all(text: &str) -> Vec<Entry> {
    text.lines().filter_map(Entry::parse).collect()
}

fn create_0600(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().create(true).write(true).truncate(false).mode(0o600).open(path)
}

fn write_list(dir: &Path, entries: &[Entry]) -> std::io::Result<()> {
    let path = dir.join(QUARANTINE_FILE);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(entries.iter().map(Entry::line).collect::<String>().as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)
}

fn read_list(dir: &Path) -> Vec<Entry> {
    std::fs::read_to_string(dir.join(QUARANTINE_FILE)).map(|t| parse_all(&t)).unwrap_or_default()
}

/// At start, before the reset reason is decided: when the previous run left `probing` naming a file and did
/// not stop cleanly (`stopped_cleanly` false), that file joins the quarantine. Returns whether it did: the
/// previous run died probing it. The marker is emptied either way.
pub fn take_leftover(data_dir: &Path, stopped_cleanly: bool) -> bool {
    let marker = data_dir.join(PROBING_FILE);
    let Some(entry) = std::fs::read_to_string(&marker).ok().and_then(|t| parse_all(&t).pop()) else {
        return false;
    };
    let _ = std::fs::OpenOptions::new().write(true).truncate(true).open(&marker);
    if stopped_cleanly {
        return false;
    }
    let mut list = read_list(data_dir);
    list.retain(|e| e.path != entry.path);
    list.push(entry.clone());
    if list.len() > MAX_ENTRIES {
        list.drain(..list.len() - MAX_ENTRIES);
    }
    match write_list(data_dir, &list) {
        Ok(()) => tracing::warn!(path = %entry.display(), "the last run died reading this file's headers; it is skipped until it changes"),
        Err(e) => tracing::error!(path = %entry.display(), error = %e, "the quarantine list could not be written"),
    }
    true
}

/// What a scan asks about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not in the list: probe it.
    Probe,
    /// In the list as it is now: skip it.
    Skip,
}

/// The quarantine list and the `probing` marker of one data folder.
pub struct Quarantine {
    dir: PathBuf,
    entries: Mutex<Vec<Entry>>,
    marker: Mutex<Option<File>>,
}

impl Quarantine {
    /// Read the list in `data_dir` (empty when there is none).
    pub fn open(data_dir: &Path) -> Quarantine {
        let marker = match create_0600(&data_dir.join(PROBING_FILE)) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(error = %e, "the probe marker cannot be written; a file that crashes a probe will not be quarantined");
                None
            }
        };
        Quarantine { dir: data_dir.to_owned(), entries: Mutex::new(read_list(data_dir)), marker: Mutex::new(marker) }
    }

    /// Skip or probe this file? A file in the list that has changed since leaves the list (and is probed).
    pub fn verdict(&self, path: &[u8], size: u64, mtime_ns: i64) -> Verdict {
        let mut entries = self.entries.lock().unwrap();
        let Some(i) = entries.iter().position(|e| &*e.path == path) else {
            return Verdict::Probe;
        };
        if entries[i].size == size && entries[i].mtime_ns == mtime_ns {
            return Verdict::Skip;
        }
        entries.remove(i);
        if let Err(e) = write_list(&self.dir, &entries) {
            tracing::error!(error = %e, "the quarantine list could not be written");
        }
        Verdict::Probe
    }

    /// Run `probe` with the marker naming `entry` (emptied afterwards).
    pub fn probing<T>(&self, entry: &Entry, probe: impl FnOnce() -> T) -> T {
        let line = entry.line();
        if let Some(f) = self.marker.lock().unwrap().as_ref() {
            let _ = f.write_at(line.as_bytes(), 0).and_then(|_| f.set_len(line.len() as u64));
        }
        let got = probe();
        if let Some(f) = self.marker.lock().unwrap().as_ref() {
            let _ = f.set_len(0);
        }
        got
    }

    /// The quarantined files, as text, oldest first.
    pub fn list(&self) -> Vec<String> {
        self.entries.lock().unwrap().iter().map(Entry::display).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &[u8]) -> Entry {
        Entry { path: p.into(), size: 40 << 30, mtime_ns: -5 }
    }

    #[test]
    fn lines_round_trip_any_path_bytes() {
        let e = entry(b"/media/films/evil \n\xff.mp4");
        assert_eq!(Entry::parse(&e.line()), Some(e.clone()));
        for bad in ["", "1 2", "1 2 abc", "x 2 61", "1 2 61 62", "1 2 zz"] {
            assert_eq!(Entry::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_leftover_marker_joins_the_list_unless_the_run_stopped_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!take_leftover(dir.path(), false), "no marker");
        let q = Quarantine::open(dir.path());
        // A probe that finishes leaves the marker empty.
        q.probing(&entry(b"/m/ok.mp4"), || ());
        assert!(!take_leftover(dir.path(), false));
        // A run that dies inside a probe leaves it naming the file.
        std::fs::write(dir.path().join(PROBING_FILE), entry(b"/m/evil.mp4").line()).unwrap();
        assert!(!take_leftover(dir.path(), true), "a clean stop is not a death");
        assert!(read_list(dir.path()).is_empty());
        std::fs::write(dir.path().join(PROBING_FILE), entry(b"/m/evil.mp4").line()).unwrap();
        assert!(take_leftover(dir.path(), false));
        assert_eq!(std::fs::read(dir.path().join(PROBING_FILE)).unwrap(), b"", "the marker is emptied");
        let q = Quarantine::open(dir.path());
        assert_eq!(q.list(), ["/m/evil.mp4"]);
        assert_eq!(q.verdict(b"/m/evil.mp4", 40 << 30, -5), Verdict::Skip);
        assert_eq!(q.verdict(b"/m/other.mp4", 1, 1), Verdict::Probe);
        // Changed since: probed again, and out of the list for good.
        assert_eq!(q.verdict(b"/m/evil.mp4", 1000, -5), Verdict::Probe);
        assert!(q.list().is_empty());
        assert!(Quarantine::open(dir.path()).list().is_empty());
        use std::os::unix::fs::PermissionsExt;
        for f in [PROBING_FILE, QUARANTINE_FILE] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
}
