//! Covers: the picture shown for an item or a group (Plex's `thumb`, DLNA's `upnp:albumArtURI`).
//!
//! Where a cover comes from, first found wins:
//!
//! - an audio or video item: the picture embedded in its tags (audio through lofty, front cover first; MP4 and
//!   M4A from the `covr` atom, read in place), else `<name>.jpg` (`.jpeg`, `.png`) beside the file, else
//!   `poster`, `folder` or `cover` (`.jpg`, `.jpeg`, `.png`; any case) in its folder or up to two folders up,
//!   never above its library folder (`Show/poster.jpg` for `Show/Season 1/e01.mkv`);
//! - a photo: the thumbnail in its EXIF block, else the photo itself when it is a JPEG or PNG;
//! - a group (show, season, artist, album, photo album): a cover file in the folder of its first item (or up),
//!   else the first of its first few items that has a cover.
//!
//! Nothing is decoded: a cover is served as the bytes it is stored as, with its width and height read from the
//! image header (JPEG SOF, PNG IHDR) so a DLNA client can be told `JPEG_TN` (≤ 160×160) from `JPEG_SM`.
//! Bounded: an embedded picture larger than [`READ_CAP`] is not read; a cover file or photo larger than
//! [`FILE_CAP`] is not served; at most [`HEAD_CAP`] bytes are read to find an image's size.
//!
//! What is remembered ([`Covers`]): per id, whether it has a cover, where (a tag, the EXIF block, or a file
//! path shared between the items of a folder) and its size, stamped with the item's size and mtime and its
//! folders' mtimes, so a cover added, changed or removed is seen on the next ask. Never the picture bytes.
//!
//! Layouts parsed here (all big-endian unless the TIFF header says `II`):
//!
//! ```text
//! JPEG (ITU-T T.81 B.1.1):  FF D8 (SOI), then segments  FF <marker> <len u16, counts itself> <body>
//!   SOFn (C0–C3, C5–C7, C9–CB, CD–CF; B.2.2): body = precision u8, height u16, width u16, ...
//!   APP1 "Exif\0\0" (CIPA DC-008 §4.5.4): body = "Exif\0\0" then a TIFF file (offsets count from its start):
//!     offset 0  "II" (little-endian) or "MM" (big-endian)    offset 2  42 u16    offset 4  IFD0 offset u32
//!     IFD (TIFF 6.0 §2): count u16, count × 12-byte entries (tag u16, type u16, n u32, value u32),
//!                        then the next IFD's offset u32 — IFD0's next is IFD1, the thumbnail's
//!     IFD1 tags 0x0201 JPEGInterchangeFormat (offset of the thumbnail's SOI) and 0x0202 its length
//!   SOS (DA): the image data follows; no SOF before it means no size.
//! PNG (PNG spec §5.2, §11.2.2):  89 'P' 'N' 'G' 0D 0A 1A 0A, then the IHDR chunk:
//!   length u32 (13), "IHDR", width u32, height u32, ...
//! MP4 covr (QuickTime File Format "Metadata"; iTunes `ilst`):
//!   moov ─ udta ─ meta (ISO full box: 4 bytes version+flags; QuickTime: none) ─ ilst ─ covr ─ data
//!   data body: type indicator u32 (13 JPEG, 14 PNG), locale u32, then the image bytes
//! ```

