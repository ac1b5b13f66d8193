//! Duration and codecs from container headers: MP4 through the `mp4` crate (reads boxes, seeks over `mdat`),
//! Matroska/WebM through `matroska-demuxer` (reads the EBML header, SeekHead, Info and Tracks; never a Cluster).
//! Audio (MP3, FLAC, Ogg Vorbis/Opus, M4A, WAV) through `lofty`: the tags (ID3v2/ID3v1/APE, Vorbis comments,
//! MP4 `ilst`, RIFF INFO) and the stream properties (MP3: the first frame and its Xing/VBRI header; FLAC:
//! STREAMINFO), never the audio frames. Only headers are read, never whole files.

use std::fs::File;
use std::io::BufReader;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probed {
    pub duration_ms: Option<u64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    /// What an audio file's tags say (None: not audio, no tags, or not read this scan).
    pub tags: Option<Tags>,
}

/// A track's tags, as the music shelves use them. Empty strings are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags {
    pub title: Option<String>,
    /// The album artist when the file names one (so a compilation stays one album), else the track artist.
    pub artist: Option<String>,
    pub album: Option<String>,
    pub track: Option<u16>,
    pub disc: Option<u16>,
    pub year: Option<u16>,
}

/// Read what the container's headers say. Failures give an empty [`Probed`] (the file is still listed).
pub fn probe(file: File, size: u64, container: &str, media: super::kind::Media) -> Probed {
    let got = match (media, container) {
        (super::kind::Media::Audio, _) => audio_headers(file, container),
        (_, "mp4" | "mov") => mp4_headers(file, size),
        (_, "mkv" | "webm") => matroska_headers(file),
        _ => None,
    };
    got.unwrap_or_default()
}

fn mp4_headers(file: File, size: u64) -> Option<Probed> {
    let r = mp4::Mp4Reader::read_header(BufReader::with_capacity(16 * 1024, file), size).ok()?;
    let mut p = Probed {
        duration_ms: Some(r.duration().as_millis() as u64),
        ..Probed::default()
    };
    let mut ids: Vec<&u32> = r.tracks().keys().collect();
    ids.sort();
    for id in ids {
        let t = &r.tracks()[id];
        let Ok(kind) = t.track_type() else { continue };
        let codec = t.box_type().ok().map(|b| mp4_codec(&b.to_string()));
        match kind {
            mp4::TrackType::Video if p.video_codec.is_none() => p.video_codec = codec,
            mp4::TrackType::Audio if p.audio_codec.is_none() => p.audio_codec = codec,
            _ => {}
        }
    }
    Some(p)
}

/// ISO/IEC 14496-15 and friends: sample entry fourcc → the codec names Plex clients know.
fn mp4_codec(fourcc: &str) -> String {
    match fourcc {
        "avc1" | "avc3" => "h264",
        "hev1" | "hvc1" => "hevc",
        "vp09" => "vp9",
        "av01" => "av1",
        "mp4a" => "aac",
        "Opus" => "opus",
        "ac-3" => "ac3",
        "ec-3" => "eac3",
        other => return other.trim().to_ascii_lowercase(),
    }
    .into()
}

/// An audio file's tags and properties (`container` as [`super::kind`] names it; M4A is "mp4").
///
/// Each container goes to its own lofty reader rather than through `lofty::probe::Probe`, which dispatches to
/// every format lofty knows (AIFF, APE, Musepack, WavPack, Speex, ADTS AAC...): linking only the five readers the
/// library lists keeps 50 KB of code out of the static binary (x86_64 musl: 5,408,928 → 5,358,592 bytes).
/// Ogg carries Vorbis or Opus, told apart by the first packet's magic (RFC 7845 §5.1 "OpusHead"; Vorbis I
/// spec §4.2.1, packet type 1 then "vorbis"); Speex in Ogg is listed without tags.
fn audio_headers(file: File, container: &str) -> Option<Probed> {
    use lofty::file::{AudioFile, TaggedFile};
    use std::io::{Read, Seek};
    let mut r = BufReader::with_capacity(16 * 1024, file);
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

fn matroska_headers(file: File) -> Option<Probed> {
    let m = matroska_demuxer::MatroskaFile::open(BufReader::with_capacity(16 * 1024, file)).ok()?;
    let info = m.info();
    // Matroska spec §5.1.4.1.4: Duration is in TimestampScale units (nanoseconds × scale).
    let duration_ms = info
        .duration()
        .map(|d| (d * info.timestamp_scale().get() as f64 / 1e6) as u64);
    let mut p = Probed {
        duration_ms,
        ..Probed::default()
    };
    for t in m.tracks() {
        let codec = Some(matroska_codec(t.codec_id()));
        match t.track_type() {
            matroska_demuxer::TrackType::Video if p.video_codec.is_none() => p.video_codec = codec,
            matroska_demuxer::TrackType::Audio if p.audio_codec.is_none() => p.audio_codec = codec,
            _ => {}
        }
    }
    Some(p)
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
