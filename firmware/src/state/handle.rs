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
//!
//! Pacing (R-F8, flash wear): the writer spends a [`Budget`] of flash bytes. A burst goes through at once;
//! after it, the writer waits until the budget allows the next record, merging every change that arrives
//! meanwhile into it (the newest state wins), and answers all their callers when that record is durable. A
//! detached change (the watchdog's and the panic hook's markers) and the shutdown write at once.

use super::wear::{Budget, Meter};
use super::{State, StateError, encode, SCHEMA_VERSION};
use crate::store::{Flash, Stats, Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
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
    /// Write what is queued now, without waiting for the wear budget (detached changes: crash and watchdog
    /// markers, which must not wait).
    Urgent,
}

/// Answers once a queued change is on flash (or failed).
pub type Written = oneshot::Receiver<Result<(), String>>;

struct Inner {
    /// The newest accepted state (published or still being written). Guarded so updates apply in order.
    head: Mutex<(Arc<State>, u64)>,
    published: watch::Sender<Arc<State>>,
    epoch: AtomicU64,
    queue: Mutex<Option<mpsc::Sender<Msg>>>,
    stats: Mutex<Stats>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The store writer's watchdog heartbeat (see [`Handle::set_heartbeat`]).
    heartbeat: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// The writer's wear budget (fixed at start).
    budget: Budget,
    /// Changes merged into a later change's record (queued while the writer was busy or waiting for the wear
    /// budget) since start: never written alone.
    merged: AtomicU64,
    /// Writes are published but not put on flash ([`Handle::hold_writes`]): an unconfirmed firmware keeps an
    /// older schema's record as it is (issue 19).
    held: std::sync::atomic::AtomicBool,
}

/// Cheap to clone; all clones share one state and one writer.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

