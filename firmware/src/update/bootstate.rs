//! The boot state U-Boot's boot script (board/boot/boot.cmd) and Hearth share: a raw partition, read and
//! written whole (sans-IO core; [`read_file`]/[`write_file`] are the thin file shell).
//!
//! ```text
//! boot-state partition (board file [slots] bootstate)
//! offset   size     content
//! 0x0000   0x4000   copy 1
//! 0x4000   0x4000   copy 2 (same format)
//!
//! one copy (U-Boot `env export -c -s 0x4000`; `mkenvimage -s 0x4000 -p 0` makes the same)
//! offset   size     content
//! 0        4        CRC-32/IEEE (zlib's crc32) of bytes 4..0x4000, u32 little-endian
//! 4        n        key=value\0 key=value\0 ... \0   (the list ends with an empty entry)
//! 4+n      rest     zero padding
//! ```
//!
//! Read: copy 1 if its CRC holds, else copy 2, else the defaults (`BOOT_ORDER="A B"`, both counters 3), as the
//! boot script does. Write: copy 1, fsync, copy 2, fsync (a cut between the two leaves one good copy).
//! Unknown keys are kept. This is not U-Boot's CONFIG_SYS_REDUNDAND_ENVIRONMENT format (no flag byte):
//! `env import -c` reads only the single-copy format.
//!
//! The variables U-Boot keeps (the boot script's `bs_vars`; it imports and exports only these, so anything
//! else is dropped at its next save): **`BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT HEARTH_UPDATE`**.
//! - `BOOT_ORDER`: slots in the order tried, `"A B"` or `"B A"`.
//! - `BOOT_A_LEFT`, `BOOT_B_LEFT`: tries left, 0..=3 (U-Boot decrements before each try).
//! - `HEARTH_UPDATE`: the last update, `<outcome> <slot> <version>`, outcome `pending` (installed, not yet
//!   confirmed), `confirmed` or `failed` (rolled back); absent before the first update. Only Hearth writes it.

use super::slot::Slot;
use std::collections::BTreeMap;

/// Size of one copy.
pub const COPY_LEN: usize = 0x4000;
/// Offset of copy 2 in the partition.
pub const COPY2_OFFSET: usize = 0x4000;
/// Bytes of the partition Hearth reads and writes.
pub const STATE_LEN: usize = 2 * COPY_LEN;
/// Offset of the first `key=value` entry in a copy.
pub const OFF_ENTRIES: usize = 4;
/// Tries a slot gets when it is made the next boot or confirmed.
pub const TRIES: u8 = 3;
/// The variables the boot script imports and exports (its `bs_vars`).
pub const BS_VARS: [&str; 4] = ["BOOT_ORDER", "BOOT_A_LEFT", "BOOT_B_LEFT", "HEARTH_UPDATE"];

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Which copy the state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Copy1,
    Copy2,
    /// Neither copy was valid: the boot script's defaults.
    Defaults,
}

/// The last update, as `HEARTH_UPDATE` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastUpdate {
    /// Whether the update is pending, confirmed or rolled back.
    pub outcome: Outcome,
    /// The slot the update was installed into.
    pub slot: Slot,
    /// The version the update installed, as the manifest named it.
    pub version: String,
}

/// How the last update went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written to the slot and made the next boot; the new firmware has not confirmed itself yet.
    Pending,
    Confirmed,
    /// The new firmware used up its tries and U-Boot fell back to the other slot.
    Failed,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Confirmed => "confirmed",
            Outcome::Failed => "failed",
        }
    }
}

/// The boot state's variables (sorted by key, as U-Boot exports them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootState {
    vars: BTreeMap<String, String>,
}

/// The state is too big for one copy (only possible with many unknown keys).
#[derive(Debug, thiserror::Error)]
#[error("the boot state does not fit in 16 KiB")]
pub struct TooBig;

impl Default for BootState {
    fn default() -> Self {
        let mut s = BootState { vars: BTreeMap::new() };
        s.set("BOOT_ORDER", "A B");
        s.set("BOOT_A_LEFT", "3");
        s.set("BOOT_B_LEFT", "3");
        s
    }
}

