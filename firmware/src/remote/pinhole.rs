//! Remote access over IPv6 (issue 21): a pinhole in the router's IPv6 firewall for this server's global
//! address, opened by UPnP IGDv2 `WANIPv6FirewallControl` or by PCP MAP, renewed at half the granted lease,
//! checked, deleted on Disable and at stop; and the reflector asked over IPv6.
//!
//! IPv6 needs no address translation: the address people use is this server's own global address and the
//! port is the one we listen on. What the router has to do is let inbound TCP to it through its firewall.
//!
//! The sans-IO core is the SOAP of UPnP-gw-WANIPv6FirewallControl-v1-Service (IGD:2, 2010):
//!
//! ```text
//! POST <controlURL>   SOAPAction: "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#<action>"
//! <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
//!             s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>
//!   <u:AddPinhole xmlns:u="urn:...:WANIPv6FirewallControl:1">        §2.5.4
//!     <RemoteHost></RemoteHost> <RemotePort>0</RemotePort>           (empty / 0: any remote peer)
//!     <InternalClient>2001:db8::10</InternalClient> <InternalPort>32400</InternalPort>
//!     <Protocol>6</Protocol> <LeaseTime>7200</LeaseTime>              (1..86400 s)
//!   </u:AddPinhole>                              → <UniqueID>n</UniqueID>
//!   <u:UpdatePinhole> <UniqueID/> <NewLeaseTime/>                    §2.5.5
//!   <u:DeletePinhole> <UniqueID/>                                    §2.5.6
//! </s:Body></s:Envelope>
//! fault: <s:Fault>…<UPnPError><errorCode>606</errorCode><errorDescription>…</errorDescription></UPnPError>
//! ```
//!
//! The control point must send AddPinhole from the very address it opens (InternalClient; miniupnpd answers
//! 606 otherwise), so requests go over IPv6 to the router's IPv6 address (the IPv6 default route's next hop)
//! from our global address. PCP's IPv6 MAP is [`super::pcp::pcp_map_request`] with an IPv6 client.

use super::pcp::{self, Epoch, PcpError};
use super::status::{FamilyState, FamilyStatus, method_name};
use super::{Control, Wanted, igd, mapping, reflector};
use crate::state::{Handle, MappingMethod};
use core::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;
use tokio::sync::watch;

/// The IGD:2 IPv6 firewall service type.
pub const SERVICE: &str = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1";
/// Longest a SOAP exchange with the router may take.
const SOAP_DEADLINE: Duration = igd::EXCHANGE_DEADLINE;

/// A SOAP request body for `action` with `args` in order ([`igd::envelope`] for this service).
pub fn soap_body(action: &str, args: &[(&str, &str)]) -> String {
    igd::envelope(SERVICE, action, args)
}

/// AddPinhole for TCP to `client`:`port`, from any remote host and port, for `lease` seconds (§2.5.4).
pub fn add_pinhole(client: Ipv6Addr, port: u16, lease: u32) -> String {
    let (client, port, proto, lease) =
        (client.to_string(), port.to_string(), pcp::PROTO_TCP.to_string(), lease.clamp(1, 86400).to_string());
    soap_body(
        "AddPinhole",
        &[
            ("RemoteHost", ""),
            ("RemotePort", "0"),
            ("InternalClient", &client),
            ("InternalPort", &port),
            ("Protocol", &proto),
            ("LeaseTime", &lease),
        ],
    )
}

/// UpdatePinhole: a new lease for pinhole `id` (§2.5.5).
pub fn update_pinhole(id: u16, lease: u32) -> String {
    soap_body("UpdatePinhole", &[("UniqueID", &id.to_string()), ("NewLeaseTime", &lease.clamp(1, 86400).to_string())])
}

/// DeletePinhole `id` (§2.5.6).
pub fn delete_pinhole(id: u16) -> String {
    soap_body("DeletePinhole", &[("UniqueID", &id.to_string())])
}

/// What the router answered to a SOAP action.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// HTTP 200 with the action's response; `unique_id` when it carried one (AddPinhole).
    Done { unique_id: Option<u16> },
    /// A UPnP error (UDA 1.1 §3.2.2): code and description.
    Fault { code: u16, description: String },
    /// Neither: not a SOAP answer we understand.
    Garbled,
}

/// Decode the router's answer (HTTP status and body) to one of the actions above ([`igd::reply`]).
pub fn answer(status: u16, body: &[u8]) -> Answer {
    let r = igd::reply(status, body);
    match r {
        igd::Reply::Done { .. } => Answer::Done { unique_id: r.arg("UniqueID").and_then(|v| v.parse().ok()) },
        igd::Reply::Fault { code, description } => Answer::Fault { code, description },
        igd::Reply::Garbled => Answer::Garbled,
    }
}

