//! Streams: media bytes to clients. The fast path answers part requests (`GET`/`HEAD
//! /library/parts/{id}/...`) on the raw connection with sendfile(2); the hyper path (TLS connections, and plain
//! connections hyper kept after a chunked request) copies, correctly, through [`Prepared`] and [`FileBody`].
//!
//! Owns: Range and conditional requests ([`range`], sans-IO, RFC 9110), response heads for media, the
//! sendfile loop (writable-readiness, bounded per call, paced by [`pace`]), bandwidth classes (LAN or remote,
//! by the `lan` the caller took from the auth room's origin rule), the zero-copy / copied byte counters, and
//! the egress counters per bandwidth class ([`Egress`], shown by the setup page's graph; DLNA's 32469 streams
//! add theirs as LAN: their bodies go through [`span::answer`], the same loop, review finding C-3).
//! Must not touch: the catalog's contents (reads items through `library::Catalog`), the state (reads only),
//! the access rule (callers pass who may see what and how to ask again: [`Viewer`]), the
//! request head's parsing (the wire room parses it once: [`PartRequest::of`] reads a [`Head`]), HTTP itself beyond
//! the part answers (no `http` import: arrows only go down).
//!
//! Revocation (review finding A-F11): a stream is admitted at its request, but it may run for hours. Each
//! running body registers in [`Streams`] with its library and a [`Standing`] the caller gives it (the access
//! rule, asked again); on every published state change the registry asks each one again and cancels those no
//! longer admitted (a device revoked, a password changed, an API token revoked, an account removed, a library
//! unshared). The sendfile loop checks its [`Cancel`] between calls and wakes from its waits; the copy path's
//! [`FileBody`] ends with an error at its next frame, so hyper closes the connection.
//!
//! Multiple ranges are answered 200 with the whole file (or 416 when none is satisfiable): RFC 9110 §14.2
//! allows ignoring Range, and players ask for one range at a time.

pub mod open;
pub mod pace;
pub mod range;
pub mod span;

use crate::state::visible::Visible;
use crate::library::{Catalog, ItemId};
use crate::wire::{Fields, Head};
use crate::state::LibraryId;
use pace::{Class, Lease, Pacer};
use range::{Conditions, Decision, Plan, Validators};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Largest sendfile(2) call; keeps one connection from holding a worker for long. nginx's default
/// `sendfile_max_chunk` (2m): a loopback socket takes about this much per writable wakeup.
pub const CHUNK: u64 = 2 * 1024 * 1024;
/// A client that accepts no bytes for this long is dropped.
pub const STALL: Duration = Duration::from_secs(60);

/// Body bytes sent since start, per bandwidth class: what `GET /api/v1/system` reports as `egress`.
/// Counted after each successful send (sendfile call or hyper frame), so bytes a client never took are not
/// counted. Relaxed atomics: one `fetch_add` per chunk, no lock on the stream path.
#[derive(Debug, Default)]
pub struct Egress {
    lan: AtomicU64,
    remote_stream: AtomicU64,
    remote_download: AtomicU64,
}

