//! Mapping methods: UPnP IGD (our [`super::igd`] control point), PCP and NAT-PMP (our [`super::pcp`] core over a
//! tokio UDP socket).
//!
//! [`ORDER`] is the one place that says which method is tried first.

use super::igd::{self, Failure};
use super::pcp::{self, Epoch, MapReply, PcpError};
use super::status::{Reason, Said};
use crate::state::MappingMethod;
use crate::system::clock::unix_now;
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::Duration;
use tokio::net::UdpSocket;

/// DESIGN.md "Remote access": UPnP IGD first, then PCP, then NAT-PMP (the PCP request tells us whether the
/// gateway speaks only NAT-PMP, RFC 6887 §9).
pub const ORDER: [MappingMethod; 3] = [MappingMethod::UpnpIgd, MappingMethod::Pcp, MappingMethod::NatPmp];

/// Lease asked for: a few hours, renewed at half-life.
pub const LEASE_SECS: u32 = 2 * 3600;
/// The description a mapping carries in the router's table, so the owner can tell Hearth's forward from others.
pub const DESCRIPTION: &str = "Hearth";
/// How long to wait for an IGD to answer the SSDP search.
pub const IGD_SEARCH: Duration = Duration::from_secs(3);

/// What we hold on the router and how to talk to it again.
pub enum Held {
    Igd(Box<igd::Gateway>),
    Pcp { nonce: [u8; 12], epoch: Epoch },
    NatPmp { epoch: Epoch },
}

/// A mapping held on the router: what to renew at half-life and delete on stop.
pub struct Active {
    /// How the mapping was made.
    pub method: MappingMethod,
    /// The router that holds it.
    pub gateway: Ipv4Addr,
    /// Our LAN address the router forwards to.
    pub local: Ipv4Addr,
    /// Our port the router forwards to.
    pub internal_port: u16,
    /// The port open on the router's public side.
    pub external_port: u16,
    /// The public address, when the router told it.
    pub external_addr: Option<IpAddr>,
    /// Granted lease; 0 = permanent.
    pub lease_secs: u32,
    /// IGD friendly name, or "PCP"/"NAT-PMP".
    pub router_name: String,
    /// The protocol state needed to renew or delete the mapping.
    pub held: Held,
}

/// Why one method did not give a mapping.
#[derive(Debug)]
pub enum Miss {
    /// Nothing answered.
    Silent,
    /// The router answered and said no (and perhaps named its external address while refusing).
    Refused { code: u16, detail: String, external: Option<IpAddr> },
}

/// Why no method gave a mapping: the reason, the external address a refusing router named, and every refusal.
#[derive(Debug)]
pub struct Missed {
    /// The first refusal, or "no gateway answered" naming every method tried.
    pub reason: Reason,
    /// The external address a refusing router named (miniupnpd refuses to map when its WAN address is
    /// private, yet PCP still names it: double NAT).
    pub named: Option<IpAddr>,
    /// Every refusal, in the order the methods were tried (the double-NAT pattern is read from them).
    pub refusals: Vec<Said>,
}

/// Try `methods` in order; the first mapping wins. Without one, [`Missed`] says why.
pub async fn map_any(
    methods: &[MappingMethod],
    gateway: Ipv4Addr,
    local: Ipv4Addr,
    internal_port: u16,
    preferred: u16,
) -> Result<Active, Missed> {
    let mut refusals: Vec<Said> = Vec::new();
    let mut named = None;
    for m in methods {
        let got = match m {
            MappingMethod::UpnpIgd => map_igd(gateway, local, internal_port, preferred).await,
            MappingMethod::Pcp => match map_pcp(gateway, local, internal_port, preferred).await {
                // RFC 6887 §9: the gateway speaks only NAT-PMP; the next method is NAT-PMP.
                Err(Miss::Refused { code, .. }) if code == pcp::RESULT_UNSUPPORTED_VERSION => Err(Miss::Silent),
                other => other,
            },
            MappingMethod::NatPmp => map_natpmp(gateway, local, internal_port, preferred).await,
            MappingMethod::Manual => continue,
        };
        match got {
            Ok(a) => return Ok(a),
            Err(Miss::Refused { code, detail, external }) => {
                tracing::info!(method = ?m, code, %detail, ?external, "the router refused the mapping");
                refusals.push(Said { method: *m, code, detail });
                named = named.or(external.filter(|a| !a.is_unspecified()));
            }
            Err(Miss::Silent) => tracing::info!(method = ?m, %gateway, "no answer"),
        }
    }
    let reason = match refusals.first() {
        Some(r) => Reason::Refused { method: r.method, code: r.code, detail: r.detail.clone() },
        None => Reason::NoGateway { tried: methods.to_vec() },
    };
    Err(Missed { reason, named, refusals })
}

