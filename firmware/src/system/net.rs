//! Network bring-up for init mode: interface flags, IPv4 address, default route, and a DHCP client.
//!
//! The DHCP exchange (RFC 2131 §3.1: DISCOVER → OFFER → REQUEST → ACK) is a sans-IO core over dhcproto's
//! encoder ([`discover`], [`request`], [`Lease::from_ack`]); [`acquire`] is the thin blocking socket shell.
//! Interfaces are configured with the classic ioctls (SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFNETMASK, SIOCADDRT).

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use nix::libc;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// An address for the LAN interface, from DHCP or from the board's static fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The interface address.
    pub address: Ipv4Addr,
    /// The network prefix length.
    pub prefix: u8,
    /// The default gateway, when DHCP or the board gives one.
    pub gateway: Option<Ipv4Addr>,
    /// Seconds; `None` for a static address.
    pub lease_secs: Option<u32>,
    /// The DHCP server that gave the lease (its server identifier).
    pub server: Option<Ipv4Addr>,
}

/// Why the LAN interface could not be brought up; names the interface and the step.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("interface {0} did not appear (is its driver module in the board file?)")]
    NoInterface(String),
    #[error("{what} on {interface}: {source}")]
    Io { what: &'static str, interface: String, source: io::Error },
    #[error("no DHCP answer on {0}")]
    NoDhcp(String),
}

// ---- sans-IO DHCP core -------------------------------------------------------------------------------------

/// DHCPDISCOVER with the broadcast flag set: we have no address yet, so the server must broadcast its answer
/// (RFC 2131 §4.1, "BROADCAST bit").
pub fn discover(xid: u32, mac: [u8; 6], hostname: &str) -> Message {
    let mut m = Message::new_with_id(xid, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &mac);
    m.set_flags(Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Discover));
    m.opts_mut().insert(DhcpOption::Hostname(hostname.into()));
    m.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
    ]));
    m
}

/// DHCPREQUEST for an offer (RFC 2131 §3.1 step 3: 'requested IP address' and 'server identifier' set).
pub fn request(xid: u32, mac: [u8; 6], hostname: &str, offer: &Message) -> Option<Message> {
    let server = match offer.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => *s,
        _ => return None,
    };
    let mut m = discover(xid, mac, hostname);
    m.opts_mut().insert(DhcpOption::MessageType(MessageType::Request));
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(offer.yiaddr()));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    Some(m)
}

/// Whether `m` is a server's answer of `kind` to our transaction.
pub fn is_reply(m: &Message, xid: u32, mac: [u8; 6], kind: MessageType) -> bool {
    m.opcode() == Opcode::BootReply && m.xid() == xid && m.chaddr().get(..6) == Some(&mac[..]) && m.opts().has_msg_type(kind)
}

impl Lease {
    /// The lease a DHCPACK grants. A missing subnet mask means the class default is not guessed: /24.
    pub fn from_ack(ack: &Message) -> Option<Lease> {
        let address = ack.yiaddr();
        if address.is_unspecified() {
            return None;
        }
        let prefix = match ack.opts().get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(m)) => u32::from(*m).count_ones() as u8,
            _ => 24,
        };
        let gateway = match ack.opts().get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => r.first().copied(),
            _ => None,
        };
        let lease_secs = match ack.opts().get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
            _ => None,
        };
        let server = match ack.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
            _ => None,
        };
        Some(Lease { address, prefix, gateway, lease_secs, server })
    }
}

// ---- socket shell -----------------------------------------------------------------------------------------

/// Run DISCOVER/REQUEST on `interface` until `timeout` passes.
pub fn acquire(interface: &str, mac: [u8; 6], hostname: &str, timeout: Duration) -> Result<Lease, NetError> {
    let io_err = |what| move |source| NetError::Io { what, interface: interface.into(), source };
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)).map_err(io_err("bind UDP 68"))?;
    sock.set_broadcast(true).map_err(io_err("SO_BROADCAST"))?;
    nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::BindToDevice, &std::ffi::OsString::from(interface))
        .map_err(|e| NetError::Io { what: "SO_BINDTODEVICE", interface: interface.into(), source: e.into() })?;
    let deadline = Instant::now() + timeout;
    let to = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut buf = vec![0u8; 1500];
    let xid = u32::from_le_bytes(super::random::bytes());
    let mut offer: Option<Message> = None;
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            let msg = match &offer {
                None => discover(xid, mac, hostname),
                Some(o) => request(xid, mac, hostname, o).ok_or_else(|| NetError::NoDhcp(interface.into()))?,
            };
            let bytes = msg.to_vec().expect("DHCP message encodes");
            sock.send_to(&bytes, to).map_err(io_err("send DHCP"))?;
            next_send = Instant::now() + Duration::from_millis(700);
        }
        let wait = next_send.min(deadline).saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        sock.set_read_timeout(Some(wait)).map_err(io_err("SO_RCVTIMEO"))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(io_err("receive DHCP")(e)),
        };
        let Ok(m) = Message::from_bytes(&buf[..n]) else { continue };
        if offer.is_none() && is_reply(&m, xid, mac, MessageType::Offer) {
            tracing::debug!(offered = %m.yiaddr(), "DHCP offer");
            offer = Some(m);
            next_send = Instant::now();
        } else if offer.is_some() && is_reply(&m, xid, mac, MessageType::Ack) {
            return Lease::from_ack(&m).ok_or_else(|| NetError::NoDhcp(interface.into()));
        } else if offer.is_some() && is_reply(&m, xid, mac, MessageType::Nak) {
            offer = None; // RFC 2131 §3.1 step 5: NAK → restart with DISCOVER.
            next_send = Instant::now();
        }
    }
    Err(NetError::NoDhcp(interface.into()))
}

