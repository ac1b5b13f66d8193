//! The flash store's area on the board's device (`[flash]` in the board file).
//!
//! Placeholder until the store room's `store::BlockDevice` lands: [`open`] is the one place to swap. The area
//! is `size` bytes at `offset` on a block device (or a partition, or a file); erase writes 0xFF, as on NOR.
//! A block device's file size reads as 0, so the geometry comes from the board, not from `metadata()`.

use super::board::FlashArea;
use crate::store::{Flash, Geometry};
use std::io;
use std::os::unix::fs::FileExt;

/// Open the board's flash area as the store's backend.
pub fn open(area: &FlashArea) -> io::Result<Box<dyn Flash>> {
    Ok(Box::new(DeviceArea::open(area)?))
}

/// `size` bytes at `offset` of a device or file, erased to 0xFF.
pub struct DeviceArea {
    file: std::fs::File,
    offset: u64,
    geometry: Geometry,
}

impl DeviceArea {
    pub fn open(area: &FlashArea) -> io::Result<DeviceArea> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&area.device)?;
        let end = area.offset + area.size;
        let len = device_len(&file)?;
        if len < end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} holds {len} bytes; the board's flash area ends at {end}", area.device),
            ));
        }
        Ok(DeviceArea {
            file,
            offset: area.offset,
            geometry: Geometry { size: area.size, erase_size: area.erase_size, write_size: 1 },
        })
    }

    fn check(&self, offset: u64, len: u64) -> io::Result<u64> {
        if offset.checked_add(len).is_none_or(|end| end > self.geometry.size) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "outside the flash area"));
        }
        Ok(self.offset + offset)
    }
}

/// Length of a regular file or a block device (seek to the end; `metadata().len()` is 0 for devices).
fn device_len(file: &std::fs::File) -> io::Result<u64> {
    use std::io::Seek;
    let mut f = file;
    let len = f.seek(io::SeekFrom::End(0))?;
    f.seek(io::SeekFrom::Start(0))?;
    Ok(len)
}

impl Flash for DeviceArea {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let at = self.check(offset, buf.len() as u64)?;
        self.file.read_exact_at(buf, at)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let at = self.check(offset, data.len() as u64)?;
        self.file.write_all_at(data, at)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let at = self.check(offset, len)?;
        self.file.write_all_at(&vec![0xFF; len as usize], at)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
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
        let mut f = DeviceArea::open(&area).unwrap();
        f.write(0, b"rec").unwrap();
        assert!(f.write(8190, b"xyz").is_err());
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(&disk[4096..4099], b"rec");
        assert!(disk[..4096].iter().all(|b| *b == 0xFF));
        let too_big = FlashArea { size: 16384, ..area };
        let e = DeviceArea::open(&too_big).err().expect("area past the end is refused");
        assert!(e.to_string().contains("ends at"), "{e}");
    }
}
