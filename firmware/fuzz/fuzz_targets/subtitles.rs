//! Sidecar subtitles (library::sidecar): any bytes through the text decoding, the SRT → WebVTT converter and the
//! WebVTT check; never a panic, and every converted file is WebVTT whose cue text cannot end a cue early.
#![no_main]

use hearth::library::sidecar::{check_vtt, decode, srt_to_vtt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
    let _ = check_vtt(data);
    if let Ok(c) = srt_to_vtt(data) {
        assert!(c.vtt.starts_with("WEBVTT\n\n") && c.cues > 0);
        // One "-->" per cue: the timing line's; a "-->" in text is escaped.
        assert_eq!(c.vtt.matches("-->").count(), c.cues, "{:?}", c.vtt);
        assert!(!c.vtt.contains('\0'));
        check_vtt(c.vtt.as_bytes()).expect("what the converter writes passes the WebVTT check");
    }
});
