//! Rules that follow from the state itself, applied by the state handle to every change before it is
//! validated and written, whichever code path made the change (a handler, `hearth recover`, a raw `update`
//! closure). A writer cannot forget them.

use super::State;

impl State {
    /// Apply the rules that follow from going from `before` to `self` (DESIGN.md "The seeds' rules"):
    /// entering the secured state (a Home member or a PIN on any account) turns DLNA off until the owner
    /// re-enables it: the re-enable acknowledgement is cleared at that moment. (Review C-6: this used to be
    /// opt-in, a wrapper each handler had to remember.)
    pub fn settle(&mut self, before: &State) {
        if !before.is_secured() && self.is_secured() {
            self.settings.dlna.reenabled_secured = false;
            tracing::info!(dlna_on = self.dlna_effectively_on(), "the server is now secured; DLNA is off until re-enabled");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::state::{Account, Handle, Role, Secret, State};
    use crate::store::Store;
    use crate::store::sim::{Semantics, SimFlash};

    fn secret() -> Secret {
        Secret { salt: [1; 16], hash: [2; 16] }
    }

    fn account(id: u16, name: &str, role: Role) -> Account {
        let password = (role != Role::Member).then(secret);
        Account { id, role, name: name.try_into().unwrap(), password, pin: None, shares: Default::default(), created: 0 }
    }

    /// Claimed, unsecured, with a friend, and a stale DLNA re-enable acknowledgement from an earlier secured
    /// period (the owner re-enabled DLNA, then removed the member again).
    fn unsecured_with_stale_ack() -> State {
        let mut s = State::new([5; 16]);
        s.accounts.push(account(1, "owner", Role::Owner)).unwrap();
        s.accounts.push(account(2, "friend", Role::Friend)).unwrap();
        s.next_id = 3;
        s.settings.dlna.reenabled_secured = true;
        assert!(!s.is_secured() && s.dlna_effectively_on());
        s
    }

    /// Review C-6: any update that makes the state secured clears the acknowledgement, whatever wrote it: here
    /// raw `update` closures that know nothing of DLNA.
    #[test]
    fn c_6_securing_turns_dlna_off_in_the_state_update() {
        type Change = fn(&mut State);
        let changes: [(&str, Change); 3] = [
            ("add a Home member", |s| s.accounts.push(account(9, "kid", Role::Member)).unwrap()),
            ("set the owner's PIN", |s| s.accounts[0].pin = Some(secret())),
            ("set a friend's PIN", |s| s.accounts[1].pin = Some(secret())),
        ];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for (what, change) in changes {
            let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
            let handle = Handle::start(Store::format(flash).unwrap(), unsecured_with_stale_ack());
            rt.block_on(handle.update(|s| {
                change(s);
                Ok::<_, ()>(())
            }))
            .unwrap();
            let s = handle.snapshot();
            assert!(s.is_secured(), "{what}");
            assert!(!s.settings.dlna.reenabled_secured, "{what}: the acknowledgement is cleared");
            assert!(!s.dlna_effectively_on(), "{what}: DLNA is off");
            // Once secured, the owner may re-enable DLNA, and further changes (another member) keep it on.
            rt.block_on(handle.update(|s| {
                s.settings.dlna.reenabled_secured = true;
                s.accounts.push(account(10, "kid two", Role::Member)).unwrap();
                Ok::<_, ()>(())
            }))
            .unwrap();
            assert!(handle.snapshot().dlna_effectively_on(), "{what}: re-enabled while secured stays on");
            handle.shutdown();
        }
    }
}
