//! The status the owner sees, and the pure rule that turns what an attempt found into it.
//!
//! Disabled → Mapping → Successful | Unsuccessful {reason}. Every reason carries a sentence that tells the
//! owner what to do. [`judge`] is sans-IO: the task gathers [`Findings`] and asks it for the status.

use crate::state::MappingMethod;
use core::net::IpAddr;
use serde::Serialize;

/// The owner-facing name of a method.
pub fn method_name(m: MappingMethod) -> &'static str {
    match m {
        MappingMethod::UpnpIgd => "UPnP IGD",
        MappingMethod::Pcp => "PCP",
        MappingMethod::NatPmp => "NAT-PMP",
        MappingMethod::Manual => "manual port forward",
    }
}

fn ser_method<S: serde::Serializer>(m: &MappingMethod, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(method_name(*m))
}

fn ser_methods<S: serde::Serializer>(m: &[MappingMethod], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(|m| method_name(*m)))
}

/// Where remote access stands, as the status page and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Disabled,
    /// An attempt is running.
    Mapping,
    Successful {
        #[serde(serialize_with = "ser_method")]
        method: MappingMethod,
        /// The address people outside use; None when no one told us (manual, no STUN, no reflector).
        external_addr: Option<IpAddr>,
        external_port: u16,
        /// Seconds; 0 = permanent; None for a manual forward.
        lease_secs: Option<u32>,
        /// The reflector fetched our /identity through the external address and port.
        verified: bool,
    },
    Unsuccessful {
        reason: Reason,
    },
}

/// Why remote access is not working, with what the owner can do ([`Reason::sentence`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    NotClaimed,
    /// Safe mode is on (too many watchdog resets): remote access stays off until the owner clears it.
    SafeMode,
    /// No default route or no LAN address: there is no router to ask.
    NoRoute,
    NoGateway {
        #[serde(serialize_with = "ser_methods")]
        tried: Vec<MappingMethod>,
    },
    Refused {
        #[serde(serialize_with = "ser_method")]
        method: MappingMethod,
        code: u16,
        detail: String,
    },
    DoubleNat {
        router_external: IpAddr,
        public: Option<IpAddr>,
    },
    NotReachable {
        how: String,
    },
}

impl Reason {
    /// What the owner should do, in one or two sentences.
    pub fn sentence(&self) -> String {
        match self {
            Reason::NotClaimed => {
                "This server is not claimed yet. Claim it first (create the owner account); only the owner can \
                 turn on remote access."
                    .into()
            }
            Reason::SafeMode => "Safe mode is on: the watchdog had to restart this server several times in a short \
                                 while, so remote access stays off. Read why on the System screen and leave safe \
                                 mode there to turn it back on."
                .into(),
            Reason::NoRoute => "This server has no default route, so there is no router to ask. Check its network \
                                cable and that your router gives it an address (DHCP)."
                .into(),
            Reason::NoGateway { tried } => {
                let tried: Vec<&str> = tried.iter().map(|m| method_name(*m)).collect();
                format!(
                    "No router answered ({} tried). Turn on UPnP or NAT-PMP/PCP in your router's settings and \
                     press Retry, or forward a TCP port to this server by hand and enter it as the manual port.",
                    tried.join(", ")
                )
            }
            Reason::Refused { method, code, detail } => format!(
                "Your router refused the {} port mapping (error {code}: {detail}). Allow port mapping for this \
                 server in your router's settings and press Retry, or forward a TCP port by hand and enter it \
                 as the manual port.",
                method_name(*method)
            ),
            Reason::DoubleNat { router_external, public } => {
                let mut why = if is_cgnat(*router_external) {
                    format!(
                        "your router's external address {router_external} is a carrier-grade NAT address \
                         (100.64.0.0/10), so your provider shares one public address between customers"
                    )
                } else if is_non_public(*router_external) {
                    format!("your router's external address {router_external} is a private address")
                } else {
                    format!("your router's external address is {router_external}")
                };
                if let Some(p) = public.filter(|p| p != router_external) {
                    why.push_str(&format!("; the internet sees {p}"));
                }
                format!(
                    "Double NAT: {why}. Another router or your provider sits in front of it. Put the front \
                     router in bridge mode, or forward the port on it too, or ask your provider for a public \
                     address."
                )
            }
            Reason::NotReachable { how } => format!(
                "Not reachable from outside: {how}. Check that the port forward points at this server and that \
                 no firewall blocks it, then press Retry."
            ),
        }
    }

