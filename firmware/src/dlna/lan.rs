//! The server's own IPv4 interfaces, for SSDP's multicast sockets. Which sources count as LAN is the auth
//! room's origin rule (`auth::origin`), the same for every port.

use crate::state::Net;
use std::net::{IpAddr, Ipv4Addr};

/// One IPv4 interface SSDP can use: its name, its address and its subnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// The interface's name (`eth0`).
    pub name: String,
    /// Its IPv4 address (the multicast socket joins on it).
    pub addr: Ipv4Addr,
    /// Its subnet (the address with the host bits cleared).
    pub net: Net,
}

/// Up, multicast-capable, non-loopback interfaces with an IPv4 address, sorted for stable comparisons.
pub fn interfaces() -> Vec<Iface> {
    let mut out = Vec::new();
    for a in crate::system::ifaces::addresses() {
        if !a.up || !a.multicast || a.loopback {
            continue;
        }
        let IpAddr::V4(ip) = a.addr else { continue };
        let prefix = a.prefix.unwrap_or(32);
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
        let net = Net { addr: IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask)), prefix };
        out.push(Iface { name: a.name, addr: ip, net });
    }
    out.sort_by(|a, b| (a.name.as_str(), a.addr).cmp(&(b.name.as_str(), b.addr)));
    out.dedup();
    out
}

/// [`interfaces`], or only the one with this address (the server listens on one address; loopback has none).
pub fn interfaces_in(scope: Option<Ipv4Addr>) -> Vec<Iface> {
    let mut all = interfaces();
    if let Some(a) = scope {
        all.retain(|i| i.addr == a);
    }
    all
}
