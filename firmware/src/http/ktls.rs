//! Kernel TLS (issue 24): after the rustls handshake on 32400, the session keys go to the kernel (the `ktls`
//! crate: `TCP_ULP "tls"`, then `TLS_TX`/`TLS_RX` with rustls's keys, IVs and record sequence numbers), and the
//! connection is served like a plain one — part bodies by sendfile(2), which the kernel encrypts from the page
//! cache, every other exchange through hyper over the same socket.
//!
//! Owns: whether this process can use kernel TLS ([`Kernel`], probed once: `/proc/sys/net/ipv4/tcp_available_ulp`,
//! then the ciphers the kernel accepts, then which crypto driver the kernel picked for each AEAD, from
//! `/proc/crypto`: [`winning_driver`]), the hand-over ([`hand_over`]), the kTLS socket's reads ([`KtlsSocket`]:
//! records the kernel returns that are not application data), the per-process counters the System screen shows
//! ([`facts`]). Must not touch: the handshake's configuration (http/tls.rs), what is served (conn.rs).
//!
//! Where the kernel has no `tls` module, or refuses the negotiated cipher, the rustls session stays in user
//! space (conn.rs's `tls_session`): the probe runs before the keys are extracted, because extraction consumes
//! the rustls state and a refused `setsockopt` after it would lose the connection.
//!
//! Records on a kTLS socket (Linux Documentation/networking/tls.rst, "Receiving TLS control messages"): the
//! kernel de-frames and decrypts; one recvmsg(2) returns records of one content type only, and names that type
//! in a `SOL_TLS`/`TLS_GET_RECORD_TYPE` cmsg; a plain read(2) of a non-data record fails with EIO. Every read
//! here is a recvmsg with room for that cmsg. The content types (RFC 8446 §5.1, RFC 5246 §6.2.1):
//!
//! ```text
//!   record type   payload                       what this session does
//!   23 data       HTTP bytes                    read on
//!   21 alert      level(1) description(1)       close_notify (0) or fatal (level 2): end of input
//!                                               (RFC 8446 §6.1, §6.2); any other alert: ends too (§6: in TLS
//!                                               1.3 only close_notify and user_canceled are not fatal)
//!   22 handshake  type(1) length(3) body        a TLS 1.3 KeyUpdate (§4.6.3) or a TLS 1.2 renegotiation
//!                                               ClientHello: the keys are in the kernel and the rustls state
//!                                               was given away, so the session cannot follow: it ends
//!   20 ccs, other                               unexpected_message (RFC 8446 §5): ends
//! ```
//!
//! Ending means an error from the read: the connection loop closes without another byte, so a client never
//! gets bytes from keys the two sides disagree on.

use bytes::{Buf, Bytes};
use ktls::{CompatibleCiphers, CorkStream, KtlsStream};
use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// What the kernel of this process offers for TLS, probed once ([`kernel`]).
pub struct Kernel {
    /// The ciphers the kernel accepts for `TLS_TX`; None when kTLS cannot be used at all.
    ciphers: Option<CompatibleCiphers>,
    /// Why not, when `ciphers` is None (for the System screen).
    why_not: &'static str,
    /// For each AEAD kTLS asks the kernel for ([`AEADS`]), the driver that serves it and its priority (the
    /// generic C code, or a CPU's AES/PMULL or NEON instructions: what kTLS costs depends on it).
    drivers: Vec<(&'static str, Option<(String, u32)>)>,
}

impl Kernel {
    /// Whether a session that negotiated `suite` can be handed to the kernel.
    pub fn accepts(&self, suite: rustls::SupportedCipherSuite) -> bool {
        self.ciphers.as_ref().is_some_and(|c| c.is_compatible(suite))
    }

    /// Whether any session can be handed to the kernel (then the handshake reads through [`CorkStream`]).
    pub fn usable(&self) -> bool {
        self.ciphers.is_some()
    }