    /// The reason's short name as the API's `kind` field (stable for scripts and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::NotClaimed => "not_claimed",
            Reason::SafeMode => "safe_mode",
            Reason::NoRoute => "no_route",
            Reason::NoGateway { .. } => "no_gateway",
            Reason::Refused { .. } => "refused",
            Reason::DoubleNat { .. } => "double_nat",
            Reason::NotReachable { .. } => "not_reachable",
        }
    }
}

impl Status {
    /// The line the page shows under the status.
    pub fn sentence(&self) -> String {
        match self {
            Status::Disabled => "Remote access is off. Turn it on to let your people reach this server from the \
                                 internet."
                .into(),
            Status::Mapping => "Setting up remote access: asking your router for a port mapping…".into(),
            Status::Successful { method, external_addr, external_port, verified, .. } => {
                let at = match external_addr {
                    Some(a) => format!("{a}:{external_port}"),
                    None => format!("port {external_port}"),
                };
                let check = if *verified {
                    "verified from outside"
                } else {
                    "not verified from outside (set a reflector URL to check)"
                };
                format!("Fully accessible outside your network at {at} through {}, {check}.", method_name(*method))
            }
            Status::Unsuccessful { reason } => reason.sentence(),
        }
    }
}

/// 100.64.0.0/10, RFC 6598 shared address space.
pub fn is_cgnat(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64)
}

/// An address that cannot be reached from the internet: RFC 1918, RFC 6598, loopback, link-local,
/// unspecified, or IPv6 unique-local/link-local.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || is_cgnat(ip)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_non_public(IpAddr::V4(v4)))
        }
    }
}

/// A mapping an attempt holds (or a manual forward).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// How the port was opened (a manual forward reports `Manual`).
    pub method: MappingMethod,
    /// The public address, when the router told it.
    pub external_addr: Option<IpAddr>,
    /// The port open on the public side.
    pub external_port: u16,
    /// 0 = permanent; None = manual.
    pub lease_secs: Option<u32>,
}

/// The outcome of the reachability check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// No reflector URL set.
    NotChecked,
    /// The reflector fetched our /identity; it saw us at this address.
    Reached { seen_as: IpAddr },
    /// The reflector could not; `how` says what was tried and what happened.
    Unreached { how: String },
}

/// Everything one attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Findings {
    /// The mapping the attempt holds, or why it has none.
    pub mapping: Result<Lease, Reason>,
    /// The router's external address when it named one, even while refusing to map.
    pub router_external: Option<IpAddr>,
    /// The public address from STUN, when a STUN server answered.
    pub stun_public: Option<IpAddr>,
    /// What the reflector found.
    pub reach: Reach,
}

