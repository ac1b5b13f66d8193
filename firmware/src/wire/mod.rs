//! Wire: HTTP/1.1 as bytes, below every room that speaks it. The request head parsed once ([`head::Head`],
//! RFC 9112 §2-§3, §5, §6, §9.3) and read with its size and time limits ([`head::read_head`]); HTTP dates
//! ([`date`], RFC 9110 §5.6.7) on the civil calendar ([`calendar`]); percent-decoding of URL parts
//! ([`percent_decode`], RFC 3986 §2.1), XML escaping and XML text ([`xml_escape`], [`xml_text`], XML 1.0 §2.4) and a certificate's validity
//! ([`certificate`], RFC 5280 §4.1.2.5).
//!
//! Owns: the framing facts of a request head (method, target, version, the fields as sent, Host, Origin,
//! Content-Type/Length, Transfer-Encoding, Connection), the head's limits ([`head::MAX_HEAD`],
//! [`head::MAX_FIELDS`], [`head::HEAD_TIMEOUT`]), and the small text codecs every door shares.
//! Must not touch: any room. It knows no route, no token, no access rule, no state: `http`, `stream`, `dlna`
//! and `auth` read what it parsed and decide for themselves. Arrows only point into it (it uses only crates).

pub mod calendar;
pub mod certificate;
pub mod date;
pub mod head;

pub use date::http_date;
pub use head::{Fields, Head, HEAD_TIMEOUT, MAX_FIELDS, MAX_HEAD};

/// Decode %XX escapes in a URL part (RFC 3986 §2.1); None when the result is not UTF-8 or an escape is broken.
/// Used for path parameters and query values (a token in `?X-Plex-Token=`).
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The text an XML text, CDATA or reference event adds, as quick-xml reads it (XML 1.0 §2.4, §4.1): content as
/// written for text and CDATA; for a reference, its character (a character reference) or one of XML's five
/// predefined entities. None for a reference that is neither: with no DTD there are no other entities, and
/// each caller decides whether that refuses the document (DLNA's SOAP) or adds nothing (a router's answer).
/// Other events add nothing.
pub fn xml_text(ev: &quick_xml::events::Event<'_>) -> Option<String> {
    use quick_xml::events::Event;
    match ev {
        Event::Text(t) => Some(t.xml10_content().into_owned()),
        Event::CData(t) => Some(t.xml10_content().into_owned()),
        Event::GeneralRef(g) => match g.resolve_char_ref() {
            Ok(Some(c)) => Some(c.to_string()),
            Ok(None) => quick_xml::escape::resolve_predefined_entity(g).map(str::to_string),
            Err(_) => None,
        },
        _ => Some(String::new()),
    }
}

/// Escape text for XML content and attribute values (XML 1.0 §2.4, §3.3.3); control characters XML 1.0 does
/// not allow (§2.2) are dropped. Used by the Plex XML answers and DLNA's descriptions and DIDL-Lite.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_refuses_broken_escapes_and_non_utf8() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
