//! Where the router is: the default route from `/proc/net/route`, and our address on that interface.
//!
//! `/proc/net/route` (Linux `fib_route_seq_show`): a header line, then one line per route with
//! whitespace-separated columns `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`;
//! addresses are 8 hex digits of the address in host (little-endian on our targets) byte order.

use core::net::Ipv4Addr;

/// The route to the internet: the interface it leaves by and the router it goes through (the gateway asked for
/// mappings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The interface name (`eth0`).
    pub interface: String,
    /// The router's LAN address.
    pub gateway: Ipv4Addr,
}

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;

/// The default route with the lowest metric, from the text of `/proc/net/route`.
pub fn parse_default_route(text: &str) -> Option<DefaultRoute> {
    let mut best: Option<(u32, DefaultRoute)> = None;
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.len() < 8 {
            continue;
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(dest), Some(gw), Some(flags), Some(mask)) = (hex(c[1]), hex(c[2]), hex(c[3]), hex(c[7])) else {
            continue;
        };
        let metric: u32 = c[6].parse().unwrap_or(u32::MAX);
        if dest != 0 || mask != 0 || flags & (RTF_UP | RTF_GATEWAY) != RTF_UP | RTF_GATEWAY {
            continue;
        }
        // The kernel prints the __be32 as a native u32, so its native bytes are the address's bytes.
        let gateway = Ipv4Addr::from(gw.to_ne_bytes());
        if best.as_ref().is_none_or(|(m, _)| metric < *m) {
            best = Some((metric, DefaultRoute { interface: c[0].to_string(), gateway }));
        }
    }
    best.map(|(_, r)| r)
}

/// The default route of this box now, from `/proc/net/route`; `None` without one (then there is no router to ask).
pub fn default_route() -> Option<DefaultRoute> {
    parse_default_route(&std::fs::read_to_string("/proc/net/route").ok()?)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route() {
        // Captured from `ip netns exec hearth-lan cat /proc/net/route` on x86_64 (gateway 192.168.77.1).
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = parse_default_route(text).unwrap();
        assert_eq!(r, DefaultRoute { interface: "eth0".into(), gateway: Ipv4Addr::new(192, 168, 77, 1) });
        assert_eq!(parse_default_route("Iface\tDestination\n"), None);
        assert_eq!(parse_default_route("h\nbroken line\neth0 zz 01 3 0 0 0 0\n"), None);
    }
}
