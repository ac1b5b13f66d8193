//! The doors in front of the access rule that a web browser could otherwise walk through (issue 18, review
//! findings A-F1 and A-F2): the `Host` a request names and the `Origin` a browser says it comes from.
//!
//! - Host (RFC 9110 §7.2): a DNS-rebinding page reaches the box under the attacker's name, so the browser
//!   treats the box as the attacker's origin. A request is answered only when its `Host` names this server:
//!   an IP address (IPv6 in brackets, RFC 3986 §3.2.2), the box's hostname or `<hostname>.local`, `localhost`,
//!   or a name the owner added (`Settings.host_names`). Case and one trailing dot are ignored, and so is the
//!   port. Anything else is 421 Misdirected Request (RFC 9110 §15.5.20). A request without `Host` is 400 on
//!   HTTP/1.1 (RFC 9112 §3.2); HTTP/1.0 may omit it.
//!
//!   Every IP literal passes: rebinding needs a name that the attacker's DNS points at the box, and a page
//!   whose origin is an IP literal that reaches the box can only have been served by the box itself. The
//!   address a client dialled is not always one the box can know: a public address behind a manual port
//!   forward with no STUN, a NAT or container port mapping, and the reflector's `/identity` check during a
//!   mapping attempt, which dials the public address before remote access has recorded it.
//! - Origin (RFC 6454 §7, the Fetch standard's `Origin` header): a browser names the page that made the
//!   request. A present `Origin` must be the origin the request was sent to, that is, the same host and port
//!   as the `Host` header (which already names us); `null` (sandboxed frames, `file:` pages) is foreign. This
//!   compares with `Host` and not with the socket's port so the page still works through a port forward or a
//!   reverse proxy (remote access maps an outside port to 32400). Foreign gets 403.
//!
//! Pure: the shell (the http room) reads the headers and the box's names and answers the refusal.

use std::net::IpAddr;

/// A request these doors turn away: the status and a sentence that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 400, 403 or 421.
    pub status: u16,
    /// What to do about it.
    pub message: String,
}

/// The host of a `Host` header or an origin: an IP address, or a lower-case name without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (IPv6 without brackets).
    Ip(IpAddr),
    /// A DNS name, lowercase, no trailing dot.
    Name(String),
}

/// `host[:port]` as in a `Host` header or after an origin's `scheme://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// The host.
    pub host: Host,
    /// The port, when given.
    pub port: Option<u16>,
}

/// Parse `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2–3.2.3); None when it is not one.
pub fn authority(raw: &str) -> Option<Authority> {
    let raw = raw.trim();
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip: std::net::Ipv6Addr = v6.parse().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (Host::Ip(crate::system::dual_stack::canonical(IpAddr::V6(ip))), port)
    } else {
        let (h, port) = match raw.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (raw, None),
        };
        let h = h.strip_suffix('.').unwrap_or(h);
        let name_ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !h.split('.').any(str::is_empty);
        if !name_ok {
            return None;
        }
        let host = match h.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V4(ip)),
            Err(_) => Host::Name(h.to_ascii_lowercase()),
        };
        (host, port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some(Authority { host, port })
}

/// The names this server answers to besides IP addresses (see the module doc).
#[derive(Debug, Default, Clone)]
pub struct OwnNames<'a> {
    /// The box's hostname; empty when unknown.
    pub hostname: &'a str,
    /// Names the owner added (`Settings.host_names`, already normalised).
    pub added: &'a [crate::state::HostName],
}

impl OwnNames<'_> {
    /// Does `host` name this server?
    pub fn names_us(&self, host: &Host) -> bool {
        match host {
            Host::Ip(_) => true,
            Host::Name(name) => {
                let hostname = self.hostname.to_ascii_lowercase();
                let hostname = hostname.strip_suffix('.').unwrap_or(&hostname);
                name == "localhost"
                    || (!hostname.is_empty()
                        && (name == hostname || name.strip_suffix(".local") == Some(hostname)))
                    || self.added.iter().any(|a| a.as_str() == name)
            }
        }
    }

    /// The names for a refusal message, e.g. `"hearth", "hearth.local", "localhost"`.
    fn listed(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        if !self.hostname.is_empty() {
            names.push(self.hostname.to_ascii_lowercase());
            names.push(format!("{}.local", self.hostname.to_ascii_lowercase()));
        }
        names.push("localhost".into());
        names.extend(self.added.iter().map(|a| a.to_string()));
        names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    }
}

/// The Host door: the request's authority when `host` names this server, else the refusal (400 missing or
/// malformed, 421 another name). `http11`: the request is HTTP/1.1 (HTTP/1.0 may omit Host).
pub fn host_door(host: Option<&str>, http11: bool, names: &OwnNames) -> Result<Option<Authority>, Refused> {
    let Some(raw) = host else {
        if http11 {
            return Err(Refused {
                status: 400,
                message: "An HTTP/1.1 request needs a Host header (RFC 9112 §3.2).".into(),
            });
        }
        return Ok(None);
    };
    let Some(auth) = authority(raw) else {
        return Err(Refused { status: 400, message: format!("The Host header {raw:?} is not a host name or address.") });
    };
    if names.names_us(&auth.host) {
        return Ok(Some(auth));
    }
    Err(Refused {
        status: 421,
        message: format!(
            "This server does not answer to the name {:?}. It answers to IP addresses and to {}. The owner \
             can add a name (such as a dynamic-DNS name) under Network settings, \"Host names\" on the setup page \
             (PUT /api/v1/settings/network {{\"host_names\": [...]}}).",
            raw.trim(),
            names.listed()
        ),
    })
}

