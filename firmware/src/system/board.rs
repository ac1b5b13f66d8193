//! Board profiles: `board/<name>.toml`, read by init mode from the initramfs (`/etc/hearth/board.toml`).
//!
//! Boards are data, not code: everything that differs between the QEMU machines, a Raspberry Pi 4 and a Helios4
//! is in the profile. scripts/build-image reads the same files (python3 tomllib) to fetch the kernel and pick
//! the modules; this module is the firmware's reading of them. Unknown fields are errors, so a typo is named.
//!
//! The firmware reads the part of TOML v1.0.0 (toml.io/en/v1.0.0) that board files use, with a reader of its
//! own ([`toml_tables`], issue 24: the `toml` crate and its serde glue were ~100 KB of the 4 MiB binary):
//!
//! ```text
//! # comment                       whole-line or after a value
//! [table]                         a table (once each)
//! [[array]]                       a table appended to an array of tables
//! key = "basic \"string\""      bare key (A-Z a-z 0-9 _ -); basic string with \" \\ \n \t \uXXXX escapes
//! key = 'literal string'          no escapes
//! key = 42 / -1 / 1_000           decimal integer
//! key = true / false
//! key = ["a", "b"]                one-line array of the values above
//! ```
//!
//! Anything else (dotted or quoted keys, inline tables, floats, dates, multi-line strings or arrays) is refused
//! with its line number, so a board file that tomllib reads but the box could not is found by the board test.
//! The tables become a `serde_json::Value`, read into [`Board`] field by field ([`Table`]: no serde derive, whose
//! generic code was another ~40 KB); a missing, unknown or wrongly typed field is named with its table
//! (`flash: missing field `device``, `flash.size: expected an integer, not "big"`).

use serde_json::{Map, Value};
use std::path::Path;

/// Where build-image puts the board file inside the initramfs.
pub const BOARD_PATH: &str = "/etc/hearth/board.toml";

/// One board's profile (`board/<name>.toml`): what init mode needs to bring the box up and `scripts/build-image`
/// needs to build its image.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    pub slots: Option<Slots>,
    /// Only for boards that run under QEMU (scripts/run-qemu reads it).
    pub qemu: Option<Qemu>,
    /// The boot disk's layout and where U-Boot comes from (scripts/build-image writes disk.img from it).
    pub image: Option<ImageLayout>,
}

/// `[image]`: the boot disk build-image writes. MBR: p1 FAT boot (boot.scr), p2 raw boot state, p3 the store
/// (`[flash]`), p4 extended holding p5 slot A and p6 slot B (board/boot/boot.cmd reads the same numbers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLayout {
    /// Where U-Boot comes from: `qemu` (run-qemu's -bios), `rpi` (u-boot.bin on p1), `board` (the board's flash).
    pub uboot: String,
    /// Debian package and path under /usr/lib/u-boot/ of the U-Boot binary (`qemu`, `rpi`).
    pub uboot_package: Option<String>,
    pub uboot_binary: Option<String>,
    /// `rpi`: the Pi boot firmware's package and the files of it that go onto p1.
    pub firmware_package: Option<String>,
    pub firmware_files: Vec<String>,
    /// Size of the FAT boot partition and of each slot, MiB.
    pub boot_mib: u32,
    pub slot_mib: u32,
    /// The boot disk as Linux names it (`/dev/vda`, `/dev/mmcblk0`): partitions are this plus the number.
    pub disk: String,
}

/// Where the board's kernel comes from (a Debian kernel package) and its device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Debian architecture of the kernel package (arm64, armhf).
    pub debian_arch: String,
    /// Debian metapackage the versioned kernel image package is resolved from.
    pub package: String,
    /// Device tree blob, relative to the package's `/usr/lib/linux-image-<version>/`.
    pub device_tree: Option<String>,
}

/// A kernel module init loads at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    /// File stem of the `.ko` (as in the kernel package, `-` or `_`).
    pub name: String,
    /// Module parameters, space separated (`heartbeat=30 nowayout=0`).
    pub params: String,
}

