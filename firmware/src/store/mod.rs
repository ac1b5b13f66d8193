//! Flash store: the power-loss-safe home of the one state record.
//!
//! Owns: the bytes on flash (slot and record layout, the write order that makes an update atomic across power
//! loss, the scan at open), the flash backends ([`NorFile`], [`BlockDevice`], [`Mtd`]) and the simulated flash
//! ([`sim`]) the proofs run on. Must not touch: what the payload means (the state room encodes and migrates
//! it; to the store it is bytes plus a schema number) or when to write (the state handle coalesces).
//!
//! # Layout
//!
//! The store area (`Geometry::size` bytes) is split into two slots of equal size, each a whole number of erase
//! blocks (an odd last block is left unused). Bad blocks (NAND) are skipped: a slot's logical bytes are its
//! good blocks laid end to end.
//!
//! ```text
//! area:  | slot A: SLOT blocks                          | slot B: SLOT blocks             | (spare block) |
//! slot:  | slot header | pad | rec | rec | rec | 0xFF 0xFF ... (free: erased)                          |
//!        0             SLOT_HEADER_LEN rounded up to the record alignment (`unit`) = first record
//! rec:   | record header (28) | payload (len) | pad 0xFF to a multiple of `unit` |
//!
//! slot header (20 bytes, little-endian), written right after the slot is erased:
//!   0  SLOT_MAGIC_OFF  magic      u32  "HSLT"
//!   4  SLOT_LAYOUT     layout     u16  LAYOUT_VERSION (1)
//!   6  SLOT_UNIT       unit       u16  record alignment = max(write_size, 4)
//!   8  SLOT_LEN        slot_len   u32  nominal slot length in bytes
//!  12  SLOT_GEN        generation u32  1 at format, +1 at every slot switch
//!  16  SLOT_CRC        crc32c(bytes 0..16) u32
//!
//! record header (28 bytes, little-endian), the commit point of a record:
//!   0  REC_MAGIC_OFF   magic   u32  "HREC"
//!   4  REC_SCHEMA      schema  u16  version of the payload's encoding (state room)
//!   6  REC_FLAGS       flags   u16  0 (reserved)
//!   8  REC_SEQ         seq     u64  1, 2, 3, ... over the life of the store
//!  16  REC_LEN         len     u32  payload bytes, at most MAX_PAYLOAD
//!  20  REC_PCRC        crc32c(payload) u32
//!  24  REC_HCRC        crc32c(bytes 0..24) u32
//! ```
//!
//! CRCs are CRC-32C (Castagnoli, `crc::CRC_32_ISCSI`).
//!
//! # Writing (one update)
//!
//! 1. If the record fits after the last record of the active slot and that tail is known erased, it goes there.
//!    Otherwise *switch*: erase the other slot, write its slot header (generation + 1), sync, and put the
//!    record at its first record offset. The other slot never holds the newest record, so erasing it loses
//!    only older ones.
//! 2. Write everything of the record except its first write unit (the rest of the payload), sync.
//! 3. Write the first unit (the 28-byte header plus the first payload bytes that share its unit), sync. The
//!    header is the commit point: before it is complete the record's header crc fails and the scan ignores it.
//! 4. Read the record back and compare. On any failure after step 3 began, the header unit is overwritten
//!    with zeros (best effort) so a record reported as failed cannot reappear at the next open, and the slot's
//!    tail counts as dirty: the next write switches slots.
//!
//! Records are aligned to the write unit, so a torn unit (a block device's sector write cut halfway) can only
//! touch the record being written, never the one before it.
//!
//! # Opening
//!
//! Both slots are read and scanned ([`record::scan_slot`]). The valid record with the highest
//! `(seq, slot generation)` wins; a record whose header or payload crc fails is skipped and counted. The
//! append point is after the last parsed record of the winning slot, if everything after it is erased;
//! a torn or garbage tail makes the next write switch slots. Verdicts:
//! - every byte erased → write slot A's header → [`Opened::Blank`]; every byte 0x00 (a new disk image or a
//!   trimmed partition: nothing to lose) → format → [`Opened::Blank`];
//! - slot A holds only an interrupted write of the format's slot header and is otherwise erased, slot B erased
//!   → format again → [`Opened::Blank`];
//! - a valid slot header or record header somewhere (a Hearth store) but no valid record:
//!   [`Opened::Blank`] if nothing but slot headers is written, else [`Opened::Damaged`];
//! - anything else → [`StoreError::NotAStore`], and nothing is written: only [`Store::format`] erases it.
//!
//! A power cut during the very first record after a format leaves a Hearth store with a torn record and no
//! valid one: that opens as `Damaged` (defaults, recovery flag) although nothing had been committed yet.
//!
//! A cut while [`Store::format`] erases a foreign or zeroed area leaves neither a store nor erased flash: it
//! opens as `NotAStore` and needs `--format` again.
//!
//! Wear: a switch erases the whole other slot, so each erase block is erased once per two slot switches;
//! the `figures` test prints erases per 1,000 updates.
//!
//! Known limits: a flipped bit in the *header* of an older record hides the records after it in the same
//! slot (the scan does not resync, see [`record::scan_slot`]); the store then opens to the newest record
//! before the flip. NAND: the first page of a record is programmed after its later pages, which SLC NAND
//! accepts but MLC NAND (strictly sequential page programming) does not.

