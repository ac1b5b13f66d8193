//! Router announcements: the sans-IO parsers for what a gateway multicasts when it restarts or its address
//! changes, and the rule ([`Watch`]) that decides whether one means "map again now".
//!
//! Three kinds, all heard on the LAN (the socket shell in `remote::mod` listens; this file decides):
//!
//! ```text
//! PCP ANNOUNCE, unsolicited (RFC 6887 §14.1.3), to 224.0.0.1:5350, a 24-byte response header (§7.2):
//!  | vers=2 | R=1,opcode=0 (0x80) | reserved u8 | result u8 | lifetime u32 | epoch u32 | reserved (12) |
//!
//! NAT-PMP external address announcement (RFC 6886 §3.2.1), to 224.0.0.1:5350, 12 bytes:
//!  | vers=0 | op=128 | result u16 | epoch u32 | external IPv4 (4) |
//!
//! SSDP NOTIFY (UPnP Device Architecture 1.1 §1.2.2), to 239.255.255.250:1900, HTTP-like text:
//!  NOTIFY * HTTP/1.1
//!  NTS: ssdp:alive                       (ssdp:byebye and ssdp:update are not restarts)
//!  NT: upnp:rootdevice | urn:...:device:InternetGatewayDevice:N | ...
//!  USN: uuid:<device uuid>[::<NT>]
//!  BOOTID.UPNP.ORG: <n>                  (changes on every boot or re-announcement of the device, §1.2.2)
//! ```
//!
//! A gateway restart empties its mapping table (RFC 6887 §8.5, RFC 6886 §3.6): PCP and NAT-PMP say so by an
//! epoch that went back, UPnP by a new BOOTID or a new root device. Only the default route's gateway is
//! believed; the same message from any other address is ignored (a spoof from the LAN would otherwise make
//! us delete and re-make the mapping at will).

use super::pcp::{Epoch, NATPMP_VERSION, PCP_VERSION};
use core::net::{IpAddr, Ipv4Addr};

/// The port PCP and NAT-PMP clients listen on for announcements (RFC 6887 §19.1, RFC 6886 §3.2.1).
pub const CLIENT_PORT: u16 = 5350;
/// The all-hosts group the announcements go to (RFC 6887 §14.1.3, RFC 6886 §3.2.1).
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// The SSDP group and port (UPnP DA 1.1 §1.1.2).
pub const SSDP_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 255, 250);
/// The SSDP port.
pub const SSDP_PORT: u16 = 1900;
/// Longest SSDP message read; a NOTIFY is a few hundred bytes.
pub const SSDP_MAX: usize = 2048;
/// Longest device uuid kept (UUIDs are 36 characters; a router's may carry a prefix).
const UUID_MAX: usize = 128;

/// One announcement, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// A PCP ANNOUNCE with the gateway's epoch (seconds since its mapping state began).
    Pcp { epoch: u32 },
    /// A NAT-PMP address announcement: the epoch and the external address.
    NatPmp { epoch: u32, external: Ipv4Addr },
    /// An SSDP `ssdp:alive` of a device: its uuid, BOOTID.UPNP.ORG (absent from UPnP 1.0 devices), and
    /// whether it announces the root device (`NT: upnp:rootdevice`; the embedded devices have their own uuids).
    Ssdp { uuid: String, boot_id: Option<u32>, root: bool },
}

/// Why a datagram is not an announcement we act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotAnnouncement {
    #[error("{0} bytes is not an announcement")]
    Length(usize),
    #[error("version {0} is neither PCP nor NAT-PMP")]
    Version(u8),
    #[error("opcode {0:#04x} is not an announcement")]
    Opcode(u8),
    #[error("result {0} is not success")]
    Result(u16),
    #[error("not an SSDP NOTIFY ssdp:alive")]
    NotAlive,
    #[error("the NOTIFY has no usable USN uuid")]
    NoUuid,
}

