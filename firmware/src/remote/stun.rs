//! STUN Binding (RFC 5389): the sans-IO codec that asks "what address does the internet see?".
//!
//! Only what Hearth needs: a Binding request with no attributes, and the mapped address out of a Binding
//! success response (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from RFC 3489 servers). Everything else in a
//! response is skipped by length; anything malformed is an error, never a panic.
//!
//! ```text
//! header (RFC 5389 §6), 20 bytes:
//!  0               1               2               3
//! |0 0| message type (14)          | message length (16)          |
//! | magic cookie 0x2112A442                                        |
//! | transaction id (96 bits)                                       |
//! attribute (§15): | type (16) | length (16) | value, padded to 4 |
//! XOR-MAPPED-ADDRESS value (§15.2): | 0 | family | x-port (16) | x-address (32 or 128) |
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// RFC 5389 §6.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Bytes of a STUN message header (RFC 5389 §6).
pub const HEADER_LEN: usize = 20;
/// Binding request (method 0x001, class request).
pub const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response.
pub const BINDING_SUCCESS: u16 = 0x0101;
/// Binding error response.
pub const BINDING_ERROR: u16 = 0x0111;
/// MAPPED-ADDRESS (RFC 5389 §15.1): the address in clear, from old servers.
pub const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
/// XOR-MAPPED-ADDRESS (RFC 5389 §15.2): the address XORed with the magic cookie, so NATs that rewrite addresses in
/// payloads leave it alone.
pub const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Why a STUN reply was not used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StunError {
    #[error("the reply is shorter than a STUN header")]
    Short,
    #[error("the reply is not STUN (first bits or magic cookie wrong)")]
    NotStun,
    #[error("the reply answers another request")]
    OtherTransaction,
    #[error("the STUN server answered with an error response")]
    ErrorResponse,
    #[error("the reply is not a Binding success response (type {0:#06x})")]
    UnexpectedType(u16),
    #[error("the message length does not match the datagram")]
    BadLength,
    #[error("an attribute runs past the end of the message")]
    Truncated,
    #[error("a mapped address attribute is malformed")]
    BadAddress,
    #[error("the reply carries no mapped address")]
    NoAddress,
}

/// A Binding request with the given transaction id (RFC 5389 §6: length 0, no attributes).
pub fn binding_request(transaction: [u8; 12]) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    b[8..20].copy_from_slice(&transaction);
    b
}

/// The address the STUN server saw, from a Binding success response to `transaction`.
pub fn parse_binding_response(msg: &[u8], transaction: &[u8; 12]) -> Result<SocketAddr, StunError> {
    if msg.len() < HEADER_LEN {
        return Err(StunError::Short);
    }
    // RFC 5389 §6: the two most significant bits are zero and the cookie is fixed.
    if msg[0] & 0xC0 != 0 || msg[4..8] != MAGIC_COOKIE.to_be_bytes() {
        return Err(StunError::NotStun);
    }
    if msg[8..20] != transaction[..] {
        return Err(StunError::OtherTransaction);
    }
    let kind = u16::from_be_bytes([msg[0], msg[1]]);
    match kind {
        BINDING_SUCCESS => {}
        BINDING_ERROR => return Err(StunError::ErrorResponse),
        other => return Err(StunError::UnexpectedType(other)),
    }
    let len = u16::from_be_bytes([msg[2], msg[3]]) as usize;
    // §6: the length excludes the header and is a multiple of 4.
    if !len.is_multiple_of(4) || HEADER_LEN + len > msg.len() {
        return Err(StunError::BadLength);
    }
    let body = &msg[HEADER_LEN..HEADER_LEN + len];
    let mut plain = None;
    let mut at = 0;
    while at < body.len() {
        let head = body.get(at..at + 4).ok_or(StunError::Truncated)?;
        let ty = u16::from_be_bytes([head[0], head[1]]);
        let alen = u16::from_be_bytes([head[2], head[3]]) as usize;
        let value = body.get(at + 4..at + 4 + alen).ok_or(StunError::Truncated)?;
        match ty {
            ATTR_XOR_MAPPED_ADDRESS => return decode_address(value, Some(transaction)),
            ATTR_MAPPED_ADDRESS if plain.is_none() => plain = Some(decode_address(value, None)?),
            _ => {}
        }
        // §15: values are padded to a multiple of four bytes.
        at += 4 + alen.div_ceil(4) * 4;
    }
    plain.ok_or(StunError::NoAddress)
}

