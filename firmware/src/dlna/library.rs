//! The library room's catalog as DLNA's content: [`crate::library::Catalog`] implements [`Catalog`], so DLNA
//! shows exactly the items the Plex API shows, with the same ids, the probed durations, and the catalog's
//! generation as its change signal.
//!
//! Mapping: id = the library item id (the Plex part URL carries the same number); Movies → [`Kind::Movie`];
//! Shows → [`Kind::Episode`] with the catalog's show group name and numbers; Music → [`Kind::Track`] with the
//! catalog's artist and album (tags, else folders) and track number, or from the `Artist/Album/NN Title.ext`
//! folders for an item the catalog has not grouped; Photos → [`Kind::Photo`]; other videos →
//! [`Kind::Video`]. MIME types come from the container the catalog recognised (magic bytes), not the name.
//! Resolutions stay unknown: the catalog's probe reads durations and codecs only.

use super::catalog::{Catalog, Item, Kind, mime_of};
use crate::library::{self, ItemId, kind::Media};
use crate::state::{LibraryId, LibraryKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl Catalog for library::Catalog {
    fn generation(&self) -> u64 {
        library::Catalog::generation(self)
    }

    fn items(&self, library: LibraryId) -> Vec<Item> {
        let s = self.state().snapshot();
        let Some(lib) = s.libraries.iter().find(|l| l.id == library) else { return Vec::new() };
        let roots = library::roots_of(&s, library);
        // Show and artist names, and album titles, by group id.
        let mut shows: HashMap<ItemId, Box<str>> = self.shows(library).into_iter().map(|g| (g.id, g.show)).collect();
        shows.extend(self.albums(library, None).into_iter().filter_map(|g| Some((g.id, g.album?))));
        library::Catalog::items(self, library).iter().map(|i| item(i, lib.kind, &roots, &shows)).collect()
    }

    fn cover_info(&self, id: u64) -> Option<library::art::CoverInfo> {
        library::Catalog::cover_info(self, ItemId::try_from(id).ok()?)
    }

    fn cover(&self, id: u64) -> Option<library::art::Cover> {
        library::Catalog::cover(self, ItemId::try_from(id).ok()?)
    }

    fn subtitles(&self, id: u64) -> Vec<library::sidecar::Subtitle> {
        let Some(item) = ItemId::try_from(id).ok().and_then(|id| library::Catalog::item(self, id)) else { return Vec::new() };
        if item.media != Media::Video {
            return Vec::new();
        }
        sidecars(item.id, item.path())
    }
}

/// Folders whose sidecar names are remembered at once; past it the memo starts again.
const FOLDERS_HELD: usize = 256;
/// Entries of one folder looked at for sidecars (as `library::sidecar` does).
const FOLDER_ENTRIES: usize = 4096;

/// The names in a folder that end in `.srt` or `.vtt`, sorted, by the folder's mtime: a TV's page of a
/// 1,000-video folder asks for every video's sidecars, and the folder is read once per change instead of once
/// per video (`scripts/bench-dlna`). Bounded by [`FOLDERS_HELD`].
type Listing = (std::time::SystemTime, Arc<Vec<String>>);
static FOLDERS: Mutex<Option<HashMap<PathBuf, Listing>>> = Mutex::new(None);

fn subtitle_names(dir: &Path) -> Arc<Vec<String>> {
    let Some(mtime) = std::fs::metadata(dir).and_then(|m| m.modified()).ok() else { return Arc::default() };
    let mut held = FOLDERS.lock().unwrap_or_else(|p| p.into_inner());
    let memo = held.get_or_insert_with(HashMap::new);
    if let Some((at, names)) = memo.get(dir)
        && *at == mtime
    {
        return names.clone();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .take(FOLDER_ENTRIES)
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.len() > 4 && [".srt", ".vtt"].iter().any(|x| n[n.len() - 4..].eq_ignore_ascii_case(x)))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let names = Arc::new(names);
    if memo.len() >= FOLDERS_HELD {
        memo.clear();
    }
    memo.insert(dir.to_path_buf(), (mtime, names.clone()));
    names
}

/// The sidecars of the video at `media` (item `id`), as `library::sidecar::beside` finds them (names by
/// `sidecar::parse_name`, file-name order, at most `MAX_SIDECARS`), from the folder's remembered names.
fn sidecars(id: ItemId, media: &Path) -> Vec<library::sidecar::Subtitle> {
    use library::sidecar::{MAX_SIDECARS, Subtitle, parse_name, stream_id};
    let (Some(dir), Some(stem)) = (media.parent(), media.file_stem().and_then(|s| s.to_str())) else { return Vec::new() };
    let names = subtitle_names(dir);
    let found = names.iter().filter_map(|n| parse_name(stem, n).map(|p| (n, p))).take(MAX_SIDECARS);
    found
        .enumerate()
        .filter_map(|(index, (name, (format, language, forced)))| {
            Some(Subtitle { index: index as u8, stream: stream_id(id, index)?, path: dir.join(name), format, language, forced })
        })
        .collect()
}

/// One catalog item as DLNA sees it. `roots` are the library's folders (for the folder views), `shows` the
/// names of its show and artist groups and the titles of its albums.
pub fn item(i: &library::Item, kind: LibraryKind, roots: &[PathBuf], shows: &HashMap<ItemId, Box<str>>) -> Item {
    let path = i.path().to_path_buf();
    let folder = folder_of(&path, roots);
    let title = i.title.to_string();
    let (title, kind) = match (kind, i.media, i.episode) {
        (_, Media::Video, Some(e)) => {
            let show = shows.get(&e.show).map(|s| s.to_string()).unwrap_or_else(|| "Unknown show".into());
            (title, Kind::Episode { show, season: e.season_no, episode: e.episode_no })
        }
        (_, Media::Audio, Some(e)) => {
            let name = |id| shows.get(&id).map(|s| s.to_string());
            let kind = Kind::Track {
                artist: name(e.show).unwrap_or_else(|| "Unknown artist".into()),
                album: name(e.season).unwrap_or_else(|| "Unknown album".into()),
                number: (e.episode_no > 0).then_some(e.episode_no),
            };
            (title, kind)
        }
        (_, Media::Audio, None) => track(&path, &folder),
        (_, Media::Photo, _) => (title, Kind::Photo),
        (LibraryKind::Movies, Media::Video, None) => (title, Kind::Movie),
        (_, Media::Video, None) => (title, Kind::Video),
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    Item {
        id: i.id as u64,
        library: i.library,
        folder,
        title,
        kind,
        size: i.size,
        modified: i.mtime_secs().max(0) as u64,
        mime: mime(i.media, &i.container, ext),
        duration: i.duration_ms.map(Duration::from_millis),
        resolution: None,
        path,
    }
}

/// The file's folder relative to the library folder it lies under (the innermost), `/`-separated.
fn folder_of(path: &Path, roots: &[PathBuf]) -> String {
    library::folders_below_root(roots, path.as_os_str().as_bytes()).join("/")
}

/// A track the catalog has not grouped yet (an index from before music shelves, until its first scan): the
/// catalog's own rules for folders and file names (`library::name`).
fn track(path: &Path, folder: &str) -> (String, Kind) {
    let stem = path.file_stem().map(|s| s.as_bytes()).unwrap_or_default();
    let named = library::name::track(stem);
    let dirs: Vec<String> = folder.split('/').filter(|p| !p.is_empty()).map(str::to_string).collect();
    let folders = library::name::music_folders(&dirs);
    let artist = folders.artist.unwrap_or_else(|| "Unknown artist".into());
    let album = folders.album.unwrap_or_else(|| "Unknown album".into());
    (named.title, Kind::Track { artist, album, number: named.track })
}

/// MIME type of a recognised container (names from `library::kind`), by extension when the container is one
/// DLNA has no type for.
fn mime(media: Media, container: &str, ext: &str) -> &'static str {
    match (media, container) {
        (Media::Audio, "mp4") => "audio/mp4",
        (_, "mp4") => "video/mp4",
        (_, "mov") => "video/quicktime",
        (_, "mkv") => "video/x-matroska",
        (_, "webm") => "video/webm",
        (_, "avi") => "video/x-msvideo",
        (_, "mpegts") => "video/mp2t",
        (_, "mpeg") => "video/mpeg",
        (_, "mp3") => "audio/mpeg",
        (_, "flac") => "audio/flac",
        (_, "ogg") => "audio/ogg",
        (_, "wav") => "audio/wav",
        (_, "jpeg") => "image/jpeg",
        (_, "png") => "image/png",
        (_, "gif") => "image/gif",
        (_, "webp") => "image/webp",
        (_, "heic") => "image/heic",
        (m, _) => mime_of(ext).unwrap_or(match m {
            Media::Video => "video/mpeg",
            Media::Audio => "audio/mpeg",
            Media::Photo => "image/jpeg",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{Episode, Item as LibItem};

    fn lib_item(id: ItemId, path: &str, media: Media, container: &str, episode: Option<Episode>) -> LibItem {
        LibItem {
            id,
            library: 1,
            path: path.as_bytes().into(),
            size: 10,
            mtime_ns: 1_700_000_000_500_000_000,
            media,
            container: container.into(),
            title: "Name".into(),
            year: None,
            episode,
            duration_ms: Some(1500),
            video_codec: None,
            audio_codec: None,
            added: 0,
        }
    }

    #[test]
    fn catalog_items_keep_ids_durations_and_get_dlna_kinds() {
        let roots = [PathBuf::from("/m/tv"), PathBuf::from("/m/tv/extra")];
        let shows: HashMap<ItemId, Box<str>> = [(7, "Lost".into())].into();
        let ep = Episode { show: 7, season: 8, season_no: 1, episode_no: 2 };
        let e = item(&lib_item(42, "/m/tv/extra/Lost/S1/Lost.S01E02.mkv", Media::Video, "mkv", Some(ep)), LibraryKind::Shows, &roots, &shows);
        assert_eq!(e.id, 42);
        assert_eq!(e.kind, Kind::Episode { show: "Lost".into(), season: 1, episode: 2 });
        assert_eq!(e.folder, "Lost/S1", "relative to the innermost library folder");
        assert_eq!((e.mime, e.duration, e.modified), ("video/x-matroska", Some(Duration::from_millis(1500)), 1_700_000_000));

        let roots = [PathBuf::from("/m/music")];
        let t = item(&lib_item(3, "/m/music/Radiohead/OK Computer/07 - Karma Police.m4a", Media::Audio, "mp4", None), LibraryKind::Music, &roots, &HashMap::new());
        assert_eq!(t.title, "Karma Police");
        assert_eq!(t.kind, Kind::Track { artist: "Radiohead".into(), album: "OK Computer".into(), number: Some(7) });
        assert_eq!(t.mime, "audio/mp4", "an MP4 audio file is audio");
        // A track the catalog grouped (from its tags) shows the catalog's artist, album, number and title, not
        // what its folders say.
        let names: HashMap<ItemId, Box<str>> = [(20, "Portishead".into()), (21, "Dummy".into())].into();
        let tagged = Episode { show: 20, season: 21, season_no: 1, episode_no: 3 };
        let t = item(&lib_item(6, "/m/music/misc/track3.mp3", Media::Audio, "mp3", Some(tagged)), LibraryKind::Music, &roots, &names);
        assert_eq!((t.title.as_str(), t.kind), ("Name", Kind::Track { artist: "Portishead".into(), album: "Dummy".into(), number: Some(3) }));

        // A Matroska file called .mp4 is served as what the catalog found it to be.
        let m = item(&lib_item(4, "/m/films/x.mp4", Media::Video, "mkv", None), LibraryKind::Movies, &[PathBuf::from("/m/films")], &HashMap::new());
        assert_eq!((m.kind, m.mime, m.folder.as_str()), (Kind::Movie, "video/x-matroska", ""));
        let v = item(&lib_item(5, "/m/home/2024/a.ts", Media::Video, "mpegts", None), LibraryKind::OtherVideos, &[PathBuf::from("/m/home")], &HashMap::new());
        assert_eq!((v.kind, v.mime, v.folder.as_str()), (Kind::Video, "video/mp2t", "2024"));
        let p = item(&lib_item(6, "/m/pics/a.jpg", Media::Photo, "jpeg", None), LibraryKind::Photos, &[PathBuf::from("/m/pics")], &HashMap::new());
        assert_eq!((p.kind, p.mime), (Kind::Photo, "image/jpeg"));
    }

    /// The remembered folder listing finds the same sidecars, in the same order and with the same stream ids, as
    /// the library room's `sidecar::beside` (what the Plex side serves), and sees a sidecar added later.
    #[test]
    fn sidecars_are_the_library_rooms() {
        let t = tempfile::tempdir().unwrap();
        let film = t.path().join("Film (2020).mkv");
        for name in ["Film (2020).mkv", "Film (2020).srt", "Film (2020).en.forced.srt", "Film (2020).pt-BR.vtt", "Other.srt", "notes.txt"] {
            std::fs::write(t.path().join(name), b"1\n00:00:01,000 --> 00:00:02,000\nhi\n").unwrap();
        }
        assert_eq!(sidecars(7, &film), crate::library::sidecar::beside(7, &film));
        assert_eq!(sidecars(7, &film).len(), 3);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(t.path().join("Film (2020).de.srt"), b"").unwrap();
        assert_eq!(sidecars(7, &film), crate::library::sidecar::beside(7, &film), "a sidecar added later is seen");
        assert_eq!(sidecars(7, &film).len(), 4);
    }
}
