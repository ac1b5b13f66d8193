//! The hardware watchdog and the heartbeats it guards (issue 9).
//!
//! One OS thread pets `/dev/watchdog` (WDIOC_KEEPALIVE) and never blocks on what it watches: each subsystem
//! bumps its [`Beat`] and the thread pets only while every registered beat is fresher than `stale_after`.
//! A clean stop writes the magic close character 'V' (Documentation/watchdog/watchdog-api.rst, "Magic Close").
//! On a host without a watchdog device (`hearth serve`) the same thread and checks run and a stale beat is
//! logged by name; with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set (a systemd unit with `WatchdogSec=`) it sends
//! `WATCHDOG=1` where it would pet (sd_notify(3), sd_watchdog_enabled(3)), so systemd restarts a hung Hearth.
//! A beat whose subsystem is off on purpose rests ([`Beat::rest`]) and is not checked until it bumps again.
//! When the thread stops petting it calls back (init and serve write the `Starving` marker into the state
//! without waiting, so the next start can name the watchdog as the reason; see [`super::reset`]).
//!
//! What the thread knows is published as a [`Watch`] ([`published`], owned by this room): the device (or why there is none), the timeout, whether the last check petted, and each
//! heartbeat's age. `GET /api/v1/system` reads it through [`facts`].

use nix::libc::c_int;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// `last_ms` of a beat whose subsystem is deliberately off (DLNA switched off, remote access disabled).
const RESTING: u64 = u64::MAX;

impl Beat {
    /// Report the subsystem alive now; the watchdog thread stops feeding the device when a bump is overdue.
    pub fn bump(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
    /// The subsystem is off on purpose: not checked until the next [`Beat::bump`].
    pub fn rest(&self) {
        self.last_ms.store(RESTING, Ordering::Relaxed);
    }
    /// The subsystem's name, as the log and the clean-stop marker name a stale one.
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

impl Beat {
    /// Run `work` (a bounded piece of a subsystem's loop, like a UPnP search) and keep the beat fresh while
    /// it runs, but only for `limit`: work that takes longer than any legitimate run counts as hung.
    pub async fn during<F: std::future::Future>(&self, limit: Duration, work: F) -> F::Output {
        let started = Instant::now();
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                out = &mut work => {
                    self.bump();
                    return out;
                }
                _ = tick.tick() => if started.elapsed() < limit {
                    self.bump();
                },
            }
        }
    }
}

/// How long ago a beat was bumped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Age {
    NeverStarted,
    /// Off on purpose (see [`Beat::rest`]).
    Resting,
    Ago(Duration),
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
    /// A new heartbeat for the subsystem `name`: checked from now on, and stale ("never started") until its first
    /// bump.
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
            if last == RESTING {
                continue;
            }
            let age = Duration::from_millis(now_ms.saturating_sub(last - 1));
            if age > stale_after {
                return Err(Stale::Late { name: b.name, age });
            }
        }
        Ok(())
    }

    /// Each beat's name and age at `now`, in registration order.
    pub fn ages(&self, now: Instant) -> Vec<(&'static str, Age)> {
        let now_ms = now.duration_since(self.epoch).as_millis() as u64;
        let beats = self.beats.lock().unwrap();
        beats
            .iter()
            .map(|b| {
                let age = match b.last_ms.load(Ordering::Relaxed) {
                    0 => Age::NeverStarted,
                    RESTING => Age::Resting,
                    last => Age::Ago(Duration::from_millis(now_ms.saturating_sub(last - 1))),
                };
                (b.name, age)
            })
            .collect()
    }
}

/// What the watchdog thread knows, readable from anywhere (the System screen).
pub struct Watch {
    /// The device's path, or why there is none (missing, or it refused the timeout).
    device: Result<String, String>,
    /// The systemd watchdog is spoken too (`NOTIFY_SOCKET` with `WATCHDOG_USEC`).
    systemd: bool,
    timeout: Duration,
    stale_after: Duration,
    beats: Heartbeats,
    /// The last check found every beat fresh (and, with a device, WDIOC_KEEPALIVE succeeded).
    petting: AtomicBool,
}

static PUBLISHED: Mutex<Option<Arc<Watch>>> = Mutex::new(None);

