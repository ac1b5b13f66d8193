//! Accounts, Home, PINs, friends, devices and tokens, API tokens, lockout, and the access rule.
//!
//! Owns: the meaning of the account part of the state (who may do what: [`access::decide`]), hashing of
//! passwords and PINs ([`secret`]), bearer tokens ([`token`]), failure counting ([`lockout`]), edits of
//! accounts/devices/tokens ([`home`]), runtime facts that are not worth a flash write per request (last-seen
//! times, flushed every [`LAST_SEEN_FLUSH`]; the server's own subnets), and owner recovery ([`recover`]).
//! Must not touch: sockets and HTTP framing (the http room calls in), the flash store (it goes through the
//! state handle), TLS (the http room), DLNA sockets (the DLNA room follows `dlna_effectively_on`).
//!
//! argon2id parameters (see [`secret`]): m = 19 MiB, t = 2, p = 1, 16-byte output; at most 2 hashes at once.
//! Measured (2025-11-25, shared 2-core Xeon host with other builds running):
//! - x86_64 host: verify median 71 ms, p90 95 ms; one hash grows peak RSS by 19,388 KiB
//!   (`cargo run -p hearth --example argon2_cost`; dependencies are optimised in every profile).
//! - aarch64 under qemu-user (TCG emulation, not a real board): median 366 ms (`scripts/argon2-qemu-aarch64`).
//!   A Cortex-A53 at 1.2 GHz is expected between the two; worst case ≈ 0.4 s per sign-in, 38 MiB peak for
//!   two concurrent hashes on a 1 GiB board.
//!
//! Origin (DESIGN.md "Origin"): a request is LAN when its source address is in `Settings.lan_networks`, or,
//! when that list is empty, in one of the server's own subnets (read with getifaddrs at start and every
//! [`SUBNETS_REFRESH`]); with "treat WAN IP as LAN", the server's own public address (from the last mapping)
//! counts as LAN too (hairpin NAT). IPv6 link-local and (without a list) unique-local sources are LAN by their
//! scope ([`lan_by_scope`]); a global IPv6 source is LAN only inside an on-link prefix of the box. X-Forwarded-For is believed only from `Settings.trusted_proxies`: the
//! client is the right-most address in the chain that is not itself a trusted proxy.

pub mod access;
pub mod doors;
pub mod home;
pub mod line;
pub mod lockout;
pub mod proof;
pub mod recover;
pub mod secret;
pub mod token;

#[cfg(test)]
mod one_rule_test;
#[cfg(test)]
mod table_test;

pub use access::{Access, Caller, Decision, Denial, Identity, Libraries, Origin, Section, Via, Visible, decide};

use crate::state::{DeviceId, Handle, Net, State, StateError, Time};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// Last-seen times are written to flash at most this often.
pub const LAST_SEEN_FLUSH: Duration = Duration::from_secs(600);
/// The server's own subnets are read again this often (DHCP may move the box).
pub const SUBNETS_REFRESH: Duration = Duration::from_secs(60);

/// Errors of the account API. Each is a status and a sentence a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the name or password is wrong")]
    WrongPassword,
    #[error("the PIN is wrong")]
    WrongPin,
    #[error("too many failed attempts; try again in {} seconds", .0.as_secs().max(1))]
    Locked(Duration),
    #[error(transparent)]
    Busy(#[from] secret::Busy),
    #[error(transparent)]
    State(#[from] StateError),
}

impl AuthError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::BadInput(_) => 400,
            AuthError::Conflict(_) => 409,
            AuthError::NotFound(_) => 404,
            AuthError::Forbidden(_) => 403,
            AuthError::WrongPassword | AuthError::WrongPin => 401,
            AuthError::Locked(_) => 429,
            AuthError::Busy(_) => 503,
            AuthError::State(e) => match e {
                StateError::Duplicate(_) | StateError::Full { .. } => 409,
                StateError::Missing { .. } => 404,
                _ => 400,
            },
        }
    }
}


/// The auth room's runtime part, shared by all requests.
#[derive(Default)]
pub struct Guard {
    /// The argon2id hasher threads and their fair line.
    pub hasher: secret::Hasher,
    /// Failure counters that slow down guessing.
    pub lockout: lockout::Lockout,
    seen: Mutex<HashMap<DeviceId, Time>>,
    subnets: RwLock<Vec<Net>>,
}

impl Guard {
    /// A guard with the server's own subnets read.
    pub fn new() -> Guard {
        let g = Guard::default();
        g.refresh_subnets();
        g
    }

    /// Read the server's own subnets again.
    pub fn refresh_subnets(&self) {
        *self.subnets.write().unwrap() = own_subnets();
    }

    /// The server's own subnets (counted as LAN when the owner set no LAN networks), as last read.
    pub fn subnets(&self) -> Vec<Net> {
        self.subnets.read().unwrap().clone()
    }

