//! Bandwidth classes (DESIGN.md "Remote access"): LAN uncapped; each remote stream capped by "Limit remote
//! stream bitrate"; remote downloads get only what remote streams leave of "Internet upload speed"; all
//! remote egress together stays under "Internet upload speed".
//!
//! Shape: the [`Pacer`] holds the table of remote senders and gives each a rate (bytes/s). Streams share the
//! upload cap first (each at most the per-stream cap); downloads split what is left. Each sender paces its own
//! sendfile calls with a token [`Bucket`] whose burst is [`BURST`] of its rate, so the sum of all senders can
//! exceed the cap by at most one burst, and a download whose rate drops (a stream started) slows within
//! [`BURST`]. Rates are recomputed when a sender starts or ends and when the settings change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest burst a bucket holds, in time at its rate. The sum of all remote senders can pass the upload cap
/// by one burst in any window, so over the half-second windows a router's graph shows, 25 ms keeps it within
/// 5% (25 / 500); 100 ms allowed 20% and was measured at 5.4% over in `scripts/bench`.
pub const BURST: Duration = Duration::from_millis(25);
/// Smallest grant worth a sendfile call.
pub const MIN_GRANT: u64 = 16 * 1024;
/// No cap.
pub const UNCAPPED: u64 = u64::MAX;

/// A bandwidth class: who a body goes to, which decides its pacing and its egress counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// A LAN client (including trusted proxies and WAN-IP-as-LAN): never paced.
    Lan,
    /// A remote client playing: paced under the stream cap.
    RemoteStream,
    /// Plex's `download=1` from a remote address.
    RemoteDownload,
}

/// A token bucket in bytes (sans-IO: the caller passes the time).
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// An empty bucket at `now`.
    pub fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: 0.0,
            last: now,
        }
    }

    fn capacity(rate: u64) -> f64 {
        // Room for two minimum grants: a bucket that holds exactly one loses the tokens of every late wakeup
        // (a 500 kB/s stream measured 3% under its cap that way).
        (rate as f64 * BURST.as_secs_f64()).max(2.0 * MIN_GRANT as f64)
    }

    /// How many bytes may go now (up to `want`), or how long to wait before asking again.
    pub fn grant(&mut self, rate: u64, want: u64, now: Instant) -> Result<u64, Duration> {
        if rate == UNCAPPED {
            return Ok(want);
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let cap = Self::capacity(rate);
        self.tokens = (self.tokens + dt * rate as f64).min(cap);
        let need = want.clamp(1, MIN_GRANT) as f64;
        if rate > 0 && self.tokens >= need {
            let n = (self.tokens as u64).min(want);
            self.tokens -= n as f64;
            return Ok(n);
        }
        if rate == 0 {
            return Err(Duration::from_millis(200));
        }
        let wait = (need - self.tokens) / rate as f64;
        Err(Duration::from_secs_f64(wait.clamp(0.001, 0.2)))
    }

    /// Return bytes granted but not sent.
    pub fn refund(&mut self, n: u64) {
        self.tokens += n as f64;
    }
}

struct Sender {
    class: Class,
    rate: AtomicU64,
}

#[derive(Default)]
struct Table {
    /// Bytes per second; UNCAPPED when not set.
    upload: u64,
    stream: u64,
    senders: HashMap<u64, Arc<Sender>>,
    next: u64,
}

impl Table {
    /// Give every sender its rate.
    fn recompute(&self) {
        let streams: Vec<&Arc<Sender>> = self
            .senders
            .values()
            .filter(|s| s.class == Class::RemoteStream)
            .collect();
        let downloads: Vec<&Arc<Sender>> = self
            .senders
            .values()
            .filter(|s| s.class == Class::RemoteDownload)
            .collect();
        let per_stream = if streams.is_empty() {
            0
        } else if self.upload == UNCAPPED {
            self.stream
        } else {
            self.stream.min(self.upload / streams.len() as u64)
        };
        for s in &streams {
            s.rate.store(per_stream, Ordering::Relaxed);
        }
        let used = per_stream.saturating_mul(streams.len() as u64);
        // Without an upload cap there is nothing to share: downloads are not limited either.
        let left = if self.upload == UNCAPPED {
            UNCAPPED
        } else {
            self.upload.saturating_sub(used)
        };
        let per_download = if downloads.is_empty() || left == UNCAPPED {
            left
        } else {
            left / downloads.len() as u64
        };
        for d in &downloads {
            d.rate.store(per_download, Ordering::Relaxed);
        }
    }
}

/// The shared pacing table. One per server.
#[derive(Default)]
pub struct Pacer {
    table: Mutex<Table>,
}

/// kbit/s as in the settings (0 = not set) → bytes/s.
pub fn kbps_to_bytes(kbps: u32) -> u64 {
    if kbps == 0 {
        UNCAPPED
    } else {
        kbps as u64 * 1000 / 8
    }
}

impl Pacer {
    /// A pacer with no caps (the state's caps are set by `Streams::follow`).
    pub fn new() -> Arc<Pacer> {
        Arc::new(Pacer {
            table: Mutex::new(Table {
                upload: UNCAPPED,
                stream: UNCAPPED,
                ..Table::default()
            }),
        })
    }

