//! GENA eventing, sans-IO (UPnP Device Architecture 1.1 §4): the SUBSCRIBE / renewal / UNSUBSCRIBE header
//! rules, the subscription table, the moderation clock and the NOTIFY messages. The tokio shell that answers on
//! 32469 and sends the NOTIFYs is [`super::events`]; every function here takes the time as an argument.
//!
//! Requests (§4.1.2, §4.1.3, §4.1.4), on the event URLs [`CDS_EVENTS`] and [`CMS_EVENTS`], with no body:
//!
//! ```text
//! SUBSCRIBE /event/cds HTTP/1.1          SUBSCRIBE /event/cds HTTP/1.1     UNSUBSCRIBE /event/cds HTTP/1.1
//! HOST: 10.77.0.1:32469                  HOST: 10.77.0.1:32469             HOST: 10.77.0.1:32469
//! CALLBACK: <http://10.77.0.2:4000/cb>   SID: uuid:<36 chars>              SID: uuid:<36 chars>
//! NT: upnp:event                         TIMEOUT: Second-1800
//! TIMEOUT: Second-1800                   (a renewal)
//! ```
//!
//! Answers: 200 with `SID: uuid:…` and `TIMEOUT: Second-N` (N clamped to [`MIN_TIMEOUT`]..=[`MAX_TIMEOUT`]);
//! 400 for SID together with NT or CALLBACK (§4.1.2), a malformed TIMEOUT, or a body; 412 for a missing or wrong
//! NT, a missing CALLBACK, a CALLBACK this server will not call, or an unknown SID; 503 when the table is full
//! (§4.1.2: "5xx" when the publisher cannot accept a subscription; [`MAX_SUBSCRIPTIONS`] in all,
//! [`PER_SOURCE`] per source address).
//!
//! CallStranger (CVE-2020-12695): a CALLBACK URL is accepted only when it is `http://` to an address literal equal
//! to the subscriber's own address (the TCP peer of the SUBSCRIBE, which the DLNA rule admitted as LAN), with a
//! port, and that address is not unspecified, loopback, multicast or broadcast. No host names (nothing is
//! resolved), and every URL of the field must pass, else 412 and nothing is kept.
//!
//! Event messages (§4.2.1) go to the first CALLBACK URL:
//!
//! ```text
//! NOTIFY /cb HTTP/1.1
//! HOST: 10.77.0.2:4000
//! CONTENT-TYPE: text/xml; charset="utf-8"
//! CONTENT-LENGTH: <bytes>
//! NT: upnp:event
//! NTS: upnp:propchange
//! SID: uuid:<36 chars>
//! SEQ: <0 for the initial event, then +1, wrapping from 4294967295 to 1>
//! CONNECTION: close
//!
//! <?xml version="1.0" encoding="utf-8"?>
//! <e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property><SystemUpdateID>7</SystemUpdateID>
//! </e:property>…</e:propertyset>
//! ```
//!
//! The initial event (SEQ 0) carries every evented variable of the service: ContentDirectory `SystemUpdateID`
//! and `ContainerUpdateIDs` (empty: nothing changed yet), ConnectionManager `SourceProtocolInfo`,
//! `SinkProtocolInfo` and `CurrentConnectionIDs`. A ContentDirectory change carries the new `SystemUpdateID`
//! and `ContainerUpdateIDs` = `0,<SystemUpdateID>`: every container reports the SystemUpdateID as its update
//! id, so the root names the change. Both are moderated (CDS:1 §2.5.21 and Table 2-1, maximum event rate
//! 0.5 Hz; UDA §4.3): at most one change event per [`MODERATION`] per subscriber, later changes coalesced into
//! it with the newest value. ConnectionManager's variables do not change while DLNA is on, so its subscribers
//! get the initial event only.
//!
//! A message that fails (no connection in the shell's connect deadline, no answer in its total deadline, or
//! anything but 2xx) is abandoned, and its SEQ is used (§4.2.1: the subscriber sees the gap). Tolerance (ours:
//! the spec keeps the subscription): a failed initial event drops the subscription (the callback never worked),
//! later [`MAX_FAILURES`] failures in a row drop it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// ContentDirectory's event URL (the description's `eventSubURL`).
pub const CDS_EVENTS: &str = "/event/cds";
/// ConnectionManager's event URL (the description's `eventSubURL`).
pub const CMS_EVENTS: &str = "/event/cms";
/// The shortest subscription granted (a shorter TIMEOUT is raised to it), seconds.
pub const MIN_TIMEOUT: u32 = 300;
/// The longest subscription granted, and the one given without TIMEOUT or with `Second-infinite`, seconds
/// (UDA 1.1 §4.1.2 recommends 1800).
pub const MAX_TIMEOUT: u32 = 1800;
/// Subscriptions held at once in all; more are 503 (each costs a slot and a NOTIFY per change).
pub const MAX_SUBSCRIPTIONS: usize = 32;
/// Subscriptions held at once for one source address; more are 503 (a TV holds one or two).
pub const PER_SOURCE: usize = 4;
/// The least time between two change events to one subscriber (0.5 Hz, CDS:1 Table 2-1).
pub const MODERATION: Duration = Duration::from_secs(2);
/// Change events failing in a row that drop a subscription.
pub const MAX_FAILURES: u32 = 2;
/// URLs one CALLBACK field may list; a field with more is refused.
const MAX_URLS: usize = 4;
/// Longest CALLBACK URL accepted, bytes.
const MAX_URL: usize = 256;

