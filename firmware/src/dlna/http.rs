//! TCP 32469: the description, SCPDs, icons, SOAP control and the media streams for renderers.
//!
//! A small HTTP/1.1 loop of its own (each head parsed once by the wire room, `wire::head`; Content-Length or
//! chunked bodies up to [`soap::MAX_BODY`]; keep-alive by RFC 9112 §9.3) so every media body goes out with
//! `sendfile(2)` on any request of a connection. Media bodies take the stream room's path
//! ([`crate::stream::span::answer`], review finding C-3: its sendfile loop, stall deadline, truncation reset,
//! running-stream registry and counters); the DLNA headers and the DLNA refusals stay here.
//!
//! Renderer behaviours handled: HEAD before GET; `getcontentFeatures.dlna.org` (answered on every media
//! response); `transferMode.dlna.org` Streaming/Interactive/Background (DLNA guidelines 7.4.49: a mode the
//! content does not support is 406); Range and conditional requests (RFC 9110 §13, §14) decided by the Range core
//! (`stream::range`), as on 32400: one range with 206/416, If-Range, 304;
//! `TimeSeekRange.dlna.org` is 406 because protocolInfo says OP=01 (byte seek only, DLNA 7.4.40.4).

use super::catalog::{Medium, content_features, medium};
use super::description as desc;
use super::soap::{self, Fault};
use super::{Live, content};
use crate::auth::Visible;
use crate::wire::head::{Read, read_head};
use crate::wire::{Fields, Head};
use crate::stream::Standing;
use crate::stream::pace::Class;
use crate::stream::range::{self, Conditions, Decision, Plan, Validators};
use crate::stream::span::{self, Span};
use crate::system::fds;
use crate::system::dual_stack::canonical;
use bytes::{Buf, BytesMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The DLNA HTTP port (the description URL in SSDP names it).
pub const PORT: u16 = 32469;
/// Idle keep-alive connections are closed after this.
const IDLE: Duration = Duration::from_secs(60);
/// Concurrent connections; more are closed at once.
const MAX_CONNECTIONS: usize = 64;
/// Concurrent connections from one source (an IPv4 address or IPv6 /64, `system::fds::Sources`); more get 503
/// at once. A quarter of [`MAX_CONNECTIONS`]: a renderer opens a few (browse, a stream, its icons), and one
/// source that holds its share leaves three quarters to every other renderer (R-F3).
const PER_SOURCE: u32 = MAX_CONNECTIONS as u32 / 4;

/// A request head as this loop reads it: the wire room's, parsed once by [`read_head`].
pub type Request = Head;

/// Parse a complete head (a test fixture; the loop gets its heads parsed from [`read_head`]).
pub fn parse_head(bytes: &[u8]) -> Option<Request> {
    Head::parse_complete(bytes).ok()
}

/// The value of field `name` as text (None when absent or not UTF-8).
fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.field(name).and_then(|v| std::str::from_utf8(v).ok())
}

/// Accept until dropped. Dropping the future closes the listener and aborts every connection. Connections live
/// on the connection workers (system::workers), as on the main port.
pub async fn serve(listener: TcpListener, live: Arc<Live>) {
    let workers = crate::system::workers::Workers::get();
    let mut conns = Connections(Vec::new());
    let sources = fds::Sources::new(PER_SOURCE);
    let mut trouble = fds::AcceptTrouble::new("DLNA");
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                trouble.accepted();
                let Some(held) = sources.admit(canonical(peer.ip())) else {
                    tracing::debug!(%peer, "too many DLNA connections from one source; refused");
                    // Best effort, without waiting: the renderer may not have sent its request yet.
                    let _ = stream.try_write(&too_many());
                    continue;
                };
                conns.0.retain(|c| !c.is_finished());
                if conns.0.len() >= MAX_CONNECTIONS {
                    tracing::debug!(%peer, "too many DLNA connections; closing");
                    continue;
                }
                let live = live.clone();
                conns.0.extend(workers.hand(stream, move |s| async move {
                    connection(s, peer, live).await;
                    drop(held);
                }));
            }
            // EMFILE and friends: back off instead of spinning, and say so once per episode.
            Err(e) => tokio::time::sleep(trouble.failed(&e)).await,
        }
    }
}