/// The words a refusal is shown with: the UPnP names of the codes an owner meets most, else what the router
/// said (WANIPConnection:2 §2.5).
fn refusal(code: u16, said: &str) -> String {
    match code {
        605 => "description too long".into(),
        606 => "action not authorized".into(),
        718 => "conflict in mapping entry".into(),
        724 => "same port values required".into(),
        725 => "only permanent leases supported".into(),
        _ if !said.is_empty() => said.to_string(),
        _ => igd::error_name(code).unwrap_or("unknown error").to_string(),
    }
}

fn refused_with(r: &Result<(), Failure>, code: u16) -> bool {
    matches!(r, Err(Failure::Refused { code: c, .. }) if *c == code)
}

/// UPnP IGD: search, external address, AddPortMapping (preferred port, then any port), permanent lease when
/// the router only supports that (UPnP IGD WANIPConnection:1 error 725).
async fn map_igd(gateway: Ipv4Addr, local: Ipv4Addr, internal_port: u16, preferred: u16) -> Result<Active, Miss> {
    let gw = match igd::search(local, IGD_SEARCH, igd::Description::maps_ports).await {
        Ok(g) => g,
        Err(e) => {
            tracing::debug!(?e, "no UPnP IGD answered");
            return Err(Miss::Silent);
        }
    };
    let external_addr = match gw.external_address().await {
        Ok(ip) if !ip.is_unspecified() => Some(ip),
        Ok(_) => None,
        Err(e) => {
            tracing::info!(error = %e, "the IGD did not tell its external address");
            None
        }
    };
    let target = SocketAddrV4::new(local, internal_port);
    let mut lease = LEASE_SECS;
    let mut port = preferred;
    let mut result = gw.add_port_mapping(port, target, lease, DESCRIPTION).await;
    if refused_with(&result, 725) {
        lease = 0;
        result = gw.add_port_mapping(port, target, lease, DESCRIPTION).await;
    }
    if refused_with(&result, 718) {
        tracing::info!(port, "external port taken; asking for any port");
        result = gw.add_any_port_mapping(port, target, lease, DESCRIPTION).await.map(|p| port = p);
    }
    match result {
        Ok(()) => {}
        Err(Failure::Refused { code, description }) => {
            return Err(Miss::Refused { code, detail: refusal(code, &description), external: external_addr });
        }
        Err(Failure::Unanswered(e)) => {
            tracing::info!(error = %e, "IGD request failed");
            return Err(Miss::Silent);
        }
    }
    let router_name = gw.description.friendly_name.clone().unwrap_or_else(|| "UPnP IGD".into());
    let gateway = match gw.location.addr.ip() {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => gateway,
    };
    Ok(Active {
        method: MappingMethod::UpnpIgd,
        gateway,
        local,
        internal_port,
        external_port: port,
        external_addr,
        lease_secs: lease,
        router_name,
        held: Held::Igd(Box::new(gw)),
    })
}