/// The service an event URL belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// ContentDirectory:1 at [`CDS_EVENTS`].
    ContentDirectory,
    /// ConnectionManager:1 at [`CMS_EVENTS`].
    ConnectionManager,
}

impl Service {
    /// The service whose event URL is `path`, if any.
    pub fn at(path: &str) -> Option<Service> {
        match path {
            CDS_EVENTS => Some(Service::ContentDirectory),
            CMS_EVENTS => Some(Service::ConnectionManager),
            _ => None,
        }
    }
}

/// Why a GENA request is refused: the status and a sentence for the control point's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 404, 412 or 503.
    pub status: u16,
    /// What was wrong and what to send instead.
    pub message: &'static str,
}

const fn refuse(status: u16, message: &'static str) -> Refusal {
    Refusal { status, message }
}

/// The header fields GENA reads, as sent (None when absent), and whether the request carries a body.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fields<'a> {
    /// `NT`.
    pub nt: Option<&'a [u8]>,
    /// `CALLBACK`.
    pub callback: Option<&'a [u8]>,
    /// `SID`.
    pub sid: Option<&'a [u8]>,
    /// `TIMEOUT`.
    pub timeout: Option<&'a [u8]>,
    /// A body came with the request (Content-Length above 0, or any Transfer-Encoding).
    pub body: bool,
}

/// One URL of a CALLBACK field this server will call: the subscriber's address and port, and the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The subscriber's own address and the port it named.
    pub addr: SocketAddr,
    /// The request target of the NOTIFY (visible ASCII, no spaces).
    pub path: String,
}

/// A GENA request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// A new subscription (§4.1.2): where to send events, for how many seconds.
    Subscribe { callbacks: Vec<Callback>, timeout: u32 },
    /// A renewal (§4.1.2, SID without NT and CALLBACK).
    Renew { sid: String, timeout: u32 },
    /// A cancellation (§4.1.4).
    Unsubscribe { sid: String },
}

/// Check a SUBSCRIBE (`unsubscribe` false) or UNSUBSCRIBE request's fields, from source address `peer`.
pub fn parse(unsubscribe: bool, f: &Fields, peer: IpAddr) -> Result<Ask, Refusal> {
    if f.body {
        return Err(refuse(400, "GENA requests carry no body; send the header fields only."));
    }
    if f.sid.is_some() && (f.nt.is_some() || f.callback.is_some()) {
        return Err(refuse(400, "SID cannot come with NT or CALLBACK: send SID alone to renew or cancel, NT and CALLBACK to subscribe."));
    }
    if unsubscribe {
        let sid = f.sid.ok_or(refuse(412, "UNSUBSCRIBE needs the SID of the subscription."))?;
        return Ok(Ask::Unsubscribe { sid: sid_of(sid)? });
    }
    let timeout = timeout_of(f.timeout)?;
    if let Some(sid) = f.sid {
        return Ok(Ask::Renew { sid: sid_of(sid)?, timeout });
    }
    match f.nt {
        Some(nt) if nt == b"upnp:event" => {}
        Some(_) => return Err(refuse(412, "NT must be upnp:event.")),
        None => return Err(refuse(412, "SUBSCRIBE needs NT: upnp:event and a CALLBACK.")),
    }
    let callback = f.callback.ok_or(refuse(412, "SUBSCRIBE needs a CALLBACK: <http://your-address:port/path>."))?;
    Ok(Ask::Subscribe { callbacks: callbacks_of(callback, peer)?, timeout })
}

