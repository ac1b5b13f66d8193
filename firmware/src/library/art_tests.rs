//! Covers from real small files written by the test: image headers, EXIF thumbnails, MP4 `covr`, tags, folders.

use super::*;

/// A PNG header for `w`×`h` (signature and IHDR; no pixels are needed to read the size).
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = PNG_SIGNATURE.to_vec();
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

#[test]
fn png_size_is_read_from_ihdr() {
    assert_eq!(image_info(&png(640, 480)), Some((Mime::Png, Some((640, 480)))));
    assert_eq!(image_info(b"GIF89a"), None);
}