mod block;
pub mod mtd;
mod nor_file;
pub mod record;
pub mod sim;

#[cfg(test)]
mod tests;

pub use block::BlockDevice;
pub use mtd::Mtd;
pub use nor_file::NorFile;

use record::{RecordHeader, SlotHeader, SlotScan, first_record, is_torn_copy, scan_slot};
use std::io;

/// Largest payload a record carries (the state room's `MAX_RECORD`; 17 KiB since state schema 5).
pub const MAX_PAYLOAD: usize = 17 * 1024;

/// The first four bytes of a slot header ("HSLT"): tell a Hearth slot from foreign content.
pub const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"HSLT");
/// The first four bytes of a record header ("HREC").
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"HREC");
/// Version of the slot and record layout drawn above; a slot header with another version is not read.
pub const LAYOUT_VERSION: u16 = 1;

/// Bytes of a slot header (layout above).
pub const SLOT_HEADER_LEN: usize = 20;
/// Offset of the slot header's magic.
pub const SLOT_MAGIC_OFF: usize = 0;
/// Offset of the slot header's layout version (u16).
pub const SLOT_LAYOUT: usize = 4;
/// Offset of the slot header's record alignment `unit` (u16).
pub const SLOT_UNIT: usize = 6;
/// Offset of the slot header's nominal slot length (u32).
pub const SLOT_LEN: usize = 8;
/// Offset of the slot header's generation (u32).
pub const SLOT_GEN: usize = 12;
/// Offset of the slot header's crc32c over bytes 0..16.
pub const SLOT_CRC: usize = 16;

/// Bytes of a record header (layout above); a record's payload follows it.
pub const RECORD_HEADER_LEN: usize = 28;
/// Offset of the record header's magic.
pub const REC_MAGIC_OFF: usize = 0;
/// Offset of the payload's schema version (u16), which the state room migrates from.
pub const REC_SCHEMA: usize = 4;
/// Offset of the record flags (u16, reserved: 0).
pub const REC_FLAGS: usize = 6;
/// Offset of the record's sequence number (u64): the newest record has the highest.
pub const REC_SEQ: usize = 8;
/// Offset of the payload length (u32).
pub const REC_LEN: usize = 16;
/// Offset of the payload's crc32c.
pub const REC_PCRC: usize = 20;
/// Offset of the header's own crc32c over bytes 0..24: the commit point of a record.
pub const REC_HCRC: usize = 24;

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
    /// The device's shape; the same for the life of the value.
    fn geometry(&self) -> Geometry;
    /// Fill `buf` from `offset`.
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
    /// Schema version of the payload's encoding (the state room decodes and migrates by it).
    pub schema: u16,
    /// The record's sequence number; the next write uses `seq + 1`.
    pub seq: u64,
    /// The record's bytes as the state room encoded them.
    pub payload: Vec<u8>,
}

