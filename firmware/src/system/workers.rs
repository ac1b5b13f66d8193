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
//! On a board with more than one core, init mode pins each worker to its own core, the one that takes the
//! network's interrupts last ([`super::cores`]); elsewhere the scheduler places them.
//!
//! A connection goes to the worker with the fewest open connections. Each worker has its own watchdog beat,
//! bumped by a task on that worker ([`Workers::beat`]), so a stuck worker resets the board like any other stuck
//! part (DESIGN.md, "Runtime shape").

use std::future::Future;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// How often a worker bumps its beat.
const TICK: Duration = Duration::from_secs(1);

struct Worker {
    handle: tokio::runtime::Handle,
    open: Arc<AtomicUsize>,
    /// Its heartbeat's name ("connection worker N"), made once per process.
    name: &'static str,
}

/// The process's connection workers, started on first use.
pub struct Workers {
    workers: Vec<Worker>,
}

static WORKERS: OnceLock<Workers> = OnceLock::new();

impl Workers {
    /// The process-wide set: one worker per core the process may run on.
    pub fn get() -> &'static Workers {
        WORKERS.get_or_init(|| Workers::start(std::thread::available_parallelism().map_or(1, |n| n.get())))
    }

    fn start(n: usize) -> Workers {
        let workers = (0..n)
            .map(|i| {
                let (tx, rx) = std::sync::mpsc::channel();
                let core = super::cores::worker_core(i);
                std::thread::Builder::new()
                    .name(format!("hearth-conn-{i}"))
                    .spawn(move || {
                        if let Some(core) = core {
                            super::cores::pin_current(core);
                        }
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("tokio runtime for a connection worker");
                        let _ = tx.send(rt.handle().clone());
                        rt.block_on(std::future::pending::<()>());
                    })
                    .expect("a thread for a connection worker");
                Worker {
                    handle: rx.recv().expect("connection worker started"),
                    open: Arc::new(AtomicUsize::new(0)),
                    name: Box::leak(format!("connection worker {i}").into_boxed_str()),
                }
            })
            .collect();
        Workers { workers }
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

    /// Register one beat per worker with `beats` and bump each from a task on its own worker, every `TICK` (1 s).
    /// The stop aborts the tasks and rests the beats ([`Workers::rest`]).
    pub fn beat(&self, beats: &crate::system::watchdog::Heartbeats) -> Vec<(JoinHandle<()>, crate::system::watchdog::Beat)> {
        self.workers
            .iter()
            .map(|w| {
                let beat = beats.register(w.name);
                let b = beat.clone();
                let task = w.handle.spawn(async move {
                    let mut tick = tokio::time::interval(TICK);
                    loop {
                        tick.tick().await;
                        b.bump();
                    }
                });
                (task, beat)
            })
            .collect()
    }

    /// Stop the tasks [`Workers::beat`] started and rest their beats, once no task can bump them again.
    pub async fn rest(beats: Vec<(JoinHandle<()>, crate::system::watchdog::Beat)>) {
        for (task, beat) in beats {
            task.abort();
            let _ = task.await;
            beat.rest();
        }
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
