//! The flash store's area on the board's device (`[flash]` in the board file).
//!
//! `/dev/mtdN` is raw flash through the MTD interface (`store::Mtd`: MEMERASE, bad blocks skipped); anything
//! else (an SD/eMMC partition, a virtio disk, a file) is a block device (`store::BlockDevice`: whole-sector
//! writes, fdatasync) using `size` bytes at `offset`, in erase blocks of the board's `erase_size`.

use super::board::FlashArea;
use crate::store::{BlockDevice, Flash, Mtd};
use std::io;
use std::path::Path;

/// Open the board's flash area as the store's backend.
pub fn open(area: &FlashArea) -> io::Result<Box<dyn Flash>> {
    let path = Path::new(&area.device);
    if area.device.starts_with("/dev/mtd") {
        return Ok(Box::new(Mtd::open(path)?));
    }
    Ok(Box::new(BlockDevice::open_with(path, area.offset, area.size, Some(area.erase_size))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_area_is_offset_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::write(&path, vec![0xFFu8; 3 * 4096]).unwrap();
        let area = FlashArea { device: path.display().to_string(), offset: 4096, size: 8192, erase_size: 4096 };
        let mut f = open(&area).unwrap();
        assert_eq!(f.geometry().size, 8192);
        let mut unit = vec![0xFFu8; 4096];
        unit[..3].copy_from_slice(b"rec");
        f.write(0, &unit).unwrap();
        assert!(f.write(8192, &unit).is_err(), "past the area");
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(&disk[4096..4099], b"rec");
        assert!(disk[..4096].iter().all(|b| *b == 0xFF), "bytes before the area untouched");
        let too_big = FlashArea { size: 16384, ..area };
        assert!(open(&too_big).is_err(), "an area past the end of the device is refused");
    }
}