    /// Apply the settings (kbit/s, 0 = uncapped). Running senders see the new rates at their next chunk.
    pub fn set_caps(&self, upload_kbps: u32, stream_kbps: u32) {
        let mut t = self.table.lock().unwrap();
        t.upload = kbps_to_bytes(upload_kbps);
        t.stream = kbps_to_bytes(stream_kbps);
        t.recompute();
    }

    /// Register a sender. LAN senders are not in the table and never wait.
    pub fn lease(self: &Arc<Pacer>, class: Class) -> Lease {
        let now = Instant::now();
        if class == Class::Lan {
            return Lease {
                pacer: self.clone(),
                id: None,
                sender: None,
                bucket: Bucket::new(now),
            };
        }
        let sender = Arc::new(Sender {
            class,
            rate: AtomicU64::new(0),
        });
        let mut t = self.table.lock().unwrap();
        let id = t.next;
        t.next += 1;
        t.senders.insert(id, sender.clone());
        t.recompute();
        Lease {
            pacer: self.clone(),
            id: Some(id),
            sender: Some(sender),
            bucket: Bucket::new(now),
        }
    }

    /// Remote senders now: (streams, downloads).
    pub fn counts(&self) -> (usize, usize) {
        let t = self.table.lock().unwrap();
        let s = t
            .senders
            .values()
            .filter(|s| s.class == Class::RemoteStream)
            .count();
        (s, t.senders.len() - s)
    }
}

/// One sender's place in the table; leaving it (drop) gives its share back.
pub struct Lease {
    pacer: Arc<Pacer>,
    id: Option<u64>,
    sender: Option<Arc<Sender>>,
    bucket: Bucket,
}

impl Lease {
    /// Bytes per second this sender may use now (UNCAPPED for LAN).
    pub fn rate(&self) -> u64 {
        self.sender
            .as_ref()
            .map_or(UNCAPPED, |s| s.rate.load(Ordering::Relaxed))
    }

    /// Wait until some bytes may go; returns how many (≤ `want`).
    pub async fn take(&mut self, want: u64) -> u64 {
        loop {
            match self.bucket.grant(self.rate(), want, Instant::now()) {
                Ok(n) => return n,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Without waiting: bytes that may go now, or how long until some may.
    pub fn try_take(&mut self, want: u64) -> Result<u64, Duration> {
        self.bucket.grant(self.rate(), want, Instant::now())
    }

    /// Give back bytes granted but not sent.
    pub fn refund(&mut self, n: u64) {
        if self.sender.is_some() {
            self.bucket.refund(n);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut t = self.pacer.table.lock().unwrap();
            t.senders.remove(&id);
            t.recompute();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulate a sender that always wants 1 MiB for `secs` and count what it was granted.
    fn run(bucket: &mut Bucket, rate: u64, secs: f64) -> u64 {
        let start = Instant::now();
        let mut now = start;
        let mut sent = 0;
        *bucket = Bucket::new(now);
        while now.duration_since(start).as_secs_f64() < secs {
            match bucket.grant(rate, 1 << 20, now) {
                Ok(n) => sent += n,
                Err(w) => now += w,
            }
        }
        sent
    }

    #[test]
    fn bucket_holds_the_rate_within_one_percent() {
        for rate in [64_000u64, 500_000, 2_500_000, 12_500_000] {
            let mut b = Bucket::new(Instant::now());
            let sent = run(&mut b, rate, 10.0) as f64;
            let want = rate as f64 * 10.0;
            assert!(
                (sent - want).abs() / want < 0.01 + MIN_GRANT as f64 / want,
                "rate {rate}: {sent} vs {want}"
            );
        }
    }

    #[test]
    fn streams_first_downloads_get_the_rest() {
        let p = Pacer::new();
        p.set_caps(8_000, 2_000); // 1 MB/s upload, 250 kB/s per stream
        let d = p.lease(Class::RemoteDownload);
        assert_eq!(d.rate(), 1_000_000);
        let s1 = p.lease(Class::RemoteStream);
        assert_eq!((s1.rate(), d.rate()), (250_000, 750_000));
        let s2 = p.lease(Class::RemoteStream);
        assert_eq!(d.rate(), 500_000);
        let lan = p.lease(Class::Lan);
        assert_eq!(lan.rate(), UNCAPPED);
        drop(s1);
        assert_eq!(d.rate(), 750_000);
        // Many streams share the upload cap; downloads get nothing while streams use it all.
        let more: Vec<Lease> = (0..5).map(|_| p.lease(Class::RemoteStream)).collect();
        assert_eq!(s2.rate(), 1_000_000 / 6);
        assert_eq!(d.rate(), 1_000_000 - 6 * (1_000_000 / 6));
        drop(more);
        // Settings apply to running senders.
        p.set_caps(0, 0);
        assert_eq!((s2.rate(), d.rate()), (UNCAPPED, UNCAPPED));
        p.set_caps(8_000, 0);
        assert_eq!((s2.rate(), d.rate()), (1_000_000, 0));
        drop(s2);
        assert_eq!(d.rate(), 1_000_000);
        assert_eq!(p.counts(), (0, 1));
    }
}