/// Send `req` to the gateway's port 5351 and wait for a reply that `decode` accepts, retransmitting on the
/// RFC 6886 §3.1 schedule (shortened, see [`pcp::RETRY_MS`]).
async fn ask<T>(
    gateway: Ipv4Addr,
    req: &[u8],
    mut decode: impl FnMut(&[u8]) -> Result<T, PcpError>,
) -> Result<T, PcpError> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await.map_err(|_| PcpError::Short(0))?;
    sock.connect((gateway, pcp::SERVER_PORT)).await.map_err(|_| PcpError::Short(0))?;
    let mut buf = [0u8; 1100];
    let mut last = PcpError::Short(0);
    for wait in pcp::RETRY_MS {
        let _ = sock.send(req).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(wait);
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                // ICMP port unreachable: nobody listens; keep trying until the schedule ends.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(until).await;
                    break;
                }
                Ok(Ok(n)) => match decode(&buf[..n]) {
                    Ok(v) => return Ok(v),
                    Err(PcpError::OnlyNatPmp) => return Err(PcpError::OnlyNatPmp),
                    // A stray or malformed datagram: ignore it and keep waiting (RFC 6887 §8.3).
                    Err(e) => last = e,
                },
            }
        }
    }
    Err(last)
}

/// Our source address toward the gateway (what PCP puts in the client IP field, RFC 6887 §8.1).
async fn source_toward(gateway: Ipv4Addr) -> Option<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await.ok()?;
    s.connect((gateway, pcp::SERVER_PORT)).await.ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

fn pcp_result_text(code: u16) -> &'static str {
    // RFC 6887 §7.4.
    match code {
        1 => "UNSUPP_VERSION",
        2 => "NOT_AUTHORIZED",
        3 => "MALFORMED_REQUEST",
        4 => "UNSUPP_OPCODE",
        5 => "UNSUPP_OPTION",
        6 => "MALFORMED_OPTION",
        7 => "NETWORK_FAILURE",
        8 => "NO_RESOURCES",
        9 => "UNSUPP_PROTOCOL",
        10 => "USER_EX_QUOTA",
        11 => "CANNOT_PROVIDE_EXTERNAL",
        12 => "ADDRESS_MISMATCH",
        13 => "EXCESSIVE_REMOTE_PEERS",
        _ => "unknown result",
    }
}

fn natpmp_result_text(code: u16) -> &'static str {
    // RFC 6886 §3.5.
    match code {
        1 => "Unsupported Version",
        2 => "Not Authorized/Refused",
        3 => "Network Failure",
        4 => "Out of resources",
        5 => "Unsupported opcode",
        _ => "unknown result",
    }
}

async fn pcp_map(
    gateway: Ipv4Addr,
    local: Ipv4Addr,
    nonce: [u8; 12],
    internal_port: u16,
    suggested: u16,
    lifetime: u32,
) -> Result<MapReply, PcpError> {
    let req = pcp::pcp_map_request(IpAddr::V4(local), nonce, internal_port, suggested, lifetime);
    ask(gateway, &req, |b| pcp::pcp_map_response(b, &nonce, internal_port)).await
}

async fn map_pcp(gateway: Ipv4Addr, local: Ipv4Addr, internal_port: u16, preferred: u16) -> Result<Active, Miss> {
    let local = source_toward(gateway).await.unwrap_or(local);
    let nonce: [u8; 12] = crate::system::random::bytes();
    let reply = match pcp_map(gateway, local, nonce, internal_port, preferred, LEASE_SECS).await {
        Ok(r) => r,
        Err(PcpError::OnlyNatPmp) => {
            let detail = "NAT-PMP only".into();
            return Err(Miss::Refused { code: pcp::RESULT_UNSUPPORTED_VERSION, detail, external: None });
        }
        Err(_) => return Err(Miss::Silent),
    };
    if reply.result != 0 {
        let detail = pcp_result_text(reply.result).into();
        return Err(Miss::Refused { code: reply.result, detail, external: reply.external_addr });
    }
    let mut epoch = Epoch::default();
    epoch.observe(reply.epoch, unix_now());
    Ok(Active {
        method: MappingMethod::Pcp,
        gateway,
        local,
        internal_port,
        external_port: reply.external_port,
        external_addr: reply.external_addr,
        lease_secs: reply.lifetime,
        router_name: "PCP".into(),
        held: Held::Pcp { nonce, epoch },
    })
}

