//! UPnP Internet Gateway Device control point: the sans-IO core (search datagrams, the device description,
//! SOAP envelopes and answers) and its thin tokio shell ([`search`], [`Gateway`]). Used by [`super::mapping`]
//! for IPv4 port mappings (WANIPConnection / WANPPPConnection) and by [`super::pinhole`] for IPv6 pinholes
//! (WANIPv6FirewallControl).
//!
//! Only the LAN is ever talked to: searches go to the SSDP group on our LAN address (multicast TTL 2), and a
//! device is believed only at the address its answer came from; every URL it names afterwards (URLBase,
//! controlURL) must be on that same address, else the service is ignored. Every answer is bounded: SSDP
//! datagrams ([`DATAGRAM_MAX`]), the answers read per search ([`ANSWERS_MAX`]), the devices asked
//! ([`DEVICES_MAX`]), HTTP bodies ([`BODY_MAX`]), XML depth and element counts, every exchange a deadline.
//!
//! ```text
//! search (UDA 1.1 §1.3.2), one datagram per target, to 239.255.255.250:1900:
//!   M-SEARCH * HTTP/1.1
//!   HOST: 239.255.255.250:1900
//!   MAN: "ssdp:discover"
//!   MX: 2
//!   ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1      (also :2, WANIPConnection:1/:2, WANPPPConnection:1)
//!
//! answer (§1.3.3), unicast back to our port:
//!   HTTP/1.1 200 OK
//!   LOCATION: http://192.168.77.1:5000/rootDesc.xml               (http, an IP literal: the sender's address)
//!   ST: <the target searched>      USN: uuid:<device>::<ST>      BOOTID.UPNP.ORG: <n>
//!
//! device description (§2.3), GET LOCATION:
//!   <root xmlns="urn:schemas-upnp-org:device-1-0"> [<URLBase>http://…/</URLBase>]
//!     <device> <friendlyName>…</friendlyName> <serviceList>…</serviceList> <deviceList> <device>… (nested)
//!       <service> <serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
//!                 <controlURL>/ctl/IPConn</controlURL> </service>   (relative: against URLBase, else LOCATION;
//!                                                                     RFC 3986 §5.2)
//!
//! control (§3.2.1), POST controlURL, Content-Type: text/xml; charset="utf-8",
//!   SOAPACTION: "<serviceType>#<action>":
//!   <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
//!               s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>
//!     <u:<action> xmlns:u="<serviceType>"> <Arg>value</Arg>… </u:<action>>      (arguments in the spec's order)
//!   </s:Body></s:Envelope>
//! answer (§3.2.2): HTTP 200, <s:Body><u:<action>Response> <OutArg>value</OutArg>… or HTTP 500,
//!   <s:Body><s:Fault>…<detail><UPnPError><errorCode>718</errorCode><errorDescription>…</errorDescription>
//! ```
//!
//! The WANIPConnection actions (IGD:1 WANIPConnection:1 §2.4, IGD:2 WANIPConnection:2 §2.5; WANPPPConnection:1
//! has the same ones): AddPortMapping, AddAnyPortMapping (v2 only), DeletePortMapping, GetExternalIPAddress,
//! GetSpecificPortMappingEntry, GetGenericPortMappingEntry; error codes in [`error_name`].

use bytes::Bytes;
use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use quick_xml::events::Event;
use std::time::Duration;

/// Search targets, most specific device first (UDA 1.1 §1.3.2: a device answers a search for its type at
/// its version or lower, so IGD:1 finds IGD:2 routers too; the service targets find routers that answer only
/// those).
pub const TARGETS: [&str; 5] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
/// The connection services that map ports, in the order a description's services are taken when it has more
/// than one kind (the first of a kind in document order wins).
pub const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
/// The IGD:2 IPv6 firewall service.
pub const FIREWALL6: &str = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1";
/// Longest SSDP answer read (they are a few hundred bytes).
pub const DATAGRAM_MAX: usize = 2048;
/// Datagrams read per search before giving up on the rest (a LAN full of SSDP chatter cannot keep us busy).
pub const ANSWERS_MAX: usize = 32;
/// Distinct devices (LOCATIONs) whose description is read per search.
pub const DEVICES_MAX: usize = 4;
/// Largest description or SOAP answer read.
pub const BODY_MAX: usize = 64 * 1024;
/// Longest one HTTP exchange with the router may take.
pub const EXCHANGE_DEADLINE: Duration = Duration::from_secs(5);
const XML_DEPTH_MAX: usize = 32;
const XML_ELEMENTS_MAX: usize = 4096;
const SERVICES_MAX: usize = 64;
const ARGS_MAX: usize = 32;
const TEXT_MAX: usize = 1024;
/// Tries of AddPortMapping on random ports where the router has no AddAnyPortMapping (IGD:1).
const RANDOM_TRIES: usize = 8;