/// `uuid:` and 1..=64 visible characters (the table decides whether it is known).
fn sid_of(v: &[u8]) -> Result<String, Refusal> {
    let bad = refuse(412, "That SID is not one this server gave; subscribe again.");
    let s = crate::wire::head::visible(v).ok_or(bad)?.trim();
    let rest = s.strip_prefix("uuid:").ok_or(bad)?;
    if rest.is_empty() || rest.len() > 64 || rest.contains([' ', '\t']) {
        return Err(bad);
    }
    Ok(s.to_string())
}

/// `Second-N` (any N, clamped) or `Second-infinite`; absent is [`MAX_TIMEOUT`]. Anything else is 400.
fn timeout_of(v: Option<&[u8]>) -> Result<u32, Refusal> {
    let Some(v) = v else { return Ok(MAX_TIMEOUT) };
    let bad = refuse(400, "TIMEOUT must be Second-<seconds> (for example Second-1800).");
    let s = crate::wire::head::visible(v).ok_or(bad)?.trim();
    let n = s.get(..7).filter(|p| p.eq_ignore_ascii_case("second-")).map(|_| &s[7..]).ok_or(bad)?;
    if n.eq_ignore_ascii_case("infinite") {
        return Ok(MAX_TIMEOUT);
    }
    if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let secs = n.parse::<u64>().unwrap_or(u64::MAX);
    Ok(secs.clamp(MIN_TIMEOUT as u64, MAX_TIMEOUT as u64) as u32)
}

/// Every `<URL>` of a CALLBACK field, each one this server will call for `peer` (module doc), else 412.
fn callbacks_of(v: &[u8], peer: IpAddr) -> Result<Vec<Callback>, Refusal> {
    let unreadable = refuse(412, "CALLBACK must be one or more <http://address:port/path> URLs.");
    let mut rest = crate::wire::head::visible(v).ok_or(unreadable)?.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('<').ok_or(unreadable)?;
        let end = inner.find('>').ok_or(unreadable)?;
        out.push(callback_of(&inner[..end], peer)?);
        if out.len() > MAX_URLS {
            return Err(refuse(412, "CALLBACK lists too many URLs; send one."));
        }
        rest = inner[end + 1..].trim_start();
    }
    if out.is_empty() {
        return Err(unreadable);
    }
    Ok(out)
}

/// One callback URL: `http://<address literal>[:port]<path>`, the address the subscriber's own.
fn callback_of(url: &str, peer: IpAddr) -> Result<Callback, Refusal> {
    let unreadable = refuse(412, "CALLBACK must be one or more <http://address:port/path> URLs.");
    if url.len() > MAX_URL || url.contains([' ', '\t']) {
        return Err(unreadable);
    }
    let rest = url.get(..7).filter(|p| p.eq_ignore_ascii_case("http://")).map(|_| &url[7..]).ok_or(unreadable)?;
    let (authority, path) = rest.find('/').map(|i| (&rest[..i], &rest[i..])).unwrap_or((rest, "/"));
    let (host, port) = split_authority(authority).ok_or(unreadable)?;
    let ip: IpAddr = host.parse().map_err(|_| refuse(412, "CALLBACK must name an address, not a host name."))?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let never = match ip {
        IpAddr::V4(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    };
    if never {
        return Err(refuse(412, "CALLBACK names an unspecified, loopback, multicast or broadcast address; events go only to your own address."));
    }
    if ip != peer {
        return Err(refuse(412, "CALLBACK names another host; events go only to the address the SUBSCRIBE came from."));
    }
    if port == 0 {
        return Err(unreadable);
    }
    Ok(Callback { addr: SocketAddr::new(ip, port), path: path.to_string() })
}

/// `host[:port]` or `[v6][:port]`; port 80 when absent (RFC 9110 §4.2.1).
fn split_authority(a: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let end = v6.find(']')?;
        (&v6[..end], &v6[end + 1..])
    } else {
        match a.rfind(':') {
            Some(i) => (&a[..i], &a[i..]),
            None => (a, ""),
        }
    };
    let port = match port {
        "" => 80,
        p => {
            let digits = p.strip_prefix(':')?;
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        }
    };
    Some((host, port))
}

/// The values a service's events carry, read when a message is built (ContentDirectory's from the content
/// view's SystemUpdateID; ConnectionManager's fixed at subscription time).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// ContentDirectory: the SystemUpdateID last evented to this subscriber.
    Content { evented: Option<u32> },
    /// ConnectionManager: the SourceProtocolInfo when the subscription was made.
    Connection { source: String },
}

