//! Passwords and PINs: argon2id (RFC 9106) with fixed parameters, run on dedicated hasher threads.
//!
//! Parameters ([`M_COST_KIB`], [`T_COST`], [`P_COST`]): 19 MiB, 2 passes, 1 lane, 16-byte output — the OWASP
//! "argon2id minimum" row and RFC 9106 §4's shape with memory sized for a 1 GiB board. [`HASHERS`] threads
//! hash; each owns one 19 MiB argon2 memory (its own mapping) and reuses it for every hash, and unmaps it after
//! [`IDLE_RELEASE`] without work. Hashing memory is therefore at most 2 × 19 MiB whatever arrives, and after a
//! flood it goes back to the kernel (A-F4: `spawn_blocking` gave every hash a fresh 19 MiB on whichever
//! blocking thread and malloc arena ran it, and the arenas kept them). At most [`QUEUE`] more wait in the
//! fair [`Line`]; the rest are refused at once with 503 ("busy, try again"), so a sign-in flood costs neither
//! memory beyond that nor the async workers that serve streams. `scripts/signin-memory` prints RSS after
//! floods on the glibc and the static musl build. Measured verify times are in the auth room's `//!` doc. The
//! parameters are part of the schema's meaning: changing them needs a schema version.

use super::line::{Line, Seat};
use crate::state::Secret;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use nix::libc;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

/// argon2id memory in KiB (19 MiB, the OWASP minimum row).
pub const M_COST_KIB: u32 = 19 * 1024;
/// argon2id passes over the memory.
pub const T_COST: u32 = 2;
/// argon2id lanes (one: a hash uses one core).
pub const P_COST: u32 = 1;
/// Bytes of argon2id output stored per secret.
pub const OUTPUT: usize = 16;
/// Hashes computed at the same time.
pub const HASHERS: usize = 2;
/// Hashes allowed to wait for a hasher; more are refused with 503.
pub const QUEUE: usize = 32;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Derive the stored hash of `secret` with `salt` (blocking: tens to hundreds of milliseconds). Allocates its
/// own 19 MiB: for one-off use (recovery, tests); the server hashes through [`Hasher`].
pub fn derive(secret: &[u8], salt: &[u8; 16]) -> [u8; OUTPUT] {
    let mut out = [0u8; OUTPUT];
    argon2().hash_password_into(secret, salt, &mut out).expect("argon2 with valid parameters");
    out
}

/// [`derive`] in the caller's argon2 memory (at least `Params::block_count` blocks).
fn derive_in(memory: &mut [Block], secret: &[u8], salt: &[u8; 16]) -> [u8; OUTPUT] {
    let mut out = [0u8; OUTPUT];
    argon2().hash_password_into_with_memory(secret, salt, &mut out, memory).expect("argon2 with valid parameters");
    out
}

fn fresh_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).expect("kernel random");
    salt
}

/// A new secret with a fresh random salt (blocking).
pub fn seal(secret: &str) -> Secret {
    let salt = fresh_salt();
    Secret { salt, hash: derive(secret.as_bytes(), &salt) }
}

fn seal_in(memory: &mut [Block], secret: &str) -> Secret {
    let salt = fresh_salt();
    Secret { salt, hash: derive_in(memory, secret.as_bytes(), &salt) }
}

/// Compare in constant time (blocking).
pub fn check(secret: &str, stored: &Secret) -> bool {
    let got = derive(secret.as_bytes(), &stored.salt);
    same(&got, &stored.hash)
}

fn check_in(memory: &mut [Block], secret: &str, stored: &Secret) -> bool {
    same(&derive_in(memory, secret.as_bytes(), &stored.salt), &stored.hash)
}

/// Equal bytes, compared without an early exit.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hasher is busy: too many sign-ins are waiting.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy checking other sign-ins; try again in a few seconds")]
pub struct Busy;

/// How long a hasher keeps its memory after its last hash; then the pages go back to the kernel.
pub const IDLE_RELEASE: Duration = Duration::from_secs(5);

/// One hasher's argon2 memory ([`M_COST_KIB`] KiB of [`Block`]s): its own anonymous mapping, so dropping it
/// gives the pages back to the kernel whatever the C library's allocator does with large blocks (glibc raises
/// its mmap threshold after the first free of a block this size and keeps later ones on its heap).
struct Memory {
    blocks: NonNull<Block>,
    count: usize,
}

// SAFETY: Memory owns its mapping exclusively (no other pointer to it exists); moving it to another thread
// moves that ownership.
unsafe impl Send for Memory {}

