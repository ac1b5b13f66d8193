//! Flash store (placeholder interface; the full two-slot record log lands with issue 2's store work).

use std::io;

/// Shape of a flash device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes usable by the store.
    pub size: u64,
    /// Erase-block size in bytes.
    pub erase_size: u32,
    /// Smallest programmable unit in bytes (1 for NOR, the sector size for block devices, the page for NAND).
    pub write_size: u32,
}

/// Raw access to a flash-like device. Offsets are relative to the start of the store's area.
pub trait Flash: Send {
    fn geometry(&self) -> Geometry;
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Program bytes. On NOR semantics a write can only clear bits.
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Erase `len` bytes starting at an erase-block boundary (to 0xFF).
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()>;
    /// Make completed writes durable.
    fn sync(&mut self) -> io::Result<()>;
    /// NAND: whether the erase block at `offset` is marked bad.
    fn is_bad_block(&mut self, _offset: u64) -> io::Result<bool> {
        Ok(false)
    }
}

impl Flash for Box<dyn Flash> {
    fn geometry(&self) -> Geometry {
        (**self).geometry()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write(offset, data)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        (**self).erase(offset, len)
    }
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
    fn is_bad_block(&mut self, offset: u64) -> io::Result<bool> {
        (**self).is_bad_block(offset)
    }
}

/// The newest valid record found at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub schema: u16,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What `Store::open` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Erased flash: a new store was formatted.
    Blank,
    /// The newest valid record.
    Found(Loaded),
    /// A Hearth store whose records are all damaged: start from defaults and show the recovery flag.
    Damaged,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the flash holds something that is not a Hearth store; refusing to erase it (start with --format to erase it)"
    )]
    NotAStore,
    #[error("the record is {len} bytes, more than a slot can hold ({max})")]
    TooLarge { len: usize, max: usize },
    #[error("flash geometry not usable: {0}")]
    Geometry(String),
    #[error("read-back after write did not match")]
    Verify,
    #[error("flash I/O: {0}")]
    Io(#[from] io::Error),
}

/// Counters for health and wear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub seq: u64,
    pub active_slot: u8,
    pub records_written: u64,
    pub erases: u64,
    pub bytes_written: u64,
    /// Damaged records skipped at open.
    pub skipped_at_open: u32,
}

pub struct Store<F: Flash> {
    flash: F,
    stats: Stats,
}

impl<F: Flash> Store<F> {
    pub fn open(mut flash: F) -> Result<(Self, Opened), StoreError> {
        let mut hdr = [0u8; 14];
        flash.read(0, &mut hdr)?;
        if hdr.iter().all(|b| *b == 0xFF) {
            return Ok((Self::format(flash)?, Opened::Blank));
        }
        if &hdr[..4] != b"HRTH" {
            return Err(StoreError::NotAStore);
        }
        let schema = u16::from_le_bytes([hdr[4], hdr[5]]);
        let len = u32::from_le_bytes([hdr[6], hdr[7], hdr[8], hdr[9]]) as usize;
        let mut payload = vec![0; len];
        flash.read(14, &mut payload)?;
        Ok((
            Store {
                flash,
                stats: Stats::default(),
            },
            Opened::Found(Loaded {
                schema,
                seq: 0,
                payload,
            }),
        ))
    }

    pub fn format(mut flash: F) -> Result<Self, StoreError> {
        let g = flash.geometry();
        flash.erase(0, g.size)?;
        Ok(Store {
            flash,
            stats: Stats::default(),
        })
    }

    pub fn write(&mut self, schema: u16, payload: &[u8]) -> Result<(), StoreError> {
        let g = self.flash.geometry();
        self.flash.erase(0, g.size)?;
        let mut rec = Vec::from(*b"HRTH");
        rec.extend_from_slice(&schema.to_le_bytes());
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(payload);
        self.flash.write(0, &rec)?;
        self.flash.sync()?;
        self.stats.records_written += 1;
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// A file that behaves like NOR flash (placeholder: plain file).
pub struct NorFile {
    file: std::fs::File,
    geometry: Geometry,
}

impl NorFile {
    /// Open `path`, creating it erased (all 0xFF) with the given geometry when it does not exist.
    pub fn open_or_create(path: &std::path::Path, size: u64, erase_size: u32) -> io::Result<Self> {
        use std::io::Write;
        let exists = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !exists {
            file.write_all(&vec![0xFF; size as usize])?;
            file.sync_all()?;
        }
        let size = file.metadata()?.len();
        Ok(NorFile {
            file,
            geometry: Geometry {
                size,
                erase_size,
                write_size: 1,
            },
        })
    }
}

impl Flash for NorFile {
    fn geometry(&self) -> Geometry {
        self.geometry
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, offset)
    }
    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&vec![0xFF; len as usize], offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