impl Egress {
    /// Count `n` bytes sent in `class`.
    pub fn add(&self, class: Class, n: u64) {
        self.counter(class).fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes sent in `class` since start.
    pub fn bytes(&self, class: Class) -> u64 {
        self.counter(class).load(Ordering::Relaxed)
    }

    /// The counter of one class, for a send loop that adds as it goes.
    pub fn counter(&self, class: Class) -> &AtomicU64 {
        match class {
            Class::Lan => &self.lan,
            Class::RemoteStream => &self.remote_stream,
            Class::RemoteDownload => &self.remote_download,
        }
    }
}

/// Counters and the pacer, shared by every stream.
pub struct Streams {
    /// The bandwidth classes' token buckets (remote caps).
    pub pacer: Arc<Pacer>,
    /// Egress per class; shared with DLNA's stream server (serve.rs hands it over).
    pub egress: Arc<Egress>,
    /// Body bytes sent with sendfile(2) (the fast path).
    pub zero_copy_bytes: AtomicU64,
    /// Body bytes copied through hyper (TLS, or a connection hyper kept).
    pub copied_bytes: AtomicU64,
    /// Bodies being sent now.
    pub active: AtomicU64,
    /// Part answers given (any status).
    pub responses: AtomicU64,
    /// Running bodies, asked again at every state change (see the module doc).
    running: std::sync::Mutex<std::collections::HashMap<u64, Running>>,
    next_ticket: AtomicU64,
}

/// Whether the caller of a running stream may still read `library` under the newest state: the access rule,
/// asked again. Built by the caller (the stream room does not know the rule).
pub type Standing = Box<dyn Fn(&crate::state::State, LibraryId) -> bool + Send + Sync>;

struct Running {
    library: LibraryId,
    standing: Standing,
    cancel: Arc<Cancel>,
}

/// A running stream's stop signal: set once, never cleared; wakes the sendfile loop's waits and the copy
/// path's task.
#[derive(Debug)]
pub struct Cancel {
    set: tokio::sync::watch::Sender<bool>,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Cancel {
    fn new() -> Cancel {
        Cancel { set: tokio::sync::watch::Sender::new(false), waker: Default::default() }
    }

    /// Stop the stream.
    pub fn cancel(&self) {
        self.set.send_replace(true);
        if let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.wake();
        }
    }

    /// Whether the stream was stopped.
    pub fn is_cancelled(&self) -> bool {
        *self.set.borrow()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.set.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Wake this task when cancelled (a poll-based body).
    fn wake_on_cancel(&self, w: &std::task::Waker) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.clone());
    }
}

/// A running stream's place in the registry; leaves it when dropped.
pub struct Ticket {
    id: u64,
    streams: std::sync::Weak<Streams>,
    /// Set when the caller no longer stands.
    pub cancel: Arc<Cancel>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(s) = self.streams.upgrade() {
            s.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
        }
    }
}

impl Streams {
    /// No streams yet, an uncapped pacer; [`Streams::follow`] applies the caps.
    pub fn new() -> Arc<Streams> {
        Arc::new(Streams {
            pacer: Pacer::new(),
            egress: Default::default(),
            zero_copy_bytes: AtomicU64::new(0),
            copied_bytes: AtomicU64::new(0),
            active: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            running: Default::default(),
            next_ticket: AtomicU64::new(0),
        })
    }

    /// Register a running body of `library`; `standing` is asked again at every state change.
    pub fn register(self: &Arc<Self>, library: LibraryId, standing: Standing) -> Ticket {
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let cancel = Arc::new(Cancel::new());
        let entry = Running { library, standing, cancel: cancel.clone() };
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry);
        Ticket { id, streams: Arc::downgrade(self), cancel }
    }

    /// Ask every running stream again under `state`; cancel those no longer admitted. Returns how many.
    pub fn recheck(&self, state: &crate::state::State) -> usize {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let mut ended = 0;
        for r in running.values() {
            if !r.cancel.is_cancelled() && !(r.standing)(state, r.library) {
                r.cancel.cancel();
                ended += 1;
            }
        }
        if ended > 0 {
            tracing::info!(streams = ended, "ended running streams whose access was revoked");
        }
        ended
    }

    /// Follow the state: pacing caps apply to running streams as soon as they change.
    pub fn follow(
        self: &Arc<Self>,
        mut rx: tokio::sync::watch::Receiver<Arc<crate::state::State>>,
    ) {
        let (up, st) = {
            let r = &rx.borrow().settings.remote;
            (r.upload_kbps, r.stream_kbps)
        };
        self.pacer.set_caps(up, st);
        let me = Arc::downgrade(self);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                while rx.changed().await.is_ok() {
                    let Some(me) = me.upgrade() else { return };
                    let state = rx.borrow_and_update().clone();
                    me.pacer.set_caps(state.settings.remote.upload_kbps, state.settings.remote.stream_kbps);
                    me.recheck(&state);
                }
            });
        }
    }

    /// The counters as `GET /api/v1/system` shows them under `streams`.
    pub fn stats(&self) -> serde_json::Value {
        let (remote_streams, remote_downloads) = self.pacer.counts();
        serde_json::json!({
            "zeroCopyBytes": self.zero_copy_bytes.load(Ordering::Relaxed),
            "copiedBytes": self.copied_bytes.load(Ordering::Relaxed),
            "active": self.active.load(Ordering::Relaxed),
            "responses": self.responses.load(Ordering::Relaxed),
            "remoteStreams": remote_streams,
            "remoteDownloads": remote_downloads,
        })
    }
}