/// How init brings up the LAN interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The interface name as the kernel names it (`eth0`).
    pub interface: String,
    /// Ask DHCP (the default); the static address is used when this is off or DHCP gets no answer.
    pub dhcp: bool,
    /// `a.b.c.d/prefix`, used when DHCP gets no answer.
    pub static_address: String,
    /// The default gateway with the static address, if any.
    pub static_gateway: Option<std::net::Ipv4Addr>,
}

/// The device region that holds the flash store (a raw MTD partition or a block device).
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watchdog {
    /// The device node, usually `/dev/watchdog`.
    pub device: String,
    /// Seconds without a feed before the board resets (the driver may round it).
    pub timeout_secs: u32,
}

/// The media disk init mounts for the libraries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// The block device of the media partition (`/dev/sda1`).
    pub device: String,
    /// Its file system type as `mount(2)` names it (`ext4`).
    pub fs: String,
    /// Where it is mounted (`/media`).
    pub mount: String,
}

/// Safe mode: `watchdog_resets` watchdog resets within `within_minutes` minutes.
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu {
    /// The QEMU system emulator (`qemu-system-aarch64`).
    pub system: String,
    /// QEMU's `-machine`.
    pub machine: String,
    /// QEMU's `-cpu`.
    pub cpu: String,
    /// QEMU's `-smp`: how many CPUs the guest has.
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The emulated watchdog device QEMU adds (`-device`).
    pub watchdog: String,
}