use super::kind::Media;
use super::probe::Bounded;
use super::{Catalog, Group, Item, ItemId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The largest embedded picture read into memory (a tag's picture or an EXIF thumbnail); a larger one counts
/// as none.
pub const READ_CAP: usize = 2 * 1024 * 1024;
/// The largest cover file (or photo, or picture inside an MP4) served; a larger one counts as none.
pub const FILE_CAP: u64 = 16 * 1024 * 1024;
/// Bytes read from the start of an image to find its width and height (a JPEG's EXIF and other APPn segments
/// come before its SOF and are at most 64 KiB each).
pub const HEAD_CAP: usize = 256 * 1024;
/// Entries of one folder looked at for a cover file.
const DIR_CAP: usize = 4096;
/// Folders looked at above an item's own for a cover file (season folder, show folder).
const UP_LEVELS: usize = 2;
/// Items of a group tried for an embedded cover when its folders have none.
const GROUP_TRIES: usize = 4;
/// Boxes looked at inside `moov` while looking for `covr`.
const MP4_BOX_CAP: u32 = 1024;
/// Base names of cover files, in order of preference.
const COVER_NAMES: [&str; 3] = ["poster", "folder", "cover"];
/// Extensions of cover files.
const COVER_EXTS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The image formats served as covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mime {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
}

impl Mime {
    /// The media type for `Content-Type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mime::Jpeg => "image/jpeg",
            Mime::Png => "image/png",
        }
    }

    /// The format the first bytes show (JPEG's SOI, PNG's signature); None for anything else.
    pub fn sniff(head: &[u8]) -> Option<Mime> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Mime::Jpeg)
        } else if head.starts_with(PNG_SIGNATURE) {
            Some(Mime::Png)
        } else {
            None
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Where a cover was found (DLNA uses it to tell a real thumbnail from a full-size picture).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A picture in the item's tags (ID3v2 APIC, FLAC PICTURE, Vorbis METADATA_BLOCK_PICTURE, MP4 `covr`).
    Embedded,
    /// A cover file: `<name>.jpg` beside the item, or `poster`/`folder`/`cover` in its folder or above.
    File,
    /// The thumbnail in a photo's EXIF block.
    ExifThumbnail,
    /// The photo itself (it has no EXIF thumbnail).
    Photo,
}

/// What is known about a cover without its bytes: enough to list it (DLNA's profile needs the size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoverInfo {
    /// JPEG or PNG.
    pub mime: Mime,
    /// Width and height in pixels, when the image header says.
    pub size: Option<(u32, u32)>,
    /// Where it was found.
    pub origin: Origin,
}

/// The bytes of a cover: in memory (read from a tag), or a range of a file (a cover file, a photo, a picture
/// inside an MP4) for the stream room's file body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picture {
    /// The image bytes, at most [`READ_CAP`].
    Memory(Vec<u8>),
    /// `len` bytes of `path` from `start`; `len` at most [`FILE_CAP`].
    File { path: PathBuf, start: u64, len: u64 },
}

/// A cover ready to send: what it is and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cover {
    /// Format, size and origin.
    pub info: CoverInfo,
    /// The bytes, or where they are.
    pub picture: Picture,
    /// Size and mtime (ns) of the file the bytes come from: the validator of [`Cover::etag`].
    pub source: (u64, i64),
}

impl Cover {
    /// A strong ETag (RFC 9110 §8.8.3) that changes when the file the cover comes from changes.
    pub fn etag(&self) -> String {
        let (start, len) = match &self.picture {
            Picture::Memory(b) => (0, b.len() as u64),
            Picture::File { start, len, .. } => (*start, *len),
        };
        format!("\"c{:x}-{:x}-{:x}-{:x}\"", self.source.0, self.source.1 as u64, start, len)
    }

    /// The bytes, read now for a file range (at most [`FILE_CAP`]).
    pub fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match &self.picture {
            Picture::Memory(b) => Ok(b.clone()),
            Picture::File { path, start, len } => read_range(path, *start, (*len).min(FILE_CAP)),
        }
    }
}

/// The width and height an image header gives (JPEG SOF, PNG IHDR), with the format; None when `head` is
/// neither. The size is None when the header is cut before it.
pub fn image_info(head: &[u8]) -> Option<(Mime, Option<(u32, u32)>)> {
    let mime = Mime::sniff(head)?;
    let size = match mime {
        Mime::Jpeg => jpeg_size(head),
        Mime::Png => png_size(head),
    };
    Some((mime, size))
}

/// PNG §11.2.2: width and height from IHDR, the first chunk.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}

