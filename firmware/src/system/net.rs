//! Network bring-up for init mode: interface flags, IPv4 address, default route, and a DHCP client.
//!
//! The DHCP exchange (RFC 2131 §3.1: DISCOVER → OFFER → REQUEST → ACK) is a sans-IO core of our own
//! ([`discover`], [`request`], [`Reply::parse`], [`Lease::from_ack`]); [`acquire`] is the thin blocking socket
//! shell. Interfaces are configured with the classic ioctls (SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFNETMASK,
//! SIOCADDRT).
//!
//! A DHCP message (RFC 2131 §2, Figure 1; big-endian), as we write and read it:
//!
//! ```text
//! offset  size  field
//!      0     1  op        1 BOOTREQUEST (ours), 2 BOOTREPLY (the server's)
//!      1     1  htype     1 (Ethernet)
//!      2     1  hlen      6
//!      3     1  hops      0
//!      4     4  xid       our transaction id; a reply with another is not ours
//!      8     2  secs      0
//!     10     2  flags     0x8000 BROADCAST (§4.1: we have no address yet, so answers are broadcast)
//!     12     4  ciaddr    0
//!     16     4  yiaddr    the address the server offers / grants
//!     20     4  siaddr    (unused)
//!     24     4  giaddr    (unused)
//!     28    16  chaddr    our MAC in the first 6 bytes, zero after
//!     44    64  sname     (unused, zero)
//!    108   128  file      (unused, zero)
//!    236     4  cookie    99.130.83.99 (RFC 2131 §3, RFC 2132 §2)
//!    240     …  options   code(1) len(1) value(len); 0 is one pad byte, 255 ends them (RFC 2132 §2-§3)
//! ```
//!
//! Options written: 53 message type, 12 host name, 55 parameter request list (1, 3, 6), and in a REQUEST 50
//! requested address and 54 server identifier. Options read: 53, 54, 1 subnet mask, 3 router (the first), 51
//! lease time. A reply that is short, lacks the cookie, or has an option running past the end is not a reply.
//! Option overload (52: options in `sname`/`file`) is not read; a server puts options there only when they do
//! not fit in a 576-byte message, which ours never ask for.

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

/// The magic cookie that starts the options (RFC 2131 §3).
const COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Where the options start: the fixed part (236 bytes) and the cookie.
const OPTIONS_AT: usize = 240;

/// Option codes (RFC 2132).
mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1; // §3.3
    pub const ROUTER: u8 = 3; // §3.5
    pub const DNS: u8 = 6; // §3.8
    pub const HOSTNAME: u8 = 12; // §3.14
    pub const REQUESTED_ADDRESS: u8 = 50; // §9.1
    pub const LEASE_TIME: u8 = 51; // §9.2
    pub const MESSAGE_TYPE: u8 = 53; // §9.6
    pub const SERVER_ID: u8 = 54; // §9.7
    pub const PARAMETER_LIST: u8 = 55; // §9.8
    pub const END: u8 = 255;
}

/// DHCP message types (RFC 2132 §9.6), the ones the client sends or acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Ack = 5,
    Nak = 6,
}

/// A BOOTREQUEST of `kind` from `mac` with the broadcast flag set, host name and parameter list, and `extra`
/// options (code, value) before the end.
fn client_message(kind: Kind, xid: u32, mac: [u8; 6], hostname: &str, extra: &[(u8, [u8; 4])]) -> Vec<u8> {
    let mut m = vec![0u8; OPTIONS_AT];
    m[..4].copy_from_slice(&[1, 1, 6, 0]);
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[10..12].copy_from_slice(&0x8000u16.to_be_bytes());
    m[28..34].copy_from_slice(&mac);
    m[236..240].copy_from_slice(&COOKIE);
    m.extend_from_slice(&[opt::MESSAGE_TYPE, 1, kind as u8]);
    // A host name longer than one option holds is cut (RFC 2132 §3.14: at least 1 byte; 255 at most).
    let name = &hostname.as_bytes()[..hostname.len().min(255)];
    if !name.is_empty() {
        m.extend_from_slice(&[opt::HOSTNAME, name.len() as u8]);
        m.extend_from_slice(name);
    }
    m.extend_from_slice(&[opt::PARAMETER_LIST, 3, opt::SUBNET_MASK, opt::ROUTER, opt::DNS]);
    for (code, value) in extra {
        m.extend_from_slice(&[*code, 4]);
        m.extend_from_slice(value);
    }
    m.push(opt::END);
    m
}

