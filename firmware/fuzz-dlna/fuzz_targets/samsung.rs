//! The ContentDirectory actions TVs call (Samsung's X_GetFeatureList and X_SetBookmark, Browse and Search with
//! SortCriteria) against a view whose items have covers and sidecar subtitles, as 32469 runs them. Input: the
//! SOAPACTION value, a newline, the body. Must never panic; every answer is a fault or well-formed XML whose
//! DIDL `Result` (art URIs, subtitle `res` and `sec:CaptionInfoEx` included) is well-formed XML too.
#![no_main]
use hearth::dlna::catalog::{Catalog, Item, Kind};
use hearth::dlna::content;
use hearth::dlna::soap;
use hearth::dlna::view::View;
use hearth::library::art::{CoverInfo, Mime, Origin};
use hearth::library::sidecar::{Format, Subtitle};
use hearth::state::{Library, LibraryKind};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct Dressed;
impl Catalog for Dressed {
    fn generation(&self) -> u64 {
        1
    }
    fn items(&self, library: u8) -> Vec<Item> {
        (0..12)
            .map(|i| Item {
                id: i + library as u64 * 100,
                library,
                path: format!("/m/<{i}>&.mkv").into(),
                folder: format!("a/{}", i % 3),
                title: format!("t\"{i}'<&>"),
                kind: match library {
                    1 => Kind::Movie,
                    2 => Kind::Track { artist: format!("a&{}", i % 2), album: "<b>".into(), number: Some(i as u16) },
                    _ => Kind::Photo,
                },
                size: i,
                modified: i * 86_400 * 400,
                mime: match library {
                    1 => "video/x-matroska",
                    2 => "audio/mpeg",
                    _ => "image/jpeg",
                },
                duration: None,
                resolution: None,
            })
            .collect()
    }
    fn cover_info(&self, id: u64) -> Option<CoverInfo> {
        let origin = [Origin::Embedded, Origin::File, Origin::ExifThumbnail, Origin::Photo][id as usize % 4];
        let mime = if id % 3 == 0 { Mime::Png } else { Mime::Jpeg };
        (id % 5 != 0).then_some(CoverInfo { mime, size: Some((id as u32 * 37, id as u32 * 23)), origin })
    }
    fn subtitles(&self, id: u64) -> Vec<Subtitle> {
        (0..(id % 3) as u8)
            .map(|index| Subtitle { index, stream: 0, path: "/m/s.srt".into(), format: if index == 1 { Format::Vtt } else { Format::Srt }, language: None, forced: false })
            .collect()
    }
}

fn view() -> &'static View {
    static V: OnceLock<View> = OnceLock::new();
    V.get_or_init(|| {
        let libs = [
            Library { id: 1, kind: LibraryKind::Movies, name: "F".try_into().unwrap() },
            Library { id: 2, kind: LibraryKind::Music, name: "M".try_into().unwrap() },
            Library { id: 3, kind: LibraryKind::Photos, name: "P".try_into().unwrap() },
        ];
        let catalog = Arc::new(Dressed);
        View::build(&libs, &*catalog, 1).with_source(catalog)
    })
}

/// Every event of `xml` reads without error.
fn well_formed(xml: &str) -> bool {
    let mut r = quick_xml::Reader::from_str(xml);
    loop {
        match r.read_event() {
            Ok(quick_xml::events::Event::Eof) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let Ok(a) = soap::parse(body, header) else { return };
    let Ok(xml) = content::content_directory(&a, view(), "http://h:1") else { return };
    assert!(well_formed(&xml), "{xml}");
    if let Some(result) = xml.split("<Result>").nth(1).and_then(|r| r.split("</Result>").next()) {
        let didl = result.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&");
        assert!(well_formed(&didl), "{didl}");
    }
});