/// One subscription (§4.1.2).
#[derive(Clone, Debug)]
struct Subscription {
    sid: String,
    source: IpAddr,
    callback: Callback,
    expires: Instant,
    kind: Kind,
    /// The SEQ of the next message.
    seq: u32,
    /// The 200 has been written: the initial event may go (§4.2.1: after the response).
    released: bool,
    /// A message is out (one at a time per subscriber).
    sending: bool,
    /// When the last message went out (moderation).
    last: Option<Instant>,
    failures: u32,
}

impl Subscription {
    fn service(&self) -> Service {
        match self.kind {
            Kind::Content { .. } => Service::ContentDirectory,
            Kind::Connection { .. } => Service::ConnectionManager,
        }
    }
}

/// One event message to send: to whom, and the complete request bytes ([`Notify::request`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// The subscription it belongs to (for [`Table::delivered`]).
    pub sid: String,
    /// Where it goes.
    pub to: Callback,
    /// Its SEQ.
    pub seq: u32,
    /// The `e:propertyset` body.
    pub body: String,
}

impl Notify {
    /// The NOTIFY request (§4.2.1), head and body.
    pub fn request(&self) -> Vec<u8> {
        let host = match self.to.addr {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        let mut out = format!(
            "NOTIFY {} HTTP/1.1\r\nHOST: {host}\r\nCONTENT-TYPE: text/xml; charset=\"utf-8\"\r\nCONTENT-LENGTH: {}\r\n\
             NT: upnp:event\r\nNTS: upnp:propchange\r\nSID: {}\r\nSEQ: {}\r\nCONNECTION: close\r\n\r\n",
            self.to.path,
            self.body.len(),
            self.sid,
            self.seq
        )
        .into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// Whether the answer to a NOTIFY, as far as read, says it arrived: Some(true) for 2xx, Some(false) for any
/// other status or bytes that are not an HTTP response, None while the status line is incomplete.
pub fn accepted(answer: &[u8]) -> Option<bool> {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(answer) {
        Ok(httparse::Status::Complete(_)) => Some(r.code.is_some_and(|c| (200..300).contains(&c))),
        // The status line is enough; headers still arriving do not matter.
        Ok(httparse::Status::Partial) => r.code.map(|c| (200..300).contains(&c)),
        Err(httparse::Error::TooManyHeaders) => r.code.map(|c| (200..300).contains(&c)),
        Err(_) => Some(false),
    }
}

/// An `e:propertyset` (§4.2.1) with one `e:property` per (variable, value); values are escaped.
pub fn propertyset(vars: &[(&str, &str)]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<e:propertyset xmlns:e=\"urn:schemas-upnp-org:event-1-0\">");
    for (name, value) in vars {
        s.push_str(&format!("<e:property><{name}>{}</{name}></e:property>", crate::wire::xml_escape(value)));
    }
    s.push_str("</e:propertyset>\n");
    s
}

/// What a subscription or renewal was granted: its SID and seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    /// `uuid:…`.
    pub sid: String,
    /// Seconds until it expires unless renewed.
    pub timeout: u32,
}

/// Every subscription held, at most [`MAX_SUBSCRIPTIONS`] and [`PER_SOURCE`] per source address. Expired ones
/// are gone at the next [`Table::expire`], and every lookup ignores them.
#[derive(Debug, Default)]
pub struct Table {
    subs: Vec<Subscription>,
}

impl Table {
    /// Subscriptions held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// No subscription is held.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Add a subscription for `service` from `source` with SID `sid` (a fresh random `uuid:…`). `source_info` is
    /// ConnectionManager's SourceProtocolInfo (ignored for ContentDirectory). 503 when full; nothing is kept.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        now: Instant,
        service: Service,
        source: IpAddr,
        callbacks: Vec<Callback>,
        timeout: u32,
        sid: String,
        source_info: String,
    ) -> Result<Granted, Refusal> {
        self.expire(now);
        if self.subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(refuse(503, "This server holds as many event subscriptions as it can; try again later."));
        }
        if self.subs.iter().filter(|s| s.source == source).count() >= PER_SOURCE {
            return Err(refuse(503, "Your address holds as many event subscriptions as it may; cancel one first."));
        }
        let callback = callbacks.into_iter().next().ok_or(refuse(412, "SUBSCRIBE needs a CALLBACK."))?;
        let kind = match service {
            Service::ContentDirectory => Kind::Content { evented: None },
            Service::ConnectionManager => Kind::Connection { source: source_info },
        };
        self.subs.push(Subscription {
            sid: sid.clone(),
            source,
            callback,
            expires: now + Duration::from_secs(timeout as u64),
            kind,
            seq: 0,
            released: false,
            sending: false,
            last: None,
            failures: 0,
        });
        Ok(Granted { sid, timeout })
    }

    /// The live subscription `sid` of `service` made from `source`, else 412.
    fn find(&mut self, now: Instant, service: Service, source: IpAddr, sid: &str) -> Result<usize, Refusal> {
        self.subs
            .iter()
            .position(|s| s.sid == sid && s.service() == service && s.source == source && s.expires > now)
            .ok_or(refuse(412, "That SID is not one this server holds (expired or cancelled); subscribe again."))
    }

    /// Renew `sid` for `timeout` seconds from now.
    pub fn renew(&mut self, now: Instant, service: Service, source: IpAddr, sid: &str, timeout: u32) -> Result<Granted, Refusal> {
        let i = self.find(now, service, source, sid)?;
        self.subs[i].expires = now + Duration::from_secs(timeout as u64);
        Ok(Granted { sid: sid.to_string(), timeout })
    }

    /// Cancel `sid`: no more messages are built for it.
    pub fn unsubscribe(&mut self, now: Instant, service: Service, source: IpAddr, sid: &str) -> Result<(), Refusal> {
        let i = self.find(now, service, source, sid)?;
        self.subs.remove(i);
        Ok(())
    }

    /// The 200 for `sid` is out: its initial event may go.
    pub fn release(&mut self, sid: &str) {
        if let Some(s) = self.subs.iter_mut().find(|s| s.sid == sid) {
            s.released = true;
        }
    }

    /// Drop subscriptions whose time is up; how many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.subs.len();
        self.subs.retain(|s| s.expires > now);
        before - self.subs.len()
    }

    /// The messages due at `now`, with ContentDirectory's SystemUpdateID at `update_id`: initial events of
    /// released subscriptions, and a change event to each ContentDirectory subscriber that was last told
    /// another SystemUpdateID, at most one per [`MODERATION`]. Each is marked as out until [`Table::delivered`].
    pub fn due(&mut self, now: Instant, update_id: u32) -> Vec<Notify> {
        let mut out = Vec::new();
        for s in self.subs.iter_mut().filter(|s| s.released && !s.sending && s.expires > now) {
            let body = match (&mut s.kind, s.seq) {
                (Kind::Content { evented }, 0) => {
                    *evented = Some(update_id);
                    propertyset(&[("SystemUpdateID", &update_id.to_string()), ("ContainerUpdateIDs", "")])
                }
                (Kind::Connection { source }, 0) => {
                    propertyset(&[("SourceProtocolInfo", source), ("SinkProtocolInfo", ""), ("CurrentConnectionIDs", "0")])
                }
                (Kind::Content { evented }, _) if *evented != Some(update_id) && s.last.is_none_or(|t| now >= t + MODERATION) => {
                    *evented = Some(update_id);
                    let id = update_id.to_string();
                    propertyset(&[("SystemUpdateID", &id), ("ContainerUpdateIDs", &format!("0,{id}"))])
                }
                _ => continue,
            };
            out.push(Notify { sid: s.sid.clone(), to: s.callback.clone(), seq: s.seq, body });
            s.seq = if s.seq == u32::MAX { 1 } else { s.seq + 1 };
            s.sending = true;
            s.last = Some(now);
        }
        out
    }

    /// The message to `sid` with SEQ `seq` arrived (`ok`) or failed; the subscription is dropped when its initial
    /// event failed or [`MAX_FAILURES`] failed in a row. Whether it is still held.
    pub fn delivered(&mut self, sid: &str, seq: u32, ok: bool) -> bool {
        let Some(i) = self.subs.iter().position(|s| s.sid == sid) else { return false };
        let s = &mut self.subs[i];
        s.sending = false;
        s.failures = if ok { 0 } else { s.failures + 1 };
        if !ok && (seq == 0 || s.failures >= MAX_FAILURES) {
            self.subs.remove(i);
            return false;
        }
        true
    }

    /// When [`Table::due`] may next have something without a new request or change: the end of a moderation
    /// wait or the next expiry, after `now`.
    pub fn next_wake(&self, now: Instant) -> Option<Instant> {
        let moderated = self.subs.iter().filter_map(|s| s.last.map(|t| t + MODERATION));
        let expiries = self.subs.iter().map(|s| s.expires);
        moderated.chain(expiries).filter(|t| *t > now).min()
    }

    /// The subscriptions held from `source` (tests and the log).
    pub fn from_source(&self, source: IpAddr) -> usize {
        self.subs.iter().filter(|s| s.source == source).count()
    }
}

