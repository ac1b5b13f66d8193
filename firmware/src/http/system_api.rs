//! `GET /api/v1/system` (Owner): what the setup page's System screen shows — version, uptime, flash store
//! health, the last reset reasons and safe mode; `DELETE /api/v1/system/safe-mode` (Owner) clears safe mode.
//!
//! Owns: the JSON shape of that answer. Reads only what exists: `Ctx::started`, `Handle::store_stats()` (its
//! `erases_per_block` is derived from the slot generation, so it survives restarts), `Handle::wear()` (the
//! writer's wear budget and the changes it merged while pacing), `Ctx::recovered_from_damage`, `State::resets`, `State::safe_mode`; `watchdog` from the system room's
//! published watch (`system::watchdog::facts`: label → value, shown as facts; on a host it says no watchdog
//! runs), `log` from the recent log (`system::journal::RECENT`, oldest first, newest last), `egress` from the
//! stream room's counters (`Streams::egress`: cumulative body bytes per bandwidth class since start), `memory`
//! from `/proc/self/status` (`system::boot::memory_kib`: resident now and at peak, null where unreadable),
//! `cpu_seconds` from `/proc/self/stat`, `tls` from `http::ktls::facts` (which path HTTPS sessions take).
//! Must not touch: the state (read-only snapshot).

use super::routes::Call;
use super::{Body, json};
use crate::system::reset::name as reason_name;
use crate::stream::pace::Class;
use hyper::Response;
use serde_json::json;

/// `GET /api/v1/system`.
pub async fn system(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let st = call.ctx.state.store_stats();
    let (budget, merged) = call.ctx.state.wear();
    // Newest first, as the page lists them.
    let resets: Vec<_> =
        s.resets.iter().rev().map(|r| json!({ "reason": reason_name(r.reason), "at": r.at })).collect();
    let watchdog: serde_json::Map<String, serde_json::Value> =
        crate::system::watchdog::facts().into_iter().map(|(k, v)| (k, v.into())).collect();
    let egress = &call.ctx.streams.egress;
    let memory = crate::system::boot::memory_kib();
    let mut tls = super::ktls::facts().await;
    tls["suites"] = super::tls::suite_facts();
    json(&json!({
        "version": crate::VERSION,
        "uptime_seconds": call.ctx.started.elapsed().as_secs(),
        "recovered_from_damage": call.ctx.recovered_from_damage,
        "safe_mode": { "active": s.safe_mode.active, "since": s.safe_mode.since },
        "resets": resets,
        "store": {
            "seq": st.seq,
            "active_slot": st.active_slot,
            "generation": st.generation,
            "records_written": st.records_written,
            "bytes_written": st.bytes_written,
            "erases": st.erases,
            "slot_switches": st.slot_switches,
            "skipped_at_open": st.skipped_at_open,
            "slot_bytes": st.slot_bytes,
            "erases_per_block": st.erases_per_block(),
            "merged_updates": merged,
            "write_budget": {
                "burst_bytes": budget.burst_bytes,
                "bytes_per_hour": budget.bytes_per_hour,
                "erases_per_block_per_hour": budget.erases_per_block_per_hour(st.slot_bytes),
            },
        },
        "watchdog": watchdog,
        "log": crate::system::journal::RECENT.lines(),
        "memory": {
            "rss_kib": memory.map(|m| m.0),
            "peak_rss_kib": memory.map(|m| m.1),
        },
        "cpu_seconds": cpu_seconds(),
        "machine_cpu_seconds": machine_cpu_seconds(),
        "cores": crate::system::cores::facts(),
        "update": crate::update::status(),
        "tls": tls,
        "egress": {
            "lan_bytes": egress.bytes(Class::Lan),
            "remote_stream_bytes": egress.bytes(Class::RemoteStream),
            "remote_download_bytes": egress.bytes(Class::RemoteDownload),
        },
    }))
}

/// CPU time this process used since start (user + system, `/proc/self/stat` fields 14 and 15, proc(5)); kernel
/// TLS encrypts in the sending syscall, so it counts here too. `scripts/bench --https-guest` reads it from the
/// guest. None where unreadable.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name's closing parenthesis: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    seconds(ticks)
}

/// Clock ticks (`/proc` times, proc(5)) in seconds; None where the tick rate is unknown.
fn seconds(ticks: u64) -> Option<f64> {
    // SAFETY: sysconf(3) reads a constant of the C library; no pointers.
    let hz = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks as f64 / hz as f64)
}

/// CPU time the whole machine was busy since boot, all CPUs: the first line of `/proc/stat` (proc(5)), user +
/// nice + system + irq + softirq + steal, in clock ticks. Unlike [`cpu_seconds`] it includes the TCP transmit
/// work the kernel does in softirq context for a plain sendfile stream (charged to no process), so a stream's
/// whole cost shows here. None where unreadable.
fn machine_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    seconds(machine_busy_ticks(stat.lines().next()?)?)
}

/// The busy ticks of `/proc/stat`'s `cpu` line: `cpu user nice system idle iowait irq softirq steal ...`.
fn machine_busy_ticks(line: &str) -> Option<u64> {
    let mut f = line.strip_prefix("cpu ")?.split_whitespace().map(|v| v.parse::<u64>().ok());
    let mut next = || f.next().flatten();
    let (user, nice, system, _idle, _iowait) = (next()?, next()?, next()?, next()?, next()?);
    let (irq, softirq, steal) = (next()?, next()?, next().unwrap_or(0));
    Some(user + nice + system + irq + softirq + steal)
}

/// `DELETE /api/v1/system/safe-mode`: the owner has read why the box entered safe mode and turns remote access
/// and DLNA back on (each as its own switch says). Answers the new safe-mode object; clearing when it is off
/// is not an error (nothing changes).
pub async fn clear_safe_mode(call: Call) -> Response<Body> {
    let was = call.ctx.state.snapshot().safe_mode.active;
    let cleared = call.ctx.state.update(|s| {
        crate::system::reset::clear_safe_mode(s);
        Ok::<_, core::convert::Infallible>(())
    });
    super::refused::reply(async {
        cleared.await?;
        if was {
            tracing::info!("safe mode cleared by the owner");
        }
        Ok(json(&json!({ "safe_mode": { "active": false, "since": 0 }, "was_active": was })))
    }
    .await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let line = "cpu  10 2 30 1000 50 4 6 1 0 0";
        assert_eq!(super::machine_busy_ticks(line), Some(10 + 2 + 30 + 4 + 6 + 1));
        assert_eq!(super::machine_busy_ticks("cpu0 1 2 3 4 5 6 7"), None);
        assert_eq!(super::machine_busy_ticks("cpu  1 x 3"), None);
    }
}
