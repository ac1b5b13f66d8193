//! The two slots: which one booted, where they and the boot state are, and what each holds.
//!
//! ```text
//! slot partition (board file [slots] a / b), size P
//! offset            size         content
//! 0                 image_size   the slot image (scripts/build-image: an ext4 file system with /boot/...)
//! ...               (unused)
//! P - 0x10000       0x10000      footer: bundle header + signed manifest (see bundle.rs), zero padded
//! ```
//!
//! The footer tells what version a slot holds (the System screen's "other slot"): `hearth update` writes it
//! after the image is verified; `hearth bundle --footer` makes one for the factory image's slot. A slot image
//! may use at most P − 64 KiB. A footer that is missing or not signed by the built-in key reads as "unknown".
//!
//! The booted slot is the kernel command line's `rauc.slot=A|B` (RAUC's convention, set by boot.cmd).

use super::bundle::{self, Manifest, FOOTER_LEN, HEADER_LEN, MANIFEST_MAX};
use serde::Deserialize;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One of the two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// `A` or `B`.
    pub fn parse(s: &str) -> Option<Slot> {
        match s {
            "A" => Some(Slot::A),
            "B" => Some(Slot::B),
            _ => None,
        }
    }

    /// The letter U-Boot's script uses.
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// The slot that is not this one.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// Its tries counter in the boot state.
    pub fn left_key(self) -> &'static str {
        match self {
            Slot::A => "BOOT_A_LEFT",
            Slot::B => "BOOT_B_LEFT",
        }
    }
}

/// The `rauc.slot=` word of a kernel command line.
pub fn booted_from_cmdline(cmdline: &str) -> Option<Slot> {
    cmdline.split_whitespace().find_map(|w| w.strip_prefix("rauc.slot=")).and_then(Slot::parse)
}

/// Where the slots and the boot state are: the board file's `[slots]` table (system::board::Slots has the
/// same keys), or `hearth serve --slots FILE` on a host (tests: files standing in for partitions).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostSlots {
    /// Board name bundles must be made for.
    pub board: String,
    /// The slot this "boot" runs from (on a board: the kernel command line says it).
    pub booted: String,
    /// The file that holds the boot state (the U-Boot environment on a board).
    pub bootstate: PathBuf,
    /// Slot A's partition (a file on a host).
    pub a: PathBuf,
    /// Slot B's partition (a file on a host).
    pub b: PathBuf,
    /// How long every heartbeat must stay fresh before a start counts as healthy.
    pub confirm_after_secs: u32,
}

/// The places of one box's slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Places {
    /// The boot state (U-Boot environment) that says which slot boots next.
    pub bootstate: PathBuf,
    /// Slot A's partition.
    pub a: PathBuf,
    /// Slot B's partition.
    pub b: PathBuf,
}

impl Places {
    /// The partition (device or file) of `slot`.
    pub fn slot(&self, slot: Slot) -> &Path {
        match slot {
            Slot::A => &self.a,
            Slot::B => &self.b,
        }
    }
}

/// Size in bytes of a partition or file (block devices report their size at the end).
pub fn size_of(path: &Path) -> std::io::Result<u64> {
    std::fs::File::open(path)?.seek(SeekFrom::End(0))
}

/// The largest slot image a partition of `part_size` bytes takes (the footer keeps its last 64 KiB).
pub fn capacity(part_size: u64) -> u64 {
    part_size.saturating_sub(FOOTER_LEN)
}

/// The verified manifest in the footer of the slot partition at `path`; None when there is none (or it is not
/// signed with `key`).
pub fn read_footer(path: &Path, key: &[u8; 32]) -> Option<Manifest> {
    use std::os::unix::fs::FileExt;
    let size = size_of(path).ok()?;
    let at = size.checked_sub(FOOTER_LEN)?;
    let mut buf = vec![0u8; HEADER_LEN + MANIFEST_MAX];
    std::fs::File::open(path).ok()?.read_exact_at(&mut buf, at).ok()?;
    bundle::read_head(&buf, key).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booted_slot_comes_from_rauc_slot() {
        assert_eq!(booted_from_cmdline("console=ttyAMA0 panic=5 rauc.slot=B hearth.log=debug\n"), Some(Slot::B));
        assert_eq!(booted_from_cmdline("console=ttyAMA0 rauc.slot=C"), None);
        assert_eq!(booted_from_cmdline("console=ttyAMA0"), None);
    }
}