/// What `Store::open` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Erased flash (a new store was formatted) or a formatted store that holds no record yet.
    Blank,
    /// The newest valid record.
    Found(Loaded),
    /// A Hearth store whose records are all damaged: start from defaults and show the recovery flag.
    Damaged,
}

/// Why the store could not open, write or format. After a failed write the previous record is still the
/// current one.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the flash holds something that is not a Hearth store; refusing to erase it (start with --format to erase it)")]
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
    /// Sequence number of the newest record (0: none yet).
    pub seq: u64,
    /// The slot (0 = A, 1 = B) that holds the newest record.
    pub active_slot: u8,
    /// Records written since open.
    pub records_written: u64,
    /// Erase blocks erased since open.
    pub erases: u64,
    /// Bytes programmed since open (records, padding and slot headers).
    pub bytes_written: u64,
    /// Damaged records skipped at open.
    pub skipped_at_open: u32,
    /// Slot generation of the active slot: 1 after format, +1 per slot switch over the store's life.
    pub generation: u32,
    /// Slot switches since open.
    pub slot_switches: u64,
    /// Bytes the smaller slot holds (its good erase blocks): what one slot switch makes room for.
    pub slot_bytes: u64,
}

impl Stats {
    /// Erases of each erase block over the store's life, derived from the slot generation that the slot
    /// headers keep on flash (so it survives restarts; no counter is stored). Every generation after the first
    /// is one slot switch, which erases every block of one slot; the slots take turns, so each block was
    /// erased `generation / 2` times, plus once more if the store was made by [`Store::format`] rather than on
    /// erased flash.
    pub fn erases_per_block(&self) -> u64 {
        u64::from(self.generation) / 2
    }
}

/// The store's area cut into two slots of good erase blocks.
#[derive(Clone, Debug)]
struct Slot {
    /// Physical offsets of the slot's good erase blocks, in order.
    blocks: Vec<u64>,
    /// First physical offset and nominal length of the slot (bad blocks included).
    base: u64,
}

/// The state record on a flash device: two slots of appended records, written so a power cut at any byte leaves the
/// last committed record readable (see the module doc).
#[derive(Clone, Debug)]
pub struct Store<F: Flash> {
    flash: F,
    erase: u64,
    unit: u64,
    slot_len: u64,
    slots: [Slot; 2],
    /// Slot holding the newest record (or where the next record goes).
    active: usize,
    /// Append point in the active slot; `None` when the tail is not known erased or the slot is unused.
    tail: Option<u64>,
    /// Generation of each slot's header, if it checked out.
    generations: [Option<u32>; 2],
    next_seq: u64,
    stats: Stats,
}

/// Geometry checks shared by open and format: (erase size, unit, nominal slot length).
fn layout(g: Geometry) -> Result<(u64, u64, u64), StoreError> {
    let erase = g.erase_size as u64;
    let unit = (g.write_size as u64).max(4);
    let bad = |m: String| Err(StoreError::Geometry(m));
    if erase == 0 || g.write_size == 0 {
        return bad(format!("erase size {} and write size {} must not be 0", g.erase_size, g.write_size));
    }
    if !erase.is_multiple_of(unit) || unit > u16::MAX as u64 {
        return bad(format!("erase size {erase} is not a multiple of the write unit {unit}"));
    }
    let slot_len = g.size / erase / 2 * erase;
    let need = first_record(unit) + RecordHeader::footprint(MAX_PAYLOAD, unit);
    if slot_len < need || slot_len > u32::MAX as u64 {
        return bad(format!(
            "{} bytes in {erase}-byte erase blocks gives two slots of {slot_len} bytes; each must hold a \
             {MAX_PAYLOAD}-byte record plus headers ({need} bytes): use a larger flash area",
            g.size
        ));
    }
    Ok((erase, unit, slot_len))
}

