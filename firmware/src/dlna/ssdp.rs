//! SSDP (UPnP Device Architecture 1.1 §1) as a sans-IO engine: datagrams and time in, datagrams and
//! deadlines out. The socket shell owns UDP 1900 and the multicast group; this file owns the rules.
//!
//! What the engine announces for one root device (UDA 1.1 §1.1.2, table 1-1): three messages for the root
//! device (`upnp:rootdevice`, `uuid:<udn>`, the device type) and one per service type.
//!
//! ```text
//! NOTIFY * HTTP/1.1                       HTTP/1.1 200 OK                 (M-SEARCH answer, unicast)
//! HOST: 239.255.255.250:1900              CACHE-CONTROL: max-age=1800
//! CACHE-CONTROL: max-age=1800             EXT:
//! LOCATION: http://<ip>:32469/desc.xml    LOCATION: ...
//! NT: <notification type>                 SERVER: ...
//! NTS: ssdp:alive | ssdp:byebye           ST: <search target>
//! SERVER: Linux/1 UPnP/1.1 Hearth/<v>     USN: <unique service name>
//! USN: uuid:<udn>[::<type>]               BOOTID.UPNP.ORG: <n>
//! BOOTID.UPNP.ORG: <n>                    CONFIGID.UPNP.ORG: 1
//! CONFIGID.UPNP.ORG: 1
//! ```

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The SSDP multicast group (UDA 1.1, discovery).
pub const MULTICAST_V4: [u8; 4] = [239, 255, 255, 250];
/// The SSDP port (UDA 1.1, discovery).
pub const PORT: u16 = 1900;
/// UDA 1.1 §1.2.2: max-age at least 1800 s.
pub const MAX_AGE: Duration = Duration::from_secs(1800);
/// Longest random delay before answering a multicast search (see `Engine::on_datagram`).
pub const SPREAD_CAP: Duration = Duration::from_millis(300);
/// Largest datagram we look at; real M-SEARCHes are a few hundred bytes.
pub const MAX_DATAGRAM: usize = 2048;

/// The device type Hearth announces and answers searches for.
pub const DEVICE_TYPE: &str = "urn:schemas-upnp-org:device:MediaServer:1";
/// The service types Hearth announces and answers searches for.
pub const SERVICE_TYPES: [&str; 2] =
    ["urn:schemas-upnp-org:service:ContentDirectory:1", "urn:schemas-upnp-org:service:ConnectionManager:1"];

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// To 239.255.255.250:1900 out of the interface with this address.
    Multicast { iface: IpAddr, bytes: Vec<u8> },
    /// To one asker, from the interface with this address.
    Unicast { iface: IpAddr, to: SocketAddr, bytes: Vec<u8> },
}

/// A parsed M-SEARCH (UDA 1.1 §1.3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// The search target (`ST`): `ssdp:all`, the root device, our UDN, the device type or a service type.
    pub st: String,
    /// None for a unicast search (answer at once).
    pub mx: Option<u32>,
}

/// Parse a datagram as an M-SEARCH. Anything else (NOTIFY from other devices, garbage) is None.
pub fn parse_search(bytes: &[u8]) -> Option<Search> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    if req.method != Some("M-SEARCH") || req.path != Some("*") {
        return None;
    }
    let get = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    // §1.3.2: MAN must be "ssdp:discover" (quoted).
    if get("MAN")? != "\"ssdp:discover\"" {
        return None;
    }
    let st = get("ST")?.to_string();
    if st.is_empty() || st.len() > 256 {
        return None;
    }
    let mx = match get("MX") {
        // §1.3.2: MX between 1 and 5; greater values are treated as 5. 0 or garbage: invalid.
        Some(v) => Some(v.parse::<u32>().ok().filter(|m| *m >= 1)?.min(5)),
        // §1.3.2: MX is required in a multicast search; only a unicast search (HOST = the device) omits it.
        // Without this check a multicast search without MX got every answer at once, with no spreading.
        None if get("HOST").is_some_and(|h| h.starts_with("239.255.255.250")) => return None,
        None => None,
    };
    Some(Search { st, mx })
}

/// The announced (NT or ST, USN) pairs of the root device.
pub fn targets(udn: &str) -> Vec<(String, String)> {
    let mut v = vec![
        ("upnp:rootdevice".to_string(), format!("uuid:{udn}::upnp:rootdevice")),
        (format!("uuid:{udn}"), format!("uuid:{udn}")),
        (DEVICE_TYPE.to_string(), format!("uuid:{udn}::{DEVICE_TYPE}")),
    ];
    for s in SERVICE_TYPES {
        v.push((s.to_string(), format!("uuid:{udn}::{s}")));
    }
    v
}

