//! Matroska/WebM headers (library::matroska through library::probe): any bytes; never a panic, never an
//! allocation far past the element budget (scripts/fuzz-media sets `-malloc_limit_mb`).
#![no_main]

use hearth::library::kind::Media;
use hearth::library::probe::probe_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = probe_bytes(data, "mkv", Media::Video);
    assert!(p.tags.is_none(), "video probes read no tags");
});
