//! Arbitrary bytes as a flash image: `Store::open` must never panic, and whatever it accepts must behave
//! like a store (a write then a reopen gives that write back).
#![no_main]

use hearth::store::sim::{Semantics, SimFlash};
use hearth::store::{Opened, Store};
use libfuzzer_sys::fuzz_target;

/// Smallest area whose slots hold a 16 KiB record: 2 x 5 blocks of 4 KiB.
const AREA: usize = 40 * 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the semantics; the rest is the image, padded with 0xFF (erased) to the area size,
    // so short inputs exercise slot headers, record headers and torn tails near the start of slot A.
    let (sem, write) = match data.first() {
        Some(b) if b & 1 == 1 => (Semantics::Block, 512),
        _ => (Semantics::Nor, 1),
    };
    let mut image = data.get(1..).unwrap_or(&[]).to_vec();
    image.resize(AREA, 0xFF);
    if data.len() > 1 + AREA / 2 {
        // Long inputs: the second half of the input lands in slot B too.
        let half = (data.len() - 1) / 2;
        image[AREA / 2..AREA / 2 + half.min(AREA / 2)].copy_from_slice(&data[1 + half..1 + half + half.min(AREA / 2)]);
    }
    let flash = SimFlash::with_image(sem, image, 4096, write);
    let Ok((mut store, opened)) = Store::open(flash.clone()) else { return };
    if let Opened::Found(l) = &opened {
        assert!(l.payload.len() <= hearth::store::MAX_PAYLOAD);
    }
    if store.write(7, b"fuzz").is_ok() {
        let again = SimFlash::with_image(sem, flash.image(), 4096, write);
        match Store::open(again) {
            Ok((_, Opened::Found(l))) => assert_eq!((l.schema, l.payload.as_slice()), (7, &b"fuzz"[..])),
            other => panic!("a written record did not come back: {:?}", other.map(|o| o.1)),
        }
    }
});
