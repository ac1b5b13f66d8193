//! Walking a library's folders.
//!
//! Symlinks: a link is followed only when its target, resolved, stays inside the folder root it was found
//! under (a link out of the root is skipped and reported). Directories are visited once each (by device and
//! inode), so link loops end. Folders that vanish or cannot be read mid-scan are reported and skipped; the
//! catalog keeps their old items. Only the first [`kind::MAGIC_LEN`] bytes and the container headers are read.

use super::Item;
use super::kind::{self, Media};
use super::probe::{self, Probed};
use super::quarantine::{self, Quarantine, Verdict};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A media file found by a scan.
pub struct Found {
    /// The file's path as the file system spells it (bytes: names need not be UTF-8).
    pub path: Box<[u8]>,
    /// Size in bytes when it was seen; with `mtime_ns`, what tells the next scan the file is unchanged.
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Video, audio or photo, as the extension and the magic bytes agree.
    pub media: Media,
    /// Container name ("mp4", "mkv", ...) as the catalog and the DLNA profile use it.
    pub container: &'static str,
    /// What the header probe read (duration, codecs, tags).
    pub probed: Probed,
    /// Unchanged since the last scan (same size and mtime): not probed again.
    pub reused: bool,
}

/// What one walk of a library's folders found, and what it could not read.
#[derive(Default)]
pub struct Outcome {
    /// The media files of the wanted kind, in walk order.
    pub files: Vec<Found>,
    /// Every directory visited (the watcher watches them).
    pub dirs: Vec<PathBuf>,
    /// Directories (or roots) that could not be read: their old items are kept.
    pub unreadable: Vec<PathBuf>,
    /// Sentences for the progress view.
    pub problems: Vec<String>,
}

/// Walk `roots`, keeping files of kind `want`. `old` lets unchanged files (same size and mtime) skip probing;
/// files in `quarantine` are skipped while unchanged, and every probe runs under its marker.
pub fn scan(
    roots: &[PathBuf],
    want: Media,
    old: &HashMap<Box<[u8]>, Item>,
    seen: &AtomicU64,
    quarantine: &Quarantine,
) -> Outcome {
    let mut out = Outcome::default();
    let mut visited: HashSet<(u64, u64)> = HashSet::new();
    for root in roots {
        let canon = match std::fs::canonicalize(root) {
            Ok(c) => c,
            Err(e) => {
                out.problems.push(format!("{}: {e}", root.display()));
                out.unreadable.push(root.clone());
                continue;
            }
        };
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    out.problems.push(format!("{}: {e}", dir.display()));
                    out.unreadable.push(dir);
                    continue;
                }
            };
            match std::fs::metadata(&dir) {
                Ok(m) if visited.insert((m.dev(), m.ino())) => out.dirs.push(dir.clone()),
                Ok(_) => continue,
                Err(_) => continue,
            }
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let path = entry.path();
                let Some(meta) = entry_meta(&entry, &path, &canon) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !meta.is_file() {
                    continue;
                }
                seen.fetch_add(1, Ordering::Relaxed);
                if let Some(found) = take_file(&path, &meta, want, old, quarantine) {
                    out.files.push(found);
                }
            }
        }
    }
    out
}

/// The metadata of a directory entry, following a symbolic link only when its target stays inside the root
/// `canon` (a link out of the folder would show files the owner did not share). `None`: skip the entry.
fn entry_meta(entry: &std::fs::DirEntry, path: &Path, canon: &Path) -> Option<std::fs::Metadata> {
    let ft = entry.file_type().ok()?;
    if !ft.is_symlink() {
        return entry.metadata().ok();
    }
    match std::fs::canonicalize(path) {
        Ok(target) if target.starts_with(canon) => std::fs::metadata(&target).ok(),
        Ok(_) => {
            tracing::debug!(path = %path.display(), "symlink leaves the folder; skipped");
            None
        }
        Err(_) => None,
    }
}

/// One regular file met by the walk: `None` when it is not of kind `want` or is quarantined; the last probe's
/// findings when it is unchanged since `old`; else what a fresh probe finds.
fn take_file(
    path: &Path,
    meta: &std::fs::Metadata,
    want: Media,
    old: &HashMap<Box<[u8]>, Item>,
    quarantine: &Quarantine,
) -> Option<Found> {
    let ext = path.extension()?;
    let (claimed, _) = kind::by_extension(ext.as_bytes())?;
    if claimed != want {
        return None;
    }
    let bytes: Box<[u8]> = path.as_os_str().as_bytes().into();
    let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    // A file that took a probe down with it stays out until it changes.
    if quarantine.verdict(&bytes, meta.len(), mtime_ns) == Verdict::Skip {
        return None;
    }
    // Unchanged files keep what the last probe found. Audio items without artist and album (an
    // index written before Hearth kept music shelves) are read again, once.
    if let Some(o) = old.get(&bytes)
        && o.size == meta.len()
        && o.mtime_ns == mtime_ns
        && (o.media != Media::Audio || o.episode.is_some())
    {
        return Some(Found {
            path: bytes,
            size: o.size,
            mtime_ns,
            media: o.media,
            container: static_container(&o.container),
            probed: Probed {
                duration_ms: o.duration_ms,
                video_codec: o.video_codec.as_deref().map(Into::into),
                audio_codec: o.audio_codec.as_deref().map(Into::into),
                // Not read again: the catalog keeps the item's artist, album and title.
                tags: None,
            },
            reused: true,
        });
    }
    let found = examine(path, ext.as_bytes(), meta.len(), mtime_ns, want, quarantine)?;
    Some(Found { path: bytes, ..found })
}

/// Open, check the magic bytes, probe the headers (under the quarantine's marker).
fn examine(
    path: &Path,
    ext: &[u8],
    size: u64,
    mtime_ns: i64,
    want: Media,
    quarantine: &Quarantine,
) -> Option<Found> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; kind::MAGIC_LEN];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let Some((media, container)) = kind::recognise(ext, &head[..n]) else {
        tracing::debug!(path = %path.display(), "not what its extension says; skipped");
        return None;
    };
    if media != want {
        return None;
    }
    // The header readers start where the file position is.
    if std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).is_err() {
        return None;
    }
    let entry = quarantine::Entry { path: path.as_os_str().as_bytes().into(), size, mtime_ns };
    let probed = quarantine.probing(&entry, || probe::probe(f, size, container, media));
    Some(Found {
        path: Box::new([]),
        size,
        mtime_ns,
        media,
        container,
        probed,
        reused: false,
    })
}

fn static_container(c: &str) -> &'static str {
    for known in [
        "mp4", "mov", "mkv", "webm", "avi", "mpegts", "mpeg", "mp3", "flac", "ogg", "wav", "jpeg",
        "png", "gif", "webp", "heic",
    ] {
        if known == c {
            return known;
        }
    }
    "unknown"
}

/// Path bytes to a `Path` (names need not be UTF-8).
pub fn as_path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}
