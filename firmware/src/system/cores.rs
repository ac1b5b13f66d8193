//! Which core does what on a board with more than one (init mode only): the LAN interface's interrupts go to
//! the first core, and the connection workers ([`super::workers`], one per core) are pinned one per core with
//! that core last, so the first connections (a worker is picked by fewest open connections, ties to the first)
//! send from a core that does not also take the interrupts. This is nginx's `worker_cpu_affinity auto` with
//! the interrupts steered as irqbalance would for one busy NIC. A Hearth started as a process among others
//! (`hearth serve`) leaves the scheduler alone, as nginx does by default. On one core nothing is done.
//!
//! Why: a stream's cost is kernel work in two places. The sending call (sendfile(2): TCP transmit and, with
//! kernel TLS, the encryption of every record) runs on the worker's core; the NIC's receive and transmit-done
//! interrupts and their softirq (ACK processing, freeing sent buffers) run on the core the interrupt is
//! delivered to. Measured with `scripts/bench --https-guest --guest-only --cpus 2` (2026-12-05, aarch64 board
//! image on two vCPUs): left to the scheduler, kernel TLS ran at 40-42 or 26-29 MiB/s round by round (0.84x
//! or ~0.6x of plain HTTP), by where the worker landed against the interrupts; placed, 31-39 MiB/s in every
//! round of five runs, the worker's core busy with the encryption and the interrupts' core with the rest.
//!
//! The kernel's interface: `/proc/interrupts` (one line per IRQ, its action names last: a virtio-net device
//! names its vectors `virtio0-input.0`, `virtio0-output.0`, `virtio0-config`; most Ethernet drivers use the
//! interface name, `eth0`), `/proc/irq/N/smp_affinity_list` and `effective_affinity_list`
//! (Documentation/core-api/irq/irq-affinity.rst), sched_setaffinity(2) for a thread. A moved interrupt the
//! kernel refuses (a per-CPU or managed one) is logged and left where it is.

use std::sync::OnceLock;

/// What init mode did with the cores: set once, before the workers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The core that takes the LAN interface's interrupts.
    pub interrupts_core: usize,
    /// The interrupts moved there.
    pub irqs: Vec<u32>,
    /// The core of each connection worker, worker 0 first.
    pub workers: Vec<usize>,
}

static PLACEMENT: OnceLock<Placement> = OnceLock::new();

/// The IRQ numbers in `/proc/interrupts` with an action that is one of `names` or a vector of one (`name-…`).
/// The line's columns after the number (counts per core, chip, hardware IRQ, trigger, then the actions,
/// comma-separated) are read as words: none of the others can equal an interface or device name.
pub fn interrupts_of(proc_interrupts: &str, names: &[&str]) -> Vec<u32> {
    proc_interrupts
        .lines()
        .filter_map(|line| {
            let (irq, rest) = line.trim_start().split_once(':')?;
            let irq: u32 = irq.parse().ok()?;
            rest.split(|c: char| c.is_whitespace() || c == ',')
                .any(|a| names.iter().any(|n| a == *n || a.strip_prefix(n).is_some_and(|v| v.starts_with('-'))))
                .then_some(irq)
        })
        .collect()
}

/// The order the workers take the cores `allowed`: the interrupts' core (if one of them) last.
pub fn worker_cores(allowed: &[usize], interrupts: usize) -> Vec<usize> {
    let mut cores: Vec<usize> = allowed.iter().copied().filter(|c| *c != interrupts).collect();
    cores.extend(allowed.iter().copied().filter(|c| *c == interrupts));
    cores
}

