#![no_main]
//! Any datagram as a PCP MAP, NAT-PMP map or NAT-PMP address reply; any epoch sequence: never a panic,
//! and an accepted PCP reply always matches our nonce and port.
use hearth::remote::pcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nonce: [u8; 12] = if data.len() >= 36 { data[24..36].try_into().unwrap() } else { [7; 12] };
    if let Ok(r) = pcp::pcp_map_response(data, &nonce, 32400) {
        assert!(r.result != 0 || r.internal_port == 32400);
    }
    let _ = pcp::natpmp_map_response(data, 32400);
    let _ = pcp::natpmp_address_response(data);
    let mut e = pcp::Epoch::default();
    for c in data.chunks_exact(12) {
        let epoch = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        let now = u64::from_be_bytes(c[4..12].try_into().unwrap());
        e.observe(epoch, now);
    }
});