impl BootState {
    /// Read the partition's first [`STATE_LEN`] bytes (shorter input counts as missing copies).
    pub fn read(part: &[u8]) -> (BootState, Source) {
        if let Some(s) = part.get(..COPY_LEN).and_then(BootState::decode_copy) {
            return (s, Source::Copy1);
        }
        if let Some(s) = part.get(COPY2_OFFSET..COPY2_OFFSET + COPY_LEN).and_then(BootState::decode_copy) {
            return (s, Source::Copy2);
        }
        (BootState::default(), Source::Defaults)
    }

    /// One copy, or None when its CRC (or entry list) is broken.
    pub fn decode_copy(copy: &[u8]) -> Option<BootState> {
        if copy.len() != COPY_LEN || CRC32.checksum(&copy[OFF_ENTRIES..]) != u32::from_le_bytes(copy[..4].try_into().ok()?) {
            return None;
        }
        let mut vars = BTreeMap::new();
        let mut rest = &copy[OFF_ENTRIES..];
        loop {
            let end = rest.iter().position(|b| *b == 0)?;
            if end == 0 {
                return Some(BootState { vars });
            }
            let entry = std::str::from_utf8(&rest[..end]).ok()?;
            let (k, v) = entry.split_once('=')?;
            vars.insert(k.to_string(), v.to_string());
            rest = &rest[end + 1..];
        }
    }

    /// One copy's bytes (the same goes to both copies).
    pub fn encode_copy(&self) -> Result<Vec<u8>, TooBig> {
        let mut out = vec![0u8; OFF_ENTRIES];
        for (k, v) in &self.vars {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out.push(0);
        if out.len() > COPY_LEN {
            return Err(TooBig);
        }
        out.resize(COPY_LEN, 0);
        let crc = CRC32.checksum(&out[OFF_ENTRIES..]);
        out[..4].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// A variable's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Set a variable (keys and values must not hold `=` in keys or NUL anywhere; Hearth's own never do).
    pub fn set(&mut self, key: &str, value: &str) {
        debug_assert!(!key.contains('=') && !key.contains('\0') && !value.contains('\0'));
        self.vars.insert(key.to_string(), value.to_string());
    }

    /// The slots in the order U-Boot tries them (unknown words skipped).
    pub fn order(&self) -> Vec<Slot> {
        self.get("BOOT_ORDER").unwrap_or("A B").split(' ').filter_map(Slot::parse).collect()
    }

    /// Tries left for `slot` (a missing or unreadable counter counts as the script's default, 3).
    pub fn left(&self, slot: Slot) -> u8 {
        self.get(slot.left_key()).and_then(|v| v.parse().ok()).unwrap_or(TRIES)
    }

    /// Make `first` the next boot with full tries, the other slot after it.
    pub fn boot_next(&mut self, first: Slot) {
        self.set("BOOT_ORDER", &format!("{} {}", first.name(), first.other().name()));
        self.set(first.left_key(), &TRIES.to_string());
    }

    /// The last update, if one is recorded and readable.
    pub fn last_update(&self) -> Option<LastUpdate> {
        let mut w = self.get("HEARTH_UPDATE")?.split(' ');
        let outcome = match w.next()? {
            "pending" => Outcome::Pending,
            "confirmed" => Outcome::Confirmed,
            "failed" => Outcome::Failed,
            _ => return None,
        };
        let slot = Slot::parse(w.next()?)?;
        // The rest is the version: a bundle's is one word, "an unknown version" (no footer to read) is three.
        let version = w.collect::<Vec<_>>().join(" ");
        (!version.is_empty()).then_some(LastUpdate { outcome, slot, version })
    }

    /// Record the last update.
    pub fn set_last_update(&mut self, u: &LastUpdate) {
        self.set("HEARTH_UPDATE", &format!("{} {} {}", u.outcome.word(), u.slot.name(), u.version));
    }
}

/// Read the boot state from the partition (device or file) at `path`.
pub fn read_file(path: &std::path::Path) -> std::io::Result<(BootState, Source)> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(STATE_LEN);
    std::fs::File::open(path)?.take(STATE_LEN as u64).read_to_end(&mut buf)?;
    Ok(BootState::read(&buf))
}

/// Write both copies: copy 1, fsync, copy 2, fsync.
pub fn write_file(path: &std::path::Path, state: &BootState) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let copy = state.encode_copy().map_err(std::io::Error::other)?;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all_at(&copy, 0)?;
    f.sync_all()?;
    f.write_all_at(&copy, COPY2_OFFSET as u64)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("fixtures/bootstate-copy.bin");