/// The IPv6 default route's next hop and interface, from the text of `/proc/net/ipv6_route`: columns
/// destination (32 hex), prefix length, source, source prefix, next hop, metric, refcount, use, flags, device.
pub fn parse_default_route6(text: &str) -> Option<(Ipv6Addr, String)> {
    let mut best: Option<(u32, Ipv6Addr, String)> = None;
    for line in text.lines() {
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.len() < 10 || c[0] != "00000000000000000000000000000000" || c[1] != "00" {
            continue;
        }
        let (Ok(hop), Ok(metric)) = (u128::from_str_radix(c[4], 16), u32::from_str_radix(c[5], 16)) else { continue };
        if hop == 0 || c[9] == "lo" {
            continue;
        }
        if best.as_ref().is_none_or(|(m, ..)| metric < *m) {
            best = Some((metric, Ipv6Addr::from(hop), c[9].to_string()));
        }
    }
    best.map(|(_, hop, dev)| (hop, dev))
}

/// Where the router is over IPv6 and which of our addresses the pinhole is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path6 {
    /// Our global IPv6 address on the interface of the IPv6 default route.
    pub local: Ipv6Addr,
    /// The router's address (a link-local next hop carries the interface as its scope).
    pub router: SocketAddrV6,
}

/// The IPv6 path of this box now; `None` without an IPv6 default route or a global address on its interface.
pub fn path6() -> Option<Path6> {
    let (hop, dev) = parse_default_route6(&std::fs::read_to_string("/proc/net/ipv6_route").ok()?)?;
    let local = crate::system::ifaces::global_ipv6_of(&dev)?;
    let scope = if (hop.segments()[0] & 0xffc0) == 0xfe80 { nix::net::if_::if_nametoindex(dev.as_str()).unwrap_or(0) } else { 0 };
    Some(Path6 { local, router: SocketAddrV6::new(hop, 0, 0, scope) })
}

/// How a pinhole is held on the router.
#[derive(Debug)]
enum How {
    Upnp { control: SocketAddr, path: String, id: u16 },
    Pcp { nonce: [u8; 12], epoch: Epoch },
}

/// A pinhole open on the router.
#[derive(Debug)]
pub struct Pinhole {
    /// UPnP IGD or PCP.
    pub method: MappingMethod,
    /// The address it lets traffic in to (ours).
    pub local: Ipv6Addr,
    /// The port (ours: a pinhole does not translate).
    pub port: u16,
    /// Seconds the router granted.
    pub lease_secs: u32,
    router: SocketAddrV6,
    how: How,
}

/// One SOAP POST from `local` to `control` ([`igd::exchange`]): status and body.
async fn soap(local: Ipv6Addr, control: SocketAddr, path: &str, action: &str, body: String) -> Result<(u16, bytes::Bytes), String> {
    let soap_action = Some(format!("{SERVICE}#{action}"));
    igd::exchange(Some(IpAddr::V6(local)), control, hyper::Method::POST, path, soap_action, body, SOAP_DEADLINE).await
}

/// The IGD's IPv6 firewall control URL: the IGD found by SSDP over IPv4 with the service in its description;
/// the port is the IGD's HTTP port, to be reached at the router's IPv6 address.
async fn find_firewall() -> Result<(u16, String), String> {
    let local4 = match crate::system::ifaces::lan_address() {
        Some(IpAddr::V4(v4)) => v4,
        _ => std::net::Ipv4Addr::UNSPECIFIED,
    };
    match igd::search(local4, mapping::IGD_SEARCH, igd::Description::opens_pinholes).await {
        Ok(gw) => {
            let control = gw.description.firewall6.expect("searched for it");
            Ok((control.addr.port(), control.path))
        }
        Err(igd::Unfound::Lacking(_)) => Err("the IGD has no WANIPv6FirewallControl service".into()),
        Err(igd::Unfound::Silent) => {
            Err(format!("no UPnP IGD answered (SSDP search, {} s)", mapping::IGD_SEARCH.as_secs()))
        }
    }
}