impl<F: Flash> Store<F> {
    /// Open the store on `flash`: read both slots and find the newest valid record. Erased flash is formatted.
    /// Foreign content is refused with [`StoreError::NotAStore`] and left untouched.
    pub fn open(flash: F) -> Result<(Self, Opened), StoreError> {
        let mut store = Store::new(flash)?;
        let images = [store.read_slot(0)?, store.read_slot(1)?];
        let scans = [scan_slot(&images[0], store.unit), scan_slot(&images[1], store.unit)];
        for (i, s) in scans.iter().enumerate() {
            if let Some(h) = s.header
                && (h.unit as u64 != store.unit || h.slot_len as u64 != store.slot_len)
            {
                return Err(StoreError::Geometry(format!(
                    "slot {} was written with {}-byte slots and {}-byte record alignment, but this flash \
                     gives {}-byte slots and {}-byte alignment: open it with the sizes it was made with",
                    slot_name(i),
                    h.slot_len,
                    h.unit,
                    store.slot_len,
                    store.unit
                )));
            }
        }
        if scans[0].erased && scans[1].erased {
            store.write_slot_header(0, 1)?;
            store.stats.generation = 1;
            return Ok((store, Opened::Blank));
        }
        if images.iter().all(|img| img.iter().all(|b| *b == 0)) {
            // A zeroed area (a new disk image, a trimmed partition) holds nothing to lose.
            tracing::warn!("the flash holds only zeros (a new disk image or a trimmed partition); formatting it");
            let store = Store::format(store.flash)?;
            return Ok((store, Opened::Blank));
        }
        let canonical = store.slot_header(1).encode();
        if scans[1].erased
            && is_torn_copy(&images[0][..SLOT_HEADER_LEN], &canonical)
            && images[0][SLOT_HEADER_LEN..].iter().all(|b| *b == 0xFF)
        {
            // Power was cut while the first slot header was written on erased flash.
            let store = Store::format(store.flash)?;
            return Ok((store, Opened::Blank));
        }
        let ours = scans.iter().any(|s| s.header.is_some() || !s.entries.is_empty());
        if !ours {
            return Err(StoreError::NotAStore);
        }
        store.generations = [scans[0].header.map(|h| h.generation), scans[1].header.map(|h| h.generation)];
        store.stats.skipped_at_open = scans[0].skipped + scans[1].skipped;
        let max_seen = scans.iter().flat_map(|s| s.entries.iter()).map(|e| e.header.seq).max().unwrap_or(0);
        store.next_seq = max_seen + 1;

        let gen_of = |i: usize| store.generations[i].unwrap_or(0);
        let best = (0..2)
            .flat_map(|i| scans[i].entries.iter().filter(|e| e.valid).map(move |e| (i, e)))
            .max_by_key(|(i, e)| (e.header.seq, gen_of(*i)));
        let opened = match best {
            Some((i, e)) => {
                let start = (e.offset as usize) + RECORD_HEADER_LEN;
                let payload = images[i][start..start + e.header.len as usize].to_vec();
                store.activate(i, &scans[i]);
                store.stats.seq = e.header.seq;
                Opened::Found(Loaded { schema: e.header.schema, seq: e.header.seq, payload })
            }
            None => {
                // Keep the slot with the newest remains; the next write erases the other one.
                let keep = (0..2)
                    .max_by_key(|i| {
                        (scans[*i].entries.iter().map(|e| e.header.seq).max(), scans[*i].has_data, gen_of(*i))
                    })
                    .unwrap();
                store.activate(keep, &scans[keep]);
                if scans.iter().any(|s| s.has_data) { Opened::Damaged } else { Opened::Blank }
            }
        };
        tracing::debug!(
            seq = store.stats.seq,
            slot = slot_name(store.active),
            skipped = store.stats.skipped_at_open,
            append_at = ?store.tail,
            "store opened"
        );
        Ok((store, opened))
    }

    /// Erase the whole store area and start an empty store. This is the only path that erases foreign content.
    pub fn format(flash: F) -> Result<Self, StoreError> {
        let mut store = Store::new(flash)?;
        store.erase_slot(1)?;
        store.erase_slot(0)?;
        store.write_slot_header(0, 1)?;
        store.stats.generation = 1;
        Ok(store)
    }

