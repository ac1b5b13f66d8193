//! GENA: the SUBSCRIBE/UNSUBSCRIBE header rules, the subscription table, the event bodies and the NOTIFY answer
//! reader must never panic; every message goes to the subscriber's own address, the table stays bounded, and an
//! event body carries its values escaped.
//!
//! Input: the fields NT, CALLBACK, SID, TIMEOUT separated by NUL, then more NUL-separated records, each a
//! command byte and arguments (subscribe, renew, unsubscribe, release, due, delivered, advance the clock).
#![no_main]
use hearth::dlna::gena::{self, Fields, Service, Table};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let field = |i: usize| parts.get(i).copied().filter(|p| !p.is_empty());
    let peer = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
    let f = Fields { nt: field(0), callback: field(1), sid: field(2), timeout: field(3), body: false };
    let mut t = Table::default();
    let mut now = Instant::now();
    let mut sids: Vec<String> = Vec::new();
    for (i, rec) in parts.iter().enumerate().skip(4) {
        let Some((&cmd, arg)) = rec.split_first() else { continue };
        let src = IpAddr::V4(Ipv4Addr::new(192, 168, 1, arg.first().copied().unwrap_or(20)));
        let service = if cmd & 1 == 0 { Service::ContentDirectory } else { Service::ConnectionManager };
        let sid = sids.get(arg.len() % sids.len().max(1)).cloned().unwrap_or_else(|| String::from_utf8_lossy(arg).into());
        match cmd % 7 {
            0 => {
                if let Ok(gena::Ask::Subscribe { callbacks, timeout }) = gena::parse(false, &f, src) {
                    assert!(callbacks.iter().all(|c| c.addr.ip() == src), "a callback to another host");
                    assert!((gena::MIN_TIMEOUT..=gena::MAX_TIMEOUT).contains(&timeout));
                    let info = String::from_utf8_lossy(arg).into_owned();
                    if let Ok(g) = t.subscribe(now, service, src, callbacks, timeout, format!("uuid:{i}"), info) {
                        sids.push(g.sid);
                    }
                }
            }
            1 => {
                let _ = t.renew(now, service, src, &sid, 300);
            }
            2 => {
                let _ = t.unsubscribe(now, service, src, &sid);
            }
            3 => t.release(&sid),
            4 => {
                let id = u32::from_le_bytes([arg.first().copied().unwrap_or(0), 0, 0, arg.get(1).copied().unwrap_or(0)]);
                for n in t.due(now, id) {
                    let req = n.request();
                    assert!(req.starts_with(b"NOTIFY "));
                    assert!(!n.body.contains("<script") && n.body.matches("<e:property>").count() >= 2);
                    let _ = t.delivered(&n.sid, n.seq, arg.len() % 2 == 0);
                }
            }
            5 => now += Duration::from_millis(arg.len() as u64 * 700),
            _ => {
                let _ = gena::accepted(arg);
                let body = gena::propertyset(&[("SourceProtocolInfo", &String::from_utf8_lossy(arg))]);
                assert_eq!(body.matches('<').count(), 7, "values are escaped");
            }
        }
        assert!(t.len() <= gena::MAX_SUBSCRIPTIONS);
        assert!(t.from_source(src) <= gena::PER_SOURCE);
    }
    let _ = gena::parse(true, &f, peer);
    let _ = gena::parse(false, &Fields { body: true, ..f }, peer);
});
