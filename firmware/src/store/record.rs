//! Sans-IO codec for the two things the store puts on flash: the slot header and the record header, and the
//! scan of one slot's bytes. No flash access here: [`scan_slot`] takes the bytes of a slot and says what is
//! in it. The byte layout is drawn in the store room's `//!` doc ([`super`]).

use super::{
    MAX_PAYLOAD, REC_HCRC, REC_FLAGS, REC_LEN, REC_MAGIC_OFF, REC_PCRC, REC_SCHEMA, REC_SEQ, RECORD_HEADER_LEN,
    RECORD_MAGIC, SLOT_CRC, SLOT_GEN, SLOT_HEADER_LEN, SLOT_LAYOUT, SLOT_LEN, SLOT_MAGIC, SLOT_MAGIC_OFF, SLOT_UNIT,
    LAYOUT_VERSION,
};

/// CRC-32C (Castagnoli, the iSCSI polynomial), as the design asks for both payload and header checks.
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `bytes`, the check of every slot header, record header and payload.
pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Round `n` up to a multiple of `unit` (unit > 0).
pub fn align_up(n: u64, unit: u64) -> u64 {
    n.div_ceil(unit) * unit
}

/// Written at the start of a slot right after the slot is erased. It says "this slot belongs to a Hearth
/// store" (so an unreadable record can be told from foreign content) and how the slot was laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotHeader {
    /// Record alignment used in this slot (the flash's write size, at least 4).
    pub unit: u16,
    /// Nominal slot length in bytes (half the store area, whole erase blocks).
    pub slot_len: u32,
    /// Counts slot switches over the life of the store: format writes 1 into slot A, every switch writes the
    /// larger generation + 1. Breaks ties between equal sequence numbers (the newer slot wins).
    pub generation: u32,
}

