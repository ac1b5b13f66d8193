//! STAND-IN, to be replaced by the library room's catalog at merge: a plain walk of the state's media folders
//! that is good enough to serve real files. It recognises media by extension, episodes by `SxxEyy` in the
//! name, tracks by `Artist/Album/NN Title.ext` folders. No probing: durations and resolutions stay unknown.

use super::catalog::{Catalog, Item, Kind, mime_of};
use crate::state::{LibraryId, LibraryKind, State};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Files per library the walk looks at, at most (a bound for the stand-in, not a product limit).
const MAX_FILES: usize = 200_000;
/// Folder depth the walk follows.
const MAX_DEPTH: usize = 12;

#[derive(Default)]
pub struct FolderWalk {
    items: Mutex<HashMap<LibraryId, Vec<Item>>>,
    generation: AtomicU64,
}

impl FolderWalk {
    pub fn new() -> FolderWalk {
        FolderWalk::default()
    }

    /// Walk every folder of every library again (blocking; call from a blocking thread). Bumps the generation
    /// when anything changed.
    pub fn refresh(&self, state: &State) {
        let mut fresh: HashMap<LibraryId, Vec<Item>> = HashMap::new();
        for lib in &state.libraries {
            let mut items = Vec::new();
            for f in state.folders.iter().filter(|f| f.library == lib.id) {
                walk(Path::new(f.path.as_str()), Path::new(f.path.as_str()), 0, lib.id, lib.kind, &mut items);
            }
            items.sort_by(|a, b| a.path.cmp(&b.path));
            items.dedup_by_key(|i| i.id);
            fresh.insert(lib.id, items);
        }
        let mut held = self.items.lock().unwrap();
        if *held != fresh {
            *held = fresh;
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Catalog for FolderWalk {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
    fn items(&self, library: LibraryId) -> Vec<Item> {
        self.items.lock().unwrap().get(&library).cloned().unwrap_or_default()
    }
}

fn walk(root: &Path, dir: &Path, depth: usize, library: LibraryId, kind: LibraryKind, out: &mut Vec<Item>) {
    if depth > MAX_DEPTH || out.len() >= MAX_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            walk(root, &path, depth + 1, library, kind, out);
            continue;
        }
        if !meta.is_file() || out.len() >= MAX_FILES {
            continue;
        }
        let Some((stem, ext)) = name.rsplit_once('.') else { continue };
        let Some(mime) = mime_of(ext) else { continue };
        let fits = match kind {
            LibraryKind::Music => mime.starts_with("audio/"),
            LibraryKind::Photos => mime.starts_with("image/"),
            _ => mime.starts_with("video/"),
        };
        if !fits {
            continue;
        }
        let folder = path
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
            .and_then(|p| p.to_str())
            .unwrap_or("")
            .to_string();
        let (title, kind) = classify(kind, stem, &folder);
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        out.push(Item {
            id: fnv1a(path.as_os_str().as_encoded_bytes()),
            library,
            path,
            folder,
            title,
            kind,
            size: meta.len(),
            modified,
            mime,
            duration: None,
            resolution: None,
        });
    }
}

/// Title and kind from the file name and its folder.
pub fn classify(library: LibraryKind, stem: &str, folder: &str) -> (String, Kind) {
    let mut parts = folder.split('/').filter(|p| !p.is_empty());
    match library {
        LibraryKind::Movies => (tidy(stem), Kind::Movie),
        LibraryKind::Photos => (stem.to_string(), Kind::Photo),
        LibraryKind::OtherVideos => (tidy(stem), Kind::Video),
        LibraryKind::Shows => match episode_marker(stem) {
            Some((at, len, season, episode)) => {
                let before = tidy(&stem[..at]);
                let show = if before.is_empty() { parts.next().map(tidy).unwrap_or_else(|| "Unknown show".into()) } else { before };
                let after = tidy(&stem[at + len..]);
                let title = if after.is_empty() { format!("Episode {episode}") } else { after };
                (title, Kind::Episode { show, season, episode })
            }
            None => {
                let show = parts.next().map(tidy).unwrap_or_else(|| "Unknown show".into());
                (tidy(stem), Kind::Episode { show, season: 0, episode: 0 })
            }
        },
        LibraryKind::Music => {
            let artist = parts.next().map(str::to_string).unwrap_or_else(|| "Unknown artist".into());
            let album = parts.next().map(str::to_string).unwrap_or_else(|| "Unknown album".into());
            let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
            let (number, rest) = match stem[..digits].parse::<u16>() {
                Ok(n) if digits <= 3 => (Some(n), stem[digits..].trim_start_matches([' ', '-', '.', '_'])),
                _ => (None, stem),
            };
            let title = if rest.is_empty() { stem.to_string() } else { rest.to_string() };
            (title, Kind::Track { artist, album, number })
        }
    }
}

/// Find `SxxEyy` (case-insensitive): (offset, length, season, episode).
pub fn episode_marker(s: &str) -> Option<(usize, usize, u16, u16)> {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if !b[i].eq_ignore_ascii_case(&b's') || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            continue;
        }
        let sd = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=2).contains(&sd) {
            continue;
        }
        let e = i + 1 + sd;
        if !b.get(e).is_some_and(|c| c.eq_ignore_ascii_case(&b'e')) {
            continue;
        }
        let ed = b[e + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=3).contains(&ed) {
            continue;
        }
        let season = s[i + 1..e].parse().ok()?;
        let episode = s[e + 1..e + 1 + ed].parse().ok()?;
        return Some((i, e + 1 + ed - i, season, episode));
    }
    None
}