// ---- URLs --------------------------------------------------------------------------------------------------

/// An `http://` URL on an IP literal: where a description or a control point is. No names: a LAN device
/// names itself by address, and we resolve nothing a stranger tells us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Address and port (80 when the URL names none).
    pub addr: SocketAddr,
    /// Path and query, starting with `/`; printable ASCII only (it goes into a request line).
    pub path: String,
}

impl Location {
    /// The Host header value for this address.
    pub fn host(&self) -> String {
        host_of(self.addr)
    }
}

fn host_of(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

fn path_ok(p: &str) -> bool {
    p.starts_with('/') && p.len() <= TEXT_MAX && p.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `s` starts with `http://` (the scheme in any case, RFC 3986 §3.1).
fn is_http(s: &str) -> bool {
    s.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("http://"))
}

/// Parse an absolute `http://<IPv4 or [IPv6]>[:port][/path]` URL (the fragment dropped). `None` for any
/// other scheme, a host name, user info, port 0, or a path with spaces or control characters.
pub fn parse_url(url: &str) -> Option<Location> {
    let url = url.trim();
    let url = url.split('#').next()?;
    if !is_http(url) {
        return None;
    }
    let rest = &url[7..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return None;
    }
    let (ip, port): (IpAddr, Option<&str>) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        let port = match p {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (IpAddr::V6(h.parse().ok()?), port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (IpAddr::V4(h.parse().ok()?), Some(p)),
            None => (IpAddr::V4(authority.parse().ok()?), None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => 80,
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    path_ok(&path).then_some(Location { addr: SocketAddr::new(ip, port), path })
}

/// RFC 3986 §5.2.4: remove `.` and `..` segments from a path (the query left as it is).
fn remove_dots(path: &str) -> String {
    let (p, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = p.split('/').skip(1).collect();
    for (i, s) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *s {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = String::from("/");
    r.push_str(&out.join("/"));
    if let Some(q) = query {
        r.push('?');
        r.push_str(q);
    }
    r
}

/// Resolve a URL from a description against `base` (RFC 3986 §5.2: absolute, network-path `//…`,
/// absolute-path `/…`, or relative to the base's directory). `None` when it is not an http URL on an IP
/// literal.
pub fn resolve(base: &Location, reference: &str) -> Option<Location> {
    let r = reference.trim();
    let r = r.split('#').next()?;
    if r.is_empty() {
        return None;
    }
    if is_http(r) {
        return parse_url(r).map(|l| Location { path: remove_dots(&l.path), ..l });
    }
    if r.starts_with("//") {
        return parse_url(&format!("http:{r}")).map(|l| Location { path: remove_dots(&l.path), ..l });
    }
    // Another scheme ("https:", "file:"): a colon before any '/' or '?'.
    if r.find(':').is_some_and(|c| r.find(['/', '?']).is_none_or(|s| c < s)) {
        return None;
    }
    let merged = if r.starts_with('/') {
        r.to_string()
    } else if r.starts_with('?') {
        let p = base.path.split('?').next().unwrap_or("/");
        format!("{p}{r}")
    } else {
        let p = base.path.split('?').next().unwrap_or("/");
        let dir = &p[..p.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{r}", if dir.is_empty() { "/" } else { dir })
    };
    let path = remove_dots(&merged);
    path_ok(&path).then_some(Location { addr: base.addr, path })
}

// ---- SSDP search ---------------------------------------------------------------------------------------------

/// The SSDP group and port (UDA 1.1 §1.1.2).
pub const SSDP: SocketAddrV4 = SocketAddrV4::new(super::announce::SSDP_GROUP, super::announce::SSDP_PORT);

/// One M-SEARCH datagram for `target` (UDA 1.1 §1.3.2; MX 2: answers spread over 2 s at most).
pub fn search_request(target: &str) -> String {
    format!("M-SEARCH * HTTP/1.1\r\nHOST: {SSDP}\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\nST: {target}\r\n\r\n")
}

/// A search answer, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Where the device description is.
    pub location: Location,
    /// The search target answered.
    pub st: String,
    /// The unique service name (`uuid:…[::…]`).
    pub usn: String,
    /// BOOTID.UPNP.ORG (UDA 1.1; absent from UPnP 1.0 devices).
    pub boot_id: Option<u32>,
}

/// Why a datagram is not a search answer we use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unusable {
    #[error("{0} bytes is too long for a search answer")]
    Length(usize),
    #[error("not an HTTP/1.1 200 search answer")]
    NotAnswer,
    #[error("the answer names no usable LOCATION (http, an IP address)")]
    Location,
    #[error("the answer is for {0:?}, not an Internet gateway")]
    NotGateway(String),
    #[error("the description is not well-formed XML, or too deep or too large")]
    Xml,
    #[error("the description has no root device")]
    NoDevice,
}

/// Decode an SSDP search answer (UDA 1.1 §1.3.3). Header names are case-insensitive; only answers for an
/// Internet gateway or its connection services are used.
pub fn parse_search_answer(b: &[u8]) -> Result<Found, Unusable> {
    if b.len() > DATAGRAM_MAX {
        return Err(Unusable::Length(b.len()));
    }
    let text = String::from_utf8_lossy(b);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_ascii_whitespace();
    if !matches!(parts.next(), Some("HTTP/1.1" | "HTTP/1.0")) || parts.next() != Some("200") {
        return Err(Unusable::NotAnswer);
    }
    let (mut location, mut st, mut usn, mut boot_id) = (None, None, String::new(), None);
    for line in lines.take(32) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_uppercase().as_str() {
            "LOCATION" => location = Some(parse_url(value).ok_or(Unusable::Location)?),
            "ST" => st = Some(value.chars().filter(|c| c.is_ascii_graphic()).take(128).collect::<String>()),
            "USN" => usn = value.chars().filter(|c| c.is_ascii_graphic()).take(256).collect(),
            "BOOTID.UPNP.ORG" => boot_id = value.parse().ok(),
            _ => {}
        }
    }
    let st = st.ok_or(Unusable::NotAnswer)?;
    let gateway = ["InternetGatewayDevice:", "WANIPConnection:", "WANPPPConnection:"].iter().any(|k| st.contains(k));
    if !gateway || !st.starts_with("urn:schemas-upnp-org:") {
        return Err(Unusable::NotGateway(st));
    }
    let location = location.ok_or(Unusable::Location)?;
    Ok(Found { location, st, usn, boot_id })
}

/// The rule over one search's answers: a device is believed only at the address its answer came from (a LAN
/// host cannot point us at another host, or off the LAN); each LOCATION is asked once; at most
/// [`ANSWERS_MAX`] datagrams are read and [`DEVICES_MAX`] devices asked.
#[derive(Debug, Default)]
pub struct Search {
    heard: usize,
    asked: Vec<Location>,
}

impl Search {
    /// Whether more datagrams are worth reading.
    pub fn open(&self) -> bool {
        self.heard < ANSWERS_MAX && self.asked.len() < DEVICES_MAX
    }

    /// A datagram from `from`: the description to read next, if it names a new, believable device.
    pub fn heard(&mut self, from: SocketAddr, b: &[u8]) -> Option<Found> {
        if !self.open() {
            return None;
        }
        self.heard += 1;
        let f = parse_search_answer(b).ok()?;
        if f.location.addr.ip() != from.ip() || self.asked.contains(&f.location) {
            return None;
        }
        self.asked.push(f.location.clone());
        Some(f)
    }
}

// ---- device description --------------------------------------------------------------------------------------

/// A service of the device: its type and where its control point is (resolved, on the device's address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// `urn:schemas-upnp-org:service:WANIPConnection:2` and the like.
    pub service_type: String,
    /// The controlURL, resolved.
    pub control: Location,
}

impl Service {
    /// IGD:2's WANIPConnection:2 has AddAnyPortMapping (§2.5); version 1 services do not.
    pub fn has_any_port(&self) -> bool {
        self.service_type == WAN_SERVICES[0]
    }
}

/// What a device description says that we use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description {
    /// The root device's friendlyName (printable, at most 64 characters).
    pub friendly_name: Option<String>,
    /// The connection service that maps ports ([`WAN_SERVICES`]).
    pub wan: Option<Service>,
    /// The WANIPv6FirewallControl control point.
    pub firewall6: Option<Location>,
}

impl Description {
    /// A device that can map IPv4 ports.
    pub fn maps_ports(&self) -> bool {
        self.wan.is_some()
    }

    /// A device that can open IPv6 pinholes.
    pub fn opens_pinholes(&self) -> bool {
        self.firewall6.is_some()
    }
}

fn push_capped(s: &mut String, piece: &str) {
    for c in piece.chars() {
        if s.len() >= TEXT_MAX {
            return;
        }
        s.push(c);
    }
}

/// Decode a device description fetched from `location` (UDA 1.1 §2.3). Services are looked for in the root
/// device and every embedded device; their control URLs are resolved against URLBase when it is a usable
/// URL, else against `location`, and kept only when they stay on the device's address.
pub fn parse_description(xml: &[u8], location: &Location) -> Result<Description, Unusable> {
    if xml.len() > BODY_MAX {
        return Err(Unusable::Xml);
    }
    let text = std::str::from_utf8(xml).map_err(|_| Unusable::Xml)?;
    let mut r = quick_xml::Reader::from_str(text);
    let mut path: Vec<String> = Vec::new();
    let mut elements = 0usize;
    let mut text_buf = String::new();
    let (mut url_base, mut friendly, mut saw_device) = (None::<String>, None::<String>, false);
    let mut services: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        let ev = r.read_event().map_err(|_| Unusable::Xml)?;
        let (ev, empty) = match ev {
            Event::Empty(e) => (Event::Start(e), true),
            other => (other, false),
        };
        match ev {
            Event::Start(e) => {
                elements += 1;
                if path.len() >= XML_DEPTH_MAX || elements > XML_ELEMENTS_MAX {
                    return Err(Unusable::Xml);
                }
                let local = e.local_name().as_ref().to_string();
                if local == "device" {
                    saw_device = true;
                }
                if local == "service" && current.is_none() {
                    current = Some((String::new(), String::new()));
                }
                text_buf.clear();
                if empty {
                    close(&path, &local, "", &mut url_base, &mut friendly, &mut current, &mut services);
                } else {
                    path.push(local);
                }
            }
            Event::End(_) => {
                let Some(local) = path.pop() else { return Err(Unusable::Xml) };
                let t = std::mem::take(&mut text_buf);
                close(&path, &local, t.trim(), &mut url_base, &mut friendly, &mut current, &mut services);
            }
            // A reference to an entity XML does not predefine adds nothing (no DTD); the text is kept, capped.
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                push_capped(&mut text_buf, &crate::wire::xml_text(&ev).unwrap_or_default())
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(Unusable::Xml);
    }
    if !saw_device {
        return Err(Unusable::NoDevice);
    }
    let base = url_base.as_deref().and_then(parse_url).filter(|b| b.addr.ip() == location.addr.ip()).unwrap_or_else(|| location.clone());
    let on_device = |u: &str| resolve(&base, u).filter(|l| l.addr.ip() == location.addr.ip());
    let wan = WAN_SERVICES.iter().find_map(|kind| {
        services.iter().filter(|(t, _)| t == kind).find_map(|(t, c)| on_device(c).map(|control| Service { service_type: t.clone(), control }))
    });
    let firewall6 = services.iter().filter(|(t, _)| t == FIREWALL6).find_map(|(_, c)| on_device(c));
    let friendly_name = friendly
        .map(|n| n.chars().filter(|c| !c.is_control()).take(64).collect::<String>().trim().to_string())
        .filter(|n| !n.is_empty());
    Ok(Description { friendly_name, wan, firewall6 })
}

/// An element of the description closed: keep what it says (`path` is its parents, root first).
fn close(
    path: &[String],
    local: &str,
    text: &str,
    url_base: &mut Option<String>,
    friendly: &mut Option<String>,
    current: &mut Option<(String, String)>,
    services: &mut Vec<(String, String)>,
) {
    let parent = path.last().map(String::as_str);
    match (local, parent) {
        ("URLBase", _) if path.len() == 1 => *url_base = Some(text.to_string()),
        // The root device's name: root/device/friendlyName.
        ("friendlyName", Some("device")) if path.len() == 2 && friendly.is_none() => *friendly = Some(text.to_string()),
        ("serviceType", Some("service")) => {
            if let Some(c) = current.as_mut() {
                c.0 = text.to_string();
            }
        }
        ("controlURL", Some("service")) => {
            if let Some(c) = current.as_mut() {
                c.1 = text.to_string();
            }
        }
        ("service", _) => {
            if let Some(c) = current.take()
                && services.len() < SERVICES_MAX
                && !c.0.is_empty()
                && !c.1.is_empty()
            {
                services.push(c);
            }
        }
        _ => {}
    }
}

// ---- SOAP ----------------------------------------------------------------------------------------------------

/// A SOAP request body for `action` of `service` with `args` in order (UDA 1.1 §3.2.1; values escaped).
pub fn envelope(service: &str, action: &str, args: &[(&str, &str)]) -> String {
    let mut inner = String::new();
    for (k, v) in args {
        inner.push_str(&format!("<{k}>{}</{k}>", crate::wire::xml_escape(v)));
    }
    format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{service}\">\
         {inner}</u:{action}></s:Body></s:Envelope>\r\n"
    )
}

/// What the device answered to an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// HTTP 200 with `<action>Response`: the action's name and its out arguments in order.
    Done { action: String, args: Vec<(String, String)> },
    /// A UPnP error (UDA 1.1 §3.2.2): code and description (printable, at most 120 characters).
    Fault { code: u16, description: String },
    /// Neither: not a SOAP answer we understand.
    Garbled,
}

