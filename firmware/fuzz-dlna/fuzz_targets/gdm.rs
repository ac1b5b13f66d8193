//! GDM datagrams (UDP 32414): the search parser and the responder never panic; an answer goes only to a
//! well-formed search, stays under 1024 bytes and has no line with a second colon (python-plexapi's parser).
//! Seeds: seeds/gdm (datagrams split at NUL bytes); `gdm::search`'s tests run them in every `cargo test`.
#![no_main]
use hearth::auth::Origin;
use hearth::gdm::search::{MAX_ANSWER, Responder, Server, Silence, is_search};
use hearth::state::{Account, Role, Secret, State};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
    let mut s = State::new([7; 16]);
    let owner = Account {
        id: 1,
        role: Role::Owner,
        name: "o".try_into().unwrap(),
        password: Some(Secret { salt: [1; 16], hash: [2; 16] }),
        pin: None,
        shares: Default::default(),
        created: 0,
    };
    s.accounts.push(owner).unwrap();
    let server = Server { host_name: String::from_utf8_lossy(data).into_owned(), port: 32400, updated_at: 1 };
    let from = Origin { addr: "192.168.1.20".parse().unwrap(), lan: true };
    let mut r = Responder::new(Instant::now());
    for chunk in data.split(|b| *b == 0) {
        match r.on_datagram(Instant::now(), &from, &s, &server, chunk) {
            Ok(bytes) => {
                assert!(is_search(chunk));
                assert!(bytes.len() < MAX_ANSWER);
                let text = std::str::from_utf8(&bytes).unwrap();
                for line in text.lines() {
                    assert!(line.matches(':').count() <= 1, "{line:?}");
                }
            }
            Err(Silence::NotASearch) => assert!(!is_search(chunk)),
            Err(_) => assert!(is_search(chunk)),
        }
    }
});