/// Decode a datagram heard on [`CLIENT_PORT`]: a PCP ANNOUNCE or a NAT-PMP address announcement.
pub fn parse_port_mapping(b: &[u8]) -> Result<Heard, NotAnnouncement> {
    match b.first() {
        Some(&PCP_VERSION) => {
            // RFC 6887 §7.2: the header is 24 bytes; ANNOUNCE has no payload but may carry options.
            if b.len() < 24 || b.len() > 1100 {
                return Err(NotAnnouncement::Length(b.len()));
            }
            if b[1] != 0x80 {
                return Err(NotAnnouncement::Opcode(b[1]));
            }
            if b[3] != 0 {
                return Err(NotAnnouncement::Result(b[3] as u16));
            }
            Ok(Heard::Pcp { epoch: u32::from_be_bytes([b[8], b[9], b[10], b[11]]) })
        }
        Some(&NATPMP_VERSION) => {
            // RFC 6886 §3.2.1: the announcement is the 12-byte external address response.
            if b.len() < 12 {
                return Err(NotAnnouncement::Length(b.len()));
            }
            if b[1] != 128 {
                return Err(NotAnnouncement::Opcode(b[1]));
            }
            let result = u16::from_be_bytes([b[2], b[3]]);
            if result != 0 {
                return Err(NotAnnouncement::Result(result));
            }
            let epoch = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            Ok(Heard::NatPmp { epoch, external: Ipv4Addr::new(b[8], b[9], b[10], b[11]) })
        }
        Some(&v) => Err(NotAnnouncement::Version(v)),
        None => Err(NotAnnouncement::Length(0)),
    }
}

/// Decode an SSDP datagram: `Ok` only for `NOTIFY * HTTP/1.1` with `NTS: ssdp:alive` and a `USN: uuid:…`
/// (UPnP DA 1.1 §1.2.2). Header names are case-insensitive (§1.1.2, as HTTP's).
pub fn parse_ssdp(b: &[u8]) -> Result<Heard, NotAnnouncement> {
    if b.len() > SSDP_MAX {
        return Err(NotAnnouncement::Length(b.len()));
    }
    let text = core::str::from_utf8(b).map_err(|_| NotAnnouncement::NotAlive)?;
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let start = lines.next().unwrap_or("");
    if !start.trim_end().eq_ignore_ascii_case("NOTIFY * HTTP/1.1") {
        return Err(NotAnnouncement::NotAlive);
    }
    let (mut alive, mut uuid, mut boot_id, mut root) = (false, None, None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("NT") {
            root = value.eq_ignore_ascii_case("upnp:rootdevice");
        } else if name.eq_ignore_ascii_case("NTS") {
            alive = value.eq_ignore_ascii_case("ssdp:alive");
        } else if name.eq_ignore_ascii_case("USN") {
            let rest = value.get(..5).filter(|p| p.eq_ignore_ascii_case("uuid:")).map(|_| &value[5..]);
            let id = rest.map(|r| r.split("::").next().unwrap_or(""));
            uuid = id.filter(|u| !u.is_empty() && u.len() <= UUID_MAX && u.bytes().all(|c| c.is_ascii_graphic()));
        } else if name.eq_ignore_ascii_case("BOOTID.UPNP.ORG") {
            // §1.2.2: a non-negative 31-bit integer.
            boot_id = value.parse::<u32>().ok().filter(|n| *n <= i32::MAX as u32);
        }
    }
    if !alive {
        return Err(NotAnnouncement::NotAlive);
    }
    let uuid = uuid.ok_or(NotAnnouncement::NoUuid)?.to_ascii_lowercase();
    Ok(Heard::Ssdp { uuid, boot_id, root })
}

/// What to do about an announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not from the gateway: ignored, whatever it says.
    Stranger,
    /// From the gateway, and nothing it says means our mapping is gone.
    Nothing,
    /// The gateway restarted or changed address: check the mapping again now. The text says what was heard,
    /// for the status ("checking again…") and the log.
    Recheck(String),
}

/// After a restart is taken, further news within this many seconds only updates what we know: a router
/// announces its return several ways at once (PCP, NAT-PMP, SSDP for each of its devices), and one re-map
/// answers them all.
pub const SETTLE_SECS: u64 = 10;

/// What we know of the gateway's announcements: its address, the epoch its last PCP/NAT-PMP message
/// carried, its external address, the uuid of its root device and its BOOTID.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    gateway: Option<Ipv4Addr>,
    epoch: Epoch,
    epoch_seen: bool,
    external: Option<Ipv4Addr>,
    root: Option<String>,
    boot_id: Option<u32>,
    quiet_until: u64,
}

impl Watch {
    /// Follow `gateway`; a new gateway forgets what the old one said. `epoch` is the one the mapping's own
    /// replies carried (PCP, NAT-PMP), so a restart's epoch is compared with it.
    pub fn follow(&mut self, gateway: Ipv4Addr, epoch: Option<Epoch>, external: Option<IpAddr>) {
        if self.gateway != Some(gateway) {
            *self = Watch { gateway: Some(gateway), ..Watch::default() };
        }
        if let Some(e) = epoch {
            self.epoch = e;
            self.epoch_seen = true;
        }
        if let Some(IpAddr::V4(v4)) = external {
            self.external = Some(v4);
        }
    }

