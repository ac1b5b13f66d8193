//! The data folder is the owner's alone (A-F8): it holds the flash file (the TLS key, password and PIN
//! hashes), the library index (every media path), the lock and, for a moment, the recovery file.
//!
//! Hearth makes the folder `0700` and its files `0600` whatever the umask (each writer creates its files with
//! that mode: the store's `NorFile`, the library index, the lock). A folder found looser at start (an older
//! Hearth, a copy, a chmod) is tightened: group and other bits are cleared on the folder and on everything
//! below it (symlinks are left as they are and not followed), and one log line names what changed.

use std::fs::Permissions;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The data folder's mode.
pub const FOLDER_MODE: u32 = 0o700;
/// The mode of every file Hearth writes in the data folder (each writer sets it: the store room's `NorFile`,
/// the library room's index, the lock here).
pub const FILE_MODE: u32 = 0o600;

/// One mode Hearth changed: the path below the data folder ("" for the folder itself), before and after.
#[derive(Debug, PartialEq, Eq)]
pub struct Tightened {
    /// The path below the data folder ("" for the folder itself).
    pub name: String,
    /// Permission bits before (mode & 0o7777).
    pub was: u32,
    /// Permission bits after: the owner's bits kept, group and others cleared.
    pub now: u32,
}

/// Create `dir` (and missing parents) `0700` if it is missing, then clear group and other bits on it and on
/// everything below it. Logs one line when something was tightened, one when something could not be.
/// Fails only when the folder cannot be created or read.
pub fn make_private(dir: &Path) -> std::io::Result<Vec<Tightened>> {
    std::fs::DirBuilder::new().recursive(true).mode(FOLDER_MODE).create(dir)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    tighten(dir, "", &std::fs::metadata(dir)?, &mut done, &mut failed);
    walk(dir, dir, &mut done, &mut failed)?;
    if !done.is_empty() {
        let list: Vec<String> = done
            .iter()
            .map(|t| format!("{} {:o}→{:o}", if t.name.is_empty() { "." } else { &t.name }, t.was, t.now))
            .collect();
        tracing::warn!(folder = %dir.display(), tightened = %list.join(", "),
            "the data folder was readable by other users; it is the owner's alone now");
    }
    if !failed.is_empty() {
        tracing::error!(folder = %dir.display(), paths = %failed.join(", "),
            "these could not be made private (owned by another user?); fix their modes by hand");
    }
    Ok(done)
}

fn walk(top: &Path, dir: &Path, done: &mut Vec<Tightened>, failed: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        let name = path.strip_prefix(top).unwrap_or(&path).to_string_lossy().into_owned();
        if meta.is_dir() {
            tighten(&path, &name, &meta, done, failed);
            walk(top, &path, done, failed)?;
        } else if meta.is_file() {
            tighten(&path, &name, &meta, done, failed);
        }
    }
    Ok(())
}

fn tighten(path: &Path, name: &str, meta: &std::fs::Metadata, done: &mut Vec<Tightened>, failed: &mut Vec<String>) {
    let was = meta.mode() & 0o7777;
    let now = was & 0o700;
    if was == now {
        return;
    }
    match std::fs::set_permissions(path, Permissions::from_mode(now)) {
        Ok(()) => done.push(Tightened { name: name.to_owned(), was, now }),
        Err(e) => failed.push(format!("{} ({e})", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_f8_a_loose_folder_is_tightened_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let outside = dir.path().join("outside.txt");
        std::fs::create_dir_all(data.join("quarantine")).unwrap();
        std::fs::write(data.join("flash.img"), b"").unwrap();
        std::fs::write(data.join("quarantine/bad.mp4"), b"").unwrap();
        std::fs::write(&outside, b"").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("link")).unwrap();
        for (p, m) in [(&data, 0o755), (&data.join("quarantine"), 0o750), (&data.join("flash.img"), 0o644), (&data.join("quarantine/bad.mp4"), 0o640), (&outside, 0o644)] {
            std::fs::set_permissions(p, Permissions::from_mode(m)).unwrap();
        }
        let mut done = make_private(&data).unwrap();
        done.sort_by(|a, b| a.name.cmp(&b.name));
        let t = |name: &str, was, now| Tightened { name: name.into(), was, now };
        assert_eq!(done, [t("", 0o755, 0o700), t("flash.img", 0o644, 0o600), t("quarantine", 0o750, 0o700), t("quarantine/bad.mp4", 0o640, 0o600)]);
        assert_eq!(mode(&outside), 0o644, "a link's target outside the folder is left alone");
        // Nothing left to do the second time.
        assert_eq!(make_private(&data).unwrap(), []);
    }

    #[test]
    fn a_f8_a_new_folder_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        assert_eq!(make_private(&data).unwrap(), []);
        assert_eq!(mode(&data), 0o700);
    }
}