impl SlotHeader {
    /// The 20 bytes of the slot header as they go on flash (layout in the store's doc), its crc included.
    pub fn encode(&self) -> [u8; SLOT_HEADER_LEN] {
        let mut b = [0u8; SLOT_HEADER_LEN];
        b[SLOT_MAGIC_OFF..SLOT_MAGIC_OFF + 4].copy_from_slice(&SLOT_MAGIC.to_le_bytes());
        b[SLOT_LAYOUT..SLOT_LAYOUT + 2].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        b[SLOT_UNIT..SLOT_UNIT + 2].copy_from_slice(&self.unit.to_le_bytes());
        b[SLOT_LEN..SLOT_LEN + 4].copy_from_slice(&self.slot_len.to_le_bytes());
        b[SLOT_GEN..SLOT_GEN + 4].copy_from_slice(&self.generation.to_le_bytes());
        let crc = crc32c(&b[..SLOT_CRC]);
        b[SLOT_CRC..SLOT_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` unless magic, layout version and crc all check out.
    pub fn decode(b: &[u8]) -> Option<SlotHeader> {
        if b.len() < SLOT_HEADER_LEN || u32_at(b, SLOT_MAGIC_OFF) != SLOT_MAGIC {
            return None;
        }
        if crc32c(&b[..SLOT_CRC]) != u32_at(b, SLOT_CRC) || u16_at(b, SLOT_LAYOUT) != LAYOUT_VERSION {
            return None;
        }
        Some(SlotHeader { unit: u16_at(b, SLOT_UNIT), slot_len: u32_at(b, SLOT_LEN), generation: u32_at(b, SLOT_GEN) })
    }
}

/// The fixed-size front of a record. `crc32c(header)` covers bytes 0..24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// Version of the payload's encoding (state room).
    pub schema: u16,
    /// Reserved, written 0.
    pub flags: u16,
    /// Sequence number over the store's life: the highest valid one is the current state.
    pub seq: u64,
    /// Payload bytes that follow the header.
    pub len: u32,
    /// crc32c of the payload: a record whose payload fails it is skipped at open.
    pub payload_crc: u32,
}

impl RecordHeader {
    /// The header for `payload` as record `seq` of schema `schema` (flags 0, the payload's crc).
    pub fn new(schema: u16, seq: u64, payload: &[u8]) -> RecordHeader {
        RecordHeader { schema, flags: 0, seq, len: payload.len() as u32, payload_crc: crc32c(payload) }
    }

    /// The 28 bytes of the record header as they go on flash, its own crc included.
    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[REC_MAGIC_OFF..REC_MAGIC_OFF + 4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        b[REC_SCHEMA..REC_SCHEMA + 2].copy_from_slice(&self.schema.to_le_bytes());
        b[REC_FLAGS..REC_FLAGS + 2].copy_from_slice(&self.flags.to_le_bytes());
        b[REC_SEQ..REC_SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        b[REC_LEN..REC_LEN + 4].copy_from_slice(&self.len.to_le_bytes());
        b[REC_PCRC..REC_PCRC + 4].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c(&b[..REC_HCRC]);
        b[REC_HCRC..REC_HCRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// `None` unless magic and header crc check out and the length is one a writer could have produced.
    pub fn decode(b: &[u8]) -> Option<RecordHeader> {
        if b.len() < RECORD_HEADER_LEN || u32_at(b, REC_MAGIC_OFF) != RECORD_MAGIC {
            return None;
        }
        if crc32c(&b[..REC_HCRC]) != u32_at(b, REC_HCRC) {
            return None;
        }
        let len = u32_at(b, REC_LEN);
        if len as usize > MAX_PAYLOAD {
            return None;
        }
        Some(RecordHeader {
            schema: u16_at(b, REC_SCHEMA),
            flags: u16_at(b, REC_FLAGS),
            seq: u64_at(b, REC_SEQ),
            len,
            payload_crc: u32_at(b, REC_PCRC),
        })
    }

    /// Bytes the record takes in the slot, header included, rounded up to the record alignment.
    pub fn footprint(len: usize, unit: u64) -> u64 {
        align_up((RECORD_HEADER_LEN + len) as u64, unit)
    }
}

/// One record whose header checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where the record starts in the slot's logical bytes.
    pub offset: u64,
    /// The record's decoded header.
    pub header: RecordHeader,
    /// The payload crc matched too.
    pub valid: bool,
}

/// What one slot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotScan {
    /// The slot header, when one checked out (`None`: erased, torn or foreign).
    pub header: Option<SlotHeader>,
    /// Records whose header checked out, in flash order.
    pub entries: Vec<Entry>,
    /// Offset just past the last record that could be parsed.
    pub end: u64,
    /// Everything from `end` to the end of the slot is erased (0xFF): new records may be appended at `end`.
    pub tail_clean: bool,
    /// Records skipped: a header that did not check out (torn or flipped), or a payload whose crc failed.
    pub skipped: u32,
    /// Some byte after the slot header is not 0xFF.
    pub has_data: bool,
    /// Every byte of the slot is 0xFF.
    pub erased: bool,
}

/// Where records start in a slot: right after the slot header, aligned.
pub fn first_record(unit: u64) -> u64 {
    align_up(SLOT_HEADER_LEN as u64, unit)
}

/// Read the records of one slot from its bytes.
///
/// The scan walks from the first record, header to header, using each valid header's length. It stops at an
/// erased header (the end of the log) or at a header that does not check out: without a trusted length the
/// next record's position is unknown, and searching for a magic number inside what may be a torn record's
/// payload could pick up a record forged in stored user data, so it does not resync. Records after such a
/// header are out of reach; the slot's tail is then "dirty" and the next write moves to the other slot.
pub fn scan_slot(bytes: &[u8], unit: u64) -> SlotScan {
    let erased_from = |from: usize| bytes.get(from..).is_none_or(|rest| rest.iter().all(|b| *b == 0xFF));
    let header = SlotHeader::decode(bytes);
    let start = first_record(unit);
    let mut scan = SlotScan {
        header,
        erased: erased_from(0),
        has_data: !erased_from(start as usize),
        ..SlotScan::default()
    };
    let len = bytes.len() as u64;
    let mut p = start;
    let mut stopped = false;
    while p + RECORD_HEADER_LEN as u64 <= len {
        let h = &bytes[p as usize..p as usize + RECORD_HEADER_LEN];
        if h.iter().all(|b| *b == 0xFF) {
            break;
        }
        let Some(header) = RecordHeader::decode(h) else {
            scan.skipped += 1;
            stopped = true;
            break;
        };
        let size = RecordHeader::footprint(header.len as usize, unit);
        if p + size > len {
            scan.skipped += 1;
            stopped = true;
            break;
        }
        let body = &bytes[p as usize + RECORD_HEADER_LEN..p as usize + RECORD_HEADER_LEN + header.len as usize];
        let valid = crc32c(body) == header.payload_crc;
        if !valid {
            scan.skipped += 1;
        }
        scan.entries.push(Entry { offset: p, header, valid });
        p += size;
    }
    scan.end = p.min(len);
    scan.tail_clean = !stopped && erased_from(scan.end as usize);
    scan
}

/// Whether `bytes` could be an interrupted write of `target` over erased flash: every byte is `target`'s byte
/// with some of the bits it clears still set (NOR partial programming, or 0xFF where a torn sector kept the
/// old erased content).
pub fn is_torn_copy(bytes: &[u8], target: &[u8]) -> bool {
    bytes.len() == target.len() && bytes.iter().zip(target).all(|(b, t)| b & t == *t)
}