    /// The path TLS sessions take, as the System screen says it.
    pub fn path(&self) -> String {
        if self.usable() { "kernel TLS".into() } else { format!("user-space TLS ({})", self.why_not) }
    }
}

static KERNEL: tokio::sync::OnceCell<Kernel> = tokio::sync::OnceCell::const_new();
/// TLS sessions handed to the kernel since start.
static KERNEL_SESSIONS: AtomicU64 = AtomicU64::new(0);
/// TLS sessions served by rustls in user space since start.
static USER_SPACE_SESSIONS: AtomicU64 = AtomicU64::new(0);
/// Sessions lost because the kernel refused the keys after they were extracted (should stay 0: the probe
/// runs first).
static LOST_SESSIONS: AtomicU64 = AtomicU64::new(0);

/// Where the kernel lists the TCP upper-layer protocols it has (the `tls` module registers "tls").
const AVAILABLE_ULP: &str = "/proc/sys/net/ipv4/tcp_available_ulp";

/// The kernel's TLS offer, probed at the first call: the `tls` ULP must be registered, then
/// [`CompatibleCiphers`] tries each cipher on loopback sockets (a few ms, once per process).
pub async fn kernel() -> &'static Kernel {
    KERNEL
        .get_or_init(|| async {
            let ulps = std::fs::read_to_string(AVAILABLE_ULP).unwrap_or_default();
            let off = |why_not| Kernel { ciphers: None, why_not, drivers: Vec::new() };
            let kernel = if !ulps.split_whitespace().any(|u| u == "tls") {
                off("kernel has no tls module")
            } else {
                match CompatibleCiphers::new().await {
                    Ok(c) if any_cipher(&c) => {
                        // After the probe: it set keys of each kind, so the kernel has made the AEAD instances.
                        let crypto = std::fs::read_to_string("/proc/crypto").unwrap_or_default();
                        let drivers = AEADS.iter().map(|&name| (name, winning_driver(&crypto, name))).collect();
                        Kernel { ciphers: Some(c), why_not: "", drivers }
                    }
                    Ok(_) => off("the kernel refused every cipher"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not probe kernel TLS");
                        off("kernel TLS could not be probed")
                    }
                }
            };
            tracing::info!(path = %kernel.path(), drivers = ?kernel.drivers, "HTTPS sessions");
            kernel
        })
        .await
}

fn any_cipher(c: &CompatibleCiphers) -> bool {
    let v = |v: &ktls::CompatibleCiphersForVersion| v.aes_gcm_128 || v.aes_gcm_256 || v.chacha20_poly1305;
    v(&c.tls12) || v(&c.tls13)
}

/// The AEADs the kernel's `tls` module allocates (Linux net/tls/tls_sw.c, `tls_set_sw_offload`): AES-GCM for
/// TLS_CIPHER_AES_GCM_128/256, ChaCha20-Poly1305 (RFC 7539) for TLS_CIPHER_CHACHA20_POLY1305.
pub const AEADS: [&str; 2] = ["gcm(aes)", "rfc7539(chacha20,poly1305)"];

/// `tls` in `GET /api/v1/system`: the path HTTPS sessions take, how many took each since start, and under
/// `drivers` the kernel crypto driver of each AEAD (`"gcm(aes)": "gcm-aes-ce (priority 300)"`; null when the
/// kernel has none; empty on the user-space path).
pub async fn facts() -> serde_json::Value {
    let k = kernel().await;
    let drivers: serde_json::Map<String, serde_json::Value> = k
        .drivers
        .iter()
        .map(|(name, d)| (name.to_string(), d.as_ref().map(|(drv, prio)| format!("{drv} (priority {prio})")).into()))
        .collect();
    serde_json::json!({
        "path": k.path(),
        "kernel": k.usable(),
        "drivers": drivers,
        "kernel_sessions": KERNEL_SESSIONS.load(Ordering::Relaxed),
        "user_space_sessions": USER_SPACE_SESSIONS.load(Ordering::Relaxed),
        "lost_sessions": LOST_SESSIONS.load(Ordering::Relaxed),
    })
}

