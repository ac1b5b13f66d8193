//! The PID-1 duties of init mode that know no room above the system shelf: the API file systems, kernel
//! modules, the media disk, reaping orphans, the init signals, boot milestones on the console and the final
//! reboot(2). The init sequence that calls them (and then serves) is `crate::init` at the top.

use super::board::Board;
use super::{PowerAction, PowerSwitch};
use nix::mount::{MsFlags, mount};
use std::ffi::CString;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// Where the image keeps the kernel modules a board file names (`NAME.ko`).
pub const MODULE_DIR: &str = "/lib/modules";
/// How long a driver may take to create its network interface or block device after its module loads.
pub const DEVICE_WAIT: Duration = Duration::from_secs(5);

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

/// Mount proc, sys, devtmpfs, tmp and run (already mounted is fine). The error names the mount point.
pub fn mount_api_filesystems() -> Result<(), (&'static str, nix::Error)> {
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
            Err(source) => return Err((target, source)),
        }
    }
    Ok(())
}

/// finit_module(2) each of the board's modules in order. A module that fails is logged and skipped: the
/// board may still serve (a missing watchdog or media driver is not worth a boot loop).
pub fn load_modules(board: &Board) {
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

/// Wait up to [`DEVICE_WAIT`] for a device node (or any path) to appear.
pub fn wait_for_path(path: &str) {
    let deadline = std::time::Instant::now() + DEVICE_WAIT;
    while !Path::new(path).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Mount the board's media disk read-write without exec, suid or device files; a failure is logged (the
/// server still serves its settings).
pub fn mount_media(board: &Board) {
    let m = &board.media;
    wait_for_path(&m.device);
    let _ = std::fs::create_dir_all(&m.mount);
    let flags = MsFlags::MS_NOATIME | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match mount(Some(m.device.as_str()), m.mount.as_str(), Some(m.fs.as_str()), flags, None::<&str>) {
        Ok(()) => tracing::info!(device = %m.device, at = %m.mount, fs = %m.fs, "media disk mounted"),
        Err(e) => tracing::error!(device = %m.device, fs = %m.fs, error = %e, "media disk not mounted"),
    }
}

/// The init signals as power requests: SIGTERM and SIGINT reboot, SIGUSR1 halts, SIGUSR2 powers off.
pub async fn power_signals(switch: PowerSwitch) {
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
pub async fn reap_children() {
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
pub fn finish(action: PowerAction) -> ExitCode {
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