/// A fresh SID: `uuid:` and a random version-4 UUID (RFC 9562 §5.4).
pub fn new_sid() -> String {
    let mut b: [u8; 16] = crate::system::random::bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const TV: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));

    fn subscribe(callback: &str, timeout: Option<&str>) -> Result<Ask, Refusal> {
        let f = Fields { nt: Some(b"upnp:event"), callback: Some(callback.as_bytes()), timeout: timeout.map(str::as_bytes), ..Fields::default() };
        parse(false, &f, TV)
    }

    fn status(r: Result<Ask, Refusal>) -> u16 {
        r.err().map(|e| e.status).unwrap_or(200)
    }

    #[test]
    fn a_subscribe_names_the_subscribers_own_address_and_gets_a_clamped_timeout() {
        let ok = subscribe("<http://10.77.0.2:4000/cb/cds>", Some("Second-600")).unwrap();
        let cb = Callback { addr: "10.77.0.2:4000".parse().unwrap(), path: "/cb/cds".into() };
        assert_eq!(ok, Ask::Subscribe { callbacks: vec![cb], timeout: 600 });
        for (t, want) in [(None, 1800), (Some("Second-1"), 300), (Some("second-99999999999999999999"), 1800), (Some("Second-infinite"), 1800)] {
            assert_eq!(subscribe("<http://10.77.0.2/>", t), Ok(Ask::Subscribe { callbacks: vec![Callback { addr: "10.77.0.2:80".parse().unwrap(), path: "/".into() }], timeout: want }), "{t:?}");
        }
        for t in ["Second-", "Second--5", "Minute-5", "Second-1e3", "Second-123456789012345678901"] {
            assert_eq!(status(subscribe("<http://10.77.0.2:4000/>", Some(t))), 400, "{t}");
        }
    }

    /// CallStranger (CVE-2020-12695): only the subscriber's own address, never another host or a special one.
    #[test]
    fn callbacks_to_anyone_but_the_subscriber_are_412() {
        for url in [
            "<http://10.77.0.3:4000/>",
            "<http://10.78.0.2:4000/>",
            "<http://10.77.0.2:4000/><http://10.78.0.2:80/>",
            "<http://239.255.255.250:1900/>",
            "<http://127.0.0.1:4000/>",
            "<http://255.255.255.255:4000/>",
            "<http://0.0.0.0:4000/>",
            "<http://[::1]:4000/>",
            "<http://tv.local:4000/>",
            "<https://10.77.0.2:4000/>",
            "<http://10.77.0.2:0/>",
            "<http://10.77.0.2:99999/>",
            "<http://10.77.0.2:4000/a b>",
            "http://10.77.0.2:4000/",
            "<http://10.77.0.2:4000/",
            "",
            "<http://10.77.0.2:1/><http://10.77.0.2:2/><http://10.77.0.2:3/><http://10.77.0.2:4/><http://10.77.0.2:5/>",
        ] {
            assert_eq!(status(subscribe(url, None)), 412, "{url}");
        }
        // The subscriber's own multicast or loopback address is refused too.
        let f = Fields { nt: Some(b"upnp:event"), callback: Some(b"<http://127.0.0.1:4000/>"), ..Fields::default() };
        assert_eq!(status(parse(false, &f, "127.0.0.1".parse().unwrap())), 412);
    }

    #[test]
    fn header_combinations_get_the_specs_status() {
        let sid = Some(&b"uuid:0f1e2d3c-0000-4000-8000-000000000001"[..]);
        let nt = Some(&b"upnp:event"[..]);
        let cb = Some(&b"<http://10.77.0.2:4000/>"[..]);
        let case = |unsub, f: Fields| status(parse(unsub, &f, TV));
        assert_eq!(case(false, Fields { sid, nt, ..Fields::default() }), 400);
        assert_eq!(case(false, Fields { sid, callback: cb, ..Fields::default() }), 400);
        assert_eq!(case(true, Fields { sid, nt, ..Fields::default() }), 400);
        assert_eq!(case(false, Fields { nt, callback: cb, body: true, ..Fields::default() }), 400);
        assert_eq!(case(false, Fields { callback: cb, ..Fields::default() }), 412);
        assert_eq!(case(false, Fields { nt, ..Fields::default() }), 412);
        assert_eq!(case(false, Fields { nt: Some(b"upnp:propchange"), callback: cb, ..Fields::default() }), 412);
        assert_eq!(case(true, Fields::default()), 412);
        assert_eq!(case(true, Fields { sid: Some(b"0f1e2d3c"), ..Fields::default() }), 412);
        assert_eq!(parse(false, &Fields { sid, ..Fields::default() }, TV), Ok(Ask::Renew { sid: "uuid:0f1e2d3c-0000-4000-8000-000000000001".into(), timeout: 1800 }));
        assert_eq!(parse(true, &Fields { sid, ..Fields::default() }, TV), Ok(Ask::Unsubscribe { sid: "uuid:0f1e2d3c-0000-4000-8000-000000000001".into() }));
    }

    fn cb(ip: IpAddr) -> Vec<Callback> {
        vec![Callback { addr: SocketAddr::new(ip, 4000), path: "/cb".into() }]
    }

    #[test]
    fn the_table_is_bounded_in_all_and_per_source_and_a_refusal_keeps_nothing() {
        let now = Instant::now();
        let mut t = Table::default();
        for i in 0..PER_SOURCE {
            t.subscribe(now, Service::ContentDirectory, TV, cb(TV), 300, format!("uuid:{i}"), String::new()).unwrap();
        }
        let r = t.subscribe(now, Service::ConnectionManager, TV, cb(TV), 300, "uuid:x".into(), String::new());
        assert_eq!(r.map_err(|e| e.status), Err(503));
        assert_eq!(t.from_source(TV), PER_SOURCE);
        let mut held = t.len();
        for host in 10..=40u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(10, 77, 0, host));
            if t.subscribe(now, Service::ContentDirectory, ip, cb(ip), 300, format!("uuid:h{host}"), String::new()).is_ok() {
                held += 1;
            }
        }
        assert_eq!((held, t.len()), (MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS));
        // Expiry frees the slots.
        assert_eq!(t.expire(now + Duration::from_secs(301)), MAX_SUBSCRIPTIONS);
        assert!(t.is_empty());
    }

    #[test]
    fn renewal_and_cancellation_need_a_live_sid_from_the_same_source() {
        let now = Instant::now();
        let mut t = Table::default();
        let g = t.subscribe(now, Service::ContentDirectory, TV, cb(TV), 300, new_sid(), String::new()).unwrap();
        assert!(g.sid.starts_with("uuid:") && g.sid.len() == 41);
        let other = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 9));
        assert_eq!(t.renew(now, Service::ContentDirectory, other, &g.sid, 300).map_err(|e| e.status), Err(412));
        assert_eq!(t.renew(now, Service::ConnectionManager, TV, &g.sid, 300).map_err(|e| e.status), Err(412));
        let later = now + Duration::from_secs(200);
        assert_eq!(t.renew(later, Service::ContentDirectory, TV, &g.sid, 300), Ok(g.clone()));
        // Renewed at 200 s for 300 s: alive at 450 s, gone at 501 s.
        assert_eq!(t.expire(now + Duration::from_secs(450)), 0);
        assert_eq!(t.unsubscribe(now, Service::ContentDirectory, TV, "uuid:nope").map_err(|e| e.status), Err(412));
        t.unsubscribe(now, Service::ContentDirectory, TV, &g.sid).unwrap();
        assert!(t.is_empty());
        assert_eq!(t.renew(now, Service::ContentDirectory, TV, &g.sid, 300).map_err(|e| e.status), Err(412));
    }

    /// The initial event (SEQ 0, every variable) goes only after the 200; changes are moderated to one per 2 s
    /// with the newest value; SEQ counts up.
    #[test]
    fn initial_event_then_moderated_changes() {
        let t0 = Instant::now();
        let mut t = Table::default();
        let g = t.subscribe(t0, Service::ContentDirectory, TV, cb(TV), 300, new_sid(), String::new()).unwrap();
        assert!(t.due(t0, 5).is_empty(), "nothing before the 200 is written");
        t.release(&g.sid);
        let first = t.due(t0, 5);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].seq, 0);
        assert!(first[0].body.contains("<SystemUpdateID>5</SystemUpdateID>") && first[0].body.contains("<ContainerUpdateIDs></ContainerUpdateIDs>"));
        assert!(t.due(t0, 6).is_empty(), "one message out at a time");
        assert!(t.delivered(&g.sid, 0, true));
        // A burst of changes within the moderation window: nothing until 2 s after the last message.
        let mut sent = Vec::new();
        for ms in (0..6000).step_by(100) {
            let now = t0 + Duration::from_millis(ms);
            for n in t.due(now, 6 + ms as u32 / 100) {
                sent.push((ms, n.seq, n.body.clone()));
                t.delivered(&n.sid, n.seq, true);
            }
        }
        assert_eq!(sent.iter().map(|(ms, seq, _)| (*ms, *seq)).collect::<Vec<_>>(), [(2000, 1), (4000, 2)]);
        assert!(sent[0].2.contains("<SystemUpdateID>26</SystemUpdateID>") && sent[0].2.contains("<ContainerUpdateIDs>0,26</ContainerUpdateIDs>"));
        // No change: no event.
        assert!(t.due(t0 + Duration::from_secs(10), 46).is_empty());
        assert_eq!(t.next_wake(t0 + Duration::from_secs(10)), Some(t0 + Duration::from_secs(300)));
    }

    #[test]
    fn connection_manager_gets_its_three_variables_once() {
        let now = Instant::now();
        let mut t = Table::default();
        let g = t.subscribe(now, Service::ConnectionManager, TV, cb(TV), 300, new_sid(), "http-get:*:video/mp4:*".into()).unwrap();
        t.release(&g.sid);
        let n = t.due(now, 1);
        assert_eq!(n.len(), 1);
        for v in ["<SourceProtocolInfo>http-get:*:video/mp4:*</SourceProtocolInfo>", "<SinkProtocolInfo></SinkProtocolInfo>", "<CurrentConnectionIDs>0</CurrentConnectionIDs>"] {
            assert!(n[0].body.contains(v), "{v}");
        }
        t.delivered(&g.sid, 0, true);
        assert!(t.due(now + Duration::from_secs(5), 2).is_empty());
    }

    #[test]
    fn seq_wraps_to_one_and_failures_drop() {
        let now = Instant::now();
        let mut t = Table::default();
        let g = t.subscribe(now, Service::ContentDirectory, TV, cb(TV), 300, new_sid(), String::new()).unwrap();
        t.release(&g.sid);
        let n = t.due(now, 1);
        assert!(t.delivered(&g.sid, n[0].seq, true));
        t.subs[0].seq = u32::MAX;
        let later = now + MODERATION;
        let n = t.due(later, 2);
        assert_eq!(n[0].seq, u32::MAX);
        assert!(t.delivered(&g.sid, n[0].seq, false), "one failure is tolerated");
        let n = t.due(later + MODERATION, 3);
        assert_eq!(n[0].seq, 1, "SEQ wraps to 1, not 0 (§4.2.1)");
        assert!(!t.delivered(&g.sid, n[0].seq, false), "two in a row drop it");
        assert!(t.is_empty());
        // A failed initial event drops at once.
        let g = t.subscribe(now, Service::ContentDirectory, TV, cb(TV), 300, new_sid(), String::new()).unwrap();
        t.release(&g.sid);
        let n = t.due(now, 1);
        assert!(!t.delivered(&g.sid, n[0].seq, false));
        assert!(t.is_empty());
    }

    #[test]
    fn notify_message_and_answers() {
        let n = Notify { sid: "uuid:abc".into(), to: Callback { addr: "10.77.0.2:4000".parse().unwrap(), path: "/cb".into() }, seq: 3, body: propertyset(&[("SystemUpdateID", "7&")]) };
        let req = String::from_utf8(n.request()).unwrap();
        assert!(req.starts_with("NOTIFY /cb HTTP/1.1\r\nHOST: 10.77.0.2:4000\r\n"));
        for h in ["NT: upnp:event\r\n", "NTS: upnp:propchange\r\n", "SID: uuid:abc\r\n", "SEQ: 3\r\n", &format!("CONTENT-LENGTH: {}\r\n", n.body.len())] {
            assert!(req.contains(h), "{h}");
        }
        assert!(req.ends_with("<e:property><SystemUpdateID>7&amp;</SystemUpdateID></e:property></e:propertyset>\n"));
        assert_eq!(accepted(b"HTTP/1.1 200 OK\r\n\r\n"), Some(true));
        assert_eq!(accepted(b"HTTP/1.1 200 OK\r\nContent-Le"), Some(true));
        assert_eq!(accepted(b"HTTP/1.1 302 Found\r\nLocation: http://1.2.3.4/\r\n\r\n"), Some(false));
        assert_eq!(accepted(b"HTTP/1.1 412 Precondition Failed\r\n\r\n"), Some(false));
        assert_eq!(accepted(b"HTTP/1.1 20"), None);
        assert_eq!(accepted(b"SSH-2.0-OpenSSH\r\n"), Some(false));
    }
}