impl Reply {
    /// The out argument `name` of a [`Reply::Done`].
    pub fn arg(&self, name: &str) -> Option<&str> {
        match self {
            Reply::Done { args, .. } => args.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }
}

/// Decode a SOAP answer (HTTP status and body, UDA 1.1 §3.2.2). Element names are matched by their local
/// name (routers use any prefix, or none); anything after the envelope is ignored.
pub fn reply(status: u16, body: &[u8]) -> Reply {
    if body.len() > BODY_MAX {
        return Reply::Garbled;
    }
    let Ok(text) = std::str::from_utf8(body) else { return Reply::Garbled };
    let mut r = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut elements = 0usize;
    let mut text_buf = String::new();
    // The first element in the Body decides: <action>Response (its children are the out arguments) or Fault.
    let (mut body_at, mut first_seen, mut in_response, mut in_fault) = (false, false, false, false);
    let mut done: Option<(String, Vec<(String, String)>)> = None;
    let (mut fault, mut code, mut description) = (false, None::<String>, String::new());
    loop {
        let Ok(ev) = r.read_event() else { return Reply::Garbled };
        let (ev, empty) = match ev {
            Event::Empty(e) => (Event::Start(e), true),
            other => (other, false),
        };
        match ev {
            Event::Start(e) => {
                elements += 1;
                if depth >= XML_DEPTH_MAX || elements > XML_ELEMENTS_MAX {
                    return Reply::Garbled;
                }
                let local = e.local_name().as_ref().to_string();
                match depth {
                    0 if local != "Envelope" => return Reply::Garbled,
                    1 => body_at = local == "Body",
                    2 if body_at && !first_seen => {
                        first_seen = true;
                        if local == "Fault" {
                            (fault, in_fault) = (true, !empty);
                        } else if let Some(action) = local.strip_suffix("Response") {
                            done = Some((action.to_string(), Vec::new()));
                            in_response = !empty;
                        }
                    }
                    3 if in_response && empty => {
                        if let Some((_, args)) = done.as_mut().filter(|(_, a)| a.len() < ARGS_MAX) {
                            args.push((local, String::new()));
                        }
                    }
                    _ => {}
                }
                text_buf.clear();
                if !empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = match depth.checked_sub(1) {
                    Some(d) => d,
                    None => return Reply::Garbled,
                };
                let local = e.local_name().as_ref().to_string();
                let t = std::mem::take(&mut text_buf);
                match depth {
                    3 if in_response => {
                        if let Some((_, args)) = done.as_mut().filter(|(_, a)| a.len() < ARGS_MAX) {
                            args.push((local, t.trim().to_string()));
                        }
                    }
                    2 => (in_response, in_fault) = (false, false),
                    0 => break, // the envelope closed: anything after it is not ours
                    _ if in_fault && local == "errorCode" => code = Some(t.trim().to_string()),
                    _ if in_fault && local == "errorDescription" => {
                        description = t.trim().chars().filter(|c| !c.is_control()).take(120).collect()
                    }
                    _ => {}
                }
            }
            // A reference to an entity XML does not predefine adds nothing (no DTD); the text is kept, capped.
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                push_capped(&mut text_buf, &crate::wire::xml_text(&ev).unwrap_or_default())
            }
            Event::Eof => return Reply::Garbled,
            _ => {}
        }
    }
    match (done, code.and_then(|c| c.parse::<u16>().ok())) {
        (Some((action, args)), _) if status == 200 => Reply::Done { action, args },
        (_, Some(code)) if fault => Reply::Fault { code, description },
        _ => Reply::Garbled,
    }
}

