//! The box's interface addresses, read in one place (getifaddrs(3)): the auth room's own subnets, SSDP's
//! multicast interfaces, the certificate's addresses, the remote room's mapping address and the setup URL all
//! filter this one list.

use nix::net::if_::InterfaceFlags;
use std::net::{IpAddr, Ipv4Addr};

/// One address of one interface, with the flags its filters ask about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// The interface's name (`eth0`).
    pub name: String,
    /// IFF_UP: the interface is up.
    pub up: bool,
    /// IFF_MULTICAST: the interface can send multicast (SSDP).
    pub multicast: bool,
    /// IFF_LOOPBACK: the interface is a loopback.
    pub loopback: bool,
    /// The address (IPv4 or IPv6).
    pub addr: IpAddr,
    /// The netmask's prefix length, when the kernel gives a netmask of the address's family.
    pub prefix: Option<u8>,
}

/// Every IPv4 and IPv6 address of every interface, in the kernel's order; empty when getifaddrs fails.
pub fn addresses() -> Vec<IfAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out = Vec::new();
    for a in addrs {
        let Some(s) = a.address.as_ref() else { continue };
        let (addr, prefix) = if let Some(v4) = s.as_sockaddr_in() {
            let m = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in()).map(|m| m.ip().to_bits().count_ones() as u8);
            (IpAddr::V4(v4.ip()), m)
        } else if let Some(v6) = s.as_sockaddr_in6() {
            let m = a.netmask.as_ref().and_then(|m| m.as_sockaddr_in6()).map(|m| u128::from(m.ip()).count_ones() as u8);
            (IpAddr::V6(v6.ip()), m)
        } else {
            continue;
        };
        let f = a.flags;
        out.push(IfAddr {
            name: a.interface_name.clone(),
            up: f.contains(InterfaceFlags::IFF_UP),
            multicast: f.contains(InterfaceFlags::IFF_MULTICAST),
            loopback: f.contains(InterfaceFlags::IFF_LOOPBACK),
            addr,
            prefix,
        });
    }
    out
}

/// The first non-loopback IPv4 address of an interface that is up (the address the setup URL names).
pub fn lan_address() -> Option<IpAddr> {
    addresses().into_iter().find(|a| a.up && a.addr.is_ipv4() && !a.addr.is_loopback()).map(|a| a.addr)
}

/// The first IPv4 address of `interface`.
pub fn ipv4_of(interface: &str) -> Option<Ipv4Addr> {
    addresses().into_iter().filter(|a| a.name == interface).find_map(|a| match a.addr {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    })
}

/// Whether `v6` can be reached from the internet by its scope: not loopback, unspecified, multicast,
/// link-local (fe80::/10), unique-local (fc00::/7) or IPv4-mapped. Documentation addresses (2001:db8::/32)
/// count as global, so the netlab can stand for the internet with them.
pub fn is_global_ipv6(v6: std::net::Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (first & 0xffc0) == 0xfe80
        || (first & 0xfe00) == 0xfc00
        || v6.to_ipv4_mapped().is_some())
}

/// The first global IPv6 address of `interface` (the address remote access opens a pinhole for).
pub fn global_ipv6_of(interface: &str) -> Option<std::net::Ipv6Addr> {
    addresses().into_iter().filter(|a| a.name == interface && a.up).find_map(|a| match a.addr {
        IpAddr::V6(v6) if is_global_ipv6(v6) => Some(v6),
        _ => None,
    })
}
