//! Board profiles: `board/<name>.toml`, read by init mode from the initramfs (`/etc/hearth/board.toml`).
//!
//! Boards are data, not code: everything that differs between the QEMU machines, a Raspberry Pi 4 and a Helios4
//! is in the profile. scripts/build-image reads the same files (python3 tomllib) to fetch the kernel and pick
//! the modules; this module is the firmware's reading of them. Unknown fields are errors, so a typo is named.

use serde::Deserialize;
use std::path::Path;

/// Where build-image puts the board file inside the initramfs.
pub const BOARD_PATH: &str = "/etc/hearth/board.toml";

/// One board's profile (`board/<name>.toml`): what init mode needs to bring the box up and `scripts/build-image`
/// needs to build its image.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// The board's name, as `board/<name>.toml` and the image names use it.
    pub name: String,
    /// Rust target triple of the hearth binary for this board.
    pub target: String,
    /// The hostname init sets (the DLNA friendly name and the self-signed certificate use it).
    pub hostname: String,
    /// Serial console device name without /dev (kernel `console=`).
    pub console: String,
    /// Where the kernel comes from.
    pub kernel: Kernel,
    /// Kernel modules in load order.
    #[serde(default)]
    pub modules: Vec<Module>,
    /// How the LAN comes up.
    pub network: Network,
    /// Where the flash store lives.
    pub flash: FlashArea,
    /// The hardware watchdog.
    pub watchdog: Watchdog,
    /// The media disk.
    pub media: Media,
    /// When repeated watchdog resets put the box in safe mode.
    pub safe_mode: SafeModeRule,
    /// The A/B boot slots and U-Boot's boot-state partition (issue 19); absent: no updates.
    #[serde(default)]
    pub slots: Option<Slots>,
    /// Only for boards that run under QEMU (scripts/run-qemu reads it).
    #[serde(default)]
    pub qemu: Option<Qemu>,
    /// The boot disk's layout and where U-Boot comes from (scripts/build-image writes disk.img from it).
    #[serde(default)]
    pub image: Option<ImageLayout>,
}

/// `[image]`: the boot disk build-image writes. MBR: p1 FAT boot (boot.scr), p2 raw boot state, p3 the store
/// (`[flash]`), p4 extended holding p5 slot A and p6 slot B (board/boot/boot.cmd reads the same numbers).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImageLayout {
    /// Where U-Boot comes from: `qemu` (run-qemu's -bios), `rpi` (u-boot.bin on p1), `board` (the board's flash).
    pub uboot: String,
    /// Debian package and path under /usr/lib/u-boot/ of the U-Boot binary (`qemu`, `rpi`).
    #[serde(default)]
    pub uboot_package: Option<String>,
    #[serde(default)]
    pub uboot_binary: Option<String>,
    /// `rpi`: the Pi boot firmware's package and the files of it that go onto p1.
    #[serde(default)]
    pub firmware_package: Option<String>,
    #[serde(default)]
    pub firmware_files: Vec<String>,
    /// Size of the FAT boot partition and of each slot, MiB.
    pub boot_mib: u32,
    pub slot_mib: u32,
    /// The boot disk as Linux names it (`/dev/vda`, `/dev/mmcblk0`): partitions are this plus the number.
    pub disk: String,
}

/// Where the board's kernel comes from (a Debian kernel package) and its device tree.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    /// Debian architecture of the kernel package (arm64, armhf).
    pub debian_arch: String,
    /// Debian metapackage the versioned kernel image package is resolved from.
    pub package: String,
    /// Device tree blob, relative to the package's `/usr/lib/linux-image-<version>/`.
    #[serde(default)]
    pub device_tree: Option<String>,
}

/// A kernel module init loads at boot.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// File stem of the `.ko` (as in the kernel package, `-` or `_`).
    pub name: String,
    /// Module parameters, space separated (`heartbeat=30 nowayout=0`).
    #[serde(default)]
    pub params: String,
}

/// How init brings up the LAN interface.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The interface name as the kernel names it (`eth0`).
    pub interface: String,
    /// Ask DHCP (the default); the static address is used when this is off or DHCP gets no answer.
    #[serde(default = "yes")]
    pub dhcp: bool,
    /// `a.b.c.d/prefix`, used when DHCP gets no answer.
    pub static_address: String,
    /// The default gateway with the static address, if any.
    pub static_gateway: Option<std::net::Ipv4Addr>,
}

/// The device region that holds the flash store (a raw MTD partition or a block device).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlashArea {
    /// The device node (`/dev/mtd0`, `/dev/mmcblk0p2`).
    pub device: String,
    /// Where the store's area starts on the device, in bytes.
    pub offset: u64,
    /// The store's area in bytes (two slots).
    pub size: u64,
    /// The erase block size in bytes (for a block device, what the store treats as one).
    pub erase_size: u32,
}

