//! The state handle: the one way to read and change [`State`].
//!
//! Readers take `snapshot()` (an `Arc<State>`, never blocks) or `subscribe()` to a `tokio::sync::watch` and
//! react to changes. Writers call `update(|s| ...)`: the closure edits a copy of the newest accepted state,
//! the copy is validated and encoded, handed to the single store-writer thread, and published only after the
//! record is on flash and verified. A refused or failed change leaves the published state exactly as it was.
//!
//! Coalescing: the writer takes every change queued while it was busy and writes only the newest of them as
//! one record (each queued state already contains the earlier ones, because `update` builds on the newest
//! accepted state, not the published one). If a write fails, every change built on the failed one is refused
//! too (the `epoch` check), so nothing reported as failed can later appear on flash.

use super::{SCHEMA_VERSION, State, StateError, encode};
use crate::store::{Flash, Stats, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::{oneshot, watch};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    /// The closure refused the change.
    #[error("{0}")]
    Rejected(E),
    /// The changed state breaks an invariant or a bound.
    #[error("{0}")]
    Invalid(#[from] StateError),
    /// The record could not be written; nothing changed.
    #[error("the change could not be saved to flash: {0}")]
    Store(String),
}

struct Job {
    state: Arc<State>,
    bytes: Vec<u8>,
    epoch: u64,
    done: oneshot::Sender<Result<(), String>>,
}

enum Msg {
    Write(Job),
    /// Reply once everything queued before it is durable.
    Flush(oneshot::Sender<()>),
}

struct Inner {
    /// The newest accepted state (published or still being written). Guarded so updates apply in order.
    head: Mutex<(Arc<State>, u64)>,
    published: watch::Sender<Arc<State>>,
    epoch: AtomicU64,
    queue: Mutex<Option<mpsc::Sender<Msg>>>,
    stats: Mutex<Stats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Cheap to clone; all clones share one state and one writer.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl Handle {
    /// Start the writer thread over an opened store, publishing `initial`.
    pub fn start<F: Flash + 'static>(store: Store<F>, initial: State) -> Handle {
        let initial = Arc::new(initial);
        let (published, _) = watch::channel(initial.clone());
        let (tx, rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            head: Mutex::new((initial, 0)),
            published,
            epoch: AtomicU64::new(0),
            queue: Mutex::new(Some(tx)),
            stats: Mutex::new(store.stats()),
            writer: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(store, rx, weak))
            .expect("spawn store writer");
        *inner.writer.lock().unwrap() = Some(thread);
        Handle { inner }
    }

    /// The published state.
    pub fn snapshot(&self) -> Arc<State> {
        self.inner.published.borrow().clone()
    }

    /// Follow the published state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<State>> {
        self.inner.published.subscribe()
    }

    /// Store counters as of the last write.
    pub fn store_stats(&self) -> Stats {
        *self.inner.stats.lock().unwrap()
    }

    /// Apply `change` to a copy of the newest state; validate, persist, publish. Returns the closure's value.
    pub async fn update<T, E>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, E>,
    ) -> Result<T, UpdateError<E>> {
        self.submit(change, false).await
    }

    async fn submit<T, E>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, E>,
        always: bool,
    ) -> Result<T, UpdateError<E>> {
        // The guard must not live across an await (the future must be Send for HTTP handlers), so the
        // locked part is a block that yields either "unchanged" or the receiver of the queued write.
        let (rx, value) = {
            let mut head = self.inner.head.lock().unwrap();
            let mut next = State::clone(&head.0);
            let value = change(&mut next).map_err(UpdateError::Rejected)?;
            if !always && next == *head.0 {
                // Nothing changed: nothing to write. Wait (below) for pending writes so the caller sees its view
                // durable.
                (None, value)
            } else {
                next.validate()?;
                let bytes = encode(&next)?;
                let next = Arc::new(next);
                let (done, rx) = oneshot::channel();
                let epoch = self.inner.epoch.load(Ordering::SeqCst);
                let job = Job {
                    state: next.clone(),
                    bytes,
                    epoch,
                    done,
                };
                let queue = self.inner.queue.lock().unwrap();
                let Some(q) = queue.as_ref() else {
                    return Err(UpdateError::Store("the server is shutting down".into()));
                };
                q.send(Msg::Write(job))
                    .map_err(|_| UpdateError::Store("the store writer stopped".into()))?;
                head.0 = next;
                head.1 = epoch;
                (Some(rx), value)
            }
        };
        let Some(rx) = rx else {
            self.flush().await;
            return Ok(value);
        };
        match rx.await {
            Ok(Ok(())) => Ok(value),
            Ok(Err(e)) => Err(UpdateError::Store(e)),
            Err(_) => Err(UpdateError::Store("the store writer stopped".into())),
        }
    }

    /// Write the newest state again even though nothing changed (a new, migrated or recovered state).
    pub async fn rewrite(&self) -> Result<(), UpdateError<core::convert::Infallible>> {
        self.submit(|_| Ok(()), true).await
    }

    /// Wait until every change accepted so far is on flash (or has failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .inner
            .queue
            .lock()
            .unwrap()
            .as_ref()
            .map(|q| q.send(Msg::Flush(tx)).is_ok());
        if sent == Some(true) {
            let _ = rx.await;
        }
    }

    /// Flush, stop the writer thread and wait for it. Later updates fail with a message.
    pub fn shutdown(&self) {
        self.inner.queue.lock().unwrap().take();
        if let Some(t) = self.inner.writer.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

fn writer<F: Flash>(mut store: Store<F>, rx: mpsc::Receiver<Msg>, inner: std::sync::Weak<Inner>) {
    while let Ok(first) = rx.recv() {
        // Take everything that queued up while we were busy: one record for the whole burst.
        let mut jobs = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Write(j) => jobs.push(j),
                Msg::Flush(f) => flushes.push(f),
            }
            next = rx.try_recv().ok();
        }
        let Some(inner) = inner.upgrade() else { return };
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let (live, stale): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.epoch == epoch);
        for j in stale {
            let _ = j.done.send(Err(
                "an earlier change it depended on could not be saved".into()
            ));
        }
        if let Some(last) = live.last() {
            let result = store.write(SCHEMA_VERSION, &last.bytes);
            *inner.stats.lock().unwrap() = store.stats();
            match result {
                Ok(()) => {
                    inner.published.send_replace(last.state.clone());
                    for j in live {
                        let _ = j.done.send(Ok(()));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "state write failed; the change was not applied");
                    let msg = describe(&e);
                    {
                        let mut head = inner.head.lock().unwrap();
                        let bumped = inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
                        *head = (inner.published.borrow().clone(), bumped);
                    }
                    for j in live {
                        let _ = j.done.send(Err(msg.clone()));
                    }
                }
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

fn describe(e: &StoreError) -> String {
    e.to_string()
}
