//! Duration and codecs from container headers, each read within a fixed budget so that no file, however
//! crafted, can make a probe allocate or read more than a few MiB (review finding R-F1).
//!
//! - MP4/QuickTime: [`super::mp4`] walks the top-level boxes by their headers and reads `moov` only, at most
//!   [`super::mp4::MOOV_BUDGET`].
//! - Matroska/WebM: [`super::matroska`] reads the EBML header, SeekHead, Info and Tracks only (never a
//!   Cluster), each at most [`super::matroska::ELEMENT_BUDGET`], at most [`super::matroska::READ_BUDGET`] in
//!   all.
//! - Audio (MP3, FLAC, Ogg Vorbis/Opus, M4A, WAV) through `lofty`: the tags (ID3v2/ID3v1/APE, Vorbis comments,
//!   MP4 `ilst`, RIFF INFO) and the stream properties (MP3: the first frame and its Xing/VBRI header; FLAC:
//!   STREAMINFO), never the audio frames. lofty refuses any single allocation above its allocation limit
//!   ([`AUDIO_ALLOCATION_LIMIT`], set on the probing thread before each probe) and reads through [`Bounded`],
//!   which fails every read past [`AUDIO_READ_BUDGET`] bytes.
//!
//! Only headers are read, never whole files. [`probe_bytes`] is the same over a byte slice (the fuzz targets).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// lofty's limit for one allocation: bytes for a tag or an atom, entries for a table (an MP4 `stts` entry is 8
/// bytes, so at most 64 MiB are reserved for one, and only what [`AUDIO_READ_BUDGET`] lets in is filled). Its
/// default is 16 MiB; an ID3v2 tag (cover art included) larger than 8 MiB is not read.
pub const AUDIO_ALLOCATION_LIMIT: usize = 8 * 1024 * 1024;

/// All bytes one audio probe may read (tags without pictures and the first frames are a few KiB; a tag up to
/// the allocation limit fits twice).
pub const AUDIO_READ_BUDGET: u64 = 16 * 1024 * 1024;

/// What a file's headers say about its playback: duration, codecs, and for audio the tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probed {
    /// Playing time in milliseconds, when the headers say.
    pub duration_ms: Option<u64>,
    /// Codec of the first video track as the container names it.
    pub video_codec: Option<String>,
    /// Codec of the first audio track as the container names it.
    pub audio_codec: Option<String>,
    /// What an audio file's tags say (None: not audio, no tags, or not read this scan).
    pub tags: Option<Tags>,
}

/// A track's tags, as the music shelves use them. Empty strings are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    /// The track title tag.
    pub title: Option<String>,
    /// The album artist when the file names one (so a compilation stays one album), else the track artist.
    pub artist: Option<String>,
    /// The album tag.
    pub album: Option<String>,
    /// Track number on its disc.
    pub track: Option<u16>,
    /// Disc number of a multi-disc album.
    pub disc: Option<u16>,
    /// The year of the date tag (0 counts as none).
    pub year: Option<u16>,
}

/// Read what the container's headers say. Failures give an empty [`Probed`] (the file is still listed).
pub fn probe(file: File, size: u64, container: &str, media: super::kind::Media) -> Probed {
    probe_source(BufReader::with_capacity(16 * 1024, file), size, container, media)
}

/// [`probe`] over bytes in memory: what the fuzz targets drive.
pub fn probe_bytes(bytes: &[u8], container: &str, media: super::kind::Media) -> Probed {
    probe_source(std::io::Cursor::new(bytes), bytes.len() as u64, container, media)
}

fn probe_source<R: Read + Seek>(mut r: R, size: u64, container: &str, media: super::kind::Media) -> Probed {
    let got = match (media, container) {
        (super::kind::Media::Audio, _) => audio_headers(Bounded::new(r, AUDIO_READ_BUDGET), container),
        (_, "mp4" | "mov") => super::mp4::read(size, |at, buf| read_at(&mut r, at, buf)).ok().map(|m| Probed {
            duration_ms: m.duration_ms,
            video_codec: m.video.and_then(|c| mp4_codec(&c)),
            audio_codec: m.audio.and_then(|c| mp4_codec(&c)),
            tags: None,
        }),
        (_, "mkv" | "webm") => super::matroska::read(size, |at, buf| read_at(&mut r, at, buf)).ok().map(|v| Probed {
            duration_ms: v.duration_ms,
            video_codec: v.video.as_deref().map(matroska_codec),
            audio_codec: v.audio.as_deref().map(matroska_codec),
            tags: None,
        }),
        _ => None,
    };
    got.unwrap_or_default()
}