/// The hardware watchdog init opens and feeds.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Watchdog {
    /// The device node, usually `/dev/watchdog`.
    pub device: String,
    /// Seconds without a feed before the board resets (the driver may round it).
    pub timeout_secs: u32,
}

/// The media disk init mounts for the libraries.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// The block device of the media partition (`/dev/sda1`).
    pub device: String,
    /// Its file system type as `mount(2)` names it (`ext4`).
    pub fs: String,
    /// Where it is mounted (`/media`).
    pub mount: String,
}

/// Safe mode: `watchdog_resets` watchdog resets within `within_minutes` minutes.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SafeModeRule {
    /// Watchdog resets that turn safe mode on, when they fall within `within_minutes`.
    pub watchdog_resets: u32,
    /// The window, in minutes, the resets are counted in.
    pub within_minutes: u32,
}

/// `[slots]`: where the update room (firmware/src/update/) finds the two slots and the boot state, as Linux
/// names the partitions (scripts/build-image writes the same layout; board/boot/boot.cmd boots it):
///
/// ```toml
/// [slots]
/// bootstate = "/dev/vda2"      # raw boot-state partition: two 16 KiB U-Boot env copies
/// a = "/dev/vda5"              # slot A partition (image, footer in its last 64 KiB)
/// b = "/dev/vda6"              # slot B partition
/// confirm_after_secs = 60      # every heartbeat fresh this long → this start is confirmed
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Slots {
    /// The raw boot-state partition (two U-Boot env copies).
    pub bootstate: String,
    /// Slot A's partition.
    pub a: String,
    /// Slot B's partition.
    pub b: String,
    /// A start is confirmed once every heartbeat stayed fresh this many seconds.
    pub confirm_after_secs: u32,
}

/// How `scripts/run-qemu` starts the machine for a QEMU board.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    /// The QEMU system emulator (`qemu-system-aarch64`).
    pub system: String,
    /// QEMU's `-machine`.
    pub machine: String,
    /// QEMU's `-cpu`.
    pub cpu: String,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The emulated watchdog device QEMU adds (`-device`).
    pub watchdog: String,
}

fn yes() -> bool {
    true
}

/// Why the board file could not be read or is wrong; names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot read the board file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// toml's message names the field (`missing field `device``) and shows the line.
    #[error("board file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("board file {path}: field `{field}`: {message}")]
    Field { path: String, field: &'static str, message: String },
}

impl Board {
    /// Read and check the board file at `path` (init reads [`BOARD_PATH`]).
    pub fn load(path: &Path) -> Result<Board, BoardError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BoardError::Read { path: path.display().to_string(), source })?;
        Board::parse(&path.display().to_string(), &text)
    }

    /// Parse and check a board file; `path` is only used in error messages.
    pub fn parse(path: &str, text: &str) -> Result<Board, BoardError> {
        let board: Board =
            toml::from_str(text).map_err(|e| BoardError::Parse { path: path.into(), message: e.to_string() })?;
        board.check().map_err(|(field, message)| BoardError::Field { path: path.into(), field, message })?;
        Ok(board)
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        const TARGETS: [&str; 2] = ["aarch64-unknown-linux-musl", "armv7-unknown-linux-musleabihf"];
        if !TARGETS.contains(&self.target.as_str()) {
            return Err(("target", format!("{:?} is not one of {}", self.target, TARGETS.join(", "))));
        }
        if self.hostname.is_empty() || self.hostname.len() > 63 {
            return Err(("hostname", "must be 1 to 63 characters".into()));
        }
        self.network.static_net().map_err(|m| ("network.static_address", m))?;
        let f = &self.flash;
        if f.erase_size == 0 || !f.erase_size.is_power_of_two() {
            return Err(("flash.erase_size", format!("must be a power of two, not {}", f.erase_size)));
        }
        if !f.size.is_multiple_of(u64::from(f.erase_size)) || f.size < 2 * f.erase_size as u64 {
            return Err(("flash.size", "must be a multiple of flash.erase_size and hold two erase blocks".into()));
        }
        if !f.offset.is_multiple_of(512) {
            return Err(("flash.offset", "must be a multiple of 512 (a sector)".into()));
        }
        if self.watchdog.timeout_secs == 0 {
            return Err(("watchdog.timeout_secs", "must be at least 1".into()));
        }
        if self.safe_mode.watchdog_resets == 0 || self.safe_mode.within_minutes == 0 {
            return Err(("safe_mode", "watchdog_resets and within_minutes must be at least 1".into()));
        }
        if let Some(sl) = &self.slots {
            for (field, dev) in [("slots.bootstate", &sl.bootstate), ("slots.a", &sl.a), ("slots.b", &sl.b)] {
                if !dev.starts_with("/dev/") {
                    return Err((field, format!("{dev:?} must be a device path like /dev/vda5")));
                }
            }
            if sl.a == sl.b || sl.bootstate == sl.a || sl.bootstate == sl.b {
                return Err(("slots", "bootstate, a and b must be three different partitions".into()));
            }
            if !(1..=3600).contains(&sl.confirm_after_secs) {
                return Err(("slots.confirm_after_secs", "must be between 1 and 3600".into()));
            }
        }
        for m in &self.modules {
            if m.name.is_empty() || m.name.contains('/') || m.name.ends_with(".ko") {
                return Err(("modules.name", format!("{:?} must be a module file stem like virtio_net", m.name)));
            }
        }
        Ok(())
    }
}