/// The JPEG's segments before its scan: `(marker, body range)` each (T.81 B.1.1.2–B.1.1.4). Stops at SOS,
/// at EOI, at a cut segment or at bytes that are not a marker.
fn jpeg_segments(b: &[u8]) -> impl Iterator<Item = (u8, Range<usize>)> + '_ {
    let mut at = if b.starts_with(&[0xFF, 0xD8]) { 2 } else { b.len() };
    std::iter::from_fn(move || {
        if b.get(at) != Some(&0xFF) {
            return None;
        }
        // B.1.1.2: any number of 0xFF fill bytes may precede a marker.
        while b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = *b.get(at + 1)?;
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            // Standalone markers (no length).
            at += 2;
            return Some((marker, at..at));
        }
        if marker == 0xD9 || marker == 0xDA || marker == 0x00 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes(b.get(at + 2..at + 4)?.try_into().ok()?));
        if len < 2 || at + 2 + len > b.len() {
            return None;
        }
        let body = at + 4..at + 2 + len;
        at += 2 + len;
        Some((marker, body))
    })
}

/// T.81 B.2.2: the frame header's height and width, from the first SOFn.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let is_sof = |m: u8| (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC);
    let (_, body) = jpeg_segments(b).find(|(m, _)| is_sof(*m))?;
    let body = &b[body];
    let h = u32::from(u16::from_be_bytes(body.get(1..3)?.try_into().ok()?));
    let w = u32::from(u16::from_be_bytes(body.get(3..5)?.try_into().ok()?));
    (w > 0 && h > 0).then_some((w, h))
}

/// The range of the EXIF thumbnail (a whole JPEG: IFD1's JPEGInterchangeFormat and its length) inside
/// `jpeg`, when its APP1 segment has one that lies inside the segment and starts with SOI (layout in the
/// module doc).
pub fn exif_thumbnail(jpeg: &[u8]) -> Option<Range<usize>> {
    let (_, body) = jpeg_segments(jpeg).find(|(m, r)| *m == 0xE1 && jpeg[r.clone()].starts_with(b"Exif\0\0"))?;
    let tiff = &jpeg[body.start + 6..body.end];
    let le = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }).ok()
    };
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd0 = u32_at(4)?;
    let ifd0_count = usize::from(u16_at(ifd0)?);
    let ifd1 = u32_at(ifd0.checked_add(2 + 12 * ifd0_count)?)?;
    if ifd1 == 0 || ifd1 == ifd0 {
        return None;
    }
    let (mut offset, mut len) = (None, None);
    for e in 0..usize::from(u16_at(ifd1)?) {
        let entry = ifd1.checked_add(2 + 12 * e)?;
        match u16_at(entry)? {
            0x0201 => offset = u32_at(entry + 8),
            0x0202 => len = u32_at(entry + 8),
            _ => {}
        }
    }
    let (offset, len) = (offset?, len?);
    let thumb = tiff.get(offset..offset.checked_add(len)?)?;
    if len == 0 || len > READ_CAP || !thumb.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let start = body.start + 6 + offset;
    Some(start..start + len)
}

