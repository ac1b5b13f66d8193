//! Init mode: Hearth as PID 1 on a board.
//!
//! Order (DESIGN.md "Firmware image"): mount proc, sys, devtmpfs, tmp, run → read the kernel command line →
//! read the board file → load the board's modules (finit_module) → hostname → lo and the LAN interface
//! (DHCP, static fallback) → open the flash store on the board's device → mount the media disk → serve →
//! on a power request (API, or the init signals below) stop cleanly, flush the store, unmount, sync, reboot(2).
//!
//! Signals, as busybox init and systemd read them: SIGTERM and SIGINT (ctrl-alt-del) → reboot,
//! SIGUSR1 → halt, SIGUSR2 → power off. SIGCHLD → reap. PID 1 must never exit: a fatal error is printed on
//! the console and the board restarts after [`FATAL_RESTART`].
//!
//! Kernel command line: `hearth.log=LEVEL` (or `target=level,...`, as RUST_LOG), `hearth.format=1` (erase a
//! flash area that holds something other than a Hearth store), `hearth.board=PATH` (another board file),
//! `hearth.dhcp=0` (skip DHCP, use the board's static address).
//! Milestones are printed as `hearth-init [  1.234] what` with the kernel's uptime (CLOCK_BOOTTIME), so boot
//! times can be read off the serial console.

use super::board::{BOARD_PATH, Board};
use super::net::{self, Lease};
use super::{PowerAction, PowerSwitch, watchdog};
use nix::mount::{MsFlags, mount};
use std::ffi::CString;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub const LISTEN: &str = "0.0.0.0:32400";
pub const DATA_DIR: &str = "/run/hearth";
pub const MODULE_DIR: &str = "/lib/modules";
pub const FATAL_RESTART: Duration = Duration::from_secs(10);
/// How long a driver may take to create its network interface or block device after its module loads.
pub const DEVICE_WAIT: Duration = Duration::from_secs(5);
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(4);

/// Options from the kernel command line (`/proc/cmdline`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub log: Option<String>,
    pub format: bool,
    pub board: Option<String>,
    /// `hearth.dhcp=0`: skip DHCP and use the board's static address (for networks without a DHCP server,
    /// and to test the fallback).
    pub no_dhcp: bool,
    /// Test images only (feature `test-hooks`): stop the runtime canary heartbeat this many seconds after
    /// serving starts, to prove the watchdog resets the board.
    pub test_stall_after: Option<u64>,
    /// Test images only: panic this many seconds after serving starts, to prove the crash marker.
    pub test_panic_after: Option<u64>,
}

impl Options {
    pub fn parse(cmdline: &str) -> Options {
        let mut o = Options::default();
        for word in cmdline.split_ascii_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match k {
                "hearth.log" => o.log = Some(v.to_string()),
                "hearth.format" => o.format = matches!(v, "" | "1" | "yes" | "true"),
                "hearth.board" => o.board = Some(v.to_string()),
                "hearth.dhcp" => o.no_dhcp = matches!(v, "0" | "no" | "false" | "off"),
                "hearth.test.stall_after" => o.test_stall_after = v.parse().ok(),
                "hearth.test.panic_after" => o.test_panic_after = v.parse().ok(),
                _ => {}
            }
        }
        o
    }
}

