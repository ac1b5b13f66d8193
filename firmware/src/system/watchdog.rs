//! The hardware watchdog and the heartbeats it guards (issue 9, first part).
//!
//! One OS thread pets `/dev/watchdog` (WDIOC_KEEPALIVE) and never blocks on what it watches: each subsystem
//! bumps its [`Beat`] and the thread pets only while every registered beat is fresher than `stale_after`.
//! A clean stop writes the magic close character 'V' (Documentation/watchdog/watchdog-api.rst, "Magic Close").
//! On a board without a watchdog device the same checks run and a stale beat is logged by name.
//!
//! What the thread knows is published once per process as a [`Watch`] ([`published`], a `OnceLock` owned by
//! this room): the device (or none), the timeout, whether the last check petted, and each heartbeat's age.
//! `GET /api/v1/system` reads it through [`facts`]. Under `hearth serve` on a host no watchdog thread runs
//! (only init mode starts one), and [`facts`] says exactly that.

use nix::libc::c_int;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

// <linux/watchdog.h>: WATCHDOG_IOCTL_BASE 'W'.
nix::ioctl_read!(wdioc_getbootstatus, b'W', 2, c_int);
nix::ioctl_read!(wdioc_keepalive, b'W', 5, c_int);
nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, c_int);
nix::ioctl_read!(wdioc_gettimeout, b'W', 7, c_int);

/// WDIOF_CARDRESET in the boot status: the last reboot was caused by the watchdog.
pub const WDIOF_CARDRESET: c_int = 0x0020;

/// Milliseconds since `epoch` of the last bump of one subsystem; 0 = never started.
#[derive(Clone)]
pub struct Beat {
    name: &'static str,
    last_ms: Arc<AtomicU64>,
    epoch: Instant,
}

impl Beat {
    pub fn bump(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The set of heartbeats the watchdog thread checks.
#[derive(Clone)]
pub struct Heartbeats {
    epoch: Instant,
    beats: Arc<std::sync::Mutex<Vec<Beat>>>,
}

/// Why the thread did not pet.
#[derive(Debug, PartialEq, Eq)]
pub enum Stale {
    NeverStarted(&'static str),
    Late { name: &'static str, age: Duration },
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats { epoch: Instant::now(), beats: Default::default() }
    }
}

impl Heartbeats {
    pub fn register(&self, name: &'static str) -> Beat {
        let b = Beat { name, last_ms: Arc::new(AtomicU64::new(0)), epoch: self.epoch };
        self.beats.lock().unwrap().push(b.clone());
        b
    }

    /// Every beat fresher than `stale_after` at `now`? Otherwise the first stale one, by name.
    pub fn check(&self, now: Instant, stale_after: Duration) -> Result<(), Stale> {
        let now_ms = now.duration_since(self.epoch).as_millis() as u64;
        for b in self.beats.lock().unwrap().iter() {
            let last = b.last_ms.load(Ordering::Relaxed);
            if last == 0 {
                return Err(Stale::NeverStarted(b.name));
            }
            let age = Duration::from_millis(now_ms.saturating_sub(last - 1));
            if age > stale_after {
                return Err(Stale::Late { name: b.name, age });
            }
        }
        Ok(())
    }

    /// Each beat's name and age at `now` (None: never started), in registration order.
    pub fn ages(&self, now: Instant) -> Vec<(&'static str, Option<Duration>)> {
        let now_ms = now.duration_since(self.epoch).as_millis() as u64;
        let beats = self.beats.lock().unwrap();
        beats
            .iter()
            .map(|b| {
                let last = b.last_ms.load(Ordering::Relaxed);
                (b.name, (last != 0).then(|| Duration::from_millis(now_ms.saturating_sub(last - 1))))
            })
            .collect()
    }
}

/// What the watchdog thread knows, readable from anywhere (the System screen).
pub struct Watch {
    /// The device's path, None when there is no device (missing, or it refused the timeout).
    device: Option<String>,
    timeout: Duration,
    stale_after: Duration,
    beats: Heartbeats,
    /// The last check found every beat fresh (and, with a device, WDIOC_KEEPALIVE succeeded).
    petting: AtomicBool,
}

static PUBLISHED: OnceLock<Arc<Watch>> = OnceLock::new();

/// The watchdog of this process, once [`spawn`] started it.
pub fn published() -> Option<Arc<Watch>> {
    PUBLISHED.get().cloned()
}

/// The System screen's watchdog facts (label → value, as `GET /api/v1/system` answers them).
pub fn facts() -> Vec<(String, String)> {
    match published() {
        Some(w) => w.facts(Instant::now()),
        None => vec![
            ("Device".into(), "none".into()),
            (
                "State".into(),
                "not running: `hearth serve` on a host has no watchdog; init mode on a board runs it".into(),
            ),
        ],
    }
}

impl Watch {
    pub fn new(device: Option<String>, timeout: Duration, beats: Heartbeats) -> Watch {
        Watch { device, timeout, stale_after: timeout / 2, beats, petting: AtomicBool::new(false) }
    }

    /// Labels and values: "Device", "Timeout", "Petting", and "Heartbeat: NAME" with its age, "stale" past
    /// half the timeout, or "never started".
    pub fn facts(&self, now: Instant) -> Vec<(String, String)> {
        let petting = self.petting.load(Ordering::Relaxed);
        let mut out = vec![
            ("Device".to_string(), self.device.clone().unwrap_or_else(|| "none".into())),
            ("Timeout".to_string(), format!("{} s", self.timeout.as_secs())),
            (
                "Petting".to_string(),
                match (&self.device, petting) {
                    (None, true) => "no device; every heartbeat is fresh".into(),
                    (None, false) => "no device; a heartbeat is stale or never started".into(),
                    (Some(_), true) => "yes".into(),
                    (Some(_), false) => "no: a heartbeat is stale, the board resets when the timeout runs out".into(),
                },
            ),
        ];
        for (name, age) in self.beats.ages(now) {
            let v = match age {
                None => "never started".to_string(),
                Some(a) if a > self.stale_after => format!("stale ({:.1} s ago)", a.as_secs_f64()),
                Some(a) => format!("{:.1} s ago", a.as_secs_f64()),
            };
            out.push((format!("Heartbeat: {name}"), v));
        }
        out
    }
}

/// An open watchdog device.
pub struct Device {
    file: std::fs::File,
    pub path: String,
    pub timeout_secs: u32,
    pub boot_status: c_int,
}

impl Device {
    /// Open, read the boot status, set the timeout and read back the one the driver chose.
    pub fn open(path: &str, timeout_secs: u32) -> std::io::Result<Device> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        let fd = file.as_raw_fd();
        let mut status: c_int = 0;
        // SAFETY: the ioctls take a pointer to one int, which we own.
        unsafe {
            let _ = wdioc_getbootstatus(fd, &mut status);
            let mut t = timeout_secs as c_int;
            wdioc_settimeout(fd, &mut t)?;
            let mut got: c_int = 0;
            wdioc_gettimeout(fd, &mut got)?;
            Ok(Device { file, path: path.to_string(), timeout_secs: got.max(1) as u32, boot_status: status })
        }
    }

    pub fn keepalive(&self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut dummy: c_int = 0;
        // SAFETY: as above.
        unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut dummy) }?;
        Ok(())
    }