/// The kernel crypto drivers kTLS gets (issue 24): for each AEAD the `tls` module asks the crypto API for, the
/// driver that wins, by the rule crypto_alloc_aead follows (Linux crypto/api.c `__crypto_alg_lookup`: of the
/// algorithms with that name, the highest `priority`; one whose self-test failed is not used). `/proc/crypto`
/// lists every registered algorithm as a block of `key : value` lines, blocks separated by an empty line:
///
/// ```text
/// name         : gcm(aes)
/// driver       : gcm-aes-ce
/// module       : ghash_ce
/// priority     : 300
/// selftest     : passed
/// ...
/// ```
///
/// A template instance (`gcm_base(ctr-aes-ce,ghash-ce)`) appears only once something asked for it, so this is
/// read after the cipher probe, which sets keys of each kind on loopback sockets.
pub fn winning_driver(proc_crypto: &str, name: &str) -> Option<(String, u32)> {
    let mut best: Option<(String, u32)> = None;
    for block in proc_crypto.split("\n\n") {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == key).then(|| v.trim())
            })
        };
        if field("name") != Some(name) || field("selftest").is_some_and(|s| s != "passed") {
            continue;
        }
        let (Some(driver), Some(priority)) = (field("driver"), field("priority").and_then(|p| p.parse().ok())) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, p)| priority > *p) {
            best = Some((driver.to_string(), priority));
        }
    }
    best
}

/// What became of a finished handshake.
pub enum HandOver {
    /// The kernel holds the keys: serve it like a plain connection.
    Kernel(KtlsSocket),
    /// The kernel refused the cipher: rustls goes on in user space.
    UserSpace(Box<TlsStream<CorkStream<TcpStream>>>),
    /// The kernel refused the keys after rustls gave them away: the connection cannot go on.
    Lost,
}

/// Count a session that stays in user space because kTLS is not usable in this process.
pub fn user_space_session() {
    USER_SPACE_SESSIONS.fetch_add(1, Ordering::Relaxed);
}

/// Hand a finished handshake to the kernel when it accepts the negotiated cipher. The plaintext rustls had
/// already decrypted (a request that came with the client's Finished) is kept and read first; the record
/// sequence numbers go with the keys (`ktls::config_ktls_server`), so the kernel's next record is the one
/// rustls would have written.
pub async fn hand_over(tls: TlsStream<CorkStream<TcpStream>>) -> HandOver {
    let suite = tls.get_ref().1.negotiated_cipher_suite();
    if !suite.is_some_and(kernel_accepts) {
        user_space_session();
        return HandOver::UserSpace(Box::new(tls));
    }
    match ktls::config_ktls_server(tls).await {
        Ok(k) => {
            KERNEL_SESSIONS.fetch_add(1, Ordering::Relaxed);
            let (drained, tcp) = k.into_raw();
            HandOver::Kernel(KtlsSocket {
                ktls: KtlsStream::new(tcp, None),
                drained: drained.map(Bytes::from).unwrap_or_default(),
                ended: false,
            })
        }
        Err(e) => {
            LOST_SESSIONS.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "the kernel refused the TLS keys; connection closed");
            HandOver::Lost
        }
    }
}

fn kernel_accepts(suite: rustls::SupportedCipherSuite) -> bool {
    KERNEL.get().is_some_and(|k| k.accepts(suite))
}

/// A TCP connection whose TLS records the kernel writes and reads. Writes (and sendfile(2) on
/// [`KtlsSocket::tcp`]) are encrypted by the kernel; reads go through [`record`] (see the module doc);
/// shutdown sends close_notify.
pub struct KtlsSocket {
    ktls: KtlsStream<TcpStream>,
    /// Plaintext rustls decrypted before the hand-over.
    drained: Bytes,
    /// An alert ended the input.
    ended: bool,
}

