//! One request/response exchange of a plain connection, lent to hyper. The connection's own loop
//! (`conn::plain_session`) reads every request head; an API request goes to a hyper HTTP/1 connection that
//! sees only that request's bytes (the head, then exactly its `Content-Length` body) followed by end of input,
//! so hyper answers it and ends without reading the next request, and the loop takes the connection back: the
//! next request may be a part stream (sendfile) again. Writes go straight to the socket; hyper's shutdown at
//! its end is only a flush (the connection lives on). The response head hyper writes is read on its way out to
//! learn whether hyper closes the connection (`Connection: close`).

use crate::wire::Head;
use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use super::ktls::Socket;

/// How the body of a request is delimited: the wire room's reading of the head.
pub use crate::wire::head::Framing;

/// What the loop needs to know about one request head.
#[derive(Debug, PartialEq, Eq)]
pub struct HeadFacts {
    /// How its body is delimited.
    pub framing: Framing,
    /// RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    pub keep_alive: bool,
}

impl HeadFacts {
    /// The facts of a parsed head ([`Head::framing`], [`Head::persistent`]).
    pub fn of(head: &Head) -> HeadFacts {
        HeadFacts { framing: head.framing(), keep_alive: head.persistent() }
    }
}

/// [`HeadFacts::of`] the complete head in `head`; one that does not parse has no framing this loop can use.
pub fn head_facts(head: &[u8]) -> HeadFacts {
    match Head::parse_complete(head) {
        Ok(h) => HeadFacts::of(&h),
        Err(_) => HeadFacts { framing: Framing::Other, keep_alive: false },
    }
}

/// The connection as hyper sees it for one exchange.
pub struct Exchange<'a> {
    /// The request's bytes already read (head and maybe some body).
    pre: Bytes,
    /// Body bytes still to come from the socket.
    body_left: u64,
    stream: &'a mut Socket,
    /// The response head as written so far, until it is complete.
    answer: Vec<u8>,
    answer_read: bool,
    closes: bool,
}

impl<'a> Exchange<'a> {
    /// `pre` is the head and the part of the body already read; `body_left` more body bytes follow on the socket.
    pub fn new(pre: Bytes, body_left: u64, stream: &'a mut Socket) -> Exchange<'a> {
        Exchange {
            pre,
            body_left,
            stream,
            answer: Vec::new(),
            answer_read: false,
            closes: false,
        }
    }

    /// Every byte of the request was read (by hyper): the next byte on the socket starts a new request.
    pub fn request_consumed(&self) -> bool {
        self.pre.is_empty() && self.body_left == 0
    }

    /// Read and drop the rest of the request body when it is at most `limit` bytes. True when the socket is
    /// then at the start of the next request.
    pub async fn skip_body(&mut self, limit: u64) -> io::Result<bool> {
        use tokio::io::AsyncReadExt;
        let unread = self.pre.len() as u64 + self.body_left;
        if unread > limit {
            return Ok(false);
        }
        self.pre = Bytes::new();
        let mut sink = [0u8; 4096];
        while self.body_left > 0 {
            let want = self.body_left.min(sink.len() as u64) as usize;
            let n = self.stream.read(&mut sink[..want]).await?;
            if n == 0 {
                return Ok(false);
            }
            self.body_left -= n as u64;
        }
        Ok(true)
    }

    /// The response hyper wrote says `Connection: close` (or hyper wrote no complete head).
    pub fn response_closes(&self) -> bool {
        self.closes || !self.answer_read
    }

    /// Follow the response head as it is written: note `Connection: close`; skip 1xx interim heads.
    fn watch_answer(&mut self, written: &[u8]) {
        let mut rest = written;
        while !self.answer_read && !rest.is_empty() {
            let before = self.answer.len();
            self.answer.extend_from_slice(rest);
            let Some(end) = self.answer.windows(4).position(|w| w == b"\r\n\r\n") else {
                if self.answer.len() > super::MAX_HEAD {
                    self.answer_read = true;
                    self.closes = true;
                }
                return;
            };
            let head_len = end + 4;
            rest = &rest[(head_len - before).min(rest.len())..];
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.answer[..head_len]) {
                Ok(httparse::Status::Complete(_)) if resp.code.is_some_and(|c| (100..200).contains(&c)) => {
                    self.answer.clear();
                }
                Ok(httparse::Status::Complete(_)) => {
                    self.closes = resp.version == Some(0)
                        || resp.headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case("connection")
                                && String::from_utf8_lossy(h.value).to_ascii_lowercase().split(',').any(|t| t.trim() == "close")
                        });
                    self.answer_read = true;
                    self.answer = Vec::new();
                }
                _ => {
                    self.closes = true;
                    self.answer_read = true;
                    self.answer = Vec::new();
                }
            }
        }
    }
}

impl AsyncRead for Exchange<'_> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre[..n]);
            this.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        if this.body_left == 0 {
            // End of this request: hyper answers it and then finds the connection (as it sees it) closed.
            return Poll::Ready(Ok(()));
        }
        let want = (buf.remaining() as u64).min(this.body_left) as usize;
        let mut limited = buf.take(want);
        ready!(Pin::new(&mut *this.stream).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        if n == 0 {
            // The client closed mid-body; hyper sees the short body and fails the request.
            this.body_left = 0;
            return Poll::Ready(Ok(()));
        }
        // SAFETY: `limited` is a view of `buf`'s unfilled part, and the reader initialised its first n bytes.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        this.body_left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Exchange<'_> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut *self.stream).poll_write(cx, data))?;
        if !self.answer_read {
            self.watch_answer(&data[..n]);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut *self.stream).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for b in bufs {
            if self.answer_read || left == 0 {
                break;
            }
            let take = b.len().min(left);
            self.watch_answer(&b[..take]);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    /// hyper ends every connection with a shutdown; the real connection goes on, so only flush.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_persistence_from_the_head() {
        let f = |h: &str| head_facts(h.as_bytes());
        assert_eq!(f("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), HeadFacts { framing: Framing::Length(0), keep_alive: true });
        assert_eq!(
            f("POST /a HTTP/1.1\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"),
            HeadFacts { framing: Framing::Length(12), keep_alive: false }
        );
        assert!(!f("GET / HTTP/1.0\r\n\r\n").keep_alive, "HTTP/1.0 closes unless asked to keep alive");
        assert!(f("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive, "HTTP/1.0 with Keep-Alive stays open");
        for other in [
            "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        ] {
            assert_eq!(f(other).framing, Framing::Other, "{other}");
        }
    }
}
