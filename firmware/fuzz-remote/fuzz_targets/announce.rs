#![no_main]
//! Any datagram as a PCP/NAT-PMP announcement or an SSDP NOTIFY, then as a sequence of announcements to the
//! restart rule: never a panic; a decoded SSDP uuid is short, lower-case and printable; nothing heard from an
//! address that is not the gateway ever asks for a re-map.
use hearth::remote::announce::{self, Heard, Verdict, Watch};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let port_mapping = announce::parse_port_mapping(data);
    let ssdp = announce::parse_ssdp(data);
    if let Ok(Heard::Ssdp { uuid, .. }) = &ssdp {
        assert!(!uuid.is_empty() && uuid.len() <= 128 && uuid.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(*uuid, uuid.to_ascii_lowercase());
    }
    let gateway = Ipv4Addr::new(192, 168, 77, 1);
    let mut w = Watch::default();
    w.follow(gateway, None, None);
    let stranger = IpAddr::V4(Ipv4Addr::new(192, 168, 77, 66));
    for (i, heard) in [port_mapping, ssdp].into_iter().flatten().enumerate() {
        assert_eq!(w.hear(stranger, heard.clone(), i as u64), Verdict::Stranger);
        let _ = w.hear(IpAddr::V4(gateway), heard, i as u64);
    }
    // The same bytes cut into 12-byte NAT-PMP announcements: an epoch sequence from the gateway.
    for (i, c) in data.chunks_exact(12).enumerate() {
        if let Ok(h) = announce::parse_port_mapping(c) {
            let _ = w.hear(IpAddr::V4(gateway), h, u64::from(c[4]) * i as u64);
        }
    }
});
