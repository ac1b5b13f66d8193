//! The socket shell around [`super::announce`]: hears router announcements on the LAN interface.
//!
//! Two UDP sockets, each bound to its group address (not the wildcard), so only datagrams sent to the group
//! reach them: `224.0.0.1:5350` (PCP ANNOUNCE, RFC 6887 §14.1.3; NAT-PMP address announcements, RFC 6886
//! §3.2.1) and `239.255.255.250:1900` (SSDP NOTIFY, UPnP DA 1.1 §1.2.2). Both set SO_REUSEADDR: the DLNA room
//! holds `0.0.0.0:1900` in the same process, and other SSDP stacks may hold it too; every socket bound with it
//! gets its copy of a multicast datagram, and unicast searches to the DLNA socket are not taken from it.

use super::announce::{self, Heard};
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

/// The announcement sockets for one LAN address.
pub struct Listener {
    /// The LAN address the groups were joined on.
    pub local: Ipv4Addr,
    port_mapping: Option<UdpSocket>,
    ssdp: Option<UdpSocket>,
}

fn join(group: Ipv4Addr, port: u16, local: Ipv4Addr) -> std::io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SockAddr::from(SocketAddrV4::new(group, port)))?;
    s.join_multicast_v4(&group, &local)?;
    UdpSocket::from_std(s.into())
}

impl Listener {
    /// Join both groups on `local`; a socket that cannot be made is logged and left out (remote access
    /// then falls back to its periodic check for that kind of announcement).
    pub fn open(local: Ipv4Addr) -> Listener {
        let open = |group, port| match join(group, port, local) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(%group, port, error = %e, "cannot listen for router announcements");
                None
            }
        };
        Listener {
            local,
            port_mapping: open(announce::ALL_HOSTS, announce::CLIENT_PORT),
            ssdp: open(announce::SSDP_GROUP, announce::SSDP_PORT),
        }
    }

    /// The next announcement and who sent it; datagrams that are not announcements are skipped. Pending
    /// forever when neither socket could be made.
    pub async fn next(&self) -> (IpAddr, Heard) {
        let mut a = [0u8; 1100];
        let mut b = [0u8; announce::SSDP_MAX + 1];
        loop {
            let got = tokio::select! {
                r = recv(self.port_mapping.as_ref(), &mut a) => r.map(|(n, from)| (from, announce::parse_port_mapping(&a[..n]))),
                r = recv(self.ssdp.as_ref(), &mut b) => r.map(|(n, from)| (from, announce::parse_ssdp(&b[..n]))),
            };
            match got {
                Some((from, Ok(h))) => return (from, h),
                Some((from, Err(e))) => tracing::trace!(%from, error = %e, "not an announcement"),
                None => {}
            }
        }
    }
}

async fn recv(s: Option<&UdpSocket>, buf: &mut [u8]) -> Option<(usize, IpAddr)> {
    let Some(s) = s else { return std::future::pending().await };
    match s.recv_from(buf).await {
        Ok((n, from)) => Some((n, from.ip())),
        Err(e) => {
            tracing::debug!(error = %e, "announcement socket");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            None
        }
    }
}