/// The picture in an MP4's `covr` atom (layout in the module doc), read in place: `(offset, length, format)`.
/// Reads 16 bytes per box header through `read_at` (offset, buffer → bytes read), never a box body other than
/// the `data` header and the image's first bytes.
pub fn mp4_cover(
    file_len: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Option<(u64, u64, Mime)> {
    let mut walk = super::mp4::Walk::new(file_len);
    let mut step = walk.want();
    let (moov_at, moov_len) = loop {
        match step {
            super::mp4::Step::Header { at } => {
                let mut h = [0u8; 16];
                let n = read_at(at, &mut h).ok()?;
                step = walk.feed(&h[..n]).ok()?;
            }
            super::mp4::Step::Moov { at, len } => break (at, len),
        }
    };
    let mut budget = MP4_BOX_CAP;
    let mut find = |read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>, inside: Range<u64>, kind: &[u8; 4]| {
        find_box(read_at, &mut budget, inside, kind)
    };
    let udta = find(&mut read_at, moov_at..moov_at + moov_len, b"udta")?;
    let meta = find(&mut read_at, udta, b"meta")?;
    // ISO 14496-12 §8.11.1: meta is a full box (4 bytes of version and flags); QuickTime's is not: its first
    // child (hdlr) starts at once.
    let mut probe = [0u8; 8];
    let n = read_at(meta.start, &mut probe).ok()?;
    let children = if n == 8 && &probe[4..8] == b"hdlr" { meta } else { meta.start + 4..meta.end };
    let ilst = find(&mut read_at, children, b"ilst")?;
    let covr = find(&mut read_at, ilst, b"covr")?;
    let data = find(&mut read_at, covr, b"data")?;
    let mut head = [0u8; 16];
    let n = read_at(data.start, &mut head).ok()?;
    let image = data.start + 8..data.end;
    let mime = Mime::sniff(head.get(8..n)?)?;
    let len = image.end.checked_sub(image.start)?;
    (len > 0 && len <= FILE_CAP).then_some((image.start, len, mime))
}

/// The body of the first box of type `kind` among the boxes that fill `inside`, by their headers (16 bytes read
/// each); None when there is none, a box overruns `inside`, or `budget` boxes have been looked at.
fn find_box(
    read_at: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
    budget: &mut u32,
    inside: Range<u64>,
    kind: &[u8; 4],
) -> Option<Range<u64>> {
    let mut at = inside.start;
    while at + 8 <= inside.end {
        *budget = budget.checked_sub(1)?;
        let mut h = [0u8; 16];
        let n = read_at(at, &mut h).ok()?;
        let head = super::mp4::header(&h[..n]).ok()?;
        let size = head.size.unwrap_or(inside.end - at);
        if size > inside.end - at {
            return None;
        }
        if &head.kind == kind {
            return Some(at + u64::from(head.header_len)..at + size);
        }
        at += size;
    }
    None
}

/// An embedded picture of an audio file through lofty (front cover first, else the first picture), bounded
/// by [`READ_CAP`]; MP4/M4A go through [`mp4_cover`] instead.
fn audio_picture(path: &Path, container: &str) -> Option<Vec<u8>> {
    use lofty::file::{AudioFile, TaggedFileExt};
    use lofty::picture::PictureType;
    let file = std::fs::File::open(path).ok()?;
    let mut r = Bounded::new(std::io::BufReader::with_capacity(16 * 1024, file), (READ_CAP + HEAD_CAP) as u64);
    // lofty keeps its options per thread; the probe sets its own before each probe.
    lofty::config::apply_global_options(lofty::config::GlobalOptions::new().allocation_limit(READ_CAP));
    let o = lofty::config::ParseOptions::new()
        .read_cover_art(true)
        .read_properties(false)
        .parsing_mode(lofty::config::ParsingMode::Relaxed);
    let tagged: lofty::file::TaggedFile = match container {
        "mp3" => lofty::mpeg::MpegFile::read_from(&mut r, o).ok()?.into(),
        "flac" => lofty::flac::FlacFile::read_from(&mut r, o).ok()?.into(),
        "wav" => lofty::iff::wav::WavFile::read_from(&mut r, o).ok()?.into(),
        "ogg" => {
            let mut first = [0u8; 64];
            let n = r.read(&mut first).ok()?;
            r.seek(SeekFrom::Start(0)).ok()?;
            if !first[..n].windows(7).any(|w| w == b"\x01vorbis") {
                // Opus is left to the probe's guarded reader (see probe::opus_head_is_sound); no cover read.
                return None;
            }
            lofty::ogg::VorbisFile::read_from(&mut r, o).ok()?.into()
        }
        _ => return None,
    };
    let pictures = || tagged.tags().iter().flat_map(|t| t.pictures().iter());
    let front = pictures().find(|p| p.pic_type() == PictureType::CoverFront);
    let picture = front.or_else(|| pictures().next())?;
    let data = picture.data();
    (data.len() <= READ_CAP && Mime::sniff(data).is_some()).then(|| data.to_vec())
}

fn read_range(path: &Path, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(start))?;
    let mut out = Vec::with_capacity(len.min(FILE_CAP) as usize);
    f.take(len).read_to_end(&mut out)?;
    Ok(out)
}

