//! Installing a bundle into the inactive slot, streamed: the box's [`Slots`] and [`Slots::install`].
//!
//! Order (issue 19 deliverable 4; a failure at any step leaves the booted slot and the boot order as they were):
//! 1. header + manifest read and verified ([`super::bundle::Intake`]), then checked against the box
//!    ([`check`]: board, version against the running one and the bundle's minimum, size against the slot);
//! 2. if the inactive slot is the next boot (an update installed but not yet booted), the booted slot is made
//!    the next boot first, so a cut during the write never boots a half-written slot;
//! 3. the inactive slot's footer zeroed (a half-written slot reads as "unknown version");
//! 4. the image written at offset 0 while hashing (the stream's SHA-256 must match the manifest), fsync;
//! 5. read back from the partition (page cache dropped first) and hashed again, compared to the manifest;
//! 6. the footer written, fsync;
//! 7. only then the boot state: `BOOT_ORDER="<new> <old>"`, `<new>_LEFT=3`, `HEARTH_UPDATE=pending <new> <v>`.
//!
//! Memory: the caller passes chunks of whatever size its source gives (HTTP body frames); nothing is kept
//! but the head (≤ 4172 bytes) and one 64 KiB read-back buffer. One install at a time ([`InstallError::Busy`]).

use super::bootstate::{self, LastUpdate, Outcome};
use super::bundle::{BundleError, Intake, Manifest, Taken, Version, FOOTER_LEN};
use super::slot::{self, Places, Slot};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One box's slots, as this run found them. Set once at start ([`Slots::set`]); `None` when Hearth does not
/// run from a slot (`hearth serve` on a host without `--slots`).
#[derive(Debug)]
pub struct Slots {
    /// Board name bundles must name.
    pub board: String,
    /// The slot this run started from; updates go into the other one.
    pub booted: Slot,
    /// Where the slots and the boot state are.
    pub places: Places,
    /// How long every heartbeat must stay fresh before this start counts as healthy.
    pub confirm_after: Duration,
    /// The key bundles must be signed with.
    pub key: [u8; 32],
    /// This run's version.
    pub version: Version,
    installing: AtomicBool,
    confirmed: AtomicBool,
}

static SLOTS: std::sync::OnceLock<Slots> = std::sync::OnceLock::new();