/// The status rule. Proven reachability wins over everything (someone forwarded the port on the front
/// router too); otherwise a double NAT is named before "not reachable" because it is the cause.
pub fn judge(f: &Findings) -> Status {
    let double_nat = |router: IpAddr| {
        (is_non_public(router) || f.stun_public.is_some_and(|p| p != router))
            .then_some(Reason::DoubleNat { router_external: router, public: f.stun_public })
    };
    let lease = match &f.mapping {
        // A router that refuses while naming a private external address refuses because of the double NAT
        // (miniupnpd: "private/reserved address is not suitable for external IP"): name the cause.
        Err(reason @ Reason::Refused { .. }) => {
            let reason = f.router_external.and_then(double_nat).unwrap_or_else(|| reason.clone());
            return Status::Unsuccessful { reason };
        }
        Err(reason) => return Status::Unsuccessful { reason: reason.clone() },
        Ok(l) => l,
    };
    let observed = match &f.reach {
        Reach::Reached { seen_as } => Some(*seen_as),
        _ => None,
    };
    let external_addr = lease.external_addr.filter(|a| !a.is_unspecified()).or(f.stun_public).or(observed);
    let success = |verified| Status::Successful {
        method: lease.method,
        external_addr,
        external_port: lease.external_port,
        lease_secs: lease.lease_secs,
        verified,
    };
    if let Reach::Reached { .. } = f.reach {
        return success(true);
    }
    if lease.method != MappingMethod::Manual
        && let Some(reason) = lease.external_addr.filter(|a| !a.is_unspecified()).and_then(double_nat)
    {
        return Status::Unsuccessful { reason };
    }
    if let Reach::Unreached { how } = &f.reach {
        return Status::Unsuccessful { reason: Reason::NotReachable { how: how.clone() } };
    }
    success(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn igd(ext: &str) -> Lease {
        Lease { method: MappingMethod::UpnpIgd, external_addr: Some(ip(ext)), external_port: 32400, lease_secs: Some(7200) }
    }

    #[test]
    fn the_status_table() {
        let public = "11.0.0.2";
        let cases: Vec<(Findings, &str)> = vec![
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: Some(ip(public)), reach: Reach::NotChecked }, "successful"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: None, reach: Reach::Reached { seen_as: ip(public) } }, "successful"),
            (Findings { mapping: Ok(igd("10.99.0.2")), router_external: None, stun_public: Some(ip(public)), reach: Reach::NotChecked }, "double_nat"),
            (Findings { mapping: Ok(igd("100.64.0.2")), router_external: None, stun_public: None, reach: Reach::NotChecked }, "double_nat"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: Some(ip("11.0.0.9")), reach: Reach::NotChecked }, "double_nat"),
            // Reached through a double NAT: the front router forwards too; it works.
            (Findings { mapping: Ok(igd("10.99.0.2")), router_external: None, stun_public: None, reach: Reach::Reached { seen_as: ip(public) } }, "successful"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: None, reach: Reach::Unreached { how: "x".into() } }, "not_reachable"),
            // A refusal while the router names a CGNAT external address: the double NAT is the cause.
            (
                Findings {
                    mapping: Err(Reason::Refused { method: MappingMethod::Pcp, code: 8, detail: "NO_RESOURCES".into() }),
                    router_external: Some(ip("100.64.0.2")),
                    stun_public: Some(ip(public)),
                    reach: Reach::NotChecked,
                },
                "double_nat",
            ),
            (
                Findings {
                    mapping: Err(Reason::Refused { method: MappingMethod::Pcp, code: 2, detail: "NOT_AUTHORIZED".into() }),
                    router_external: Some(ip(public)),
                    stun_public: Some(ip(public)),
                    reach: Reach::NotChecked,
                },
                "refused",
            ),
            (Findings { mapping: Err(Reason::NoGateway { tried: vec![MappingMethod::UpnpIgd] }), router_external: None, stun_public: None, reach: Reach::NotChecked }, "no_gateway"),
            (
                Findings {
                    mapping: Ok(Lease { method: MappingMethod::Manual, external_addr: None, external_port: 443, lease_secs: None }),
                    router_external: None,
                    stun_public: Some(ip("10.0.0.1")),
                    reach: Reach::NotChecked,
                },
                "successful",
            ),
        ];
        for (i, (f, want)) in cases.iter().enumerate() {
            let got = match judge(f) {
                Status::Successful { .. } => "successful",
                Status::Unsuccessful { reason } => reason.kind(),
                other => panic!("case {i}: {other:?}"),
            };
            assert_eq!(got, *want, "case {i}: {f:?}");
        }
    }

    #[test]
    fn sentences_name_the_facts() {
        let s = Reason::DoubleNat { router_external: ip("100.64.1.2"), public: None }.sentence();
        assert!(s.contains("100.64.1.2") && s.contains("carrier-grade"), "{s}");
        let s = Reason::DoubleNat { router_external: ip("11.0.0.2"), public: Some(ip("11.0.0.9")) }.sentence();
        assert!(s.contains("11.0.0.2") && s.contains("11.0.0.9"), "{s}");
        let s = Reason::NoGateway { tried: vec![MappingMethod::UpnpIgd, MappingMethod::Pcp, MappingMethod::NatPmp] }
            .sentence();
        assert!(s.contains("UPnP IGD, PCP, NAT-PMP tried"), "{s}");
        let st = judge(&Findings { mapping: Ok(igd("11.0.0.2")), router_external: None, stun_public: None, reach: Reach::NotChecked });
        assert!(st.sentence().contains("not verified from outside"), "{}", st.sentence());
        let j = serde_json::to_value(&st).unwrap();
        assert_eq!(j["state"], "successful");
        assert_eq!(j["method"], "UPnP IGD");
        assert_eq!(j["external_addr"], "11.0.0.2");
    }

    #[test]
    fn non_public_ranges() {
        for a in ["10.1.2.3", "172.16.0.1", "192.168.0.1", "100.64.0.1", "100.127.255.254", "127.0.0.1", "169.254.1.1", "0.0.0.0", "fd00::1", "fe80::1"] {
            assert!(is_non_public(ip(a)), "{a}");
        }
        for a in ["11.0.0.2", "100.128.0.1", "8.8.8.8", "2001:db8::1"] {
            assert!(!is_non_public(ip(a)), "{a}");
        }
    }
}
