#![no_main]
//! Any datagram as a STUN Binding response: never a panic; an address only from a success response.
use hearth::remote::stun;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tid = if data.len() >= 20 { data[8..20].try_into().unwrap() } else { [0u8; 12] };
    if stun::parse_binding_response(data, &tid).is_ok() {
        assert_eq!(u16::from_be_bytes([data[0], data[1]]), stun::BINDING_SUCCESS);
    }
});