    /// Note that a device was used (RAM only).
    pub fn seen(&self, device: DeviceId) {
        self.seen.lock().unwrap().insert(device, crate::system::clock::now());
    }

    /// The last-seen time not yet written to flash, if any.
    pub fn last_seen(&self, device: DeviceId) -> Option<Time> {
        self.seen.lock().unwrap().get(&device).copied()
    }

    /// Write the collected last-seen times in one state update.
    pub async fn flush_last_seen(&self, state: &Handle) {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        if seen.is_empty() {
            return;
        }
        let r = state.update(|s| {
            home::apply_last_seen(s, &seen);
            Ok::<_, std::convert::Infallible>(())
        });
        if let Err(e) = r.await {
            tracing::warn!(error = %e, "last-seen times could not be saved");
        }
    }

    /// Where a request comes from.
    pub fn origin(&self, peer: IpAddr, forwarded_for: Option<&str>, state: &State) -> Result<Origin, Denied> {
        origin(peer, forwarded_for, state, &self.subnets.read().unwrap())
    }
}

/// A malformed X-Forwarded-For from a trusted proxy.
#[derive(Debug, PartialEq, Eq)]
pub struct Denied(pub &'static str);

/// Pure origin rule (see the module doc).
pub fn origin(peer: IpAddr, forwarded_for: Option<&str>, state: &State, own: &[Net]) -> Result<Origin, Denied> {
    let set = &state.settings;
    let canon = crate::system::dual_stack::canonical;
    let trusted = |ip: IpAddr| set.trusted_proxies.iter().any(|n| n.contains(ip));
    let mut addr = canon(peer);
    if trusted(addr)
        && let Some(chain) = forwarded_for
    {
        // De-facto X-Forwarded-For (cf. RFC 7239 §5.2 "for"): "client, proxy1, proxy2"; walk from the right.
        for hop in chain.rsplit(',') {
            let ip: IpAddr = hop
                .trim()
                .parse()
                .map_err(|_| Denied("the X-Forwarded-For header from the proxy is not a list of addresses"))?;
            addr = canon(ip);
            if !trusted(addr) {
                break;
            }
        }
    }
    let nets: &[Net] = if set.lan_networks.is_empty() { own } else { &set.lan_networks };
    let mut lan = nets.iter().any(|n| n.contains(addr)) || lan_by_scope(addr, set.lan_networks.is_empty());
    if !lan && set.treat_wan_ip_as_lan {
        lan = set.remote.last_mapping.as_ref().and_then(|m| m.external_addr).is_some_and(|a| canon(a) == addr);
    }
    Ok(Origin { addr, lan })
}

/// IPv6 addresses that are LAN by their scope, whatever the box's own prefixes: link-local `fe80::/10` (RFC
/// 4291 §2.5.6: a router never forwards it, so its sender is on one of our links) under any rule; unique-local
/// `fc00::/7` (RFC 4193 §1: a site's own space, not routed on the internet) under the default rule only, as an
/// owner who lists the LAN networks decides for ULA too. Global IPv6 addresses are LAN only inside an on-link
/// prefix of the box's interfaces ([`own_subnets`]) or a listed network; IPv4 has no scope rule here.
pub fn lan_by_scope(ip: IpAddr, default_rule: bool) -> bool {
    let IpAddr::V6(v6) = ip else { return false };
    let first = v6.segments()[0];
    (first & 0xffc0) == 0xfe80 || (default_rule && (first & 0xfe00) == 0xfc00)
}

/// The subnets of the interfaces that are up (loopback included: the box itself is local).
pub fn own_subnets() -> Vec<Net> {
    crate::system::ifaces::addresses()
        .into_iter()
        .filter(|a| a.up)
        .filter_map(|a| Some(Net { addr: a.addr, prefix: a.prefix? }))
        .collect()
}

/// Start the auth room's background duties: coarse last-seen flushes and subnet refreshes.
pub fn spawn_duties(guard: std::sync::Arc<Guard>, state: Handle) {
    tokio::spawn(async move {
        let mut flush = tokio::time::interval(LAST_SEEN_FLUSH);
        let mut nets = tokio::time::interval(SUBNETS_REFRESH);
        flush.tick().await;
        nets.tick().await;
        loop {
            tokio::select! {
                _ = flush.tick() => guard.flush_last_seen(&state).await,
                _ = nets.tick() => guard.refresh_subnets(),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Mapping, Secret};

    fn st() -> State {
        State::new([0; 16])
    }

    #[test]
    fn origin_default_own_subnets_and_settings() {
        let own = vec!["192.168.1.10/24".parse().unwrap(), "127.0.0.1/8".parse().unwrap()];
        let mut s = st();
        let o = |s: &State, p: &str, x: Option<&str>| origin(p.parse().unwrap(), x, s, &own);
        assert!(o(&s, "192.168.1.77", None).unwrap().lan);
        assert!(o(&s, "::ffff:192.168.1.77", None).unwrap().lan, "v4-mapped addresses count as v4");
        assert!(!o(&s, "203.0.113.9", None).unwrap().lan);
        // X-Forwarded-For is ignored from untrusted peers...
        assert!(o(&s, "127.0.0.1", Some("203.0.113.9")).unwrap().lan);
        // ...and believed from trusted proxies, right-most untrusted hop.
        s.settings.trusted_proxies.push("127.0.0.1/32".parse().unwrap()).unwrap();
        let r = o(&s, "127.0.0.1", Some("192.168.1.5, 203.0.113.9, 127.0.0.1")).unwrap();
        assert_eq!(r.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!r.lan);
        assert!(o(&s, "127.0.0.1", Some("not an address")).is_err());
        // Configured LAN networks replace the default.
        s.settings.lan_networks.push("10.0.0.0/8".parse().unwrap()).unwrap();
        assert!(!o(&s, "192.168.1.77", None).unwrap().lan);
        assert!(o(&s, "10.1.2.3", None).unwrap().lan);
        // Treat WAN IP as LAN: the server's own public address.
        s.settings.remote.last_mapping = Some(Mapping {
            method: crate::state::MappingMethod::NatPmp,
            gateway: "10.0.0.1".parse().unwrap(),
            external_addr: Some("198.51.100.4".parse().unwrap()),
            external_port: 32400,
            internal_port: 32400,
            lease_secs: 0,
            obtained: 0,
        });
        assert!(!o(&s, "198.51.100.4", None).unwrap().lan);
        s.settings.treat_wan_ip_as_lan = true;
        assert!(o(&s, "198.51.100.4", None).unwrap().lan);
    }

    #[test]
    fn ipv6_lan_is_link_local_unique_local_and_on_link_prefixes() {
        let own = vec!["192.168.1.10/24".parse().unwrap(), "2001:db8:77::10/64".parse().unwrap()];
        let mut s = st();
        let lan = |s: &State, p: &str| origin(p.parse().unwrap(), None, s, &own).unwrap().lan;
        assert!(lan(&s, "2001:db8:77::abcd"), "inside the box's on-link /64");
        assert!(lan(&s, "fe80::1:2"), "link-local");
        assert!(lan(&s, "fd12:3456::9"), "unique-local");
        assert!(!lan(&s, "2001:db8:11::7"), "a global address elsewhere");
        assert!(!lan(&s, "2001:db8:78::7"), "the next /64 is not on-link");
        // A listed LAN replaces the default: ULA is then LAN only when listed; link-local stays LAN.
        s.settings.lan_networks.push("10.0.0.0/8".parse().unwrap()).unwrap();
        assert!(!lan(&s, "fd12:3456::9"));
        assert!(!lan(&s, "2001:db8:77::abcd"));
        assert!(lan(&s, "fe80::1:2"));
    }

    #[tokio::test]
    async fn last_seen_stays_in_memory_until_one_coarse_flush() {
        use crate::store::{NorFile, Store};
        let dir = tempfile::tempdir().unwrap();
        let flash = NorFile::open_or_create(&dir.path().join("flash.img"), 128 * 1024, 4096).unwrap();
        let mut s = st();
        let owner = home::claim(&mut s, "ada".try_into().unwrap(), Secret { salt: [0; 16], hash: [0; 16] }, false, 0).unwrap();
        let client = token::Client { client: [1; 8], name: "tv".try_into().unwrap(), product: "p".try_into().unwrap() };
        let device = home::add_device(&mut s, owner, &client, token::mint().1, 0).unwrap();
        let handle = Handle::start(Store::format(flash).unwrap(), s);
        let guard = Guard::new();
        for _ in 0..1000 {
            guard.seen(device);
        }
        assert_eq!(handle.snapshot().devices[0].last_seen, 0, "requests do not write the state");
        assert!(guard.last_seen(device).unwrap() > 0, "but the time is known in memory");
        let writes = handle.store_stats();
        guard.flush_last_seen(&handle).await;
        assert!(handle.snapshot().devices[0].last_seen > 1_700_000_000);
        assert!(guard.last_seen(device).is_none());
        guard.flush_last_seen(&handle).await; // nothing new: no write
        assert_eq!(handle.store_stats().records_written, writes.records_written + 1, "one record for 1000 requests");
        handle.shutdown();
    }

    #[test]
    fn own_subnets_include_loopback() {
        let nets = own_subnets();
        assert!(nets.iter().any(|n| n.contains("127.0.0.1".parse().unwrap())), "{nets:?}");
    }
}