/// Open a pinhole by UPnP IGDv2 AddPinhole.
async fn open_upnp(p: &Path6, port: u16) -> Result<Pinhole, String> {
    let (http_port, path) = find_firewall().await?;
    let mut control = p.router;
    control.set_port(http_port);
    let control = SocketAddr::V6(control);
    let (status, body) = soap(p.local, control, &path, "AddPinhole", add_pinhole(p.local, port, mapping::LEASE_SECS)).await?;
    match answer(status, &body) {
        Answer::Done { unique_id: Some(id) } => Ok(Pinhole {
            method: MappingMethod::UpnpIgd,
            local: p.local,
            port,
            lease_secs: mapping::LEASE_SECS,
            router: p.router,
            how: How::Upnp { control, path, id },
        }),
        Answer::Fault { code, description } => Err(format!("the router refused AddPinhole (UPnP error {code}: {description})")),
        _ => Err(format!("the router's answer to AddPinhole is not one (HTTP {status})")),
    }
}

/// One PCP MAP over IPv6 from `local` to the router, on the RFC 6886 §3.1 schedule (shortened).
async fn pcp6(local: Ipv6Addr, router: SocketAddrV6, nonce: [u8; 12], port: u16, lifetime: u32) -> Result<pcp::MapReply, PcpError> {
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(local), 0)).await.map_err(|_| PcpError::Short(0))?;
    let mut to = router;
    to.set_port(pcp::SERVER_PORT);
    sock.connect(SocketAddr::V6(to)).await.map_err(|_| PcpError::Short(0))?;
    let req = pcp::pcp_map_request(IpAddr::V6(local), nonce, port, port, lifetime);
    let mut buf = [0u8; 1100];
    let mut last = PcpError::Short(0);
    for wait in pcp::RETRY_MS {
        let _ = sock.send(&req).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(wait);
        while let Ok(got) = tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
            match got.map(|n| pcp::pcp_map_response(&buf[..n], &nonce, port)) {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) => last = e,
                Err(_) => {
                    tokio::time::sleep_until(until).await;
                    break;
                }
            }
        }
    }
    Err(last)
}

/// Open a pinhole by PCP MAP with our IPv6 address (RFC 6887 §11).
async fn open_pcp(p: &Path6, port: u16) -> Result<Pinhole, String> {
    let nonce: [u8; 12] = crate::system::random::bytes();
    let r = pcp6(p.local, p.router, nonce, port, mapping::LEASE_SECS).await.map_err(|e| format!("PCP over IPv6: {e}"))?;
    if r.result != 0 {
        return Err(format!("the router refused the PCP MAP over IPv6 (result {})", r.result));
    }
    let mut epoch = Epoch::default();
    epoch.observe(r.epoch, crate::system::clock::unix_now());
    Ok(Pinhole {
        method: MappingMethod::Pcp,
        local: p.local,
        port: if r.external_port == 0 { port } else { r.external_port },
        lease_secs: r.lifetime,
        router: p.router,
        how: How::Pcp { nonce, epoch },
    })
}

/// Try the methods in `order` (UPnP IGD, PCP; NAT-PMP has no IPv6): the first pinhole wins; else every
/// method's refusal in words.
pub async fn open(p: &Path6, gateway4: Option<std::net::Ipv4Addr>, order: &[MappingMethod], port: u16) -> Result<Pinhole, String> {
    let mut why = Vec::new();
    for m in order {
        let got = match (m, gateway4) {
            // The IGD is found by SSDP over IPv4: only with an IPv4 default route.
            (MappingMethod::UpnpIgd, Some(_)) => open_upnp(p, port).await,
            (MappingMethod::Pcp, _) => open_pcp(p, port).await,
            _ => continue,
        };
        match got {
            Ok(h) => return Ok(h),
            Err(e) => {
                tracing::info!(method = ?m, error = %e, "no IPv6 pinhole");
                why.push(e);
            }
        }
    }
    Err(if why.is_empty() { "no method that opens IPv6 pinholes is enabled".into() } else { why.join("; ") })
}

/// Renew the pinhole for its lease (UpdatePinhole / the same MAP); false when the router lost it or refused.
pub async fn renew(h: &mut Pinhole) -> bool {
    match &mut h.how {
        How::Upnp { control, path, id } => {
            let r = soap(h.local, *control, path, "UpdatePinhole", update_pinhole(*id, h.lease_secs)).await;
            matches!(r.map(|(s, b)| answer(s, &b)), Ok(Answer::Done { .. }))
        }
        How::Pcp { nonce, epoch } => match pcp6(h.local, h.router, *nonce, h.port, h.lease_secs.max(1)).await {
            Ok(r) if r.result == 0 => {
                h.lease_secs = r.lifetime;
                !epoch.observe(r.epoch, crate::system::clock::unix_now())
            }
            _ => false,
        },
    }
}

