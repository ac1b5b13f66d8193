use super::*;
use crate::state::{Folder, Library, LibraryKind, State, bounded};
use crate::store::{NorFile, Store};
use std::os::unix::ffi::OsStrExt;

const MP4_HEAD: &[u8] = b"\0\0\0\x10ftypisom\0\0\x02\0";

fn handle(dir: &Path, kind: LibraryKind, roots: &[&Path]) -> Handle {
    let flash = NorFile::open_or_create(&dir.join("flash.img"), 64 * 1024, 4096).unwrap();
    let store = Store::format(flash).unwrap();
    let mut s = State::new([7; 16]);
    s.libraries
        .push(Library {
            id: 1,
            kind,
            name: bounded("name", "Films").unwrap(),
        })
        .unwrap();
    for r in roots {
        s.folders
            .push(Folder {
                library: 1,
                path: bounded("path", r.to_str().unwrap()).unwrap(),
            })
            .unwrap();
    }
    Handle::start(store, s)
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn scan_lists_media_keeps_ids_and_stays_inside_roots() {
    let t = tempfile::tempdir().unwrap();
    let media = t.path().join("media");
    let outside = t.path().join("outside");
    write(&media.join("Big.Buck.Bunny.2008.mp4"), MP4_HEAD);
    write(&media.join("sub/Metropolis (1927).mp4"), MP4_HEAD);
    write(&media.join("notes.mp4"), b"this is text, not a film");
    write(&media.join("readme.txt"), b"hello");
    write(&outside.join("secret.mp4"), MP4_HEAD);
    std::os::unix::fs::symlink(&outside, media.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.mp4"), media.join("secret-link.mp4")).unwrap();
    std::os::unix::fs::symlink(&media, media.join("sub/loop")).unwrap();
    let raw = std::ffi::OsStr::from_bytes(b"caf\xe9.mp4");
    write(&media.join(raw), MP4_HEAD);

    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Movies, &[&media]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let items = c.items(1);
    let titles: Vec<&str> = items.iter().map(|i| &*i.title).collect();
    assert_eq!(
        titles,
        ["Big Buck Bunny", "caf\u{fffd}", "Metropolis"],
        "{items:#?}"
    );
    assert_eq!(items[0].year, Some(2008));
    assert!(items.iter().all(|i| !i.path().starts_with(&outside)));
    assert!(
        items
            .iter()
            .any(|i| i.path.as_ref() == media.join(raw).as_os_str().as_bytes())
    );
    let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
    drop(c);

    // A new catalog over the same data folder keeps the ids; a new file gets a fresh one.
    write(
        &media.join("Nosferatu.1922.mkv"),
        &[0x1A, 0x45, 0xDF, 0xA3, 0x80],
    );
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let again = c.items(1);
    assert_eq!(again.len(), 4);
    for i in &items {
        assert_eq!(again.iter().find(|a| a.path == i.path).unwrap().id, i.id);
    }
    let new = again.iter().find(|a| &*a.title == "Nosferatu").unwrap();
    assert!(!ids.contains(&new.id));
    assert_eq!(&*new.container, "mkv");

    // A deleted file leaves; its id is not reused.
    std::fs::remove_file(media.join("sub/Metropolis (1927).mp4")).unwrap();
    c.scan_now(1);
    assert_eq!(c.items(1).len(), 3);
    h.shutdown();
}

#[test]
fn shows_group_into_seasons() {
    let t = tempfile::tempdir().unwrap();
    let media = t.path().join("tv");
    write(
        &media.join("The.Show.S01E01.mkv"),
        &[0x1A, 0x45, 0xDF, 0xA3],
    );
    write(
        &media.join("The.Show.S01E02.mkv"),
        &[0x1A, 0x45, 0xDF, 0xA3],
    );
    write(&media.join("the show 2x01.mkv"), &[0x1A, 0x45, 0xDF, 0xA3]);
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Shows, &[&media]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let shows = c.shows(1);
    assert_eq!(shows.len(), 1, "{shows:?}");
    let seasons = c.seasons(shows[0].id);
    assert_eq!(
        seasons.iter().map(|s| s.season).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    let eps = c.episodes(seasons[0].id);
    assert_eq!(
        eps.iter()
            .map(|e| e.episode.unwrap().episode_no)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(c.leaf_count(shows[0].id), 3);
    h.shutdown();
}

#[test]
fn vanished_root_keeps_items_and_reports() {
    let t = tempfile::tempdir().unwrap();
    let media = t.path().join("media");
    write(&media.join("A.2001.mp4"), MP4_HEAD);
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Movies, &[&media]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let id = c.items(1)[0].id;
    std::fs::rename(&media, t.path().join("gone")).unwrap();
    c.scan_now(1);
    assert_eq!(
        c.items(1)[0].id,
        id,
        "an unmounted folder must not lose its ids"
    );
    assert!(!c.progress_of(1).view().problems.is_empty());
    h.shutdown();
}

#[test]
fn folder_checks_say_what_is_wrong() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    assert!(matches!(
        check_folder("relative/path"),
        Err(LibraryError::NotAbsolute(_))
    ));
    assert!(matches!(
        check_folder("/no/such/folder/anywhere"),
        Err(LibraryError::Missing(_))
    ));
    assert!(matches!(
        check_folder(f.to_str().unwrap()),
        Err(LibraryError::NotADirectory(_))
    ));
    assert_eq!(
        check_folder(&format!("{}/", t.path().display())).unwrap(),
        t.path().to_str().unwrap()
    );
}

/// A FLAC file of metadata only (RFC 9639 §8): the `fLaC` marker, STREAMINFO (44.1 kHz, stereo, 16 bit,
/// `secs` seconds of samples) and a VORBIS_COMMENT block (§8.6) with `comments` (`KEY=value`).
fn flac(secs: u64, comments: &[&str]) -> Vec<u8> {
    let mut f = b"fLaC".to_vec();
    // Block header: last-block flag and type (0 = STREAMINFO), 24-bit length.
    f.extend_from_slice(&[0x00, 0, 0, 34]);
    f.extend_from_slice(&4096u16.to_be_bytes()); // min block size
    f.extend_from_slice(&4096u16.to_be_bytes()); // max block size
    f.extend_from_slice(&[0; 6]); // min/max frame size unknown
    // 20 bits sample rate, 3 bits channels-1, 5 bits bits-per-sample-1, 36 bits total samples.
    let (rate, ch, bps, total) = (44_100u64, 1u64, 15u64, 44_100 * secs);
    let packed = (rate << 44) | (ch << 41) | (bps << 36) | total;
    f.extend_from_slice(&packed.to_be_bytes());
    f.extend_from_slice(&[0; 16]); // MD5 unknown
    let mut vc = Vec::new();
    let vendor = b"hearth test";
    vc.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    vc.extend_from_slice(vendor);
    vc.extend_from_slice(&(comments.len() as u32).to_le_bytes());
    for c in comments {
        vc.extend_from_slice(&(c.len() as u32).to_le_bytes());
        vc.extend_from_slice(c.as_bytes());
    }
    f.push(0x80 | 4); // last block, VORBIS_COMMENT
    f.extend_from_slice(&(vc.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(&vc);
    f
}

#[test]
fn music_is_artists_albums_and_tracks_from_tags_then_folders() {
    let t = tempfile::tempdir().unwrap();
    let music = t.path().join("music");
    // Tagged: the tags win over the folder names; the album artist keeps a compilation together.
    write(
        &music.join("misc/a.flac"),
        &flac(3, &["TITLE=Wandering Star", "ARTIST=Portishead", "ALBUM=Dummy", "TRACKNUMBER=3", "DATE=1994"]),
    );
    write(
        &music.join("misc/b.flac"),
        &flac(2, &["TITLE=Sour Times", "ARTIST=Portishead", "ALBUM=Dummy", "TRACKNUMBER=2"]),
    );
    write(
        &music.join("comp/x.flac"),
        &flac(1, &["TITLE=One", "ARTIST=Someone", "ALBUMARTIST=Various Artists", "ALBUM=Mix", "TRACKNUMBER=1"]),
    );
    write(
        &music.join("comp/y.flac"),
        &flac(1, &["TITLE=Two", "ARTIST=Someone Else", "ALBUMARTIST=Various Artists", "ALBUM=Mix", "TRACKNUMBER=2"]),
    );
    // Untagged: artist and album from the folders, disc from a CD2 folder, track and title from the name.
    write(&music.join("The Band/Live/CD2/01 - Encore.flac"), &flac(1, &[]));
    write(&music.join("The Band/Live/CD1/02 - Opener.flac"), &flac(1, &[]));
    // The same album title by another artist is another album.
    write(&music.join("Other Band/Live/01 - Theirs.flac"), &flac(1, &[]));

    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Music, &[&music]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let artists: Vec<String> = c.shows(1).iter().map(|g| g.show.to_string()).collect();
    assert_eq!(artists, ["Other Band", "Portishead", "The Band", "Various Artists"]);
    let albums: Vec<(String, String)> = c
        .albums(1, None)
        .iter()
        .map(|g| (g.show.to_string(), g.album.as_deref().unwrap().to_string()))
        .collect();
    assert_eq!(
        albums,
        [("Other Band", "Live"), ("Portishead", "Dummy"), ("The Band", "Live"), ("Various Artists", "Mix")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    fn album_of(c: &Catalog, artist: &str) -> Group {
        let a = c.shows(1).into_iter().find(|g| &*g.show == artist).unwrap();
        c.albums(1, Some(a.id)).remove(0)
    }
    fn tracks_of(c: &Catalog, g: &Group) -> Vec<(String, u16, u16, Option<u64>)> {
        c.episodes(g.id)
            .iter()
            .map(|i| {
                let e = i.episode.unwrap();
                (i.title.to_string(), e.season_no, e.episode_no, i.duration_ms)
            })
            .collect()
    }
    let album = |artist: &str| album_of(&c, artist);
    let tracks = |g: &Group| tracks_of(&c, g);
    let dummy = album("Portishead");
    assert_eq!(
        tracks(&dummy),
        [("Sour Times".to_string(), 1, 2, Some(2000)), ("Wandering Star".to_string(), 1, 3, Some(3000))],
        "in track order, with durations from STREAMINFO"
    );
    assert_eq!(c.episodes(dummy.id)[1].year, Some(1994));
    let live = album("The Band");
    assert_eq!(
        tracks(&live).iter().map(|t| (t.0.as_str(), t.1, t.2)).collect::<Vec<_>>(),
        [("Opener", 1, 2), ("Encore", 2, 1)],
        "disc 1 before disc 2"
    );
    assert_eq!(tracks(&album("Various Artists")).len(), 2, "a compilation is one album");
    assert_ne!(album("Other Band").id, live.id);

    // Ids, groups and tags survive a restart and a rescan that reads no tags (files unchanged).
    let before: Vec<Item> = c.items(1);
    let _ = (album, tracks);
    drop(c);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    assert_eq!(c.items(1), before);
    assert_eq!(c.shows(1).len(), 4);

    // A retagged file moves to its new album; the empty old album and artist go.
    write(
        &music.join("Other Band/Live/01 - Theirs.flac"),
        &flac(1, &["TITLE=Theirs", "ARTIST=Portishead", "ALBUM=Dummy", "TRACKNUMBER=1"]),
    );
    c.scan_now(1);
    assert_eq!(
        c.shows(1).iter().map(|g| g.show.to_string()).collect::<Vec<_>>(),
        ["Portishead", "The Band", "Various Artists"]
    );
    assert_eq!(tracks_of(&c, &album_of(&c, "Portishead"))[0].0, "Theirs");
}

#[test]
fn a_version_1_index_keeps_its_ids_and_music_is_grouped_at_the_next_scan() {
    #[derive(Serialize)]
    struct GroupV1<'a> {
        id: ItemId,
        library: LibraryId,
        show: &'a str,
        season: Option<u16>,
        parent: ItemId,
    }
    #[derive(Serialize)]
    struct IndexV1<'a> {
        next_id: u32,
        items: Vec<Item>,
        groups: Vec<GroupV1<'a>>,
    }
    let t = tempfile::tempdir().unwrap();
    let music = t.path().join("music");
    let file = music.join("Artist/Album/01 - Song.flac");
    write(&file, &flac(1, &["TITLE=Tagged Song", "ARTIST=Tagged Artist", "ALBUM=Tagged Album"]));
    let meta = std::fs::metadata(&file).unwrap();
    use std::os::unix::fs::MetadataExt;
    // What Hearth before music shelves wrote: the track by its file name, no groups.
    let old = Item {
        id: 5,
        library: 1,
        path: file.as_os_str().as_bytes().into(),
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        media: Media::Audio,
        container: "flac".into(),
        title: "01 - Song".into(),
        year: None,
        episode: None,
        duration_ms: None,
        video_codec: None,
        audio_codec: None,
        added: 1_700_000_000,
    };
    let index = IndexV1 { next_id: 9, items: vec![old], groups: vec![GroupV1 { id: 7, library: 2, show: "A Show", season: None, parent: 7 }] };
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut bytes = INDEX_MAGIC.to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&postcard::to_allocvec(&index).unwrap());
    std::fs::write(data.join(INDEX_FILE), bytes).unwrap();

    let h = handle(&data, LibraryKind::Music, &[&music]);
    let c = Catalog::open(&data, h.clone());
    assert_eq!(c.group(7).map(|g| (g.show.to_string(), g.album)), Some(("A Show".to_string(), None)));
    c.scan_now(1);
    let items = c.items(1);
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].id, items[0].added), (5, 1_700_000_000), "same id and added time as before");
    assert_eq!(&*items[0].title, "Tagged Song", "the unchanged file's tags were read once");
    let e = items[0].episode.unwrap();
    assert_eq!(c.group(e.show).unwrap().show.as_ref(), "Tagged Artist");
    assert_eq!(c.group(e.season).unwrap().album.as_deref(), Some("Tagged Album"));
    assert!(e.season > 8, "new groups get new ids, never old ones");
    // Written back as version 2.
    let written = std::fs::read(data.join(INDEX_FILE)).unwrap();
    assert_eq!(u16::from_le_bytes([written[4], written[5]]), INDEX_VERSION);
}

#[test]
fn photos_are_grouped_in_one_album_per_folder() {
    let t = tempfile::tempdir().unwrap();
    let photos = t.path().join("photos");
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    write(&photos.join("2024/Summer/beach.jpg"), &jpeg);
    write(&photos.join("2024/Summer/dunes.jpg"), &jpeg);
    write(&photos.join("2024/winter.jpg"), &jpeg);
    write(&photos.join("loose.jpg"), &jpeg);
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Photos, &[&photos]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let albums: Vec<String> = c.albums(1, None).iter().map(|g| g.album.as_deref().unwrap().to_string()).collect();
    assert_eq!(albums, ["2024", "2024/Summer"]);
    let summer = c.albums(1, None).remove(1);
    let mut names: Vec<String> = c.episodes(summer.id).iter().map(|i| i.title.to_string()).collect();
    names.sort();
    assert_eq!(names, ["beach", "dunes"]);
    let loose = c.items(1).into_iter().find(|i| &*i.title == "loose").unwrap();
    assert_eq!(loose.episode, None, "a photo in the library folder itself is in no album");
    assert!(c.shows(1).is_empty(), "albums of photos have no artist or show above them");
    // Moving the last photo out of a folder removes its album.
    std::fs::rename(photos.join("2024/winter.jpg"), photos.join("winter.jpg")).unwrap();
    c.scan_now(1);
    assert_eq!(c.albums(1, None).len(), 1);
}

#[test]
fn damaged_or_lying_audio_files_are_listed_by_their_folders_or_skipped() {
    let t = tempfile::tempdir().unwrap();
    let music = t.path().join("music");
    // An ID3v2 header that claims a 256 MiB tag over a few bytes of junk; a FLAC whose comment block says it
    // is longer than the file; a ".mp3" that is text.
    write(&music.join("Band/Album/01 - Broken Tag.mp3"), b"ID3\x04\x00\x00\x7f\x7f\x7f\x7fjunk junk junk");
    let mut torn = flac(1, &["TITLE=Torn", "ARTIST=Nobody"]);
    torn.truncate(torn.len() - 8);
    write(&music.join("Band/Album/02 - Torn.flac"), &torn);
    write(&music.join("Band/Album/03 - Not Audio.mp3"), b"just some text, not audio at all");
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let h = handle(&data, LibraryKind::Music, &[&music]);
    let c = Catalog::open(&data, h.clone());
    c.scan_now(1);
    let items = c.items(1);
    let titles: Vec<&str> = items.iter().map(|i| &*i.title).collect();
    assert_eq!(titles, ["Broken Tag", "Torn"], "the text file is not audio: {items:#?}");
    for i in &items {
        let e = i.episode.unwrap();
        assert_eq!(c.group(e.show).unwrap().show.as_ref(), "Band", "{}", i.title);
        assert_eq!(c.group(e.season).unwrap().album.as_deref(), Some("Album"));
    }
}
