//! The request head, parsed once (RFC 9112 §2-§3, §5, §6, §9.3).
//!
//! A connection loop reads bytes until they hold a complete head ([`read_head`]); the head is parsed then,
//! once, into a [`Head`] that every door reads: the stream fast path, the admission, the Host/Origin doors,
//! the HTTPS-required check, the keep-alive decision and DLNA's loop. Layout of one head (at most
//! [`MAX_HEAD`] bytes, at most [`MAX_FIELDS`] field lines):
//!
//! ```text
//! request-line   = method SP request-target SP HTTP-version CRLF      (RFC 9112 §3)
//! field-line     = field-name ":" OWS field-value OWS CRLF            (RFC 9112 §5), × 0..=MAX_FIELDS
//! CRLF                                                                 end of head
//! ```
//!
//! Refused while parsing ([`Bad`]): anything httparse does not take as HTTP/1.x (including obs-fold, which
//! RFC 9112 §5.2 lets a server refuse with 400), more than one `Host` line (RFC 9112 §3.2: 400), more than
//! [`MAX_FIELDS`] lines or [`MAX_HEAD`] bytes (431, RFC 6585 §5).

use bytes::BytesMut;
use std::ops::Range;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted; larger gets 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most field lines in one head; more gets 431.
pub const MAX_FIELDS: usize = 64;
/// A client must send its whole request head within this time (on the main port; DLNA waits longer between
/// requests of a kept connection).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// Over [`MAX_HEAD`] bytes or [`MAX_FIELDS`] field lines.
    TooLarge,
    /// Not an HTTP/1.x request head (including obs-fold and a field name with a space before its colon).
    Malformed,
    /// More than one `Host` field line (RFC 9112 §3.2).
    TwoHosts,
}

impl Bad {
    /// The status of the answer: 431 or 400.
    pub fn status(self) -> u16 {
        match self {
            Bad::TooLarge => 431,
            Bad::Malformed | Bad::TwoHosts => 400,
        }
    }

    /// What the person sending it reads.
    pub fn message(self) -> &'static str {
        match self {
            Bad::TooLarge => "Request headers are larger than 16 KiB.",
            Bad::Malformed => "That is not an HTTP/1.1 request.",
            Bad::TwoHosts => "This request has more than one Host header; send exactly one.",
        }
    }
}

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body, or a `Content-Length` body of this many bytes.
    Length(u64),
    /// Chunked, an upgrade, CONNECT, or a `Content-Length` that is repeated or not a number: only a full HTTP
    /// engine (hyper) delimits it.
    Other,
}

/// Reads header fields by name, whatever parsed them: a [`Head`] here, or hyper's `HeaderMap` on connections
/// hyper reads. The doors (auth's token carriers, the Host door) take this so both engines go through them.
pub trait Fields {
    /// The value of the first field line called `name` (case-insensitive; give it lowercase).
    fn field(&self, name: &str) -> Option<&[u8]>;

    /// [`Fields::field`] as text, when it is visible ASCII (what `HeaderValue::to_str` accepts): Some(Err(()))
    /// when the field is there but not readable as text.
    fn text(&self, name: &str) -> Option<Result<&str, ()>> {
        self.field(name).map(|v| visible(v).ok_or(()))
    }
}

impl Fields for hyper::HeaderMap {
    fn field(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(|v| v.as_bytes())
    }
}

/// `v` as text when every byte is visible ASCII, space or tab (RFC 9110 §5.5 field-vchar, less obs-text).
pub fn visible(v: &[u8]) -> Option<&str> {
    v.iter().all(|b| *b == b'\t' || (0x20..0x7f).contains(b)).then(|| std::str::from_utf8(v).ok()).flatten()
}

/// One request head, parsed once. Owns a copy of its bytes (a few hundred, at most [`MAX_HEAD`]); every
/// accessor is a slice of them.
#[derive(Debug, Clone)]
pub struct Head {
    raw: Box<[u8]>,
    method: Range<usize>,
    target: Range<usize>,
    http11: bool,
    fields: Vec<(Range<usize>, Range<usize>)>,
    persistent: bool,
    framing: Framing,
    has_body: bool,
}

