//! Connection workers: one OS thread per core, each running its own single-threaded tokio runtime, each owning
//! the connections handed to it for their whole life (the shape of nginx's worker processes).
//!
//! Why not the multi-threaded runtime that runs everything else: a stream is kernel work (sendfile(2), TCP
//! transmit, ACK processing), and where that work runs decides what it costs. Measured with `scripts/bench`
//! on 2 vCPUs, 8 clients on loopback: connections on the work-stealing runtime cost Hearth 0.15 server CPU s/GiB
//! against nginx's 0.09; the same code on per-core loops costs 0.084 against 0.103. A connection woken on
//! whichever worker polled the shared epoll and then stolen by another arrives later and finds its socket
//! drained, so it sends (and takes in the ACKs) itself in long calls; on its own loop it refills the queue as
//! soon as there is room, like nginx, and the ACK-clocked sending happens as the client reads.
//!
//! A connection goes to the worker with the fewest open connections. Each worker ticks once a second;
//! [`watch`] keeps a watchdog heartbeat fresh only while every worker ticks, so a stuck worker resets the
//! board like any other stuck part (DESIGN.md, "Runtime shape").

use std::future::Future;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How often a worker proves it still runs tasks.
const TICK: Duration = Duration::from_secs(1);
/// A worker whose last tick is older than this counts as stuck.
const STALE: Duration = Duration::from_secs(3);

struct Worker {
    handle: tokio::runtime::Handle,
    open: Arc<AtomicUsize>,
    /// Milliseconds since [`Workers::epoch`] of the last tick, plus one; 0 = not ticked yet.
    ticked_ms: Arc<AtomicU64>,
}

/// The process's connection workers, started on first use.
pub struct Workers {
    workers: Vec<Worker>,
    epoch: Instant,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

impl Workers {
    /// The process-wide set: one worker per core the process may run on.
    pub fn get() -> &'static Workers {
        WORKERS.get_or_init(|| Workers::start(std::thread::available_parallelism().map_or(1, |n| n.get())))
    }

    fn start(n: usize) -> Workers {
        let epoch = Instant::now();
        let workers = (0..n)
            .map(|i| {
                let (tx, rx) = std::sync::mpsc::channel();
                let ticked_ms = Arc::new(AtomicU64::new(0));
                let ticks = ticked_ms.clone();
                std::thread::Builder::new()
                    .name(format!("hearth-conn-{i}"))
                    .spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("tokio runtime for a connection worker");
                        let _ = tx.send(rt.handle().clone());
                        rt.block_on(async move {
                            let mut tick = tokio::time::interval(TICK);
                            loop {
                                tick.tick().await;
                                ticks.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
                            }
                        });
                    })
                    .expect("a thread for a connection worker");
                Worker { handle: rx.recv().expect("connection worker started"), open: Arc::new(AtomicUsize::new(0)), ticked_ms }
            })
            .collect();
        Workers { workers, epoch }
    }

    /// Run `serve(stream)` on the worker with the fewest open connections, for as long as it runs. The stream
    /// moves from this runtime's reactor to the worker's. The handle aborts it (DLNA switched off); `None` when
    /// the socket could not be moved (the connection is closed).
    pub fn hand<F, Fut>(&self, stream: TcpStream, serve: F) -> Option<tokio::task::JoinHandle<()>>
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let w = self.workers.iter().min_by_key(|w| w.open.load(Ordering::Relaxed)).expect("at least one worker");
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "a connection could not be moved to a worker");
                return None;
            }
        };
        let open = Open::new(w.open.clone());
        Some(w.handle.spawn(async move {
            let _open = open;
            match TcpStream::from_std(std) {
                Ok(s) => serve(s).await,
                Err(e) => tracing::debug!(error = %e, "a connection could not join its worker"),
            }
        }))
    }

    /// True while every worker has ticked within [`STALE`].
    pub fn all_ticking(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.workers.iter().all(|w| {
            let t = w.ticked_ms.load(Ordering::Relaxed);
            t != 0 && now.saturating_sub(t) < STALE.as_millis() as u64
        })
    }
}

/// Counts a connection as open on its worker until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(n: Arc<AtomicUsize>) -> Open {
        n.fetch_add(1, Ordering::Relaxed);
        Open(n)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Keep `beat` fresh while every connection worker ticks (the watchdog's view of them).
pub async fn watch(beat: crate::system::watchdog::Beat) {
    let workers = Workers::get();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if workers.all_ticking() {
            beat.bump();
        }
    }
}
