//! PCP MAP (RFC 6887) and NAT-PMP (RFC 6886): the sans-IO core. Bytes in, bytes out, time as numbers.
//!
//! Both speak UDP to the gateway's port 5351. Hearth sends PCP first; a NAT-PMP-only gateway answers a
//! version-2 request with a version-0 "unsupported version" reply (RFC 6887 §9), and Hearth falls back.
//!
//! ```text
//! NAT-PMP (RFC 6886), all big-endian:
//!  external address request (§3.2):   | vers=0 | op=0 |
//!  external address response (§3.2):  | vers=0 | op=128 | result u16 | epoch u32 | external IPv4 (4) |   12 bytes
//!  map request (§3.3):                | vers=0 | op=1 UDP / 2 TCP | reserved u16 | internal port u16 |
//!                                     | suggested external port u16 | lifetime u32 |                     12 bytes
//!  map response (§3.3):               | vers=0 | op=128+op | result u16 | epoch u32 | internal port u16 |
//!                                     | mapped external port u16 | lifetime u32 |                         16 bytes
//!
//! PCP (RFC 6887):
//!  request header (§7.1):  | vers=2 | R=0,opcode(7) | reserved u16 | lifetime u32 | client IP (16) |   24 bytes
//!  response header (§7.2): | vers=2 | R=1,opcode(7) | reserved u8 | result u8 | lifetime u32 |
//!                          | epoch u32 | reserved (12) |                                                24 bytes
//!  MAP payload (§11.1):    | nonce (12) | protocol u8 | reserved (3) | internal port u16 |
//!                          | external port u16 | external IP (16) |                                      36 bytes
//!  IPv4 addresses travel as IPv4-mapped IPv6 (::ffff:a.b.c.d, §5).
//!
//! IPv6 (issue 21): the same MAP opens a pinhole in an IPv6 firewall (§11: "for IPv6 ... the MAP opcode
//! creates an explicit dynamic mapping" with external address = internal address). The client IP is our
//! global IPv6 address (the request must come from it, §8.1 ADDRESS_MISMATCH), the suggested external
//! address is the all-zeros IPv6 address `::` (§11.1), and the reply's external address is our own.
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 6886 §3.1 / RFC 6887 §19.1: the server port on the gateway.
pub const SERVER_PORT: u16 = 5351;
/// NAT-PMP's version byte (RFC 6886 §3.2); a gateway that speaks only NAT-PMP answers a PCP request with it.
pub const NATPMP_VERSION: u8 = 0;
/// PCP's version byte (RFC 6887 §7.1).
pub const PCP_VERSION: u8 = 2;
/// The PCP MAP opcode (RFC 6887 §11); NAT-PMP has its own opcodes ([`NATPMP_OP_TCP`]).
pub const OP_MAP: u8 = 1;
/// IANA protocol number for TCP, used in the PCP MAP payload.
pub const PROTO_TCP: u8 = 6;
/// NAT-PMP opcode for a TCP mapping (RFC 6886 §3.3).
pub const NATPMP_OP_TCP: u8 = 2;
/// RFC 6886 §3.5 "Unsupported Version"; RFC 6887 §7.4 UNSUPP_VERSION has the same value.
pub const RESULT_UNSUPPORTED_VERSION: u16 = 1;
/// A PCP MAP request: the 24-byte common header and the 36-byte MAP payload (RFC 6887 §7.1, §11.1).
pub const PCP_REQUEST_LEN: usize = 24 + 36;
/// A PCP MAP response: the 24-byte common header and the 36-byte MAP payload (RFC 6887 §7.2, §11.1).
pub const PCP_RESPONSE_LEN: usize = 24 + 36;
/// Retransmission schedule (RFC 6886 §3.1 starts at 250 ms and doubles). Hearth stops after three tries
/// (1.75 s) per method so an absent gateway gives a reason quickly instead of after 64 s.
pub const RETRY_MS: [u64; 3] = [250, 500, 1000];

/// Why a gateway's reply to a MAP request was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PcpError {
    #[error("the reply is {0} bytes, too short")]
    Short(usize),
    #[error("the reply has version {0}")]
    Version(u8),
    #[error("the reply is not a response to a MAP request (opcode {0:#04x})")]
    Opcode(u8),
    #[error("the reply answers another mapping (nonce, protocol or port differ)")]
    OtherMapping,
    #[error("the gateway speaks only NAT-PMP")]
    OnlyNatPmp,
}

