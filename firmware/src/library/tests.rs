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

#[test]
fn visibility_follows_shares() {
    let s = State::new([1; 16]);
    assert_eq!(visible(&s, None), Visible::All);
    assert_eq!(visible(&s, Some(99)), Visible::Only(Default::default()));
}
