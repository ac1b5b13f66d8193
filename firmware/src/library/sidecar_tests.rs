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

#[test]
fn malformed_cues_are_skipped_and_a_file_without_cues_is_refused() {
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n\
               2\nno timing here\n\n\
               3\n00:00:05,000 --> 00:00:04,000\nends before it starts\n\n\
               4\n00:61:00,000 --> 00:62:00,000\nminutes out of range\n\n\
               5\n1:02,5 --> 1:03.25\nshort forms\n";
    let c = srt_to_vtt(srt.as_bytes()).unwrap();
    assert_eq!((c.cues, c.skipped), (2, 3));
    assert!(c.vtt.ends_with("00:01:02.500 --> 00:01:03.250\nshort forms\n\n"), "{}", c.vtt);
    assert_eq!(srt_to_vtt(b"just some words\nand more\n"), Err(SubtitleError::NoCues));
    assert_eq!(srt_to_vtt(b""), Err(SubtitleError::NoCues));
    assert_eq!(srt_to_vtt(b"\r\n\r\n"), Err(SubtitleError::NoCues));
}

#[test]
fn text_is_utf8_utf16_or_latin1_and_binary_is_refused() {
    let cue = "1\n00:00:01,000 --> 00:00:02,000\nCaf\u{e9} \u{fc}ber\n";
    let latin1: Vec<u8> = cue.chars().map(|c| c as u8).collect();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(cue.encode_utf16().flat_map(u16::to_le_bytes));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(cue.as_bytes());
    for bytes in [cue.as_bytes().to_vec(), latin1, utf16, bom] {
        let c = srt_to_vtt(&bytes).unwrap();
        assert!(c.vtt.contains("Caf\u{e9} \u{fc}ber"), "{:?}", c.vtt);
    }
    // A picture renamed .srt: control bytes, refused with where.
    let mut binary = b"1\n00:00:01,000 --> 00:00:02,000\n".to_vec();
    binary.extend_from_slice(&[0x89, b'P', b'N', b'G', 0, 0, 0, 0x0D]);
    assert_eq!(srt_to_vtt(&binary), Err(SubtitleError::NotText(36)));
    assert!(SubtitleError::NotText(36).to_string().contains("not text"));
    assert!(matches!(decode(&[0xFF, 0xFE, 0x00, 0xD8]), Err(SubtitleError::NotText(_))), "a lone surrogate");
    let huge = vec![b'a'; MAX_SUBTITLE as usize + 1];
    assert_eq!(srt_to_vtt(&huge), Err(SubtitleError::TooLarge(MAX_SUBTITLE + 1)));
}

#[test]
fn webvtt_must_say_so() {
    assert_eq!(check_vtt(b"WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n").unwrap().len(), 35);
    assert_eq!(check_vtt(b"WEBVTT - with a title\n"), Ok("WEBVTT - with a title\n".into()));
    assert_eq!(check_vtt(b"WEBVTTX\n"), Err(SubtitleError::NotWebVtt));
    assert_eq!(check_vtt(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n"), Err(SubtitleError::NotWebVtt));
}

#[test]
fn sidecar_names_give_format_language_and_forced() {
    let p = |name: &str| parse_name("Film (2020)", name);
    assert_eq!(p("Film (2020).srt"), Some((Format::Srt, None, false)));
    assert_eq!(p("Film (2020).en.srt"), Some((Format::Srt, Some("en".into()), false)));
    assert_eq!(p("Film (2020).pt-BR.VTT"), Some((Format::Vtt, Some("pt-br".into()), false)));
    assert_eq!(p("Film (2020).eng.forced.srt"), Some((Format::Srt, Some("eng".into()), true)));
    assert_eq!(p("Film (2020).Director's Cut.srt"), Some((Format::Srt, None, false)));
    assert_eq!(p("Film (2020).mkv"), None);
    assert_eq!(p("Film (2020)x.srt"), None, "another video's name that starts alike");
    assert_eq!(p("Other.en.srt"), None);
}

#[test]
fn stream_ids_name_video_and_index_and_never_an_item() {
    for (item, index) in [(1u32, 0usize), (42, 15), ((1 << 27) - 1, 7)] {
        let id = stream_id(item, index).unwrap();
        assert_eq!(stream_of(id), Some((item, index)));
    }
    assert_eq!(stream_id(1 << 27, 0), None);
    assert_eq!(stream_id(1, MAX_SIDECARS), None);
    assert_eq!(stream_of(12345), None, "an item id is not a stream id");
}

#[test]
fn sidecars_beside_a_video_are_listed_in_name_order_with_languages() {
    let t = tempfile::tempdir().unwrap();
    let video = t.path().join("Film.mkv");
    for name in ["Film.mkv", "Film.srt", "Film.de.srt", "Film.en.vtt", "Film2.srt", "Other.en.srt", "Film.en.srt.bak"] {
        std::fs::write(t.path().join(name), b"x").unwrap();
    }
    std::fs::create_dir(t.path().join("Film.fr.srt")).unwrap();
    let subs = beside(9, &video);
    let names: Vec<String> = subs.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["Film.de.srt", "Film.en.vtt", "Film.srt"]);
    assert_eq!(subs[0].language_code(), Some("ger"));
    assert_eq!(subs[1].language_name(), Some("English"));
    assert_eq!((subs[1].format, subs[2].language.as_deref()), (Format::Vtt, None));
    assert_eq!(subs.iter().map(|s| stream_of(s.stream)).collect::<Vec<_>>(), [Some((9, 0)), Some((9, 1)), Some((9, 2))]);
}

#[test]
fn a_huge_file_is_refused_without_being_read() {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("Film.srt");
    std::fs::File::create(&p).unwrap().set_len(3 * 1024 * 1024 * 1024).unwrap();
    let err = read(&p).unwrap_err();
    assert_eq!(err, SubtitleError::TooLarge(3 * 1024 * 1024 * 1024));
    assert!(err.to_string().contains("up to 2 MiB"), "{err}");
}