/// The watchdog of this process: the newest [`spawn`] (tests run several servers in one process).
pub fn published() -> Option<Arc<Watch>> {
    PUBLISHED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The System screen's watchdog facts (label → value, as `GET /api/v1/system` answers them).
pub fn facts() -> Vec<(String, String)> {
    match published() {
        Some(w) => w.facts(Instant::now()),
        None => vec![("Device".into(), "none".into()), ("State".into(), "not running".into())],
    }
}

impl Watch {
    /// Labels and values: "Device", "Timeout", "Petting", and "Heartbeat: NAME" with its age, "stale" past
    /// half the timeout, "off" while its subsystem is off on purpose, or "never started".
    pub fn facts(&self, now: Instant) -> Vec<(String, String)> {
        let petting = self.petting.load(Ordering::Relaxed);
        let has_device = self.device.is_ok();
        let mut out = vec![
            ("Device".to_string(), match &self.device {
                Ok(path) => path.clone(),
                Err(why) => format!("none: {why}"),
            }),
            ("Timeout".to_string(), format!("{} s", self.timeout.as_secs())),
            (
                "Petting".to_string(),
                match (has_device || self.systemd, petting) {
                    (false, true) => "no device; every heartbeat is fresh".into(),
                    (false, false) => "no device; a heartbeat is stale or never started".into(),
                    (true, true) => "yes".into(),
                    (true, false) => "no: a heartbeat is stale, the board resets when the timeout runs out".into(),
                },
            ),
        ];
        if self.systemd {
            out.push(("systemd".to_string(), "WATCHDOG=1 sent to NOTIFY_SOCKET while petting".to_string()));
        }
        for (name, age) in self.beats.ages(now) {
            let v = match age {
                Age::NeverStarted => "never started".to_string(),
                Age::Resting => "off (not checked)".to_string(),
                Age::Ago(a) if a > self.stale_after => format!("stale ({:.1} s ago)", a.as_secs_f64()),
                Age::Ago(a) => format!("{:.1} s ago", a.as_secs_f64()),
            };
            out.push((format!("Heartbeat: {name}"), v));
        }
        out
    }
}

/// The systemd service notification socket (sd_notify(3)): `READY=1`, `WATCHDOG=1`, `STOPPING=1` as
/// datagrams to `NOTIFY_SOCKET` (a path, or an abstract name when it starts with '@').
#[derive(Clone)]
pub struct Notify {
    socket: Arc<std::os::unix::net::UnixDatagram>,
    to: std::os::unix::net::SocketAddr,
    /// `WATCHDOG_USEC` (when `WATCHDOG_PID` is unset or ours): systemd expects `WATCHDOG=1` within this.
    pub watchdog: Option<Duration>,
}

impl Notify {
    /// From the environment systemd sets; None without `NOTIFY_SOCKET` or when it cannot be used (logged).
    /// `WATCHDOG_USEC` counts only when `WATCHDOG_PID` is unset or names this process (sd_watchdog_enabled(3)).
    pub fn from_env() -> Option<Notify> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let usec = std::env::var("WATCHDOG_USEC").ok().filter(|_| ours);
        Notify::from_vars(&path, usec.as_deref())
    }

    /// From the values of `NOTIFY_SOCKET` (a path, or an abstract name after '@') and `WATCHDOG_USEC` (when
    /// it is meant for this process). Separate from [`Notify::from_env`] so tests need not change the
    /// environment, which no thread of a running test binary could then safely read.
    pub fn from_vars(path: &std::ffi::OsStr, watchdog_usec: Option<&str>) -> Option<Notify> {
        let to = {
            use std::os::unix::ffi::OsStrExt;
            let bytes = path.as_bytes();
            if let Some(name) = bytes.strip_prefix(b"@") {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
            } else {
                std::os::unix::net::SocketAddr::from_pathname(path)
            }
        };
        let made = to.and_then(|to| Ok((std::os::unix::net::UnixDatagram::unbound()?, to)));
        let (socket, to) = match made {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "NOTIFY_SOCKET is set but unusable; not speaking to systemd");
                return None;
            }
        };
        let watchdog = watchdog_usec
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0)
            .map(Duration::from_micros);
        Some(Notify { socket: Arc::new(socket), to, watchdog })
    }

    /// Send one notification; failures are logged once per message kind, never fatal.
    pub fn send(&self, msg: &str) {
        if let Err(e) = self.socket.send_to_addr(msg.as_bytes(), &self.to) {
            tracing::warn!(error = %e, msg, "sd_notify failed");
        }
    }
}