impl Memory {
    fn map() -> Option<Memory> {
        let count = argon2().params().block_count();
        let bytes = count * std::mem::size_of::<Block>();
        // SAFETY: a fresh private anonymous mapping at an address the kernel picks; no file, no existing memory
        // is touched.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // Pages are page-aligned (more than Block's 64) and zero-filled (a valid Block is any bytes).
        NonNull::new(p.cast::<Block>()).map(|blocks| Memory { blocks, count })
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: the mapping holds `count` Blocks, is readable and writable, and lives as long as self; the
        // &mut self borrow makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_ptr(), self.count) }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        let bytes = self.count * std::mem::size_of::<Block>();
        // SAFETY: unmaps exactly the mapping made in Memory::map; no reference into it outlives self.
        unsafe {
            libc::munmap(self.blocks.as_ptr().cast(), bytes);
        }
    }
}

/// Work for a hasher: called with the hasher's memory, or with `None` when it was turned away (busy).
type Job = Box<dyn FnOnce(Option<&mut [Block]>) + Send>;

struct Shared {
    line: Mutex<Line<Job>>,
    ready: Condvar,
    started: Once,
    /// Memory blocks mapped now, and the most ever mapped at once (the bound the tests check).
    mapped: AtomicUsize,
    peak: AtomicUsize,
}

/// Bounded hashing: [`HASHERS`] dedicated threads, each owning one argon2 memory block it reuses, so hashing
/// memory is at most [`HASHERS`] × [`M_COST_KIB`] KiB however many sign-ins arrive (A-F4); at most [`QUEUE`]
/// wait, in the fair order of [`Line`], and the rest are refused with [`Busy`]. The threads start at the first
/// hash, and each gives its memory back after [`IDLE_RELEASE`] without work.
#[derive(Clone)]
pub struct Hasher {
    shared: Arc<Shared>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            shared: Arc::new(Shared {
                line: Mutex::new(Line::new(QUEUE)),
                ready: Condvar::new(),
                started: Once::new(),
                mapped: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        }
    }
}

impl Hasher {
    fn start(&self) {
        self.shared.started.call_once(|| {
            for i in 0..HASHERS {
                let shared = self.shared.clone();
                std::thread::Builder::new()
                    .name(format!("hasher-{i}"))
                    .spawn(move || hasher_thread(&shared))
                    .expect("start a hasher thread");
            }
        });
    }

    /// Run `work` (which hashes in the memory it is given) on a hasher once `seat`'s turn comes.
    pub async fn run<T: Send + 'static>(&self, seat: Seat, work: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Result<T, Busy> {
        self.start();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| match memory {
            // The caller went away while it waited: no hash for nobody.
            Some(_) if tx.is_closed() => {}
            Some(m) => {
                let _ = tx.send(Ok(work(m)));
            }
            None => {
                let _ = tx.send(Err(Busy));
            }
        });
        let turned_away = self.shared.line.lock().unwrap().join(seat, job).map_err(|_| Busy)?;
        self.shared.ready.notify_one();
        if let Some(other) = turned_away {
            other(None);
        }
        rx.await.unwrap_or(Err(Busy))
    }

    /// Seal a new secret for an account that is already signed in (or the claim).
    pub async fn seal(&self, secret: String) -> Result<Secret, Busy> {
        let seat = Seat { source: None, lan: true, clean: true };
        self.run(seat, move |m| seal_in(m, &secret)).await
    }

    /// Check a secret for a caller in `seat`.
    pub async fn check(&self, seat: Seat, secret: String, stored: Secret) -> Result<bool, Busy> {
        self.run(seat, move |m| check_in(m, &secret, &stored)).await
    }

    /// The most argon2 memory blocks this hasher ever had mapped at once.
    pub fn peak_memories(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }
}

fn hasher_thread(shared: &Shared) {
    let mut memory: Option<Memory> = None;
    loop {
        let job = {
            let mut line = shared.line.lock().unwrap();
            loop {
                if let Some(job) = line.serve() {
                    break job;
                }
                let (l, waited) = shared.ready.wait_timeout(line, IDLE_RELEASE).unwrap();
                line = l;
                if waited.timed_out() && memory.take().is_some() {
                    shared.mapped.fetch_sub(1, Ordering::SeqCst);
                }
            }
        };
        if memory.is_none() {
            memory = Memory::map();
            if memory.is_some() {
                let now = shared.mapped.fetch_add(1, Ordering::SeqCst) + 1;
                shared.peak.fetch_max(now, Ordering::SeqCst);
            }
        }
        match memory.as_mut() {
            Some(m) => job(Some(m.blocks())),
            None => {
                tracing::warn!("no memory for a password hash; the attempt is answered busy");
                job(None)
            }
        }
    }
}