/// The answer to a source over [`PER_SOURCE`], written without waiting at accept.
fn too_many() -> Vec<u8> {
    let body = "Too many connections from your address; try again when some have finished.\r\n";
    format!("HTTP/1.1 503 Service Unavailable\r\nServer: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", server_header(), body.len())
        .into_bytes()
}

/// The open DLNA connections; dropping it aborts them.
struct Connections(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Connections {
    fn drop(&mut self) {
        for c in &self.0 {
            c.abort();
        }
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, live: Arc<Live>) {
    let _ = stream.set_nodelay(true);
    let peer_ip = canonical(peer.ip());
    if let Err(denial) = live.admits_http(peer_ip) {
        tracing::info!(%peer, "DLNA request refused: {}", denial.message());
        let text = format!("{}\r\n", denial.message());
        let _ = simple(&mut stream, denial.status(), "text/plain", &[], text.as_bytes(), false, false).await;
        return;
    }
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let base = match canonical(local.ip()) {
        IpAddr::V4(a) => format!("http://{a}:{}", local.port()),
        IpAddr::V6(a) => format!("http://[{a}]:{}", local.port()),
    };
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let req = match read_head(&mut stream, &mut buf, IDLE).await {
            Read::Head(head) => head,
            Read::Refused(bad) => {
                let text = format!("{}\r\n", bad.message());
                let _ = simple(&mut stream, bad.status(), "text/plain", &[], text.as_bytes(), false, false).await;
                return;
            }
            Read::Closed | Read::TooSlow => return,
        };
        buf.advance(req.len());
        if let Err(refused) = doors(&live.state.snapshot(), &req) {
            tracing::info!(%peer, status = refused.status, "DLNA request refused at the Host/Origin doors");
            let text = format!("{}\r\n", refused.message);
            let _ = simple(&mut stream, refused.status, "text/plain", &[], text.as_bytes(), false, false).await;
            return;
        }
        let body = match read_body(&mut stream, &mut buf, &req).await {
            Ok(b) => b,
            Err(status) => {
                let msg: &[u8] = match status {
                    413 => b"The request body is too large.\r\n",
                    408 => b"The request body did not arrive in time; send it again, all at once.\r\n",
                    _ => b"The request body could not be read.\r\n",
                };
                let _ = simple(&mut stream, status, "text/plain", &[], msg, false, false).await;
                return;
            }
        };
        // The rule can change between requests of one connection (securing, LAN networks).
        let Ok(sees) = live.admits_http(peer_ip) else { return };
        let keep = req.persistent();
        match respond(&mut stream, &req, &body, &live, sees, &base, keep).await {
            Ok(true) if keep => {}
            _ => return,
        }
    }
}

/// The main port's Host and Origin doors (`auth::doors`), on 32469 too, before a body is read. DNS rebinding
/// (the class that hit MiniDLNA-era servers; issue 22): a web page on a name its author controls, re-pointed at
/// this box, sends that name as Host, so only what names this box passes: an IP literal (cannot be re-pointed),
/// the box's hostname (`.local`), `localhost` or a name the owner added; another name is 421 (RFC 9110
/// §15.5.20, §7.4). An HTTP/1.1 request without Host is 400 (RFC 9112 §3.2); HTTP/1.0 may omit it (renderers
/// of that age do). An `Origin` other than the Host (a page of another site) is 403: renderers send none.
fn doors(state: &crate::state::State, req: &Request) -> Result<(), crate::auth::doors::Refused> {
    use crate::auth::doors::{OwnNames, host_door, origin_door};
    let text = |name: &str| req.text(name).map(|v| v.unwrap_or("\u{0}"));
    let hostname = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
    let names = OwnNames { hostname: &hostname, added: &state.settings.host_names };
    let authority = host_door(text("host"), req.http11(), &names)?;
    origin_door(text("origin"), authority.as_ref(), false)
}

/// The body of `req` (Content-Length or chunked, at most [`soap::MAX_BODY`]). The whole body must arrive within
/// the body deadline (`system::fds::body_timeout`) of the head, else 408 (R-F3).
async fn read_body(stream: &mut TcpStream, buf: &mut BytesMut, req: &Request) -> Result<Vec<u8>, u16> {
    let until = tokio::time::Instant::now() + fds::body_timeout();
    if header(req, "transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let (used, size) = loop {
                match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => break (used, size),
                    Ok(httparse::Status::Partial) if buf.len() < 1024 => read_more(stream, buf, until).await?,
                    _ => return Err(400),
                }
            };
            // Compared as u64: on a 32-bit box `size as usize` would drop the high bits of a huge chunk size
            // and pass the cap (the CVE-2020-28926 class: a chunk length taken for a smaller one).
            if size > (soap::MAX_BODY - body.len()) as u64 {
                return Err(413);
            }
            buf.advance(used);
            let size = size as usize;
            while buf.len() < size + 2 {
                read_more(stream, buf, until).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.advance(size + 2);
            if size == 0 {
                // Trailers are not expected; the final CRLF was consumed above.
                return Ok(body);
            }
        }
    }
    let len = match header(req, "content-length") {
        None => 0,
        Some(v) => v.parse::<usize>().map_err(|_| 400u16)?,
    };
    if len > soap::MAX_BODY {
        return Err(413);
    }
    while buf.len() < len {
        read_more(stream, buf, until).await?;
    }
    let body = buf[..len].to_vec();
    buf.advance(len);
    Ok(body)
}