/// Why an install was refused or failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Bundle(#[from] BundleError),
    #[error("this bundle is for the board {bundle:?}, but this box is a {ours:?}; use the bundle made for {ours}")]
    OtherBoard { bundle: String, ours: String },
    #[error("this bundle holds version {bundle}, and this box runs {ours}: installing it would go back (or stay); add allow_downgrade=1 (--allow-downgrade) if you mean to")]
    Downgrade { bundle: Version, ours: Version },
    #[error("this bundle replaces version {min} or later, and this box runs {ours}; install an update to {min} first")]
    TooOld { min: Version, ours: Version },
    #[error("the bundle's image ({size} bytes) does not fit in slot {slot} ({room} bytes); it was made for a bigger layout")]
    TooLarge { size: u64, room: u64, slot: &'static str },
    #[error("the upload broke off ({0}); nothing was made bootable, upload the bundle again")]
    Upload(String),
    #[error("another update is being installed; wait for it to finish")]
    Busy,
    #[error("this server does not run from a slot (no [slots] in the board file, no --slots); it cannot install updates")]
    NoSlots,
    #[error("slot {slot}: {what}: {err}; the update was not made the next boot, try again")]
    Io { slot: &'static str, what: &'static str, err: String },
    #[error("slot {0} does not read back what was written (SHA-256 differs); the update was not made the next boot; the storage may be failing")]
    ReadBack(&'static str),
}

/// Check a verified manifest against the box before a byte of the slot is touched.
pub fn check(m: &Manifest, board: &str, ours: Version, room: u64, slot: Slot, allow_downgrade: bool) -> Result<(), InstallError> {
    if m.board != board {
        return Err(InstallError::OtherBoard { bundle: m.board.clone(), ours: board.to_string() });
    }
    if ours < m.min_version {
        return Err(InstallError::TooOld { min: m.min_version, ours });
    }
    if m.version <= ours && !allow_downgrade {
        return Err(InstallError::Downgrade { bundle: m.version, ours });
    }
    if m.image_size > room {
        return Err(InstallError::TooLarge { size: m.image_size, room, slot: slot.name() });
    }
    Ok(())
}

/// Holds the one-install-at-a-time flag; dropping it lets the next install start.
pub struct Turn<'a>(&'a AtomicBool);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Slots {
    /// This run's slots (set at start), if it runs from one.
    pub fn get() -> Option<&'static Slots> {
        SLOTS.get()
    }

    /// Record this run's slots (once; a second call is ignored and returns false).
    pub fn set(slots: Slots) -> bool {
        SLOTS.set(slots).is_ok()
    }

    /// Slots with the built-in key and this build's version.
    pub fn new(board: String, booted: Slot, places: Places, confirm_after: Duration) -> Slots {
        let version = Version::parse(crate::VERSION).unwrap_or(Version(0, 0, 0));
        Slots {
            board,
            booted,
            places,
            confirm_after,
            key: super::PUBLIC_KEY,
            version,
            installing: AtomicBool::new(false),
            confirmed: AtomicBool::new(false),
        }
    }

    /// From `hearth serve --slots FILE` (tests, or a host running from a disk image).
    pub fn from_host_file(path: &std::path::Path) -> Result<Slots, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read --slots {}: {e}", path.display()))?;
        // The board files' TOML reader (system::board): the same subset, no second TOML parser in the binary.
        let h: slot::HostSlots = crate::system::board::toml_tables(&text)
            .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
            .map_err(|e| format!("--slots {}: {e}", path.display()))?;
        let booted = Slot::parse(&h.booted).ok_or_else(|| format!("--slots {}: booted must be \"A\" or \"B\"", path.display()))?;
        let places = Places { bootstate: h.bootstate, a: h.a, b: h.b };
        Ok(Slots::new(h.board, booted, places, Duration::from_secs(h.confirm_after_secs.into())))
    }

    /// Take the install turn, or [`InstallError::Busy`] while another install runs.
    pub fn turn(&self) -> Result<Turn<'_>, InstallError> {
        if self.installing.swap(true, Ordering::SeqCst) {
            return Err(InstallError::Busy);
        }
        Ok(Turn(&self.installing))
    }

    /// An install is running.
    pub fn installing(&self) -> bool {
        self.installing.load(Ordering::SeqCst)
    }

    /// This start has confirmed itself (see [`super::confirm`]).
    pub fn confirmed(&self) -> bool {
        self.confirmed.load(Ordering::SeqCst)
    }

    /// Record that this start confirmed itself; [`Slots::confirm`] calls it once the boot state is written.
    pub(crate) fn mark_confirmed(&self) {
        self.confirmed.store(true, Ordering::SeqCst);
    }

    /// Stream a bundle into the inactive slot. `next` gives the body's chunks (`Ok(None)` at its end); the
    /// caller holds the [`Turn`]. Returns the installed manifest.
    pub fn install(
        &self,
        _turn: &Turn<'_>,
        allow_downgrade: bool,
        mut next: impl FnMut() -> Result<Option<bytes::Bytes>, InstallError>,
    ) -> Result<Manifest, InstallError> {
        let target = self.booted.other();
        let name = target.name();
        let io = |what: &'static str| move |e: std::io::Error| InstallError::Io { slot: name, what, err: e.to_string() };
        let path = self.places.slot(target);
        let part_size = slot::size_of(path).map_err(io("cannot open the slot partition"))?;
        let mut intake = Intake::new(self.key);
        let mut file = None;
        let mut at = 0u64;
        while let Some(chunk) = next()? {
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let (n, taken) = intake.take(rest)?;
                rest = &rest[n..];
                match taken {
                    Taken::Held => {}
                    Taken::Verified(m) => {
                        check(&m, &self.board, self.version, slot::capacity(part_size), target, allow_downgrade)?;
                        file = Some(self.prepare(target, part_size).map_err(io("cannot prepare the slot"))?);
                    }
                    Taken::Image(bytes) => {
                        let f = file.as_ref().expect("image bytes only after the manifest");
                        f.write_all_at(bytes, at).map_err(io("write failed"))?;
                        at += bytes.len() as u64;
                    }
                }
            }
        }
        let head = intake.head().to_vec();
        let manifest = intake.finish()?;
        let f = file.expect("a finished intake had its manifest");
        f.sync_all().map_err(io("fsync failed"))?;
        drop(f);
        verify_readback(path, &manifest).map_err(|e| match e {
            None => InstallError::ReadBack(name),
            Some(e) => io("read-back failed")(e),
        })?;
        self.finish(target, part_size, &head, &manifest).map_err(io("cannot finish"))?;
        tracing::info!(slot = name, version = %manifest.version, "update installed; it boots next");
        Ok(manifest)
    }

    /// Before the first image byte: the booted slot boots next, the target's footer is zeroed.
    fn prepare(&self, target: Slot, part_size: u64) -> std::io::Result<std::fs::File> {
        // Before the first byte of the image: the booted slot boots next and the target has no tries, so a
        // half-written target is never booted, even if the booted slot later spends its own tries (U-Boot
        // gives tries back only to the first slot of BOOT_ORDER when every slot is spent).
        let (mut state, _) = bootstate::read_file(&self.places.bootstate)?;
        let before = state.clone();
        if state.order().first() == Some(&target) {
            state.boot_next(self.booted);
        }
        state.set(target.left_key(), "0");
        if state != before {
            bootstate::write_file(&self.places.bootstate, &state)?;
        }
        let f = std::fs::OpenOptions::new().write(true).open(self.places.slot(target))?;
        f.write_all_at(&vec![0u8; FOOTER_LEN as usize], part_size - FOOTER_LEN)?;
        f.sync_all()?;
        Ok(f)
    }

    /// After a verified read-back: the footer, then the boot state.
    fn finish(&self, target: Slot, part_size: u64, head: &[u8], m: &Manifest) -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new().write(true).open(self.places.slot(target))?;
        f.write_all_at(head, part_size - FOOTER_LEN)?;
        f.sync_all()?;
        let (mut state, _) = bootstate::read_file(&self.places.bootstate)?;
        state.boot_next(target);
        state.set_last_update(&LastUpdate { outcome: Outcome::Pending, slot: target, version: m.version.to_string() });
        bootstate::write_file(&self.places.bootstate, &state)
    }
}

/// Hash the first `image_size` bytes of the partition after dropping its cached pages. `Err(None)`: the
/// hash differs.
fn verify_readback(path: &std::path::Path, m: &Manifest) -> Result<(), Option<std::io::Error>> {
    let f = std::fs::File::open(path).map_err(Some)?;
    // Read from the medium, not the page cache the write just filled (best effort: files in tests).
    let _ = nix::fcntl::posix_fadvise(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < m.image_size {
        let n = ((m.image_size - at) as usize).min(buf.len());
        f.read_exact_at(&mut buf[..n], at).map_err(Some)?;
        hash.update(&buf[..n]);
        at += n as u64;
    }
    if hash.finish().as_ref() != m.image_sha256 {
        return Err(None);
    }
    Ok(())
}
