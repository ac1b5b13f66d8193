//! Lockout: failed passwords and PINs slow down per account and per source address, and the slowdown expires.
//!
//! Each key (an account name seen from the LAN, the same name seen from elsewhere, a source address) counts
//! failures. The first [`FREE`] cost nothing; after that each failure blocks the key for 2^(n-FREE) seconds,
//! capped at [`MAX_BLOCK`] (15 minutes). Attempts while blocked are refused without hashing. A key with no
//! failure for [`FORGET`] (24 hours) starts over; a success clears the account key.
//!
//! Walking the 10^4 four-digit PINs of one member therefore takes at least (10^4 - 20) × 15 min ≈ 104 days,
//! from one address or from many (the account key counts them all). Nobody can lock the owner out for good:
//! every block ends within 15 minutes, LAN attempts are counted apart from WAN attempts (a remote attacker
//! cannot block the owner at home), and `hearth recover` / a restart forgets everything (counters live in RAM).
//!
//! Sans-IO: callers pass the time. Memory is bounded by [`MAX_KEYS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE: u32 = 5;
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
pub const FORGET: Duration = Duration::from_secs(24 * 3600);
pub const MAX_KEYS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Lower-cased account name (or "#id" for a member picked by id), and whether the attempt came from the LAN.
    Account(String, bool),
    Source(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Counter {
    failures: u32,
    last: Instant,
    until: Instant,
}

#[derive(Default)]
pub struct Lockout {
    keys: Mutex<HashMap<Key, Counter>>,
}

/// How long until the caller may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked(pub Duration);

impl Lockout {
    /// May an attempt for these keys go ahead now?
    pub fn check(&self, keys: &[Key], now: Instant) -> Result<(), Blocked> {
        let map = self.keys.lock().unwrap();
        let wait = keys
            .iter()
            .filter_map(|k| map.get(k))
            .filter(|c| now.duration_since(c.last) < FORGET)
            .map(|c| c.until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(Blocked(wait)) }
    }

    /// Count a failure against every key; returns the new block.
    pub fn fail(&self, keys: &[Key], now: Instant) -> Duration {
        let mut map = self.keys.lock().unwrap();
        let mut longest = Duration::ZERO;
        for k in keys {
            if !map.contains_key(k) && map.len() >= MAX_KEYS {
                evict(&mut map, now);
            }
            let c = map.entry(k.clone()).or_insert(Counter { failures: 0, last: now, until: now });
            if now.duration_since(c.last) >= FORGET {
                c.failures = 0;
            }
            c.failures = c.failures.saturating_add(1);
            c.last = now;
            let block = block_for(c.failures);
            c.until = now + block;
            longest = longest.max(block);
        }
        longest
    }

    /// A success clears the keys given (the account's, not the source's: one good password does not excuse a
    /// source that was walking other accounts).
    pub fn succeed(&self, keys: &[Key]) {
        let mut map = self.keys.lock().unwrap();
        for k in keys {
            map.remove(k);
        }
    }

    pub fn clear(&self) {
        self.keys.lock().unwrap().clear();
    }
}

/// The block after the n-th failure.
pub fn block_for(failures: u32) -> Duration {
    if failures <= FREE {
        return Duration::ZERO;
    }
    let exp = (failures - FREE - 1).min(20);
    Duration::from_secs(1u64 << exp).min(MAX_BLOCK)
}

fn evict(map: &mut HashMap<Key, Counter>, now: Instant) {
    map.retain(|_, c| c.until > now && now.duration_since(c.last) < FORGET);
    if map.len() >= MAX_KEYS
        && let Some(oldest) = map.iter().min_by_key(|(_, c)| c.last).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walking_four_digit_pins_takes_days() {
        // Sum the forced waits an attacker must sit through to try all 10^4 PINs of one account.
        let total: Duration = (1..=10_000u32).map(block_for).sum();
        let days = total.as_secs_f64() / 86400.0;
        assert!(days > 7.0, "10^4 PINs in {days:.1} days");
        println!("walking 10^4 PINs takes at least {days:.0} days");
    }

    #[test]
    fn blocks_grow_and_expire() {
        let l = Lockout::default();
        let t0 = Instant::now();
        let keys = [Key::Account("alice".into(), false), Key::Source("203.0.113.5".parse().unwrap())];
        for _ in 0..FREE {
            assert!(l.check(&keys, t0).is_ok());
            l.fail(&keys, t0);
        }
        assert!(l.check(&keys, t0).is_ok(), "the first {FREE} failures are free");
        l.fail(&keys, t0);
        assert_eq!(l.check(&keys, t0), Err(Blocked(Duration::from_secs(1))));
        assert!(l.check(&keys, t0 + Duration::from_secs(1)).is_ok(), "the block expires");
        for _ in 0..40 {
            l.fail(&keys, t0);
        }
        assert_eq!(l.check(&keys, t0), Err(Blocked(MAX_BLOCK)), "never longer than the cap");
        assert!(l.check(&keys, t0 + MAX_BLOCK).is_ok());
        // The owner at home is not blocked by failures from the WAN.
        assert!(l.check(&[Key::Account("alice".into(), true)], t0).is_ok());
        // A day later the counter starts over.
        assert!(l.check(&keys, t0 + FORGET).is_ok());
        l.fail(&keys, t0 + FORGET);
        assert!(l.check(&keys, t0 + FORGET).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = Lockout::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 100) {
            l.fail(&[Key::Source(IpAddr::from(i.to_be_bytes()))], t0);
        }
        assert!(l.keys.lock().unwrap().len() <= MAX_KEYS);
    }
}