/// Seconds since the kernel started (CLOCK_BOOTTIME).
pub fn uptime() -> f64 {
    let mut ts = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// A boot milestone on the console, with the kernel's uptime.
pub fn milestone(what: &str) {
    println!("hearth-init [{:>8.3}] {what}", uptime());
}

/// `VmRSS` and `VmHWM` of this process in KiB.
pub fn memory_kib() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        s.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Entry of init mode. Returns only when not running as PID 1 (an error for the caller to print).
pub fn run(board_override: Option<String>) -> ExitCode {
    if std::process::id() != 1 {
        eprintln!(
            "hearth: init mode runs as PID 1 on a board (it mounts file systems and reboots the machine).\n\
             On a host, run `hearth serve`; to check a board file, run `hearth init --check-board FILE`."
        );
        return ExitCode::from(2);
    }
    milestone("init started");
    let action = match boot(board_override) {
        Ok(action) => action,
        Err(e) => {
            println!("hearth-init: FATAL: {e}");
            eprintln!("hearth: {e}");
            println!("hearth-init: restarting in {} s", FATAL_RESTART.as_secs());
            std::thread::sleep(FATAL_RESTART);
            PowerAction::Reboot
        }
    };
    finish(action)
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    Board(#[from] super::board::BoardError),
    #[error("mounting {target}: {source}")]
    Mount { target: &'static str, source: nix::Error },
    #[error("the flash store on {device}: {message}")]
    Flash { device: String, message: String },
}

fn boot(board_override: Option<String>) -> Result<PowerAction, InitError> {
    mount_api_filesystems()?;
    let opts = Options::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    if let Some(level) = &opts.log {
        // SAFETY: still single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LOG", level) };
    }
    crate::serve::init_logging_to(false);
    let board_path = opts.board.clone().or(board_override).unwrap_or_else(|| BOARD_PATH.to_string());
    let board = Board::load(Path::new(&board_path))?;
    tracing::info!(board = %board.name, version = crate::VERSION, "init mode");
    load_modules(&board);
    milestone("modules loaded");
    if let Err(e) = nix::unistd::sethostname(&board.hostname) {
        tracing::warn!(error = %e, "hostname not set");
    }
    bring_up_network(&board, !opts.no_dhcp);
    milestone("network up");

    let area = board.flash.clone();
    wait_for_path(&area.device);
    let opening = crate::serve::open_state(Path::new(&area.device), || super::flash::open(&area), opts.format)
        .map_err(|e| InitError::Flash { device: area.device.clone(), message: e.to_string() })?;
    milestone("state loaded");
    crate::update::begin_on_board(&board);
    mount_media(&board);
    milestone("media mounted");
    if let Err(e) = crate::serve::data_folder::make_private(Path::new(DATA_DIR)) {
        tracing::error!(folder = DATA_DIR, error = %e, "the data folder could not be made");
    }

    // The watchdog: opened here (its boot status tells whether it caused the last reset); serve runs the
    // petting thread and the heartbeats.
    let device = watchdog::Device::open(&board.watchdog.device, board.watchdog.timeout_secs)
        .inspect(|d| {
            tracing::info!(device = %board.watchdog.device, asked = board.watchdog.timeout_secs,
                timeout_secs = d.timeout_secs, boot_status = d.boot_status, "watchdog armed");
        })
        .map_err(|e| {
            tracing::error!(device = %board.watchdog.device, error = %e,
                "watchdog device missing or refused the timeout; running without a watchdog");
            format!("{} could not be used: {e}", board.watchdog.device)
        });
    let card_reset = device.as_ref().is_ok_and(|d| d.boot_status & watchdog::WDIOF_CARDRESET != 0);
    let timeout = Duration::from_secs(u64::from(device.as_ref().map_or(board.watchdog.timeout_secs, |d| d.timeout_secs)));
    let sup = crate::serve::Supervision {
        pets: watchdog::Pets { device, notify: None },
        timeout,
        card_reset,
        rule: super::reset::Rule {
            watchdog_resets: board.safe_mode.watchdog_resets,
            within_minutes: board.safe_mode.within_minutes,
        },
        stall_after: opts.test_stall_after,
        panic_after: opts.test_panic_after,
        milestones: true,
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let (switch, mut requests) = PowerSwitch::new();
    let listen: SocketAddr = LISTEN.parse().expect("listen address");
    let signals = switch.clone();
    let code = rt.block_on(async move {
        tokio::spawn(reap_children());
        tokio::spawn(power_signals(signals));
        tokio::spawn(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if let Some((rss, hwm)) = memory_kib() {
                tracing::info!(rss_kib = rss, hwm_kib = hwm, "memory after start");
            }
        });
        let stop = async {
            let _ = requests.wait_for(Option::is_some).await;
        };
        let code = crate::serve::serve_until(listen, DATA_DIR.into(), opening, Some(switch), Default::default(), sup, stop).await;
        (code, *requests.borrow())
    });
    let (code, action) = code;
    rt.shutdown_timeout(Duration::from_secs(2));
    if code != ExitCode::SUCCESS {
        println!("hearth-init: serving failed; restarting in {} s", FATAL_RESTART.as_secs());
        std::thread::sleep(FATAL_RESTART);
    }
    if let Some((rss, hwm)) = memory_kib() {
        println!("hearth-init: memory at stop: VmRSS {rss} KiB, VmHWM {hwm} KiB");
    }
    Ok(action.unwrap_or(PowerAction::Reboot))
}

fn mount_api_filesystems() -> Result<(), InitError> {
    let none: Option<&str> = None;
    let table: [(&'static str, &str, &str, MsFlags, Option<&str>); 5] = [
        ("/proc", "proc", "proc", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None),
        ("/sys", "sysfs", "sysfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC, None),
        ("/dev", "devtmpfs", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
        ("/tmp", "tmpfs", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777")),
        ("/run", "tmpfs", "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755")),
    ];
    for (target, source, fstype, flags, data) in table {
        let _ = std::fs::create_dir_all(target);
        match mount(Some(source), target, Some(fstype), flags, data.or(none)) {
            Ok(()) | Err(nix::Error::EBUSY) => {}
            Err(source) => return Err(InitError::Mount { target, source }),
        }
    }
    Ok(())
}

/// finit_module(2) each of the board's modules in order. A module that fails is logged and skipped: the
/// board may still serve (a missing watchdog or media driver is not worth a boot loop).
fn load_modules(board: &Board) {
    use nix::kmod::{ModuleInitFlags, finit_module};
    for m in &board.modules {
        let path = format!("{MODULE_DIR}/{}.ko", m.name);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(board = %board.name, module = %m.name, path, error = %e, "kernel module file missing");
                continue;
            }
        };
        let params = CString::new(m.params.as_str()).unwrap_or_default();
        match finit_module(&file, &params, ModuleInitFlags::empty()) {
            Ok(()) => tracing::debug!(module = %m.name, params = %m.params, "module loaded"),
            Err(nix::Error::EEXIST) => tracing::debug!(module = %m.name, "module already present"),
            Err(e) => tracing::error!(module = %m.name, error = %e, "module refused by the kernel"),
        }
    }
}

fn bring_up_network(board: &Board, dhcp: bool) {
    if let Err(e) = net::up("lo") {
        tracing::error!(error = %e, "loopback not up");
    }
    let n = &board.network;
    let ifname = n.interface.as_str();
    if let Err(e) = net::wait_for(ifname, DEVICE_WAIT).and_then(|()| net::up(ifname)) {
        tracing::error!(error = %e, "LAN interface not up; serving on loopback only");
        return;
    }
    let (address, prefix) = n.static_net().expect("checked when the board file was read");
    let fallback = Lease { address, prefix, gateway: n.static_gateway, lease_secs: None, server: None };
    let lease = if n.dhcp && dhcp {
        let dhcp = net::mac_of(ifname)
            .map_err(|e| net::NetError::Io { what: "reading the MAC address", interface: ifname.into(), source: e })
            .and_then(|mac| net::acquire(ifname, mac, &board.hostname, DHCP_TIMEOUT).map(|l| (l, mac)));
        match dhcp {
            Ok((lease, mac)) => {
                tracing::info!(interface = ifname, address = %lease.address, prefix = lease.prefix,
                    gateway = ?lease.gateway, lease_secs = ?lease.lease_secs, "DHCP lease");
                if let Some(secs) = lease.lease_secs {
                    renew_in_background(ifname.to_string(), mac, board.hostname.clone(), secs);
                }
                lease
            }
            Err(e) => {
                tracing::warn!(error = %e, address = %fallback.address, "no DHCP lease; using the board's static address");
                fallback
            }
        }
    } else {
        tracing::info!(address = %fallback.address, prefix = fallback.prefix, gateway = ?fallback.gateway,
            "DHCP off; using the board's static address");
        fallback
    };
    match net::configure(ifname, &lease) {
        Ok(()) => tracing::info!(interface = ifname, address = %lease.address, prefix = lease.prefix,
            default_route = ?lease.gateway, "LAN configured"),
        Err(e) => tracing::error!(error = %e, "LAN address not set"),
    }
}

/// Renew at half the lease time (RFC 2131 §4.4.5, T1), by running the exchange again.
fn renew_in_background(interface: String, mac: [u8; 6], hostname: String, secs: u32) {
    std::thread::spawn(move || {
        let mut secs = secs;
        loop {
            std::thread::sleep(Duration::from_secs(u64::from(secs / 2).max(30)));
            match net::acquire(&interface, mac, &hostname, DHCP_TIMEOUT) {
                Ok(lease) => {
                    tracing::info!(address = %lease.address, "DHCP lease renewed");
                    if let Err(e) = net::configure(&interface, &lease) {
                        tracing::error!(error = %e, "renewed address not set");
                    }
                    secs = lease.lease_secs.unwrap_or(secs);
                }
                Err(e) => tracing::warn!(error = %e, "DHCP renewal got no answer; keeping the address"),
            }
        }
    });
}

fn wait_for_path(path: &str) {
    let deadline = std::time::Instant::now() + DEVICE_WAIT;
    while !Path::new(path).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mount_media(board: &Board) {
    let m = &board.media;
    wait_for_path(&m.device);
    let _ = std::fs::create_dir_all(&m.mount);
    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some(m.device.as_str()), m.mount.as_str(), Some(m.fs.as_str()), flags, None::<&str>) {
        Ok(()) => tracing::info!(device = %m.device, at = %m.mount, fs = %m.fs, "media disk mounted"),
        Err(e) => tracing::error!(device = %m.device, fs = %m.fs, error = %e, "media disk not mounted"),
    }
}

async fn power_signals(switch: PowerSwitch) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("signal handlers not installed");
        return;
    };
    let action = tokio::select! {
        _ = term.recv() => PowerAction::Reboot,
        _ = int.recv() => PowerAction::Reboot,
        _ = usr1.recv() => PowerAction::Halt,
        _ = usr2.recv() => PowerAction::Poweroff,
    };
    tracing::info!(?action, "power request by signal");
    switch.request(action);
}

/// PID 1 adopts orphans; wait for them so they do not stay zombies.
async fn reap_children() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let Ok(mut chld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) else { return };
    while chld.recv().await.is_some() {
        while let Ok(st) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if st == WaitStatus::StillAlive {
                break;
            }
            tracing::debug!(status = ?st, "reaped");
        }
    }
}