/// The name WANIPConnection (v1 §2.4, v2 §2.5) and UDA 1.1 §3.2.2 give an error code.
pub fn error_name(code: u16) -> Option<&'static str> {
    Some(match code {
        401 => "Invalid Action",
        402 => "Invalid Args",
        501 => "Action Failed",
        602 => "Optional Action Not Implemented",
        605 => "String Argument Too Long",
        606 => "Action not authorized",
        713 => "SpecifiedArrayIndexInvalid",
        714 => "NoSuchEntryInArray",
        715 => "WildCardNotPermittedInSrcIP",
        716 => "WildCardNotPermittedInExtPort",
        718 => "ConflictInMappingEntry",
        724 => "SamePortValuesRequired",
        725 => "OnlyPermanentLeasesSupported",
        726 => "RemoteHostOnlySupportsWildcard",
        727 => "ExternalPortOnlySupportsWildcard",
        728 => "NoPortMapsAvailable",
        729 => "ConflictWithOtherMechanisms",
        732 => "WildCardNotPermittedInIntPort",
        _ => return None,
    })
}

/// AddPortMapping (WANIPConnection:1 §2.4, :2 §2.5): TCP `external` → `internal` for `lease` seconds (0:
/// permanent), from any remote host, enabled, described.
pub fn add_port_mapping(service: &str, external: u16, internal: SocketAddrV4, lease: u32, description: &str) -> String {
    mapping_envelope(service, "AddPortMapping", external, internal, lease, description)
}

