//! X.509 certificate validity (RFC 5280 §4.1.2.5): the `notBefore` and `notAfter` of a DER certificate, read
//! without an ASN.1 crate. One reader for the http room (the HTTPS screen, an uploaded certificate) and the
//! remote room (when to renew an ACME certificate).

/// `notBefore` and `notAfter` of a DER certificate, as unix seconds.
///
/// RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { \[0\] version OPTIONAL,
/// serialNumber INTEGER, signature AlgorithmIdentifier, issuer Name, validity SEQUENCE { notBefore Time,
/// notAfter Time }, ... } ... }; Time ::= UTCTime | GeneralizedTime (§4.1.2.5).
pub fn validity(cert: &[u8]) -> Result<(i64, i64), &'static str> {
    let (tag, cert_body, _) = der_item(cert).ok_or("not DER")?;
    if tag != 0x30 {
        return Err("not a certificate");
    }
    let (tag, tbs, _) = der_item(cert_body).ok_or("no tbsCertificate")?;
    if tag != 0x30 {
        return Err("no tbsCertificate");
    }
    let mut rest = tbs;
    let (tag, _, after) = der_item(rest).ok_or("truncated")?;
    if tag == 0xA0 {
        rest = after; // explicit version
    }
    for _ in 0..3 {
        // serialNumber, signature, issuer
        let (_, _, after) = der_item(rest).ok_or("truncated")?;
        rest = after;
    }
    let (tag, validity, _) = der_item(rest).ok_or("no validity")?;
    if tag != 0x30 {
        return Err("no validity");
    }
    let (t1, nb, after) = der_item(validity).ok_or("no notBefore")?;
    let (t2, na, _) = der_item(after).ok_or("no notAfter")?;
    Ok((der_time(t1, nb).ok_or("bad notBefore")?, der_time(t2, na).ok_or("bad notAfter")?))
}

/// One DER TLV: (tag, contents, rest). Definite lengths only (X.690 §10.1).
fn der_item(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7F;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((tag, b.get(start..end)?, &b[end..]))
}

/// UTCTime (tag 0x17, YYMMDDHHMMSSZ; YY < 50 → 20YY, RFC 5280 §4.1.2.5.1) or GeneralizedTime
/// (tag 0x18, YYYYMMDDHHMMSSZ, §4.1.2.5.2) to unix seconds.
pub(crate) fn der_time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (mo, d, h, mi, se) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(super::calendar::days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_times_follow_rfc_5280() {
        assert_eq!(der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(der_time(0x17, b"491231235959Z"), Some(2_524_607_999)); // 2049
        assert_eq!(der_time(0x18, b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(der_time(0x17, b"701301000000Z"), None);
        assert_eq!(der_time(0x17, b"7001010000Z"), None);
        assert!(validity(&[0x30, 0x82, 0xFF]).is_err());
    }
}
