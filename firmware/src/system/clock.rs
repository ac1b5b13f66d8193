//! The wall clock, read in one place: every room that stamps a time (the state's `Time`, HTTP dates, the
//! certificate's validity, PCP's epoch check, SSDP's BOOTID) asks here.
//!
//! A clock set before 1970 reads as 0 (a board without a battery-backed clock starts near 1970 at worst, and
//! callers that must tell an unset clock from a set one compare with `system::reset::CLOCK_FLOOR`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z; 0 when the clock reads earlier.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// [`unix_now`] in 32 bits, as the state stores times (`state::Time`) and SSDP and PCP carry them; saturates
/// at `u32::MAX` (the year 2106).
pub fn now() -> u32 {
    unix_now().min(u32::MAX as u64) as u32
}
