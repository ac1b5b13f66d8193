//! Accepting connections and handing each request to the right engine.
//!
//! A plain connection's loop reads and parses every request head once (`wire::read_head`); a part request
//! passes the doors on that parsed head (`part_doors`: Host/Origin, secure connections, the access rule) and
//! goes to the stream room's sendfile path; any other request is lent to hyper for one exchange. A TLS
//! connection whose keys the kernel took after the handshake (`http::ktls`) is served by the same loop; where
//! the kernel cannot take them, rustls serves it in user space and it goes to hyper after its first head,
//! through the same door functions (`http::doors`, `routes::admit`) on hyper's parsed request.

use super::deadline::{BodyClock, Timed};
use super::doors::Insecure;
use super::exchange::{Exchange, Framing};
use super::ktls::{HandOver, Socket};
use super::rewind::Rewind;
use super::routes::{self, Miss};
use super::{Body, Ctx, Format, HEAD_TIMEOUT, MAX_HEAD, error};
use crate::wire::head::{Read, read_head};
use crate::wire::Head;
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

/// Accept until `stop` turns true. Each connection lives on one of the [`Workers`](crate::system::workers::Workers).
/// One source holds at most [`fds::per_source_cap`] connections (R-F2); more are refused at once with 503.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let workers = crate::system::workers::Workers::get();
    let sources = fds::Sources::new(fds::per_source_cap(fds::limit()));
    let mut trouble = fds::AcceptTrouble::new("HTTP");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let peer = crate::system::dual_stack::canonical_socket(peer);
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
        return plain_session(Socket::Plain(stream), peer, ctx).await;
    }
    let Some(handshake) = ctx.certificates.handshake(&ctx.state.snapshot()) else {
        tracing::debug!(%peer, "TLS client, but HTTPS is off; closing");
        return;
    };
    if !super::ktls::kernel().await.usable() {
        super::ktls::user_space_session();
        return match tokio::time::timeout(HEAD_TIMEOUT, handshake.accept(stream)).await {
            Ok(Ok(tls)) => tls_session(tls, peer, ctx).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake too slow; closing"),
        };
    }
    // The handshake reads through CorkStream, which stops at a record boundary once corked, so rustls holds
    // no half-read record when the keys go to the kernel (http::ktls).
    match tokio::time::timeout(HEAD_TIMEOUT, handshake.accept(ktls::CorkStream::new(stream))).await {
        // A client that stalls inside a record it started after its Finished holds the hand-over's drain:
        // the head deadline ends it as it ends a slow head.
        Ok(Ok(tls)) => match tokio::time::timeout(HEAD_TIMEOUT, super::ktls::hand_over(tls)).await {
            Ok(HandOver::Kernel(socket)) => plain_session(Socket::Kernel(Box::new(socket)), peer, ctx).await,
            Ok(HandOver::UserSpace(tls)) => tls_session(tls, peer, ctx).await,
            Ok(HandOver::Lost) => {}
            Err(_) => tracing::debug!(%peer, "TLS hand-over too slow (a record left half-sent); closing"),
        },
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake too slow; closing"),
    }
}