    #[test]
    fn reads_what_u_boot_tools_wrote() {
        let s = BootState::decode_copy(FIXTURE).expect("mkenvimage's copy is valid");
        assert_eq!(s.order(), [Slot::B, Slot::A]);
        assert_eq!((s.left(Slot::A), s.left(Slot::B)), (3, 0));
        assert_eq!(s.last_update(), Some(LastUpdate { outcome: Outcome::Failed, slot: Slot::B, version: "0.2.0".into() }));
        // Sorted keys: U-Boot's export order; mkenvimage kept the file's order, so compare decoded values.
        assert_eq!(BootState::decode_copy(&s.encode_copy().unwrap()).unwrap(), s);
    }

    #[test]
    fn writes_what_u_boot_reads() {
        // Same variables as the fixture's text in U-Boot's (sorted) export order: the bytes must match what
        // mkenvimage made from that order, CRC included.
        let mut s = BootState { vars: BTreeMap::new() };
        s.set("BOOT_ORDER", "B A");
        s.set("BOOT_A_LEFT", "3");
        s.set("BOOT_B_LEFT", "0");
        s.set("HEARTH_UPDATE", "failed B 0.2.0");
        let mine = s.encode_copy().unwrap();
        let text = "BOOT_A_LEFT=3\0BOOT_B_LEFT=0\0BOOT_ORDER=B A\0HEARTH_UPDATE=failed B 0.2.0\0\0";
        assert_eq!(&mine[4..4 + text.len()], text.as_bytes());
        assert!(mine[4 + text.len()..].iter().all(|b| *b == 0));
        assert_eq!(u32::from_le_bytes(mine[..4].try_into().unwrap()), crc32_ieee_bitwise(&mine[4..]));
    }

    /// The 0xEDB88320 loop (zlib's crc32), independent of the crc crate.
    fn crc32_ieee_bitwise(b: &[u8]) -> u32 {
        let mut c = !0u32;
        for x in b {
            c ^= *x as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn copy_two_then_defaults() {
        let mut part = vec![0u8; STATE_LEN];
        part[COPY2_OFFSET..].copy_from_slice(FIXTURE);
        part[..COPY_LEN].copy_from_slice(FIXTURE);
        assert_eq!(BootState::read(&part).1, Source::Copy1);
        part[10] ^= 1;
        let (s, src) = BootState::read(&part);
        assert_eq!((src, s.order()), (Source::Copy2, vec![Slot::B, Slot::A]));
        part[COPY2_OFFSET + 10] ^= 1;
        let (s, src) = BootState::read(&part);
        assert_eq!((src, s.order(), s.left(Slot::A), s.left(Slot::B)), (Source::Defaults, vec![Slot::A, Slot::B], 3, 3));
        assert_eq!(BootState::read(&[]).1, Source::Defaults);
    }

    #[test]
    fn unknown_keys_are_kept_and_the_file_shell_writes_both_copies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstate");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let mut s = BootState::default();
        s.set("SOMETHING_ELSE", "kept");
        s.boot_next(Slot::B);
        write_file(&path, &s).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert_eq!(bytes[..COPY_LEN], bytes[COPY2_OFFSET..STATE_LEN]);
        let (back, src) = read_file(&path).unwrap();
        assert_eq!((src, back.get("SOMETHING_ELSE"), back.order()), (Source::Copy1, Some("kept"), vec![Slot::B, Slot::A]));
    }
}
