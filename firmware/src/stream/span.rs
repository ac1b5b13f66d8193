//! A decided answer sent on a raw connection by the stream room, for a caller that writes its own response
//! head (DLNA's 32469 loop: its head carries `contentFeatures.dlna.org` and `transferMode.dlna.org`, which the
//! stream room does not know). Review finding C-3: one stream path, so the body of such an answer goes through
//! the same machinery as a part on the main port ([`super::serve`]):
//!
//! - the head is written with the stall deadline ([`super::STALL`]) and held back (MSG_MORE) for the body;
//! - the body is registered among the running streams (revocation: [`super::Streams::recheck`]), counted in
//!   `active` and `responses` (`GET /api/v1/streams`), paced by its bandwidth class;
//! - the sendfile loop ([`super::send_file`]) sends it with the stall deadline and the truncation check, and
//!   counts each call's bytes as zero-copy bytes and as egress of the class;
//! - a file cut short under the send, or a revoked caller, ends with a reset connection (never padded bytes).
//!
//! The Range and conditional decision stays with the caller, made by the same core ([`super::range`]).

use super::pace::Class;
use super::{SendError, Standing, Streams};
use crate::state::LibraryId;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;

/// The bytes of an answer's body: `len` bytes of an open `file` from `start`, of an item in `library`.
pub struct Span {
    /// The open media file (`open::open_media`).
    pub file: std::fs::File,
    /// First byte sent.
    pub start: u64,
    /// Bytes sent; more than zero.
    pub len: u64,
    /// The item's library: a running body ends when its caller may no longer read it.
    pub library: LibraryId,
}

/// Send `head` (a complete response head the caller wrote) and then `span`, if any, in bandwidth `class`, as the
/// main port's fast path does (see the module doc). `standing` is asked again at every state change while the
/// body runs. Ok when everything was sent; on an error the caller closes the connection (after a truncation or
/// revocation it has already been set to reset).
pub async fn answer(
    stream: &TcpStream,
    head: &[u8],
    span: Option<Span>,
    class: Class,
    standing: Standing,
    streams: &Arc<Streams>,
) -> Result<(), SendError> {
    streams.responses.fetch_add(1, Ordering::Relaxed);
    super::send_head(stream, head, span.is_some()).await?;
    let Some(span) = span else { return Ok(()) };
    let ticket = streams.register(span.library, standing);
    streams.active.fetch_add(1, Ordering::Relaxed);
    let mut lease = streams.pacer.lease(class);
    let counters = [&streams.zero_copy_bytes, streams.egress.counter(class)];
    let sent = super::send_file(stream, &span.file, span.start, span.len, &mut lease, &counters, &ticket.cancel).await;
    streams.active.fetch_sub(1, Ordering::Relaxed);
    if matches!(sent, Err(SendError::Truncated | SendError::Revoked)) {
        super::abort(stream);
    }
    sent
}
