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
    /// The mapping may be gone (the router announced a restart, a renewal or check failed): a new attempt
    /// runs, and nothing is claimed about reachability until it is judged.
    Checking {
        /// What happened, for the owner ("your router announced a restart (…)").
        cause: String,
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
    /// A second NAT sits in front of the router (or the provider's carrier-grade NAT): what the router maps
    /// cannot be reached. `evidence` says how we know; `port` is the port to forward on the outer device.
    DoubleNat {
        router_external: Option<IpAddr>,
        public: Option<IpAddr>,
        port: u16,
        evidence: Evidence,
        /// Every refusal heard while trying (the protocol detail for "Show details").
        refusals: Vec<Said>,
    },
    NotReachable {
        how: String,
        /// The external port that was checked.
        port: u16,
        /// Where a manual forward must point (our LAN address and port); None for a router mapping.
        forward_to: Option<core::net::SocketAddr>,
    },
}

/// How a double NAT was recognised (most certain first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The router's external address is in 100.64.0.0/10 (RFC 6598): the provider's NAT.
    CarrierGradeNat,
    /// The router's external address is private (RFC 1918 and the like).
    PrivateRouterAddress,
    /// The router names a public address, but STUN sees another one.
    StunDiffers,
    /// Every method the router speaks answered and refused with a "cannot" code, the way routers refuse when
    /// the network in front of them would not pass the port (miniupnpd with STUN behind another NAT: UPnP
    /// 501, PCP NO_RESOURCES, NAT-PMP failure).
    RefusalPattern,
}

/// One refusal as the router said it: the method, its result code and the protocol's name for the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Said {
    #[serde(serialize_with = "ser_method")]
    pub method: MappingMethod,
    pub code: u16,
    pub detail: String,
}

impl Said {
    /// "UPnP IGD error 501 (ActionFailed)".
    pub fn text(&self) -> String {
        let word = if self.method == MappingMethod::UpnpIgd { "error" } else { "result" };
        format!("{} {word} {} ({})", method_name(self.method), self.code, self.detail)
    }

    /// A refusal that says "cannot" rather than "may not": UPnP 501 ActionFailed / 729 ConflictWithOtherMechanisms
    /// (UPnP IGD WANIPConnection:2 §2.5), PCP NETWORK_FAILURE / NO_RESOURCES / CANNOT_PROVIDE_EXTERNAL (RFC 6887
    /// §7.4), NAT-PMP Network Failure / Out of resources (RFC 6886 §3.5).
    fn cannot(&self) -> bool {
        match self.method {
            MappingMethod::UpnpIgd => matches!(self.code, 501 | 729),
            MappingMethod::Pcp => matches!(self.code, 7 | 8 | 11),
            MappingMethod::NatPmp => matches!(self.code, 3 | 4),
            MappingMethod::Manual => false,
        }
    }
}