/// AddAnyPortMapping (WANIPConnection:2 §2.5): as AddPortMapping, but the router picks a free external port
/// (`external` is the one we would like); it answers NewReservedPort.
pub fn add_any_port_mapping(service: &str, external: u16, internal: SocketAddrV4, lease: u32, description: &str) -> String {
    mapping_envelope(service, "AddAnyPortMapping", external, internal, lease, description)
}

/// The arguments of AddPortMapping and AddAnyPortMapping, in the spec's order.
fn mapping_envelope(service: &str, action: &str, external: u16, internal: SocketAddrV4, lease: u32, description: &str) -> String {
    let (ext, port, client, lease) = (external.to_string(), internal.port().to_string(), internal.ip().to_string(), lease.to_string());
    let args = [
        ("NewRemoteHost", ""),
        ("NewExternalPort", ext.as_str()),
        ("NewProtocol", "TCP"),
        ("NewInternalPort", port.as_str()),
        ("NewInternalClient", client.as_str()),
        ("NewEnabled", "1"),
        ("NewPortMappingDescription", description),
        ("NewLeaseDuration", lease.as_str()),
    ];
    envelope(service, action, &args)
}

/// DeletePortMapping of TCP `external` (any remote host).
pub fn delete_port_mapping(service: &str, external: u16) -> String {
    envelope(service, "DeletePortMapping", &[("NewRemoteHost", ""), ("NewExternalPort", &external.to_string()), ("NewProtocol", "TCP")])
}

