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

use crate::system::board::{BOARD_PATH, Board};
use crate::system::boot::{DEVICE_WAIT, finish, load_modules, memory_kib, milestone, mount_media, power_signals, reap_children, wait_for_path};
use crate::system::net::{self, Lease};
use crate::system::{PowerAction, PowerSwitch, watchdog};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// The address init mode serves on: every interface, both families (IPv4 only on a kernel without IPv6), the
/// usual port.
pub const LISTEN: &str = "[::]:32400";
/// The data folder in init mode (tmpfs: the state lives on the board's flash, not here).
pub const DATA_DIR: &str = "/run/hearth";
/// How long a fatal error stays on the console before the board restarts.
pub const FATAL_RESTART: Duration = Duration::from_secs(10);
/// How long one DHCP exchange may take before the static address is used.
pub const DHCP_TIMEOUT: Duration = Duration::from_secs(4);

/// Options from the kernel command line (`/proc/cmdline`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `hearth.log=LEVEL`: the log filter, as RUST_LOG.
    pub log: Option<String>,
    /// `hearth.format=1`: erase a flash area that holds something other than a Hearth store.
    pub format: bool,
    /// `hearth.board=PATH`: another board file than the image's.
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
    /// Read the `hearth.*` words of a kernel command line; other words and unknown options are ignored.
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

/// Why init mode could not boot (printed on the console before the restart).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    /// The board file is missing or wrong.
    Board(#[from] crate::system::board::BoardError),
    #[error("mounting {target}: {source}")]
    /// An API file system could not be mounted.
    Mount { target: &'static str, source: nix::Error },
    #[error("the flash store on {device}: {message}")]
    /// The flash store on the board's device could not be opened.
    Flash { device: String, message: String },
}

fn boot(board_override: Option<String>) -> Result<PowerAction, InitError> {
    crate::system::boot::mount_api_filesystems().map_err(|(target, source)| InitError::Mount { target, source })?;
    let opts = Options::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default());
    if let Some(level) = &opts.log {
        // SAFETY: still single-threaded; nothing else reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LOG", level) };
    }
    crate::system::logging::init_to(false);
    let board_path = opts.board.clone().or(board_override).unwrap_or_else(|| BOARD_PATH.to_string());
    let board = Board::load(Path::new(&board_path))?;
    tracing::info!(board = %board.name, version = crate::VERSION, "init mode");
    load_modules(&board);
    milestone("modules loaded");
    if let Err(e) = nix::unistd::sethostname(&board.hostname) {
        tracing::warn!(error = %e, "hostname not set");
    }
    bring_up_network(&board, !opts.no_dhcp);
    crate::system::cores::place(&board.network.interface);
    milestone("network up");

    let area = board.flash.clone();
    wait_for_path(&area.device);
    let opening = crate::serve::open_state(Path::new(&area.device), || crate::system::flash::open(&area), opts.format)
        .map_err(|e| InitError::Flash { device: area.device.clone(), message: e.to_string() })?;
    milestone("state loaded");
    crate::update::begin_on_board(&board);
    mount_media(&board);
    milestone("media mounted");
    if let Err(e) = crate::serve::data_folder::make_private(Path::new(DATA_DIR)) {
        tracing::error!(folder = DATA_DIR, error = %e, "the data folder could not be made");
    }

    let sup = supervision(&board, &opts);

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

/// The watchdog side of the run: the board's watchdog device, opened here (its boot status tells whether it
/// caused the last reset; serve runs the petting thread and the heartbeats), and the board's safe-mode rule.
fn supervision(board: &Board, opts: &Options) -> crate::serve::Supervision {
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
    crate::serve::Supervision {
        pets: watchdog::Pets { device, notify: None },
        timeout,
        card_reset,
        rule: crate::system::reset::Rule {
            watchdog_resets: board.safe_mode.watchdog_resets,
            within_minutes: board.safe_mode.within_minutes,
        },
        stall_after: opts.test_stall_after,
        panic_after: opts.test_panic_after,
        milestones: true,
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
