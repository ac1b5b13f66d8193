//! Lockout: failed passwords and PINs slow down per source and per account, and the slowdown expires.
//!
//! Two kinds of key count failures:
//! - a **source** ([`Source`]): the caller's address prefix, an IPv6 /64 (one subscriber line, one LAN
//!   segment; privacy addresses rotate inside it for free: RFC 7421 makes /64 the subnet every SLAAC host
//!   lives in, and RFC 6177 has providers hand each site a /48–/56 of them, so counting single addresses
//!   would give one household 2^64 fresh sources), a WAN IPv4 /24 (rotating addresses inside a
//!   provider's /24 is cheap, spanning /24s is not; the cost is that a friend sharing a /24 with an attacker
//!   shares its block, on the WAN only), and a LAN IPv4 /32 (a home network is one /24 whose other devices
//!   must not share a stranger's block);
//! - an **account** as seen from one side: the lower-cased name (or "#id" for a Home profile picked by id)
//!   and whether the attempt came from the LAN. WAN failures never count against the LAN side.
//!
//! Schedule, the same for both kinds: the first [`FREE`] failures cost nothing; after that each failure blocks
//! the key for 2^(n-FREE-1) seconds, capped at [`MAX_BLOCK`] (15 minutes). A key with no failure for [`FORGET`]
//! (24 hours) starts over; a success clears the account key (not the source: one good password does not excuse
//! a source that was walking other accounts). Refused attempts are answered without hashing.
//!
//! The budget is taken **before** hashing ([`Lockout::reserve`]): an attempt in flight counts as a failure
//! until it is settled, so concurrent guesses see each other. A key may have at most [`FREE`] + 1 attempts in
//! flight while it is within its free failures, and one at a time after them; N concurrent guesses therefore
//! take at most [`FREE`] + 1 from the budget (A-F6). An attempt that is refused because the hashers are busy,
//! or abandoned by its caller, settles as a failure (A-F5): flooding the queue costs the flooder its budget.
//!
//! A blocked **source** is refused everything. A blocked **account** refuses only sources that have failed
//! (any failure, any account, in the last [`FORGET`]): a correct password from a source that has not failed is
//! never refused because of what other sources did (A-F7), and neither the LAN nor the WAN side can lock the
//! other out. The arithmetic, for one account whose account key is already blocked:
//! - one source prefix walking the 10^4 four-digit PINs: every guess after the fifth waits out its own source
//!   block, at least (10^4 - 20) × 15 min ≈ 104 days;
//! - many prefixes: a prefix that has failed is refused while the account is blocked, and every failure renews
//!   the account block for 15 minutes, so all the failed prefixes together get one guess per quarter hour
//!   (96 a day), and each fresh prefix adds exactly one guess (its first, while clean). Walking 10^4 PINs in a
//!   day needs about 10^4 prefixes: 10^4 WAN /24s (2.56 M IPv4 addresses) or /64s, or 10^4 LAN addresses
//!   (a home /24 has 254). PINs are only tried through `home/switch`, which needs a Home token already.
//! - Nobody can lock the owner out: every source block ends within 15 minutes, an account block does not
//!   touch a clean source, and `hearth recover` / a restart forgets everything (counters live in RAM).
//!
//! Sans-IO: callers pass the time. Memory is bounded by [`MAX_KEYS`] (keys with attempts in flight are never
//! evicted).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures a key may have before it is blocked at all.
pub const FREE: u32 = 5;
/// The longest block one failure can cause, so nobody is locked out for more than 15 minutes.
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long starts over.
pub const FORGET: Duration = Duration::from_secs(24 * 3600);
/// Counters kept at most; bounds the memory an attacker with many addresses can make Hearth use.
pub const MAX_KEYS: usize = 4096;

/// The unit per-source limits count: the caller's address cut to its prefix (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// The address with the bits beyond `prefix` cleared.
    pub net: IpAddr,
    /// Prefix length of `net` in bits (64, 24 or 32, see [`Source::of`]).
    pub prefix: u8,
}