async fn map_natpmp(gateway: Ipv4Addr, local: Ipv4Addr, internal_port: u16, preferred: u16) -> Result<Active, Miss> {
    let mut epoch = Epoch::default();
    // RFC 6886 §3.2: the external address comes from its own request.
    let (result, e, ext) = match ask(gateway, &pcp::natpmp_address_request(), pcp::natpmp_address_response).await {
        Ok(r) => r,
        Err(_) => return Err(Miss::Silent),
    };
    if result != 0 {
        return Err(Miss::Refused { code: result, detail: natpmp_result_text(result).into(), external: None });
    }
    epoch.observe(e, unix_now());
    let req = pcp::natpmp_map_request(internal_port, preferred, LEASE_SECS);
    let reply = match ask(gateway, &req, |b| pcp::natpmp_map_response(b, internal_port)).await {
        Ok(r) => r,
        Err(_) => return Err(Miss::Silent),
    };
    if reply.result != 0 {
        let detail = natpmp_result_text(reply.result).into();
        return Err(Miss::Refused { code: reply.result, detail, external: Some(IpAddr::V4(ext)) });
    }
    epoch.observe(reply.epoch, unix_now());
    Ok(Active {
        method: MappingMethod::NatPmp,
        gateway,
        local,
        internal_port,
        external_port: reply.external_port,
        external_addr: Some(IpAddr::V4(ext)),
        lease_secs: reply.lifetime,
        router_name: "NAT-PMP".into(),
        held: Held::NatPmp { epoch },
    })
}

/// What a renewal or a check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Kept {
    /// The mapping is there (renewed if asked).
    Held,
    /// The router lost it (restart: epoch reset, or the IGD no longer lists it): map again.
    Lost,
    /// The router did not answer or refused: start over.
    Failed(String),
}

/// Renew at half-life (`renew` = true) or just check that the router still holds the mapping.
pub async fn keep(a: &mut Active, renew: bool) -> Kept {
    let now = unix_now();
    match &mut a.held {
        Held::Igd(gw) => {
            if renew {
                let target = SocketAddrV4::new(a.local, a.internal_port);
                return match gw.add_port_mapping(a.external_port, target, a.lease_secs, DESCRIPTION).await {
                    Ok(()) => Kept::Held,
                    Err(e) => Kept::Failed(e.to_string()),
                };
            }
            // Read-only check: is our entry still in the table, forwarding to us? (WANIPConnection
            // GetSpecificPortMappingEntry: 714 NoSuchEntryInArray when it is gone.)
            let ours = |e: &igd::Entry| e.internal_port == a.internal_port && e.internal_client.is_none_or(|c| c == IpAddr::V4(a.local));
            match gw.specific_entry(a.external_port).await {
                Ok(e) => return if ours(&e) { Kept::Held } else { Kept::Lost },
                Err(Failure::Refused { code: 714, .. }) => return Kept::Lost,
                // A router without the action: walk the table (GetGenericPortMappingEntry).
                Err(Failure::Refused { code: 401 | 602, .. }) => {}
                Err(e) => return Kept::Failed(e.to_string()),
            }
            for index in 0..256 {
                match gw.generic_entry(index).await {
                    Ok(e) if e.external_port == Some(a.external_port) && e.protocol.as_deref() == Some("TCP") => {
                        return if ours(&e) { Kept::Held } else { Kept::Lost };
                    }
                    Ok(_) => continue,
                    // Past the end of the table (713 SpecifiedArrayIndexInvalid; some routers say 714).
                    Err(Failure::Refused { code: 713 | 714, .. }) => return Kept::Lost,
                    Err(e) => return Kept::Failed(e.to_string()),
                }
            }
            Kept::Lost
        }
        Held::Pcp { nonce, epoch } => {
            // A MAP with the same nonce renews (RFC 6887 §11.2.1); its epoch tells us about restarts (§8.5).
            // A plain check sends the same MAP: PCP has no read-only query for one mapping.
            // Ask for the full lease again; keep what the router granted (§11.2.1: renew at half of it).
            match pcp_map(a.gateway, a.local, *nonce, a.internal_port, a.external_port, LEASE_SECS).await {
                Ok(r) if r.result == 0 => {
                    let lost = epoch.observe(r.epoch, now) || r.external_port != a.external_port;
                    a.external_port = r.external_port;
                    a.external_addr = r.external_addr.or(a.external_addr);
                    if r.lifetime > 0 {
                        a.lease_secs = r.lifetime;
                    }
                    if lost { Kept::Lost } else { Kept::Held }
                }
                Ok(r) => Kept::Failed(format!("PCP result {} ({})", r.result, pcp_result_text(r.result))),
                Err(e) => Kept::Failed(format!("PCP: {e}")),
            }
        }
        Held::NatPmp { epoch } => {
            if renew {
                // RFC 6886 §3.3: ask for the full lease again; renew at half of what the router granted.
                let req = pcp::natpmp_map_request(a.internal_port, a.external_port, LEASE_SECS);
                return match ask(a.gateway, &req, |b| pcp::natpmp_map_response(b, a.internal_port)).await {
                    Ok(r) if r.result == 0 => {
                        if r.lifetime > 0 {
                            a.lease_secs = r.lifetime;
                        }
                        if epoch.observe(r.epoch, now) || r.external_port != a.external_port {
                            Kept::Lost
                        } else {
                            Kept::Held
                        }
                    }
                    Ok(r) => Kept::Failed(format!("NAT-PMP result {}", r.result)),
                    Err(e) => Kept::Failed(format!("NAT-PMP: {e}")),
                };
            }
            // RFC 6886 §3.6: the external-address request carries the epoch; a reset means lost mappings.
            match ask(a.gateway, &pcp::natpmp_address_request(), pcp::natpmp_address_response).await {
                Ok((0, e, _)) => {
                    if epoch.observe(e, now) { Kept::Lost } else { Kept::Held }
                }
                Ok((r, _, _)) => Kept::Failed(format!("NAT-PMP result {r}")),
                Err(e) => Kept::Failed(format!("NAT-PMP: {e}")),
            }
        }
    }
}

