//! GDM ("G'Day Mate"): Plex's LAN discovery on UDP 32414, so Plex apps and python-plexapi's
//! `GDM().scan()` find the server without being told its address.
//!
//! Owns: the sans-IO core ([`search`]: is it a search, the answer's bytes, the per-source and overall rates)
//! and its socket shell ([`run`]): UDP 32414 on the interface of `--listen` (every LAN interface when that is
//! unspecified), joined to 239.0.0.250, unicast answers from 32414. Runs only while the server is claimed
//! ([`run`] follows the state); whom it answers is the auth room's one rule (`Access::Gdm`: claimed, LAN
//! origin by the same rule as every port). A port someone else holds (a Plex Media Server on the same host)
//! leaves GDM off with one warning; it tries again every [`RETRY`].
//! Must not touch: accounts, tokens, the library, HTTP (it says the HTTP port, nothing more), the flash store.
//!
//! A room of its own rather than a part of `dlna`: it answers on its own port like SSDP, but it follows "claimed"
//! where DLNA follows "DLNA effectively on", it shows no library, and it belongs to the Plex client API's
//! discovery, not to UPnP. Its arrows: auth (the rule), state, system (interfaces, clock, watchdog).

pub mod search;

use crate::auth::Guard;
use crate::state::{Handle, State};
use crate::system::watchdog::Beat;
use search::{GROUP, Responder, Server, Silence};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// How long GDM waits before it tries a port that was taken again.
pub const RETRY: Duration = Duration::from_secs(30);
/// The heartbeat tick (twice a second, as DLNA's: fresh within the shortest watchdog half-timeout the tests use,
/// 1 s); the interfaces and the host name are looked at again every [`IFACE_POLL`].
const TICK: Duration = Duration::from_millis(500);
const IFACE_POLL: Duration = Duration::from_secs(15);

/// Start GDM beside the HTTP server: `listen` is the server's `--listen` address (its port is the one said in
/// answers), `udp_port` the GDM port (32414; 0 = off). `beat` (the watchdog's GDM heartbeat) is bumped twice
/// a second while GDM answers and rests while it is off.
pub fn spawn(
    state: Handle,
    guard: Arc<Guard>,
    listen: SocketAddr,
    http_port: u16,
    udp_port: u16,
    stop: watch::Receiver<bool>,
    beat: Beat,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state, guard, listen.ip(), http_port, udp_port, stop, beat))
}

/// Which IPv4 interface GDM stays on: `None` for every LAN interface (`--listen` unspecified), else the one
/// with this address. Err for an IPv6 `--listen` address (GDM is IPv4 only).
pub fn scope_of(listen: IpAddr) -> Result<Option<Ipv4Addr>, &'static str> {
    match crate::system::dual_stack::canonical(listen) {
        IpAddr::V4(a) if a.is_unspecified() => Ok(None),
        IpAddr::V4(a) => Ok(Some(a)),
        IpAddr::V6(a) if a.is_unspecified() => Ok(None),
        IpAddr::V6(_) => Err("GDM speaks IPv4 only and --listen names an IPv6 address"),
    }
}

/// Follow the state: answer while claimed, close the port when the claim is gone or `stop` turns true.
pub async fn run(
    state: Handle,
    guard: Arc<Guard>,
    listen: IpAddr,
    http_port: u16,
    udp_port: u16,
    mut stop: watch::Receiver<bool>,
    beat: Beat,
) {
    beat.rest();
    if udp_port == 0 {
        tracing::info!("GDM off (--gdm-port 0)");
        return;
    }
    let scope = match scope_of(listen) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(listen = %listen, "{why}; GDM discovery is off (Plex apps connect by address)");
            return;
        }
    };
    let mut rx = state.subscribe();
    let mut warned = false;
    loop {
        beat.rest();
        if !wait_until_claimed(&mut rx, &mut stop).await {
            return;
        }
        let sockets = match Sockets::bind(scope, udp_port) {
            Ok(s) => s,
            Err(e) => {
                if !warned {
                    tracing::warn!(port = udp_port, error = %e,
                        "GDM cannot bind its port (another Plex Media Server on this host?); discovery is off, Plex apps connect by address; trying again every 30 s");
                    warned = true;
                } else {
                    tracing::debug!(port = udp_port, error = %e, "GDM port still taken");
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    r = stop.changed() => if r.is_err() { return },
                }
                continue;
            }
        };
        warned = false;
        tracing::info!(port = udp_port, scope = ?scope, "GDM on");
        let ended = answer_while_claimed(sockets, &guard, http_port, &mut rx, &mut stop, &beat).await;
        tracing::info!(port = udp_port, "GDM off");
        if ended {
            beat.rest();
            return;
        }
    }
}