impl KtlsSocket {
    /// The socket, for sendfile(2) and the stream room's writes.
    pub fn tcp(&mut self) -> &mut TcpStream {
        self.ktls.get_mut()
    }
}

/// What one record read brought.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    /// `n` bytes of application data (0: the peer closed TCP).
    Data(usize),
    /// close_notify or another alert: no more input.
    End,
    /// A record this session cannot follow (see the module doc); the reason, for the log.
    Refuse(&'static str),
}

/// Classify what recvmsg(2) returned: `record_type` from the cmsg (None: no cmsg, application data),
/// `payload` the bytes read. RFC 8446 §5.1 content types; §6 alerts; §4.6.3 KeyUpdate.
pub fn record(record_type: Option<u8>, payload: &[u8]) -> Record {
    match record_type {
        None | Some(23) => Record::Data(payload.len()),
        Some(21) => Record::End,
        Some(22) => match payload.first() {
            Some(24) => Record::Refuse("the client sent a KeyUpdate (TLS 1.3 §4.6.3) the kernel keys cannot follow"),
            Some(1) => Record::Refuse("the client tried to renegotiate (TLS 1.2)"),
            _ => Record::Refuse("a handshake message after the handshake"),
        },
        Some(20) => Record::Refuse("a change_cipher_spec record after the handshake"),
        Some(_) => Record::Refuse("a record of unknown type"),
    }
}

/// One recvmsg(2) into `buf` with room for the record-type cmsg.
fn recv_record(fd: i32, buf: &mut [u8]) -> io::Result<(Option<u8>, usize)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut cmsg = nix::cmsg_space!(u8);
    let mut iov = [IoSliceMut::new(buf)];
    let got = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let mut record_type = None;
    for c in got.cmsgs()? {
        if let ControlMessageOwned::TlsGetRecordType(t) = c {
            record_type = Some(match t {
                nix::sys::socket::TlsGetRecordType::ChangeCipherSpec => 20,
                nix::sys::socket::TlsGetRecordType::Alert => 21,
                nix::sys::socket::TlsGetRecordType::Handshake => 22,
                nix::sys::socket::TlsGetRecordType::ApplicationData => 23,
                nix::sys::socket::TlsGetRecordType::Unknown(t) => t,
                _ => 0,
            });
        }
    }
    Ok((record_type, got.bytes))
}

impl AsyncRead for KtlsSocket {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.drained.is_empty() {
            let n = this.drained.len().min(buf.remaining());
            buf.put_slice(&this.drained[..n]);
            this.drained.advance(n);
            return Poll::Ready(Ok(()));
        }
        if this.ended || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let tcp = this.ktls.get_ref();
        let fd = tcp.as_raw_fd();
        loop {
            ready!(tcp.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match tcp.try_io(Interest::READABLE, || recv_record(fd, unfilled)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
                Ok((t, n)) => {
                    return match record(t, &unfilled[..n]) {
                        Record::Data(n) => {
                            buf.advance(n);
                            Poll::Ready(Ok(()))
                        }
                        Record::End => {
                            this.ended = true;
                            Poll::Ready(Ok(()))
                        }
                        Record::Refuse(why) => {
                            tracing::debug!(why, "kernel TLS session ended");
                            this.ended = true;
                            Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)))
                        }
                    };
                }
            }
        }
    }
}

impl AsyncWrite for KtlsSocket {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.ktls).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ktls).poll_flush(cx)
    }

    /// close_notify (RFC 8446 §6.1), then TCP's FIN.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ktls).poll_shutdown(cx)
    }
}

/// The connection a session loop serves: plain TCP, or TCP whose TLS the kernel does. Both read and write like
/// a TCP stream and give the socket for sendfile(2).
pub enum Socket {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS with the keys in the kernel.
    Kernel(Box<KtlsSocket>),
}