/// A part request as the fast path sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRequest {
    /// A HEAD request: the answer's fields, no body.
    pub head: bool,
    /// The part's item id; None for a part URL of another shape (404, never a path).
    pub item: Option<ItemId>,
    /// `?download=1`: an attachment, paced as a download when remote.
    pub download: bool,
    /// The connection persists after the answer (RFC 9112 §9.3, from the head).
    pub keep_alive: bool,
    /// The request carries a body (it should not): answer, then close.
    pub has_body: bool,
    /// The one `Range` value (none when absent or repeated).
    pub range: Option<Vec<u8>>,
    /// `If-None-Match`, raw.
    pub if_none_match: Option<Vec<u8>>,
    /// `If-Modified-Since`, raw.
    pub if_modified_since: Option<Vec<u8>>,
    /// `If-Range`, raw.
    pub if_range: Option<Vec<u8>>,
    /// `X-Plex-Token` header or query parameter, for the access rule (never logged).
    pub token: Option<String>,
}

impl PartRequest {
    /// The part request in `head`, if it is one (`GET`/`HEAD /library/parts/...`): what the fast path needs,
    /// read from the head the connection loop parsed.
    pub fn of(head: &Head) -> Option<PartRequest> {
        let is_head = match head.method() {
            "GET" => false,
            "HEAD" => true,
            _ => return None,
        };
        let rest = head.path().strip_prefix("/library/parts/")?;
        // /library/parts/{id}/{ts}/{file}: only the id is used; it never touches the filesystem.
        let segments: Vec<&str> = rest.split('/').collect();
        let item = if segments.len() == 3 && !segments[1].is_empty() && !segments[2].is_empty() {
            segments[0].parse::<ItemId>().ok()
        } else {
            None
        };
        let mut download = false;
        let mut token = None;
        for kv in head.query().unwrap_or("").split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "download" => download = v == "1",
                "X-Plex-Token" => token = Some(v.to_string()),
                _ => {}
            }
        }
        if let Some(v) = head.field("x-plex-token") {
            token = String::from_utf8(v.to_vec()).ok();
        }
        let owned = |name: &str| head.field(name).map(<[u8]>::to_vec);
        Some(PartRequest {
            head: is_head,
            item,
            download,
            keep_alive: head.persistent(),
            has_body: head.has_body(),
            // RFC 9110 §14.2: a repeated Range is ignored, as on the copy path and DLNA (range::single).
            range: range::single(head.all("range")).map(<[u8]>::to_vec),
            if_none_match: owned("if-none-match"),
            if_modified_since: owned("if-modified-since"),
            if_range: owned("if-range"),
            token,
        })
    }
}

/// [`PartRequest::of`] on raw bytes (test fixtures).
#[cfg(test)]
fn fast_path_request(head: &[u8]) -> Option<PartRequest> {
    PartRequest::of(&Head::parse_complete(head).ok()?)
}

/// A response ready to go: status, headers and (for GET) the byte span of the open file.
pub struct Prepared {
    /// 200, 206 or 304.
    pub status: u16,
    /// Every field of the answer but `Date` and `Connection` (the writer's).
    pub headers: Vec<(&'static str, String)>,
    /// (file, first byte, length) when there is a body to send.
    pub body: Option<(std::fs::File, u64, u64)>,
    /// The bandwidth class the body is paced and counted in.
    pub class: Class,
}

/// A part request answered with a sentence instead of the file (404, 416, 503): its status, the fields that
/// go with it (`Content-Range` on 416, `Retry-After` on 503) and the message a person reads. Each writer
/// (the fast path here, hyper's copy path in `http::plex`) renders it with [`Refused::fields`] and
/// [`Refused::body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The status code.
    pub status: u16,
    /// Fields beyond the body's type and length.
    pub headers: Vec<(&'static str, String)>,
    /// What to do about it, one sentence.
    pub message: String,
}

impl Refused {
    fn new(status: u16, message: impl Into<String>) -> Refused {
        Refused { status, headers: Vec::new(), message: message.into() }
    }