    /// Magic close: the driver disarms on close after 'V' (unless nowayout).
    pub fn close_cleanly(mut self) {
        let _ = self.file.write_all(b"V");
    }
}

/// Run the petting thread until `stop` is set. `device` None: checks run and report only. The first call in a
/// process publishes its [`Watch`] (see [`published`]).
pub fn spawn(device: Option<Device>, beats: Heartbeats, timeout: Duration, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let watch = Arc::new(Watch::new(device.as_ref().map(|d| d.path.clone()), timeout, beats.clone()));
    let _ = PUBLISHED.set(watch.clone());
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let period = (timeout / 4).max(Duration::from_millis(250));
            let stale_after = timeout / 2;
            let mut reported = false;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let checked = beats.check(Instant::now(), stale_after);
                watch.petting.store(checked.is_ok(), Ordering::Relaxed);
                match checked {
                    Ok(()) => {
                        reported = false;
                        if let Some(d) = &device
                            && let Err(e) = d.keepalive()
                        {
                            watch.petting.store(false, Ordering::Relaxed);
                            tracing::error!(error = %e, "WDIOC_KEEPALIVE failed");
                        }
                    }
                    // Subsystems get `stale_after` to send their first beat before one is reported.
                    Err(s) if !reported && started.elapsed() > stale_after => {
                        tracing::error!(stale = ?s, "a subsystem stopped its heartbeat; not petting the watchdog");
                        reported = true;
                    }
                    Err(_) => {}
                }
                std::thread::sleep(period);
            }
            if let Some(d) = device {
                d.close_cleanly();
            }
        })
        .expect("watchdog thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pets_only_while_every_beat_is_fresh() {
        let hb = Heartbeats::default();
        let a = hb.register("listener");
        let b = hb.register("store writer");
        let t0 = Instant::now();
        assert_eq!(hb.check(t0, Duration::from_secs(5)), Err(Stale::NeverStarted("listener")));
        a.bump();
        assert_eq!(hb.check(t0, Duration::from_secs(5)), Err(Stale::NeverStarted("store writer")));
        b.bump();
        assert_eq!(hb.check(Instant::now(), Duration::from_secs(5)), Ok(()));
        let later = Instant::now() + Duration::from_secs(10);
        assert!(matches!(hb.check(later, Duration::from_secs(5)), Err(Stale::Late { name: "listener", .. })));
    }

    #[test]
    fn the_system_screen_sees_each_heartbeat_and_whether_the_thread_pets() {
        let hb = Heartbeats::default();
        let fresh = hb.register("listener");
        hb.register("runtime canary");
        fresh.bump();
        // Without a device the thread still checks; the facts say there is nothing to pet.
        let stop = Arc::new(AtomicBool::new(false));
        let t = spawn(None, hb.clone(), Duration::from_secs(1), stop.clone());
        let w = published().expect("spawn publishes its watch");
        std::thread::sleep(Duration::from_millis(100));
        let facts = w.facts(Instant::now());
        let get = |k: &str| facts.iter().find(|(l, _)| l == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(get("Device"), "none");
        assert_eq!(get("Timeout"), "1 s");
        assert_eq!(get("Petting"), "no device; a heartbeat is stale or never started", "{facts:?}");
        assert!(get("Heartbeat: listener").ends_with(" s ago") && !get("Heartbeat: listener").starts_with("stale"), "{facts:?}");
        assert_eq!(get("Heartbeat: runtime canary"), "never started");
        let labels = |f: Vec<(String, String)>| f.into_iter().map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(labels(super::facts()), labels(facts.clone()), "the API reads the published watch");
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        // Half the timeout later the listener's beat is stale.
        let later = w.facts(Instant::now() + Duration::from_millis(700));
        assert!(later.iter().any(|(l, v)| l == "Heartbeat: listener" && v.starts_with("stale")), "{later:?}");
    }
}