/// The Origin door: Ok when there is no `Origin` or it is the origin the request was sent to (`host`, the
/// authority the Host door accepted; `secure`, the request came over TLS, for the default port).
pub fn origin_door(origin: Option<&str>, host: Option<&Authority>, secure: bool) -> Result<(), Refused> {
    let Some(origin) = origin else { return Ok(()) };
    let foreign = || Refused {
        status: 403,
        message: format!(
            "This request comes from a web page at {:?}, not from this server's own pages; a browser may not \
             change this server from another site. Open the setup page on this server instead.",
            origin.trim()
        ),
    };
    let (scheme, rest) = origin.trim().split_once("://").ok_or_else(foreign)?;
    let scheme_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(foreign()),
    };
    let from = authority(rest).ok_or_else(foreign)?;
    let Some(to) = host else { return Err(foreign()) };
    let to_port = to.port.unwrap_or(if secure { 443 } else { 80 });
    if from.host == to.host && from.port.unwrap_or(scheme_port) == to_port {
        Ok(())
    } else {
        Err(foreign())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(added: &[crate::state::HostName]) -> OwnNames<'_> {
        OwnNames { hostname: "Hearth", added }
    }

    fn ok(host: &str, n: &OwnNames) -> bool {
        host_door(Some(host), true, n).is_ok()
    }

    #[test]
    fn host_names_the_box_by_address_name_or_added_name() {
        let added = [crate::state::host_name("home.example.net").unwrap()];
        let n = names(&added);
        for host in [
            "192.168.1.10",
            "192.168.1.10:32400",
            "[fd00::10]:32400",
            "[FD00:0:0::10]",
            "[::ffff:192.168.1.10]:32400",
            "127.0.0.1:32400",
            "127.0.0.2",
            "[::1]:32400",
            "198.51.100.4:40000",
            "203.0.113.9",
            "hearth",
            "HEARTH.local:32400",
            "hearth.local.",
            "localhost:32400",
            "LocalHost",
            "home.example.net",
            "Home.Example.Net.:443",
        ] {
            assert!(ok(host, &n), "{host} refused");
        }
        for host in ["attacker.example", "hearth.example", "evil.hearth.local", "x.localhost", "example.net", "2130706433", "0x7f.1", "hearth.local.example"] {
            let r = host_door(Some(host), true, &n).unwrap_err();
            assert_eq!(r.status, 421, "{host}");
            assert!(r.message.contains("Network settings") && r.message.contains("\"hearth.local\""), "{}", r.message);
        }
    }

    #[test]
    fn a_missing_or_malformed_host_is_a_bad_request() {
        let n = names(&[]);
        assert_eq!(host_door(None, true, &n).unwrap_err().status, 400, "HTTP/1.1 needs Host");
        assert_eq!(host_door(None, false, &n).unwrap(), None, "HTTP/1.0 may omit it");
        for bad in ["", "::1", "[::1", "[nope]", "a b", "localhost:port", "localhost:99999", "a..b", "user@localhost", "localhost/x", "[::1]x"] {
            assert_eq!(host_door(Some(bad), true, &n).unwrap_err().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn without_a_hostname_only_addresses_localhost_and_added_names_pass() {
        let n = OwnNames { hostname: "", ..Default::default() };
        assert!(ok("localhost", &n));
        assert!(!ok(".local", &n) && !ok("local", &n));
    }

    #[test]
    fn origin_must_be_the_host_the_request_was_sent_to() {
        let host = |h: &str| authority(h).unwrap();
        let h = host("192.168.1.10:32400");
        assert!(origin_door(None, Some(&h), false).is_ok(), "no Origin: not a browser's cross-site request");
        assert!(origin_door(Some("http://192.168.1.10:32400"), Some(&h), false).is_ok());
        assert!(origin_door(Some("https://192.168.1.10:32400"), Some(&h), true).is_ok(), "one port for both");
        assert!(origin_door(Some("HTTP://192.168.1.10:32400"), Some(&h), false).is_ok());
        let named = host("Hearth.local.:32400");
        assert!(origin_door(Some("http://hearth.local:32400"), Some(&named), false).is_ok());
        let v6 = host("[fd00::10]:32400");
        assert!(origin_door(Some("http://[fd00:0::10]:32400"), Some(&v6), false).is_ok());
        let default_port = host("home.example.net");
        assert!(origin_door(Some("https://home.example.net"), Some(&default_port), true).is_ok());
        assert!(origin_door(Some("https://home.example.net:443"), Some(&default_port), true).is_ok());
        for foreign in [
            "null",
            "http://evil.example",
            "http://192.168.1.10:8080",
            "http://192.168.1.10",
            "http://127.0.0.2:32400",
            "file://",
            "chrome-extension://abc",
            "http://192.168.1.10:32400/path",
            "",
        ] {
            let r = origin_door(Some(foreign), Some(&h), false).unwrap_err();
            assert_eq!(r.status, 403, "{foreign}");
        }
        assert_eq!(origin_door(Some("http://x"), None, false).unwrap_err().status, 403, "no Host to compare with");
        assert!(origin_door(Some("http://home.example.net"), Some(&default_port), true).is_err(), "80 is not 443");
    }
}