/// A plain-TCP or kernel-TLS session: every request head is read and parsed here, once
/// ([`crate::wire::Head`]); part GET/HEAD go to the stream fast path (sendfile), any other request to hyper
/// for that one exchange ([`Exchange`]), and both come back for the next head on keep-alive. A request whose
/// body this loop cannot delimit (chunked, upgrade) hands the rest of the connection to hyper.
async fn plain_session(mut stream: Socket, peer: SocketAddr, ctx: Arc<Ctx>) {
    let secure = stream.secure();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let Some(head) = first_head(&mut stream, &mut buf, peer).await else {
            return linger_close(stream).await;
        };
        // Stream fast path (stream room): part GET/HEAD answered here with sendfile(2).
        let Some(req) = crate::stream::PartRequest::of(&head) else {
            let Framing::Length(body) = head.framing() else { break };
            match one_exchange(&mut stream, &mut buf, head.len(), body, peer, &ctx, secure).await {
                Some(true) if head.persistent() => continue,
                Some(_) => return linger_close(stream).await,
                None => return,
            }
        };
        let viewer = match part_doors(&head, &req, peer, &ctx, secure) {
            Ok(viewer) => viewer,
            Err(answer) => {
                let _ = stream.write_all(&answer).await;
                return linger_close(stream).await;
            }
        };
        // What follows the head stays in `buf`: the next pipelined request.
        bytes::Buf::advance(&mut buf, head.len());
        match crate::stream::serve(stream.tcp(), req, viewer, &ctx.library, &ctx.streams).await {
            crate::stream::Next::KeepAlive => continue,
            crate::stream::Next::Close => return,
        }
    }
    hyper_session(stream, buf, peer, ctx, secure).await
}

/// The doors a fast-path part request passes, in the order the copy path's `dispatch` and `routes::run` ask
/// them, on the one parsed head: Host and Origin, secure connections, then the access rule for the item's
/// library. Ok is who asks, as the stream room needs it; Err is the complete answer (the connection closes).
fn part_doors(
    head: &Head,
    req: &crate::stream::PartRequest,
    peer: SocketAddr,
    ctx: &Ctx,
    secure: bool,
) -> Result<crate::stream::Viewer, Vec<u8>> {
    let state = ctx.state.snapshot();
    // The Host and Origin doors (http/doors.rs), before anything else looks at the request.
    super::doors::browser_head(&state, head).map_err(|r| plain_refusal(r.status, &r.message))?;
    match super::doors::insecure(&state, head, head.target(), secure) {
        Ok(()) => {}
        Err(Insecure::Redirect(location)) => return Err(plain_redirect(&location)),
        Err(Insecure::Refuse) => return Err(plain_refusal(403, super::doors::REQUIRED_TLS)),
    }
    // The same rule as the copy path's part route: the item's library among those the caller sees.
    let params = routes::Params(vec![("id", req.item.map(|i| i.to_string()).unwrap_or_default())]);
    let library_of = |id: u32| ctx.library.library_of(id);
    let own = ctx.auth.subnets();
    let (origin, caller) = routes::admit_head(routes::ITEM, &params, head, peer, &state, &own, &library_of)
        .map_err(|refusal| {
            if refusal.status == 401 && refusal.token_presented {
                tracing::info!(peer = %refusal.addr, "refused a part request with an invalid token");
            }
            plain_refusal(refusal.status, refusal.message)
        })?;
    if let crate::auth::Caller::Account { device, .. } = caller {
        ctx.auth.seen(device);
    }
    let standing = super::standing::standing(&caller, origin, &state);
    Ok(crate::stream::Viewer { peer, visible: caller.sees(), lan: origin.lan, standing })
}

/// Serve one non-stream request with hyper: the head and `body` bytes of body, no more. Some(true) when the
/// connection can carry another request, Some(false) when it should close after a linger, None when it is
/// already broken.
async fn one_exchange(
    stream: &mut Socket,
    buf: &mut BytesMut,
    head_len: usize,
    body: u64,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    secure: bool,
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
            let answer = dispatch_timed(ctx.clone(), peer, secure, req, clock.clone());
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

/// A user-space TLS session (the kernel cannot take the keys): the first head is read here (for its limits),
/// then hyper serves it. Parts are copied.
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

/// Read one request head within the time and size limits, and parse it (once). None = the connection is done
/// (an error answer, if any, was written).
async fn first_head<S>(io: &mut S, buf: &mut BytesMut, peer: SocketAddr) -> Option<Head>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match read_head(io, buf, HEAD_TIMEOUT).await {
        Read::Head(head) => Some(head),
        Read::TooSlow => {
            tracing::debug!(%peer, "request head too slow; closing");
            None
        }
        Read::Closed => None,
        Read::Refused(bad) => {
            let _ = io.write_all(&plain_refusal(bad.status(), bad.message())).await;
            None
        }
    }
}

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