fn read_at(f: &mut std::fs::File, at: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    f.seek(SeekFrom::Start(at))?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn stamp_of(meta: &std::fs::Metadata) -> (u64, i64) {
    (meta.len(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
}

/// A cover file served whole: its format and size from its first bytes. None when it is not a JPEG or PNG or
/// is larger than [`FILE_CAP`].
fn cover_file(path: &Path, origin: Origin) -> Option<Cover> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() == 0 || meta.len() > FILE_CAP {
        return None;
    }
    let head = read_range(path, 0, HEAD_CAP as u64).ok()?;
    let (mime, size) = image_info(&head)?;
    Some(Cover {
        info: CoverInfo { mime, size, origin },
        picture: Picture::File { path: path.to_path_buf(), start: 0, len: meta.len() },
        source: stamp_of(&meta),
    })
}

/// The picture embedded in an item's file (audio tags, MP4 `covr`), or a photo's EXIF thumbnail (else the
/// photo itself).
fn embedded(item: &Item) -> Option<Cover> {
    let path = item.path();
    let meta = std::fs::metadata(path).ok()?;
    let source = stamp_of(&meta);
    let from_memory = |bytes: Vec<u8>, origin: Origin| {
        let (mime, size) = image_info(&bytes)?;
        Some(Cover { info: CoverInfo { mime, size, origin }, picture: Picture::Memory(bytes), source })
    };
    match (item.media, &*item.container) {
        (Media::Video | Media::Audio, "mp4" | "mov") => {
            let mut f = std::fs::File::open(path).ok()?;
            let (start, len, _) = mp4_cover(meta.len(), |at, buf| read_at(&mut f, at, buf))?;
            let mut head = vec![0u8; HEAD_CAP.min(len as usize)];
            let n = read_at(&mut f, start, &mut head).ok()?;
            let (mime, size) = image_info(&head[..n])?;
            let info = CoverInfo { mime, size, origin: Origin::Embedded };
            Some(Cover { info, picture: Picture::File { path: path.to_path_buf(), start, len }, source })
        }
        (Media::Audio, c) => from_memory(audio_picture(path, c)?, Origin::Embedded),
        (Media::Photo, "jpeg") => {
            // APP1 is the first segment after SOI or after APP0, at most 64 KiB.
            let head = read_range(path, 0, HEAD_CAP as u64).ok()?;
            match exif_thumbnail(&head) {
                Some(r) => from_memory(head[r].to_vec(), Origin::ExifThumbnail),
                None => cover_file(path, Origin::Photo),
            }
        }
        (Media::Photo, "png") => cover_file(path, Origin::Photo),
        _ => None,
    }
}

/// The names of a folder's files that could be covers (lower-cased name → the name as stored), from at most
/// [`DIR_CAP`] entries.
fn folder_images(dir: &Path) -> HashMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return HashMap::new() };
    entries
        .take(DIR_CAP)
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let lower = std::str::from_utf8(name.as_bytes()).ok()?.to_ascii_lowercase();
            let (_, ext) = lower.rsplit_once('.')?;
            COVER_EXTS.contains(&ext).then(|| (lower.clone(), e.path()))
        })
        .collect()
}

/// `<stem>.jpg` (`.jpeg`, `.png`) beside the media file, any case.
fn beside(item: &Item, images: &HashMap<String, PathBuf>) -> Option<Cover> {
    let name = item.path().file_stem()?.to_str()?.to_ascii_lowercase();
    COVER_EXTS
        .iter()
        .filter_map(|ext| images.get(&format!("{name}.{ext}")))
        .find_map(|p| cover_file(p, Origin::File))
}

/// `poster`, `folder` or `cover` in one folder, in that order.
fn named_cover(images: &HashMap<String, PathBuf>) -> Option<Cover> {
    COVER_NAMES
        .iter()
        .flat_map(|n| COVER_EXTS.iter().map(move |e| format!("{n}.{e}")))
        .filter_map(|name| images.get(&name))
        .find_map(|p| cover_file(p, Origin::File))
}

/// The folders looked at for a cover file of `path`: its own and up to [`UP_LEVELS`] above, never above
/// `root` (its library folder); only its own when the root is unknown.
fn folders_up(path: &Path, root: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        out.push(d.to_path_buf());
        match root {
            Some(r) if d != r && d.starts_with(r) && out.len() <= UP_LEVELS => dir = d.parent(),
            _ => break,
        }
    }
    out
}

/// What the memo keeps per id.
#[derive(Clone, Debug)]
struct Known {
    /// Hash of the item's (or group's first item's) size and mtime and its folders' mtimes.
    stamp: u64,
    /// The cover, without bytes; the path when it is a file (shared by the items of a folder).
    found: Option<(CoverInfo, Option<Arc<Path>>)>,
}