    /// The answer's body: the message and a newline (also for HEAD, whose writer sends only its length).
    pub fn body(&self) -> String {
        format!("{}\n", self.message)
    }

    /// Every field of the answer but `Date` and `Connection`: [`Refused::headers`], then the body's type and
    /// length.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut all = self.headers.clone();
        all.push(("Content-Type", "text/plain; charset=utf-8".into()));
        all.push(("Content-Length", self.body().len().to_string()));
        all
    }
}

/// What part requests need from the request, whichever engine read it.
pub struct Ask<'a> {
    /// The part's item id, None for a malformed part URL (404).
    pub item: Option<ItemId>,
    /// A HEAD request: the answer's fields, no body.
    pub head: bool,
    /// `?download=1`: an attachment, paced as a download when remote.
    pub download: bool,
    /// The Range and conditional fields.
    pub conditions: Conditions<'a>,
    /// The libraries the caller sees (the auth room's rule, decided by the caller).
    pub visible: Visible,
    /// The peer, for logs.
    pub peer: SocketAddr,
    /// The request's origin is LAN (the auth room's rule: LAN networks, trusted proxies, WAN-IP-as-LAN).
    pub lan: bool,
}

/// Decide the answer to a part request: 404 for unknown or hidden ids and for files [`open::open_media`] refuses,
/// 503 when their folder does not answer in time, 304/206/416/200 by RFC 9110.
pub async fn prepare(catalog: &Catalog, ask: &Ask<'_>) -> Result<Prepared, Refused> {
    let Some(id) = ask.item else {
        return Err(Refused::new(
            404,
            "Part URLs look like /library/parts/{id}/{time}/file.ext; take them from the item's metadata.",
        ));
    };
    let Some(item) = catalog.item(id).filter(|i| ask.visible.allows(i.library)) else {
        return Err(Refused::new(404, "There is no media part with that id."));
    };
    let root = crate::library::root_of(&catalog.state().snapshot(), item.library, item.path());
    let opened = open::open_media(root, item.path().to_owned()).await.map_err(|r| Refused::from(&r))?;
    let (file, meta) = (opened.file, opened.meta);
    let size = meta.len();
    let v = Validators::new(size, meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), meta.ino());
    let class = if ask.lan {
        Class::Lan
    } else if ask.download {
        Class::RemoteDownload
    } else {
        Class::RemoteStream
    };
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Accept-Ranges", "bytes".into()),
        ("ETag", v.etag.clone()),
        ("Last-Modified", crate::wire::http_date(v.modified)),
    ];
    let (status, span) = match range::decide(&ask.conditions, &v, size) {
        Decision::NotModified => (304, None),
        Decision::Send(Plan::Full) => (200, Some((0, size))),
        Decision::Send(Plan::Partial { start, end }) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            (206, Some((start, end - start + 1)))
        }
        Decision::Send(Plan::Unsatisfiable) => {
            // RFC 9110 §15.5.17: 416 carries Content-Range: bytes */complete-length.
            headers.push(("Content-Range", format!("bytes */{size}")));
            return Err(Refused { status: 416, headers, message: "The requested range is outside the file.".into() });
        }
    };
    if let Some((_, len)) = span {
        headers.push(("Content-Type", content_type(&item.container).into()));
        headers.push(("Content-Length", len.to_string()));
        if ask.download {
            headers.push(("Content-Disposition", disposition(&item.file_name())));
        }
    }
    let body = match span {
        Some((start, len)) if !ask.head && len > 0 => Some((file, start, len)),
        _ => None,
    };
    Ok(Prepared { status, headers, body, class })
}

