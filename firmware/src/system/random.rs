//! Random bytes from the kernel, in one place: the machine identifier, DHCP transaction ids, PCP nonces,
//! STUN transaction ids, the SSDP engine's seed.

/// `N` random bytes from the kernel (getrandom(2) through ring). Panics only if the kernel has no random
/// source, which a running Linux always has.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("kernel random");
    b
}

/// 16 random bytes: an identifier no other box will have (the machine identifier of a new state).
pub fn id() -> [u8; 16] {
    bytes()
}