/// Fill `buf` from offset `at` (fewer bytes only at the end of the source).
fn read_at<R: Read + Seek>(r: &mut R, at: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    r.seek(SeekFrom::Start(at))?;
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader that fails every read once `budget` bytes have been read through it (seeks are free: lofty skips
/// audio frames and pictures by seeking).
pub struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R> Bounded<R> {
    /// `inner`, readable for `budget` bytes in all.
    pub fn new(inner: R, budget: u64) -> Bounded<R> {
        Bounded { inner, left: budget }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("the probe's read budget is spent"));
        }
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Bounded<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// ISO/IEC 14496-15 and friends: sample entry fourcc → the codec names Plex clients know (None for a fourcc
/// that is not printable ASCII).
fn mp4_codec(fourcc: &[u8; 4]) -> Option<String> {
    let text = std::str::from_utf8(fourcc).ok().filter(|t| t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))?;
    let known = match text {
        "avc1" | "avc3" => "h264",
        "hev1" | "hvc1" => "hevc",
        "vp09" => "vp9",
        "av01" => "av1",
        "mp4a" => "aac",
        "Opus" => "opus",
        "ac-3" => "ac3",
        "ec-3" => "eac3",
        other => return Some(other.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()),
    };
    Some(known.into())
}

/// An audio file's tags and properties (`container` as [`super::kind`] names it; M4A is "mp4").
///
/// Each container goes to its own lofty reader rather than through `lofty::probe::Probe`, which dispatches to
/// every format lofty knows (AIFF, APE, Musepack, WavPack, Speex, ADTS AAC...): linking only the five readers the
/// library lists keeps 50 KB of code out of the static binary (x86_64 musl: 5,408,928 → 5,358,592 bytes).
/// Ogg carries Vorbis or Opus, told apart by the first packet's magic (RFC 7845 §5.1 "OpusHead"; Vorbis I
/// spec §4.2.1, packet type 1 then "vorbis"); Speex in Ogg is listed without tags.
fn audio_headers<R: Read + Seek>(mut r: Bounded<R>, container: &str) -> Option<Probed> {
    use lofty::file::{AudioFile, TaggedFile};
    // lofty keeps its global options per thread.
    lofty::config::apply_global_options(
        lofty::config::GlobalOptions::new().allocation_limit(AUDIO_ALLOCATION_LIMIT),
    );
    let o = audio_options();
    let tagged: TaggedFile = match container {
        "mp3" => lofty::mpeg::MpegFile::read_from(&mut r, o).ok()?.into(),
        "flac" => lofty::flac::FlacFile::read_from(&mut r, o).ok()?.into(),
        "wav" => lofty::iff::wav::WavFile::read_from(&mut r, o).ok()?.into(),
        "m4a" | "mp4" => lofty::mp4::Mp4File::read_from(&mut r, o).ok()?.into(),
        _ => {
            let mut first = [0u8; 64];
            let n = r.read(&mut first).ok()?;
            r.rewind().ok()?;
            let first = &first[..n];
            let has = |magic: &[u8]| first.windows(magic.len()).any(|w| w == magic);
            if has(b"OpusHead") {
                if !opus_head_is_sound(&mut r)? {
                    return None;
                }
                lofty::ogg::OpusFile::read_from(&mut r, o).ok()?.into()
            } else if has(b"\x01vorbis") {
                lofty::ogg::VorbisFile::read_from(&mut r, o).ok()?.into()
            } else {
                return None;
            }
        }
    };
    Some(from_tagged(&tagged))
}

/// The first Ogg page (RFC 3533 §6: 27-byte header, `page_segments` at byte 26, then the segment table) must carry
/// the Opus identification header alone (RFC 7845 §3) with a non-zero output channel count (RFC 7845 §5.1: "MUST
/// NOT be zero"; byte 9 of the packet). lofty 0.25.5 `expect`s a channel mask for the count it reads there
/// (ogg/opus/properties.rs:132) and aborts the process on 0: such a file is refused here, before lofty sees it
/// (found by the probe_audio fuzz target; seed `opus-zero-channels.ogg`). None when the file cannot be read.
fn opus_head_is_sound<R: Read + Seek>(r: &mut R) -> Option<bool> {
    let mut page = [0u8; 27 + 255 + 10];
    let mut n = 0;
    while n < page.len() {
        match r.read(&mut page[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    r.rewind().ok()?;
    let page = &page[..n];
    if page.len() < 27 || &page[..4] != b"OggS" {
        return Some(false);
    }
    let body = 27 + usize::from(page[26]);
    Some(matches!(page.get(body..body + 10), Some(head) if &head[..8] == b"OpusHead" && head[9] != 0))
}

fn audio_options() -> lofty::config::ParseOptions {
    // Cover art is not kept; a relaxed parse takes what it can from a damaged tag instead of nothing.
    lofty::config::ParseOptions::new()
        .read_cover_art(false)
        .parsing_mode(lofty::config::ParsingMode::Relaxed)
}

fn from_tagged(tagged: &lofty::file::TaggedFile) -> Probed {
    use lofty::prelude::*;
    let props = tagged.properties();
    let ms = props.duration().as_millis() as u64;
    let codec = match tagged.file_type() {
        lofty::file::FileType::Mpeg => "mp3",
        lofty::file::FileType::Flac => "flac",
        lofty::file::FileType::Vorbis => "vorbis",
        lofty::file::FileType::Opus => "opus",
        lofty::file::FileType::Wav => "pcm",
        lofty::file::FileType::Mp4 => "aac",
        _ => "unknown",
    };
    let tags = tagged.primary_tag().or_else(|| tagged.first_tag()).map(|t| {
        let text = |v: Option<&str>| Some(v?.trim()).filter(|s| !s.is_empty()).map(str::to_string);
        Tags {
            title: text(t.title().as_deref()),
            artist: text(t.get_string(ItemKey::AlbumArtist)).or_else(|| text(t.artist().as_deref())),
            album: text(t.album().as_deref()),
            track: t.track().and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0),
            disc: t.disk().and_then(|n| u16::try_from(n).ok()).filter(|n| *n > 0),
            year: t.date().map(|d| d.year).filter(|y| *y > 0),
        }
    });
    Probed {
        duration_ms: (ms > 0).then_some(ms),
        video_codec: None,
        audio_codec: Some(codec.into()),
        tags: tags.filter(|t| *t != Tags::default()),
    }
}

/// Matroska codec ids (`V_MPEG4/ISO/AVC`) → the codec names Plex clients know.
fn matroska_codec(id: &str) -> String {
    match id {
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        "V_VP8" => "vp8",
        "V_VP9" => "vp9",
        "V_AV1" => "av1",
        "A_AAC" | "A_AAC/MPEG4/LC" => "aac",
        "A_OPUS" => "opus",
        "A_VORBIS" => "vorbis",
        "A_AC3" => "ac3",
        "A_EAC3" => "eac3",
        "A_FLAC" => "flac",
        "A_MPEG/L3" => "mp3",
        other => return other.to_ascii_lowercase(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    /// Found by the probe_audio fuzz target: an Opus stream whose last granule position makes lofty's duration
    /// arithmetic overflow. The probe answers (with or without a duration) and the scanner goes on.
    #[test]
    fn fuzz_probe_audio_opus_granule_overflow_does_not_panic() {
        let bytes = include_bytes!("../../fuzz/seeds/probe_audio/opus-granule-overflow.ogg");
        let probed = super::probe_bytes(bytes, "ogg", crate::library::kind::Media::Audio);
        assert!(probed.video_codec.is_none(), "an Ogg file names no video codec");
    }

    /// The check in front of lofty lets a sound Opus file through (the seed written by scripts/fuzz-media-seeds).
    #[test]
    fn a_sound_opus_file_is_still_probed() {
        let bytes = include_bytes!("../../fuzz/seeds/probe_audio/small.opus");
        let probed = super::probe_bytes(bytes, "ogg", crate::library::kind::Media::Audio);
        assert!(probed.audio_codec.is_some(), "{probed:?}");
    }

    /// Found by the probe_audio fuzz target: an OpusHead with 0 output channels made lofty `expect` (an abort in
    /// the shipped build). The probe refuses it (RFC 7845 §5.1) and answers nothing.
    #[test]
    fn fuzz_probe_audio_opus_zero_channels_does_not_panic() {
        let bytes = include_bytes!("../../fuzz/seeds/probe_audio/opus-zero-channels.ogg");
        let probed = super::probe_bytes(bytes, "ogg", crate::library::kind::Media::Audio);
        assert!(probed.duration_ms.is_none() && probed.audio_codec.is_none(), "{probed:?}");
    }
}
