//! The server's own IPv4 interfaces, for SSDP's multicast sockets. Which sources count as LAN is the auth
//! room's origin rule (`auth::origin`), the same for every port.

use crate::state::Net;
use nix::net::if_::InterfaceFlags;
use std::net::{IpAddr, Ipv4Addr};

/// One of the server's IPv4 interfaces: SSDP sends announcements out of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    /// The interface name (`eth0`).
    pub name: String,
    /// Its IPv4 address: SSDP's LOCATION names it.
    pub addr: Ipv4Addr,
    /// Its network (address and prefix).
    pub net: Net,
}

/// Up, multicast-capable, non-loopback interfaces with an IPv4 address, sorted for stable comparisons.
pub fn interfaces() -> Vec<Iface> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out = Vec::new();
    for a in addrs {
        let f = a.flags;
        if !f.contains(InterfaceFlags::IFF_UP) || !f.contains(InterfaceFlags::IFF_MULTICAST) || f.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()).map(|s| s.ip()) else { continue };
        let prefix = a.netmask.as_ref().and_then(|s| s.as_sockaddr_in()).map(|m| u32::from(m.ip()).count_ones() as u8).unwrap_or(32);
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
        let net = Net { addr: IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask)), prefix };
        out.push(Iface { name: a.interface_name.clone(), addr: ip, net });
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
