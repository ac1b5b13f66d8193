//! Passwords and PINs: argon2id (RFC 9106) with fixed parameters, run off the async threads behind a semaphore.
//!
//! Parameters ([`M_COST_KIB`], [`T_COST`], [`P_COST`]): 19 MiB, 2 passes, 1 lane, 16-byte output — the OWASP
//! "argon2id minimum" row and RFC 9106 §4's shape with memory sized for a 1 GiB board. At most [`HASHERS`]
//! hashes run at once (peak 2 × 19 MiB); at most [`QUEUE`] more wait, and the rest are refused at once with
//! 503 ("busy, try again"), so a sign-in flood costs a bounded amount of memory and at most [`HASHERS`] of the
//! blocking threads, never the async workers that serve streams. Measured verify times are in the auth room's
//! `//!` doc. The parameters are part of the schema's meaning: changing them needs a schema version.

use crate::state::Secret;
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
pub const OUTPUT: usize = 16;
/// Hashes computed at the same time.
pub const HASHERS: usize = 2;
/// Hashes allowed to wait for a hasher; more are refused with 503.
pub const QUEUE: usize = 32;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Derive the stored hash of `secret` with `salt` (blocking: tens to hundreds of milliseconds).
pub fn derive(secret: &[u8], salt: &[u8; 16]) -> [u8; OUTPUT] {
    let mut out = [0u8; OUTPUT];
    argon2().hash_password_into(secret, salt, &mut out).expect("argon2 with valid parameters");
    out
}

/// A new secret with a fresh random salt (blocking).
pub fn seal(secret: &str) -> Secret {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).expect("kernel random");
    Secret { salt, hash: derive(secret.as_bytes(), &salt) }
}

/// Compare in constant time (blocking).
pub fn check(secret: &str, stored: &Secret) -> bool {
    let got = derive(secret.as_bytes(), &stored.salt);
    same(&got, &stored.hash)
}

/// Equal bytes, compared without an early exit.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hasher is busy: too many sign-ins are waiting.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy checking other sign-ins; try again in a few seconds")]
pub struct Busy;

/// Bounded hashing: at most [`HASHERS`] at once, at most [`QUEUE`] waiting.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher { permits: Arc::new(Semaphore::new(HASHERS)), waiting: Arc::new(AtomicUsize::new(0)) }
    }
}

impl Hasher {
    /// Run `work` (which hashes) on a blocking thread once a hasher is free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= HASHERS + QUEUE {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let permit = self.permits.clone().acquire_owned().await;
        let out = tokio::task::spawn_blocking(work).await;
        drop(permit);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Ok(out.expect("hashing does not panic"))
    }

    pub async fn seal(&self, secret: String) -> Result<Secret, Busy> {
        self.run(move || seal(&secret)).await
    }

    pub async fn check(&self, secret: String, stored: Secret) -> Result<bool, Busy> {
        self.run(move || check(&secret, &stored)).await
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hasher_refuses_beyond_its_queue() {
        let h = Hasher::default();
        let gate = Arc::new(std::sync::Barrier::new(HASHERS + 1));
        let mut running = Vec::new();
        for _ in 0..HASHERS + QUEUE {
            let (h, g) = (h.clone(), gate.clone());
            running.push(tokio::spawn(async move { h.run(move || { g.wait(); }).await }));
        }
        while h.waiting.load(Ordering::SeqCst) < HASHERS + QUEUE {
            tokio::task::yield_now().await;
        }
        assert!(h.run(|| ()).await.is_err(), "one more than the queue holds is refused");
        // Let everyone through: HASHERS at a time pass the barrier together.
        for _ in 0..(HASHERS + QUEUE) / HASHERS {
            let g = gate.clone();
            tokio::task::spawn_blocking(move || g.wait()).await.unwrap();
        }
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
    }
}
