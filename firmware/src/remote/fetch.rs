//! A small, bounded HTTP/1.1 client (hyper's client connection): plain `http://` only, one request per
//! connection, a deadline over the whole exchange and a cap on the body. Used to ask the reflector and by the
//! reflector to fetch `/identity`; the IGD control point (`igd`) opens its connections through [`connect_from`].

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a plain-HTTP fetch (the reflector's `/identity` check) failed, in words for the status
/// page.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an http:// URL")]
    Url(String),
    #[error("the name {0} could not be resolved")]
    Resolve(String),
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("no answer from {0} within {1} s")]
    Timeout(SocketAddr, u64),
    #[error("HTTP error talking to {0}: {1}")]
    Http(SocketAddr, String),
    #[error("the answer from {0} is larger than {1} bytes")]
    TooLarge(SocketAddr, usize),
}

/// `http://host[:port][/path]` split into (host, port, path).
pub fn split_url(url: &str) -> Result<(String, u16, String), FetchError> {
    let bad = || FetchError::Url(url.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']').ok_or_else(bad)?;
        (h, p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => 80,
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':')) {
        return Err(bad());
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// Resolve `host:port` (an address literal, or a name through the system resolver).
pub async fn resolve(host: &str, port: u16) -> Result<SocketAddr, FetchError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port))).await;
    match lookup {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| FetchError::Resolve(host.to_string())),
        _ => Err(FetchError::Resolve(host.to_string())),
    }
}

/// One request to `addr`; the answer's status and body (at most `limit` bytes), all within `deadline`.
pub async fn exchange(
    addr: SocketAddr,
    host: &str,
    method: Method,
    path: &str,
    json_body: Option<String>,
    limit: usize,
    deadline: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    exchange_from(None, addr, host, method, path, json_body, limit, deadline).await
}

/// A TCP connection to `addr`, from the local address `from` when given (the reflector must see the very
/// IPv6 address a pinhole was opened for, not another address the kernel might pick).
pub async fn connect_from(from: Option<std::net::IpAddr>, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let Some(from) = from else { return tokio::net::TcpStream::connect(addr).await };
    let sock = if addr.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    sock.bind(SocketAddr::new(from, 0))?;
    sock.connect(addr).await
}

/// [`exchange`] from the local address `from` (see [`connect_from`]).
#[allow(clippy::too_many_arguments)]
pub async fn exchange_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
    host: &str,
    method: Method,
    path: &str,
    json_body: Option<String>,
    limit: usize,
    deadline: Duration,
) -> Result<(StatusCode, Bytes), FetchError> {
    let work = async {
        let tcp = connect_from(from, addr).await.map_err(|e| FetchError::Connect(addr, e))?;
        let http = |e: hyper::Error| FetchError::Http(addr, e.to_string());
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(http)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, concat!("Hearth/", env!("CARGO_PKG_VERSION")));
        if json_body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|e| FetchError::Http(addr, e.to_string()))?;
        let resp = send.send_request(req).await.map_err(http)?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|_| FetchError::TooLarge(addr, limit))?
            .to_bytes();
        driver.abort();
        Ok((status, body))
    };
    tokio::time::timeout(deadline, work).await.map_err(|_| FetchError::Timeout(addr, deadline.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A peer that takes the request and never answers: after the deadline the exchange says so and the
    /// connection is closed, so a silent reflector or ACME server holds no socket of ours past the deadline
    /// (hyper's connection task ends once the request and its sender are dropped with the timed-out future).
    #[tokio::test]
    async fn a_silent_peer_gets_its_connection_closed_at_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            // Read the request, then wait for the client to close: Ok(0) at end of stream.
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    return true;
                }
            }
            true
        });
        let r = exchange(addr, "peer", Method::GET, "/", None, 1024, Duration::from_millis(300)).await;
        assert!(matches!(r, Err(FetchError::Timeout(..))), "{r:?}");
        let closed = tokio::time::timeout(Duration::from_secs(5), peer).await;
        assert!(matches!(closed, Ok(Ok(true))), "the connection stayed open after the deadline");
    }

    #[test]
    fn splits_urls() {
        assert_eq!(split_url("http://11.0.0.1:8080").unwrap(), ("11.0.0.1".into(), 8080, "/".into()));
        assert_eq!(split_url("http://r.example/x/y").unwrap(), ("r.example".into(), 80, "/x/y".into()));
        assert_eq!(split_url("http://[2001:db8::1]:81/a").unwrap(), ("2001:db8::1".into(), 81, "/a".into()));
        for bad in ["https://x", "http://", "http://u@h/", "http://h:0/", "http://h:99999", "ftp://x", "http://h h/"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }
}