/// GetExternalIPAddress: answers NewExternalIPAddress.
pub fn get_external_ip_address(service: &str) -> String {
    envelope(service, "GetExternalIPAddress", &[])
}

/// GetSpecificPortMappingEntry of TCP `external`: the entry, or error 714 NoSuchEntryInArray.
pub fn get_specific_entry(service: &str, external: u16) -> String {
    envelope(service, "GetSpecificPortMappingEntry", &[("NewRemoteHost", ""), ("NewExternalPort", &external.to_string()), ("NewProtocol", "TCP")])
}

/// GetGenericPortMappingEntry number `index`: the entry, or error 713 SpecifiedArrayIndexInvalid past the end.
pub fn get_generic_entry(service: &str, index: u16) -> String {
    envelope(service, "GetGenericPortMappingEntry", &[("NewPortMappingIndex", &index.to_string())])
}

/// A port mapping entry as GetSpecificPortMappingEntry / GetGenericPortMappingEntry answer it (the specific
/// one names no external port or protocol: they are the ones asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub external_port: Option<u16>,
    pub protocol: Option<String>,
    pub internal_port: u16,
    pub internal_client: Option<IpAddr>,
}

/// The entry in an answer to GetSpecificPortMappingEntry or GetGenericPortMappingEntry.
pub fn entry(r: &Reply) -> Option<Entry> {
    Some(Entry {
        external_port: r.arg("NewExternalPort").and_then(|p| p.parse().ok()),
        protocol: r.arg("NewProtocol").map(str::to_ascii_uppercase),
        internal_port: r.arg("NewInternalPort")?.parse().ok()?,
        internal_client: r.arg("NewInternalClient").and_then(|c| c.parse().ok()),
    })
}

// ---- the shell -----------------------------------------------------------------------------------------------

/// Why an action did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The router answered with a UPnP error.
    #[error("UPnP error {code} ({description})")]
    Refused { code: u16, description: String },
    /// No usable answer: no connection, a deadline, not HTTP, not SOAP.
    #[error("{0}")]
    Unanswered(String),
}