    /// Judge one announcement from `from`, heard at local time `now_secs`.
    pub fn hear(&mut self, from: IpAddr, heard: Heard, now_secs: u64) -> Verdict {
        let Some(gw) = self.gateway.filter(|g| from == IpAddr::V4(*g)) else {
            return Verdict::Stranger;
        };
        match self.judge(gw, heard, now_secs) {
            Verdict::Recheck(_) if now_secs < self.quiet_until => Verdict::Nothing,
            Verdict::Recheck(what) => {
                self.quiet_until = now_secs + SETTLE_SECS;
                Verdict::Recheck(what)
            }
            v => v,
        }
    }

    fn judge(&mut self, gw: Ipv4Addr, heard: Heard, now_secs: u64) -> Verdict {
        match heard {
            // RFC 6887 §14.1.3 / RFC 6886 §3.2.1: sent when the gateway (re)starts or its address changes.
            // Without an epoch to compare with, it is a restart; with one, §8.5 decides.
            Heard::Pcp { epoch } => self.epoch_says(epoch, now_secs, format!("PCP ANNOUNCE from {gw}, epoch {epoch}")),
            Heard::NatPmp { epoch, external } => {
                let moved = self.external.is_some_and(|e| e != external);
                self.external = Some(external);
                let what = format!("NAT-PMP announcement from {gw}, epoch {epoch}, external address {external}");
                match self.epoch_says(epoch, now_secs, what.clone()) {
                    Verdict::Nothing if moved => Verdict::Recheck(what),
                    v => v,
                }
            }
            // UPnP DA 1.1 §1.2.2: a new BOOTID means the device rebooted (or re-announced after a change);
            // a root device with a new uuid is a new router. The first alive heard is the baseline.
            Heard::Ssdp { uuid, boot_id, root } => {
                let rebooted = matches!((self.boot_id, boot_id), (Some(old), Some(new)) if old != new);
                let replaced = root && self.root.as_ref().is_some_and(|r| *r != uuid);
                let what = format!("SSDP alive from {gw}, device uuid:{uuid}, BOOTID {}", boot_id.map_or("none".into(), |b| b.to_string()));
                self.boot_id = boot_id.or(self.boot_id);
                if root {
                    self.root = Some(uuid);
                }
                if rebooted || replaced { Verdict::Recheck(what) } else { Verdict::Nothing }
            }
        }
    }