impl Handle {
    /// Start the writer thread over an opened store, publishing `initial`, with the default wear budget for the
    /// store's slot size ([`Budget::for_slot`]).
    pub fn start<F: Flash + 'static>(store: Store<F>, initial: State) -> Handle {
        let budget = Budget::for_slot(store.stats().slot_bytes);
        Handle::start_with(store, initial, budget)
    }

    /// [`Handle::start`] with an explicit wear budget (tests and tools).
    pub fn start_with<F: Flash + 'static>(store: Store<F>, initial: State, budget: Budget) -> Handle {
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
            heartbeat: Mutex::new(None),
            budget,
            merged: AtomicU64::new(0),
            held: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&inner);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer(store, rx, weak, Meter::new(budget)))
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

    /// The writer's wear budget, and how many changes since start went into a later change's record.
    pub fn wear(&self) -> (Budget, u64) {
        (self.inner.budget, self.inner.merged.load(Ordering::Relaxed))
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
        let (rx, value) = self.enqueue(change, always, true)?;
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

    /// Queue a change and return at once, without waiting for the writer: for the watchdog thread and the
    /// panic hook, which must not block on the part they may be reporting. The receiver answers once the
    /// record is on flash (poll it with `try_recv`); None when nothing changed or the change was refused.
    pub fn update_detached(&self, change: impl FnOnce(&mut State)) -> Option<Written> {
        match self.enqueue(
            |s| {
                change(s);
                Ok::<(), core::convert::Infallible>(())
            },
            false,
            false,
        ) {
            Ok((rx, ())) => {
                if rx.is_some()
                    && let Some(q) = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
                {
                    let _ = q.send(Msg::Urgent);
                }
                rx
            }
            Err(e) => {
                tracing::error!(error = %e, "a detached state change was refused");
                None
            }
        }
    }

    /// Call `bump` from the store-writer thread at least every second while it is healthy (its watchdog
    /// heartbeat). A write that hangs in the flash driver stops the bumps.
    pub fn set_heartbeat(&self, bump: impl Fn() + Send + Sync + 'static) {
        *self.inner.heartbeat.lock().unwrap() = Some(Box::new(bump));
        // A round through the writer bumps at once (proving the thread runs), not a second later.
        let (tx, _) = oneshot::channel();
        if let Some(q) = self.inner.queue.lock().unwrap().as_ref() {
            let _ = q.send(Msg::Flush(tx));
        }
    }

    #[allow(clippy::type_complexity)]
    /// `patient: false` (detached changes) gives up after about 100 ms when the head lock is held — by the very
    /// thread that panicked inside an update, perhaps — instead of waiting for ever.
    fn enqueue<T, E>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, E>,
        always: bool,
        patient: bool,
    ) -> Result<(Option<Written>, T), UpdateError<E>> {
        // Everything under the head lock happens here, synchronously: a std MutexGuard that is (or may be)
        // alive across an await makes the future !Send, and then `update` cannot be called from spawned tasks.
        Ok({
            let mut head = if patient {
                self.inner.head.lock().unwrap_or_else(|p| p.into_inner())
            } else {
                let mut tries = 0;
                loop {
                    match self.inner.head.try_lock() {
                        Ok(g) => break g,
                        Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                        Err(std::sync::TryLockError::WouldBlock) if tries < 100 => {
                            tries += 1;
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        Err(std::sync::TryLockError::WouldBlock) => {
                            return Err(UpdateError::Store("the state is locked by a stuck change".into()));
                        }
                    }
                }
            };
            let mut next = State::clone(&head.0);
            let value = change(&mut next).map_err(UpdateError::Rejected)?;
            // The rules that follow from the change itself (secured ⇒ DLNA off), whoever wrote it.
            next.settle(&head.0);
            if !always && next == *head.0 {
                // Nothing changed: nothing to write. The caller waits for pending writes (below) so it sees its
                // view durable.
                (None, value)
            } else {
                next.validate()?;
                let bytes = encode(&next)?;
                let next = Arc::new(next);
                let (done, rx) = oneshot::channel();
                let epoch = self.inner.epoch.load(Ordering::SeqCst);
                let job = Job { state: next.clone(), bytes, epoch, done };
                let queue = self.inner.queue.lock().unwrap();
                let Some(q) = queue.as_ref() else {
                    return Err(UpdateError::Store("the server is shutting down".into()));
                };
                q.send(Msg::Write(job)).map_err(|_| UpdateError::Store("the store writer stopped".into()))?;
                head.0 = next;
                head.1 = epoch;
                (Some(rx), value)
            }
        })
    }

    /// Schema rule across firmware versions (issue 19): from now on, changes are validated and published as
    /// usual but not written to flash, so the record there keeps the schema an older firmware reads. The update
    /// room calls this at start when the stored record was migrated and the new firmware has not confirmed
    /// itself; [`Handle::release_writes`] ends it. Changes made meanwhile live in memory only.
    pub fn hold_writes(&self) {
        self.inner.held.store(true, Ordering::SeqCst);
    }

    /// End [`Handle::hold_writes`]; true when writes were held (then call [`Handle::rewrite`] to put the newest
    /// state on flash).
    pub fn release_writes(&self) -> bool {
        self.inner.held.swap(false, Ordering::SeqCst)
    }

    /// Writes are being held.
    pub fn writes_held(&self) -> bool {
        self.inner.held.load(Ordering::SeqCst)
    }

    /// Write the newest state again even though nothing changed (a new, migrated or recovered state).
    pub async fn rewrite(&self) -> Result<(), UpdateError<core::convert::Infallible>> {
        self.submit(|_| Ok(()), true).await
    }

    /// Wait until every change accepted so far is on flash (or has failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        let sent = self.inner.queue.lock().unwrap().as_ref().map(|q| q.send(Msg::Flush(tx)).is_ok());
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

fn writer<F: Flash>(mut store: Store<F>, rx: mpsc::Receiver<Msg>, inner: std::sync::Weak<Inner>, mut meter: Meter) {
    let beat = |inner: &Inner| {
        if let Some(b) = inner.heartbeat.lock().unwrap().as_ref() {
            b();
        }
    };
    loop {
        let first = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(i) = inner.upgrade() {
                    beat(&i);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        // Take everything that queued up while we were busy: one record for the whole burst.
        let mut batch = Batch::default();
        let mut next = Some(first);
        while let Some(msg) = next {
            batch.take(msg);
            next = rx.try_recv().ok();
        }
        let Some(inner) = inner.upgrade() else { return };
        // The wear budget: wait for it, taking in (and later merging) what arrives meanwhile. The heartbeat
        // goes on while waiting; a detached change or the shutdown (the queue closed) ends the wait.
        if !batch.jobs.is_empty() {
            while !batch.urgent && let Some(at) = meter.ready_at().filter(|at| *at > Instant::now()) {
                let wait = (at - Instant::now()).min(Duration::from_secs(1));
                match rx.recv_timeout(wait) {
                    Ok(msg) => batch.take(msg),
                    Err(mpsc::RecvTimeoutError::Timeout) => beat(&inner),
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        let Batch { jobs, flushes, .. } = batch;
        inner.merged.fetch_add(jobs.len().saturating_sub(1) as u64, Ordering::Relaxed);
        let epoch = inner.epoch.load(Ordering::SeqCst);
        let (live, stale): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.epoch == epoch);
        for j in stale {
            let _ = j.done.send(Err("an earlier change it depended on could not be saved".into()));
        }
        if let Some(last) = live.last()
            && inner.held.load(Ordering::SeqCst)
        {
            inner.published.send_replace(last.state.clone());
            for j in live {
                let _ = j.done.send(Ok(()));
            }
        } else if let Some(last) = live.last() {
            let before = store.stats().bytes_written;
            let result = store.write(write_schema(), &last.bytes);
            meter.charge(store.stats().bytes_written - before, Instant::now());
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
        beat(&inner);
    }
}

/// What the writer took from the queue for its next record.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    flushes: Vec<oneshot::Sender<()>>,
    /// A detached change is among them: write without waiting for the wear budget.
    urgent: bool,
}

impl Batch {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Write(j) => self.jobs.push(j),
            Msg::Flush(f) => self.flushes.push(f),
            Msg::Urgent => self.urgent = true,
        }
    }
}

/// The schema number records are written with: [`SCHEMA_VERSION`], or one more in a test image that fakes a
/// newer schema ([`fakes_newer_schema`]).
pub fn write_schema() -> u16 {
    if fakes_newer_schema() { SCHEMA_VERSION + 1 } else { SCHEMA_VERSION }
}

/// The schema to decode a stored record with: a test image that fakes a newer schema reads its own
/// `SCHEMA_VERSION + 1` records as [`SCHEMA_VERSION`] (the encoding is the same).
pub fn read_schema(stored: u16) -> u16 {
    if fakes_newer_schema() && stored == SCHEMA_VERSION + 1 { SCHEMA_VERSION } else { stored }
}

/// Test images only (feature `test-hooks`): `hearth.test.schema_ahead` on the kernel command line (or
/// `HEARTH_TEST_SCHEMA_AHEAD=1` in the environment, for host tests) makes this build write its records as a
/// schema one newer than it is, as a later firmware would: an older firmware cannot read them. The QEMU
/// rollback test uses it to prove that an unconfirmed update leaves the old schema on flash.
pub fn fakes_newer_schema() -> bool {
    #[cfg(feature = "test-hooks")]
    {
        static AHEAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AHEAD.get_or_init(|| {
            std::env::var_os("HEARTH_TEST_SCHEMA_AHEAD").is_some_and(|v| v == "1")
                || std::fs::read_to_string("/proc/cmdline").is_ok_and(|c| c.split_whitespace().any(|w| w == "hearth.test.schema_ahead"))
        })
    }
    #[cfg(not(feature = "test-hooks"))]
    false
}

fn describe(e: &StoreError) -> String {
    e.to_string()
}

#[cfg(test)]
#[path = "handle_tests.rs"]
mod tests;
