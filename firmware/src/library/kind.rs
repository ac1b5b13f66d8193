//! Media recognition: what a file is, from its extension and its first bytes (sans-IO).
//!
//! A file counts only when its extension names a media container *and* its magic bytes agree with the
//! family (a `.mp4` that holds text is not media). When the magic names another container of the same
//! family (a Matroska file called `.mp4`), the magic wins.

use crate::state::LibraryKind;

/// The broad kind of a media file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Media {
    Video,
    Audio,
    Photo,
}

/// Bytes the recogniser wants to see from the start of a file.
pub const MAGIC_LEN: usize = 16;

/// Which media kinds a library of this kind lists.
pub fn wanted(kind: LibraryKind) -> Media {
    match kind {
        LibraryKind::Movies | LibraryKind::Shows | LibraryKind::OtherVideos => Media::Video,
        LibraryKind::Music => Media::Audio,
        LibraryKind::Photos => Media::Photo,
    }
}

/// The container an extension claims, with its kind. `None` = not a media extension.
pub fn by_extension(ext: &[u8]) -> Option<(Media, &'static str)> {
    let ext = ext.to_ascii_lowercase();
    Some(match ext.as_slice() {
        b"mp4" | b"m4v" => (Media::Video, "mp4"),
        b"mov" => (Media::Video, "mov"),
        b"mkv" => (Media::Video, "mkv"),
        b"webm" => (Media::Video, "webm"),
        b"avi" => (Media::Video, "avi"),
        b"ts" | b"m2ts" | b"mts" => (Media::Video, "mpegts"),
        b"mpg" | b"mpeg" => (Media::Video, "mpeg"),
        b"mp3" => (Media::Audio, "mp3"),
        b"flac" => (Media::Audio, "flac"),
        b"m4a" => (Media::Audio, "mp4"),
        b"ogg" | b"oga" | b"opus" => (Media::Audio, "ogg"),
        b"wav" => (Media::Audio, "wav"),
        b"jpg" | b"jpeg" => (Media::Photo, "jpeg"),
        b"png" => (Media::Photo, "png"),
        b"gif" => (Media::Photo, "gif"),
        b"webp" => (Media::Photo, "webp"),
        _ => return None,
    })
}

/// The container the first bytes show, when they show one.
pub fn by_magic(head: &[u8]) -> Option<(Media, &'static str)> {
    let at = |off: usize, m: &[u8]| head.get(off..off + m.len()) == Some(m);
    // ISO/IEC 14496-12 §4.3: a file starts with a box; `ftyp` (or a `moov`/`free`/`mdat` in old QuickTime).
    if at(4, b"ftyp") {
        let brand = head.get(8..12).unwrap_or_default();
        return Some(match brand {
            b"M4A " | b"M4B " => (Media::Audio, "mp4"),
            b"qt  " => (Media::Video, "mov"),
            b"heic" | b"heix" | b"mif1" => (Media::Photo, "heic"),
            _ => (Media::Video, "mp4"),
        });
    }
    if at(4, b"moov") || at(4, b"mdat") || at(4, b"free") || at(4, b"wide") {
        return Some((Media::Video, "mov"));
    }
    // RFC 8794 §8: the EBML header element id 0x1A45DFA3 (Matroska and WebM).
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        let webm = head.windows(4).any(|w| w == b"webm");
        return Some((Media::Video, if webm { "webm" } else { "mkv" }));
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Some((Media::Video, "avi"));
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some((Media::Audio, "wav"));
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some((Media::Photo, "webp"));
    }
    // ISO/IEC 13818-1: transport packets start with sync byte 0x47 every 188 bytes (only the first is seen).
    if at(0, &[0x47]) && !head.is_empty() {
        return Some((Media::Video, "mpegts"));
    }
    if at(0, &[0x00, 0x00, 0x01, 0xBA]) {
        return Some((Media::Video, "mpeg"));
    }
    if at(0, b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        return Some((Media::Audio, "mp3"));
    }
    if at(0, b"fLaC") {
        return Some((Media::Audio, "flac"));
    }
    if at(0, b"OggS") {
        return Some((Media::Audio, "ogg"));
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Some((Media::Photo, "jpeg"));
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some((Media::Photo, "png"));
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Some((Media::Photo, "gif"));
    }
    None
}

/// Decide from the extension and the first bytes. `None` = not media, or not what its extension says.
pub fn recognise(ext: &[u8], head: &[u8]) -> Option<(Media, &'static str)> {
    let (claimed, container) = by_extension(ext)?;
    match by_magic(head) {
        Some((seen, c)) if seen == claimed => Some((seen, c)),
        // An MP4-family audio file called .mp4 (or video called .m4a) keeps the extension's kind.
        Some((_, c)) if c == container && c == "mp4" => Some((claimed, c)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_and_magic_must_agree() {
        let mp4 = b"\0\0\0\x20ftypisom\0\0\x02\0";
        assert_eq!(recognise(b"mp4", mp4), Some((Media::Video, "mp4")));
        assert_eq!(recognise(b"MP4", mp4), Some((Media::Video, "mp4")));
        let mkv = [0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01];
        assert_eq!(recognise(b"mkv", &mkv), Some((Media::Video, "mkv")));
        // A Matroska file named .mp4 is served as what it is.
        assert_eq!(recognise(b"mp4", &mkv), Some((Media::Video, "mkv")));
        // Text with a video extension is not media.
        assert_eq!(recognise(b"mkv", b"hello, this is a text file"), None);
        assert_eq!(recognise(b"mp4", b""), None);
        // Not a media extension at all.
        assert_eq!(recognise(b"txt", mp4), None);
        // A JPEG called .mp3 is not audio.
        assert_eq!(recognise(b"mp3", &[0xFF, 0xD8, 0xFF, 0xE0]), None);
        assert_eq!(
            recognise(b"jpg", &[0xFF, 0xD8, 0xFF, 0xE0]),
            Some((Media::Photo, "jpeg"))
        );
        assert_eq!(
            recognise(b"flac", b"fLaC\0\0\0\x22"),
            Some((Media::Audio, "flac"))
        );
    }
}