/// Delete the pinhole from the router (Disable, stop).
pub async fn close(h: &Pinhole) {
    let done = match &h.how {
        How::Upnp { control, path, id } => {
            soap(h.local, *control, path, "DeletePinhole", delete_pinhole(*id)).await.map(|(s, b)| answer(s, &b)).map(|a| format!("{a:?}"))
        }
        // RFC 6887 §15: lifetime 0 deletes.
        How::Pcp { nonce, .. } => pcp6(h.local, h.router, *nonce, h.port, 0).await.map(|r| format!("result {}", r.result)).map_err(|e| e.to_string()),
    };
    match done {
        Ok(a) => tracing::info!(method = ?h.method, port = h.port, answer = %a, "IPv6 pinhole deleted"),
        Err(e) => tracing::warn!(method = ?h.method, port = h.port, error = %e, "could not delete the IPv6 pinhole"),
    }
}

/// One IPv6 attempt: path, pinhole, reflector. The family's status and the pinhole held.
async fn attempt(wanted: &Wanted, order: &[MappingMethod], port: u16, machine: &str) -> (FamilyStatus, Option<Pinhole>) {
    let Some(p) = path6() else {
        return (FamilyStatus { state: FamilyState::NoAddress, ..Default::default() }, None);
    };
    let gateway4 = super::router::default_route().map(|r| r.gateway);
    let mut st = FamilyStatus { at: Some(SocketAddr::new(IpAddr::V6(p.local), port)), ..Default::default() };
    let held = match open(&p, gateway4, order, port).await {
        Ok(h) => h,
        Err(why) => {
            st.state = FamilyState::Closed;
            st.why = Some(why);
            return (st, None);
        }
    };
    st.method = Some(method_name(held.method).to_string());
    st.lease_secs = Some(held.lease_secs);
    st.state = FamilyState::Open;
    if !wanted.reflector_url.is_empty() {
        match reflector::ask_from(&wanted.reflector_url, held.port, machine, IpAddr::V6(p.local)).await {
            Ok(v) if v.reachable => st.state = FamilyState::Reachable,
            Ok(v) => {
                st.state = FamilyState::Unreachable;
                st.why = Some(format!("the reflector could not fetch /identity from {} ({})", st.at.expect("set"), v.error.unwrap_or_default()));
            }
            Err(e) => st.why = Some(e),
        }
    }
    (st, Some(held))
}

