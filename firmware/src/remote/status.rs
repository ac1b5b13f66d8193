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

/// How one address family stands (issue 21: the status shows IPv4 and IPv6 apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyState {
    /// Remote access is off, or this family was not tried.
    #[default]
    Off,
    /// The box has no global address of this family (no IPv6 from the provider): nothing to open.
    NoAddress,
    /// Asking the router.
    Opening,
    /// The router opened the port (mapping or pinhole); no reflector to check it.
    Open,
    /// The reflector fetched /identity over this family.
    Reachable,
    /// The port is open but the reflector could not reach it.
    Unreachable,
    /// The router did not open it.
    Closed,
}

/// One family's outcome: where people reach the server over it, how, and whether that was checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FamilyStatus {
    /// Where it stands.
    pub state: FamilyState,
    /// "UPnP IGD", "PCP", "NAT-PMP" or "manual port forward".
    pub method: Option<String>,
    /// The address and port people outside use.
    pub at: Option<core::net::SocketAddr>,
    /// Seconds the router granted; 0 = permanent.
    pub lease_secs: Option<u32>,
    /// What went wrong, in words, when it is not reachable.
    pub why: Option<String>,
}

/// Both families side by side, for the API's `status.families` and the Network screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Families {
    /// IPv4, from the mapping status.
    pub ipv4: FamilyStatus,
    /// IPv6, from the pinhole task.
    pub ipv6: FamilyStatus,
}

/// IPv4's family view of the mapping status.
pub fn ipv4_family(v4: &Status) -> FamilyStatus {
    match v4 {
        Status::Disabled => FamilyStatus::default(),
        Status::Mapping => FamilyStatus { state: FamilyState::Opening, ..Default::default() },
        Status::Successful { method, external_addr, external_port, lease_secs, verified } => FamilyStatus {
            state: if *verified { FamilyState::Reachable } else { FamilyState::Open },
            method: Some(method_name(*method).into()),
            at: external_addr.filter(|a| a.is_ipv4()).map(|a| core::net::SocketAddr::new(a, *external_port)),
            lease_secs: *lease_secs,
            why: None,
        },
        Status::Unsuccessful { reason } => {
            FamilyStatus { state: FamilyState::Closed, why: Some(reason.sentence()), ..Default::default() }
        }
    }
}

/// The status and sentence shown with IPv6 counted. Without IPv6 in play (off, no global address) the IPv4
/// status and its sentence stand unchanged. With a reachable IPv6 pinhole, an IPv4 failure no longer makes
/// remote access Unsuccessful: "reachable over IPv6 only" is a success (a CGNAT or DS-Lite line).
pub fn with_ipv6(v4: &Status, v6: &FamilyStatus) -> (Status, String) {
    let four = ipv4_family(v4);
    let six_at = v6.at.map(|a| a.to_string()).unwrap_or_default();
    let six_how = v6.method.as_deref().unwrap_or("a pinhole");
    let checked = |s: FamilyState| if s == FamilyState::Reachable { "verified from outside" } else { "not verified from outside" };
    match (v4, v6.state) {
        (_, FamilyState::Off | FamilyState::NoAddress | FamilyState::Opening) | (Status::Disabled | Status::Mapping, _) => {
            (v4.clone(), v4.sentence())
        }
        (Status::Successful { .. }, FamilyState::Reachable | FamilyState::Open) => {
            let s = format!(
                "Fully accessible outside your network: reachable over IPv4 at {} through {}, {}; and over IPv6 at {six_at} \
                 through {six_how}, {}.",
                four.at.map(|a| a.to_string()).unwrap_or_else(|| "your public address".into()),
                four.method.as_deref().unwrap_or(""),
                checked(four.state),
                checked(v6.state)
            );
            (v4.clone(), s)
        }
        (Status::Successful { .. }, _) => {
            let why = v6.why.as_deref().unwrap_or("the router did not open it");
            (v4.clone(), format!("{} Over IPv6 it is not reachable: {why}.", v4.sentence()))
        }
        (Status::Unsuccessful { reason }, FamilyState::Reachable) => {
            let port = v6.at.map(|a| a.port()).unwrap_or(0);
            let shown = Status::Successful {
                method: method_of(six_how),
                external_addr: v6.at.map(|a| a.ip()),
                external_port: port,
                lease_secs: v6.lease_secs,
                verified: true,
            };
            let no_public_v4 = matches!(reason, Reason::DoubleNat { .. });
            let tail = if no_public_v4 {
                "; your provider gives you no public IPv4, so clients without IPv6 cannot reach it.".to_string()
            } else {
                format!(". Over IPv4 it is not: {}", reason.sentence())
            };
            (shown, format!("Reachable over IPv6 only, at {six_at} through {six_how}, verified from outside{tail}"))
        }
        (Status::Unsuccessful { .. }, _) => {
            let why = v6.why.as_deref().unwrap_or("the reflector could not check it");
            (v4.clone(), format!("{} Over IPv6 it is not reachable either: {why}.", v4.sentence()))
        }
    }
}

fn method_of(name: &str) -> MappingMethod {
    [MappingMethod::UpnpIgd, MappingMethod::Pcp, MappingMethod::NatPmp]
        .into_iter()
        .find(|m| method_name(*m) == name)
        .unwrap_or(MappingMethod::Manual)
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

    #[test]
    fn ipv6_counts_and_ipv6_only_is_a_success() {
        let six = FamilyStatus {
            state: FamilyState::Reachable,
            method: Some("PCP".into()),
            at: Some("[2001:db8:77::10]:32400".parse().unwrap()),
            lease_secs: Some(7200),
            why: None,
        };
        let cgnat = Status::Unsuccessful { reason: Reason::DoubleNat { router_external: ip("100.64.0.2"), public: None } };
        let (st, sentence) = with_ipv6(&cgnat, &six);
        assert!(matches!(st, Status::Successful { verified: true, external_port: 32400, method: MappingMethod::Pcp, .. }), "{st:?}");
        assert!(sentence.starts_with("Reachable over IPv6 only, at [2001:db8:77::10]:32400 through PCP"), "{sentence}");
        assert!(sentence.contains("your provider gives you no public IPv4"), "{sentence}");
        let v4 = judge(&Findings { mapping: Ok(igd("11.0.0.2")), router_external: None, stun_public: None, reach: Reach::Reached { seen_as: ip("11.0.0.2") } });
        let (st, sentence) = with_ipv6(&v4, &six);
        assert_eq!(st, v4);
        assert!(sentence.contains("reachable over IPv4 at 11.0.0.2:32400 through UPnP IGD, verified from outside"), "{sentence}");
        assert!(sentence.contains("over IPv6 at [2001:db8:77::10]:32400 through PCP, verified from outside"), "{sentence}");
        // No IPv6 on the line: the IPv4 status and sentence as before.
        let none = FamilyStatus { state: FamilyState::NoAddress, ..Default::default() };
        assert_eq!(with_ipv6(&cgnat, &none), (cgnat.clone(), cgnat.sentence()));
        // IPv6 refused too: still unsuccessful, both reasons said.
        let refused = FamilyStatus { state: FamilyState::Closed, why: Some("UPnP error 606".into()), ..Default::default() };
        let (st, sentence) = with_ipv6(&cgnat, &refused);
        assert_eq!(st, cgnat);
        assert!(sentence.ends_with("Over IPv6 it is not reachable either: UPnP error 606."), "{sentence}");
    }
}
