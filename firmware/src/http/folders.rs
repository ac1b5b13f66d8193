//! The owner's folder picker: `GET /api/v1/folders?path=<absolute path>[&hidden=1]` (`Access::Owner`).
//!
//! Without `path`: the roots, the media mounts first (file systems mounted at or below `/media`, `/mnt`,
//! `/srv` or `/run/media`, at most two levels below them: what init mounts from the board's `[media]`, a USB disk
//! a desktop mounted), then `/`. With `path`: its sub-folders (never files), sorted by name, at most
//! [`MAX_LISTED`] (`truncated` says when there were more, or when more than [`MAX_READ`] entries were
//! read), folders starting with a dot only with `hidden=1`, and the parent (`null` at `/`).
//!
//! Answers name the real place: `path` is the asked folder with every symlink resolved, and a symlink to a
//! folder is listed with `"link": true` and the folder it leads to as its `path`, so the picker never walks
//! out through a link without showing it. Names that are not UTF-8 cannot be a library folder: left out.
//!
//! Bad input, with a sentence: 400 for a relative path, a `.` or `..` segment, a NUL, a path over
//! [`MAX_PATH_BYTES`], or a file; 404 for a path that does not exist; 403 for a folder Hearth may not read;
//! 503 when the file system does not answer within [`DEADLINE`] (a disk spinning up, a hung network mount).
//! The file system is read on a blocking thread, never on a connection worker (DESIGN.md "Runtime shape"), at
//! most [`MAX_WAITING`] at once. Nothing is stored.

use super::refused::{Refused, reply};
use super::routes::Call;
use super::{Body, json};
use hyper::{Response, StatusCode};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Sub-folders listed at most (sorted by name first).
pub const MAX_LISTED: usize = 1000;
/// Directory entries read at most (files included).
pub const MAX_READ: usize = 20_000;
/// The longest path looked at.
pub const MAX_PATH_BYTES: usize = 4096;
/// How long a listing may take before the answer is 503.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Listings waiting on file systems at the same time.
pub const MAX_WAITING: usize = 4;
/// File systems that hold media (the kernel's names), for the media roots.
const DISK_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "exfat", "ntfs", "ntfs3", "fuseblk", "hfsplus", "udf",
    "iso9660", "zfs", "nfs", "nfs4", "cifs", "smb3", "9p", "virtiofs",
];
/// Where media file systems are mounted.
const MEDIA_PLACES: &[&str] = &["/media", "/mnt", "/srv", "/run/media"];

/// One folder of a listing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The name shown (the last segment; a root's whole path).
    pub name: String,
    /// The real path: descend with it, or put it in a library.
    pub path: String,
    /// A symlink that leads to `path`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
    /// A media mount (roots only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub media: bool,
}

/// What the route answers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    /// The folder listed (symlinks resolved); `null` for the roots.
    pub path: Option<String>,
    /// Its parent; `null` at `/` and for the roots.
    pub parent: Option<String>,
    /// Its sub-folders.
    pub folders: Vec<Entry>,
    /// More sub-folders than are listed.
    pub truncated: bool,
}

/// Check an asked path before the file system is touched.
pub fn check(asked: &str) -> Result<&str, Refused> {
    if asked.is_empty() || !asked.starts_with('/') {
        return Err(Refused::bad(format!("The path {asked:?} is not absolute: give the full path, starting with / (for example /media).")));
    }
    if asked.len() > MAX_PATH_BYTES {
        return Err(Refused::bad(format!("The path is longer than {MAX_PATH_BYTES} bytes.")));
    }
    if asked.contains('\0') {
        return Err(Refused::bad("The path contains a NUL character."));
    }
    if asked.split('/').any(|s| s == "." || s == "..") {
        return Err(Refused::bad("The path must not contain . or .. segments: give the folder's full path, as the list shows it."));
    }
    Ok(asked)
}

fn io_refusal(e: &std::io::Error, path: &str) -> Refused {
    match e.kind() {
        ErrorKind::NotFound => Refused::not_found(format!("There is no folder {path} on the server.")),
        ErrorKind::PermissionDenied => Refused::new(
            StatusCode::FORBIDDEN,
            format!("Hearth may not read the folder {path} (permission denied); check its permissions, or pick another."),
        ),
        ErrorKind::NotADirectory => Refused::bad(format!("{path} is not a folder: a part of it is a file.")),
        _ => Refused::bad(format!("The folder {path} cannot be read: {e}.")),
    }
}