/// Passwords: at least 8 characters, at most 128 bytes, not the account name, not a well-known one.
pub fn password_problem(password: &str, name: &str) -> Option<&'static str> {
    const COMMON: &[&str] = &[
        "password", "password1", "12345678", "123456789", "1234567890", "qwertyuiop", "iloveyou", "sunshine",
        "football", "letmein1", "abcdefgh", "00000000", "11111111", "baseball", "princess", "passw0rd",
    ];
    if password.trim().is_empty() {
        return Some("the password is empty");
    }
    if password.chars().count() < 8 {
        return Some("the password is too short: use at least 8 characters");
    }
    if password.len() > 128 {
        return Some("the password is too long: at most 128 bytes");
    }
    if password.eq_ignore_ascii_case(name) {
        return Some("the password must not be the account name");
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("that password is one of the most common ones; choose another");
    }
    let first = password.chars().next();
    if password.chars().all(|c| Some(c) == first) {
        return Some("the password repeats one character; choose another");
    }
    None
}

/// PINs: 4 to 8 digits.
pub fn pin_problem(pin: &str) -> Option<&'static str> {
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Some("a PIN is 4 to 8 digits");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_check() {
        let s = seal("correct horse");
        assert!(check("correct horse", &s));
        assert!(!check("correct hors", &s));
        let t = seal("correct horse");
        assert_ne!(s.salt, t.salt, "every secret gets its own salt");
    }

    #[test]
    fn password_and_pin_rules() {
        assert!(password_problem("", "a").is_some());
        assert!(password_problem("short", "a").is_some());
        assert!(password_problem("Password", "a").is_some());
        assert!(password_problem("alice-the-owner", "alice-the-owner").is_some());
        assert!(password_problem("aaaaaaaaaa", "x").is_some());
        assert!(password_problem("blue tiger lamp", "alice").is_none());
        assert!(pin_problem("123").is_some());
        assert!(pin_problem("123456789").is_some());
        assert!(pin_problem("12a4").is_some());
        assert!(pin_problem("0000").is_none());
        assert!(pin_problem("12345678").is_none());
    }

    fn waiting(h: &Hasher) -> usize {
        h.shared.line.lock().unwrap().len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hasher_refuses_beyond_its_queue() {
        let h = Hasher::default();
        let seat = Seat { source: None, lan: true, clean: true };
        let gate = Arc::new(std::sync::Barrier::new(HASHERS + 1));
        let started = Arc::new(AtomicUsize::new(0));
        let mut running = Vec::new();
        for i in 0..HASHERS + QUEUE {
            let (h2, g, s) = (h.clone(), gate.clone(), started.clone());
            running.push(tokio::spawn(async move {
                h2.run(seat, move |_| {
                    s.fetch_add(1, Ordering::SeqCst);
                    g.wait();
                })
                .await
            }));
            // The first HASHERS are taken by the hashers before the line fills.
            while (i < HASHERS && started.load(Ordering::SeqCst) < i + 1) || (i >= HASHERS && waiting(&h) < i + 1 - HASHERS) {
                tokio::task::yield_now().await;
            }
        }
        assert!(h.run(seat, |_| ()).await.is_err(), "one more than the queue holds is refused");
        // Let everyone through: HASHERS at a time pass the barrier together.
        for _ in 0..(HASHERS + QUEUE) / HASHERS {
            let g = gate.clone();
            tokio::task::spawn_blocking(move || g.wait()).await.unwrap();
        }
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
    }

    /// Many concurrent checks never hold more argon2 memory than one block per hasher (the RSS figure after
    /// floods is `scripts/signin-memory`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_f4_hashing_memory_is_one_block_per_hasher() {
        let h = Hasher::default();
        let stored = seal("the right one");
        let checks: Vec<_> = (0..24u8)
            .map(|i| {
                let (h, stored) = (h.clone(), stored.clone());
                let seat = Seat { source: Some(super::super::lockout::Source::of([10, 0, 0, i].into(), true)), lan: true, clean: true };
                tokio::spawn(async move { h.check(seat, "a wrong one".into(), stored).await })
            })
            .collect();
        for c in checks {
            assert!(!c.await.unwrap().expect("24 fit in the line"));
        }
        assert!(h.peak_memories() >= 1);
        assert!(h.peak_memories() <= HASHERS, "{} memories for {HASHERS} hashers", h.peak_memories());
        let seat = Seat { source: None, lan: true, clean: true };
        assert!(h.check(seat, "the right one".into(), stored).await.unwrap(), "a hasher's reused memory hashes right");
    }
}