/// Why the board file could not be read or is wrong; names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("cannot read the board file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// The message names the line (syntax) or the field (`flash: missing field `device``).
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
        let parse_err = |message| BoardError::Parse { path: path.into(), message };
        let board = Board::from_tables(toml_tables(text).map_err(parse_err)?).map_err(parse_err)?;
        board.check().map_err(|(field, message)| BoardError::Field { path: path.into(), field, message })?;
        Ok(board)
    }

    /// The board from the file's tables; errors name the table and field.
    fn from_tables(v: Value) -> Result<Board, String> {
        let Value::Object(map) = v else { return Err("not a table".into()) };
        let mut t = Table { name: String::new(), map };
        let board = Board {
            name: t.str("name")?,
            target: t.str("target")?,
            hostname: t.str("hostname")?,
            console: t.str("console")?,
            kernel: t.table("kernel", |t| {
                Ok(Kernel { debian_arch: t.str("debian_arch")?, package: t.str("package")?, device_tree: t.opt_str("device_tree")? })
            })?,
            modules: t.tables("modules", |t| Ok(Module { name: t.str("name")?, params: t.opt_str("params")?.unwrap_or_default() }))?,
            network: t.table("network", |t| {
                Ok(Network {
                    interface: t.str("interface")?,
                    dhcp: t.opt_bool("dhcp")?.unwrap_or(true),
                    static_address: t.str("static_address")?,
                    static_gateway: t
                        .opt_str("static_gateway")?
                        .map(|g| g.parse().map_err(|_| t.at("static_gateway", &format!("{g:?} is not an IPv4 address"))))
                        .transpose()?,
                })
            })?,
            flash: t.table("flash", |t| {
                Ok(FlashArea { device: t.str("device")?, offset: t.int("offset")?, size: t.int("size")?, erase_size: t.int("erase_size")? })
            })?,
            watchdog: t.table("watchdog", |t| Ok(Watchdog { device: t.str("device")?, timeout_secs: t.int("timeout_secs")? }))?,
            media: t.table("media", |t| Ok(Media { device: t.str("device")?, fs: t.str("fs")?, mount: t.str("mount")? }))?,
            safe_mode: t.table("safe_mode", |t| {
                Ok(SafeModeRule { watchdog_resets: t.int("watchdog_resets")?, within_minutes: t.int("within_minutes")? })
            })?,
            slots: t.opt_table("slots", |t| {
                Ok(Slots { bootstate: t.str("bootstate")?, a: t.str("a")?, b: t.str("b")?, confirm_after_secs: t.int("confirm_after_secs")? })
            })?,
            qemu: t.opt_table("qemu", |t| {
                Ok(Qemu {
                    system: t.str("system")?,
                    machine: t.str("machine")?,
                    cpu: t.str("cpu")?,
                    cpus: t.int("cpus")?,
                    memory_mib: t.int("memory_mib")?,
                    watchdog: t.str("watchdog")?,
                })
            })?,
            image: t.opt_table("image", |t| {
                Ok(ImageLayout {
                    uboot: t.str("uboot")?,
                    uboot_package: t.opt_str("uboot_package")?,
                    uboot_binary: t.opt_str("uboot_binary")?,
                    firmware_package: t.opt_str("firmware_package")?,
                    firmware_files: match t.take("firmware_files") {
                        None => Vec::new(),
                        Some(Value::Array(a)) => a
                            .into_iter()
                            .map(|v| match v {
                                Value::String(s) => Ok(s),
                                other => Err(t.at("firmware_files", &format!("expected strings, not {other}"))),
                            })
                            .collect::<Result<_, _>>()?,
                        Some(other) => return Err(t.at("firmware_files", &format!("expected an array of strings, not {other}"))),
                    },
                    boot_mib: t.int("boot_mib")?,
                    slot_mib: t.int("slot_mib")?,
                    disk: t.str("disk")?,
                })
            })?,
        };
        t.done()?;
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

/// One table of a board file being read: each field is taken out once; [`Table::done`] refuses what is left
/// (an unknown field, so a typo is named).
struct Table {
    /// `flash`, `modules[2]`; empty for the top level.
    name: String,
    map: Map<String, Value>,
}

impl Table {
    /// A message about `field` of this table (`flash.size: ...`).
    fn at(&self, field: &str, what: &str) -> String {
        if self.name.is_empty() { format!("{field}: {what}") } else { format!("{}.{field}: {what}", self.name) }
    }

    /// A missing field, with the fields not read yet (a misspelt name shows among them).
    fn missing(&self, field: &str) -> String {
        let rest: Vec<&str> = self.map.keys().map(String::as_str).collect();
        let has = if rest.is_empty() { String::new() } else { format!(" (fields not read yet: {})", rest.join(", ")) };
        if self.name.is_empty() {
            format!("missing field `{field}`{has}")
        } else {
            format!("{}: missing field `{field}`{has}", self.name)
        }
    }

    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    fn opt_str(&mut self, field: &str) -> Result<Option<String>, String> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.at(field, &format!("invalid type: expected a string, not {other}"))),
        }
    }

    fn str(&mut self, field: &str) -> Result<String, String> {
        self.opt_str(field)?.ok_or_else(|| self.missing(field))
    }

    fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, String> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.at(field, &format!("invalid type: expected true or false, not {other}"))),
        }
    }

    /// A whole number that fits `T` (u32 or u64 here).
    fn int<T: TryFrom<u64>>(&mut self, field: &str) -> Result<T, String> {
        match self.take(field) {
            None => Err(self.missing(field)),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| T::try_from(n).ok())
                .ok_or_else(|| self.at(field, &format!("{n} is out of range"))),
            Some(other) => Err(self.at(field, &format!("invalid type: expected an integer, not {other}"))),
        }
    }

    fn sub(&self, name: String, v: Value) -> Result<Table, String> {
        match v {
            Value::Object(map) => Ok(Table { name, map }),
            other => Err(format!("{name}: expected a table, not {other}")),
        }
    }

    fn opt_table<T>(&mut self, field: &str, read: impl FnOnce(&mut Table) -> Result<T, String>) -> Result<Option<T>, String> {
        let Some(v) = self.take(field) else { return Ok(None) };
        let mut t = self.sub(field.to_string(), v)?;
        let out = read(&mut t)?;
        t.done()?;
        Ok(Some(out))
    }

    fn table<T>(&mut self, field: &str, read: impl FnOnce(&mut Table) -> Result<T, String>) -> Result<T, String> {
        self.opt_table(field, read)?.ok_or_else(|| self.missing(field))
    }

    /// `[[field]]`: an array of tables (none: empty).
    fn tables<T>(&mut self, field: &str, mut read: impl FnMut(&mut Table) -> Result<T, String>) -> Result<Vec<T>, String> {
        let items = match self.take(field) {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(other) => return Err(self.at(field, &format!("expected [[{field}]] tables, not {other}"))),
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.into_iter().enumerate() {
            let mut t = self.sub(format!("{field}[{i}]"), v)?;
            out.push(read(&mut t)?);
            t.done()?;
        }
        Ok(out)
    }

    /// Every field was read; one left over is unknown.
    fn done(self) -> Result<(), String> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) if self.name.is_empty() => Err(format!("unknown field `{k}`")),
            Some(k) => Err(format!("{}: unknown field `{k}`", self.name)),
        }
    }
}