/// The media type of a container the scanner names.
pub fn content_type(container: &str) -> &'static str {
    match container {
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "mpegts" => "video/mp2t",
        "mpeg" => "video/mpeg",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// RFC 6266 §4.3: an ASCII fallback plus the exact name as RFC 8187 `filename*`.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut enc = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{enc}")
}

/// What the connection does after a fast-path response.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Read the next request on this connection.
    KeepAlive,
    /// The connection is done (closed, or to be closed).
    Close,
}

/// Who asks for a part, as the caller (the http room, with the auth room's rule) decided: what they see,
/// whether they are on the LAN, and how to ask again while the body runs.
pub struct Viewer {
    /// The peer, for logs.
    pub peer: SocketAddr,
    /// The libraries the caller sees.
    pub visible: Visible,
    /// The request's origin is LAN.
    pub lan: bool,
    /// Asked again at every state change while the body runs (revocation).
    pub standing: Standing,
}

/// Answer one part request on the raw connection (the caller has consumed its head): the catalog finds the
/// item, `streams` paces, counts and registers the body.
pub async fn serve(
    stream: &mut TcpStream,
    req: PartRequest,
    viewer: Viewer,
    catalog: &Catalog,
    streams: &Arc<Streams>,
) -> Next {
    let ask = Ask {
        item: req.item,
        head: req.head,
        download: req.download,
        conditions: Conditions {
            if_none_match: req.if_none_match.as_deref(),
            if_modified_since: req.if_modified_since.as_deref(),
            if_range: req.if_range.as_deref(),
            range: req.range.as_deref(),
        },
        visible: viewer.visible,
        peer: viewer.peer,
        lan: viewer.lan,
    };
    let prepared = prepare(catalog, &ask).await;
    let keep_alive = req.keep_alive && !req.has_body;
    streams.responses.fetch_add(1, Ordering::Relaxed);
    let (out, prepared) = match prepared {
        Ok(p) => (answer_head(p.status, &p.headers, keep_alive), p),
        Err(refused) => {
            let mut out = answer_head(refused.status, &refused.fields(), keep_alive);
            if !req.head {
                out.extend_from_slice(refused.body().as_bytes());
            }
            let sent = send_head(stream, &out, false).await;
            return if sent.is_ok() && keep_alive { Next::KeepAlive } else { Next::Close };
        }
    };
    if send_head(stream, &out, prepared.body.is_some()).await.is_err() {
        return Next::Close;
    }
    let Some((file, start, len)) = prepared.body else {
        return if keep_alive { Next::KeepAlive } else { Next::Close };
    };
    let library = req.item.and_then(|id| catalog.item(id)).map_or(LibraryId::MAX, |i| i.library);
    let ticket = streams.register(library, viewer.standing);
    streams.active.fetch_add(1, Ordering::Relaxed);
    let mut lease = streams.pacer.lease(prepared.class);
    let counters = [&streams.zero_copy_bytes, streams.egress.counter(prepared.class)];
    let sent = send_file(stream, &file, start, len, &mut lease, &counters, &ticket.cancel).await;
    streams.active.fetch_sub(1, Ordering::Relaxed);
    match sent {
        Ok(()) if keep_alive => Next::KeepAlive,
        Ok(()) => Next::Close,
        Err(e) => {
            tracing::debug!(peer = %viewer.peer, error = %e, "stream ended early");
            if matches!(e, SendError::Truncated | SendError::Revoked) {
                abort(stream);
            }
            Next::Close
        }
    }
}

