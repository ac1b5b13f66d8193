//! [`Mtd`]: the store on a Linux MTD character device (`/dev/mtdN`), raw NOR or NAND.
//!
//! Geometry comes from `MEMGETINFO`; erase is `MEMERASE` per erase block; bad blocks are asked with
//! `MEMGETBADBLOCK` (the store skips them, see the store's `//!` doc). When an erase fails with EIO on NAND the
//! block is marked bad with `MEMSETBADBLOCK` and the error is returned: the write fails, the previous record
//! stays, and the next write re-reads the bad-block table before erasing. Reads and writes are `pread`/`pwrite`
//! on the character device (NAND writes are whole pages; the store aligns records to `writesize`). Writes to
//! an MTD character device are synchronous, so sync has nothing to do.
//!
//! ioctl numbers and structures: linux/include/uapi/mtd/mtd-abi.h.

use super::{Flash, Geometry};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// `struct mtd_info_user` (mtd-abi.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MtdInfoUser {
    /// The device type (`MTD_NORFLASH`, `MTD_NANDFLASH`, ...).
    pub kind: u8,
    /// Capability bits (`MTD_WRITEABLE`).
    pub flags: u32,
    /// Total size of the partition in bytes.
    pub size: u32,
    /// Erase block size in bytes.
    pub erasesize: u32,
    /// Smallest write (the NAND page; 1 on NOR).
    pub writesize: u32,
    /// Out-of-band bytes per page (not used).
    pub oobsize: u32,
    /// An obsolete field of the kernel ABI; not used.
    pub padding: u64,
}

/// `struct erase_info_user` (mtd-abi.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EraseInfoUser {
    /// First byte to erase, on an erase-block boundary.
    pub start: u32,
    /// Bytes to erase, whole erase blocks.
    pub length: u32,
}

// mtd-abi.h: MEMGETINFO _IOR('M', 1, struct mtd_info_user), MEMERASE _IOW('M', 2, struct erase_info_user),
// MEMGETBADBLOCK _IOW('M', 11, __kernel_loff_t), MEMSETBADBLOCK _IOW('M', 12, __kernel_loff_t).
nix::ioctl_read!(mem_get_info, b'M', 1, MtdInfoUser);
nix::ioctl_write_ptr!(mem_erase, b'M', 2, EraseInfoUser);
nix::ioctl_write_ptr!(mem_get_bad_block, b'M', 11, i64);
nix::ioctl_write_ptr!(mem_set_bad_block, b'M', 12, i64);

/// `mtd_info_user.type` of RAM (mtd-abi.h); kept with the other types for reading `kind`.
pub const MTD_RAM: u8 = 1;
/// `mtd_info_user.type` of NOR flash (no bad blocks).
pub const MTD_NORFLASH: u8 = 3;
/// `mtd_info_user.type` of SLC NAND flash (bad blocks are asked for).
pub const MTD_NANDFLASH: u8 = 4;
/// `mtd_info_user.type` of MLC NAND flash (handled as NAND; see the store's known limits).
pub const MTD_MLCNANDFLASH: u8 = 8;
/// `mtd_info_user.flags` bit of a writable device (a read-only partition is refused).
pub const MTD_WRITEABLE: u32 = 0x400;

/// The store on a Linux MTD character device: erase by `MEMERASE`, bad blocks skipped (see the module doc).
pub struct Mtd {
    file: File,
    geometry: Geometry,
    nand: bool,
}

impl Mtd {
    /// Open an MTD character device. Fails with a message when `path` is not one or is read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut info = MtdInfoUser::default();
        // SAFETY: MEMGETINFO fills one struct mtd_info_user, which `info` is (repr(C), same layout).
        unsafe { mem_get_info(file.as_raw_fd(), &mut info) }.map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not an MTD device (MEMGETINFO: {e})", path.display()),
            )
        })?;
        if info.flags & MTD_WRITEABLE == 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is a read-only MTD device", path.display()),
            ));
        }
        Ok(Mtd { file, geometry: geometry_of(&info), nand: matches!(info.kind, MTD_NANDFLASH | MTD_MLCNANDFLASH) })
    }
}

/// The store's view of an MTD device.
pub fn geometry_of(info: &MtdInfoUser) -> Geometry {
    Geometry { size: info.size as u64, erase_size: info.erasesize, write_size: info.writesize.max(1) }
}

impl Flash for Mtd {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let es = self.geometry.erase_size as u64;
        let mut at = offset;
        while at < offset + len {
            let req = EraseInfoUser { start: at as u32, length: es as u32 };
            // SAFETY: MEMERASE reads one struct erase_info_user from the pointer.
            if let Err(e) = unsafe { mem_erase(self.file.as_raw_fd(), &req) } {
                if self.nand && e == nix::errno::Errno::EIO {
                    let pos = at as i64;
                    // SAFETY: MEMSETBADBLOCK reads one loff_t from the pointer.
                    let _ = unsafe { mem_set_bad_block(self.file.as_raw_fd(), &pos) };
                    tracing::warn!(offset = at, "erase failed; block marked bad");
                }
                return Err(io::Error::from(e));
            }
            at += es;
        }
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn is_bad_block(&mut self, offset: u64) -> io::Result<bool> {
        if !self.nand {
            return Ok(false);
        }
        let pos = offset as i64;
        // SAFETY: MEMGETBADBLOCK reads one loff_t from the pointer and returns 0 (good) or 1 (bad).
        match unsafe { mem_get_bad_block(self.file.as_raw_fd(), &pos) } {
            Ok(r) => Ok(r > 0),
            Err(nix::errno::Errno::EOPNOTSUPP) => Ok(false),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_mtd_abi() {
        // Values from linux/include/uapi/mtd/mtd-abi.h as compiled on x86_64/arm64/armv7 (asm-generic ioctl).
        assert_eq!(std::mem::size_of::<MtdInfoUser>(), 32);
        assert_eq!(nix::request_code_read!(b'M', 1, std::mem::size_of::<MtdInfoUser>()) as u32, 0x8020_4d01);
        assert_eq!(nix::request_code_write!(b'M', 2, std::mem::size_of::<EraseInfoUser>()) as u32, 0x4008_4d02);
        assert_eq!(nix::request_code_write!(b'M', 11, std::mem::size_of::<i64>()) as u32, 0x4008_4d0b);
        assert_eq!(nix::request_code_write!(b'M', 12, std::mem::size_of::<i64>()) as u32, 0x4008_4d0c);
    }

    #[test]
    fn refuses_what_is_not_an_mtd_device() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plain");
        std::fs::write(&p, vec![0xFFu8; 8192]).unwrap();
        let err = Mtd::open(&p).err().expect("a regular file is not an MTD device");
        assert!(err.to_string().contains("is not an MTD device"), "{err}");
    }

    #[test]
    fn nand_geometry_uses_the_page_as_write_unit() {
        let info = MtdInfoUser { kind: MTD_NANDFLASH, erasesize: 128 * 1024, writesize: 2048, size: 1 << 20, ..Default::default() };
        let g = geometry_of(&info);
        assert_eq!((g.size, g.erase_size, g.write_size), (1 << 20, 128 * 1024, 2048));
        let nor = MtdInfoUser { kind: MTD_NORFLASH, erasesize: 64 * 1024, writesize: 1, size: 1 << 20, ..Default::default() };
        assert_eq!(geometry_of(&nor).write_size, 1);
    }
}
