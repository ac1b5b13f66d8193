//! The flash wear budget: when the state handle's writer may write its next record (review finding R-F8).
//!
//! Owns: the pacing rule, sans-IO (the caller passes the clock). Must not touch: the store (it reports the
//! bytes a write programmed; the writer thread in [`super::handle`] waits and merges).
//!
//! Why bytes: the store appends records to the active slot and switches slots when it is full; a switch
//! erases every block of the other slot once. So the erases a stream of updates costs follow the bytes it
//! programs: one slot's worth of bytes is at most one switch, and two switches erase every block once. A
//! budget in bytes bounds erases per block per hour whatever the record size or the flash geometry.
//!
//! The rule is the generic cell rate algorithm (GCRA, ITU-T I.371 §4.4.2, the "virtual scheduling" form) over
//! bytes: a write may start at `now` when the theoretical arrival time `tat` is at most `now + burst_time`;
//! after a write of `n` bytes, `tat = max(tat, now) + n / rate`. So a full budget lets `burst_bytes` through at
//! once, and over any window of `T` the bytes written are at most `burst_bytes + rate × T` plus one record.
//! Updates that arrive while the writer waits are merged into the next record (each queued state contains the
//! earlier ones), and every caller is answered once that record is durable: nothing is acknowledged early.
//!
//! Default ([`Budget::for_slot`]): a burst of [`BURST_SLOTS`] slots' worth, then [`SLOTS_PER_HOUR`] slots'
//! worth per hour: at most `SLOTS_PER_HOUR / 2` = 2 erases of each block per hour under a sustained hammer
//! (100,000-cycle NOR: 50,000 hours, about 5.7 years of nonstop writing). With the default 128 KiB flash file
//! (64 KiB slots) and a small state (about 350 bytes a record) that is one record about every 5 s.

use std::time::{Duration, Instant};

/// Slots' worth of bytes written at once before pacing starts (a burst costs about one erase per block).
pub const BURST_SLOTS: u64 = 2;
/// Slots' worth of bytes per hour once the burst is spent: `SLOTS_PER_HOUR / 2` erases per block per hour.
pub const SLOTS_PER_HOUR: u64 = 4;

/// How many flash bytes the writer may program at once, and per hour after that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Bytes that go through at once on a full budget.
    pub burst_bytes: u64,
    /// Sustained bytes per hour (> 0).
    pub bytes_per_hour: u64,
}

impl Budget {
    /// The default budget for a store whose slots hold `slot_bytes` each (see the module doc).
    pub fn for_slot(slot_bytes: u64) -> Budget {
        let slot = slot_bytes.max(1);
        Budget { burst_bytes: BURST_SLOTS * slot, bytes_per_hour: SLOTS_PER_HOUR * slot }
    }

    /// At most this many erases of each block per hour once the burst is spent: each slot's worth of bytes is
    /// at most one slot switch, and a block is erased at every second switch.
    pub fn erases_per_block_per_hour(&self, slot_bytes: u64) -> f64 {
        self.bytes_per_hour as f64 / slot_bytes.max(1) as f64 / 2.0
    }

    /// The time `bytes` bytes take at the sustained rate.
    fn cost(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 * 3600.0 / self.bytes_per_hour.max(1) as f64)
    }
}

/// The budget's running account: when the next write may start.
#[derive(Clone, Debug)]
pub struct Meter {
    budget: Budget,
    /// GCRA's theoretical arrival time; None until the first write (a full budget).
    tat: Option<Instant>,
}

impl Meter {
    /// A meter on a full budget: the first `burst_bytes` go through at once.
    pub fn new(budget: Budget) -> Meter {
        Meter { budget, tat: None }
    }

    /// The budget this meter paces against (the store's stats report it).
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The earliest instant the next write may start; None or an instant not after `now` means at once.
    pub fn ready_at(&self) -> Option<Instant> {
        self.tat?.checked_sub(self.budget.cost(self.budget.burst_bytes))
    }

    /// Whether a write may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.ready_at().is_none_or(|at| at <= now)
    }

    /// Count a write that programmed `bytes` bytes, finished at `now`.
    pub fn charge(&mut self, bytes: u64, now: Instant) {
        let base = self.tat.map_or(now, |t| t.max(now));
        self.tat = Some(base + self.budget.cost(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write whenever the meter allows, for `span`, records of `record` bytes; the bytes written.
    fn hammer(budget: Budget, record: u64, span: Duration) -> u64 {
        let start = Instant::now();
        let mut meter = Meter::new(budget);
        let (mut now, mut written) = (start, 0);
        while now < start + span {
            if meter.ready(now) {
                meter.charge(record, now);
                written += record;
            }
            now += Duration::from_millis(10);
        }
        written
    }

    #[test]
    fn a_full_budget_lets_the_burst_through_then_paces_to_the_rate() {
        let b = Budget { burst_bytes: 10_000, bytes_per_hour: 3_600_000 }; // 1,000 bytes/s
        let record = 100;
        let mut meter = Meter::new(b);
        let now = Instant::now();
        let mut at_once = 0;
        while meter.ready(now) {
            meter.charge(record, now);
            at_once += 1;
        }
        assert_eq!(at_once, 101, "the burst (100 records) plus the one that overdraws it");
        assert!(meter.ready(now + Duration::from_millis(100)), "one record's worth later, the next may go");
        assert!(!meter.ready(now + Duration::from_millis(99)));
    }

    #[test]
    fn over_any_span_bytes_stay_within_burst_plus_rate() {
        let b = Budget { burst_bytes: 64 * 1024, bytes_per_hour: 256 * 1024 };
        for (record, secs) in [(350, 600), (4096, 3600), (16 * 1024, 7200)] {
            let written = hammer(b, record, Duration::from_secs(secs));
            let bound = b.burst_bytes + b.bytes_per_hour * secs / 3600 + record;
            assert!(written <= bound, "{record}-byte records for {secs} s: {written} bytes > {bound}");
            assert!(written + 2 * record >= bound - record, "and the budget is used: {written} of {bound}");
        }
    }

    #[test]
    fn the_default_bounds_erases_per_block() {
        let slot = 64 * 1024;
        let b = Budget::for_slot(slot);
        assert_eq!(b.erases_per_block_per_hour(slot), 2.0);
        assert_eq!(b.burst_bytes, 2 * slot);
    }
}
