//! LAN or WAN, for the bandwidth classes. Small and replaceable: the auth room's request origin is richer
//! (trusted proxies, "treat WAN IP as LAN") and takes over at merge.
//!
//! Rule: when `Settings.lan_networks` is set, it alone decides (so a test or an owner can declare even
//! loopback remote). When it is empty, LAN is loopback plus the subnets of the server's own interfaces.

use crate::state::{Net, State};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Own subnets are read again after this long (interfaces change rarely; DHCP may renew).
const OWN_NETS_TTL: Duration = Duration::from_secs(30);

static OWN_NETS: Mutex<Option<(Instant, Vec<Net>)>> = Mutex::new(None);

pub fn is_lan(peer: IpAddr, state: &State) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    let configured = &state.settings.lan_networks;
    if !configured.is_empty() {
        return configured.iter().any(|n| n.contains(peer));
    }
    if peer.is_loopback() {
        return true;
    }
    own_nets().iter().any(|n| n.contains(peer))
}

/// The subnets of the server's interfaces that are up (nix getifaddrs), cached.
pub fn own_nets() -> Vec<Net> {
    let mut cache = OWN_NETS.lock().unwrap();
    if let Some((at, nets)) = cache.as_ref()
        && at.elapsed() < OWN_NETS_TTL
    {
        return nets.clone();
    }
    let mut nets = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let (Some(addr), Some(mask)) = (a.address.as_ref(), a.netmask.as_ref()) else {
                continue;
            };
            if let (Some(ip), Some(m)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) {
                let prefix = u32::from(m.ip()).count_ones() as u8;
                nets.push(Net {
                    addr: IpAddr::V4(ip.ip()),
                    prefix,
                });
            } else if let (Some(ip), Some(m)) = (addr.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                let prefix = u128::from(m.ip()).count_ones() as u8;
                nets.push(Net {
                    addr: IpAddr::V6(ip.ip()),
                    prefix,
                });
            }
        }
    }
    *cache = Some((Instant::now(), nets.clone()));
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_networks_decide_alone() {
        let mut s = State::new([0; 16]);
        assert!(is_lan("127.0.0.1".parse().unwrap(), &s));
        assert!(is_lan("::ffff:127.0.0.1".parse().unwrap(), &s));
        assert!(!is_lan("198.51.100.7".parse().unwrap(), &s));
        s.settings
            .lan_networks
            .push("10.9.0.0/16".parse().unwrap())
            .unwrap();
        assert!(is_lan("10.9.3.4".parse().unwrap(), &s));
        assert!(!is_lan("127.0.0.1".parse().unwrap(), &s));
    }
}
