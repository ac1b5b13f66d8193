//! Bearer tokens: 256 random bits, shown once as 64 lowercase hex digits, stored only as [`TokenHash`]
//! (the first 16 bytes of SHA-256 of the 32 raw bytes).
//!
//! Accepted as the `X-Plex-Token` header, the `X-Plex-Token` query parameter, or `Authorization: Bearer`
//! (RFC 6750 §2.1). Device records come from `X-Plex-Client-Identifier`, `X-Plex-Product`, `X-Plex-Device-Name`
//! and `X-Plex-Device`.

use super::access::Identity;
use crate::state::{MAX_DEVICE_NAME, MAX_PRODUCT, State, TokenHash};
use crate::wire::Fields;

/// Length of a token as handed out: 32 bytes in lowercase hex.
pub const TOKEN_HEX: usize = 64;

/// A new token: the text to hand out once, and the hash to store.
pub fn mint() -> (String, TokenHash) {
    let mut raw = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).expect("kernel random");
    let text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    (text, hash_raw(&raw))
}

fn hash_raw(raw: &[u8; 32]) -> TokenHash {
    let d = ring::digest::digest(&ring::digest::SHA256, raw);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d.as_ref()[..16]);
    TokenHash(h)
}

/// The hash of a presented token, or None when it is not 64 hex digits.
pub fn parse(text: &str) -> Option<TokenHash> {
    let b = text.as_bytes();
    if b.len() != TOKEN_HEX {
        return None;
    }
    let mut raw = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        raw[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(hash_raw(&raw))
}

/// What the request carries as a token.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    None,
    /// Present but unreadable (not UTF-8, empty, not Bearer).
    Unreadable,
    Text(String),
}

/// Find the token: `X-Plex-Token` header, then `Authorization: Bearer`, then the `X-Plex-Token` query parameter.
/// `headers` is the request's fields as either engine parsed them (`wire::Head` or hyper's `HeaderMap`).
pub fn presented(headers: &impl Fields, query: Option<&str>) -> Presented {
    if let Some(v) = headers.text("x-plex-token") {
        return match v {
            Ok(s) if !s.trim().is_empty() => Presented::Text(s.trim().to_owned()),
            _ => Presented::Unreadable,
        };
    }
    if let Some(v) = headers.text("authorization") {
        // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
        let Ok(s) = v else { return Presented::Unreadable };
        return match s.split_once(' ') {
            Some((scheme, tok)) if scheme.eq_ignore_ascii_case("bearer") && !tok.trim().is_empty() => {
                Presented::Text(tok.trim().to_owned())
            }
            _ => Presented::Unreadable,
        };
    }
    for pair in query.unwrap_or("").split('&') {
        if let Some((k, v)) = pair.split_once('=')
            && k.eq_ignore_ascii_case("x-plex-token")
        {
            return match crate::wire::percent_decode(v) {
                Some(s) if !s.is_empty() => Presented::Text(s),
                _ => Presented::Unreadable,
            };
        }
    }
    Presented::None
}

/// Resolve a presented token against the state.
pub fn identify(p: &Presented, state: &State) -> Identity {
    let text = match p {
        Presented::None => return Identity::Anonymous,
        Presented::Unreadable => return Identity::Malformed,
        Presented::Text(t) => t,
    };
    let Some(hash) = parse(text) else { return Identity::Malformed };
    identify_hash(&hash, state)
}

/// Who holds the token with this hash: a device's account, an API token, or no one (compared in constant time).
pub fn identify_hash(hash: &TokenHash, state: &State) -> Identity {
    let eq = |a: &TokenHash| super::secret::same(&a.0, &hash.0);
    if let Some(d) = state.devices.iter().find(|d| eq(&d.token))
        && let Some(a) = state.account(d.account)
    {
        return Identity::Account { account: a.id, role: a.role, device: d.id };
    }
    if let Some(t) = state.api_tokens.iter().find(|t| eq(&t.token)) {
        return Identity::Tool { token: t.id, scope: t.scope };
    }
    Identity::Unknown
}

/// The device a sign-in comes from, from the X-Plex-* headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// First 8 bytes of SHA-256 of `X-Plex-Client-Identifier` (random when absent: a new device each time).
    pub client: [u8; 8],
    /// `X-Plex-Device-Name` (else `X-Plex-Device`), cut to fit.
    pub name: heapless::String<MAX_DEVICE_NAME>,
    /// `X-Plex-Product`, cut to fit.
    pub product: heapless::String<MAX_PRODUCT>,
}

impl Client {
    /// The device of a sign-in request, from its X-Plex-* fields.
    pub fn from_headers(headers: &hyper::HeaderMap) -> Client {
        let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty());
        let client = match get("x-plex-client-identifier") {
            Some(id) => {
                let d = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
                let mut c = [0u8; 8];
                c.copy_from_slice(&d.as_ref()[..8]);
                c
            }
            None => {
                let mut c = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut c).expect("kernel random");
                c
            }
        };
        let name = get("x-plex-device-name").or_else(|| get("x-plex-device")).unwrap_or("Unknown device");
        let product = get("x-plex-product").unwrap_or("Unknown app");
        Client { client, name: truncate(name), product: truncate(product) }
    }
}

/// Cut to the bound on a character boundary (device labels are informative; cutting is better than refusing).
pub fn truncate<const N: usize>(s: &str) -> heapless::String<N> {
    let mut out = heapless::String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;

    #[test]
    fn mint_parse_round_trip() {
        let (text, hash) = mint();
        assert_eq!(text.len(), TOKEN_HEX);
        assert_eq!(parse(&text), Some(hash));
        assert_eq!(parse(&text.to_uppercase()), Some(hash), "hex is case-insensitive");
        assert_eq!(parse(&text[1..]), None);
        assert_eq!(parse(&"zz".repeat(32)), None);
        assert_ne!(mint().1, hash);
    }

    #[test]
    fn finds_token_in_header_bearer_and_query() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h, Some("a=1")), Presented::None);
        assert_eq!(presented(&h, Some("a=1&X-Plex-Token=abc")), Presented::Text("abc".into()));
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert_eq!(presented(&h, None), Presented::Text("xyz".into()));
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(presented(&h, None), Presented::Unreadable);
        h.insert("x-plex-token", "tok".parse().unwrap());
        assert_eq!(presented(&h, None), Presented::Text("tok".into()));
    }

    #[test]
    fn client_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-plex-client-identifier", "abc".parse().unwrap());
        h.insert("x-plex-product", "Plex for Android (TV) with a very long name".parse().unwrap());
        h.insert("x-plex-device", "SHIELD".parse().unwrap());
        let c = Client::from_headers(&h);
        assert_eq!(c.name.as_str(), "SHIELD");
        assert_eq!(c.product.len(), MAX_PRODUCT);
        assert_eq!(Client::from_headers(&h).client, c.client, "same identifier, same device");
    }
}
