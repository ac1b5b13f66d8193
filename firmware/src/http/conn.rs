//! Accepting connections and handing each request to the right engine.

use super::rewind::Rewind;
use super::routes::{self, Call, Miss};
use super::{Body, Ctx, Format, HEAD_TIMEOUT, MAX_HEAD, error};
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Accept until `stop` turns true.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(connection(stream, peer, ctx.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
}

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
pub async fn read_head(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<Head> {
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

async fn connection(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buf)).await
        {
            Err(_) => {
                tracing::debug!(%peer, "request head too slow; closing");
                return;
            }
            Ok(Err(_)) | Ok(Ok(Head::Closed)) => return,
            Ok(Ok(h)) => h,
        };
        let head_len = match head {
            Head::TooLarge => {
                let _ = stream
                    .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 41\r\n\r\nRequest headers are larger than 16 KiB.\r\n")
                    .await;
                linger_close(stream).await;
                return;
            }
            Head::Malformed => {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 34\r\n\r\nThat is not an HTTP/1.1 request.\r\n")
                    .await;
                linger_close(stream).await;
                return;
            }
            Head::Complete(n) => n,
            Head::Closed => return,
        };
        // Stream fast path (stream room): part GET/HEAD answered here with sendfile(2); a keep-alive
        // connection comes back for its next head. Anything else goes to hyper with the bytes read so far.
        if let Some(req) = crate::stream::fast_path_request(&buf[..head_len]) {
            match crate::stream::serve(&mut stream, &mut buf, head_len, req, &ctx, peer).await {
                crate::stream::Next::KeepAlive => continue,
                crate::stream::Next::Close => return,
            }
        }
        break;
    }
    let io = TokioIo::new(Rewind::new(buf.freeze(), stream));
    let svc = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(dispatch(ctx, peer, req).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
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

/// Route one request through the table.
pub async fn dispatch(ctx: Arc<Ctx>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let format = Format::of(req.headers());
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
    (route.handler)(Call {
        ctx,
        req,
        params,
        peer,
        format,
    })
    .await
}