/// Off: wait until the server is claimed. `false` when the server stops (or the state is gone) first.
async fn wait_until_claimed(rx: &mut watch::Receiver<Arc<State>>, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        if rx.borrow_and_update().is_claimed() {
            return true;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return false },
            r = stop.changed() => if r.is_err() { return false },
        }
    }
}

/// The bound sockets: `main` receives searches (multicast, broadcast and unicast when unscoped) and sends every
/// answer; `group`, when scoped, receives the group's searches on the scope interface only.
struct Sockets {
    main: UdpSocket,
    group: Option<UdpSocket>,
    scope: Option<Ipv4Addr>,
    joined: Vec<Ipv4Addr>,
}

fn udp() -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Up, multicast-capable, non-loopback IPv4 addresses: where the unscoped socket joins the group.
fn lan_ipv4() -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = crate::system::ifaces::addresses()
        .into_iter()
        .filter(|a| a.up && a.multicast && !a.loopback)
        .filter_map(|a| match a.addr {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Sockets {
    /// No SO_REUSEADDR: a port another program holds is a clear "taken", not a silent share.
    fn bind(scope: Option<Ipv4Addr>, port: u16) -> std::io::Result<Sockets> {
        let main = udp()?;
        main.bind(&SockAddr::from(SocketAddrV4::new(scope.unwrap_or(Ipv4Addr::UNSPECIFIED), port)))?;
        let group = match scope {
            None => None,
            Some(addr) => {
                // Bound to the group's address: only datagrams sent to the group; joined on the scope
                // interface only, and (IP_MULTICAST_ALL off) not the memberships of other sockets.
                let g = udp()?;
                g.bind(&SockAddr::from(SocketAddrV4::new(GROUP, port)))?;
                let _ = g.set_multicast_all_v4(false);
                if let Err(e) = g.join_multicast_v4(&GROUP, &addr) {
                    tracing::warn!(addr = %addr, error = %e, "GDM cannot join 239.0.0.250 there; it answers unicast searches only");
                }
                Some(UdpSocket::from_std(g.into())?)
            }
        };
        let mut s = Sockets { main: UdpSocket::from_std(main.into())?, group, scope, joined: Vec::new() };
        s.join();
        Ok(s)
    }

    /// Unscoped: join the group on every LAN interface there is now (DHCP adds and moves them).
    fn join(&mut self) {
        if self.scope.is_some() {
            return;
        }
        let now = lan_ipv4();
        for old in &self.joined {
            if !now.contains(old) {
                let _ = self.main.leave_multicast_v4(GROUP, *old);
            }
        }
        for a in &now {
            if !self.joined.contains(a)
                && let Err(e) = self.main.join_multicast_v4(GROUP, *a)
            {
                tracing::debug!(addr = %a, error = %e, "GDM cannot join 239.0.0.250 on this interface");
            }
        }
        self.joined = now;
    }
}

fn host_name() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
}

/// On: answer searches until the claim is gone (`false`) or the server stops (`true`).
async fn answer_while_claimed(
    mut sockets: Sockets,
    guard: &Guard,
    http_port: u16,
    rx: &mut watch::Receiver<Arc<State>>,
    stop: &mut watch::Receiver<bool>,
    beat: &Beat,
) -> bool {
    let mut responder = Responder::new(Instant::now());
    let mut server = Server::new(&rx.borrow(), host_name(), http_port, crate::system::clock::unix_now());
    let mut tick = tokio::time::interval(TICK);
    let mut polled = Instant::now();
    let mut buf = vec![0u8; search::MAX_SEARCH + 1];
    let mut gbuf = vec![0u8; search::MAX_SEARCH + 1];
    loop {
        let got = tokio::select! {
            r = sockets.main.recv_from(&mut buf) => r.ok().map(|(n, from)| (n, from, false)),
            r = async { match &sockets.group { Some(g) => g.recv_from(&mut gbuf).await, None => std::future::pending().await } } => {
                r.ok().map(|(n, from)| (n, from, true))
            }
            _ = tick.tick() => {
                beat.bump();
                if polled.elapsed() >= IFACE_POLL {
                    polled = Instant::now();
                    sockets.join();
                    server.note(&rx.borrow(), host_name(), crate::system::clock::unix_now());
                }
                None
            }
            r = rx.changed() => {
                if r.is_err() {
                    return true;
                }
                let state = rx.borrow_and_update().clone();
                if !state.is_claimed() {
                    return false;
                }
                server.note(&state, server.host_name.clone(), crate::system::clock::unix_now());
                None
            }
            _ = stop.changed() => return true,
        };
        let Some((n, from, via_group)) = got else { continue };
        let datagram = if via_group { &gbuf[..n] } else { &buf[..n] };
        let state = rx.borrow().clone();
        let peer = crate::system::dual_stack::canonical(from.ip());
        // Without an X-Forwarded-For chain the origin rule cannot fail; stay silent if it ever does.
        let Ok(origin) = guard.origin(peer, None, &state) else { continue };
        match responder.on_datagram(Instant::now(), &origin, &state, &server, datagram) {
            Ok(answer) => {
                if let Err(e) = sockets.main.send_to(&answer, from).await {
                    tracing::debug!(to = %from, error = %e, "GDM answer not sent");
                }
            }
            Err(Silence::NotASearch) => {}
            Err(why) => tracing::debug!(from = %peer, ?why, "GDM search not answered"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Net;

    /// The GDM rule over the auth room's origin rule: answered only when claimed and the source is LAN by the
    /// rule every port uses (own subnets, the owner's LAN networks, "treat WAN IP as LAN").
    #[test]
    fn answered_only_when_claimed_and_lan_by_the_one_origin_rule() {
        let own: Vec<Net> = vec!["192.168.1.0/24".parse().unwrap(), "127.0.0.0/8".parse().unwrap()];
        let unclaimed = State::new([5; 16]);
        let mut claimed = unclaimed.clone();
        claimed.accounts.push(search::tests::owner()).unwrap();
        let mut listed = claimed.clone();
        listed.settings.lan_networks.push("10.0.0.0/8".parse().unwrap()).unwrap();
        let server = Server::new(&State::new([0xab; 16]), "nas".into(), 32400, 1);
        let cases = [
            (&unclaimed, "192.168.1.20", false),
            (&unclaimed, "127.0.0.1", false),
            (&claimed, "192.168.1.20", true),
            (&claimed, "127.0.0.1", true),
            (&claimed, "fe80::1", true),
            (&claimed, "203.0.113.7", false),
            (&claimed, "::ffff:203.0.113.7", false),
            (&listed, "10.1.2.3", true),
            (&listed, "192.168.1.20", false),
        ];
        for (state, src, answered) in cases {
            let mut r = Responder::new(Instant::now());
            let peer = crate::system::dual_stack::canonical(src.parse().unwrap());
            let origin = crate::auth::origin(peer, None, state, &own).unwrap();
            let got = r.on_datagram(Instant::now(), &origin, state, &server, b"M-SEARCH * HTTP/1.0");
            assert_eq!(got.is_ok(), answered, "claimed {}: {src}: {got:?}", state.is_claimed());
        }
    }

    #[test]
    fn scope_follows_the_listen_address() {
        assert_eq!(scope_of("0.0.0.0".parse().unwrap()), Ok(None));
        assert_eq!(scope_of("::".parse().unwrap()), Ok(None));
        assert_eq!(scope_of("192.168.1.5".parse().unwrap()), Ok(Some(Ipv4Addr::new(192, 168, 1, 5))));
        assert_eq!(scope_of("::ffff:192.168.1.5".parse().unwrap()), Ok(Some(Ipv4Addr::new(192, 168, 1, 5))));
        assert!(scope_of("2001:db8::5".parse().unwrap()).is_err());
    }
}
