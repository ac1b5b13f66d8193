//! Both address families on one listening socket, and the one place a source address is made canonical.
//!
//! Hearth listens on `[::]:32400` by default with `IPV6_V6ONLY` off (RFC 3493 §5.3): one socket takes IPv4
//! and IPv6 connections, so there is one accept loop, one per-source connection count and one listener probe,
//! and `--listen` keeps meaning one address. IPv4 peers then arrive as IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2); [`canonical`] turns those back into IPv4 so that every rule that
//! judges a source (the LAN rule, lockout sources, connection caps, DLNA's LAN-only door) sees the address
//! the client really has. A kernel without IPv6 (`ipv6.disable=1`, or a board kernel built without it)
//! cannot make an IPv6 socket: the default then falls back to `0.0.0.0` on the same port.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries; any other address as is.
/// Every place that judges a source address calls this (or receives an address that went through it).
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// [`canonical`] for a socket address (the port is kept).
pub fn canonical_socket(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}

/// Listen on `addr`. `[::]` is dual-stack (IPV6_V6ONLY off, whatever `net.ipv6.bindv6only` says); when the
/// kernel has no IPv6, `[::]:PORT` falls back to `0.0.0.0:PORT` (logged). Any other address binds as given.
/// SO_REUSEADDR and a backlog of 1024, as tokio's own `TcpListener::bind`.
pub fn bind(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    match open(addr) {
        Err(e) if addr.ip() == IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) && no_ipv6(&e) => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            tracing::warn!(error = %e, %v4, "this kernel has no IPv6; listening on IPv4 only");
            open(v4)
        }
        other => other,
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::EAFNOSUPPORT) | Some(nix::libc::EADDRNOTAVAIL))
}

fn open(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    // socket2 opens sockets close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(std::net::TcpListener::from(socket))
}

/// A loopback address of the family `listen` accepts, to reach our own listener (the listener probe):
/// the address itself when it is a specific one, else 127.0.0.1 (a dual-stack `[::]` takes IPv4 too).
pub fn own_loopback(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_become_ipv4() {
        let c = |s: &str| canonical(s.parse().unwrap()).to_string();
        assert_eq!(c("::ffff:192.168.1.7"), "192.168.1.7");
        assert_eq!(c("192.168.1.7"), "192.168.1.7");
        assert_eq!(c("2001:db8::7"), "2001:db8::7");
        // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1) is not mapped: left alone.
        assert_eq!(c("::192.168.1.7"), "::c0a8:107");
    }

    #[tokio::test]
    async fn the_default_takes_both_families_on_one_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = bind("[::]:0".parse().unwrap()).unwrap();
        let port = l.local_addr().unwrap().port();
        let v6_works = std::net::TcpStream::connect(("::1", port)).is_ok();
        if l.local_addr().unwrap().is_ipv4() || !v6_works {
            return; // no IPv6 on this host: the fallback was taken; nothing more to see
        }
        let mut c4 = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        c4.write_all(b"x").await.unwrap();
        let (_, _) = l.accept().await.unwrap(); // the ::1 connection above
        let (mut s, peer) = l.accept().await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert!(peer.is_ipv6(), "IPv4 arrives mapped on a dual-stack socket: {peer}");
        assert_eq!(canonical_socket(peer).ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
}