/// Dots and underscores to spaces, separators trimmed.
fn tidy(s: &str) -> String {
    let spaced: String = s.chars().map(|c| if c == '.' || c == '_' { ' ' } else { c }).collect();
    spaced.trim_matches(|c: char| c == ' ' || c == '-').split_whitespace().collect::<Vec<_>>().join(" ")
}

/// FNV-1a 64: stable ids from paths (not for anything secret).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_episodes_and_tracks() {
        assert_eq!(
            classify(LibraryKind::Shows, "The.Office.S02E03.The.Fire", "The Office/Season 2"),
            ("The Fire".into(), Kind::Episode { show: "The Office".into(), season: 2, episode: 3 })
        );
        assert_eq!(
            classify(LibraryKind::Shows, "s1e10", "Lost"),
            ("Episode 10".into(), Kind::Episode { show: "Lost".into(), season: 1, episode: 10 })
        );
        assert_eq!(episode_marker("Mass Effect"), None, "an s inside a word is no marker");
        assert_eq!(
            classify(LibraryKind::Music, "07 - Karma Police", "Radiohead/OK Computer"),
            ("Karma Police".into(), Kind::Track { artist: "Radiohead".into(), album: "OK Computer".into(), number: Some(7) })
        );
        assert_eq!(classify(LibraryKind::Music, "1999", "").1, Kind::Track {
            artist: "Unknown artist".into(),
            album: "Unknown album".into(),
            number: None
        });
    }

    #[test]
    fn walks_folders_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Lost/Season 1")).unwrap();
        std::fs::write(root.join("Lost/Season 1/Lost.S01E02.mkv"), b"abc").unwrap();
        std::fs::write(root.join("Lost/Season 1/notes.txt"), b"not media").unwrap();
        std::fs::write(root.join(".hidden.mkv"), b"x").unwrap();
        let mut s = State::new([1; 16]);
        s.libraries.push(crate::state::Library { id: 3, kind: LibraryKind::Shows, name: "TV".try_into().unwrap() }).unwrap();
        s.folders.push(crate::state::Folder { library: 3, path: root.to_str().unwrap().try_into().unwrap() }).unwrap();
        let w = FolderWalk::new();
        w.refresh(&s);
        let g = w.generation();
        let items = w.items(3);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].folder, "Lost/Season 1");
        assert_eq!(items[0].size, 3);
        w.refresh(&s);
        assert_eq!(w.generation(), g, "nothing changed");
        std::fs::write(root.join("Lost/Season 1/Lost.S01E03.mkv"), b"abcd").unwrap();
        w.refresh(&s);
        assert_ne!(w.generation(), g);
        assert_eq!(w.items(3).len(), 2);
    }
}
