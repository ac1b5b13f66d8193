//! Accepting connections and handing each request to the right engine.

use super::deadline::{BodyClock, Timed};
use super::exchange::{Exchange, Framing, head_facts};
use super::rewind::Rewind;
use super::routes::{self, Miss};
use super::{Body, Ctx, Format, HEAD_TIMEOUT, MAX_HEAD, error};
use crate::state::SecureConnections;
use crate::system::fds;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accept until `stop` turns true. Each connection lives on one of the [`Workers`](super::workers::Workers).
/// One source holds at most [`fds::per_source_cap`] connections (R-F2); more are refused at once with 503.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let workers = super::workers::Workers::get();
    let sources = fds::Sources::new(fds::per_source_cap(fds::limit()));
    let mut trouble = fds::AcceptTrouble::new("HTTP");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    trouble.accepted();
                    let Some(held) = sources.admit(peer.ip()) else {
                        tracing::debug!(%peer, cap = sources.cap(), "too many connections from one source; refused");
                        // Best effort, without waiting: the client may not have sent its request yet.
                        let _ = stream.try_write(&plain_refusal(503, TOO_MANY));
                        continue;
                    };
                    let ctx = ctx.clone();
                    workers.hand(stream, move |stream| async move {
                        connection(stream, peer, ctx).await;
                        drop(held);
                    });
                }
                // EMFILE and friends: back off instead of spinning, and say so once per episode.
                Err(e) => tokio::time::sleep(trouble.failed(&e)).await,
            },
            _ = stop.changed() => break,
        }
    }
}

const TOO_MANY: &str = "Too many connections from your address; try again when some have finished.";

/// Outcome of reading a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A complete head of this many bytes is at the start of the buffer.
    Complete(usize),
    /// The peer closed before sending anything.
    Closed,
    /// Over [`MAX_HEAD`].
    TooLarge,
    /// Not HTTP.
    Malformed,
}

/// Read until the buffer holds a complete request head (or it cannot).
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut BytesMut) -> std::io::Result<Head> {
    loop {
        if !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(buf) {
                Ok(httparse::Status::Complete(n)) => return Ok(Head::Complete(n)),
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => return Ok(Head::TooLarge),
                Err(_) => return Ok(Head::Malformed),
            }
            if buf.len() >= MAX_HEAD {
                return Ok(Head::TooLarge);
            }
        }
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return Ok(if buf.is_empty() {
                Head::Closed
            } else {
                Head::Malformed
            });
        }
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    // DESIGN.md "Network surface": HTTP and HTTPS share 32400; a TLS ClientHello starts with the handshake
    // record type 0x16 (RFC 8446 §5.1), which no HTTP method does.
    let mut first = [0u8; 1];
    match tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != 0x16 {
        return plain_session(stream, peer, ctx).await;
    }
    let Some(acceptor) = ctx.certificates.acceptor(&ctx.state.snapshot()) else {
        tracing::debug!(%peer, "TLS client, but HTTPS is off; closing");
        return;
    };
    match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls_session(tls, peer, ctx).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake too slow; closing"),
    }
}

/// A plain-TCP session: every request head is read here; part GET/HEAD go to the stream fast path (sendfile),
/// any other request to hyper for that one exchange ([`Exchange`]), and both come back for the next head on
/// keep-alive. A request whose body this loop cannot delimit (chunked, upgrade) hands the rest of the
/// connection to hyper.
async fn plain_session(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head_len = match first_head(&mut stream, &mut buf, peer).await {
            Some(n) => n,
            None => return linger_close(stream).await,
        };
        // Stream fast path (stream room): part GET/HEAD answered here with sendfile(2).
        let Some(req) = crate::stream::fast_path_request(&buf[..head_len]) else {
            let facts = head_facts(&buf[..head_len]);
            let Framing::Length(body) = facts.framing else { break };
            match one_exchange(&mut stream, &mut buf, head_len, body, peer, &ctx).await {
                Some(true) if facts.keep_alive => continue,
                Some(_) => return linger_close(stream).await,
                None => return,
            }
        };
        let state = ctx.state.snapshot();
        // The Host and Origin doors (http/doors.rs), before anything else looks at the request.
        if let Err(refused) = super::doors::browser_head(&state, &buf[..head_len]) {
            let _ = stream.write_all(&plain_refusal(refused.status, &refused.message)).await;
            return linger_close(stream).await;
        }
        if state.settings.secure_connections == SecureConnections::Required {
            let _ = stream.write_all(&plain_refusal(403, REQUIRED_TLS)).await;
            return linger_close(stream).await;
        }
        // The same rule as the copy path's part route: the item's library among those the caller sees.
        let params = routes::Params(vec![("id", req.item.map(|i| i.to_string()).unwrap_or_default())]);
        let library_of = |id: u32| ctx.library.library_of(id);
        let admitted =
            routes::admit_head(routes::ITEM, &params, &buf[..head_len], peer, &state, &ctx.auth.subnets(), &library_of);
        let (origin, caller) = match admitted {
            Ok(pass) => pass,
            Err(refusal) => {
                if refusal.status == 401 && refusal.token_presented {
                    tracing::info!(peer = %refusal.addr, "refused a part request with an invalid token");
                }
                let _ = stream.write_all(&plain_refusal(refusal.status, refusal.message)).await;
                return linger_close(stream).await;
            }
        };
        if let crate::auth::Caller::Account { device, .. } = caller {
            ctx.auth.seen(device);
        }
        let visible = caller.sees();
        // What follows the head stays in `buf`: the next pipelined request.
        bytes::Buf::advance(&mut buf, head_len);
        let standing = super::standing::standing(&caller, origin, &state);
        match crate::stream::serve(&mut stream, req, &ctx, peer, visible, origin.lan, standing).await {
            crate::stream::Next::KeepAlive => continue,
            crate::stream::Next::Close => return,
        }
    }
    hyper_session(stream, buf, peer, ctx, false).await
}

