//! File descriptors and the connections that hold them (DESIGN.md "Doors against slow or greedy clients").
//!
//! Every open connection holds one fd until it ends, and the process has `RLIMIT_NOFILE` of them (1,024 soft
//! under systemd and as PID 1 on a board, unless raised). Four rules keep one client from taking them all
//! (robustness review 2026-12-04, R-F2 and R-F3):
//!
//! - The process raises its own soft limit to the hard limit at start ([`raise_limit`]): 1,024 → 4,096 as PID 1
//!   (the kernel's defaults), 1,024 → 524,288 under systemd.
//! - One source holds at most a cap of connections on a port ([`Sources`]): [`per_source_cap`] on 32400, a
//!   fixed few on DLNA. A source is an IPv4 address or an IPv6 /64 (a host picks new addresses inside its /64
//!   at will, RFC 8981, so counting addresses would not cap anything).
//! - A request body must arrive whole within [`body_timeout`] of its head (the ports' shells enforce it).
//! - When accept(2) fails anyway (EMFILE: another process or many sources), the accept loops back off for
//!   [`ACCEPT_BACKOFF`] and log once per episode, not once per try ([`AcceptTrouble`]).
//!
//! `HEARTH_BODY_TIMEOUT_MS` (milliseconds, hidden, for tests) replaces the 10 s body deadline.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a client may take to send a whole request body after its head (the head has its own 10 s).
/// Every body a handler reads is at most 64 KiB (`http::MAX_BODY`, `dlna::soap::MAX_BODY`): 10 s is a rate of
/// 6.4 KiB/s, which any real client beats; a route that takes large uploads needs a rate-based deadline.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The body deadline in force: [`BODY_TIMEOUT`], or `HEARTH_BODY_TIMEOUT_MS` when set (tests; 1 ms to 10 min).
pub fn body_timeout() -> Duration {
    static TIMEOUT: OnceLock<Duration> = OnceLock::new();
    *TIMEOUT.get_or_init(|| {
        std::env::var("HEARTH_BODY_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| (1..=600_000).contains(ms))
            .map_or(BODY_TIMEOUT, Duration::from_millis)
    })
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (an unprivileged process may) and answer the soft limit
/// in force afterwards. Called once at start, before any listener opens.
pub fn raise_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return limit() };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open file limit"),
            Err(e) => tracing::warn!(soft, hard, error = %e, "could not raise the open file limit"),
        }
    }
    limit()
}

/// The soft `RLIMIT_NOFILE` in force (1,024 when it cannot be read).
pub fn limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Connections one source may hold on 32400 with `limit` fds: a quarter of them, at least 16, at most 256.
/// A quarter leaves three quarters for every other source and for the server's own files when one source
/// floods (with 1,024 fds: 256 for the flood, about 740 free); 256 is far above what one real client opens
/// (a browser keeps 6 per host, a Plex app a handful, a TV a few) and bounds what one source costs in socket
/// buffers and connection state however high the limit is.
pub fn per_source_cap(limit: u64) -> u32 {
    (limit / 4).clamp(16, 256) as u32
}

/// Who a connection counts against: an IPv4 address (an IPv4-mapped IPv6 address counts as its IPv4
/// address), or the /64 of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6(u64),
}

impl Source {
    /// The source a peer address counts as.
    pub fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// The connections each source holds on one port, and the cap. [`Sources::admit`] counts one more or refuses;
/// the [`Held`] it returns counts it off when dropped (when the connection's task ends).
pub struct Sources {
    cap: u32,
    held: Mutex<HashMap<Source, u32>>,
}

impl Sources {
    /// Counting for one port, at most `cap` connections per source.
    pub fn new(cap: u32) -> Arc<Sources> {
        Arc::new(Sources { cap: cap.max(1), held: Mutex::new(HashMap::new()) })
    }

    /// The cap per source.
    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// Count a new connection from `ip`, or `None` when its source already holds the cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let source = Source::of(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(source).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Held { sources: self.clone(), source })
    }

    /// Connections `ip`'s source holds now.
    pub fn holding(&self, ip: IpAddr) -> u32 {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&Source::of(ip)).copied().unwrap_or(0)
    }
}

/// One counted connection; dropping it counts it off.
pub struct Held {
    sources: Arc<Sources>,
    source: Source,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.sources.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// How long an accept loop waits after accept(2) failed before it tries again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One accept loop's failures: the first failure of an episode is logged (warn), the tries while it lasts
/// are not, and the first accept after it logs how many failed and for how long.
pub struct AcceptTrouble {
    /// Which listener, for the log ("HTTP", "DLNA").
    port: &'static str,
    failures: u64,
    since: Option<Instant>,
}

impl AcceptTrouble {
    /// No trouble yet, for the listener named `port` in log lines.
    pub fn new(port: &'static str) -> AcceptTrouble {
        AcceptTrouble { port, failures: 0, since: None }
    }

    /// accept(2) failed with `e`: log it if it starts an episode; answers how long to wait.
    pub fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.failures += 1;
        if self.since.is_none() {
            self.since = Some(Instant::now());
            tracing::warn!(listener = self.port, error = %e, "accept failed; backing off, quietly until it works again");
        }
        ACCEPT_BACKOFF
    }

    /// accept(2) worked: end an episode (one line with its count and length).
    pub fn accepted(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(listener = self.port, failures = self.failures, seconds = since.elapsed().as_secs_f32(),
                "accepting again after failed accepts");
            self.failures = 0;
        }
    }

    /// Failed accepts in the episode under way (0 when none is).
    pub fn failures(&self) -> u64 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_slash_64s() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(Source::of(ip("192.0.2.7")), Source::of(ip("::ffff:192.0.2.7")), "a mapped address is its IPv4");
        assert_ne!(Source::of(ip("192.0.2.7")), Source::of(ip("192.0.2.8")));
        assert_eq!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:2:abcd:ef01:2345:6789")), "one /64");
        assert_ne!(Source::of(ip("2001:db8:1:2::1")), Source::of(ip("2001:db8:1:3::1")));
    }

    #[test]
    fn a_source_holds_at_most_the_cap_and_gets_slots_back() {
        let sources = Sources::new(2);
        let a = "10.0.0.1".parse().unwrap();
        let b = "10.0.0.2".parse().unwrap();
        let first = sources.admit(a).expect("first");
        let _second = sources.admit(a).expect("second");
        assert!(sources.admit(a).is_none(), "the third from one source is refused");
        let _other = sources.admit(b).expect("another source is not affected");
        drop(first);
        assert_eq!(sources.holding(a), 1);
        assert!(sources.admit(a).is_some(), "a closed connection frees its slot");
    }

    #[test]
    fn the_cap_follows_the_fd_limit_within_bounds() {
        assert_eq!(per_source_cap(1024), 256);
        assert_eq!(per_source_cap(256), 64);
        assert_eq!(per_source_cap(20), 16);
        assert_eq!(per_source_cap(1 << 20), 256);
    }

    #[test]
    fn accept_trouble_counts_an_episode_and_ends_it() {
        let mut t = AcceptTrouble::new("test");
        let e = std::io::Error::from_raw_os_error(24);
        for _ in 0..5 {
            assert_eq!(t.failed(&e), ACCEPT_BACKOFF);
        }
        assert_eq!(t.failures(), 5);
        t.accepted();
        assert_eq!(t.failures(), 0);
    }
}
