//! [`NorFile`]: a regular file that behaves like NOR flash, for hosts and tests.
//!
//! Created erased (all 0xFF). A write ANDs the new bytes into the old ones (it can only clear bits, as NOR
//! programming does), an erase sets whole erase blocks back to 0xFF, and sync is `fdatasync(2)`. So a store
//! bug that would corrupt real NOR (writing twice over the same bytes without an erase) corrupts this file too.

use super::{Flash, Geometry};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// A regular file that behaves like NOR flash (writes only clear bits), for hosts and tests.
pub struct NorFile {
    file: File,
    geometry: Geometry,
}

impl NorFile {
    /// Open `path`, creating it erased (all 0xFF), mode `0600`, with the given geometry when it does not exist.
    /// An existing file keeps its size, which must be a whole number of erase blocks.
    pub fn open_or_create(path: &Path, size: u64, erase_size: u32) -> io::Result<Self> {
        if erase_size == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the erase size must not be 0"));
        }
        if !path.exists() {
            // Build the erased image beside it and rename, so a cut never leaves a half-created flash file.
            let tmp = path.with_extension("creating");
            let created = (|| {
                // The owner's alone (A-F8: it will hold the TLS key and password hashes): 0600 whatever the umask.
                let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                let block = vec![0xFF; 64 * 1024];
                let mut at = 0;
                while at < size {
                    let n = (size - at).min(block.len() as u64) as usize;
                    f.write_all_at(&block[..n], at)?;
                    at += n as u64;
                }
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            })();
            if let Err(e) = created {
                // A filesystem too small for the file: leave nothing behind that fills it (R-F9).
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let size = file.metadata()?.len();
        if !size.is_multiple_of(erase_size as u64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the flash file is {size} bytes, not a whole number of {erase_size}-byte erase blocks"),
            ));
        }
        Ok(NorFile { file, geometry: Geometry { size, erase_size, write_size: 1 } })
    }

    fn check(&self, offset: u64, len: u64) -> io::Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.geometry.size) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "access past the end of the flash file"));
        }
        Ok(())
    }
}

impl Flash for NorFile {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check(offset, buf.len() as u64)?;
        self.file.read_exact_at(buf, offset)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len() as u64)?;
        let mut old = vec![0u8; data.len()];
        self.file.read_exact_at(&mut old, offset)?;
        for (o, d) in old.iter_mut().zip(data) {
            *o &= d;
        }
        self.file.write_all_at(&old, offset)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let es = self.geometry.erase_size as u64;
        if !offset.is_multiple_of(es) || !len.is_multiple_of(es) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "erase not aligned to erase blocks"));
        }
        self.check(offset, len)?;
        self.file.write_all_at(&vec![0xFF; len as usize], offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