impl Source {
    /// The source prefix of `addr`: IPv6 /64, IPv4 /24 from the WAN, IPv4 /32 from the LAN.
    pub fn of(addr: IpAddr, lan: bool) -> Source {
        match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::of(IpAddr::V4(v4), lan),
                None => Source { net: IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64)), prefix: 64 },
            },
            IpAddr::V4(v4) if lan => Source { net: IpAddr::V4(v4), prefix: 32 },
            IpAddr::V4(v4) => Source { net: IpAddr::V4(Ipv4Addr::from_bits(v4.to_bits() & !0u32 << 8)), prefix: 24 },
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// What failures are counted against: an account as seen from one side, or a source prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// Lower-cased account name (or "#id" for a member picked by id), and whether the attempt came from the LAN.
    Account(String, bool),
    Source(Source),
}

impl Key {
    /// The source key of a caller.
    pub fn source(addr: IpAddr, lan: bool) -> Key {
        Key::Source(Source::of(addr, lan))
    }
}

#[derive(Clone, Copy, Debug)]
struct Counter {
    failures: u32,
    /// Attempts reserved and not yet settled; they count as failures for the budget.
    pending: u32,
    last: Instant,
    until: Instant,
}

impl Counter {
    fn new(now: Instant) -> Counter {
        Counter { failures: 0, pending: 0, last: now, until: now }
    }

    /// How long until one more attempt may start (zero: now).
    fn wait(&self, now: Instant) -> Duration {
        let block = self.until.saturating_duration_since(now);
        if !block.is_zero() {
            return block;
        }
        // Within the free failures, as many may be in flight as remain free; after them, one at a time.
        if self.pending > 0 && block_for(self.failures + self.pending) > Duration::ZERO {
            return block_for(self.failures + self.pending);
        }
        Duration::ZERO
    }

    fn clean(&self) -> bool {
        self.failures == 0 && self.pending == 0
    }
}

/// The failure counters of every key (RAM only, so a restart forgets them); see the module doc for
/// the schedule.
#[derive(Default)]
pub struct Lockout {
    keys: Mutex<HashMap<Key, Counter>>,
}

/// How long until the caller may try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked(pub Duration);

/// An attempt that holds its place in the budget of its keys until it is settled with [`Attempt::succeed`] or
/// [`Attempt::fail`]; dropped unsettled (the caller went away), it counts as a failure.
#[must_use]
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    keys: Vec<Key>,
    clean: bool,
    settled: bool,
}