/// DHCPDISCOVER with the broadcast flag set: we have no address yet, so the server must broadcast its answer
/// (RFC 2131 §4.1, "BROADCAST bit").
pub fn discover(xid: u32, mac: [u8; 6], hostname: &str) -> Vec<u8> {
    client_message(Kind::Discover, xid, mac, hostname, &[])
}

/// DHCPREQUEST for an offer (RFC 2131 §3.1 step 3: 'requested IP address' and 'server identifier' set);
/// `None` for an offer without a server identifier (it cannot be requested).
pub fn request(xid: u32, mac: [u8; 6], hostname: &str, offer: &Reply) -> Option<Vec<u8>> {
    let server = offer.server?;
    let extra = [(opt::REQUESTED_ADDRESS, offer.yiaddr.octets()), (opt::SERVER_ID, server.octets())];
    Some(client_message(Kind::Request, xid, mac, hostname, &extra))
}

/// What the client reads from a server's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// `op` is BOOTREPLY (2).
    pub boot_reply: bool,
    pub xid: u32,
    /// The first 6 bytes of `chaddr`.
    pub chaddr: [u8; 6],
    pub yiaddr: Ipv4Addr,
    /// Option 53, the raw type (`None` when missing).
    pub kind: Option<u8>,
    /// Option 54.
    pub server: Option<Ipv4Addr>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3, the first router.
    pub router: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_secs: Option<u32>,
}

impl Reply {
    /// Read a DHCP message; `None` when it is not one (short, no cookie, an option past the end).
    pub fn parse(b: &[u8]) -> Option<Reply> {
        if b.len() < OPTIONS_AT || b[236..240] != COOKIE {
            return None;
        }
        let addr = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let mut r = Reply {
            boot_reply: b[0] == 2,
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            chaddr: b[28..34].try_into().ok()?,
            yiaddr: addr(16),
            kind: None,
            server: None,
            subnet_mask: None,
            router: None,
            lease_secs: None,
        };
        let mut at = OPTIONS_AT;
        while at < b.len() {
            let code = b[at];
            match code {
                opt::PAD => {
                    at += 1;
                    continue;
                }
                opt::END => return Some(r),
                _ => {}
            }
            let len = usize::from(*b.get(at + 1)?);
            let v = b.get(at + 2..at + 2 + len)?;
            let v4 = || v.get(..4).map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]));
            // RFC 2131 §4.1: the first instance of an option wins when a server repeats one.
            match code {
                opt::MESSAGE_TYPE if r.kind.is_none() => r.kind = v.first().copied(),
                opt::SERVER_ID if r.server.is_none() => r.server = v4(),
                opt::SUBNET_MASK if r.subnet_mask.is_none() => r.subnet_mask = v4(),
                opt::ROUTER if r.router.is_none() => r.router = v4(),
                opt::LEASE_TIME if r.lease_secs.is_none() => {
                    r.lease_secs = v.get(..4).map(|a| u32::from_be_bytes([a[0], a[1], a[2], a[3]]))
                }
                _ => {}
            }
            at += 2 + len;
        }
        // No END option: what was read is kept (some servers pad to the end without one).
        Some(r)
    }
}

/// Whether `m` is a server's answer of `kind` to our transaction.
pub fn is_reply(m: &Reply, xid: u32, mac: [u8; 6], kind: Kind) -> bool {
    m.boot_reply && m.xid == xid && m.chaddr == mac && m.kind == Some(kind as u8)
}