/// Which targets a search asks for (UDA 1.1 §1.3.2 ST values). A search for an older version of a type we
/// have is answered with our type (§1.3.2: "...shall respond with the version it supports").
pub fn matching(udn: &str, st: &str) -> Vec<(String, String)> {
    let all = targets(udn);
    if st == "ssdp:all" {
        return all;
    }
    all.into_iter()
        .filter(|(nt, _)| nt == st || same_type_older_version(st, nt))
        .map(|(nt, usn)| if nt.starts_with("urn:") { (st.to_string(), usn.replace(&nt, st)) } else { (nt, usn) })
        .collect()
}

fn same_type_older_version(st: &str, ours: &str) -> bool {
    let (Some((a, av)), Some((b, bv))) = (st.rsplit_once(':'), ours.rsplit_once(':')) else { return false };
    a == b && a.starts_with("urn:") && av.parse::<u32>().is_ok_and(|av| bv.parse::<u32>().is_ok_and(|bv| av >= 1 && av <= bv))
}

/// The SSDP state of one root device on a set of interfaces.
pub struct Engine {
    udn: String,
    port: u16,
    server: String,
    boot_id: u32,
    ifaces: Vec<IpAddr>,
    alive: bool,
    next_announce: Option<Instant>,
    /// Delayed answers to M-SEARCH, in the order they are due.
    pending: Vec<(Instant, Output)>,
    out: VecDeque<Output>,
    rng: u64,
}

impl Engine {
    /// `port` is where the description is served; `seed` drives the random delays.
    pub fn new(udn: &str, port: u16, version: &str, boot_id: u32, seed: u64) -> Engine {
        Engine {
            udn: udn.to_string(),
            port,
            server: format!("Linux/1 UPnP/1.1 Hearth/{version}"),
            boot_id,
            ifaces: Vec::new(),
            alive: false,
            next_announce: None,
            pending: Vec::new(),
            out: VecDeque::new(),
            rng: seed | 1,
        }
    }

    fn random(&mut self, below_ms: u64) -> Duration {
        // xorshift64*: only for spreading delays, not for secrets.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        Duration::from_millis(self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % below_ms.max(1))
    }

    fn location(&self, iface: IpAddr) -> String {
        match iface {
            IpAddr::V4(a) => format!("http://{a}:{}/description.xml", self.port),
            IpAddr::V6(a) => format!("http://[{a}]:{}/description.xml", self.port),
        }
    }

    fn notify(&self, iface: IpAddr, nt: &str, usn: &str, alive: bool) -> Vec<u8> {
        let mut m = String::with_capacity(400);
        m.push_str("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n");
        if alive {
            m.push_str(&format!("CACHE-CONTROL: max-age={}\r\n", MAX_AGE.as_secs()));
            m.push_str(&format!("LOCATION: {}\r\nSERVER: {}\r\n", self.location(iface), self.server));
        }
        m.push_str(&format!("NT: {nt}\r\nNTS: {}\r\nUSN: {usn}\r\n", if alive { "ssdp:alive" } else { "ssdp:byebye" }));
        m.push_str(&format!("BOOTID.UPNP.ORG: {}\r\nCONFIGID.UPNP.ORG: 1\r\n\r\n", self.boot_id));
        m.into_bytes()
    }