/// One HTTP/1.1 exchange (hyper's client connection; Content-Length, chunked or close-delimited bodies):
/// `from` our address when given, to `to`; status and body (at most [`BODY_MAX`]), within `deadline`.
pub async fn exchange(
    from: Option<IpAddr>,
    to: SocketAddr,
    method: Method,
    path: &str,
    soap_action: Option<String>,
    body: String,
    deadline: Duration,
) -> Result<(u16, Bytes), String> {
    let work = async {
        let tcp = super::fetch::connect_from(from, to).await.map_err(|e| format!("could not connect to {to}: {e}"))?;
        let http = |e: hyper::Error| format!("HTTP error talking to {to}: {e}");
        let (mut send, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp)).await.map_err(http)?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host_of(to))
            .header(header::CONNECTION, "close")
            .header(header::USER_AGENT, concat!("Linux UPnP/1.1 Hearth/", env!("CARGO_PKG_VERSION")));
        if let Some(a) = soap_action {
            req = req.header(header::CONTENT_TYPE, "text/xml; charset=\"utf-8\"").header("SOAPAction", format!("\"{a}\""));
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("bad request to {to}: {e}"))?;
        let ask = async {
            let resp = send.send_request(req).await.map_err(http)?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), BODY_MAX)
                .collect()
                .await
                .map_err(|_| format!("the answer from {to} is larger than {BODY_MAX} bytes, or cut short"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        // Drive the connection and the exchange together, in this task: nothing outlives the deadline.
        let mut conn = std::pin::pin!(conn);
        let mut ask = std::pin::pin!(ask);
        let mut conn_done = false;
        std::future::poll_fn(|cx| {
            if !conn_done {
                match conn.as_mut().poll(cx) {
                    std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(http(e))),
                    std::task::Poll::Ready(Ok(())) => conn_done = true,
                    std::task::Poll::Pending => {}
                }
            }
            ask.as_mut().poll(cx)
        })
        .await
    };
    tokio::time::timeout(deadline, work).await.map_err(|_| format!("no answer from {to} within {deadline:?}"))?
}

/// One SOAP action: POST the envelope to `control`, decode the answer; a `Done` for another action than
/// `action` is garbled.
pub async fn call(from: Option<IpAddr>, control: &Location, service: &str, action: &str, body: String) -> Result<Reply, Failure> {
    let (status, bytes) =
        exchange(from, control.addr, Method::POST, &control.path, Some(format!("{service}#{action}")), body, EXCHANGE_DEADLINE)
            .await
            .map_err(Failure::Unanswered)?;
    match reply(status, &bytes) {
        Reply::Done { action: a, .. } if a != action => Err(Failure::Unanswered(format!("the answer to {action} is for {a}"))),
        Reply::Done { action, args } => Ok(Reply::Done { action, args }),
        Reply::Fault { code, description } => {
            let description = if description.is_empty() { error_name(code).unwrap_or("").to_string() } else { description };
            Err(Failure::Refused { code, description })
        }
        Reply::Garbled => Err(Failure::Unanswered(format!("the answer to {action} is not SOAP (HTTP {status})"))),
    }
}

/// An Internet gateway found on the LAN: where its description is and what it says.
#[derive(Clone, Debug)]
pub struct Gateway {
    /// The LOCATION it answered with (its address is the device's).
    pub location: Location,
    /// Its description.
    pub description: Description,
}

/// Why a search found no gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum Unfound {
    /// No device answered (or none with a description we could read).
    Silent,
    /// Gateways answered, but none has the service asked for; the first one's LOCATION.
    Lacking(Location),
}

/// Search the LAN from `local` for an Internet gateway whose description `wanted` accepts, for at most `wait`
/// (descriptions read inside it). The search goes out twice (UDP is lossy; UDA 1.1 §1.3.2), 1 s apart.
pub async fn search(local: Ipv4Addr, wait: Duration, wanted: fn(&Description) -> bool) -> Result<Gateway, Unfound> {
    let until = tokio::time::Instant::now() + wait;
    let sock = match search_socket(local) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(%local, error = %e, "cannot search for a UPnP IGD");
            return Err(Unfound::Silent);
        }
    };
    send_searches(&sock).await;
    let mut again = Some(tokio::time::Instant::now() + Duration::from_secs(1));
    let mut rule = Search::default();
    let mut lacking = None;
    let mut buf = vec![0u8; DATAGRAM_MAX];
    while rule.open() {
        let got = tokio::select! {
            r = tokio::time::timeout_at(until, sock.recv_from(&mut buf)) => r,
            _ = tokio::time::sleep_until(again.unwrap_or(until)), if again.is_some() => {
                again = None;
                send_searches(&sock).await;
                continue;
            }
        };
        let (n, from) = match got {
            Err(_) => break,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "SSDP receive");
                continue;
            }
            Ok(Ok(v)) => v,
        };
        let Some(found) = rule.heard(from, &buf[..n]) else { continue };
        let left = until.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_millis(500));
        let l = &found.location;
        let described = exchange(None, l.addr, Method::GET, &l.path, None, String::new(), left.min(EXCHANGE_DEADLINE)).await;
        let d = match described {
            Ok((200, body)) => parse_description(&body, l),
            Ok((status, _)) => {
                tracing::info!(location = %l.addr, status, "the IGD description could not be read");
                continue;
            }
            Err(e) => {
                tracing::info!(location = %l.addr, error = %e, "the IGD description could not be read");
                continue;
            }
        };
        match d {
            Ok(description) if wanted(&description) => return Ok(Gateway { location: found.location, description }),
            Ok(_) => lacking = lacking.or(Some(found.location)),
            Err(e) => tracing::info!(location = %l.addr, error = %e, "unusable IGD description"),
        }
    }
    Err(lacking.map_or(Unfound::Silent, Unfound::Lacking))
}

