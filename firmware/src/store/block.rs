//! [`BlockDevice`]: the store on a raw block device, a partition, or a region of a regular file.
//!
//! A block device has no erase and no bit-clearing writes: a sector write replaces the sector, and a write cut
//! by power loss may leave one sector torn (part old, part new). The store works on it unchanged because its
//! records are aligned to the write unit and the header unit is written last (see the store's `//!` doc).
//! Choices made here:
//! - write unit = 4096 bytes, or the device's physical sector size if larger (`BLKPBSZGET`), so a torn
//!   physical sector of a 512e disk can never straddle two records;
//! - erase = writing 0xFF over the erase blocks (erase block = the write unit unless the caller says
//!   otherwise), so an erased region reads like erased flash and the same scan applies;
//! - every write is whole, aligned sectors with `pwrite(2)`; sync is `fdatasync(2)`.

use super::{Flash, Geometry};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

// linux/fs.h: #define BLKPBSZGET _IO(0x12,123) (the argument is an unsigned int pointer).
nix::ioctl_read_bad!(blk_pbszget, nix::request_code_none!(0x12, 123), u32);

/// Smallest write unit this backend uses.
pub const MIN_SECTOR: u32 = 4096;

/// The store on a block device, a partition or a region of a regular file: sector-aligned writes, erase as 0xFF (see
/// the module doc).
pub struct BlockDevice {
    file: File,
    offset: u64,
    geometry: Geometry,
}

impl BlockDevice {
    /// Use `len` bytes of `path` starting at `offset` (both multiples of the write unit). `len` is rounded
    /// down to whole erase blocks.
    pub fn open(path: &Path, offset: u64, len: u64) -> io::Result<Self> {
        Self::open_with(path, offset, len, None)
    }

    /// As [`BlockDevice::open`], with an explicit erase-block size (a multiple of the write unit).
    pub fn open_with(path: &Path, offset: u64, len: u64, erase_size: Option<u32>) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let meta = file.metadata()?;
        let mut sector = MIN_SECTOR;
        let end = if meta.file_type().is_block_device() {
            let mut pb: u32 = 0;
            // SAFETY: BLKPBSZGET writes one unsigned int through the pointer, which points at `pb`.
            if unsafe { blk_pbszget(file.as_raw_fd(), &mut pb) }.is_ok() && pb > sector {
                sector = pb;
            }
            let mut f = &file;
            io::Seek::seek(&mut f, io::SeekFrom::End(0))?
        } else if meta.file_type().is_file() {
            meta.len()
        } else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a block device or a regular file"));
        };
        let erase = erase_size.unwrap_or(sector);
        if erase == 0 || !erase.is_multiple_of(sector) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the erase size {erase} must be a multiple of the {sector}-byte sector"),
            ));
        }
        if !offset.is_multiple_of(sector as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the store offset {offset} is not a multiple of the {sector}-byte sector"),
            ));
        }
        if offset.checked_add(len).is_none_or(|e| e > end) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} holds {end} bytes, less than offset {offset} + length {len}", path.display()),
            ));
        }
        let size = len / erase as u64 * erase as u64;
        Ok(BlockDevice { file, offset, geometry: Geometry { size, erase_size: erase, write_size: sector } })
    }

    fn check(&self, offset: u64, len: u64, aligned: bool) -> io::Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.geometry.size) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "access past the end of the store area"));
        }
        let ws = self.geometry.write_size as u64;
        if aligned && (!offset.is_multiple_of(ws) || !len.is_multiple_of(ws)) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "block write not sector-aligned"));
        }
        Ok(())
    }
}

impl Flash for BlockDevice {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len() as u64, false)?;
        self.file.read_exact_at(buf, self.offset + offset)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len() as u64, true)?;
        self.file.write_all_at(data, self.offset + offset)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let es = self.geometry.erase_size as u64;
        if !offset.is_multiple_of(es) || !len.is_multiple_of(es) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "erase not aligned to erase blocks"));
        }
        self.check(offset, len, true)?;
        self.file.write_all_at(&vec![0xFF; len as usize], self.offset + offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
