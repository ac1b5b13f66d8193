//! Duration and codecs from container headers: MP4 through the `mp4` crate (reads boxes, seeks over `mdat`),
//! Matroska/WebM through `matroska-demuxer` (reads the EBML header, SeekHead, Info and Tracks; never a Cluster).
//! Only headers are read, never whole files.

use std::fs::File;
use std::io::BufReader;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probed {
    pub duration_ms: Option<u64>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
}

/// Read what the container's headers say. Failures give an empty [`Probed`] (the file is still listed).
pub fn probe(file: File, size: u64, container: &str) -> Probed {
    let got = match container {
        "mp4" | "mov" => mp4_headers(file, size),
        "mkv" | "webm" => matroska_headers(file),
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
