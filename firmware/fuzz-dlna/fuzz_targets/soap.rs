//! SOAP control bodies: parse, then run the action against a small view, as the 32469 server does. Must never
//! panic; every outcome is a response or a fault.
#![no_main]
use hearth::dlna::catalog::{Catalog, Item, Kind};
use hearth::dlna::content;
use hearth::dlna::soap;
use hearth::dlna::view::View;
use hearth::state::{Library, LibraryKind};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixed;
impl Catalog for Fixed {
    fn generation(&self) -> u64 {
        1
    }
    fn items(&self, library: u8) -> Vec<Item> {
        (0..20)
            .map(|i| Item {
                id: i + library as u64 * 100,
                library,
                path: format!("/m/{i}.mp3").into(),
                folder: format!("a/{}", i % 3),
                title: format!("t{i}"),
                kind: match library {
                    1 => Kind::Episode { show: format!("s{}", i % 2), season: (i % 3) as u16, episode: i as u16 },
                    2 => Kind::Track { artist: format!("a{}", i % 2), album: "b".into(), number: Some(i as u16) },
                    _ => Kind::Photo,
                },
                size: i,
                modified: i,
                mime: "audio/mpeg",
                duration: None,
                resolution: None,
            })
            .collect()
    }
}

fn view() -> &'static View {
    static V: OnceLock<View> = OnceLock::new();
    V.get_or_init(|| {
        let libs = [
            Library { id: 1, kind: LibraryKind::Shows, name: "TV".try_into().unwrap() },
            Library { id: 2, kind: LibraryKind::Music, name: "M".try_into().unwrap() },
            Library { id: 3, kind: LibraryKind::Photos, name: "P".try_into().unwrap() },
        ];
        View::build(&libs, &Fixed, 1)
    })
}

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    if let Ok(a) = soap::parse(body, header) {
        let _ = content::content_directory(&a, view(), "http://h:1");
        let _ = content::connection_manager(&a, view());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = content::parse_criteria(s);
    }
});
