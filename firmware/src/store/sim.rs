//! Simulated flash for the power-loss proofs, the fuzz target and the state-handle tests.
//!
//! Two semantics:
//! - [`Semantics::Nor`]: any byte range can be written, and a write can only clear bits (new = old AND data);
//!   erase sets a block to 0xFF.
//! - [`Semantics::Block`]: writes must cover whole sectors (`write_size`) and replace their content; erase is
//!   the same as writing 0xFF (a block device has no erase).
//!
//! Power cut: [`SimFlash::cut_after`] gives the chip a budget of N bytes of programming/erasing. The operation
//! that runs out of budget is applied partly and fails; every later operation fails (the power is off). What
//! the interrupted operation leaves behind:
//! - NOR write: the first N bytes are programmed; the byte at the cut has a random subset of its bits cleared.
//! - Block write: whole sectors before the cut are written; the sector at the cut is torn, each byte randomly
//!   old or new; later sectors keep their old content.
//! - Erase: blocks before the cut are erased; the block at the cut holds a random mix of old bytes, 0xFF and
//!   random garbage; later blocks are untouched.
//!
//! A [`SimFlash`] is a handle: clones share one chip, so a test can keep one to inspect or break the chip
//! while the store (or the state handle's writer thread) owns another.

use super::{Flash, Geometry};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a simulated chip programs: like NOR flash (bit-clearing writes, real erase) or like a block device
/// (whole-sector writes that replace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Semantics {
    Nor,
    Block,
}

/// One operation that changed the chip, in activity order (for choosing cut points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// An erase (true) or a write (false).
    pub erase: bool,
    /// Activity counter (bytes) when the operation started.
    pub start: u64,
    /// Bytes the operation covered.
    pub len: u64,
}

#[derive(Debug)]
struct Chip {
    image: Vec<u8>,
    geometry: Geometry,
    semantics: Semantics,
    /// Bytes of programming/erasing left before the power goes; `None`: unlimited.
    budget: Option<u64>,
    off: bool,
    rng: u64,
    activity: u64,
    ops: Vec<Op>,
    fail_writes: bool,
    write_delay: Option<Duration>,
    bad_blocks: Vec<u64>,
    record_ops: bool,
}

/// A simulated flash chip (a shared handle; see the module doc).
#[derive(Clone, Debug)]
pub struct SimFlash {
    chip: Arc<Mutex<Chip>>,
}

fn power_off() -> io::Error {
    io::Error::other("simulated power cut")
}

impl SimFlash {
    /// An erased chip.
    pub fn new(semantics: Semantics, size: u64, erase_size: u32, write_size: u32) -> SimFlash {
        SimFlash::with_image(semantics, vec![0xFF; size as usize], erase_size, write_size)
    }

    /// A chip holding `image` (its length is the size).
    pub fn with_image(semantics: Semantics, image: Vec<u8>, erase_size: u32, write_size: u32) -> SimFlash {
        let geometry = Geometry { size: image.len() as u64, erase_size, write_size };
        SimFlash {
            chip: Arc::new(Mutex::new(Chip {
                image,
                geometry,
                semantics,
                budget: None,
                off: false,
                rng: 0x9E37_79B9_7F4A_7C15,
                activity: 0,
                ops: Vec::new(),
                fail_writes: false,
                write_delay: None,
                bad_blocks: Vec::new(),
                record_ops: false,
            })),
        }
    }

    /// A new, independent chip with the same content and settings (power on, no budget, no ops log).
    pub fn fork(&self) -> SimFlash {
        let c = self.chip.lock().unwrap();
        let f = SimFlash::with_image(c.semantics, c.image.clone(), c.geometry.erase_size, c.geometry.write_size);
        f.chip.lock().unwrap().bad_blocks = c.bad_blocks.clone();
        f
    }

    /// Cut the power after `n` more bytes of programming or erasing; `seed` drives the torn content.
    pub fn cut_after(&self, n: u64, seed: u64) {
        let mut c = self.chip.lock().unwrap();
        c.budget = Some(n);
        c.rng = seed | 1;
    }

    /// Whether the power was cut.
    pub fn is_off(&self) -> bool {
        self.chip.lock().unwrap().off
    }

    /// Make every later write and erase fail with an I/O error, changing nothing (or succeed again).
    pub fn fail_writes(&self, fail: bool) {
        self.chip.lock().unwrap().fail_writes = fail;
    }

    /// Sleep this long in every write (to let a burst of updates queue up behind a slow flash).
    pub fn set_write_delay(&self, delay: Option<Duration>) {
        self.chip.lock().unwrap().write_delay = delay;
    }

