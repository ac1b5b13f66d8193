//! Covers from real small files written by the test: image headers, EXIF thumbnails, MP4 `covr`, ID3v2 APIC
//! through lofty, cover files beside the media and above it.

use super::*;
use crate::state::{Folder, Handle, Library, LibraryKind, State, bounded};
use crate::store::{NorFile, Store};
use std::sync::Arc;

/// A PNG header for `w`×`h` (signature and IHDR; no pixels are needed to read the size).
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = PNG_SIGNATURE.to_vec();
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&(body.len() as u16 + 2).to_be_bytes());
    s.extend_from_slice(body);
    s
}

/// A JPEG's header (layout in the module doc): SOI, an APP1 EXIF block whose IFD1 holds `thumb` when given
/// (little- or big-endian TIFF), SOF0 for `w`×`h`, SOS and EOI. No pixels: nothing here decodes them.
pub(crate) fn jpeg(w: u16, h: u16, thumb: Option<&[u8]>, little: bool) -> Vec<u8> {
    let u16b = |v: u16| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let u32b = |v: u32| if little { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut out = vec![0xFF, 0xD8];
    out.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
    if let Some(t) = thumb {
        let mut tiff = if little { b"II".to_vec() } else { b"MM".to_vec() };
        tiff.extend(u16b(42));
        tiff.extend(u32b(8));
        // IFD0 at 8: one entry (Orientation = 1), next IFD at 8 + 2 + 12 + 4 = 26.
        tiff.extend(u16b(1));
        tiff.extend(u16b(0x0112));
        tiff.extend(u16b(3));
        tiff.extend(u32b(1));
        tiff.extend(u32b(1));
        tiff.extend(u32b(26));
        // IFD1 at 26: offset and length of the thumbnail, which follows at 26 + 2 + 24 + 4 = 56.
        tiff.extend(u16b(2));
        tiff.extend(u16b(0x0201));
        tiff.extend(u16b(4));
        tiff.extend(u32b(1));
        tiff.extend(u32b(56));
        tiff.extend(u16b(0x0202));
        tiff.extend(u16b(4));
        tiff.extend(u32b(1));
        tiff.extend(u32b(t.len() as u32));
        tiff.extend(u32b(0));
        tiff.extend_from_slice(t);
        let mut body = b"Exif\0\0".to_vec();
        body.extend(tiff);
        out.extend(segment(0xE1, &body));
    }
    let mut sof = vec![8];
    sof.extend(h.to_be_bytes());
    sof.extend(w.to_be_bytes());
    sof.extend([1, 1, 0x11, 0]);
    out.extend(segment(0xC0, &sof));
    out.extend(segment(0xDA, &[1, 1, 0, 0, 0x3F, 0]));
    out.extend([0x12, 0x34, 0xFF, 0xD9]);
    out
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// An MP4 with `image` in moov/udta/meta/ilst/covr/data, `meta` as ISO writes it (a full box) or as QuickTime
/// does (no version and flags), and an `mdat` after `moov`.
pub(crate) fn mp4_with_cover(image: &[u8], iso_meta: bool) -> Vec<u8> {
    let mut data = 13u32.to_be_bytes().to_vec();
    data.extend([0; 4]);
    data.extend_from_slice(image);
    let ilst = mp4_box(b"ilst", &mp4_box(b"covr", &mp4_box(b"data", &data)));
    let mut meta = if iso_meta { vec![0; 4] } else { Vec::new() };
    meta.extend(mp4_box(b"hdlr", &[0; 25]));
    meta.extend(ilst);
    let udta = mp4_box(b"udta", &mp4_box(b"meta", &meta));
    let mut moov = mp4_box(b"mvhd", &[0; 100]);
    moov.extend(mp4_box(b"trak", &[0; 40]));
    moov.extend(udta);
    let mut file = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
    file.extend(mp4_box(b"moov", &moov));
    file.extend(mp4_box(b"mdat", &[7; 64]));
    file
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A catalog with one library of `kind` over `root`, scanned.
fn catalog(dir: &Path, kind: LibraryKind, root: &Path) -> Arc<Catalog> {
    let flash = NorFile::open_or_create(&dir.join("flash.img"), 64 * 1024, 4096).unwrap();
    let mut s = State::new([7; 16]);
    s.libraries.push(Library { id: 1, kind, name: bounded("name", "Lib").unwrap() }).unwrap();
    s.folders.push(Folder { library: 1, path: bounded("path", root.to_str().unwrap()).unwrap() }).unwrap();
    let c = Catalog::open(dir, Handle::start(Store::format(flash).unwrap(), s));
    c.scan_now(1);
    c
}

fn id_of(c: &Catalog, file: &str) -> ItemId {
    c.items(1).iter().find(|i| i.file_name() == file).unwrap_or_else(|| panic!("{file} not listed")).id
}

#[test]
fn image_sizes_come_from_the_headers() {
    assert_eq!(image_info(&png(640, 480)), Some((Mime::Png, Some((640, 480)))));
    let j = jpeg(160, 120, Some(&jpeg(16, 12, None, true)), true);
    assert_eq!(image_info(&j), Some((Mime::Jpeg, Some((160, 120)))), "SOF after APP0 and APP1");
    // Cut before the SOF: a JPEG of unknown size, not a wrong size or a panic.
    assert_eq!(image_info(&j[..40]), Some((Mime::Jpeg, None)));
    assert_eq!(image_info(b"GIF89a\x01\0\x01\0"), None);
    assert_eq!(image_info(b""), None);
}

#[test]
fn exif_thumbnails_are_found_in_either_byte_order_and_bounded() {
    let thumb = jpeg(16, 12, None, true);
    for little in [true, false] {
        let j = jpeg(4000, 3000, Some(&thumb), little);
        let r = exif_thumbnail(&j).expect("thumbnail");
        assert_eq!(&j[r], &thumb[..], "little-endian {little}");
    }
    assert_eq!(exif_thumbnail(&jpeg(40, 30, None, true)), None, "no EXIF block");
    // A length that runs past the APP1 segment: no thumbnail, no panic.
    let mut j = jpeg(4000, 3000, Some(&thumb), true);
    let len_at = j.windows(2).position(|w| w == [0x02, 0x02]).unwrap() + 8;
    j[len_at..len_at + 4].copy_from_slice(&60_000u32.to_le_bytes());
    assert_eq!(exif_thumbnail(&j), None);
    // Every cut of a sound file answers without a panic.
    let j = jpeg(4000, 3000, Some(&thumb), false);
    for n in 0..j.len() {
        let _ = exif_thumbnail(&j[..n]);
        let _ = image_info(&j[..n]);
    }
}

#[test]
fn mp4_covr_is_found_in_place_with_iso_and_quicktime_meta() {
    let image = png(300, 300);
    for iso in [true, false] {
        let file = mp4_with_cover(&image, iso);
        let read = |at: u64, buf: &mut [u8]| {
            let at = (at as usize).min(file.len());
            let n = buf.len().min(file.len() - at);
            buf[..n].copy_from_slice(&file[at..at + n]);
            Ok(n)
        };
        let (start, len, mime) = mp4_cover(file.len() as u64, read).expect("covr");
        assert_eq!(&file[start as usize..(start + len) as usize], &image[..], "iso meta {iso}");
        assert_eq!(mime, Mime::Png);
    }
    // Every cut answers without a panic.
    let file = mp4_with_cover(&image, true);
    for n in 0..file.len() {
        let f = &file[..n];
        let _ = mp4_cover(n as u64, |at, buf| {
            let at = (at as usize).min(f.len());
            let k = buf.len().min(f.len() - at);
            buf[..k].copy_from_slice(&f[at..at + k]);
            Ok(k)
        });
    }
}

/// The MP3 seed with an ID3v2 tag holding a back cover and then a front cover, written by lofty.
fn mp3_with_pictures(path: &Path, back: &[u8], front: &[u8]) {
    use lofty::config::WriteOptions;
    use lofty::picture::{MimeType, Picture, PictureType};
    use lofty::tag::{Tag, TagExt, TagType};
    write(path, include_bytes!("../../fuzz/seeds/probe_audio/small.mp3"));
    let mut tag = Tag::new(TagType::Id3v2);
    tag.push_picture(Picture::unchecked(back.to_vec()).pic_type(PictureType::CoverBack).mime_type(MimeType::Jpeg).build());
    tag.push_picture(Picture::unchecked(front.to_vec()).pic_type(PictureType::CoverFront).mime_type(MimeType::Png).build());
    tag.save_to_path(path, WriteOptions::default()).unwrap();
}

#[test]
fn audio_covers_are_the_front_picture_else_the_album_folder() {
    let t = tempfile::tempdir().unwrap();
    let music = t.path().join("music");
    let front = png(500, 500);
    mp3_with_pictures(&music.join("Artist/Album/01 Tagged.mp3"), &jpeg(10, 10, None, true), &front);
    write(&music.join("Artist/Other/01 Plain.mp3"), include_bytes!("../../fuzz/seeds/probe_audio/small.mp3"));
    write(&music.join("Artist/Other/Folder.JPG"), &jpeg(200, 200, None, false));
    write(&music.join("Artist/Bare/01 Bare.mp3"), include_bytes!("../../fuzz/seeds/probe_audio/small.mp3"));
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = catalog(&data, LibraryKind::Music, &music);

    let tagged = c.cover(id_of(&c, "01 Tagged.mp3")).expect("embedded cover");
    assert_eq!(tagged.bytes().unwrap(), front, "the front cover, not the back one listed first");
    assert_eq!(tagged.info, CoverInfo { mime: Mime::Png, size: Some((500, 500)), origin: Origin::Embedded });
    let plain = c.cover(id_of(&c, "01 Plain.mp3")).expect("folder cover");
    assert_eq!(plain.info, CoverInfo { mime: Mime::Jpeg, size: Some((200, 200)), origin: Origin::File });
    assert_eq!(c.cover(id_of(&c, "01 Bare.mp3")), None);
    // The album of the tagged track has no cover file: its first track's picture.
    let album = c.items(1).iter().find(|i| i.file_name() == "01 Tagged.mp3").unwrap().episode.unwrap().season;
    assert_eq!(c.cover_info(album).map(|i| i.origin), Some(Origin::Embedded));
}

#[test]
fn video_covers_come_from_covr_then_beside_then_folders_up_to_the_library() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("films");
    write(&root.join("Tagged.mp4"), &mp4_with_cover(&jpeg(320, 240, None, true), true));
    write(&root.join("Beside.mp4"), b"\0\0\0\x10ftypisom\0\0\x02\0");
    write(&root.join("beside.PNG"), &png(100, 150));
    write(&root.join("poster.jpg"), &jpeg(600, 900, None, true));
    write(&root.join("Shelf/Film.mp4"), b"\0\0\0\x10ftypisom\0\0\x02\0");
    write(&root.join("Shelf/Deeper/Film.mp4"), b"\0\0\0\x10ftypisom\0\0\x02\0");
    write(&root.join("Shelf/Deeper/cover.jpg"), b"this is text named like a cover");
    write(&t.path().join("poster.jpg"), &jpeg(1, 1, None, true));
    let outside = t.path().join("outside");
    write(&outside.join("Alone.mp4"), b"\0\0\0\x10ftypisom\0\0\x02\0");
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = catalog(&data, LibraryKind::Movies, &root);

    let info = |name: &str| c.cover_info(id_of(&c, name));
    assert_eq!(info("Tagged.mp4"), Some(CoverInfo { mime: Mime::Jpeg, size: Some((320, 240)), origin: Origin::Embedded }));
    let tagged = c.cover(id_of(&c, "Tagged.mp4")).unwrap();
    assert!(matches!(tagged.picture, Picture::File { .. }), "read in place, not copied");
    assert_eq!(tagged.bytes().unwrap(), jpeg(320, 240, None, true));
    assert_eq!(info("Beside.mp4").and_then(|i| i.size), Some((100, 150)), "<name>.png beside, any case");
    // Shelf/ has no cover: the library folder's poster. Shelf/Deeper's cover.jpg is not an image: skipped.
    let films: Vec<_> = c.items(1).into_iter().filter(|i| i.file_name() == "Film.mp4").collect();
    assert_eq!(films.len(), 2);
    for f in films {
        assert_eq!(c.cover_info(f.id).and_then(|i| i.size), Some((600, 900)), "{}", f.path().display());
    }

    // A library whose folder has no cover never takes one from above it.
    let data2 = t.path().join("data2");
    std::fs::create_dir_all(&data2).unwrap();
    let c2 = catalog(&data2, LibraryKind::Movies, &outside);
    let alone = id_of(&c2, "Alone.mp4");
    assert_eq!(c2.cover_info(alone), None);
    // A cover added later is seen at the next ask (the folder's mtime is part of the memo's stamp); one over
    // the size cap is not served.
    write(&outside.join("cover.png"), &png(64, 64));
    assert_eq!(c2.cover_info(alone).and_then(|i| i.size), Some((64, 64)));
    std::fs::remove_file(outside.join("cover.png")).unwrap();
    let big = std::fs::File::create(outside.join("poster.png")).unwrap();
    big.set_len(FILE_CAP + 1).unwrap();
    assert_eq!(c2.cover_info(alone), None);
}

#[test]
fn shows_and_seasons_take_the_show_folder_poster() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("tv");
    write(&root.join("Show/Season 1/Show S01E01.mkv"), &[0x1A, 0x45, 0xDF, 0xA3, 0, 0, 0, 0]);
    write(&root.join("Show/Poster.png"), &png(680, 1000));
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = catalog(&data, LibraryKind::Shows, &root);
    let e = c.items(1)[0].episode.unwrap();
    // The scan learnt it: listings read it without touching the disk.
    assert_eq!(c.cover_known(e.show).and_then(|i| i.size), Some((680, 1000)));
    for id in [e.show, e.season, c.items(1)[0].id] {
        assert_eq!(c.cover_info(id).and_then(|i| i.size), Some((680, 1000)), "id {id}");
    }
}

#[test]
fn photos_offer_their_exif_thumbnail_else_themselves() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("photos");
    let thumb = jpeg(160, 120, None, true);
    write(&root.join("2024/with.jpg"), &jpeg(4000, 3000, Some(&thumb), false));
    write(&root.join("2024/without.jpg"), &jpeg(800, 600, None, true));
    write(&root.join("2024/shot.png"), &png(1024, 768));
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let c = catalog(&data, LibraryKind::Photos, &root);
    let with = c.cover(id_of(&c, "with.jpg")).unwrap();
    assert_eq!(with.info, CoverInfo { mime: Mime::Jpeg, size: Some((160, 120)), origin: Origin::ExifThumbnail });
    assert_eq!(with.bytes().unwrap(), thumb);
    let without = c.cover_info(id_of(&c, "without.jpg")).unwrap();
    assert_eq!((without.origin, without.size), (Origin::Photo, Some((800, 600))));
    assert_eq!(c.cover_info(id_of(&c, "shot.png")).map(|i| i.mime), Some(Mime::Png));
    // The album: its first photo's (title order is not the walk order; any of them has one).
    let album = c.items(1)[0].episode.unwrap().season;
    assert!(c.cover_info(album).is_some());
    assert_eq!(c.cover_info(999_999), None, "an id that names nothing");
}
