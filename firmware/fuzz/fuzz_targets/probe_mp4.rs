//! MP4/QuickTime headers (library::mp4 through library::probe): any bytes; never a panic, never an
//! allocation past the moov budget (scripts/fuzz-media sets `-malloc_limit_mb`).
#![no_main]

use hearth::library::kind::Media;
use hearth::library::probe::probe_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for container in ["mp4", "mov"] {
        let p = probe_bytes(data, container, Media::Video);
        assert!(p.tags.is_none(), "video probes read no tags");
    }
});