/// Follow `Settings.remote` for IPv6 beside the IPv4 task ([`super::run`]) until `stop`: open a pinhole when
/// remote access is on, publish the family's status into the view, renew at half the granted lease, check
/// every `check_every` (and try again that often while no pinhole is open), and delete the pinhole when remote
/// access goes off or the server stops.
pub async fn follow(handle: Handle, control: Control, cfg: super::Config, mut stop: watch::Receiver<bool>) {
    let mut states = handle.subscribe();
    let mut retries = control.retry.subscribe();
    let mut held: Option<Pinhole> = None;
    loop {
        let state = states.borrow_and_update().clone();
        retries.borrow_and_update();
        let wanted = Wanted::of(&state);
        if let Some(h) = held.take() {
            close(&h).await;
        }
        let on = wanted.claimed && wanted.enabled && !wanted.safe_mode;
        if !on {
            control.publish(|v| v.ipv6 = FamilyStatus::default());
        } else {
            // A first attempt says "opening"; a repeated one keeps showing the last outcome until it has a new one.
            if control.view().ipv6.state == FamilyState::Off {
                control.publish(|v| v.ipv6 = FamilyStatus { state: FamilyState::Opening, ..Default::default() });
            }
            let (st, h) = attempt(&wanted, &cfg.methods, cfg.internal_port, &state.machine_identifier()).await;
            tracing::info!(state = ?st.state, at = ?st.at, why = ?st.why, "IPv6 remote access attempt finished");
            control.publish(|v| v.ipv6 = st);
            held = h;
        }
        let half = held.as_ref().map(|h| Duration::from_secs(u64::from(h.lease_secs.max(2)) / 2));
        let mut renew_at = tokio::time::Instant::now() + half.unwrap_or(cfg.check_every).min(cfg.check_every);
        loop {
            tokio::select! {
                changed = states.changed() => {
                    if changed.is_err() || Wanted::of(&states.borrow()) != wanted { break; }
                }
                _ = retries.changed() => break,
                _ = stop.changed() => {
                    if let Some(h) = held.take() { close(&h).await; }
                    return;
                }
                _ = tokio::time::sleep_until(renew_at), if on => {
                    // No pinhole (no address, refused, router away): try again every check.
                    let Some(h) = held.as_mut() else { break };
                    // PCP and UpdatePinhole have no read-only check: the check renews (RFC 6887 §11.2.1).
                    if !renew(h).await {
                        tracing::info!("the router lost our IPv6 pinhole (restart?); opening again");
                        break;
                    }
                    renew_at = tokio::time::Instant::now() + half.unwrap_or(cfg.check_every).min(cfg.check_every);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_pinhole_names_the_arguments_in_the_spec_order() {
        let b = add_pinhole("2001:db8:77::10".parse().unwrap(), 32400, 7200);
        let order = ["RemoteHost", "RemotePort", "InternalClient", "InternalPort", "Protocol", "LeaseTime"];
        let at: Vec<usize> = order.iter().map(|n| b.find(&format!("<{n}>")).unwrap_or_else(|| panic!("{n}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{b}");
        for want in ["<RemoteHost></RemoteHost>", "<RemotePort>0</RemotePort>", "<InternalClient>2001:db8:77::10</InternalClient>",
            "<InternalPort>32400</InternalPort>", "<Protocol>6</Protocol>", "<LeaseTime>7200</LeaseTime>",
            "<u:AddPinhole xmlns:u=\"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1\">"] {
            assert!(b.contains(want), "{want} in {b}");
        }
        assert!(add_pinhole(Ipv6Addr::LOCALHOST, 1, 0).contains("<LeaseTime>1</LeaseTime>"), "lease 1..86400");
        assert!(update_pinhole(7, 100_000).contains("<UniqueID>7</UniqueID><NewLeaseTime>86400</NewLeaseTime>"));
        assert!(delete_pinhole(7).contains("<u:DeletePinhole"));
    }

    #[test]
    fn answers_and_faults() {
        // miniupnpd 2.3's answer to AddPinhole.
        let ok = "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>\
                  <u:AddPinholeResponse xmlns:u=\"urn:schemas-upnp-org:service:WANIPv6FirewallControl:1\">\
                  <UniqueID>3</UniqueID></u:AddPinholeResponse></s:Body></s:Envelope>";
        assert_eq!(answer(200, ok.as_bytes()), Answer::Done { unique_id: Some(3) });
        let fault = "<s:Envelope><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>\
                     <detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\"><errorCode>606</errorCode>\
                     <errorDescription>Action not authorized</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";
        assert_eq!(answer(500, fault.as_bytes()), Answer::Fault { code: 606, description: "Action not authorized".into() });
        assert_eq!(answer(500, b"<html>nope</html>"), Answer::Garbled);
        assert_eq!(answer(200, b""), Answer::Garbled);
    }

    #[test]
    fn finds_the_firewall_service_in_a_description() {
        let d = "<root><device><serviceList>\
                 <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>\
                 <service><serviceType>urn:schemas-upnp-org:service:WANIPv6FirewallControl:1</serviceType>\
                 <serviceId>urn:upnp-org:serviceId:WANIPv6Firewall1</serviceId><controlURL>/ctl/IP6FCtl</controlURL></service>\
                 </serviceList></device></root>";
        let at = igd::parse_url("http://192.168.77.1:5000/rootDesc.xml").unwrap();
        let fw = igd::parse_description(d.as_bytes(), &at).unwrap().firewall6.unwrap();
        assert_eq!((fw.addr.port(), fw.path.as_str()), (5000, "/ctl/IP6FCtl"));
        let none = "<root><device><serviceList><service><controlURL>/x</controlURL></service></serviceList></device></root>";
        assert_eq!(igd::parse_description(none.as_bytes(), &at).unwrap().firewall6, None);
    }

    #[test]
    fn finds_the_ipv6_default_route() {
        // `cat /proc/net/ipv6_route` in hearth-lan (on-link /64, default via the router's global address), plus
        // a link-local default with a worse metric as router advertisements add it.
        let text = "20010db8007700000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8007700000000000000000001 00000400 00000001 00000000 00000003     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000800 00000001 00000000 00450003     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(parse_default_route6(text), Some(("2001:db8:77::1".parse().unwrap(), "eth0".into())));
        assert_eq!(parse_default_route6("garbage\n1 2 3\n"), None);
    }

    #[test]
    fn hostile_answers_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(2010);
        let base = "<UniqueID>3</UniqueID><errorCode>606</errorCode><errorDescription>x</errorDescription>Response<controlURL>/c</controlURL></service>";
        for _ in 0..20_000 {
            let mut b: Vec<u8> = base.bytes().collect();
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.r#gen();
            }
            b.truncate(rng.gen_range(0..=b.len()));
            let _ = answer(200, &b);
            let _ = answer(500, &b);
            let _ = parse_default_route6(&String::from_utf8_lossy(&b));
        }
    }
}