/// The interface's MAC address from sysfs.
pub fn mac_of(interface: &str) -> io::Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{interface}/address"))?;
    let mut mac = [0u8; 6];
    let parts: Vec<_> = text.trim().split(':').collect();
    if parts.len() != 6 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("MAC {text:?}")));
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("MAC {text:?}")))?;
    }
    Ok(mac)
}

/// Wait for a network interface to appear (its driver probes asynchronously after the module loads).
pub fn wait_for(interface: &str, timeout: Duration) -> Result<(), NetError> {
    let deadline = Instant::now() + timeout;
    let path = format!("/sys/class/net/{interface}");
    while !std::path::Path::new(&path).exists() {
        if Instant::now() >= deadline {
            return Err(NetError::NoInterface(interface.into()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn ifreq(interface: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut r: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in r.ifr_name.iter_mut().zip(interface.bytes().take(libc::IFNAMSIZ - 1)) {
        *d = s as libc::c_char;
    }
    r
}

fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the ioctl ABI passes addresses.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

// <linux/sockios.h>: the interface and routing ioctls, each typed with the struct it reads or writes, so a
// request cannot be handed the wrong struct (C-7: the hand-written wrapper took any pointer as a safe fn).
nix::ioctl_readwrite_bad!(siocgifflags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifaddr, libc::SIOCSIFADDR, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifnetmask, libc::SIOCSIFNETMASK, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocaddrt, libc::SIOCADDRT, RtEntry);

fn control_socket() -> io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
}

/// Set IFF_UP on an interface.
pub fn up(interface: &str) -> Result<(), NetError> {
    let err = |what| move |source| NetError::Io { what, interface: interface.into(), source };
    let sock = control_socket().map_err(err("control socket"))?;
    let mut r = ifreq(interface);
    let fd = sock.as_raw_fd();
    // SAFETY: `fd` is the open socket `sock`; SIOCGIFFLAGS reads and writes one ifreq, which `r` is, alive
    // and exclusively borrowed for the call.
    unsafe { siocgifflags(fd, &mut r) }.map_err(|e| err("SIOCGIFFLAGS")(e.into()))?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { r.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as for SIOCGIFFLAGS; SIOCSIFFLAGS only reads the ifreq.
    unsafe { siocsifflags(fd, &r) }.map(drop).map_err(|e| err("SIOCSIFFLAGS")(e.into()))
}

/// Linux's `struct rtentry` (<linux/route.h>); libc has it for musl only. Its layout is asserted below
/// (size and the offsets of the fields after padding), for 32- and 64-bit targets.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

// struct rtentry is 84 bytes on 32-bit Linux (armv7) and 120 on 64-bit (x86_64, aarch64): four c_ulong, two
// pointers, three 16-byte sockaddrs, two shorts each before a long or pointer (so padded), and rt_irtt.
const _: () = {
    let wide = cfg!(target_pointer_width = "64");
    assert!(std::mem::size_of::<RtEntry>() == if wide { 120 } else { 84 });
    assert!(std::mem::offset_of!(RtEntry, rt_flags) == if wide { 56 } else { 52 });
    assert!(std::mem::offset_of!(RtEntry, rt_pad3) == if wide { 64 } else { 56 });
    assert!(std::mem::offset_of!(RtEntry, rt_dev) == if wide { 88 } else { 68 });
    assert!(std::mem::offset_of!(RtEntry, rt_irtt) == if wide { 112 } else { 80 });
};
#[cfg(target_env = "musl")]
const _: () = assert!(std::mem::size_of::<RtEntry>() == std::mem::size_of::<libc::rtentry>());

const RTF_UP: libc::c_ushort = 0x0001;
const RTF_GATEWAY: libc::c_ushort = 0x0002;

/// Give the interface the lease's address and netmask, and a default route through its gateway.
pub fn configure(interface: &str, lease: &Lease) -> Result<(), NetError> {
    let err = |what| move |source| NetError::Io { what, interface: interface.into(), source };
    let sock = control_socket().map_err(err("control socket"))?;
    let fd = sock.as_raw_fd();
    let mut r = ifreq(interface);
    r.ifr_ifru.ifru_addr = sockaddr(lease.address);
    // SAFETY: `fd` is the open socket `sock`; SIOCSIFADDR reads one ifreq, which `r` is, alive for the call.
    unsafe { siocsifaddr(fd, &r) }.map_err(|e| err("SIOCSIFADDR")(e.into()))?;
    let mask = if lease.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(lease.prefix.min(32))) };
    let mut r = ifreq(interface);
    r.ifr_ifru.ifru_netmask = sockaddr(Ipv4Addr::from(mask));
    // SAFETY: as for SIOCSIFADDR.
    unsafe { siocsifnetmask(fd, &r) }.map_err(|e| err("SIOCSIFNETMASK")(e.into()))?;
    up(interface)?;
    if let Some(gw) = lease.gateway {
        let mut dev: Vec<u8> = interface.bytes().chain([0]).collect();
        let rt = RtEntry {
            rt_pad1: 0,
            rt_dst: sockaddr(Ipv4Addr::UNSPECIFIED),
            rt_gateway: sockaddr(gw),
            rt_genmask: sockaddr(Ipv4Addr::UNSPECIFIED),
            rt_flags: RTF_UP | RTF_GATEWAY,
            rt_pad2: 0,
            rt_pad3: 0,
            rt_pad4: std::ptr::null_mut(),
            rt_metric: 0,
            rt_dev: dev.as_mut_ptr() as *mut libc::c_char,
            rt_mtu: 0,
            rt_window: 0,
            rt_irtt: 0,
        };
        // SAFETY: `fd` is the open socket `sock`; SIOCADDRT reads one rtentry (its layout asserted above),
        // which `rt` is; `rt_dev` points into `dev`, a NUL-terminated name that outlives the call.
        match unsafe { siocaddrt(fd, &rt) } {
            Err(nix::errno::Errno::EEXIST) => {}
            other => other.map(drop).map_err(|e| err("SIOCADDRT default route")(e.into()))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn server_reply(to: &Message, kind: MessageType) -> Message {
        let mut m = Message::new_with_id(to.xid(), Ipv4Addr::UNSPECIFIED, "10.0.2.15".parse().unwrap(), Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, &MAC);
        m.set_opcode(Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut().insert(DhcpOption::ServerIdentifier("10.0.2.2".parse().unwrap()));
        m.opts_mut().insert(DhcpOption::SubnetMask("255.255.255.0".parse().unwrap()));
        m.opts_mut().insert(DhcpOption::Router(vec!["10.0.2.2".parse().unwrap()]));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(86400));
        m
    }

    #[test]
    fn discover_asks_for_a_broadcast_answer() {
        let d = discover(7, MAC, "hearth");
        let bytes = d.to_vec().unwrap();
        // RFC 2131 §2: op=1 (BOOTREQUEST), htype=1, hlen=6; flags at offset 10, broadcast bit 0x8000.
        assert_eq!(&bytes[..3], &[1, 1, 6]);
        assert_eq!(u16::from_be_bytes([bytes[10], bytes[11]]) & 0x8000, 0x8000);
        assert_eq!(&bytes[28..34], &MAC);
        // Magic cookie 99.130.83.99 (RFC 2131 §3).
        assert_eq!(&bytes[236..240], &[99, 130, 83, 99]);
        assert!(Message::from_bytes(&bytes).unwrap().opts().has_msg_type(MessageType::Discover));
    }

    #[test]
    fn offer_request_ack_gives_a_lease() {
        let d = discover(7, MAC, "hearth");
        let offer = server_reply(&d, MessageType::Offer);
        let offer = Message::from_bytes(&offer.to_vec().unwrap()).unwrap();
        assert!(is_reply(&offer, 7, MAC, MessageType::Offer));
        assert!(!is_reply(&offer, 8, MAC, MessageType::Offer), "another transaction's offer is ignored");
        let req = request(7, MAC, "hearth", &offer).unwrap();
        assert!(req.opts().has_msg_type(MessageType::Request));
        assert_eq!(req.opts().get(OptionCode::RequestedIpAddress), Some(&DhcpOption::RequestedIpAddress("10.0.2.15".parse().unwrap())));
        let ack = server_reply(&req, MessageType::Ack);
        let lease = Lease::from_ack(&ack).unwrap();
        assert_eq!(
            lease,
            Lease {
                address: "10.0.2.15".parse().unwrap(),
                prefix: 24,
                gateway: Some("10.0.2.2".parse().unwrap()),
                lease_secs: Some(86400),
                server: Some("10.0.2.2".parse().unwrap()),
            }
        );
    }

    #[test]
    fn an_offer_without_server_identifier_is_not_requested() {
        let d = discover(7, MAC, "hearth");
        let mut offer = server_reply(&d, MessageType::Offer);
        offer.opts_mut().remove(OptionCode::ServerIdentifier);
        assert!(request(7, MAC, "hearth", &offer).is_none());
    }
}