/// Delete the mapping from the router (disable, shutdown).
pub async fn release(a: &Active) {
    let done = match &a.held {
        Held::Igd(gw) => gw.delete_port_mapping(a.external_port).await.map_err(|e| e.to_string()),
        // RFC 6887 §15: lifetime 0 deletes.
        Held::Pcp { nonce, .. } => pcp_map(a.gateway, a.local, *nonce, a.internal_port, a.external_port, 0)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        // RFC 6886 §3.4: lifetime 0 and suggested external port 0 delete.
        Held::NatPmp { .. } => {
            let req = pcp::natpmp_map_request(a.internal_port, 0, 0);
            ask(a.gateway, &req, |b| pcp::natpmp_map_response(b, a.internal_port)).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    match done {
        Ok(()) => tracing::info!(method = ?a.method, port = a.external_port, "mapping deleted from the router"),
        Err(e) => tracing::warn!(method = ?a.method, port = a.external_port, error = %e, "could not delete the mapping"),
    }
}

/// Parse `--remote-methods igd,pcp,natpmp` (order kept; unknown names refused).
pub fn parse_methods(s: &str) -> Result<Vec<MappingMethod>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let m = match name {
            "igd" | "upnp" => MappingMethod::UpnpIgd,
            "pcp" => MappingMethod::Pcp,
            "natpmp" | "nat-pmp" => MappingMethod::NatPmp,
            other => return Err(format!("unknown mapping method {other:?} (use igd, pcp, natpmp)")),
        };
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err("name at least one mapping method (igd, pcp, natpmp)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words an owner reads for a router's refusal ("UPnP IGD error 606 (action not authorized)"): the
    /// codes met most keep the words they had; others carry what the router said, or the spec's name.
    #[test]
    fn refusals_keep_their_words() {
        assert_eq!(refusal(606, "Action not authorized"), "action not authorized");
        assert_eq!(refusal(718, "ConflictInMappingEntry"), "conflict in mapping entry");
        assert_eq!(refusal(725, ""), "only permanent leases supported");
        assert_eq!(refusal(501, "ActionFailed"), "ActionFailed");
        assert_eq!(refusal(729, ""), "ConflictWithOtherMechanisms");
        assert_eq!(refusal(799, ""), "unknown error");
    }
}
