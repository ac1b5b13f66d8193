//! SSDP datagrams: the M-SEARCH parser and the engine must never panic, and the answer queue stays bounded.
#![no_main]
use hearth::dlna::ssdp::{Engine, parse_search};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = parse_search(data);
    let iface = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    let mut e = Engine::new("4d696e69-444c-164e-9d41-b827eb000001", 32469, "0", 1, 7);
    let now = Instant::now();
    e.start(now, vec![iface]);
    while e.poll_output().is_some() {}
    for chunk in data.split(|b| *b == 0) {
        e.on_datagram(now, iface, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)), 5000), chunk);
    }
    e.on_time(now + Duration::from_secs(6));
    let mut n = 0;
    while e.poll_output().is_some() {
        n += 1;
    }
    assert!(n <= 300);
});
