//! Test lab helper: write a claimed state (an owner account) into a data folder, the way the netlab tests
//! need a claimed server before the claim API exists on this branch. Not part of the firmware image.
//!
//! Usage: cargo run --example claim -- DATA_DIR [--remote-on]
//! The owner's password is 16 random bytes nobody knows: this makes the server claimed, not usable for
//! sign-in. The lead switches the netlab tests to the real claim API (tests/netlab/run: `claim()`).

use hearth::state::{self, Account, Role, Secret};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: claim DATA_DIR [--remote-on]");
    let remote_on = args.next().as_deref() == Some("--remote-on");
    let cfg = hearth::serve::Config { data_dir: dir.into(), ..Default::default() };
    let opening = hearth::serve::open_data(&cfg).expect("open the data folder");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let h = opening.handle.clone();
        h.update(|s| {
            if s.owner().is_none() {
                let id = s.allocate_id()?;
                let r = hearth::serve::random_id();
                let owner = Account {
                    id,
                    role: Role::Owner,
                    name: state::bounded("name", "owner")?,
                    password: Some(Secret { salt: r, hash: hearth::serve::random_id() }),
                    pin: None,
                    shares: Default::default(),
                    created: 0,
                };
                state::push("accounts", &mut s.accounts, owner)?;
            }
            s.settings.remote.enabled = remote_on;
            Ok::<_, state::StateError>(())
        })
        .await
        .expect("claim");
        h.flush().await;
    });
    opening.handle.shutdown();
    println!("claimed {}", opening.handle.snapshot().machine_identifier());
}