/// A complete 301 to `location` for the paths that do not go through hyper; the connection closes after it.
fn plain_redirect(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
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
async fn linger_close(mut stream: Socket) {
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
    if let Some(answer) = super::tls_api::challenge(&ctx, &req, secure) {
        return answer;
    }
    if let Err(refused) = super::doors::browser_request(&ctx.state.snapshot(), &req, secure) {
        let status = StatusCode::from_u16(refused.status).expect("valid status");
        return error(status, &refused.message, if json { Format::Json } else { format });
    }
    match super::doors::insecure(&ctx.state.snapshot(), req.headers(), path_and_query(&req), secure) {
        Ok(()) => {}
        Err(Insecure::Redirect(location)) => return redirect(&location, format),
        Err(Insecure::Refuse) => return error(StatusCode::FORBIDDEN, super::doors::REQUIRED_TLS, format),
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

/// The request's target as sent (path and query).
fn path_and_query<B>(req: &Request<B>) -> &str {
    req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

/// A 301 to `location` (a 403 when it is not a field value, which [`super::doors::insecure`] does not give).
fn redirect(location: &str, format: Format) -> Response<Body> {
    match header::HeaderValue::from_str(location) {
        Ok(location) => Response::builder()
            .status(StatusCode::MOVED_PERMANENTLY)
            .header(header::LOCATION, location)
            .body(super::empty())
            .expect("valid response"),
        Err(_) => error(StatusCode::FORBIDDEN, super::doors::REQUIRED_TLS, format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NorFile, Store};

    /// Serve `requests` (raw bytes, one connection) with [`plain_session`] on this thread; the answer and how
    /// many complete request heads were parsed on this thread meanwhile (`wire::head::parsed_on_this_thread`:
    /// the current-thread runtime runs the session here, and nothing else on it parses heads).
    async fn session(requests: &str) -> (String, usize) {
        let dir = tempfile::tempdir().unwrap();
        let flash = NorFile::open_or_create(&dir.path().join("flash.img"), 128 * 1024, 4096).unwrap();
        let (store, _) = Store::open(flash).unwrap();
        let handle = crate::state::Handle::start(store, crate::state::State::new([7; 16]));
        let ctx = Arc::new(Ctx::new(handle, false, dir.path().to_path_buf()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = requests.replace("{host}", &addr.to_string());
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(requests.as_bytes()).await.unwrap();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer).await;
            answer
        });
        let (stream, peer) = listener.accept().await.unwrap();
        let before = crate::wire::head::parsed_on_this_thread();
        plain_session(Socket::Plain(stream), peer, ctx).await;
        let parsed = crate::wire::head::parsed_on_this_thread() - before;
        (client.await.unwrap(), parsed)
    }

    /// Issue 23 deliverable 1: a fast-path part request is parsed once, though the Host/Origin doors, the
    /// secure-connections door, the admission and the stream room all read it (before: three httparse runs).
    /// A pipelined API request before it adds one parse for the loop (hyper's own parse is not this parser).
    #[tokio::test]
    async fn c_2_1_a_part_request_head_is_parsed_once() {
        let part = "GET /library/parts/7/1/f.mkv HTTP/1.1\r\nHost: {host}\r\nRange: bytes=0-1\r\n\r\n";
        let (answer, parsed) = session(part).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "the admission answered (an unclaimed box): {answer}");
        assert!(answer.contains("not claimed yet"), "{answer}");
        assert_eq!(parsed, 1, "one parse for one part request");
        let identity = "GET /identity HTTP/1.1\r\nHost: {host}\r\n\r\n";
        let (answer, parsed) = session(&format!("{identity}{part}")).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("not claimed yet"), "{answer}");
        assert_eq!(parsed, 2, "one parse per request head");
    }
}