/// An open watchdog device.
pub struct Device {
    file: std::fs::File,
    /// The device node it was opened at.
    pub path: String,
    /// The timeout the driver chose (it may round the asked one).
    pub timeout_secs: u32,
    /// `WDIOC_GETBOOTSTATUS` at open: `WDIOF_CARDRESET` means the last reset was the watchdog's.
    pub boot_status: c_int,
}

impl Device {
    /// Open, read the boot status, set the timeout and read back the one the driver chose.
    pub fn open(path: &str, timeout_secs: u32) -> std::io::Result<Device> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        let fd = file.as_raw_fd();
        let mut status: c_int = 0;
        // SAFETY: `fd` is the open device `file`; each WDIOC ioctl reads or writes one int through the pointer,
        // and each pointer is to a local int that lives across its call.
        unsafe {
            let _ = wdioc_getbootstatus(fd, &mut status);
            let mut t = timeout_secs as c_int;
            wdioc_settimeout(fd, &mut t)?;
            let mut got: c_int = 0;
            wdioc_gettimeout(fd, &mut got)?;
            Ok(Device { file, path: path.to_string(), timeout_secs: got.max(1) as u32, boot_status: status })
        }
    }

    /// Feed the device (`WDIOC_KEEPALIVE`): the board is not reset for another timeout.
    pub fn keepalive(&self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut dummy: c_int = 0;
        // SAFETY: the fd is the open device `self.file`; WDIOC_KEEPALIVE writes at most one int through the
        // pointer, to `dummy`, which lives across the call.
        unsafe { wdioc_keepalive(self.file.as_raw_fd(), &mut dummy) }?;
        Ok(())
    }

    /// Magic close: the driver disarms on close after 'V' (unless nowayout).
    pub fn close_cleanly(mut self) {
        let _ = self.file.write_all(b"V");
    }
}

/// What the petting thread pets.
pub struct Pets {
    /// The board's device, or why there is none (shown on the System screen).
    pub device: Result<Device, String>,
    /// The systemd watchdog (`hearth serve` under a unit with `WatchdogSec=`).
    pub notify: Option<Notify>,
}

/// The running petting thread. [`Petter::stop`] ends it at once (a clean stop does not wait out a period) and
/// disarms the device with the magic close.
pub struct Petter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Petter {
    /// Ends the thread and waits for it: blocking, so an async caller runs it on `spawn_blocking`.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
    }
}