/// Read the TOML that board files use (the subset drawn in the module doc) into a JSON object: tables become
/// objects, arrays of tables arrays of objects. Errors name the line.
pub fn toml_tables(text: &str) -> Result<Value, String> {
    let mut root = Map::new();
    // Where `key = value` lines go: the root, a table, or the last table of an array of tables.
    let mut current: Option<(String, bool)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let err = |what: &str| format!("line {n}: {what}");
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[') {
            let (name, array) = match head.strip_prefix('[') {
                Some(h) => (h.split_once("]]"), true),
                None => (head.split_once(']'), false),
            };
            let Some((name, rest)) = name else { return Err(err("a table header is not closed")) };
            let name = name.trim();
            if !bare_key(name) {
                return Err(err(&format!("table name {name:?}: only bare names (letters, digits, _ and -) are read")));
            }
            if !comment_or_nothing(rest) {
                return Err(err("text after the table header"));
            }
            if array {
                match root.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                    Value::Array(a) => a.push(Value::Object(Map::new())),
                    _ => return Err(err(&format!("[[{name}]] after a [{name}] table or key"))),
                }
            } else {
                if root.contains_key(name) {
                    return Err(err(&format!("[{name}] is defined twice")));
                }
                root.insert(name.to_string(), Value::Object(Map::new()));
            }
            current = Some((name.to_string(), array));
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err("expected `key = value`, a [table] or a comment"));
        };
        let key = key.trim();
        if !bare_key(key) {
            return Err(err(&format!("key {key:?}: only bare keys (letters, digits, _ and -) are read")));
        }
        let (value, rest) = toml_value(rest.trim_start()).map_err(|m| err(&m))?;
        if !comment_or_nothing(rest) {
            return Err(err(&format!("text after the value of {key}")));
        }
        let table = match &current {
            None => &mut root,
            Some((name, array)) => match (root.get_mut(name.as_str()), array) {
                (Some(Value::Object(t)), false) => t,
                (Some(Value::Array(a)), true) => match a.last_mut() {
                    Some(Value::Object(t)) => t,
                    _ => return Err(err("internal: empty array of tables")),
                },
                _ => return Err(err("internal: table lost")),
            },
        };
        if table.contains_key(key) {
            return Err(err(&format!("{key} is set twice")));
        }
        table.insert(key.to_string(), value);
    }
    Ok(Value::Object(root))
}

