//! The request body deadline on 32400, plain and TLS (R-F2): a body must arrive whole within
//! [`fds::body_timeout`] of its head, or the request is answered 408 and the connection closes.
//!
//! hyper has a deadline for heads (`header_read_timeout`) but none for bodies, and the handlers collect bodies
//! with no deadline of their own. So the deadline lives between the two, on one connection:
//!
//! - [`BodyClock`] is shared by the connection's service (which arms it when a request with a body is
//!   dispatched and disarms it when the answer is ready) and its IO.
//! - [`Timed`] wraps the connection's IO. A read that would block while the clock is armed and past its
//!   deadline fails with `TimedOut` and fires the clock; hyper hands that error to the request body, the
//!   handler's collect fails, and the service answers 408 instead of whatever the handler said.
//!
//! A read can only block while armed when hyper wants body bytes: the connections run with
//! `half_close(true)`, so hyper does not read to watch for the client going away while a handler works
//! (which would otherwise time out a handler that is merely slow after its body arrived). A handler that
//! answers without reading the body is not held to the deadline by this; the exchange loop reads such a body
//! away within the same deadline or closes.
//!
//! [`fds::body_timeout`]: crate::system::fds::body_timeout

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// One connection's body deadline: armed while a request with a body is being served.
#[derive(Clone, Default)]
pub struct BodyClock(Arc<Clock>);

#[derive(Default)]
struct Clock {
    until: Mutex<Option<Instant>>,
    fired: AtomicBool,
    /// Bytes per second that buy more time ([`BodyClock::start_upload`]); 0: a fixed deadline.
    rate: std::sync::atomic::AtomicU64,
}

impl BodyClock {
    /// Arm the deadline [`body_timeout`](crate::system::fds::body_timeout) from now, until the guard drops.
    pub fn start(&self) -> Armed {
        *self.0.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + crate::system::fds::body_timeout());
        Armed(self.clone())
    }

    /// Arm a rate-based deadline for a large upload (a firmware bundle): [`body_timeout`] of credit, and every
    /// `bytes_per_sec` bytes received buy one more second, so a body that keeps arriving at that rate never
    /// times out and one that slows below it does.
    ///
    /// [`body_timeout`]: crate::system::fds::body_timeout
    pub fn start_upload(&self, bytes_per_sec: u64) -> Armed {
        self.0.rate.store(bytes_per_sec, Ordering::Relaxed);
        self.start()
    }

    /// Bytes arrived: a rate-based deadline moves on by their worth.
    fn received(&self, n: usize) {
        let rate = self.0.rate.load(Ordering::Relaxed);
        if rate == 0 || n == 0 {
            return;
        }
        if let Some(until) = self.0.until.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            *until += std::time::Duration::from_nanos((n as u64).saturating_mul(1_000_000_000) / rate);
        }
    }

    /// A body read blocked past the deadline: the request's answer is 408 and the connection ends.
    pub fn fired(&self) -> bool {
        self.0.fired.load(Ordering::Relaxed)
    }

    fn until(&self) -> Option<Instant> {
        *self.0.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The clock is armed while this lives.
pub struct Armed(BodyClock);

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.0.rate.store(0, Ordering::Relaxed);
        *self.0.0.until.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A connection's IO whose reads obey a [`BodyClock`]; writes pass through.
pub struct Timed<T> {
    inner: T,
    clock: BodyClock,
    /// Wakes the connection at the armed deadline; `set` is the deadline it is set to.
    sleep: Pin<Box<Sleep>>,
    set: Option<Instant>,
}

impl<T> Timed<T> {
    pub fn new(inner: T, clock: BodyClock) -> Timed<T> {
        Timed { inner, clock, sleep: Box::pin(tokio::time::sleep_until(Instant::now())), set: None }
    }

    /// A read would block: fail when the armed deadline has passed, else make sure the task wakes at it.
    fn blocked(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(until) = self.clock.until() else { return Poll::Pending };
        if self.set != Some(until) {
            self.sleep.as_mut().reset(until);
            self.set = Some(until);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.clock.0.fired.store(true, Ordering::Relaxed);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the request body did not arrive in time")))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Timed<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.clock.received(buf.filled().len() - before);
                ready
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Timed<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_read_blocked_past_the_armed_deadline_fails_and_fires() {
        let (client, server) = tokio::io::duplex(64);
        let clock = BodyClock::default();
        let mut io = Timed::new(server, clock.clone());
        let mut client = client;
        client.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 3, "bytes that are there are read");
        // Not armed: a blocked read just waits (the head deadline is hyper's).
        let idle = tokio::time::timeout(crate::system::fds::body_timeout() * 3, io.read(&mut buf)).await;
        assert!(idle.is_err(), "an unarmed read waits");
        let armed = clock.start();
        let e = io.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(clock.fired());
        drop(armed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_is_read() {
        let (mut client, server) = tokio::io::duplex(64);
        let clock = BodyClock::default();
        let mut io = Timed::new(server, clock.clone());
        let _armed = clock.start();
        tokio::spawn(async move {
            tokio::time::sleep(crate::system::fds::body_timeout() / 2).await;
            client.write_all(b"body").await.unwrap();
        });
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.unwrap(), 4);
        assert!(!clock.fired());
    }
}