impl Socket {
    /// The TCP socket: the stream room's head writes and sendfile(2) go here (encrypted by the kernel on a
    /// kTLS socket).
    pub fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Socket::Plain(s) => s,
            Socket::Kernel(k) => k.tcp(),
        }
    }

    /// The connection is HTTPS (for the secure-connections door).
    pub fn secure(&self) -> bool {
        matches!(self, Socket::Kernel(_))
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Kernel(k) => Pin::new(&mut **k).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, data),
            Socket::Kernel(k) => Pin::new(&mut **k).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Kernel(k) => Pin::new(k.tcp()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Kernel(k) => Pin::new(&mut **k).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Kernel(k) => Pin::new(&mut **k).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/crypto as an arm64 Debian 6.1 kernel lists it with the board's modules loaded (abridged; the
    /// generic instance made from templates, the CE one registered whole by ghash_ce).
    const PROC_CRYPTO: &str = "name         : gcm(aes)
driver       : gcm_base(ctr(aes-generic),ghash-generic)
module       : gcm
priority     : 100
refcnt       : 1
selftest     : passed
internal     : no
type         : aead

name         : gcm(aes)
driver       : gcm-aes-ce
module       : ghash_ce
priority     : 300
refcnt       : 2
selftest     : passed
internal     : no
type         : aead

name         : gcm(aes)
driver       : gcm-aes-broken
module       : x
priority     : 900
selftest     : unknown

name         : rfc7539(chacha20,poly1305)
driver       : rfc7539(chacha20-neon,poly1305-neon)
module       : chacha20poly1305
priority     : 300
refcnt       : 1
selftest     : passed
internal     : no
type         : aead

name         : aes
driver       : aes-ce
module       : aes_ce_cipher
priority     : 250
";

    #[test]
    fn the_highest_priority_tested_driver_wins() {
        assert_eq!(winning_driver(PROC_CRYPTO, "gcm(aes)"), Some(("gcm-aes-ce".into(), 300)), "not the untested 900");
        assert_eq!(
            winning_driver(PROC_CRYPTO, "rfc7539(chacha20,poly1305)"),
            Some(("rfc7539(chacha20-neon,poly1305-neon)".into(), 300))
        );
        assert_eq!(winning_driver(PROC_CRYPTO, "ccm(aes)"), None);
        assert_eq!(winning_driver("", "gcm(aes)"), None);
        // Without the CE module only the generic instance is there.
        let generic = PROC_CRYPTO.split("\n\n").next().unwrap();
        assert_eq!(winning_driver(generic, "gcm(aes)").unwrap().0, "gcm_base(ctr(aes-generic),ghash-generic)");
    }

    #[test]
    fn records_the_session_cannot_follow_end_it() {
        assert_eq!(record(None, b"GET / HTTP/1.1\r\n"), Record::Data(16));
        assert_eq!(record(Some(23), b""), Record::Data(0));
        assert_eq!(record(Some(21), &[1, 0]), Record::End, "close_notify");
        assert_eq!(record(Some(21), &[2, 40]), Record::End, "fatal handshake_failure");
        // A TLS 1.3 KeyUpdate (handshake type 24, RFC 8446 §4.6.3) and a TLS 1.2 ClientHello (type 1).
        assert!(matches!(record(Some(22), &[24, 0, 0, 1, 1]), Record::Refuse(w) if w.contains("KeyUpdate")));
        assert!(matches!(record(Some(22), &[1, 0, 0, 40]), Record::Refuse(w) if w.contains("renegotiate")));
        assert!(matches!(record(Some(22), &[]), Record::Refuse(_)));
        assert!(matches!(record(Some(20), &[1]), Record::Refuse(_)));
        assert!(matches!(record(Some(99), &[1]), Record::Refuse(_)));
    }
}