/// What the gateway said to a MAP request (either protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapReply {
    /// 0 = success; anything else is the protocol's result code.
    pub result: u16,
    /// Seconds since the gateway's mapping table was (re)started.
    pub epoch: u32,
    /// Our port the gateway forwards to.
    pub internal_port: u16,
    /// The port the gateway opened on its public side (may differ from the one asked for).
    pub external_port: u16,
    /// PCP gives the external address in the MAP reply; NAT-PMP needs a separate request.
    pub external_addr: Option<IpAddr>,
    /// Seconds the mapping lasts; 0 in a reply to a delete.
    pub lifetime: u32,
}

fn mapped(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn unmapped(b: &[u8]) -> IpAddr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    let v6 = Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A PCP MAP request for TCP (RFC 6887 §11.1). `lifetime` 0 deletes the mapping (§15). An IPv6 `client`
/// asks for an IPv6 pinhole: its suggested external address is `::`, an IPv4 one's `::ffff:0.0.0.0` (§11.1).
pub fn pcp_map_request(
    client: IpAddr,
    nonce: [u8; 12],
    internal_port: u16,
    suggested_port: u16,
    lifetime: u32,
) -> [u8; PCP_REQUEST_LEN] {
    let mut b = [0u8; PCP_REQUEST_LEN];
    b[0] = PCP_VERSION;
    b[1] = OP_MAP; // R bit 0: request (§7.1)
    b[4..8].copy_from_slice(&lifetime.to_be_bytes());
    b[8..24].copy_from_slice(&mapped(client));
    b[24..36].copy_from_slice(&nonce);
    b[36] = PROTO_TCP;
    b[40..42].copy_from_slice(&internal_port.to_be_bytes());
    b[42..44].copy_from_slice(&suggested_port.to_be_bytes());
    // Suggested external address "no preference" (§11.1): all zeros of the client's family.
    let any = match client {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    b[44..60].copy_from_slice(&mapped(any));
    b
}

/// Decode a reply to [`pcp_map_request`]. A version-0 reply means the gateway speaks only NAT-PMP.
pub fn pcp_map_response(b: &[u8], nonce: &[u8; 12], internal_port: u16) -> Result<MapReply, PcpError> {
    if b.len() >= 2 && b[0] == NATPMP_VERSION {
        // RFC 6887 §9: a NAT-PMP server answers with version 0 and result 1 (unsupported version).
        return Err(PcpError::OnlyNatPmp);
    }
    if b.len() < 24 {
        return Err(PcpError::Short(b.len()));
    }
    if b[0] != PCP_VERSION {
        return Err(PcpError::Version(b[0]));
    }
    if b[1] != 0x80 | OP_MAP {
        return Err(PcpError::Opcode(b[1]));
    }
    let result = b[3] as u16;
    let lifetime = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    let epoch = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    if result != 0 && b.len() < PCP_RESPONSE_LEN {
        // §7.2: error responses may be cut short; the header is enough to report the code.
        return Ok(MapReply { result, epoch, internal_port, external_port: 0, external_addr: None, lifetime });
    }
    if b.len() < PCP_RESPONSE_LEN {
        return Err(PcpError::Short(b.len()));
    }
    let p = &b[24..];
    let port = u16::from_be_bytes([p[16], p[17]]);
    // §11.3: the client matches the reply on nonce, protocol and internal port.
    if p[..12] != nonce[..] || p[12] != PROTO_TCP || port != internal_port {
        return Err(PcpError::OtherMapping);
    }
    Ok(MapReply {
        result,
        epoch,
        internal_port: port,
        external_port: u16::from_be_bytes([p[18], p[19]]),
        external_addr: Some(unmapped(&p[20..36])),
        lifetime,
    })
}

/// RFC 6886 §3.2: ask for the external address.
pub fn natpmp_address_request() -> [u8; 2] {
    [NATPMP_VERSION, 0]
}

/// RFC 6886 §3.2: (result, epoch, external address).
pub fn natpmp_address_response(b: &[u8]) -> Result<(u16, u32, Ipv4Addr), PcpError> {
    if b.len() < 8 {
        return Err(PcpError::Short(b.len()));
    }
    if b[0] != NATPMP_VERSION {
        return Err(PcpError::Version(b[0]));
    }
    if b[1] != 128 {
        return Err(PcpError::Opcode(b[1]));
    }
    let result = u16::from_be_bytes([b[2], b[3]]);
    let epoch = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if result != 0 {
        return Ok((result, epoch, Ipv4Addr::UNSPECIFIED));
    }
    if b.len() < 12 {
        return Err(PcpError::Short(b.len()));
    }
    Ok((result, epoch, Ipv4Addr::new(b[8], b[9], b[10], b[11])))
}

/// RFC 6886 §3.3: map TCP `internal_port`; lifetime 0 with suggested port 0 deletes it (§3.4).
pub fn natpmp_map_request(internal_port: u16, suggested_port: u16, lifetime: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = NATPMP_VERSION;
    b[1] = NATPMP_OP_TCP;
    b[4..6].copy_from_slice(&internal_port.to_be_bytes());
    b[6..8].copy_from_slice(&suggested_port.to_be_bytes());
    b[8..12].copy_from_slice(&lifetime.to_be_bytes());
    b
}

/// RFC 6886 §3.3: decode the reply to [`natpmp_map_request`].
pub fn natpmp_map_response(b: &[u8], internal_port: u16) -> Result<MapReply, PcpError> {
    if b.len() < 8 {
        return Err(PcpError::Short(b.len()));
    }
    if b[0] != NATPMP_VERSION {
        return Err(PcpError::Version(b[0]));
    }
    if b[1] != 128 + NATPMP_OP_TCP {
        return Err(PcpError::Opcode(b[1]));
    }
    let result = u16::from_be_bytes([b[2], b[3]]);
    let epoch = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    if result != 0 {
        return Ok(MapReply { result, epoch, internal_port, external_port: 0, external_addr: None, lifetime: 0 });
    }
    if b.len() < 16 {
        return Err(PcpError::Short(b.len()));
    }
    let port = u16::from_be_bytes([b[8], b[9]]);
    if port != internal_port {
        return Err(PcpError::OtherMapping);
    }
    Ok(MapReply {
        result,
        epoch,
        internal_port: port,
        external_port: u16::from_be_bytes([b[10], b[11]]),
        external_addr: None,
        lifetime: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    })
}

/// The gateway's epoch as last seen, to notice a restart (which empties its mapping table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    last: Option<(u32, u64)>,
}

impl Epoch {
    /// Record a reply's epoch seen at local time `now_secs`. Returns true when the gateway lost its state
    /// since the previous reply: RFC 6887 §8.5 (and RFC 6886 §3.6): the epoch went back by more than one
    /// second, or the gateway's clock and ours disagree by more than 2 s plus 1/16 of the elapsed time.
    pub fn observe(&mut self, epoch: u32, now_secs: u64) -> bool {
        let lost = match self.last {
            None => false,
            Some((prev, at)) => {
                let client_delta = now_secs.saturating_sub(at);
                if (epoch as u64) + 1 < prev as u64 {
                    true
                } else {
                    let server_delta = (epoch as u64).saturating_sub(prev as u64);
                    client_delta.saturating_add(2) < server_delta - server_delta / 16
                        || server_delta + 2 < client_delta - client_delta / 16
                }
            }
        };
        self.last = Some((epoch, now_secs));
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built field by field from RFC 6887 §7.1 and §11.1: client 192.168.1.10, nonce 01..0c, TCP,
    /// internal 32400, suggested 32400, lifetime 7200.
    const PCP_MAP_FIXTURE: [u8; 60] = [
        0x02, 0x01, 0x00, 0x00, // version 2, R=0 opcode MAP, reserved
        0x00, 0x00, 0x1c, 0x20, // requested lifetime 7200
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 10, // client IP, IPv4-mapped
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, // mapping nonce
        0x06, 0, 0, 0, // protocol TCP, reserved
        0x7e, 0x90, 0x7e, 0x90, // internal port 32400, suggested external port 32400
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0, // suggested external IP: none
    ];

    #[test]
    fn pcp_map_request_matches_the_rfc_layout() {
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let got = pcp_map_request("192.168.1.10".parse().unwrap(), nonce, 32400, 32400, 7200);
        assert_eq!(got, PCP_MAP_FIXTURE);
    }

    #[test]
    fn pcp_map_request_for_an_ipv6_pinhole() {
        // RFC 6887 §11.1 for an IPv6 client: client IP is the address itself, suggested external IP is ::.
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let got = pcp_map_request("2001:db8:77::10".parse().unwrap(), nonce, 32400, 32400, 7200);
        let mut want = PCP_MAP_FIXTURE;
        want[8..24].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
        want[44..60].copy_from_slice(&[0; 16]);
        assert_eq!(got, want);
        // The reply names our own address as the external one (a pinhole does not translate).
        let mut reply = vec![0x02, 0x81, 0x00, 0x00];
        reply.extend_from_slice(&3600u32.to_be_bytes());
        reply.extend_from_slice(&9u32.to_be_bytes());
        reply.extend_from_slice(&[0; 12]);
        reply.extend_from_slice(&want[24..44]);
        reply.extend_from_slice(&want[8..24]);
        let r = pcp_map_response(&reply, &nonce, 32400).unwrap();
        assert_eq!((r.external_addr, r.external_port), (Some("2001:db8:77::10".parse().unwrap()), 32400));
    }

    fn pcp_reply(result: u8, epoch: u32, ext_port: u16) -> Vec<u8> {
        let mut r = vec![0x02, 0x81, 0x00, result];
        r.extend_from_slice(&3600u32.to_be_bytes());
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(&PCP_MAP_FIXTURE[24..40]);
        r.extend_from_slice(&32400u16.to_be_bytes());
        r.extend_from_slice(&ext_port.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 11, 0, 0, 2]);
        r
    }

    #[test]
    fn pcp_map_response_decodes_and_matches_the_nonce() {
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let r = pcp_map_response(&pcp_reply(0, 77, 40000), &nonce, 32400).unwrap();
        assert_eq!(
            r,
            MapReply {
                result: 0,
                epoch: 77,
                internal_port: 32400,
                external_port: 40000,
                external_addr: Some("11.0.0.2".parse().unwrap()),
                lifetime: 3600
            }
        );
        let mut other = nonce;
        other[11] = 0;
        assert_eq!(pcp_map_response(&pcp_reply(0, 77, 40000), &other, 32400), Err(PcpError::OtherMapping));
        // §7.4 result 2 NOT_AUTHORIZED: reported with its code.
        assert_eq!(pcp_map_response(&pcp_reply(2, 77, 0)[..24], &nonce, 32400).unwrap().result, 2);
    }

    #[test]
    fn natpmp_gateway_answering_pcp_means_fallback() {
        // RFC 6887 §9: version 0, opcode 128+1, result 1 "unsupported version".
        let reply = [0x00, 0x81, 0x00, 0x01, 0, 0, 0, 9];
        assert_eq!(pcp_map_response(&reply, &[0; 12], 32400), Err(PcpError::OnlyNatPmp));
    }

    #[test]
    fn natpmp_layouts_match_rfc6886() {
        // §3.3: version 0, opcode 2 (TCP), reserved, internal 32400, suggested 32400, lifetime 7200.
        assert_eq!(
            natpmp_map_request(32400, 32400, 7200),
            [0, 2, 0, 0, 0x7e, 0x90, 0x7e, 0x90, 0, 0, 0x1c, 0x20]
        );
        assert_eq!(natpmp_address_request(), [0, 0]);
        // §3.2 reply: epoch 1000, external 11.0.0.2.
        let (res, epoch, ip) = natpmp_address_response(&[0, 128, 0, 0, 0, 0, 0x03, 0xe8, 11, 0, 0, 2]).unwrap();
        assert_eq!((res, epoch, ip), (0, 1000, Ipv4Addr::new(11, 0, 0, 2)));
        // §3.3 reply: mapped 32400 → 40001 for 3600 s.
        let m = natpmp_map_response(&[0, 130, 0, 0, 0, 0, 0, 5, 0x7e, 0x90, 0x9c, 0x41, 0, 0, 0x0e, 0x10], 32400)
            .unwrap();
        assert_eq!((m.external_port, m.lifetime, m.epoch), (40001, 3600, 5));
        // §3.5 result 2 "Not Authorized/Refused".
        assert_eq!(natpmp_map_response(&[0, 130, 0, 2, 0, 0, 0, 5], 32400).unwrap().result, 2);
        assert_eq!(natpmp_map_response(&[0, 129, 0, 0, 0, 0, 0, 5], 32400), Err(PcpError::Opcode(129)));
    }

    #[test]
    fn epoch_notices_restarts_and_jumps() {
        let mut e = Epoch::default();
        assert!(!e.observe(1000, 50));
        assert!(!e.observe(1060, 110), "both clocks advanced 60 s");
        assert!(e.observe(3, 120), "epoch went backwards: the router restarted");
        assert!(!e.observe(13, 130));
        assert!(e.observe(100_000, 140), "the epoch jumped far ahead of our clock");
        assert!(!e.observe(100_000, 140));
    }

    #[test]
    fn hostile_replies_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6887);
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let base = pcp_reply(0, 5, 40000);
        for _ in 0..200_000 {
            let mut m = base.clone();
            for _ in 0..rng.gen_range(1..5) {
                let i = rng.gen_range(0..m.len());
                m[i] = rng.r#gen();
            }
            m.truncate(rng.gen_range(0..=m.len()));
            let _ = pcp_map_response(&m, &nonce, 32400);
            let _ = natpmp_map_response(&m, 32400);
            let _ = natpmp_address_response(&m);
            let mut e = Epoch::default();
            e.observe(rng.r#gen(), rng.r#gen());
            e.observe(rng.r#gen(), rng.r#gen());
        }
    }
}