    /// Append one record holding `payload`, atomically: after a power cut at any point the store opens to
    /// either the previous record or this one.
    pub fn write(&mut self, schema: u16, payload: &[u8]) -> Result<(), StoreError> {
        let cap = self.capacity(self.active).min(self.capacity(1 - self.active));
        let max = MAX_PAYLOAD.min(cap.saturating_sub(first_record(self.unit) + RECORD_HEADER_LEN as u64) as usize);
        if payload.len() > max {
            return Err(StoreError::TooLarge { len: payload.len(), max });
        }
        let seq = self.next_seq;
        let size = RecordHeader::footprint(payload.len(), self.unit);
        let mut rec = Vec::with_capacity(size as usize);
        rec.extend_from_slice(&RecordHeader::new(schema, seq, payload).encode());
        rec.extend_from_slice(payload);
        rec.resize(size as usize, 0xFF);

        let append = self.tail.filter(|t| t + size <= self.capacity(self.active));
        let (slot, offset, generation) = match append {
            Some(t) => (self.active, t, self.generations[self.active]),
            None => {
                let other = 1 - self.active;
                let generation = self.generations.iter().flatten().max().copied().unwrap_or(0) + 1;
                self.refresh_blocks(other)?;
                if first_record(self.unit) + size > self.capacity(other) {
                    return Err(StoreError::TooLarge { len: payload.len(), max });
                }
                self.erase_slot(other)?;
                self.write_slot_header(other, generation)?;
                self.stats.slot_switches += 1;
                (other, first_record(self.unit), Some(generation))
            }
        };
        // The seq is used up whatever happens next, so a failed record can never share it with a later one.
        self.next_seq += 1;
        match self.commit(slot, offset, &rec) {
            Ok(()) => {
                self.active = slot;
                self.generations[slot] = generation;
                self.tail = Some(offset + size);
                self.stats.seq = seq;
                self.stats.records_written += 1;
                self.stats.active_slot = slot as u8;
                self.stats.generation = generation.unwrap_or(0);
                Ok(())
            }
            Err(e) => {
                if slot == self.active {
                    self.tail = None;
                }
                Err(e)
            }
        }
    }

    /// Health and wear counters (newest seq, erases, bytes programmed, slot switches) since open.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The same store state over another flash (the proofs fork a simulated chip per cut point).
    #[cfg(test)]
    fn with_flash<G: Flash>(&self, flash: G) -> Store<G> {
        Store {
            flash,
            erase: self.erase,
            unit: self.unit,
            slot_len: self.slot_len,
            slots: self.slots.clone(),
            active: self.active,
            tail: self.tail,
            generations: self.generations,
            next_seq: self.next_seq,
            stats: self.stats,
        }
    }

    /// Give the flash back (tests and tools).
    pub fn into_flash(self) -> F {
        self.flash
    }

    fn new(flash: F) -> Result<Self, StoreError> {
        let (erase, unit, slot_len) = layout(flash.geometry())?;
        let mut store = Store {
            slots: [Slot { blocks: Vec::new(), base: 0 }, Slot { blocks: Vec::new(), base: slot_len }],
            flash,
            erase,
            unit,
            slot_len,
            active: 0,
            tail: None,
            generations: [None, None],
            next_seq: 1,
            stats: Stats::default(),
        };
        store.refresh_blocks(0)?;
        store.refresh_blocks(1)?;
        let need = first_record(unit) + RecordHeader::footprint(MAX_PAYLOAD, unit);
        for slot in 0..2 {
            if store.capacity(slot) < need {
                return Err(StoreError::Geometry(format!(
                    "slot {} has only {} good bytes after skipping bad blocks; it must hold {need}",
                    slot_name(slot),
                    store.capacity(slot)
                )));
            }
        }
        store.tail = Some(first_record(unit));
        store.stats.slot_bytes = store.capacity(0).min(store.capacity(1));
        Ok(store)
    }

    fn slot_header(&self, generation: u32) -> SlotHeader {
        SlotHeader { unit: self.unit as u16, slot_len: self.slot_len as u32, generation }
    }

    /// Logical bytes a slot holds (its good blocks).
    fn capacity(&self, slot: usize) -> u64 {
        self.slots[slot].blocks.len() as u64 * self.erase
    }