/// The listing of `asked` (checked), read from the file system: blocking.
pub fn list(asked: &str, hidden: bool) -> Result<Listing, Refused> {
    let real = std::fs::canonicalize(asked).map_err(|e| io_refusal(&e, asked))?;
    let meta = std::fs::metadata(&real).map_err(|e| io_refusal(&e, asked))?;
    if !meta.is_dir() {
        return Err(Refused::bad(format!("{asked} is a file, not a folder; pick the folder that holds it.")));
    }
    let shown = real.to_string_lossy().into_owned();
    let dir = std::fs::read_dir(&real).map_err(|e| io_refusal(&e, &shown))?;
    let mut folders = Vec::new();
    let mut truncated = false;
    for (n, entry) in dir.enumerate() {
        if n >= MAX_READ {
            truncated = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.starts_with('.') && !hidden {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        let full = real.join(&name);
        if kind.is_dir() {
            folders.push(Entry { path: full.to_string_lossy().into_owned(), name, link: false, media: false });
        } else if kind.is_symlink() {
            // Followed only to say where it leads; a link to a file or to nothing is not a folder.
            let Ok(target) = std::fs::canonicalize(&full) else { continue };
            if target.is_dir() {
                folders.push(Entry { path: target.to_string_lossy().into_owned(), name, link: true, media: false });
            }
        }
    }
    folders.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then_with(|| a.name.cmp(&b.name)));
    if folders.len() > MAX_LISTED {
        folders.truncate(MAX_LISTED);
        truncated = true;
    }
    let parent = real.parent().map(|p| p.to_string_lossy().into_owned());
    Ok(Listing { path: Some(shown), parent, folders, truncated })
}

/// Unescape a mountinfo field (`\040` is a space, proc_pid_mountinfo(5)).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The media mounts in `/proc/self/mountinfo` text: disk file systems mounted at or at most two levels below
/// [`MEDIA_PLACES`], sorted.
pub fn media_mounts(mountinfo: &str) -> Vec<String> {
    let mut out: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = unescape(left.split(' ').nth(4)?);
            let fs = right.split(' ').next()?;
            // At the place or at most two levels below it (`/media/<user>/<disk>`).
            let placed = MEDIA_PLACES.iter().any(|p| {
                point == *p
                    || point.strip_prefix(p).is_some_and(|r| r.starts_with('/') && r.split('/').filter(|s| !s.is_empty()).count() <= 2)
            });
            (placed && DISK_FS.contains(&fs)).then_some(point)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The roots: the media mounts (as this process sees them), then `/`.
pub fn roots() -> Listing {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut folders: Vec<Entry> =
        media_mounts(&info).into_iter().map(|p| Entry { name: p.clone(), path: p, link: false, media: true }).collect();
    folders.push(Entry { name: "/".into(), path: "/".into(), link: false, media: false });
    Listing { path: None, parent: None, folders, truncated: false }
}

static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Run `job` on a blocking thread within [`DEADLINE`], at most [`MAX_WAITING`] at once: every read of a folder
/// an owner names (the picker's listings, and the check of a library's new folders in `http::libraries`), so a
/// hung disk costs one blocking thread and a 503, never a connection worker and the connections it serves.
pub(super) async fn off_the_worker<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, Refused> + Send + 'static,
) -> Result<T, Refused> {
    let busy = || Refused::new(StatusCode::SERVICE_UNAVAILABLE, "The server's folders are not answering (a disk spinning up, or a network share that hangs); try again shortly.");
    if WAITING.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
        WAITING.fetch_sub(1, Ordering::AcqRel);
        return Err(busy());
    }
    let task = tokio::task::spawn_blocking(move || {
        let r = job();
        WAITING.fetch_sub(1, Ordering::AcqRel);
        r
    });
    match tokio::time::timeout(DEADLINE, task).await {
        Ok(Ok(r)) => r,
        _ => Err(busy()),
    }
}

