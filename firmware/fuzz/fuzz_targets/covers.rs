//! Cover headers (library::art, sans-IO): any bytes as an image header, a JPEG with an EXIF thumbnail and an MP4
//! with a `covr` atom; never a panic, and every range found lies inside the bytes.
#![no_main]

use hearth::library::art::{exif_thumbnail, image_info, mp4_cover};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = image_info(data);
    if let Some(r) = exif_thumbnail(data) {
        assert!(r.start < r.end && r.end <= data.len());
    }
    let read = |at: u64, buf: &mut [u8]| {
        let at = usize::try_from(at).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - at);
        buf[..n].copy_from_slice(&data[at..at + n]);
        Ok(n)
    };
    if let Some((start, len, _)) = mp4_cover(data.len() as u64, read) {
        assert!(len > 0 && start + len <= data.len() as u64);
    }
});
