//! Measures what the release profile's opt-level trades: CPU time of the hot CPU-bound work on the box
//! (argon2id verification at sign-in, SHA-256 of tokens, TLS record encryption via ring, state encoding).
//! Run by scripts/opt-levels for opt-level 3, "s" and "z"; it prints user CPU seconds per task.

use std::time::Duration;

/// User CPU time of this process from /proc/self/stat (field 14, clock ticks of 1/100 s).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let utime: u64 = after_name.split(' ').nth(11).unwrap().parse().unwrap();
    Duration::from_millis(utime * 10)
}

fn measure(name: &str, f: impl FnOnce()) {
    let t = cpu();
    f();
    println!("{name:<28} {:>8.3} s", (cpu() - t).as_secs_f64());
}

fn main() {
    use argon2::{Algorithm, Argon2, Params, Version};
    measure("argon2id 19 MiB t=2 x4", || {
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19 * 1024, 2, 1, Some(16)).unwrap());
        let mut out = [0u8; 16];
        for i in 0..4u8 {
            a.hash_password_into(b"correct horse battery", &[i; 16], &mut out).unwrap();
        }
    });
    measure("sha256 256 MiB", || {
        let buf = vec![7u8; 1 << 20];
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for _ in 0..256 {
            ctx.update(&buf);
        }
        std::hint::black_box(ctx.finish());
    });
    measure("aes-128-gcm seal 256 MiB", || {
        use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[1; 16]).unwrap());
        let mut buf = vec![0u8; 16 * 1024];
        for i in 0..(256 * 64u32) {
            let mut n = [0u8; 12];
            n[..4].copy_from_slice(&i.to_le_bytes());
            let tag = key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut buf).unwrap();
            let _ = std::hint::black_box(tag);
        }
    });
    measure("state encode+decode x20000", || {
        let mut s = hearth::state::State::new([1; 16]);
        for i in 0..16u8 {
            let _ = s.libraries.push(hearth::state::Library {
                id: i + 1,
                kind: hearth::state::LibraryKind::Movies,
                name: hearth::state::bounded("n", &format!("Library {i}")).unwrap(),
            });
        }
        for _ in 0..20_000 {
            let b = hearth::state::encode(&s).unwrap();
            std::hint::black_box(hearth::state::decode(hearth::state::SCHEMA_VERSION, &b).unwrap());
        }
    });
}
