//! Range and conditional headers (stream::range): any bytes, any size; never a panic, and a partial answer
//! always lies inside the file.
#![no_main]

use hearth::stream::range::{Conditions, Decision, Plan, Validators, decide, plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap()) >> (data[0] % 64);
    let rest = &data[8..];
    if let Plan::Partial { start, end } = plan(rest, size) {
        assert!(start <= end && end < size);
    }
    let parts: Vec<&[u8]> = rest.splitn(4, |b| *b == b'\n').collect();
    let c = Conditions {
        if_none_match: parts.first().copied(),
        if_modified_since: parts.get(1).copied(),
        if_range: parts.get(2).copied(),
        range: parts.get(3).copied(),
    };
    if let Decision::Send(Plan::Partial { start, end }) = decide(&c, &Validators::new(size, 1, 2), size) {
        assert!(start <= end && end < size);
    }
});