/// The cores this process may run on (its main thread's set: a pinned worker's own is one core), in order;
/// empty when the kernel does not say.
pub fn allowed() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::this()) {
        Ok(set) => (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Init mode, once the LAN interface is up: route its interrupts to the first core this process may run on and
/// place the connection workers (started later, on first use) one per core with that core last. Nothing is done
/// on one core. What the interrupts' names are, see the module doc.
pub fn place(interface: &str) {
    let allowed = allowed();
    let Some(&core) = allowed.first() else { return };
    if allowed.len() < 2 {
        return;
    }
    let mut names = vec![interface.to_string()];
    // A virtio-net interface's vectors carry its virtio device's name (the `device` link's last part).
    if let Ok(dev) = std::fs::read_link(format!("/sys/class/net/{interface}/device"))
        && let Some(n) = dev.file_name().and_then(|n| n.to_str())
    {
        names.push(n.to_string());
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let table = std::fs::read_to_string("/proc/interrupts").unwrap_or_default();
    let mut irqs = Vec::new();
    for irq in interrupts_of(&table, &names) {
        match std::fs::write(format!("/proc/irq/{irq}/smp_affinity_list"), format!("{core}\n")) {
            Ok(()) => irqs.push(irq),
            Err(e) => tracing::warn!(irq, error = %e, "an interrupt of the LAN interface could not be moved"),
        }
    }
    let workers = worker_cores(&allowed, core);
    tracing::info!(interface, core, irqs = ?irqs, workers = ?workers, "network interrupts and connection workers placed");
    let _ = PLACEMENT.set(Placement { interrupts_core: core, irqs, workers });
}

/// The core of connection worker `i`, when init mode placed them.
pub fn worker_core(i: usize) -> Option<usize> {
    PLACEMENT.get()?.workers.get(i).copied()
}

/// Pin the calling thread (a connection worker) to `core` (sched_setaffinity(2)).
pub fn pin_current(core: usize) {
    let mut set = nix::sched::CpuSet::new();
    if let Err(e) = set.set(core).and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)) {
        tracing::warn!(core, error = %e, "a connection worker could not be pinned");
    }
}

/// For the System facts: the cores this process may use, and the placement with the core each moved
/// interrupt is really delivered to now (`/proc/irq/N/effective_affinity_list`; the kernel may refuse or
/// move one), or `null` where the scheduler places everything.
pub fn facts() -> serde_json::Value {
    let placement = PLACEMENT.get().map(|p| {
        let effective: Vec<serde_json::Value> = p
            .irqs
            .iter()
            .map(|irq| {
                let on = std::fs::read_to_string(format!("/proc/irq/{irq}/effective_affinity_list")).ok();
                serde_json::json!({ "irq": irq, "effective": on.map(|s| s.trim().to_string()) })
            })
            .collect();
        serde_json::json!({ "interrupts_core": p.interrupts_core, "interrupts": effective, "workers": p.workers })
    });
    serde_json::json!({ "count": allowed().len(), "placement": placement })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRT: &str = "           CPU0       CPU1       
 11:      27155      30012     GICv3  27 Level     arch_timer
 13:          0          0     GICv3  33 Level     uart-pl011
 46:          0          0   ITS-MSI 16384 Edge      virtio0-config
 47:       2201          0   ITS-MSI 16385 Edge      virtio0-input.0
 48:        904          0   ITS-MSI 16386 Edge      virtio0-output.0
 49:          0          0   ITS-MSI 32768 Edge      virtio1-config
 50:        129          0   ITS-MSI 32769 Edge      virtio1-req.0
 60:         10          0     GICv3  79 Level     eth0, eth0-wol
IPI0:       100        200       Rescheduling interrupts
";

    #[test]
    fn the_lan_interfaces_vectors_are_found_and_no_other_devices() {
        assert_eq!(interrupts_of(VIRT, &["eth0", "virtio0"]), vec![46, 47, 48, 60]);
        assert_eq!(interrupts_of(VIRT, &["virtio1"]), vec![49, 50]);
        assert!(interrupts_of(VIRT, &["virtio"]).is_empty(), "a name's prefix is not the name");
        assert!(interrupts_of(VIRT, &["wlan0"]).is_empty());
    }

    #[test]
    fn workers_take_the_interrupts_core_last() {
        assert_eq!(worker_cores(&[0, 1, 2, 3], 0), vec![1, 2, 3, 0]);
        assert_eq!(worker_cores(&[0, 1], 1), vec![0, 1]);
        assert_eq!(worker_cores(&[2, 3], 0), vec![2, 3]);
        assert_eq!(worker_cores(&[0], 0), vec![0]);
    }
}