/// Read more of a body into `buf`: 408 when nothing came before `until`, 400 when the renderer closed.
async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut, until: tokio::time::Instant) -> Result<(), u16> {
    buf.reserve(4096);
    match tokio::time::timeout_at(until, stream.read_buf(buf)).await {
        Ok(Ok(n)) if n > 0 => Ok(()),
        Err(_) => Err(408),
        _ => Err(400),
    }
}

/// The `Server` field of every answer on this port (UDA 1.1 §2.1 form).
pub(super) fn server_header() -> String {
    format!("Linux/1 UPnP/1.1 DLNADOC/1.50 Hearth/{}", crate::VERSION)
}

/// Write a complete small response. Returns whether the connection may stay open.
pub(super) async fn simple(
    stream: &mut TcpStream,
    status: u16,
    ctype: &str,
    extra: &[(&str, String)],
    body: &[u8],
    head_only: bool,
    keep: bool,
) -> std::io::Result<bool> {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nServer: {}\r\nDate: {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
        reason(status),
        server_header(),
        crate::wire::date::now(),
        body.len()
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let mut out = h.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out).await?;
    Ok(keep)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

const XML: &str = "text/xml; charset=\"utf-8\"";

/// Answer one request; `sees` is what the access rule lets this peer see (browse, search and `/res/` use it).
async fn respond(
    stream: &mut TcpStream,
    req: &Request,
    body: &[u8],
    live: &Live,
    sees: Visible,
    base: &str,
    keep: bool,
) -> std::io::Result<bool> {
    let path = req.path();
    let head = req.method() == "HEAD";
    let get = head || req.method() == "GET";
    match (req.method(), path) {
        (_, desc::PATH) if get => {
            let state = live.state.snapshot();
            simple(stream, 200, XML, &[], desc::device(&state).as_bytes(), head, keep).await
        }
        (_, desc::CDS_SCPD) if get => simple(stream, 200, XML, &[], desc::content_directory().as_bytes(), head, keep).await,
        (_, desc::CMS_SCPD) if get => simple(stream, 200, XML, &[], desc::connection_manager().as_bytes(), head, keep).await,
        (_, "/icon/48.png") if get => simple(stream, 200, "image/png", &[], desc::ICON_48, head, keep).await,
        (_, "/icon/120.png") if get => simple(stream, 200, "image/png", &[], desc::ICON_120, head, keep).await,
        ("POST", desc::CDS_CONTROL | desc::CMS_CONTROL) => {
            let view = live.view(sees);
            let action = soap::parse(body, header(req, "soapaction"));
            let (cds, base) = (path == desc::CDS_CONTROL, base.to_string());
            // Off the connection workers: a listing asks for covers and subtitles, which read files.
            let answer = match tokio::task::spawn_blocking(move || control(action, cds, &view, &base)).await {
                Ok(answer) => answer,
                Err(_) => Err(Fault::ActionFailed),
            };
            let ext = [("EXT", String::new())];
            match answer {
                Ok(xml) => simple(stream, 200, XML, &ext, xml.as_bytes(), false, keep).await,
                Err(f) => {
                    tracing::debug!(code = f as u16, "SOAP fault");
                    simple(stream, 500, XML, &ext, soap::fault(f).as_bytes(), false, keep).await
                }
            }
        }
        ("SUBSCRIBE" | "UNSUBSCRIBE", _) => {
            let reply = super::events::answer(live, req, body, stream.peer_addr().ok(), sees);
            let kept = simple(stream, reply.status, "text/plain", &reply.headers, reply.body.as_bytes(), false, keep).await?;
            reply.sent(live);
            Ok(kept)
        }
        (_, p) if get && p.starts_with("/res/") => media(stream, req, live, sees, &p[5..], base, keep).await,
        (_, p) if get && p.starts_with("/art/") => super::companions::art(stream, live, sees, &p[5..], head, keep).await,
        (_, p) if get && p.starts_with("/sub/") => super::companions::subtitle(stream, live, sees, &p[5..], head, keep).await,
        _ if !get && req.method() != "POST" => {
            simple(stream, 405, "text/plain", &[("Allow", "GET, HEAD, POST".into())], b"Use GET, HEAD or POST.\r\n", false, keep).await
        }
        _ => simple(stream, 404, "text/plain", &[], b"Nothing is served at this address.\r\n", head, keep).await,
    }
}

/// Run a parsed control request against the view: ContentDirectory (`cds`) or ConnectionManager. An action
/// whose namespace names another service is 401 (UDA 1.1 §3.2.1).
fn control(action: Result<soap::Action, Fault>, cds: bool, view: &super::view::View, base: &str) -> Result<String, Fault> {
    let a = action?;
    let service = if cds { content::CDS } else { content::CMS };
    if !a.service.is_empty() && a.service != service {
        return Err(Fault::InvalidAction);
    }
    if cds { content::content_directory(&a, view, base) } else { content::connection_manager(&a, view) }
}

/// Parse `<16 hex digits>.<ext>`.
pub(super) fn item_id(name: &str) -> Option<u64> {
    let hex = name.split('.').next()?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

async fn media(
    stream: &mut TcpStream,
    req: &Request,
    live: &Live,
    sees: Visible,
    name: &str,
    base: &str,
    keep: bool,
) -> std::io::Result<bool> {
    let head = req.method() == "HEAD";
    let gone = b"No such media item: browse again, the library may have changed or is not shared with DLNA.\r\n";
    let found = item_id(name).and_then(|id| live.view(sees).item(id).cloned()).filter(|i| sees.allows(i.library));
    let Some(item) = found else {
        return simple(stream, 404, "text/plain", &[], gone, head, keep).await;
    };
    let root = crate::library::root_of(&live.state.snapshot(), item.library, &item.path);
    let (file, meta) = match crate::stream::open::open_media(root, item.path.clone()).await {
        Ok(m) => (m.file, m.meta),
        Err(r) => {
            let retry = [("Retry-After", "5".to_string())];
            let extra: &[(&str, String)] = if r.status() == 503 { &retry } else { &[] };
            return simple(stream, r.status(), "text/plain", extra, format!("{r}\r\n").as_bytes(), head, keep).await;
        }
    };
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
    let secs = mtime.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let etag = format!("\"{size:x}-{secs:x}\"");
    let last_modified = crate::wire::date::of(mtime);
    let kind = medium(item.mime);

    // DLNA guidelines 7.4.40.4: time seek is not offered (OP=01), so a TimeSeekRange request is 406.
    if req.field("timeseekrange.dlna.org").is_some() {
        return simple(stream, 406, "text/plain", &[], b"Time seek is not supported; use byte ranges.\r\n", head, keep).await;
    }
    let Some(mode) = transfer_mode(req, kind) else {
        return simple(stream, 406, "text/plain", &[], b"That transfer mode does not fit this kind of media.\r\n", head, keep).await;
    };
    // The Range core decides, as on port 32400: preconditions (RFC 9110 §13.2.2), If-Range (§13.1.5), one
    // range or none (§14.2), a repeated Range ignored.
    let decision = decision(req, &Validators { etag: etag.clone(), modified: secs as i64 }, size);
    let mut h = vec![
        ("Accept-Ranges", "bytes".to_string()),
        ("ETag", etag),
        ("Last-Modified", last_modified),
        ("contentFeatures.dlna.org", content_features(item.mime, item.resolution)),
        ("transferMode.dlna.org", mode.to_string()),
    ];
    // Samsung asks for the subtitle of a video with `getCaptionInfo.sec: 1` (MiniDLNA upnphttp.c, jellyfin DLNA #29).
    if kind == Medium::Video && header(req, "getcaptioninfo.sec").is_some_and(|v| v.trim() == "1") {
        h.extend(super::companions::caption_field(live, sees, &item, base).await);
    }
    // A 304 carries the Content-Length a 200 would have (RFC 9110 §8.6) and no body.
    let (status, start, len) = match decision {
        Decision::NotModified => (304, 0, size),
        Decision::Send(Plan::Full) => (200, 0, size),
        Decision::Send(Plan::Partial { start, end }) => {
            h.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            (206, start, end - start + 1)
        }
        Decision::Send(Plan::Unsatisfiable) => {
            h.push(("Content-Range", format!("bytes */{size}")));
            return simple(stream, 416, "text/plain", &h, b"The requested range is outside the file.\r\n", head, keep).await;
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nServer: {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\n",
        reason(status),
        server_header(),
        crate::wire::date::now(),
        item.mime
    );
    for (k, v) in &h {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    // C-3: one stream path. The body goes through the stream room (registry, pacer, sendfile loop with its
    // deadlines and truncation check, zero-copy and LAN egress counters), as a part on the main port does.
    let span = (!head && status != 304 && len > 0).then_some(Span { file, start, len, library: item.library });
    let peer = stream.peer_addr().map(|a| canonical(a.ip()))?;
    match span::answer(stream, out.as_bytes(), span, Class::Lan, standing(live, peer), &live.streams).await {
        Ok(()) => Ok(keep),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "DLNA stream ended early");
            Ok(false)
        }
    }
}

/// Whether `peer` may still read a library while its stream runs: the DLNA rule ([`super::admit`]) asked again
/// under each new state, with the server's own subnets as they are now (the stream room cancels the body when
/// it says no: DLNA turned off, the library no longer shown, the peer no longer LAN).
pub(super) fn standing(live: &Live, peer: IpAddr) -> Standing {
    let own = live.rule.read().unwrap_or_else(|p| p.into_inner()).1.clone();
    Box::new(move |state, library| super::admit(state, &own, peer, super::Via::Http).is_ok_and(|v| v.allows(library)))
}

/// The transfer mode a media request asks for, or None when it does not fit the medium (406). DLNA guidelines
/// 7.4.49: Streaming for audio/video, Interactive for images, Background for all; the default by medium.
fn transfer_mode(req: &Request, kind: Medium) -> Option<&'static str> {
    match header(req, "transfermode.dlna.org").map(str::to_ascii_lowercase).as_deref() {
        None => Some(if kind == Medium::Image { "Interactive" } else { "Streaming" }),
        Some("streaming") if kind != Medium::Image => Some("Streaming"),
        Some("interactive") if kind == Medium::Image => Some("Interactive"),
        Some("background") => Some("Background"),
        Some(_) => None,
    }
}

/// What a media request's Range and conditional headers ask of a file of `size` bytes: the Range core's
/// decision ([`range::decide`]), the same one port 32400 makes, with a repeated Range ignored
/// ([`range::single`]).
fn decision(req: &Request, validators: &Validators, size: u64) -> Decision {
    let conditions = Conditions {
        if_none_match: req.field("if-none-match"),
        if_modified_since: req.field("if-modified-since"),
        if_range: req.field("if-range"),
        range: range::single(req.all("range")),
    };
    range::decide(&conditions, validators, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R-F6/R-F7 on DLNA: `/res/` asks the Range core, so it answers what port 32400 answers, including a
    /// repeated Range (ignored: 200) and the edge cases the review found.
    #[test]
    fn r_f6_r_f7_dlna_ranges_are_the_cores() {
        let size = 10_000;
        let v = Validators { etag: "\"2710-5\"".into(), modified: 5 };
        let ask = |headers: &str| {
            let raw = format!("GET /res/00000000000000ff.mkv HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
            decision(&parse_head(raw.as_bytes()).unwrap(), &v, size)
        };
        let part = |start, end| Decision::Send(Plan::Partial { start, end });
        let many_past_the_end = (0..17).map(|i| format!("{}-", 20_000 + i)).collect::<Vec<_>>().join(",");
        for (headers, want) in [
            ("Range: bytes=0-499\r\n".to_string(), part(0, 499)),
            ("Range: bytes=-500\r\n".into(), part(9500, 9999)),
            ("Range: bytes=10000-\r\n".into(), Decision::Send(Plan::Unsatisfiable)),
            // R-F6: a repeated Range is ignored, whichever comes first.
            ("Range: bytes=0-0\r\nRange: bytes=5-9\r\n".into(), Decision::Send(Plan::Full)),
            ("Range: bytes=5-9\r\nRange: bytes=0-0\r\n".into(), Decision::Send(Plan::Full)),
            // R-F7: past u64, whitespace, many ranges none satisfiable.
            ("Range: bytes=18446744073709551616-\r\n".into(), Decision::Send(Plan::Unsatisfiable)),
            ("Range: bytes = 0 - 5\r\n".into(), Decision::Send(Plan::Full)),
            (format!("Range: bytes={many_past_the_end}\r\n"), Decision::Send(Plan::Unsatisfiable)),
            // If-Range and the preconditions, from the same core.
            ("If-Range: \"2710-5\"\r\nRange: bytes=0-9\r\n".into(), part(0, 9)),
            ("If-Range: \"stale\"\r\nRange: bytes=0-9\r\n".into(), Decision::Send(Plan::Full)),
            ("If-None-Match: \"2710-5\"\r\n".into(), Decision::NotModified),
        ] {
            assert_eq!(ask(&headers), want, "{headers:?}");
        }
    }

    /// DNS rebinding on 32469: a Host naming another site is 421, an IP literal or the box's own name passes, an
    /// HTTP/1.1 request without Host is 400 (HTTP/1.0 may omit it), and a page of another site (Origin) is 403.
    #[test]
    fn dns_rebinding_hosts_are_refused() {
        let state = crate::state::State::new([1; 16]);
        let ask = |head: &str| doors(&state, &parse_head(format!("{head}\r\n").as_bytes()).unwrap()).map_err(|r| r.status);
        assert_eq!(ask("GET /description.xml HTTP/1.1\r\nHost: attacker.example:32469\r\n"), Err(421));
        assert_eq!(ask("POST /control/cds HTTP/1.1\r\nHost: rebind.attacker.example\r\n"), Err(421));
        assert_eq!(ask("GET /description.xml HTTP/1.1\r\n"), Err(400));
        assert_eq!(ask("GET /description.xml HTTP/1.1\r\nHost: 192.168.1.20:32469\r\nOrigin: http://attacker.example\r\n"), Err(403));
        assert_eq!(ask("GET /description.xml HTTP/1.1\r\nHost: 192.168.1.20:32469\r\n"), Ok(()));
        assert_eq!(ask("GET /res/00000000000000ff.mkv HTTP/1.1\r\nHost: [fe80::1]:32469\r\n"), Ok(()));
        assert_eq!(ask("GET /res/00000000000000ff.mkv HTTP/1.1\r\nHost: localhost:32469\r\n"), Ok(()));
        assert_eq!(ask("GET /description.xml HTTP/1.0\r\n"), Ok(()));
    }

    #[test]
    fn item_names() {
        assert_eq!(item_id("00000000000000ff.mkv"), Some(255));
        assert_eq!(item_id("ff.mkv"), None);
        assert_eq!(item_id("zzzzzzzzzzzzzzzz.mkv"), None);
    }
}
