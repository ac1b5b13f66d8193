//! The init-mode DHCP client (`system::net`) on its own, for tests/dhcp/run: bring INTERFACE up, run the
//! DISCOVER/REQUEST exchange, print the lease, and with `--configure` give the interface its address and default
//! route as init does. Exits 1 with the client's error (e.g. "no DHCP answer on eth1") when no lease comes.
//!
//! `cargo run -p hearth --example dhcp_client -- INTERFACE HOSTNAME TIMEOUT_MS [--configure]` (root: UDP 68,
//! SO_BINDTODEVICE and the interface ioctls)

use hearth::system::net;
use std::time::Duration;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ifname, hostname, ms, configure) = match args.as_slice() {
        [i, h, t] => (i, h, t, false),
        [i, h, t, c] if c == "--configure" => (i, h, t, true),
        _ => return Err("usage: dhcp_client INTERFACE HOSTNAME TIMEOUT_MS [--configure]".into()),
    };
    let ms: u64 = ms.parse().map_err(|_| format!("TIMEOUT_MS is a number of milliseconds, not {ms:?}"))?;
    net::up(ifname).map_err(|e| e.to_string())?;
    let mac = net::mac_of(ifname).map_err(|e| format!("MAC of {ifname}: {e}"))?;
    let lease = net::acquire(ifname, mac, hostname, Duration::from_millis(ms)).map_err(|e| e.to_string())?;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!(
        "address={} prefix={} gateway={} lease_secs={} server={}",
        lease.address,
        lease.prefix,
        opt(lease.gateway.map(|g| g.to_string())),
        opt(lease.lease_secs.map(|s| s.to_string())),
        opt(lease.server.map(|s| s.to_string())),
    );
    if configure {
        net::configure(ifname, &lease).map_err(|e| e.to_string())?;
    }
    Ok(())
}
