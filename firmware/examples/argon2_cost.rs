//! Measure Hearth's argon2id verify time and memory on this machine:
//! `cargo run -p hearth --example argon2_cost` (dependencies are built optimised in every profile).
//! Prints the median and p90 of 20 verifies, and the peak RSS growth of one hash (VmHWM from /proc).

use hearth::auth::secret;
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let before = vm_hwm_kib();
    let stored = secret::seal("correct horse battery");
    let after = vm_hwm_kib();
    let mut times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            assert!(secret::check("correct horse battery", &stored));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "argon2id m={} KiB t={} p={} out={} B: verify median {:.1} ms, p90 {:.1} ms; peak RSS growth of one hash {} KiB; \
         at most {} at once = {} MiB",
        secret::M_COST_KIB,
        secret::T_COST,
        secret::P_COST,
        secret::OUTPUT,
        times[10],
        times[18],
        after.saturating_sub(before),
        secret::HASHERS,
        secret::HASHERS as u32 * secret::M_COST_KIB / 1024
    );
}