    /// Mark the erase block at `offset` bad.
    pub fn mark_bad(&self, offset: u64) {
        self.chip.lock().unwrap().bad_blocks.push(offset);
    }

    /// Start logging operations (for choosing cut points) and reset the activity counter.
    pub fn record_ops(&self) {
        let mut c = self.chip.lock().unwrap();
        c.record_ops = true;
        c.ops.clear();
        c.activity = 0;
    }

    /// The operations logged since [`SimFlash::record_ops`].
    pub fn ops(&self) -> Vec<Op> {
        self.chip.lock().unwrap().ops.clone()
    }

    /// Bytes programmed or erased so far.
    pub fn activity(&self) -> u64 {
        self.chip.lock().unwrap().activity
    }

    /// A copy of the chip's bytes.
    pub fn image(&self) -> Vec<u8> {
        self.chip.lock().unwrap().image.clone()
    }

    /// Change the chip's bytes directly (bit flips, foreign content).
    pub fn edit(&self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.chip.lock().unwrap().image)
    }
}

impl Chip {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic torn content per seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn check(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.off {
            return Err(power_off());
        }
        if offset.checked_add(len).is_none_or(|end| end > self.image.len() as u64) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "access past the end of the flash"));
        }
        Ok(())
    }

    /// Take up to `len` bytes of budget: returns how many may be applied fully.
    fn spend(&mut self, erase: bool, len: u64) -> u64 {
        if self.record_ops {
            self.ops.push(Op { erase, start: self.activity, len });
        }
        let allowed = match self.budget {
            None => len,
            Some(b) => b.min(len),
        };
        if let Some(b) = self.budget.as_mut() {
            *b -= allowed;
        }
        self.activity += allowed;
        allowed
    }
}

impl Flash for SimFlash {
    fn geometry(&self) -> Geometry {
        self.chip.lock().unwrap().geometry
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let c = self.chip.lock().unwrap();
        c.check(offset, buf.len() as u64)?;
        buf.copy_from_slice(&c.image[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let delay = self.chip.lock().unwrap().write_delay;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut c = self.chip.lock().unwrap();
        c.check(offset, data.len() as u64)?;
        if c.fail_writes {
            return Err(io::Error::other("simulated write failure"));
        }
        let o = offset as usize;
        match c.semantics {
            Semantics::Nor => {
                let n = c.spend(false, data.len() as u64) as usize;
                for (i, d) in data[..n].iter().enumerate() {
                    c.image[o + i] &= d;
                }
                if n < data.len() {
                    // The byte at the cut: some of the bits it clears are cleared.
                    let partial = data[n] | (c.next() as u8);
                    c.image[o + n] &= partial;
                    c.off = true;
                    return Err(power_off());
                }
            }
            Semantics::Block => {
                let ws = c.geometry.write_size as usize;
                if !o.is_multiple_of(ws) || !data.len().is_multiple_of(ws) {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "block write not sector-aligned"));
                }
                let n = c.spend(false, data.len() as u64) as usize;
                let whole = n / ws * ws;
                c.image[o..o + whole].copy_from_slice(&data[..whole]);
                if n < data.len() {
                    for (i, d) in data.iter().enumerate().skip(whole).take(ws) {
                        if c.next() & 1 == 0 {
                            c.image[o + i] = *d;
                        }
                    }
                    c.off = true;
                    return Err(power_off());
                }
            }
        }
        Ok(())
    }

    fn erase(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let mut c = self.chip.lock().unwrap();
        c.check(offset, len)?;
        let es = c.geometry.erase_size as u64;
        if !offset.is_multiple_of(es) || !len.is_multiple_of(es) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "erase not block-aligned"));
        }
        if c.fail_writes {
            return Err(io::Error::other("simulated erase failure"));
        }
        let n = c.spend(true, len);
        let o = offset as usize;
        let whole = (n / es * es) as usize;
        c.image[o..o + whole].fill(0xFF);
        if n < len {
            for i in o + whole..o + whole + es as usize {
                let r = c.next();
                match r % 3 {
                    0 => {}
                    1 => c.image[i] = 0xFF,
                    _ => c.image[i] = (r >> 8) as u8,
                }
            }
            c.off = true;
            return Err(power_off());
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.chip.lock().unwrap().off { Err(power_off()) } else { Ok(()) }
    }

    fn is_bad_block(&mut self, offset: u64) -> io::Result<bool> {
        let c = self.chip.lock().unwrap();
        let es = c.geometry.erase_size as u64;
        Ok(c.bad_blocks.contains(&(offset / es * es)))
    }
}