/// The state is already flushed by serve; unmount the media disk, sync, and hand over to the kernel.
fn finish(action: PowerAction) -> ExitCode {
    use nix::sys::reboot::{RebootMode, reboot};
    let _ = nix::mount::umount2("/media", nix::mount::MntFlags::empty());
    nix::unistd::sync();
    milestone(&format!("stopped cleanly; {action:?}").to_lowercase());
    let mode = match action {
        PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
        PowerAction::Poweroff => RebootMode::RB_POWER_OFF,
        PowerAction::Halt => RebootMode::RB_HALT_SYSTEM,
    };
    let e = reboot(mode).unwrap_err();
    eprintln!("hearth: reboot(2) failed: {e}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hearth_options_from_the_kernel_command_line() {
        let o = Options::parse("console=ttyAMA0 panic=5 hearth.log=debug hearth.format=1 quiet\n");
        assert_eq!(o, Options { log: Some("debug".into()), format: true, ..Options::default() });
        assert_eq!(Options::parse("console=ttyAMA0"), Options::default());
        assert_eq!(Options::parse("hearth.board=/etc/other.toml").board.as_deref(), Some("/etc/other.toml"));
        assert!(Options::parse("hearth.dhcp=0").no_dhcp);
        assert!(!Options::parse("hearth.dhcp=1").no_dhcp);
    }

    #[test]
    fn reads_its_own_memory() {
        let (rss, hwm) = memory_kib().unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