/// Serve one non-stream request with hyper: the head and `body` bytes of body, no more. Some(true) when the
/// connection can carry another request, Some(false) when it should close after a linger, None when it is
/// already broken.
async fn one_exchange(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    head_len: usize,
    body: u64,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
) -> Option<bool> {
    let total = (head_len as u64).saturating_add(body);
    let pre = buf.split_to(buf.len().min(usize::try_from(total).unwrap_or(usize::MAX))).freeze();
    let body_left = total - pre.len() as u64;
    let mut exchange = Exchange::new(pre, body_left, stream);
    let clock = BodyClock::default();
    let ctx = ctx.clone();
    let svc = {
        let clock = clock.clone();
        service_fn(move |req| {
            let answer = dispatch_timed(ctx.clone(), peer, false, req, clock.clone());
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        // The end of this exchange's bytes is not the client going away: finish the answer.
        .half_close(true)
        .max_buf_size(MAX_HEAD.max(8192))
        .serve_connection(TokioIo::new(Timed::new(&mut exchange, clock)), svc)
        .await;
    if let Err(e) = served {
        tracing::debug!(%peer, error = %e, "request ended with an error");
        return None;
    }
    if exchange.response_closes() {
        return Some(false);
    }
    // A body the handler answered without reading must not be taken for the next request: read it away
    // (a small one, quickly) or close.
    if !exchange.request_consumed() {
        let skipped = tokio::time::timeout(fds::body_timeout(), exchange.skip_body(UNREAD_BODY_LIMIT)).await;
        return Some(matches!(skipped, Ok(Ok(true))));
    }
    Some(true)
}

/// Largest request body left unread by a handler that is read away to keep the connection.
const UNREAD_BODY_LIMIT: u64 = 64 * 1024;

/// A TLS session: the first head is read here (for its limits), then hyper serves it. Parts are copied.
async fn tls_session<S>(mut io: S, peer: SocketAddr, ctx: Arc<Ctx>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(4096);
    if first_head(&mut io, &mut buf, peer).await.is_none() {
        let _ = io.shutdown().await;
        return;
    }
    hyper_session(io, buf, peer, ctx, true).await
}

/// Read one request head within the time and size limits. None = the connection is done (an error answer,
/// if any, was written).
async fn first_head<S>(io: &mut S, buf: &mut BytesMut, peer: SocketAddr) -> Option<usize>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(io, buf)).await {
        Err(_) => {
            tracing::debug!(%peer, "request head too slow; closing");
            return None;
        }
        Ok(Err(_)) | Ok(Ok(Head::Closed)) => return None,
        Ok(Ok(h)) => h,
    };
    match head {
        Head::TooLarge => {
            let _ = io.write_all(&plain_refusal(431, "Request headers are larger than 16 KiB.")).await;
            None
        }
        Head::Malformed => {
            let _ = io.write_all(&plain_refusal(400, "That is not an HTTP/1.1 request.")).await;
            None
        }
        Head::Complete(n) => Some(n),
        Head::Closed => None,
    }
}

const REQUIRED_TLS: &str = "This server requires secure connections: use https:// on the same address and port.";

/// A complete error answer for the paths that do not go through hyper; the connection closes after it.
fn plain_refusal(status: u16, message: &str) -> Vec<u8> {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let body = format!("{message}\r\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Hand the connection, with the bytes already read, to hyper's HTTP/1 server.
async fn hyper_session<S>(io: S, buf: BytesMut, peer: SocketAddr, ctx: Arc<Ctx>, secure: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = BodyClock::default();
    let io = TokioIo::new(Timed::new(Rewind::new(buf.freeze(), io), clock.clone()));
    let svc = service_fn(move |req| {
        let answer = dispatch_timed(ctx.clone(), peer, secure, req, clock.clone());
        async move { Ok::<_, std::convert::Infallible>(answer.await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        // No reads to watch for the client leaving while a handler works: a read that blocks is a body read,
        // which the body deadline may end (http::deadline).
        .half_close(true)
        .max_buf_size(MAX_HEAD.max(8192))
        .serve_connection(io, svc)
        .await;
    if let Err(e) = served {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Close after an error answer without resetting: closing with unread input makes the kernel send RST,
/// which can destroy the answer before the client reads it (RFC 9112 §9.6). Shut down our side, then read
/// and drop what the client still sends, for a short while.
async fn linger_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        let mut total = 0usize;
        while let Ok(n) = stream.read(&mut sink).await {
            total += n;
            if n == 0 || total > 1 << 20 {
                break;
            }
        }
    })
    .await;
}

/// [`dispatch`] with the body deadline (R-F2): a request with a body arms `clock` until its answer is ready;
/// when the body did not arrive in time the answer is 408 and the connection closes. The clock is armed when
/// this is called, not when the future is first polled: hyper calls the service as soon as it has the head and
/// reads body bytes before it polls the service's future.
fn dispatch_timed(
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    secure: bool,
    req: Request<Incoming>,
    clock: BodyClock,
) -> impl Future<Output = Response<Body>> + Send {
    use hyper::body::Body as _;
    let format = Format::of(req.headers());
    let upload = req.uri().path() == super::update_api::PATH;
    let armed = (!req.body().is_end_stream()).then(|| if upload { clock.start_upload(super::update_api::MIN_RATE) } else { clock.start() });
    async move {
        let answer = dispatch(ctx, peer, secure, req).await;
        drop(armed);
        if !clock.fired() {
            return answer;
        }
        tracing::debug!(%peer, "request body too slow; 408");
        let mut r = error(StatusCode::REQUEST_TIMEOUT, BODY_TOO_SLOW, format);
        r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        r
    }
}

const BODY_TOO_SLOW: &str = "The request body did not arrive in time; send it again, all at once.";

/// Route one request through the table.
pub async fn dispatch(ctx: Arc<Ctx>, peer: SocketAddr, secure: bool, req: Request<Incoming>) -> Response<Body> {
    let format = Format::of(req.headers());
    // The Host and Origin doors (http/doors.rs), before any route, redirect or refusal echoes the request.
    let json = req.uri().path().starts_with("/api/");
    if let Err(refused) = super::doors::browser_request(&ctx.state.snapshot(), &req, secure) {
        let status = StatusCode::from_u16(refused.status).expect("valid status");
        return error(status, &refused.message, if json { Format::Json } else { format });
    }
    if !secure {
        let required = ctx.state.snapshot().settings.secure_connections == SecureConnections::Required;
        if required {
            return insecure_refused(&req, format);
        }
    }
    // --- setup page: a browser asking for `/` goes to /web/ (API clients asking for `/` fall through to the
    // route table and get the MediaContainer). Before routing, so it does not depend on who declares `/`.
    if let Some(r) = super::web::browser_root(&req) {
        return r;
    }
    // --- end setup page
    let (route, params) = match routes::find(req.method(), req.uri().path()) {
        Ok(found) => found,
        Err(Miss::NotFound) => {
            let msg = format!(
                "There is no {} {} on this server.",
                req.method(),
                req.uri().path()
            );
            return error(StatusCode::NOT_FOUND, &msg, format);
        }
        Err(Miss::MethodNotAllowed(allowed)) => {
            let list: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let msg = format!(
                "{} is not allowed here; use {}.",
                req.method(),
                list.join(" or ")
            );
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, &msg, format);
            r.headers_mut().insert(
                header::ALLOW,
                list.join(", ").parse().expect("method names"),
            );
            return r;
        }
    };
    routes::run(route, params, ctx, peer, secure, req, format).await
}

/// Secure connections "Required": browsers are sent to the https:// address of the same page, other clients
/// get 403 with the reason.
fn insecure_refused(req: &Request<Incoming>, format: Format) -> Response<Body> {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| valid_host(h));
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if let (true, Some(host)) = (browser, host) {
        let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let location = format!("https://{host}{path}");
        if let Ok(location) = header::HeaderValue::from_str(&location) {
            return Response::builder()
                .status(StatusCode::MOVED_PERMANENTLY)
                .header(header::LOCATION, location)
                .body(super::empty())
                .expect("valid response");
        }
    }
    error(StatusCode::FORBIDDEN, REQUIRED_TLS, format)
}

/// A Host header we are willing to echo into a redirect: host[:port], no path, no userinfo.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}