/// The memo of covers by id (see the module doc): a few dozen bytes per id asked about, no picture bytes.
#[derive(Default)]
pub struct Covers {
    memo: Mutex<HashMap<ItemId, Known>>,
}

impl Covers {
    /// Forget every id not in `live` (after a scan removed items or groups).
    pub fn retain(&self, live: impl Fn(ItemId) -> bool) {
        self.memo.lock().unwrap().retain(|id, _| live(*id));
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.memo.lock().unwrap().len()
    }

    /// Nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The stamp of an item's cover: its size and mtime and the mtimes of the folders looked at.
fn stamp(item: &Item, dirs: &[PathBuf]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (item.id, item.size, item.mtime_ns).hash(&mut h);
    for d in dirs {
        std::fs::metadata(d).map(|m| stamp_of(&m)).ok().hash(&mut h);
    }
    h.finish()
}

impl Catalog {
    /// The cover of an item or a group (see the module doc), with its bytes or where they are. Reads files:
    /// call it off the async runtime.
    pub fn cover(&self, id: ItemId) -> Option<Cover> {
        let (cover, stamp) = self.find_cover(id)?;
        let found = cover.as_ref().map(|c| {
            let path = match &c.picture {
                Picture::File { path, .. } => Some(Arc::from(path.as_path())),
                Picture::Memory(_) => None,
            };
            (c.info, path)
        });
        self.covers.memo.lock().unwrap().insert(id, Known { stamp, found });
        cover
    }

    /// What [`Catalog::cover`] would find, without the bytes: remembered per id until the item or its folders
    /// change (a few stats per ask then). For listings: whether to name a thumbnail, and its profile.
    pub fn cover_info(&self, id: ItemId) -> Option<CoverInfo> {
        let (item, dirs) = self.cover_subject(id)?;
        let stamp = stamp(&item, &dirs);
        if let Some(k) = self.covers.memo.lock().unwrap().get(&id)
            && k.stamp == stamp
        {
            return k.found.as_ref().map(|(info, _)| *info);
        }
        self.cover(id).map(|c| c.info)
    }

    /// The item whose folders (and file) decide an id's cover, and those folders: the item itself, or a
    /// group's first item.
    fn cover_subject(&self, id: ItemId) -> Option<(Item, Vec<PathBuf>)> {
        let item = match self.item(id) {
            Some(i) => i,
            None => self.episodes(self.group(id)?.id).into_iter().next()?,
        };
        let s = self.state().snapshot();
        let root = super::root_of(&s, item.library, item.path());
        let dirs = folders_up(item.path(), root.as_deref());
        Some((item, dirs))
    }

    /// The cover now, and the stamp it was found under. None when the id names nothing.
    fn find_cover(&self, id: ItemId) -> Option<(Option<Cover>, u64)> {
        let (first, dirs) = self.cover_subject(id)?;
        let stamp = stamp(&first, &dirs);
        let cover = match self.item(id) {
            Some(item) => item_cover(&item, &dirs),
            None => self.group(id).and_then(|g| self.group_cover(&g, &dirs)),
        };
        Some((cover, stamp))
    }

    /// A group's cover: a cover file in its first item's folders, else the first of its first items with one.
    fn group_cover(&self, g: &Group, dirs: &[PathBuf]) -> Option<Cover> {
        dirs.iter().find_map(|d| named_cover(&folder_images(d))).or_else(|| {
            self.episodes(g.id).iter().take(GROUP_TRIES).find_map(embedded)
        })
    }
}

/// An item's cover: embedded, else `<name>.jpg` beside it, else a cover file in its folders.
fn item_cover(item: &Item, dirs: &[PathBuf]) -> Option<Cover> {
    if let Some(c) = embedded(item) {
        return Some(c);
    }
    if item.media == Media::Photo {
        return None;
    }
    let own = dirs.first().map(|d| folder_images(d)).unwrap_or_default();
    beside(item, &own)
        .or_else(|| named_cover(&own))
        .or_else(|| dirs.iter().skip(1).find_map(|d| named_cover(&folder_images(d))))
}

#[cfg(test)]
#[path = "art_tests.rs"]
mod tests;