fn query(call: &Call, key: &str) -> Result<Option<String>, Refused> {
    let Some(q) = call.req.uri().query() else { return Ok(None) };
    for kv in q.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k == key {
            return super::routes::percent_decode(v)
                .map(Some)
                .ok_or_else(|| Refused::bad(format!("The {key} parameter is not valid percent-encoded UTF-8.")));
        }
    }
    Ok(None)
}

/// `GET /api/v1/folders[?path=...][&hidden=1]`.
pub async fn folders(call: Call) -> Response<Body> {
    reply(
        async {
            let hidden = matches!(query(&call, "hidden")?.as_deref(), Some("1" | "true"));
            let listing = match query(&call, "path")? {
                None => off_the_worker(|| Ok(roots())).await?,
                Some(p) if p.is_empty() => off_the_worker(|| Ok(roots())).await?,
                Some(p) => {
                    check(&p)?;
                    off_the_worker(move || list(&p, hidden)).await?
                }
            };
            Ok(json(&serde_json::to_value(&listing).unwrap_or_default()))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn bad_paths_are_refused_before_the_disk_is_asked() {
        for bad in ["", "media", "./media", "/media/../etc", "/media/./x", "/a/..", "/a\0b"] {
            let r = check(bad).unwrap_err();
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
        assert!(check(&format!("/{}", "a".repeat(MAX_PATH_BYTES))).is_err());
        for ok in ["/", "/media", "/media/", "/srv/my films", "/a/..b/...c"] {
            assert_eq!(check(ok).unwrap(), ok);
        }
    }

    #[test]
    fn media_mounts_are_disks_under_the_media_places() {
        let info = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 22 8:1 / /media rw,noatime - ext4 /dev/sda1 rw
31 22 8:17 / /run/media/ada/My\\040Disk rw - exfat /dev/sdb1 rw
32 22 0:5 / /mnt/sandbox/a/b/c rw - ext4 /dev/vdb rw
33 22 0:6 / /mnt/ram rw - tmpfs tmpfs rw
34 22 0:7 / /srv/nas rw - nfs4 nas:/films rw
35 22 0:8 / /mediabox rw - ext4 /dev/sdc1 rw
";
        assert_eq!(media_mounts(info), ["/media", "/run/media/ada/My Disk", "/srv/nas"]);
    }

    #[test]
    fn a_listing_shows_folders_only_sorted_with_links_marked_and_dots_hidden() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        for d in ["b", "A", "c", ".hidden"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        std::fs::write(root.join("film.mp4"), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(root.join("film.mp4"), root.join("to-a-file")).unwrap();
        std::os::unix::fs::symlink(root.join("gone"), root.join("broken")).unwrap();
        let l = list(root.to_str().unwrap(), false).unwrap();
        let names: Vec<&str> = l.folders.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["A", "b", "c", "elsewhere"]);
        let link = &l.folders[3];
        assert!(link.link);
        assert_eq!(Path::new(&link.path), outside.path().canonicalize().unwrap());
        assert_eq!(l.parent.as_deref(), root.parent().and_then(|p| p.to_str()));
        assert!(!l.truncated);
        let with_dots = list(root.to_str().unwrap(), true).unwrap();
        assert_eq!(with_dots.folders[0].name, ".hidden");
        // Through the link: the real place is named.
        let via = list(root.join("elsewhere").to_str().unwrap(), false).unwrap();
        assert_eq!(via.path.map(PathBuf::from), Some(outside.path().canonicalize().unwrap()));
        // A file, a missing path.
        assert_eq!(list(root.join("film.mp4").to_str().unwrap(), false).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(list(root.join("film.mp4/x").to_str().unwrap(), false).unwrap_err().status, StatusCode::BAD_REQUEST);
        assert_eq!(list(root.join("nope").to_str().unwrap(), false).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(list("/", false).unwrap().parent, None);
    }

    #[test]
    fn a_huge_folder_is_cut_and_says_so() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..MAX_LISTED + 5 {
            std::fs::create_dir(t.path().join(format!("d{i:05}"))).unwrap();
        }
        let l = list(t.path().to_str().unwrap(), false).unwrap();
        assert_eq!(l.folders.len(), MAX_LISTED);
        assert!(l.truncated);
        assert_eq!(l.folders[0].name, "d00000");
    }
}