impl Attempt<'_> {
    /// Whether the attempt's source had no failure on record when it started (the hashing line serves such
    /// sources first).
    pub fn clean(&self) -> bool {
        self.clean
    }

    /// The secret was right: the account keys are cleared, the source keeps its record.
    pub fn succeed(mut self) {
        self.settled = true;
        let mut map = self.lockout.keys.lock().unwrap();
        for k in &self.keys {
            match k {
                Key::Account(..) => {
                    map.remove(k);
                }
                Key::Source(_) => {
                    if let Some(c) = map.get_mut(k) {
                        c.pending = c.pending.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// The secret was wrong, or the attempt was refused busy: a failure for every key; answers the new block.
    pub fn fail(mut self, now: Instant) -> Duration {
        self.settled = true;
        self.lockout.settle_failure(&self.keys, now)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.lockout.settle_failure(&self.keys, Instant::now());
        }
    }
}

impl Lockout {
    /// Take one attempt from the budget of `keys` (account keys and the caller's source key), or say how long
    /// to wait. Source keys refuse while blocked; account keys refuse only a source that has failed.
    pub fn reserve(&self, keys: &[Key], now: Instant) -> Result<Attempt<'_>, Blocked> {
        let mut map = self.keys.lock().unwrap();
        for k in keys {
            if let Some(c) = map.get_mut(k)
                && c.pending == 0
                && now.duration_since(c.last) >= FORGET
            {
                *c = Counter::new(now);
            }
        }
        let clean = keys.iter().filter(|k| matches!(k, Key::Source(_))).all(|k| map.get(k).is_none_or(Counter::clean));
        let wait = keys
            .iter()
            .filter(|k| !(clean && matches!(k, Key::Account(..))))
            .filter_map(|k| map.get(k))
            .map(|c| c.wait(now))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(Blocked(wait));
        }
        for k in keys {
            if !map.contains_key(k) && map.len() >= MAX_KEYS {
                evict(&mut map, now);
            }
            map.entry(k.clone()).or_insert_with(|| Counter::new(now)).pending += 1;
        }
        Ok(Attempt { lockout: self, keys: keys.to_vec(), clean, settled: false })
    }

    fn settle_failure(&self, keys: &[Key], now: Instant) -> Duration {
        let mut map = self.keys.lock().unwrap();
        let mut longest = Duration::ZERO;
        for k in keys {
            if !map.contains_key(k) && map.len() >= MAX_KEYS {
                evict(&mut map, now);
            }
            let c = map.entry(k.clone()).or_insert_with(|| Counter::new(now));
            c.pending = c.pending.saturating_sub(1);
            c.failures = c.failures.saturating_add(1);
            c.last = now;
            let block = block_for(c.failures);
            if !block.is_zero() {
                c.until = now + block;
            }
            longest = longest.max(block);
        }
        longest
    }

    /// Forget every counter, as a restart does.
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
    map.retain(|_, c| c.pending > 0 || (c.until > now && now.duration_since(c.last) < FORGET));
    if map.len() >= MAX_KEYS
        && let Some(oldest) = map.iter().filter(|(_, c)| c.pending == 0).min_by_key(|(_, c)| c.last).map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(a: &str, lan: bool) -> Key {
        Key::source(a.parse().unwrap(), lan)
    }

    fn fail_n(l: &Lockout, keys: &[Key], n: u32, now: Instant) {
        for _ in 0..n {
            l.reserve(keys, now).expect("not blocked").fail(now);
        }
    }

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
        let keys = [Key::Account("alice".into(), false), src("203.0.113.5", false)];
        fail_n(&l, &keys, FREE, t0);
        let a = l.reserve(&keys, t0).expect("the first FREE failures are free");
        assert_eq!(a.fail(t0), Duration::from_secs(1));
        assert_eq!(l.reserve(&keys, t0).err(), Some(Blocked(Duration::from_secs(1))));
        let t = t0 + Duration::from_secs(1);
        assert!(l.reserve(&keys, t).map(|a| a.fail(t)).is_ok(), "the block expires");
        for i in 0..40 {
            fail_n(&l, &keys, 1, t0 + MAX_BLOCK * (i + 1));
        }
        let t1 = t0 + MAX_BLOCK * 40;
        assert_eq!(l.reserve(&keys, t1).err(), Some(Blocked(MAX_BLOCK)), "never longer than the cap");
        assert!(l.reserve(&keys, t1 + MAX_BLOCK).map(|a| a.fail(t1 + MAX_BLOCK)).is_ok());
        // The owner at home is not blocked by failures from the WAN.
        assert!(l.reserve(&[Key::Account("alice".into(), true), src("192.168.1.2", true)], t1).is_ok());
        // A day later the counter starts over.
        let t2 = t1 + MAX_BLOCK + FORGET;
        fail_n(&l, &keys, 1, t2);
        assert!(l.reserve(&keys, t2).is_ok());
    }

    #[test]
    fn sources_are_prefixes() {
        assert_eq!(src("2001:db8:1:2:aaaa::1", false), src("2001:db8:1:2:ffff::9", true), "one IPv6 /64");
        assert_ne!(src("2001:db8:1:2::1", false), src("2001:db8:1:3::1", false));
        assert_eq!(src("203.0.113.5", false), src("203.0.113.250", false), "one WAN IPv4 /24");
        assert_ne!(src("192.168.1.5", true), src("192.168.1.6", true), "LAN IPv4 addresses apart");
        assert_eq!(src("::ffff:203.0.113.5", false), src("203.0.113.7", false), "v4-mapped is v4");
        assert_eq!(Source::of("2001:db8::7".parse().unwrap(), false).to_string(), "2001:db8::/64");
    }

    #[test]
    fn a_f6_concurrent_attempts_take_the_budget_before_hashing() {
        let l = Lockout::default();
        let t0 = Instant::now();
        let keys = [Key::Account("#1".into(), true), src("192.168.1.9", true)];
        // Forty guesses start at the same instant: only the budget gets through to the hasher.
        let started: Vec<_> = (0..40).filter_map(|_| l.reserve(&keys, t0).ok()).collect();
        assert_eq!(started.len(), FREE as usize + 1);
        for a in started {
            a.fail(t0);
        }
        assert!(l.reserve(&keys, t0).is_err());
        // After the block, one at a time.
        let t1 = t0 + Duration::from_secs(1);
        let one = l.reserve(&keys, t1).expect("the block ended");
        assert!(l.reserve(&keys, t1).is_err(), "a second one waits for the first");
        one.fail(t1);
        // A success releases its source place without a failure and clears the account.
        let l = Lockout::default();
        let a = l.reserve(&keys, t0).unwrap();
        a.succeed();
        fail_n(&l, &keys, FREE, t0);
        assert!(l.reserve(&keys, t0).is_ok(), "the success did not count");
    }

    #[test]
    fn a_f5_busy_and_abandoned_attempts_count() {
        let l = Lockout::default();
        let t0 = Instant::now();
        let keys = [Key::Account("ada".into(), false), src("198.51.100.3", false)];
        for _ in 0..=FREE {
            let a = l.reserve(&keys, t0).unwrap();
            drop(a); // refused busy or the caller went away: settled as a failure
        }
        assert!(l.reserve(&keys, t0).is_err(), "{} busy attempts exhausted the free budget", FREE + 1);
        // The same source prefix from another address of its /24 is the same source.
        assert!(l.reserve(&[Key::Account("bob".into(), false), src("198.51.100.77", false)], t0).is_err());
    }

    #[test]
    fn a_f7_an_account_block_does_not_refuse_a_clean_source() {
        let l = Lockout::default();
        let t0 = Instant::now();
        let lan = |a: &str| [Key::Account("boss".into(), true), src(a, true)];
        fail_n(&l, &lan("127.0.2.1"), FREE + 1, t0);
        assert!(l.reserve(&lan("127.0.2.1"), t0).is_err(), "the failing source is blocked");
        assert!(l.reserve(&lan("127.0.2.2"), t0).map(Attempt::succeed).is_ok(), "a clean source is not");
        // Many sources blocking the account: each gets its first guess, then only the account schedule.
        let l = Lockout::default();
        for i in 0..20u8 {
            fail_n(&l, &lan(&format!("10.0.0.{i}")), 1, t0);
        }
        assert!(l.reserve(&lan("10.0.0.3"), t0).is_err(), "a source that failed waits for the account block");
        assert!(l.reserve(&lan("10.0.0.200"), t0).is_ok(), "a clean one does not");
        // WAN failures never block the LAN side.
        let wan = [Key::Account("boss".into(), false), src("203.0.113.9", false)];
        fail_n(&l, &wan, FREE + 1, t0);
        assert!(l.reserve(&[Key::Account("boss".into(), true), src("10.0.0.250", true)], t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let l = Lockout::default();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS as u32 + 100) {
            fail_n(&l, &[Key::source(IpAddr::from(i.to_be_bytes()), true)], 1, t0);
        }
        assert!(l.keys.lock().unwrap().len() <= MAX_KEYS);
    }
}