/// Run the petting thread until [`Petter::stop`]. Without a device and systemd the checks run and report only.
/// `starving(true)` is called (from this thread, so it must not block) when it stops petting because a beat is
/// stale, `starving(false)` when every beat is fresh again. The first call in a process publishes its [`Watch`]
/// (see [`published`]).
pub fn spawn(
    pets: Pets,
    beats: Heartbeats,
    timeout: Duration,
    starving: impl Fn(bool) + Send + 'static,
) -> Petter {
    let stop = Arc::new(AtomicBool::new(false));
    let Pets { device, notify } = pets;
    let (device, shown) = match device {
        Ok(d) => {
            let path = d.path.clone();
            (Some(d), Ok(path))
        }
        Err(why) => (None, Err(why)),
    };
    let watch = Arc::new(Watch {
        device: shown,
        systemd: notify.as_ref().is_some_and(|n| n.watchdog.is_some()),
        timeout,
        stale_after: timeout / 2,
        beats: beats.clone(),
        petting: AtomicBool::new(false),
    });
    *PUBLISHED.lock().unwrap_or_else(|p| p.into_inner()) = Some(watch.clone());
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let period = (timeout / 4).max(Duration::from_millis(250));
            let stale_after = timeout / 2;
            let mut reported = false;
            let started = Instant::now();
            while !stopping.load(Ordering::Relaxed) {
                let checked = beats.check(Instant::now(), stale_after);
                watch.petting.store(checked.is_ok(), Ordering::Relaxed);
                match checked {
                    Ok(()) => {
                        if reported {
                            tracing::warn!("every heartbeat is fresh again; petting the watchdog");
                            starving(false);
                            reported = false;
                        }
                        if let Some(d) = &device
                            && let Err(e) = d.keepalive()
                        {
                            watch.petting.store(false, Ordering::Relaxed);
                            tracing::error!(error = %e, "WDIOC_KEEPALIVE failed");
                        }
                        if let Some(n) = notify.as_ref().filter(|n| n.watchdog.is_some()) {
                            n.send("WATCHDOG=1");
                        }
                    }
                    // Subsystems get `stale_after` to send their first beat before one is reported.
                    Err(s) if !reported && started.elapsed() > stale_after => {
                        tracing::error!(stale = ?s, "a subsystem stopped its heartbeat; not petting the watchdog");
                        starving(true);
                        reported = true;
                    }
                    Err(_) => {}
                }
                // Parked, not asleep: the stop unparks it, so a clean stop (a reboot, a power-off) does not wait
                // out a period. An early wake only checks (and pets) early.
                std::thread::park_timeout(period);
            }
            if let Some(d) = device {
                d.close_cleanly();
            }
        })
        .expect("watchdog thread");
    Petter { stop, thread }
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
        let never = hb.register("runtime canary");
        fresh.bump();
        // Without a device the thread still checks; the facts say there is nothing to pet.
        let (tx, starving) = std::sync::mpsc::channel();
        let pets = Pets { device: Err("no /dev/watchdog in tests".into()), notify: None };
        let t = spawn(pets, hb.clone(), Duration::from_secs(1), move |on| {
            let _ = tx.send(on);
        });
        let w = published().expect("spawn publishes its watch");
        std::thread::sleep(Duration::from_millis(100));
        let facts = w.facts(Instant::now());
        let get = |k: &str| facts.iter().find(|(l, _)| l == k).map(|(_, v)| v.clone()).unwrap_or_default();
        assert_eq!(get("Device"), "none: no /dev/watchdog in tests", "the page says why there is no device");
        assert_eq!(get("Timeout"), "1 s");
        assert_eq!(get("Petting"), "no device; a heartbeat is stale or never started", "{facts:?}");
        assert!(get("Heartbeat: listener").ends_with(" s ago") && !get("Heartbeat: listener").starts_with("stale"), "{facts:?}");
        assert_eq!(get("Heartbeat: runtime canary"), "never started");
        let labels = |f: Vec<(String, String)>| f.into_iter().map(|(l, _)| l).collect::<Vec<_>>();
        assert_eq!(labels(super::facts()), labels(facts.clone()), "the API reads the published watch");
        // After the grace of half the timeout the never-started beat is reported: the thread says it starves...
        assert_eq!(starving.recv_timeout(Duration::from_secs(3)), Ok(true));
        // ...and when every beat is fresh again (or off on purpose) it says so and pets again.
        hb.register("DLNA").rest();
        fresh.bump();
        never.bump();
        assert_eq!(starving.recv_timeout(Duration::from_secs(3)), Ok(false));
        assert_eq!(w.facts(Instant::now()).iter().find(|(l, _)| l == "Heartbeat: DLNA").map(|(_, v)| v.as_str()),
            Some("off (not checked)"));
        t.stop();
        // Half the timeout later the listener's beat is stale.
        let later = w.facts(Instant::now() + Duration::from_millis(1200));
        assert!(later.iter().any(|(l, v)| l == "Heartbeat: listener" && v.starts_with("stale")), "{later:?}");
    }

    /// sd_notify(3) over `from_vars` (no environment is changed: other tests of this binary read it).
    #[test]
    fn speaks_the_systemd_notify_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        systemd.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let n = Notify::from_vars(path.as_os_str(), Some("2000000")).expect("a usable socket path");
        assert_eq!(n.watchdog, Some(Duration::from_secs(2)));
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        // An abstract socket name ('@'), and no watchdog when WATCHDOG_USEC is absent, 0 or not a number.
        let name = format!("hearth-notify-test-{}", std::process::id());
        let abstract_addr = {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
        };
        let systemd = std::os::unix::net::UnixDatagram::bind_addr(&abstract_addr).unwrap();
        systemd.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for usec in [None, Some("0"), Some("soon")] {
            let n = Notify::from_vars(std::ffi::OsStr::new(&format!("@{name}")), usec).expect("an abstract name");
            assert_eq!(n.watchdog, None, "{usec:?}");
            n.send("WATCHDOG=1");
            let len = systemd.recv(&mut buf).unwrap();
            assert_eq!(&buf[..len], b"WATCHDOG=1");
        }
    }
}
