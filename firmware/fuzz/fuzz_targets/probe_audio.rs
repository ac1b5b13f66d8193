//! Audio headers and tags (lofty through library::probe, with its allocation limit and read budget): any
//! bytes through each of the five readers the library uses (MP3, FLAC, WAV, M4A, Ogg Vorbis/Opus); never a
//! panic, never an allocation past the limit (scripts/fuzz-media sets `-malloc_limit_mb`).
#![no_main]

use hearth::library::kind::Media;
use hearth::library::probe::probe_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for container in ["mp3", "flac", "wav", "mp4", "ogg"] {
        let p = probe_bytes(data, container, Media::Audio);
        assert!(p.video_codec.is_none(), "audio probes name no video codec");
    }
});
