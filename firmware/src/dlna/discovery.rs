//! The SSDP socket shell around [`super::ssdp::Engine`]: UDP 1900 joined to 239.255.255.250 on every LAN
//! interface, one send socket per interface with IP_MULTICAST_IF for NOTIFYs, unicast answers from 1900.
//! Searches from sources that are not LAN are dropped before the engine sees them.

use super::Live;
use super::lan::{self, Iface};
use super::ssdp::{self, Engine, Output};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// UDA 1.1 §1.1.2: TTL for multicast SSDP defaults to 2.
const TTL: u32 = 2;
/// How often interfaces are looked at again (addresses come and go with DHCP).
const IFACE_POLL: Duration = Duration::from_secs(15);

/// The bound 1900 socket; created before the task starts so a bind failure is reported by the caller.
pub struct Discovery {
    socket: UdpSocket,
    senders: Vec<(Ipv4Addr, UdpSocket)>,
    ifaces: Vec<Iface>,
    scope: Option<Ipv4Addr>,
}

/// SO_REUSEADDR: another SSDP stack on the same host (a desktop's, MiniDLNA) may hold 1900 too; multicast
/// datagrams reach every such socket.
fn udp() -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Discovery {
    /// Bind the SSDP socket on `port` and join 239.255.255.250 on each LAN interface (only the one with address
    /// `scope` when set).
    pub fn bind(port: u16, scope: Option<Ipv4Addr>) -> std::io::Result<Discovery> {
        let s = udp()?;
        s.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)))?;
        s.set_multicast_loop_v4(true)?;
        let socket = UdpSocket::from_std(s.into())?;
        let mut d = Discovery { socket, senders: Vec::new(), ifaces: Vec::new(), scope };
        d.use_interfaces(lan::interfaces_in(scope));
        Ok(d)
    }

    fn use_interfaces(&mut self, ifaces: Vec<Iface>) {
        for old in &self.ifaces {
            if !ifaces.iter().any(|i| i.addr == old.addr) {
                let _ = self.socket.leave_multicast_v4(GROUP, old.addr);
            }
        }
        self.senders.clear();
        for i in &ifaces {
            if !self.ifaces.iter().any(|o| o.addr == i.addr)
                && let Err(e) = self.socket.join_multicast_v4(GROUP, i.addr)
            {
                tracing::warn!(iface = %i.name, addr = %i.addr, error = %e, "cannot join the SSDP group");
            }
            match sender(i.addr) {
                Ok(s) => self.senders.push((i.addr, s)),
                Err(e) => tracing::warn!(iface = %i.name, error = %e, "no SSDP send socket"),
            }
        }
        self.ifaces = ifaces;
    }

    async fn send(&self, out: Output) {
        let r = match &out {
            Output::Multicast { iface: IpAddr::V4(a), bytes } => match self.senders.iter().find(|(s, _)| s == a) {
                Some((_, s)) => s.send_to(bytes, SocketAddrV4::new(GROUP, ssdp::PORT)).await.map(|_| ()),
                None => Ok(()),
            },
            Output::Unicast { to, bytes, .. } => self.socket.send_to(bytes, to).await.map(|_| ()),
            Output::Multicast { .. } => Ok(()),
        };
        if let Err(e) = r {
            tracing::debug!(error = %e, "SSDP send failed");
        }
    }

    /// The interface address to put in LOCATION for an asker: the interface whose subnet holds it, else the
    /// address the kernel would send from (a connected UDP socket sends nothing).
    /// None when that is not one of our interfaces (then the search is not ours to answer).
    fn iface_for(&self, from: IpAddr) -> Option<IpAddr> {
        if let Some(i) = self.ifaces.iter().find(|i| i.net.contains(from)) {
            return Some(IpAddr::V4(i.addr));
        }
        let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        probe.connect(SocketAddr::new(from, ssdp::PORT)).ok()?;
        let local = probe.local_addr().ok()?.ip();
        self.ifaces.iter().find(|i| IpAddr::V4(i.addr) == local).map(|i| IpAddr::V4(i.addr))
    }

    /// Announce until `quit` fires (or its sender is dropped), then say byebye on every interface.
    pub async fn run(mut self, live: Arc<Live>, udn: String, mut quit: oneshot::Receiver<()>) {
        // BOOTID.UPNP.ORG: the start time in seconds (1 on a clock that reads 1970).
        let boot_id = crate::system::clock::now().max(1);
        let seed = u64::from_le_bytes(crate::system::random::bytes());
        let mut engine = Engine::new(&udn, super::http::PORT, crate::VERSION, boot_id, seed);
        engine.start(Instant::now(), self.ifaces.iter().map(|i| IpAddr::V4(i.addr)).collect());
        tracing::info!(interfaces = ?self.ifaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), "SSDP alive");
        let mut poll = tokio::time::interval(IFACE_POLL);
        poll.tick().await;
        let mut buf = vec![0u8; ssdp::MAX_DATAGRAM + 1];
        loop {
            while let Some(o) = engine.poll_output() {
                self.send(o).await;
            }
            let wake = engine.poll_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = r else { continue };
                    let ip = crate::system::dual_stack::canonical(from.ip());
                    if !live.admits_ssdp(ip) {
                        continue;
                    }
                    if let Some(iface) = self.iface_for(ip) {
                        engine.on_datagram(Instant::now(), iface, SocketAddr::new(ip, from.port()), &buf[..n]);
                    }
                }
                _ = async { if let Some(w) = wake { tokio::time::sleep_until(w).await } else { std::future::pending().await } } => {
                    engine.on_time(Instant::now());
                }
                _ = poll.tick() => {
                    let now = lan::interfaces_in(self.scope);
                    if now != self.ifaces {
                        tracing::info!(interfaces = ?now.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), "interfaces changed; announcing again");
                        engine.stop();
                        while let Some(o) = engine.poll_output() {
                            self.send(o).await;
                        }
                        self.use_interfaces(now);
                        engine.start(Instant::now(), self.ifaces.iter().map(|i| IpAddr::V4(i.addr)).collect());
                    }
                }
                _ = &mut quit => break,
            }
        }
        engine.stop();
        while let Some(o) = engine.poll_output() {
            self.send(o).await;
        }
        tracing::info!("SSDP byebye sent; port 1900 closed");
    }
}

fn sender(addr: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let s = udp()?;
    s.bind(&SockAddr::from(SocketAddrV4::new(addr, 0)))?;
    s.set_multicast_if_v4(&addr)?;
    s.set_multicast_ttl_v4(TTL)?;
    s.set_multicast_loop_v4(true)?;
    UdpSocket::from_std(s.into())
}