    fn refresh_blocks(&mut self, slot: usize) -> Result<(), StoreError> {
        let base = self.slots[slot].base;
        let mut blocks = Vec::new();
        for b in 0..self.slot_len / self.erase {
            let at = base + b * self.erase;
            if !self.flash.is_bad_block(at)? {
                blocks.push(at);
            } else {
                tracing::warn!(offset = at, slot = slot_name(slot), "skipping a bad erase block");
            }
        }
        self.slots[slot].blocks = blocks;
        Ok(())
    }

    /// Use `slot` as the active slot as found by a scan.
    fn activate(&mut self, slot: usize, scan: &SlotScan) {
        self.active = slot;
        self.stats.active_slot = slot as u8;
        self.stats.generation = self.generations[slot].unwrap_or(0);
        self.tail = if scan.tail_clean && scan.header.is_some() { Some(scan.end) } else { None };
    }

    /// Physical pieces of a logical range of a slot: (physical offset, offset into the range, length).
    fn pieces(&self, slot: usize, offset: u64, len: u64) -> Vec<(u64, usize, usize)> {
        let mut out = Vec::new();
        let mut done = 0u64;
        while done < len {
            let at = offset + done;
            let block = (at / self.erase) as usize;
            let within = at % self.erase;
            let n = (self.erase - within).min(len - done);
            out.push((self.slots[slot].blocks[block] + within, done as usize, n as usize));
            done += n;
        }
        out
    }

    fn read_at(&mut self, slot: usize, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        for (phys, from, n) in self.pieces(slot, offset, buf.len() as u64) {
            self.flash.read(phys, &mut buf[from..from + n])?;
        }
        Ok(())
    }

    fn write_at(&mut self, slot: usize, offset: u64, data: &[u8]) -> io::Result<()> {
        for (phys, from, n) in self.pieces(slot, offset, data.len() as u64) {
            self.flash.write(phys, &data[from..from + n])?;
            self.stats.bytes_written += n as u64;
        }
        Ok(())
    }

    fn read_slot(&mut self, slot: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.capacity(slot) as usize];
        self.read_at(slot, 0, &mut buf)?;
        Ok(buf)
    }

    fn erase_slot(&mut self, slot: usize) -> io::Result<()> {
        for b in self.slots[slot].blocks.clone() {
            self.flash.erase(b, self.erase)?;
            self.stats.erases += 1;
        }
        // Block devices erase by writing 0xFF through the cache: make it durable before the slot header.
        self.flash.sync()
    }

    fn write_slot_header(&mut self, slot: usize, generation: u32) -> io::Result<()> {
        let mut unit = vec![0xFF; first_record(self.unit) as usize];
        unit[..SLOT_HEADER_LEN].copy_from_slice(&self.slot_header(generation).encode());
        self.write_at(slot, 0, &unit)?;
        self.flash.sync()?;
        self.generations[slot] = Some(generation);
        Ok(())
    }

    /// Body, sync, header unit (the commit point), sync, read back.
    fn commit(&mut self, slot: usize, offset: u64, rec: &[u8]) -> Result<(), StoreError> {
        let head = (RECORD_HEADER_LEN as u64).next_multiple_of(self.unit).min(rec.len() as u64) as usize;
        if rec.len() > head {
            self.write_at(slot, offset + head as u64, &rec[head..])?;
            self.flash.sync()?;
        }
        let committed = (|| -> Result<(), StoreError> {
            self.write_at(slot, offset, &rec[..head])?;
            self.flash.sync()?;
            let mut back = vec![0u8; rec.len()];
            self.read_at(slot, offset, &mut back)?;
            if back != rec {
                return Err(StoreError::Verify);
            }
            Ok(())
        })();
        if let Err(e) = &committed {
            tracing::error!(error = %e, slot = slot_name(slot), offset, "record write failed; revoking it");
            // Zero the header unit (bits can always be cleared) so the record cannot count at the next open.
            let zeros = vec![0u8; head];
            if self.write_at(slot, offset, &zeros).and_then(|_| self.flash.sync()).is_err() {
                tracing::error!(slot = slot_name(slot), offset, "could not revoke the failed record");
            }
        }
        committed
    }
}

fn slot_name(slot: usize) -> &'static str {
    if slot == 0 { "A" } else { "B" }
}