fn bare_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn comment_or_nothing(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

/// One value at the start of `s`; the value and what follows it.
fn toml_value(s: &str) -> Result<(Value, &str), String> {
    if s.starts_with("\"\"\"") || s.starts_with("'''") {
        return Err("multi-line strings are not read in board files".into());
    }
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((Value::String(out), &body[i + 1..])),
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        let c = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        out.push(c.ok_or_else(|| format!("\\u{hex} is not a character"))?);
                    }
                    other => return Err(format!("escape \\{} is not read in board files", other.unwrap_or(' '))),
                },
                c => out.push(c),
            }
        }
        return Err("a string is not closed on its line".into());
    }
    if let Some(body) = s.strip_prefix('\'') {
        let end = body.find('\'').ok_or("a string is not closed on its line")?;
        return Ok((Value::String(body[..end].to_string()), &body[end + 1..]));
    }
    if let Some(mut rest) = s.strip_prefix('[') {
        let mut items = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(']') {
                return Ok((Value::Array(items), after));
            }
            if rest.is_empty() || rest.starts_with('#') {
                return Err("arrays must close on their line in board files".into());
            }
            let (v, after) = toml_value(rest)?;
            items.push(v);
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with(']') {
                return Err("expected , or ] in an array".into());
            }
        }
    }
    let end = s.find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '#').unwrap_or(s.len());
    let (word, rest) = s.split_at(end);
    match word {
        "true" => return Ok((Value::Bool(true), rest)),
        "false" => return Ok((Value::Bool(false), rest)),
        _ => {}
    }
    let digits = word.strip_prefix(['+', '-']).unwrap_or(word);
    let clean = word.replace('_', "");
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && let Ok(n) = clean.parse::<i64>()
    {
        return Ok((Value::from(n), rest));
    }
    if word.is_empty() {
        return Err("a value is missing".into());
    }
    Err(format!("{word:?}: board files take strings, decimal integers, true/false and one-line arrays"))
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
    fn the_board_reader_reads_what_board_files_use() {
        let v = toml_tables(concat!(
            "# head\n",
            "name = \"x\" # after\n",
            "n = -1_000\n",
            "t = true\n",
            "lit = 'C:\\\\no escapes'\n",
            "esc = \"a\\\"b\\\\c\\u00e9\"\n",
            "[tab]\n",
            "list = [\"a\", 'b', 3 ,]\n",
            "empty = []\n",
            "[[mods]]\n",
            "name = \"m1\"\n",
            "[[mods]]\n",
            "name = \"m2\"\n",
            "params = \"p=1 q=2\"\n",
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "x", "n": -1000, "t": true, "lit": "C:\\\\no escapes", "esc": "a\"b\\c\u{e9}",
                "tab": {"list": ["a", "b", 3], "empty": []},
                "mods": [{"name": "m1"}, {"name": "m2", "params": "p=1 q=2"}],
            })
        );
    }

    #[test]
    fn the_board_reader_refuses_what_it_does_not_read_with_the_line() {
        for (text, says) in [
            ("a = 1\nb = 1.5\n", "line 2"),
            ("a = 1979-05-27\n", "line 1"),
            ("a = { b = 1 }\n", "line 1"),
            ("a.b = 1\n", "only bare keys"),
            ("[a]\nx = 1\n[a]\n", "defined twice"),
            ("a = 1\na = 2\n", "set twice"),
            ("a = \"open\n", "not closed"),
            ("a = [1,\n2]\n", "close on their line"),
            ("a = \"\"\"x\n", "multi-line"),
            ("[a\n", "not closed"),
            ("just words\n", "key = value"),
            ("a = 1 2\n", "text after"),
            ("a = 0x10\n", "decimal integers"),
            ("a = 1__0\n", "decimal integers"),
            ("a =\n", "missing"),
            ("a = [1 2]\n", "expected , or ]"),
            ("a = \"\\q\"\n", "escape"),
            ("a = 1\n[[a]]\n", "after a [a]"),
        ] {
            let e = toml_tables(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        // The board file's errors name the file.
        let e = Board::parse("q.toml", "name = 1.5\n").unwrap_err().to_string();
        assert!(e.starts_with("board file q.toml: line 1"), "{e}");
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
        assert!(e.contains("flash.size") && e.contains("invalid type"), "{e}");
        let text = qemu_aarch64().replace("[watchdog]\n", "[watchdog]\ncolour = \"red\"\n");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("watchdog: unknown field `colour`"), "{e}");
        let text = qemu_aarch64().replace("name = \"virtio_blk\"", "name = \"virtio_blk\"\nparams = 3");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("modules[") && e.contains("params") && e.contains("expected a string"), "{e}");
        let text = qemu_aarch64().replace("timeout_secs = 10", "timeout_secs = -1");
        let e = Board::parse("q.toml", &text).unwrap_err().to_string();
        assert!(e.contains("watchdog.timeout_secs") && e.contains("out of range"), "{e}");
    }
}
