#![no_main]
//! Any bytes as an SSDP search answer, a device description, a SOAP answer and a URL to resolve (the IGD
//! control point's parsers, `hearth::remote::igd`): never a panic; whatever is accepted stays bounded and can
//! only point at the device that answered, with a path fit for a request line.
use hearth::remote::igd::{self, Reply};
use libfuzzer_sys::fuzz_target;

fn path_ok(p: &str) -> bool {
    p.starts_with('/') && p.bytes().all(|c| c.is_ascii_graphic())
}

fuzz_target!(|data: &[u8]| {
    let at = igd::parse_url("http://192.168.77.1:5000/rootDesc.xml").expect("a valid URL");
    if let Ok(f) = igd::parse_search_answer(data) {
        assert!(path_ok(&f.location.path));
        assert!(f.st.len() <= 128 && f.usn.len() <= 256);
    }
    let mut search = igd::Search::default();
    let _ = search.heard("192.168.77.66:1900".parse().unwrap(), data);
    if let Some(f) = search.heard("192.168.77.1:1900".parse().unwrap(), data) {
        assert_eq!(f.location.addr.ip(), at.addr.ip(), "believed a device at another address");
    }
    if let Ok(d) = igd::parse_description(data, &at) {
        for l in d.wan.iter().map(|s| &s.control).chain(d.firewall6.iter()) {
            assert_eq!(l.addr.ip(), at.addr.ip(), "a control URL off the device");
            assert!(path_ok(&l.path));
        }
        assert!(d.friendly_name.is_none_or(|n| n.chars().count() <= 64 && !n.chars().any(char::is_control)));
    }
    for status in [200, 500] {
        match igd::reply(status, data) {
            Reply::Done { args, .. } => assert!(args.len() <= 32 && args.iter().all(|(_, v)| v.len() <= 1024)),
            Reply::Fault { description, .. } => assert!(description.chars().count() <= 120),
            Reply::Garbled => {}
        }
    }
    if let Some(l) = igd::resolve(&at, &String::from_utf8_lossy(data)) {
        assert!(path_ok(&l.path));
    }
});