    fn epoch_says(&mut self, epoch: u32, now_secs: u64, what: String) -> Verdict {
        let lost = self.epoch.observe(epoch, now_secs);
        let first = !self.epoch_seen;
        self.epoch_seen = true;
        if lost || first { Verdict::Recheck(what) } else { Verdict::Nothing }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6887 §7.2 header, R=1 opcode ANNOUNCE (0), result SUCCESS, lifetime 0, epoch 3.
    const PCP_ANNOUNCE: [u8; 24] = [2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    /// RFC 6886 §3.2.1: version 0, op 128, result 0, epoch 2, external 11.0.0.2.
    const NATPMP_ANNOUNCE: [u8; 12] = [0, 128, 0, 0, 0, 0, 0, 2, 11, 0, 0, 2];
    /// As miniupnpd 2.3.1 sends it on start (UPnP DA 1.1 §1.2.2 layout).
    const NOTIFY: &str = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n\
        LOCATION: http://192.168.77.1:5000/rootDesc.xml\r\nSERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\n\
        NT: upnp:rootdevice\r\nUSN: uuid:3e1f4a52-6c1b-4c7e-9a52-1d2c3b4a5f60::upnp:rootdevice\r\nNTS: ssdp:alive\r\n\
        OPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n01-NLS: 1733350000\r\nBOOTID.UPNP.ORG: 1733350000\r\n\
        CONFIGID.UPNP.ORG: 1337\r\n\r\n";

    fn gw() -> IpAddr {
        "192.168.77.1".parse().unwrap()
    }

    #[test]
    fn the_three_announcements_decode() {
        assert_eq!(parse_port_mapping(&PCP_ANNOUNCE), Ok(Heard::Pcp { epoch: 3 }));
        assert_eq!(parse_port_mapping(&NATPMP_ANNOUNCE), Ok(Heard::NatPmp { epoch: 2, external: Ipv4Addr::new(11, 0, 0, 2) }));
        let uuid = "3e1f4a52-6c1b-4c7e-9a52-1d2c3b4a5f60".to_string();
        assert_eq!(parse_ssdp(NOTIFY.as_bytes()), Ok(Heard::Ssdp { uuid, boot_id: Some(1733350000), root: true }));
        let embedded = NOTIFY.replace("NT: upnp:rootdevice", "NT: urn:schemas-upnp-org:device:WANDevice:1");
        assert!(matches!(parse_ssdp(embedded.as_bytes()), Ok(Heard::Ssdp { root: false, .. })));
    }

    #[test]
    fn other_datagrams_are_not_announcements() {
        // A PCP MAP response (opcode 0x81) and an error ANNOUNCE.
        let mut map = PCP_ANNOUNCE;
        map[1] = 0x81;
        assert_eq!(parse_port_mapping(&map), Err(NotAnnouncement::Opcode(0x81)));
        let mut err = PCP_ANNOUNCE;
        err[3] = 7;
        assert_eq!(parse_port_mapping(&err), Err(NotAnnouncement::Result(7)));
        assert_eq!(parse_port_mapping(&PCP_ANNOUNCE[..23]), Err(NotAnnouncement::Length(23)));
        assert_eq!(parse_port_mapping(&NATPMP_ANNOUNCE[..8]), Err(NotAnnouncement::Length(8)));
        assert_eq!(parse_port_mapping(&[1, 128]), Err(NotAnnouncement::Version(1)));
        assert_eq!(parse_port_mapping(&[]), Err(NotAnnouncement::Length(0)));
        let byebye = NOTIFY.replace("ssdp:alive", "ssdp:byebye");
        assert_eq!(parse_ssdp(byebye.as_bytes()), Err(NotAnnouncement::NotAlive));
        let search = NOTIFY.replace("NOTIFY * HTTP/1.1", "M-SEARCH * HTTP/1.1");
        assert_eq!(parse_ssdp(search.as_bytes()), Err(NotAnnouncement::NotAlive));
        let no_uuid = NOTIFY.replace("USN: uuid:", "USN: ");
        assert_eq!(parse_ssdp(no_uuid.as_bytes()), Err(NotAnnouncement::NoUuid));
        // A UPnP 1.0 device has no BOOTID.
        let old = NOTIFY.replace("BOOTID.UPNP.ORG: 1733350000\r\n", "");
        assert!(matches!(parse_ssdp(old.as_bytes()), Ok(Heard::Ssdp { boot_id: None, .. })));
    }

    #[test]
    fn a_restart_announced_by_the_gateway_means_recheck() {
        let mut w = Watch::default();
        let mut mapped = Epoch::default();
        mapped.observe(500, 1000);
        w.follow(Ipv4Addr::new(192, 168, 77, 1), Some(mapped), Some("11.0.0.2".parse().unwrap()));
        // The epoch went from 500 (at our 1000) to 3 (at our 1010): the router restarted (RFC 6887 §8.5).
        assert!(matches!(w.hear(gw(), Heard::Pcp { epoch: 3 }, 1010), Verdict::Recheck(s) if s.contains("PCP ANNOUNCE")));
        // Its NAT-PMP twin a moment later says the same epoch: nothing new.
        let again = Heard::NatPmp { epoch: 3, external: Ipv4Addr::new(11, 0, 0, 2) };
        assert_eq!(w.hear(gw(), again, 1010), Verdict::Nothing);
        // A new external address is news even when the epoch runs on (after the settling time).
        let moved = Heard::NatPmp { epoch: 23, external: Ipv4Addr::new(11, 0, 0, 9) };
        assert!(matches!(w.hear(gw(), moved, 1030), Verdict::Recheck(s) if s.contains("11.0.0.9")));
    }

    #[test]
    fn without_an_epoch_any_pcp_announcement_is_a_restart() {
        // An IGD mapping carries no epoch: the first ANNOUNCE is taken as the restart it announces.
        let mut w = Watch::default();
        w.follow(Ipv4Addr::new(192, 168, 77, 1), None, None);
        assert!(matches!(w.hear(gw(), Heard::Pcp { epoch: 0 }, 50), Verdict::Recheck(_)));
        assert_eq!(w.hear(gw(), Heard::Pcp { epoch: 1 }, 51), Verdict::Nothing);
        // The same return told by SSDP (a BOOTID after the baseline) within the settling time: one re-map.
        assert_eq!(w.hear(gw(), Heard::Ssdp { uuid: "a".into(), boot_id: Some(1), root: true }, 40), Verdict::Nothing);
        assert_eq!(w.hear(gw(), Heard::Ssdp { uuid: "a".into(), boot_id: Some(2), root: true }, 52), Verdict::Nothing);
    }

    #[test]
    fn ssdp_bootid_changes_and_new_root_devices_mean_recheck() {
        let mut w = Watch::default();
        w.follow(Ipv4Addr::new(192, 168, 77, 1), None, None);
        let alive = |u: &str, b, root| Heard::Ssdp { uuid: u.into(), boot_id: Some(b), root };
        assert_eq!(w.hear(gw(), alive("a", 7, true), 0), Verdict::Nothing, "the first alive is the baseline");
        // miniupnpd's embedded devices (WANDevice, WANConnectionDevice) have uuids of their own.
        assert_eq!(w.hear(gw(), alive("a1", 7, false), 0), Verdict::Nothing, "an embedded device");
        assert_eq!(w.hear(gw(), alive("a", 7, true), 30), Verdict::Nothing, "a periodic alive");
        assert!(matches!(w.hear(gw(), alive("a2", 8, false), 60), Verdict::Recheck(s) if s.contains("BOOTID 8")));
        assert_eq!(w.hear(gw(), alive("a", 8, true), 61), Verdict::Nothing, "the same reboot, told again");
        assert!(matches!(w.hear(gw(), alive("b", 8, true), 90), Verdict::Recheck(s) if s.contains("uuid:b")), "a new router");
    }

    #[test]
    fn spoofed_announcements_from_elsewhere_are_ignored() {
        let mut w = Watch::default();
        w.follow(Ipv4Addr::new(192, 168, 77, 1), None, None);
        let stranger: IpAddr = "192.168.77.66".parse().unwrap();
        assert_eq!(w.hear(stranger, Heard::Pcp { epoch: 0 }, 5), Verdict::Stranger);
        let nat = Heard::NatPmp { epoch: 0, external: Ipv4Addr::new(6, 6, 6, 6) };
        assert_eq!(w.hear(stranger, nat, 5), Verdict::Stranger);
        w.hear(gw(), Heard::Ssdp { uuid: "a".into(), boot_id: Some(1), root: true }, 5);
        assert_eq!(w.hear(stranger, Heard::Ssdp { uuid: "a".into(), boot_id: Some(2), root: true }, 6), Verdict::Stranger);
        // And the gateway's own baseline is untouched by the stranger.
        assert_eq!(w.hear(gw(), Heard::Ssdp { uuid: "a".into(), boot_id: Some(1), root: true }, 7), Verdict::Nothing);
        // Without a gateway nothing is believed.
        assert_eq!(Watch::default().hear(gw(), Heard::Pcp { epoch: 0 }, 5), Verdict::Stranger);
    }

    /// The committed fuzz seeds (`firmware/fuzz-remote/seeds/announce/`) through the fuzz target's checks.
    #[test]
    fn fuzz_seeds_hold_the_target_checks() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-remote/seeds/announce");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            if let Ok(Heard::Ssdp { uuid, .. }) = parse_ssdp(&data) {
                assert!(!uuid.is_empty() && uuid.len() <= UUID_MAX && uuid == uuid.to_ascii_lowercase());
            }
            let mut w = Watch::default();
            w.follow(Ipv4Addr::new(192, 168, 77, 1), None, None);
            for h in [parse_port_mapping(&data), parse_ssdp(&data)].into_iter().flatten() {
                assert_eq!(w.hear("192.168.77.66".parse().unwrap(), h, 0), Verdict::Stranger);
            }
            n += 1;
        }
        assert!(n >= 3, "seeds in {}", dir.display());
    }

    #[test]
    fn hostile_datagrams_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6886);
        let seeds: [&[u8]; 3] = [&PCP_ANNOUNCE, &NATPMP_ANNOUNCE, NOTIFY.as_bytes()];
        for i in 0..60_000 {
            let mut m = seeds[i % 3].to_vec();
            for _ in 0..rng.gen_range(1..6) {
                let at = rng.gen_range(0..m.len());
                m[at] = rng.r#gen();
            }
            m.truncate(rng.gen_range(0..=m.len()));
            let _ = parse_port_mapping(&m);
            let _ = parse_ssdp(&m);
        }
    }
}