async fn send_searches(sock: &tokio::net::UdpSocket) {
    for t in TARGETS {
        if let Err(e) = sock.send_to(search_request(t).as_bytes(), SocketAddr::V4(SSDP)).await {
            tracing::debug!(error = %e, "M-SEARCH not sent");
        }
    }
}

/// The search socket: bound to our LAN address, multicast out of its interface with TTL 2 (UDA 1.1 §1.1.2:
/// SSDP stays on the LAN).
fn search_socket(local: Ipv4Addr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(local, 0)))?;
    if !local.is_unspecified() {
        s.set_multicast_if_v4(&local)?;
    }
    s.set_multicast_ttl_v4(2)?;
    s.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(s.into())
}

impl Gateway {
    /// The connection service (searched with [`Description::maps_ports`], so present).
    fn wan(&self) -> Result<&Service, Failure> {
        self.description.wan.as_ref().ok_or_else(|| Failure::Unanswered("the IGD has no WANIPConnection service".into()))
    }

    async fn act(&self, action: &str, body: impl FnOnce(&str) -> String) -> Result<Reply, Failure> {
        let s = self.wan()?;
        call(None, &s.control, &s.service_type, action, body(&s.service_type)).await
    }

    /// GetExternalIPAddress.
    pub async fn external_address(&self) -> Result<IpAddr, Failure> {
        let r = self.act("GetExternalIPAddress", get_external_ip_address).await?;
        r.arg("NewExternalIPAddress")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Failure::Unanswered("GetExternalIPAddress named no address".into()))
    }

    /// AddPortMapping of TCP `external` → `internal`.
    pub async fn add_port_mapping(&self, external: u16, internal: SocketAddrV4, lease: u32, description: &str) -> Result<(), Failure> {
        self.act("AddPortMapping", |s| add_port_mapping(s, external, internal, lease, description)).await.map(|_| ())
    }

    /// Map TCP `internal` on any external port, `near` preferred: AddAnyPortMapping where the service has it
    /// (WANIPConnection:2), else AddPortMapping on random ports until one is free (ConflictInMappingEntry
    /// moves on, any other refusal ends it). The port mapped.
    pub async fn add_any_port_mapping(&self, near: u16, internal: SocketAddrV4, lease: u32, description: &str) -> Result<u16, Failure> {
        if self.wan()?.has_any_port() {
            match self.act("AddAnyPortMapping", |s| add_any_port_mapping(s, near, internal, lease, description)).await {
                Ok(r) => {
                    return r
                        .arg("NewReservedPort")
                        .and_then(|p| p.parse().ok())
                        .filter(|p| *p != 0)
                        .ok_or_else(|| Failure::Unanswered("AddAnyPortMapping named no port".into()));
                }
                // The router lists the v2 service but has not implemented the action.
                Err(Failure::Refused { code: 401 | 602, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for _ in 0..RANDOM_TRIES {
            let port = 32768 + u16::from_be_bytes(crate::system::random::bytes()) % 32768;
            match self.add_port_mapping(port, internal, lease, description).await {
                Ok(()) => return Ok(port),
                Err(Failure::Refused { code: 718, .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Failure::Refused { code: 718, description: "ConflictInMappingEntry".into() })
    }

    /// DeletePortMapping of TCP `external`.
    pub async fn delete_port_mapping(&self, external: u16) -> Result<(), Failure> {
        self.act("DeletePortMapping", |s| delete_port_mapping(s, external)).await.map(|_| ())
    }

    /// GetSpecificPortMappingEntry of TCP `external`.
    pub async fn specific_entry(&self, external: u16) -> Result<Entry, Failure> {
        let r = self.act("GetSpecificPortMappingEntry", |s| get_specific_entry(s, external)).await?;
        entry(&r).ok_or_else(|| Failure::Unanswered("GetSpecificPortMappingEntry named no internal port".into()))
    }

    /// GetGenericPortMappingEntry number `index`.
    pub async fn generic_entry(&self, index: u16) -> Result<Entry, Failure> {
        let r = self.act("GetGenericPortMappingEntry", |s| get_generic_entry(s, index)).await?;
        entry(&r).ok_or_else(|| Failure::Unanswered("GetGenericPortMappingEntry named no internal port".into()))
    }
}

#[cfg(test)]
#[path = "igd_tests.rs"]
mod tests;
