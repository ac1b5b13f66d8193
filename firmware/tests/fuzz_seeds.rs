//! Every committed fuzz seed (`firmware/fuzz/seeds/<target>/`) goes through its fuzz target's checks in every
//! `cargo test`, not only when the fuzzer runs (it needs nightly): a seed that once crashed a probe stays a
//! regression test. The store target's seeds are made, and checked, by `store::tests::fuzz_seeds`.

use hearth::library::kind::Media;
use hearth::library::probe::probe_bytes;
use std::path::PathBuf;

/// The seeds of one target, by name; at least one must be committed.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// As `fuzz_targets/probe_audio.rs`.
#[test]
fn probe_audio_seeds() {
    for (name, data) in seeds("probe_audio") {
        for container in ["mp3", "flac", "wav", "mp4", "ogg"] {
            let p = probe_bytes(&data, container, Media::Audio);
            assert!(p.video_codec.is_none(), "{name} as {container}: audio probes name no video codec");
        }
    }
}

/// As `fuzz_targets/probe_mp4.rs`.
#[test]
fn probe_mp4_seeds() {
    for (name, data) in seeds("probe_mp4") {
        for container in ["mp4", "mov"] {
            let p = probe_bytes(&data, container, Media::Video);
            assert!(p.tags.is_none(), "{name} as {container}: video probes read no tags");
        }
    }
}

/// As `fuzz_targets/probe_matroska.rs`.
#[test]
fn probe_matroska_seeds() {
    for (name, data) in seeds("probe_matroska") {
        let p = probe_bytes(&data, "mkv", Media::Video);
        assert!(p.tags.is_none(), "{name}: video probes read no tags");
    }
}

/// As `fuzz_targets/subtitles.rs`.
#[test]
fn subtitles_seeds() {
    use hearth::library::sidecar::{check_vtt, decode, srt_to_vtt};
    for (name, data) in seeds("subtitles") {
        let _ = decode(&data);
        let _ = check_vtt(&data);
        if let Ok(c) = srt_to_vtt(&data) {
            assert_eq!(c.vtt.matches("-->").count(), c.cues, "{name}: one arrow per cue");
            check_vtt(c.vtt.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// As `fuzz_targets/covers.rs`; each seed holds what its name says.
#[test]
fn covers_seeds() {
    use hearth::library::art::{exif_thumbnail, image_info, mp4_cover};
    for (name, data) in seeds("covers") {
        let read = |at: u64, buf: &mut [u8]| {
            let at = (at as usize).min(data.len());
            let n = buf.len().min(data.len() - at);
            buf[..n].copy_from_slice(&data[at..at + n]);
            Ok(n)
        };
        let found = (image_info(&data).is_some(), exif_thumbnail(&data).is_some(), mp4_cover(data.len() as u64, read).is_some());
        let want = match name.split('.').next_back() {
            Some("jpg") => (true, true, false),
            Some("png") => (true, false, false),
            _ => (false, false, true),
        };
        assert_eq!(found, want, "{name}");
    }
}