impl Lease {
    /// The lease a DHCPACK grants. A missing subnet mask means the class default is not guessed: /24.
    pub fn from_ack(ack: &Reply) -> Option<Lease> {
        if ack.yiaddr.is_unspecified() {
            return None;
        }
        Some(Lease {
            address: ack.yiaddr,
            prefix: ack.subnet_mask.map_or(24, |m| u32::from(m).count_ones() as u8),
            gateway: ack.router,
            lease_secs: ack.lease_secs,
            server: ack.server,
        })
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
    let mut offer: Option<Reply> = None;
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            let msg = match &offer {
                None => discover(xid, mac, hostname),
                Some(o) => request(xid, mac, hostname, o).ok_or_else(|| NetError::NoDhcp(interface.into()))?,
            };
            sock.send_to(&msg, to).map_err(io_err("send DHCP"))?;
            next_send = Instant::now() + Duration::from_millis(700);
        }
        let wait = next_send.min(deadline).saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        sock.set_read_timeout(Some(wait)).map_err(io_err("SO_RCVTIMEO"))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(io_err("receive DHCP")(e)),
        };
        let Some(m) = Reply::parse(&buf[..n]) else { continue };
        if offer.is_none() && is_reply(&m, xid, mac, Kind::Offer) {
            tracing::debug!(offered = %m.yiaddr, "DHCP offer");
            offer = Some(m);
            next_send = Instant::now();
        } else if offer.is_some() && is_reply(&m, xid, mac, Kind::Ack) {
            return Lease::from_ack(&m).ok_or_else(|| NetError::NoDhcp(interface.into()));
        } else if offer.is_some() && is_reply(&m, xid, mac, Kind::Nak) {
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

    /// A server's answer to `to` as RFC 2131 lays it out, written here byte by byte (not by the code under test).
    fn server_reply(to: &[u8], kind: Kind, options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 240];
        m[..4].copy_from_slice(&[2, 1, 6, 0]);
        m[4..8].copy_from_slice(&to[4..8]);
        m[16..20].copy_from_slice(&[10, 0, 2, 15]);
        m[28..44].copy_from_slice(&to[28..44]);
        m[236..240].copy_from_slice(&[99, 130, 83, 99]);
        m.extend_from_slice(&[53, 1, kind as u8]);
        m.extend_from_slice(options);
        m.push(255);
        m
    }

    const FULL: &[u8] = &[
        54, 4, 10, 0, 2, 2, // server identifier
        1, 4, 255, 255, 255, 0, // subnet mask
        0, 0, // pads
        3, 8, 10, 0, 2, 2, 10, 0, 2, 1, // two routers: the first is the gateway
        51, 4, 0, 1, 0x51, 0x80, // lease 86400 s
        12, 3, b'd', b'n', b's', // an option the client does not read
    ];

    /// The option with `code` in a message we wrote.
    fn option(m: &[u8], code: u8) -> Option<&[u8]> {
        let mut at = 240;
        while at < m.len() && m[at] != 255 {
            let len = m[at + 1] as usize;
            if m[at] == code {
                return Some(&m[at + 2..at + 2 + len]);
            }
            at += 2 + len;
        }
        None
    }

    #[test]
    fn discover_asks_for_a_broadcast_answer() {
        let d = discover(7, MAC, "hearth");
        // RFC 2131 §2: op=1 (BOOTREQUEST), htype=1, hlen=6; flags at offset 10, broadcast bit 0x8000.
        assert_eq!(&d[..3], &[1, 1, 6]);
        assert_eq!(&d[4..8], &7u32.to_be_bytes());
        assert_eq!(u16::from_be_bytes([d[10], d[11]]) & 0x8000, 0x8000);
        assert_eq!(&d[28..34], &MAC);
        assert!(d[34..236].iter().all(|&b| b == 0), "rest of chaddr, sname and file are zero");
        // Magic cookie 99.130.83.99 (RFC 2131 §3).
        assert_eq!(&d[236..240], &[99, 130, 83, 99]);
        assert_eq!(option(&d, 53), Some(&[1][..]), "DHCPDISCOVER");
        assert_eq!(option(&d, 12), Some(&b"hearth"[..]));
        assert_eq!(option(&d, 55), Some(&[1, 3, 6][..]));
        assert_eq!(d.last(), Some(&255), "options end");
    }

    #[test]
    fn offer_request_ack_gives_a_lease() {
        let d = discover(7, MAC, "hearth");
        let offer = Reply::parse(&server_reply(&d, Kind::Offer, FULL)).unwrap();
        assert!(is_reply(&offer, 7, MAC, Kind::Offer));
        assert!(!is_reply(&offer, 8, MAC, Kind::Offer), "another transaction's offer is ignored");
        assert!(!is_reply(&offer, 7, [2, 0, 0, 0, 0, 1], Kind::Offer), "another client's offer is ignored");
        assert!(!is_reply(&offer, 7, MAC, Kind::Ack), "an offer is not an ack");
        let req = request(7, MAC, "hearth", &offer).unwrap();
        assert_eq!(option(&req, 53), Some(&[3][..]), "DHCPREQUEST");
        assert_eq!(option(&req, 50), Some(&[10, 0, 2, 15][..]), "requested address: the offered one");
        assert_eq!(option(&req, 54), Some(&[10, 0, 2, 2][..]), "server identifier: the offering server");
        assert_eq!(&req[4..8], &7u32.to_be_bytes(), "same transaction");
        let ack = Reply::parse(&server_reply(&req, Kind::Ack, FULL)).unwrap();
        assert!(is_reply(&ack, 7, MAC, Kind::Ack));
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
        // A request's own message is not taken for a server's answer (op is BOOTREQUEST).
        assert!(!is_reply(&Reply::parse(&req).unwrap(), 7, MAC, Kind::Request));
    }

    #[test]
    fn an_ack_without_mask_router_or_lease_time_gives_a_24_and_no_gateway() {
        let d = discover(9, MAC, "hearth");
        let ack = Reply::parse(&server_reply(&d, Kind::Ack, &[54, 4, 192, 168, 1, 1])).unwrap();
        let lease = Lease::from_ack(&ack).unwrap();
        assert_eq!((lease.prefix, lease.gateway, lease.lease_secs), (24, None, None));
        let ack = Reply::parse(&server_reply(&d, Kind::Ack, &[1, 4, 255, 255, 240, 0])).unwrap();
        assert_eq!(Lease::from_ack(&ack).unwrap().prefix, 20);
    }

    #[test]
    fn an_offer_without_server_identifier_is_not_requested() {
        let d = discover(7, MAC, "hearth");
        let offer = Reply::parse(&server_reply(&d, Kind::Offer, &FULL[6..])).unwrap();
        assert!(request(7, MAC, "hearth", &offer).is_none());
    }

    #[test]
    fn malformed_messages_are_not_replies() {
        let d = discover(7, MAC, "hearth");
        let good = server_reply(&d, Kind::Offer, FULL);
        assert!(Reply::parse(&good[..239]).is_none(), "shorter than the fixed part and cookie");
        let mut bad = good.clone();
        bad[237] = 0;
        assert!(Reply::parse(&bad).is_none(), "wrong cookie");
        // An option whose length runs past the end of the datagram.
        let cut = &good[..240 + 3 + 2 + 2];
        assert!(Reply::parse(cut).is_none());
        // Every truncation of a good message either parses or is refused; none panics.
        for n in 0..good.len() {
            let _ = Reply::parse(&good[..n]);
        }
        // A short address option is read as missing, not as garbage.
        let r = Reply::parse(&server_reply(&d, Kind::Offer, &[54, 2, 10, 0])).unwrap();
        assert_eq!(r.server, None);
        // An ACK granting 0.0.0.0 is no lease.
        let mut zero = server_reply(&d, Kind::Ack, FULL);
        zero[16..20].fill(0);
        assert!(Lease::from_ack(&Reply::parse(&zero).unwrap()).is_none());
    }

    #[test]
    fn a_long_host_name_is_cut_to_one_option() {
        let name = "h".repeat(300);
        let d = discover(1, MAC, &name);
        assert_eq!(option(&d, 12).map(<[u8]>::len), Some(255));
        assert_eq!(option(&discover(1, MAC, ""), 12), None, "an empty name is left out (its minimum length is 1)");
    }
}