#[cfg(test)]
thread_local! {
    /// Complete heads parsed on this thread (tests count parses per request with it).
    static PARSED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Complete heads parsed on this thread so far (tests only).
#[cfg(test)]
pub fn parsed_on_this_thread() -> usize {
    PARSED.with(|p| p.get())
}

impl Head {
    /// Parse the head at the start of `buf`: Ok(None) while it is incomplete (more bytes may finish it).
    pub fn parse(buf: &[u8]) -> Result<Option<Head>, Bad> {
        let mut lines = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut req = httparse::Request::new(&mut lines);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Err(Bad::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Bad::TooLarge),
            Err(_) => return Err(Bad::Malformed),
        };
        if len > MAX_HEAD {
            return Err(Bad::TooLarge);
        }
        let base = buf.as_ptr() as usize;
        let span = |s: &[u8]| {
            let at = s.as_ptr() as usize - base;
            let t = trim_ows(s);
            let start = at + (t.as_ptr() as usize - s.as_ptr() as usize);
            start..start + t.len()
        };
        let (Some(method), Some(target)) = (req.method, req.path) else { return Err(Bad::Malformed) };
        let fields: Vec<_> = req.headers.iter().map(|h| (span(h.name.as_bytes()), span(h.value))).collect();
        let mut head = Head {
            method: span(method.as_bytes()),
            target: span(target.as_bytes()),
            http11: req.version == Some(1),
            fields,
            raw: buf[..len].into(),
            persistent: false,
            framing: Framing::Length(0),
            has_body: false,
        };
        if head.all("host").nth(1).is_some() {
            return Err(Bad::TwoHosts);
        }
        head.persistent = head.persists();
        (head.framing, head.has_body) = head.body();
        #[cfg(test)]
        PARSED.with(|p| p.set(p.get() + 1));
        Ok(Some(head))
    }

    /// Parse one complete head (a test fixture, or bytes a caller already knows are whole).
    pub fn parse_complete(bytes: &[u8]) -> Result<Head, Bad> {
        Head::parse(bytes)?.ok_or(Bad::Malformed)
    }

    /// Bytes of the head, CRLF CRLF included: what the caller takes off its buffer.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Never true: a head has at least a request line (for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The head's bytes as they came.
    pub fn bytes(&self) -> &[u8] {
        &self.raw
    }

    fn str(&self, r: &Range<usize>) -> &str {
        // httparse checked the method, target and field names are tokens / visible ASCII.
        std::str::from_utf8(&self.raw[r.clone()]).unwrap_or("")
    }

    /// The method, as sent (methods are case-sensitive, RFC 9110 §9.1).
    pub fn method(&self) -> &str {
        self.str(&self.method)
    }

    /// The request target, as sent (origin-form: path and query).
    pub fn target(&self) -> &str {
        self.str(&self.target)
    }

    /// The target's path (before `?`), still percent-encoded.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    /// The target's query (after `?`), if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// HTTP/1.1 (rather than HTTP/1.0).
    pub fn http11(&self) -> bool {
        self.http11
    }

    /// Every field line as (name as sent, value without surrounding OWS), in order.
    pub fn lines(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(n, v)| (self.str(n), &self.raw[v.clone()]))
    }

    /// Every value of field `name` (case-insensitive), in order: for a field that may appear once, the caller
    /// checks there is one (e.g. `stream::range::single`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.lines().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Whether the connection persists after this request (RFC 9112 §9.3): not when any `Connection` token
    /// is "close"; otherwise HTTP/1.1 does, and HTTP/1.0 only with a "keep-alive" token.
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    /// How the body is delimited.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The request says it carries a body (a `Content-Length` other than 0, or any `Transfer-Encoding`).
    pub fn has_body(&self) -> bool {
        self.has_body
    }

    /// The `Connection` tokens, lowercase, from every `Connection` line (a list field, RFC 9110 §7.6.1).
    pub fn connection(&self) -> impl Iterator<Item = String> + '_ {
        self.all("connection")
            .flat_map(|v| v.split(|b| *b == b','))
            .map(|t| String::from_utf8_lossy(trim_ows(t)).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
    }

    fn persists(&self) -> bool {
        let mut keep_alive = false;
        for t in self.connection() {
            match t.as_str() {
                "close" => return false,
                "keep-alive" => keep_alive = true,
                _ => {}
            }
        }
        self.http11 || keep_alive
    }

    /// RFC 9112 §6.1-§6.3: Transfer-Encoding or Upgrade (or CONNECT) leave the framing to a full engine; one
    /// Content-Length that is a number gives the length; two, or one that is not a number, too.
    fn body(&self) -> (Framing, bool) {
        let mut framing = Framing::Length(0);
        let mut lengths = 0;
        let mut has_body = false;
        for (name, v) in self.lines() {
            if name.eq_ignore_ascii_case("content-length") {
                lengths += 1;
                has_body |= v != b"0";
                let n = std::str::from_utf8(v).ok().and_then(|v| v.parse().ok());
                framing = match n {
                    Some(n) if lengths == 1 && framing != Framing::Other => Framing::Length(n),
                    _ => Framing::Other,
                };
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                has_body = true;
                framing = Framing::Other;
            } else if name.eq_ignore_ascii_case("upgrade") {
                framing = Framing::Other;
            }
        }
        if self.method() == "CONNECT" {
            framing = Framing::Other;
        }
        (framing, has_body)
    }
}