impl Network {
    /// The static fallback as (address, prefix length).
    pub fn static_net(&self) -> Result<(std::net::Ipv4Addr, u8), String> {
        let bad = || format!("{:?} is not an IPv4 address with a prefix like 10.0.2.15/24", self.static_address);
        let (a, p) = self.static_address.split_once('/').ok_or_else(bad)?;
        let addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix == 0 || prefix > 32 {
            return Err(bad());
        }
        Ok((addr, prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_boards() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).expect("board/ exists") {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_board_in_the_repository_parses() {
        let boards = repo_boards();
        assert!(boards.len() >= 4, "{boards:?}");
        for (path, text) in boards {
            let b = Board::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            assert!(path.ends_with(&format!("/{}.toml", b.name)), "{path} declares name {}", b.name);
        }
    }

    fn qemu_aarch64() -> String {
        repo_boards().into_iter().find(|(p, _)| p.ends_with("qemu-virt-aarch64.toml")).unwrap().1
    }

    #[test]
    fn reads_the_qemu_board() {
        let b = Board::parse("q", &qemu_aarch64()).unwrap();
        assert_eq!(b.flash.device, "/dev/vda3");
        assert_eq!(b.network.static_net().unwrap(), ("10.0.2.15".parse().unwrap(), 24));
        let names: Vec<_> = b.modules.iter().map(|m| m.name.as_str()).collect();
        let pos = |n| names.iter().position(|x| *x == n).unwrap();
        assert!(pos("virtio_pci_modern_dev") < pos("virtio_pci"));
        assert!(pos("jbd2") < pos("ext4"));
        assert_eq!(b.modules[pos("i6300esb")].params, "heartbeat=30 nowayout=0");
    }

    #[test]
    fn slots_are_read_and_checked() {
        // The board file's own [slots] table is taken out; each case puts its own in.
        let board = qemu_aarch64();
        let (head, tail) = board.split_at(board.find("\n[slots]").expect("the QEMU board has [slots]"));
        let without = format!("{head}{}", &tail[tail.find("\n[qemu]").expect("[qemu] follows")..]);
        let with = |t: &str| without.replace("\n[qemu]", &format!("\n{t}\n[qemu]"));
        let good = "[slots]\nbootstate = \"/dev/vda2\"\na = \"/dev/vda5\"\nb = \"/dev/vda6\"\nconfirm_after_secs = 60\n";
        let b = Board::parse("q", &with(good)).unwrap();
        let s = b.slots.unwrap();
        assert_eq!((s.bootstate.as_str(), s.a.as_str(), s.b.as_str(), s.confirm_after_secs), ("/dev/vda2", "/dev/vda5", "/dev/vda6", 60));
        let e = Board::parse("q", &with(&good.replace("/dev/vda6", "/dev/vda5"))).unwrap_err().to_string();
        assert!(e.contains("three different partitions"), "{e}");
        let e = Board::parse("q", &with(&good.replace("= 60", "= 0"))).unwrap_err().to_string();
        assert!(e.contains("slots.confirm_after_secs"), "{e}");
        let e = Board::parse("q", &with(&good.replace("a = ", "slot_a = "))).unwrap_err().to_string();
        assert!(e.contains("slot_a"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named() {
        let text = qemu_aarch64().replace("device = \"/dev/vda3\"\n", "");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("missing field `device`") && e.contains("flash"), "{e}");
    }

    #[test]
    fn a_misspelt_or_wrong_field_is_named() {
        let text = qemu_aarch64().replace("erase_size = 4096", "erase_sise = 4096");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("erase_sise"), "{e}");
        let text = qemu_aarch64().replace("erase_size = 4096", "erase_size = 3000");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("flash.erase_size") && e.contains("power of two"), "{e}");
        let text = qemu_aarch64().replace("10.0.2.15/24", "10.0.2.15");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("network.static_address"), "{e}");
        let text = qemu_aarch64().replace("size = 262144", "size = \"big\"");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("size") && e.contains("invalid type"), "{e}");
    }
}