/// The fast path's response head: status line, `fields`, `Date`, `Connection`.
fn answer_head(status: u16, fields: &[(&'static str, String)], keep_alive: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (n, v) in fields {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Date: {}\r\n", crate::wire::date::now()));
    head.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    head.into_bytes()
}

/// Write a response head. When a body follows, MSG_MORE holds the head back so it leaves in the same packet as
/// the body's first bytes (what nginx gets from TCP_CORK), not in a packet of its own.
async fn send_head(stream: &TcpStream, head: &[u8], body_follows: bool) -> std::io::Result<()> {
    use nix::libc::{MSG_MORE, MSG_NOSIGNAL};
    let flags = if body_follows {
        MSG_MORE | MSG_NOSIGNAL
    } else {
        MSG_NOSIGNAL
    };
    let socket = socket2::SockRef::from(stream);
    let mut at = 0;
    while at < head.len() {
        let sent = stream.try_io(Interest::WRITABLE, || socket.send_with_flags(&head[at..], flags));
        match sent {
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                match tokio::time::timeout(STALL, stream.writable()).await {
                    Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                    Ok(r) => r?,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why a sendfile body ended before its last byte.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The file shrank under the send: the connection is reset, never padded.
    #[error("the file got shorter while it was being sent")]
    Truncated,
    /// The client took nothing for [`STALL`].
    #[error("the client accepted nothing for {0:?}")]
    Stalled(Duration),
    /// The caller's access was revoked ([`Streams::recheck`]).
    #[error("the caller's access was revoked while streaming")]
    Revoked,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// sendfile(2) `len` bytes from `start`, paced by `lease`, in calls of at most [`CHUNK`]. Each of `counters`
/// grows by the bytes each call sent. Ends with [`SendError::Revoked`] as soon as `cancel` is set, between
/// calls or while waiting for the pacer or for the socket.
pub async fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    start: u64,
    len: u64,
    lease: &mut Lease,
    counters: &[&AtomicU64],
    cancel: &Cancel,
) -> Result<(), SendError> {
    let mut offset = start as i64;
    let mut left = len;
    while left > 0 {
        if cancel.is_cancelled() {
            return Err(SendError::Revoked);
        }
        let grant = tokio::select! {
            g = lease.take(left.min(CHUNK)) => g,
            _ = cancel.cancelled() => return Err(SendError::Revoked),
        };
        // Send while the socket is known writable (try_io makes no syscall when it is not); wait for
        // writability, with the stall limit, only when it is not.
        let result = loop {
            let sent = stream.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile(
                    stream.as_fd(),
                    file.as_fd(),
                    Some(&mut offset),
                    grant as usize,
                )
                .map_err(std::io::Error::from)
            });
            match sent {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let writable = tokio::select! {
                        w = tokio::time::timeout(STALL, stream.writable()) => w,
                        _ = cancel.cancelled() => break Err(SendError::Revoked),
                    };
                    match writable {
                        Err(_) => break Err(SendError::Stalled(STALL)),
                        Ok(Err(e)) => break Err(e.into()),
                        Ok(Ok(())) => {}
                    }
                }
                other => break other.map_err(SendError::from),
            }
        };
        match result {
            // sendfile returns 0 only at end of file: the file is shorter than the length we promised.
            Ok(0) => return Err(SendError::Truncated),
            Ok(n) => {
                left -= n as u64;
                for c in counters {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
                lease.refund(grant - n as u64);
                // sendfile(2) queues references to page-cache pages: if the file shrank under bytes already
                // queued, those bytes are no longer the file's. Check after every call and abort.
                if file
                    .metadata()
                    .map(|m| m.len() < offset as u64)
                    .unwrap_or(true)
                {
                    return Err(SendError::Truncated);
                }
            }
            Err(e) => {
                lease.refund(grant);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Close with RST (SO_LINGER 0): the kernel drops what is still queued for the client instead of sending
/// it, so bytes queued from pages of a truncated file do not go out.
fn abort(stream: &TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        stream,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
}

/// The reason phrase of the statuses a part answer has (RFC 9110 §15).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A hyper body that copies a span of a file (the rare part request on a hyper connection). Counts bytes
/// and is paced by the same bandwidth classes as the fast path.
pub struct FileBody {
    file: tokio::fs::File,
    left: u64,
    streams: Arc<Streams>,
    buf: Vec<u8>,
    lease: Lease,
    class: Class,
    wait: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Registration for revocation; None for a body no caller can lose (none today).
    ticket: Option<Ticket>,
}

impl FileBody {
    /// Copy `len` bytes of `file` from `start`, paced and counted in `class`.
    pub async fn new(
        file: std::fs::File,
        start: u64,
        len: u64,
        class: Class,
        streams: Arc<Streams>,
    ) -> std::io::Result<FileBody> {
        use tokio::io::AsyncSeekExt;
        let mut file = tokio::fs::File::from_std(file);
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let lease = streams.pacer.lease(class);
        streams.active.fetch_add(1, Ordering::Relaxed);
        Ok(FileBody {
            file,
            left: len,
            streams,
            buf: vec![0; 64 * 1024],
            lease,
            class,
            wait: None,
            ticket: None,
        })
    }

    /// Register this body in the running streams of `library` (see the module doc): it ends with an error
    /// once `standing` says no.
    pub fn held(mut self, library: LibraryId, standing: Standing) -> FileBody {
        self.ticket = Some(self.streams.register(library, standing));
        self
    }
}

impl Drop for FileBody {
    fn drop(&mut self) {
        self.streams.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl hyper::body::Body for FileBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        use tokio::io::AsyncRead;
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if let Some(t) = &self.ticket {
            t.cancel.wake_on_cancel(cx.waker());
            if t.cancel.is_cancelled() {
                // An error makes hyper close the connection.
                return Poll::Ready(Some(Err(std::io::Error::other("the caller's access was revoked"))));
            }
        }
        let this = &mut *self;
        let want = loop {
            if let Some(w) = this.wait.as_mut() {
                if w.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.wait = None;
            }
            match this.lease.try_take(this.left.min(this.buf.len() as u64)) {
                Ok(n) => break n as usize,
                Err(d) => this.wait = Some(Box::pin(tokio::time::sleep(d))),
            }
        };
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf[..want]);
        let polled = std::pin::Pin::new(&mut this.file).poll_read(cx, &mut rb);
        let got = if let Poll::Ready(Ok(())) = &polled {
            rb.filled().len()
        } else {
            0
        };
        this.lease.refund((want - got) as u64);
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    // Truncated while sending: an error makes hyper close the connection (never wrong bytes).
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "file got shorter while sending",
                    ))));
                }
                this.left -= n as u64;
                this.streams
                    .copied_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                // Counted when hyper takes the frame; a frame lost with a dropped connection is counted too
                // (at most 64 KiB per stream).
                this.streams.egress.add(this.class, n as u64);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(
                    bytes::Bytes::copy_from_slice(rb.filled()),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_part_requests_only() {
        let r = fast_path_request(b"GET /library/parts/12/1700000000/file.mkv?download=1&X-Plex-Token=t HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n").unwrap();
        assert_eq!(
            (r.item, r.download, r.keep_alive, r.head),
            (Some(12), true, true, false)
        );
        assert_eq!(r.range.as_deref(), Some(&b"bytes=0-9"[..]));
        assert_eq!(r.token.as_deref(), Some("t"));
        let r = fast_path_request(b"HEAD /library/parts/12/1/f.mp4 HTTP/1.0\r\n\r\n").unwrap();
        assert!(r.head && !r.keep_alive);
        // Traversal and junk ids are part requests with no item (404), never paths.
        for bad in [
            "/library/parts/../../etc/passwd",
            "/library/parts/1/../../x",
            "/library/parts/-1/1/f",
            "/library/parts/99999999999/1/f",
        ] {
            let r = fast_path_request(format!("GET {bad} HTTP/1.1\r\n\r\n").as_bytes()).unwrap();
            assert_eq!(r.item, None, "{bad}");
        }
        assert!(fast_path_request(b"GET /library/sections HTTP/1.1\r\n\r\n").is_none());
        assert!(fast_path_request(b"POST /library/parts/1/1/f HTTP/1.1\r\n\r\n").is_none());
        let r = fast_path_request(
            b"GET /library/parts/1/1/f HTTP/1.1\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
        assert!(!r.keep_alive && r.has_body);
    }

    #[test]
    fn disposition_quotes_safely() {
        assert_eq!(
            disposition("a b.mp4"),
            "attachment; filename=\"a b.mp4\"; filename*=UTF-8''a%20b.mp4"
        );
        assert_eq!(
            disposition("caf\u{e9}\".mkv"),
            "attachment; filename=\"caf__.mkv\"; filename*=UTF-8''caf%C3%A9%22.mkv"
        );
    }
}