impl Fields for Head {
    fn field(&self, name: &str) -> Option<&[u8]> {
        self.lines().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// Strip optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
fn trim_ows(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(start, |e| e + 1);
    &b[start..end]
}

/// What reading a head came to.
#[derive(Debug)]
pub enum Read {
    /// A complete head; its [`Head::len`] bytes are still at the start of the buffer.
    Head(Head),
    /// The peer closed (or the socket failed) before a complete head.
    Closed,
    /// No complete head within the time given.
    TooSlow,
    /// A head that is refused (answer with [`Bad::status`] and close).
    Refused(Bad),
}

/// Read from `io` into `buf` until `buf` starts with a complete head, within `within`: parsed once, when it
/// is complete. Bytes after the head (a pipelined request, a body) stay in `buf`.
pub async fn read_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut, within: Duration) -> Read {
    match tokio::time::timeout(within, read_until_head(io, buf)).await {
        Ok(read) => read,
        Err(_) => Read::TooSlow,
    }
}

async fn read_until_head<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut) -> Read {
    loop {
        if !buf.is_empty() {
            match Head::parse(buf) {
                Ok(Some(head)) => return Read::Head(head),
                Ok(None) => {}
                Err(bad) => return Read::Refused(bad),
            }
        }
        buf.reserve(4096);
        match io.read_buf(buf).await {
            Ok(0) if !buf.is_empty() => return Read::Refused(Bad::Malformed),
            Ok(0) | Err(_) => return Read::Closed,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Head, Bad> {
        Head::parse_complete(s.as_bytes())
    }

    #[test]
    fn request_line_and_fields_as_sent() {
        let h = parse("GET /library/parts/1/2/f.mkv?download=1&X-Plex-Token=t HTTP/1.1\r\nHost:  box:32400 \r\nRange: bytes=0-9\r\n\r\nNEXT").unwrap();
        assert_eq!((h.method(), h.path(), h.query()), ("GET", "/library/parts/1/2/f.mkv", Some("download=1&X-Plex-Token=t")));
        assert!(h.http11() && h.persistent());
        assert_eq!(h.field("host"), Some(&b"box:32400"[..]), "OWS around the value is not part of it");
        assert_eq!(h.field("RANGE"), Some(&b"bytes=0-9"[..]));
        assert_eq!(h.len(), "GET /library/parts/1/2/f.mkv?download=1&X-Plex-Token=t HTTP/1.1\r\nHost:  box:32400 \r\nRange: bytes=0-9\r\n\r\n".len());
        assert_eq!(h.framing(), Framing::Length(0));
        assert!(!h.has_body());
    }

    /// RFC 9112 §5.2: obs-fold (a field line continued on the next line) is refused with 400.
    #[test]
    fn obs_fold_is_refused() {
        let bad = parse("GET / HTTP/1.1\r\nHost: box\r\nX-Long: one\r\n two\r\n\r\n").unwrap_err();
        assert_eq!((bad, bad.status()), (Bad::Malformed, 400));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost : box\r\n\r\n").unwrap_err(), Bad::Malformed, "no space before the colon (§5.1)");
    }

    /// RFC 9112 §3.2: more than one Host line is 400, whatever their values.
    #[test]
    fn a_second_host_is_refused() {
        for two in ["Host: a\r\nHost: a\r\n", "Host: a\r\nX: y\r\nhost: b\r\n"] {
            let bad = parse(&format!("GET / HTTP/1.1\r\n{two}\r\n")).unwrap_err();
            assert_eq!((bad, bad.status()), (Bad::TwoHosts, 400), "{two:?}");
        }
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok(), "HTTP/1.0 may omit Host; the Host door judges that");
    }

    /// RFC 9112 §9.3 with RFC 9110 §7.6.1: Connection is a list of tokens over any number of lines; "close"
    /// anywhere ends the connection; HTTP/1.0 persists only with "keep-alive".
    #[test]
    fn connection_tokens_decide_persistence() {
        for (head, persists) in [
            ("GET / HTTP/1.1\r\n\r\n", true),
            ("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: Close\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nConnection: close-ish\r\n\r\n", true),
            ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: foo ,Keep-Alive\r\n\r\n", true),
            ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
        ] {
            assert_eq!(parse(head).unwrap().persistent(), persists, "{head:?}");
        }
        let h = parse("GET / HTTP/1.1\r\nConnection: Upgrade,, TE\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(h.connection().collect::<Vec<_>>(), ["upgrade", "te", "close"]);
    }

    /// At most MAX_FIELDS field lines (431), and at most MAX_HEAD bytes even before the head is complete.
    #[test]
    fn field_count_and_size_are_capped() {
        let lines = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        assert!(parse(&format!("GET / HTTP/1.1\r\n{}\r\n", lines(MAX_FIELDS))).is_ok());
        let bad = parse(&format!("GET / HTTP/1.1\r\n{}\r\n", lines(MAX_FIELDS + 1))).unwrap_err();
        assert_eq!((bad, bad.status()), (Bad::TooLarge, 431));
        let unfinished = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(Head::parse(unfinished.as_bytes()).unwrap_err(), Bad::TooLarge);
        assert!(Head::parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none(), "incomplete: wait for more");
    }

    #[test]
    fn framing_follows_rfc_9112_section_6() {
        let f = |s: &str| parse(s).unwrap().framing();
        assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n"), Framing::Length(12));
        assert_eq!(f("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"), Framing::Other);
        assert_eq!(f("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), Framing::Other);
        assert_eq!(f("CONNECT a:1 HTTP/1.1\r\n\r\n"), Framing::Other);
        assert!(parse("GET / HTTP/1.1\r\nContent-Length: 00\r\n\r\n").unwrap().has_body());
        assert!(!parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap().has_body());
    }

    #[tokio::test]
    async fn read_head_keeps_what_follows_and_refuses_a_closed_half_head() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let mut buf = BytesMut::new();
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b").await.unwrap();
        let Read::Head(h) = read_head(&mut server, &mut buf, HEAD_TIMEOUT).await else { panic!("a head") };
        assert_eq!(&buf[h.len()..], b"GET /b");
        drop(client);
        bytes::Buf::advance(&mut buf, h.len());
        assert!(matches!(read_head(&mut server, &mut buf, HEAD_TIMEOUT).await, Read::Refused(Bad::Malformed)));
    }
}