/// The refusal pattern of a router behind another NAT: at least two methods refused, all with "cannot" codes.
pub fn refusal_pattern(refusals: &[Said]) -> bool {
    let mut methods: Vec<MappingMethod> = refusals.iter().map(|r| r.method).collect();
    methods.dedup();
    methods.len() >= 2 && refusals.iter().all(Said::cannot)
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
                    "No router answered ({} tried), so this server cannot open a port by itself. Turn on UPnP or \
                     NAT-PMP/PCP in your router's settings, then press Retry.",
                    tried.join(", ")
                )
            }
            Reason::Refused { method, .. } => format!(
                "Your router answered but refused to open a port for this server ({}). Allow port mapping for this \
                 server's address in your router's UPnP/NAT-PMP settings, then press Retry.",
                method_name(*method)
            ),
            Reason::DoubleNat { router_external, public, port, evidence, .. } => {
                double_nat_sentence(*router_external, *public, *port, *evidence)
            }
            Reason::NotReachable { port, forward_to: Some(to), .. } => format!(
                "Nothing on the internet reaches this server on port {port}: your manual port forward does not \
                 lead here. Forward TCP port {port} on your router to {to} (this server), then press Retry."
            ),
            Reason::NotReachable { port, .. } => format!(
                "Your router opened port {port}, yet the check from the internet could not reach this server \
                 through it: something in front of your router blocks it. Allow incoming TCP port {port} in \
                 the firewall of the device in front of your router (or your provider's), then press Retry."
            ),
        }
    }

    /// The protocol detail behind the sentence, for "Show details" (None when there is nothing more to say).
    pub fn detail(&self) -> Option<String> {
        match self {
            Reason::NotClaimed | Reason::SafeMode => None,
            Reason::NoRoute => Some("No default route in /proc/net/route, or no IPv4 address on its interface.".into()),
            Reason::NoGateway { tried } => {
                let asked: Vec<&str> = tried
                    .iter()
                    .map(|m| match m {
                        MappingMethod::UpnpIgd => "UPnP IGD (SSDP M-SEARCH to 239.255.255.250:1900, 3 s)",
                        MappingMethod::Pcp => "PCP MAP to the gateway's UDP 5351 (RFC 6887, 3 tries)",
                        MappingMethod::NatPmp => "NAT-PMP to the gateway's UDP 5351 (RFC 6886, 3 tries)",
                        MappingMethod::Manual => "manual",
                    })
                    .collect();
                Some(format!("Asked the default gateway: {}. No answer.", asked.join("; ")))
            }
            Reason::Refused { method, code, detail } => {
                Some(Said { method: *method, code: *code, detail: detail.clone() }.text() + ".")
            }
            Reason::DoubleNat { router_external, public, evidence, refusals, .. } => {
                let mut d = vec![format!("Recognised by: {}.", serde_json::to_value(evidence).ok()?.as_str()?)];
                if let Some(r) = router_external {
                    d.push(format!("The router reports its external address as {r}."));
                }
                if let Some(p) = public {
                    d.push(format!("STUN sees {p}."));
                }
                if !refusals.is_empty() {
                    let said: Vec<String> = refusals.iter().map(Said::text).collect();
                    d.push(format!("Refusals: {}.", said.join("; ")));
                }
                Some(d.join(" "))
            }
            Reason::NotReachable { how, .. } => Some(format!("{how}.")),
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

/// The double-NAT sentence: what it means for this owner and the one thing that can work there.
fn double_nat_sentence(router: Option<IpAddr>, public: Option<IpAddr>, port: u16, evidence: Evidence) -> String {
    let wan = |r: Option<IpAddr>| match r {
        Some(r) if is_non_public(r) => r.to_string(),
        _ => "your router's WAN address (on its status page)".into(),
    };
    let front = format!(
        "Put the device in front of your router (often the provider's modem) in bridge mode, or forward TCP \
         port {port} on it to {}.",
        wan(router)
    );
    match (evidence, router) {
        (Evidence::CarrierGradeNat, Some(r)) => format!(
            "Your internet provider shares one public IPv4 address among many customers: your router's external \
             address {r} is a carrier-grade NAT address (100.64.0.0/10), so no port can be opened from inside \
             your home. Ask your provider for a public IPv4 address."
        ),
        (Evidence::PrivateRouterAddress, Some(r)) => format!(
            "Double NAT: your router sits behind another router; its internet side has the private address {r}, \
             so ports it opens cannot be reached from the internet. {front}"
        ),
        (Evidence::StunDiffers, Some(r)) => format!(
            "Double NAT: your router reports its external address as {r}, but the internet sees you as {}: \
             another router or your provider's NAT sits in front of it. {front}",
            public.map_or("another address".into(), |p| p.to_string())
        ),
        _ => format!(
            "Double NAT: your router answered but refused every port mapping, as routers do when another router \
             or your provider's NAT sits in front of them{}. {front}",
            router.map_or(String::new(), |r| format!(" (it learned its address {r} from outside)"))
        ),
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
            Status::Checking { cause } => format!(
                "Checking again: {cause}. Remote access may be down until this check finishes; it takes a few seconds."
            ),
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
    /// Every refusal heard while trying the methods, in order.
    pub refusals: Vec<Said>,
    /// The port we asked the router for (the one to forward by hand on an outer router).
    pub asked_port: u16,
    /// Where a manual forward must lead: our LAN address and listening port.
    pub forward_to: Option<core::net::SocketAddr>,
}

/// How a double NAT shows in what an attempt found, most certain evidence first: the router's external
/// address is CGNAT or private, STUN sees another address, or the refusal pattern ([`refusal_pattern`]).
fn double_nat(f: &Findings, router: Option<IpAddr>, refused: bool, port: u16) -> Option<Reason> {
    let evidence = match router {
        Some(r) if is_cgnat(r) => Evidence::CarrierGradeNat,
        Some(r) if is_non_public(r) => Evidence::PrivateRouterAddress,
        Some(r) if f.stun_public.is_some_and(|p| p != r) => Evidence::StunDiffers,
        _ if refused && refusal_pattern(&f.refusals) => Evidence::RefusalPattern,
        _ => return None,
    };
    Some(Reason::DoubleNat { router_external: router, public: f.stun_public, port, evidence, refusals: f.refusals.clone() })
}

/// The status rule. Proven reachability wins over everything (someone forwarded the port on the front
/// router too); otherwise a double NAT is named before "not reachable" because it is the cause.
pub fn judge(f: &Findings) -> Status {
    let lease = match &f.mapping {
        // A router that refuses while naming a private external address, or whose refusals follow the
        // double-NAT pattern, refuses because of the double NAT (miniupnpd: "private/reserved address is not
        // suitable for external IP"; with STUN: every mapping refused): name the cause, not the refusal.
        Err(reason @ Reason::Refused { .. }) => {
            let router = f.router_external.filter(|a| !a.is_unspecified());
            let reason = double_nat(f, router, true, f.asked_port).unwrap_or_else(|| reason.clone());
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
    let manual = lease.method == MappingMethod::Manual;
    if !manual
        && let Some(router) = lease.external_addr.filter(|a| !a.is_unspecified())
        && let Some(reason) = double_nat(f, Some(router), false, lease.external_port)
    {
        return Status::Unsuccessful { reason };
    }
    if let Reach::Unreached { how } = &f.reach {
        let forward_to = if manual { f.forward_to } else { None };
        return Status::Unsuccessful { reason: Reason::NotReachable { how: how.clone(), port: lease.external_port, forward_to } };
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
        // Checking again after the router went away: not verified until the attempt is judged.
        Status::Mapping | Status::Checking { .. } => FamilyStatus { state: FamilyState::Opening, ..Default::default() },
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
        (_, FamilyState::Off | FamilyState::NoAddress | FamilyState::Opening) | (Status::Disabled | Status::Mapping | Status::Checking { .. }, _) => {
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
            // Only the provider's NAT (100.64.0.0/10) means there is no public IPv4 to be had; a home double NAT
            // gets its own reason and its one thing to try.
            let no_public_v4 = matches!(reason, Reason::DoubleNat { evidence: Evidence::CarrierGradeNat, .. });
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

    /// The fields the older table rows do not set.
    fn more() -> Findings {
        Findings {
            mapping: Err(Reason::NoRoute),
            router_external: None,
            stun_public: None,
            reach: Reach::NotChecked,
            refusals: vec![],
            asked_port: 32400,
            forward_to: None,
        }
    }

    fn igd(ext: &str) -> Lease {
        Lease { method: MappingMethod::UpnpIgd, external_addr: Some(ip(ext)), external_port: 32400, lease_secs: Some(7200) }
    }

    #[test]
    fn the_status_table() {
        let public = "11.0.0.2";
        let cases: Vec<(Findings, &str)> = vec![
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: Some(ip(public)), reach: Reach::NotChecked, ..more() }, "successful"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: None, reach: Reach::Reached { seen_as: ip(public) }, ..more() }, "successful"),
            (Findings { mapping: Ok(igd("10.99.0.2")), router_external: None, stun_public: Some(ip(public)), reach: Reach::NotChecked, ..more() }, "double_nat"),
            (Findings { mapping: Ok(igd("100.64.0.2")), router_external: None, stun_public: None, reach: Reach::NotChecked, ..more() }, "double_nat"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: Some(ip("11.0.0.9")), reach: Reach::NotChecked, ..more() }, "double_nat"),
            // Reached through a double NAT: the front router forwards too; it works.
            (Findings { mapping: Ok(igd("10.99.0.2")), router_external: None, stun_public: None, reach: Reach::Reached { seen_as: ip(public) }, ..more() }, "successful"),
            (Findings { mapping: Ok(igd(public)), router_external: None, stun_public: None, reach: Reach::Unreached { how: "x".into() }, ..more() }, "not_reachable"),
            // A refusal while the router names a CGNAT external address: the double NAT is the cause.
            (
                Findings {
                    mapping: Err(Reason::Refused { method: MappingMethod::Pcp, code: 8, detail: "NO_RESOURCES".into() }),
                    router_external: Some(ip("100.64.0.2")),
                    stun_public: Some(ip(public)),
                    reach: Reach::NotChecked,
                    ..more()
                },
                "double_nat",
            ),
            (
                Findings {
                    mapping: Err(Reason::Refused { method: MappingMethod::Pcp, code: 2, detail: "NOT_AUTHORIZED".into() }),
                    router_external: Some(ip(public)),
                    stun_public: Some(ip(public)),
                    reach: Reach::NotChecked,
                    ..more()
                },
                "refused",
            ),
            (Findings { mapping: Err(Reason::NoGateway { tried: vec![MappingMethod::UpnpIgd] }), router_external: None, stun_public: None, reach: Reach::NotChecked, ..more() }, "no_gateway"),
            (
                Findings {
                    mapping: Ok(Lease { method: MappingMethod::Manual, external_addr: None, external_port: 443, lease_secs: None }),
                    router_external: None,
                    stun_public: Some(ip("10.0.0.1")),
                    reach: Reach::NotChecked,
                    ..more()
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
        let s = Reason::DoubleNat { router_external: Some(ip("100.64.1.2")), public: None, port: 32400, evidence: Evidence::CarrierGradeNat, refusals: vec![] }.sentence();
        assert!(s.contains("100.64.1.2") && s.contains("carrier-grade"), "{s}");
        let s = Reason::DoubleNat { router_external: Some(ip("11.0.0.2")), public: Some(ip("11.0.0.9")), port: 32400, evidence: Evidence::StunDiffers, refusals: vec![] }.sentence();
        assert!(s.contains("11.0.0.2") && s.contains("11.0.0.9"), "{s}");
        let s = Reason::NoGateway { tried: vec![MappingMethod::UpnpIgd, MappingMethod::Pcp, MappingMethod::NatPmp] }
            .sentence();
        assert!(s.contains("UPnP IGD, PCP, NAT-PMP tried"), "{s}");
        let st = judge(&Findings { mapping: Ok(igd("11.0.0.2")), router_external: None, stun_public: None, reach: Reach::NotChecked, ..more() });
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
        let cgnat = Status::Unsuccessful { reason: Reason::DoubleNat {
            router_external: Some(ip("100.64.0.2")),
            public: None,
            port: 32400,
            evidence: Evidence::CarrierGradeNat,
            refusals: vec![],
        } };
        let (st, sentence) = with_ipv6(&cgnat, &six);
        assert!(matches!(st, Status::Successful { verified: true, external_port: 32400, method: MappingMethod::Pcp, .. }), "{st:?}");
        assert!(sentence.starts_with("Reachable over IPv6 only, at [2001:db8:77::10]:32400 through PCP"), "{sentence}");
        assert!(sentence.contains("your provider gives you no public IPv4"), "{sentence}");
        let v4 = judge(&Findings { mapping: Ok(igd("11.0.0.2")), reach: Reach::Reached { seen_as: ip("11.0.0.2") }, ..more() });
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

    fn said(method: MappingMethod, code: u16, detail: &str) -> Said {
        Said { method, code, detail: detail.into() }
    }

    /// What miniupnpd 2.3.1 answers behind another NAT with STUN on (DESIGN.md "Test lab facts").
    fn stun_router_refusals() -> Vec<Said> {
        vec![
            said(MappingMethod::UpnpIgd, 501, "ActionFailed"),
            said(MappingMethod::Pcp, 8, "NO_RESOURCES"),
            said(MappingMethod::NatPmp, 3, "Network Failure"),
        ]
    }

    fn refused_by(refusals: Vec<Said>, router: Option<&str>, stun: Option<&str>) -> Findings {
        let first = &refusals[0];
        Findings {
            mapping: Err(Reason::Refused { method: first.method, code: first.code, detail: first.detail.clone() }),
            router_external: router.map(ip),
            stun_public: stun.map(ip),
            refusals,
            ..more()
        }
    }

    fn reason_of(st: Status) -> Reason {
        match st {
            Status::Unsuccessful { reason } => reason,
            other => panic!("{other:?}"),
        }
    }

    /// The security review's "router refused (501)" behind double NAT: a router that learned the outer
    /// public address by STUN names the same address STUN sees, and refuses every method. Named double NAT,
    /// and the advice is about the device in front, never "allow port mapping" on a router that answered.
    #[test]
    fn router_refused_501_behind_double_nat_is_named_double_nat() {
        let r = reason_of(judge(&refused_by(stun_router_refusals(), Some("11.0.0.2"), Some("11.0.0.2"))));
        let Reason::DoubleNat { evidence, port, .. } = &r else { panic!("{r:?}") };
        assert_eq!((*evidence, *port), (Evidence::RefusalPattern, 32400));
        let s = r.sentence();
        assert!(s.contains("Double NAT") && s.contains("bridge mode") && s.contains("TCP port 32400"), "{s}");
        assert!(!s.contains("UPnP") && !s.contains("Retry"), "no advice about the router that answered: {s}");
        let d = r.detail().unwrap();
        assert!(d.contains("UPnP IGD error 501 (ActionFailed)") && d.contains("PCP result 8 (NO_RESOURCES)"), "{d}");
        assert!(d.contains("refusal_pattern") && d.contains("11.0.0.2"), "{d}");
    }

    #[test]
    fn a_single_or_a_policy_refusal_is_not_double_nat() {
        // One method alone proves nothing; "not authorized" is the router's own policy.
        let one = vec![said(MappingMethod::Pcp, 8, "NO_RESOURCES")];
        assert_eq!(reason_of(judge(&refused_by(one, Some("11.0.0.2"), Some("11.0.0.2")))).kind(), "refused");
        let policy = vec![said(MappingMethod::UpnpIgd, 606, "action not authorized"), said(MappingMethod::Pcp, 2, "NOT_AUTHORIZED")];
        let r = reason_of(judge(&refused_by(policy, Some("11.0.0.2"), Some("11.0.0.2"))));
        assert_eq!(r.kind(), "refused");
        let s = r.sentence();
        assert!(s.contains("Allow port mapping") && !s.contains("Turn on UPnP"), "the router answered: {s}");
        assert_eq!(r.detail().unwrap(), "UPnP IGD error 606 (action not authorized).");
    }

    #[test]
    fn stun_against_the_router_address_is_double_nat_even_when_refused_once() {
        let one = vec![said(MappingMethod::UpnpIgd, 606, "action not authorized")];
        let r = reason_of(judge(&refused_by(one, Some("11.0.0.2"), Some("11.0.0.7"))));
        let Reason::DoubleNat { evidence: Evidence::StunDiffers, .. } = &r else { panic!("{r:?}") };
        assert!(r.sentence().contains("11.0.0.2") && r.sentence().contains("11.0.0.7"), "{}", r.sentence());
    }

    /// Every reason's sentence, as the owner reads it, with the one thing to try (printed for the report:
    /// `cargo test -p hearth --lib remote::status -- --nocapture every_sentence`).
    #[test]
    fn every_sentence_says_what_it_means_and_one_thing_to_try() {
        let base = Findings { mapping: Ok(igd("11.0.0.2")), ..more() };
        let cases = [
            ("cgnat", judge(&Findings { mapping: Ok(igd("100.64.0.2")), ..more() }), "Ask your provider"),
            ("private", judge(&Findings { mapping: Ok(igd("192.168.1.5")), ..more() }), "to 192.168.1.5"),
            ("stun", judge(&Findings { stun_public: Some(ip("11.0.0.9")), ..base.clone() }), "WAN address"),
            ("pattern", judge(&refused_by(stun_router_refusals(), Some("11.0.0.2"), None)), "bridge mode"),
            ("refused", judge(&refused_by(vec![said(MappingMethod::Pcp, 2, "NOT_AUTHORIZED")], None, None)), "Allow port mapping"),
            ("no_gateway", judge(&Findings { mapping: Err(Reason::NoGateway { tried: ORDER_ALL.to_vec() }), ..more() }), "Turn on UPnP"),
            ("no_route", judge(&Findings { mapping: Err(Reason::NoRoute), ..more() }), "cable"),
            (
                "unreached",
                judge(&Findings { reach: Reach::Unreached { how: "the reflector at http://r could not fetch".into() }, ..base.clone() }),
                "Allow incoming TCP port 32400",
            ),
            (
                "manual unreached",
                judge(&Findings {
                    mapping: Ok(Lease { method: MappingMethod::Manual, external_addr: None, external_port: 40400, lease_secs: None }),
                    reach: Reach::Unreached { how: "x".into() },
                    forward_to: Some("192.168.77.10:32400".parse().unwrap()),
                    ..more()
                }),
                "Forward TCP port 40400 on your router to 192.168.77.10:32400",
            ),
        ];
        for (name, st, action) in cases {
            let s = st.sentence();
            println!("{name}: {s}");
            assert!(s.contains(action), "{name}: {s}");
            // One thing to try: at most one "press Retry", and no reason both asks to turn UPnP on and
            // reports what the router said.
            assert!(s.matches("Retry").count() <= 1, "{name}: {s}");
        }
        let checking = Status::Checking { cause: "your router announced a restart (PCP ANNOUNCE)".into() };
        assert!(checking.sentence().starts_with("Checking again") && !checking.sentence().contains("verified"));
        assert_eq!(serde_json::to_value(&checking).unwrap()["state"], "checking");
    }

    const ORDER_ALL: [MappingMethod; 3] = [MappingMethod::UpnpIgd, MappingMethod::Pcp, MappingMethod::NatPmp];
}