/// MAPPED-ADDRESS (§15.1) or, with the transaction, XOR-MAPPED-ADDRESS (§15.2).
fn decode_address(v: &[u8], xor: Option<&[u8; 12]>) -> Result<SocketAddr, StunError> {
    if v.len() < 4 {
        return Err(StunError::BadAddress);
    }
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    if xor.is_some() {
        // §15.2: X-Port is the port XORed with the most significant 16 bits of the cookie.
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (v[1], v.len()) {
        (FAMILY_V4, 8) => {
            let mut a = [v[4], v[5], v[6], v[7]];
            if xor.is_some() {
                for (b, k) in a.iter_mut().zip(cookie) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (FAMILY_V6, 20) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&v[4..20]);
            if let Some(t) = xor {
                // §15.2: XORed with the cookie followed by the transaction id.
                let key: Vec<u8> = cookie.iter().chain(t.iter()).copied().collect();
                for (b, k) in a.iter_mut().zip(key) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(StunError::BadAddress),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.2 "Sample IPv4 Response" (transaction id b7e7a701 bc34d686 fa87dfae).
    const RFC5769_V4: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
        0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
        0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
        0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
        0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];
    const RFC5769_TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    #[test]
    fn rfc5769_sample_is_transcribed_correctly() {
        // RFC 5389 §15.5: FINGERPRINT = CRC-32 of the message before the FINGERPRINT attribute, XOR 0x5354554e. If this holds, the
        // fixture bytes are the RFC's.
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&RFC5769_V4[..72]) ^ 0x5354_554e;
        assert_eq!(crc.to_be_bytes(), RFC5769_V4[76..80]);
    }

    #[test]
    fn decodes_rfc5769_xor_mapped_address() {
        let got = parse_binding_response(&RFC5769_V4, &RFC5769_TID).unwrap();
        assert_eq!(got, "192.0.2.1:32853".parse().unwrap());
    }

    #[test]
    fn rejects_other_transactions_and_errors() {
        let mut other = RFC5769_TID;
        other[0] ^= 1;
        assert_eq!(parse_binding_response(&RFC5769_V4, &other), Err(StunError::OtherTransaction));
        let mut err = RFC5769_V4;
        err[1] = 0x11;
        assert_eq!(parse_binding_response(&err, &RFC5769_TID), Err(StunError::ErrorResponse));
        let mut cookie = RFC5769_V4;
        cookie[5] = 0;
        assert_eq!(parse_binding_response(&cookie, &RFC5769_TID), Err(StunError::NotStun));
        assert_eq!(parse_binding_response(&RFC5769_V4[..19], &RFC5769_TID), Err(StunError::Short));
        assert_eq!(parse_binding_response(&RFC5769_V4[..40], &RFC5769_TID), Err(StunError::BadLength));
    }

    #[test]
    fn request_has_the_rfc_header() {
        let r = binding_request(RFC5769_TID);
        assert_eq!(&r[..8], &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&r[8..], &RFC5769_TID);
    }

    #[test]
    fn plain_mapped_address_from_old_servers() {
        let mut m = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&RFC5769_TID);
        m.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x1f, 0x90, 11, 0, 0, 2]);
        assert_eq!(parse_binding_response(&m, &RFC5769_TID).unwrap(), "11.0.0.2:8080".parse().unwrap());
    }

    /// Hostile bytes: a seeded random loop over mutations of the sample and pure noise never panics, and a
    /// truncated attribute is refused.
    #[test]
    fn hostile_input_never_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5389);
        for _ in 0..200_000 {
            let mut m = RFC5769_V4.to_vec();
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..m.len());
                m[i] = rng.r#gen();
            }
            m.truncate(rng.gen_range(0..=m.len()));
            let _ = parse_binding_response(&m, &RFC5769_TID);
            let noise: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.r#gen()).collect();
            let _ = parse_binding_response(&noise, &RFC5769_TID);
        }
        let mut m = RFC5769_V4[..44].to_vec();
        m[3] = 24; // claims 24 bytes of attributes, the XOR-MAPPED-ADDRESS header says 8 but only 4 follow
        m.truncate(20 + 16 + 8);
        m[20 + 16 + 3] = 8;
        assert!(parse_binding_response(&m, &RFC5769_TID).is_err());
    }
}