    fn answer(&self, iface: IpAddr, st: &str, usn: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age={}\r\nEXT:\r\nLOCATION: {}\r\nSERVER: {}\r\nST: {st}\r\nUSN: {usn}\r\n\
             BOOTID.UPNP.ORG: {}\r\nCONFIGID.UPNP.ORG: 1\r\nContent-Length: 0\r\n\r\n",
            MAX_AGE.as_secs(),
            self.location(iface),
            self.server,
            self.boot_id
        )
        .into_bytes()
    }

    fn announce_all(&mut self, alive: bool) {
        let targets = targets(&self.udn);
        for iface in self.ifaces.clone() {
            for (nt, usn) in &targets {
                let bytes = self.notify(iface, nt, usn, alive);
                self.out.push_back(Output::Multicast { iface, bytes });
            }
        }
    }

    /// Start announcing on these interfaces (UDA 1.1 §1.2.2: alive on start, repeated within max-age).
    pub fn start(&mut self, now: Instant, ifaces: Vec<IpAddr>) {
        self.ifaces = ifaces;
        self.alive = true;
        self.announce_all(true);
        // Repeat soon once more (UDP is lossy), then at random points well within max-age.
        self.next_announce = Some(now + Duration::from_secs(3) + self.random(2000));
    }

    /// Stop: byebye for every target (UDA 1.1 §1.2.3) and drop pending answers.
    pub fn stop(&mut self) {
        if self.alive {
            self.announce_all(false);
        }
        self.alive = false;
        self.pending.clear();
        self.next_announce = None;
    }

    /// Whether the engine is announcing (after start, before byebye).
    pub fn is_alive(&self) -> bool {
        self.alive
    }

    /// A datagram arrived on the interface with address `iface` from `from`. Searches from outside the LAN
    /// are filtered by the shell before this (the engine does not know the LAN networks).
    pub fn on_datagram(&mut self, now: Instant, iface: IpAddr, from: SocketAddr, bytes: &[u8]) {
        if !self.alive || bytes.len() > MAX_DATAGRAM {
            return;
        }
        let Some(search) = parse_search(bytes) else { return };
        let answers = matching(&self.udn, &search.st);
        // §1.3.3: answers SHOULD be delayed at random between 0 and MX seconds; unicast searches at once.
        // We spread over at most SPREAD_CAP: a home LAN has a handful of devices, TVs list servers as the
        // answers arrive, and scripts/bench-dlna measured the full MX spread as a 1 s median wait (MiniDLNA:
        // 22 ms, it does not wait at all).
        let spread = search.mx.map(|mx| (mx as u64 * 1000).min(SPREAD_CAP.as_millis() as u64)).unwrap_or(0);
        for (st, usn) in answers {
            let due = now + if spread > 0 { self.random(spread) } else { Duration::ZERO };
            let bytes = self.answer(iface, &st, &usn);
            let out = Output::Unicast { iface, to: from, bytes };
            // Bound the queue: a flood of searches must not grow memory without limit.
            if self.pending.len() >= 256 {
                return;
            }
            let at = self.pending.partition_point(|(t, _)| *t <= due);
            self.pending.insert(at, (due, out));
        }
    }

    /// Advance time: move due answers and announcements to the output queue.
    pub fn on_time(&mut self, now: Instant) {
        let due = self.pending.partition_point(|(t, _)| *t <= now);
        for (_, o) in self.pending.drain(..due) {
            self.out.push_back(o);
        }
        if let Some(t) = self.next_announce
            && t <= now
            && self.alive
        {
            self.announce_all(true);
            // Within max-age: every 1/4 of it, with jitter (clients drop us after max-age without a refresh).
            let quarter = MAX_AGE.as_millis() as u64 / 4;
            self.next_announce = Some(now + Duration::from_millis(quarter) - self.random(quarter / 4));
        }
    }

    /// The next datagram to send.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When `on_time` should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.first().map(|(t, _)| *t);
        match (pending, self.next_announce) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDN: &str = "4d696e69-444c-164e-9d41-b827eb000001";
    const LAN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 10));

    fn drain(e: &mut Engine) -> Vec<Output> {
        std::iter::from_fn(|| e.poll_output()).collect()
    }

    fn text(o: &Output) -> String {
        match o {
            Output::Multicast { bytes, .. } | Output::Unicast { bytes, .. } => String::from_utf8(bytes.clone()).unwrap(),
        }
    }

    // UDA 1.1 §1.3.2 example search.
    const SEARCH_ALL: &[u8] =
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: ssdp:all\r\n\r\n";

    #[test]
    fn parses_searches_per_uda_1_3_2() {
        assert_eq!(parse_search(SEARCH_ALL), Some(Search { st: "ssdp:all".into(), mx: Some(2) }));
        let big_mx = b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 120\r\nST: upnp:rootdevice\r\n\r\n";
        assert_eq!(parse_search(big_mx).unwrap().mx, Some(5), "MX above 5 counts as 5");
        let unicast = b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: upnp:rootdevice\r\n\r\n";
        assert_eq!(parse_search(unicast).unwrap().mx, None);
        for bad in [
            &b"M-SEARCH * HTTP/1.1\r\nMAN: ssdp:discover\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"[..],
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 0\r\nST: ssdp:all\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: -1\r\nST: ssdp:all\r\n\r\n",
            b"NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n\r\n",
            b"\xff\xfe garbage",
            b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n",
            b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nST: ssdp:all\r\n\r\n",
        ] {
            assert_eq!(parse_search(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn announces_every_target_on_every_interface_and_says_byebye() {
        let mut e = Engine::new(UDN, 32469, "0.1.0", 7, 1);
        let now = Instant::now();
        let v6: IpAddr = "fd00::10".parse().unwrap();
        e.start(now, vec![LAN, v6]);
        let out = drain(&mut e);
        assert_eq!(out.len(), 10, "5 targets on 2 interfaces");
        let first = text(&out[0]);
        assert!(first.starts_with("NOTIFY * HTTP/1.1\r\n"));
        assert!(first.contains("NTS: ssdp:alive\r\n") && first.contains("CACHE-CONTROL: max-age=1800\r\n"));
        assert!(first.contains("LOCATION: http://192.168.1.10:32469/description.xml\r\n"));
        assert!(text(&out[5]).contains("LOCATION: http://[fd00::10]:32469/description.xml\r\n"));
        let nts: Vec<String> = out.iter().take(5).map(text).collect();
        for (nt, usn) in targets(UDN) {
            assert!(nts.iter().any(|m| m.contains(&format!("NT: {nt}\r\n")) && m.contains(&format!("USN: {usn}\r\n"))));
        }
        // Re-announced before max-age runs out.
        let mut t = now;
        let mut announcements = 0;
        while t < now + MAX_AGE {
            t = e.poll_timeout().unwrap();
            e.on_time(t);
            announcements += drain(&mut e).len() / 10;
        }
        assert!(announcements >= 3, "{announcements} re-announcements within max-age");
        e.stop();
        let bye = drain(&mut e);
        assert_eq!(bye.len(), 10);
        assert!(bye.iter().all(|o| text(o).contains("NTS: ssdp:byebye\r\n") && !text(o).contains("LOCATION")));
        e.on_datagram(t, LAN, "192.168.1.20:5000".parse().unwrap(), SEARCH_ALL);
        e.on_time(t + Duration::from_secs(10));
        assert!(drain(&mut e).is_empty(), "a stopped server answers nothing");
    }

    #[test]
    fn answers_searches_unicast_within_mx() {
        let mut e = Engine::new(UDN, 32469, "0.1.0", 1, 42);
        let now = Instant::now();
        e.start(now, vec![LAN]);
        drain(&mut e);
        let asker: SocketAddr = "192.168.1.20:50000".parse().unwrap();
        e.on_datagram(now, LAN, asker, SEARCH_ALL);
        assert!(drain(&mut e).is_empty(), "not before the random delay");
        let mut answers = Vec::new();
        while let Some(t) = e.poll_timeout().filter(|t| *t <= now + SPREAD_CAP) {
            e.on_time(t);
            answers.extend(drain(&mut e));
        }
        assert_eq!(answers.len(), 5);
        for a in &answers {
            let Output::Unicast { to, .. } = a else { panic!("answers are unicast") };
            assert_eq!(*to, asker);
            let m = text(a);
            assert!(m.starts_with("HTTP/1.1 200 OK\r\n") && m.contains("EXT:\r\n"), "{m}");
        }

        let st = b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nST: urn:schemas-upnp-org:service:ContentDirectory:1\r\n\r\n";
        e.on_datagram(now, LAN, asker, st);
        e.on_time(now);
        let one = drain(&mut e);
        assert_eq!(one.len(), 1, "unicast search: at once, only the matching target");
        assert!(text(&one[0]).contains(&format!("USN: uuid:{UDN}::urn:schemas-upnp-org:service:ContentDirectory:1")));

        let uuid = format!("M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: uuid:{UDN}\r\n\r\n");
        e.on_datagram(now, LAN, asker, uuid.as_bytes());
        e.on_time(now + Duration::from_secs(1));
        assert_eq!(drain(&mut e).len(), 1);

        let other = b"M-SEARCH * HTTP/1.1\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:MediaRenderer:1\r\n\r\n";
        e.on_datagram(now, LAN, asker, other);
        e.on_time(now + Duration::from_secs(1));
        assert!(drain(&mut e).is_empty(), "not a renderer");
    }

    #[test]
    fn search_floods_and_garbage_stay_bounded() {
        let mut e = Engine::new(UDN, 32469, "0.1.0", 1, 9);
        let now = Instant::now();
        e.start(now, vec![LAN]);
        drain(&mut e);
        let asker: SocketAddr = "192.168.1.20:50000".parse().unwrap();
        let mut seed = 0x1234_5678_u64;
        for i in 0..10_000 {
            e.on_datagram(now, LAN, asker, SEARCH_ALL);
            // Random garbage, including truncated searches.
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut junk = SEARCH_ALL.to_vec();
            junk.truncate((seed >> 33) as usize % SEARCH_ALL.len());
            junk.push((seed >> 20) as u8);
            e.on_datagram(now, LAN, asker, &junk);
            if i % 1000 == 0 {
                e.on_datagram(now, LAN, asker, &vec![b'A'; MAX_DATAGRAM + 1]);
            }
        }
        assert!(e.pending.len() <= 260, "pending answers bounded: {}", e.pending.len());
    }

    #[test]
    fn older_versions_are_answered_with_ours() {
        let m = matching(UDN, "urn:schemas-upnp-org:device:MediaServer:1");
        assert_eq!(m.len(), 1);
        assert!(matching(UDN, "urn:schemas-upnp-org:device:MediaServer:2").is_empty());
        assert!(matching(UDN, "upnp:rootdevice")[0].1.ends_with("::upnp:rootdevice"));
    }
}
