//! Sidecar names, stream ids and the SRT → WebVTT conversion, with bad input.

use super::*;

#[test]
fn srt_becomes_webvtt_cue_for_cue() {
    let srt = "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello <i>there</i> & <font color=\"red\">you</font>\r\n\r\n\
               2\r\n00:01:02,345 --> 00:01:04,000 X1:10 X2:20\r\n{\\an8}Two --> lines\r\nsecond <b>line</b>\r\n";
    let c = srt_to_vtt(srt.as_bytes()).unwrap();
    assert_eq!(
        c.vtt,
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello <i>there</i> &amp; you\n\n\
         00:01:02.345 --> 00:01:04.000\nTwo --&gt; lines\nsecond <b>line</b>\n\n"
    );
    assert_eq!((c.cues, c.skipped), (2, 0));
}
