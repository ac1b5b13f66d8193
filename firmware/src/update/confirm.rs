//! Confirm a healthy start, notice a rollback (issue 19 deliverables 5 and 6).
//!
//! At start ([`at_start`], sans-IO): booted slot X while `BOOT_ORDER` starts with the other slot Y whose counter
//! is 0 means U-Boot gave up on Y: the update to Y failed. Hearth repairs `BOOT_ORDER="X Y"` and records
//! `HEARTH_UPDATE=failed Y <version>` ("update to `<version>` failed, rolled back").
//!
//! Healthy start ([`watch`]): every heartbeat (system::watchdog: runtime, listener answering /health, store
//! writer, ...) fresh without a break for the board's `confirm_after_secs`; then [`confirmed`] resets X's counter
//! to 3 and turns `pending X v` into `confirmed X v`.
//!
//! State across versions: while this start is not confirmed and the stored record had an older schema (the
//! state was migrated at open), the state handle holds its writes in memory ([`crate::state::Handle::hold_writes`]):
//! the record on flash stays in the old schema, so a rolled-back firmware still reads it. Confirming releases
//! the hold and writes the newest state. Changes made in that window are lost if the new firmware never
//! confirms (they were made on a firmware the box then refused).

use super::bootstate::{self, BootState, LastUpdate, Outcome, TRIES};
use super::slot::{self, Slot};
use super::Slots;
use std::time::{Duration, Instant};

/// The boot state to write at start, if it needs repair (a rollback). `other_version` is the failed slot's
/// footer version, used when `HEARTH_UPDATE` does not name it.
pub fn at_start(state: &BootState, booted: Slot, other_version: Option<String>) -> Option<BootState> {
    let other = booted.other();
    if state.order().first() != Some(&other) || state.left(other) != 0 {
        return None;
    }
    let version = match state.last_update() {
        Some(u) if u.slot == other => u.version,
        _ => other_version.unwrap_or_else(|| "an unknown version".into()),
    };
    let mut next = state.clone();
    next.set("BOOT_ORDER", &format!("{} {}", booted.name(), other.name()));
    next.set_last_update(&LastUpdate { outcome: Outcome::Failed, slot: other, version });
    Some(next)
}

/// The boot state after a healthy start of `booted` (None: nothing to change).
pub fn confirmed(state: &BootState, booted: Slot) -> Option<BootState> {
    let mut next = state.clone();
    next.set(booted.left_key(), &TRIES.to_string());
    if let Some(u) = state.last_update().filter(|u| u.slot == booted && u.outcome == Outcome::Pending) {
        next.set_last_update(&LastUpdate { outcome: Outcome::Confirmed, ..u });
    }
    (next != *state).then_some(next)
}

/// A sentence for the System screen about the last update, seen from the booted slot.
pub fn sentence(u: &LastUpdate, booted: Slot, confirmed: bool) -> String {
    match (u.outcome, u.slot == booted) {
        (Outcome::Failed, _) => format!("update to {} failed, rolled back", u.version),
        (Outcome::Pending, false) => format!("version {} is installed in slot {}; restart into it", u.version, u.slot.name()),
        (Outcome::Pending, true) if confirmed => format!("updated to {}", u.version),
        (Outcome::Pending, true) => format!("running {} for the first time; it confirms itself after a healthy start", u.version),
        (Outcome::Confirmed, _) => format!("updated to {}", u.version),
    }
}

impl Slots {
    /// At start: repair the boot state after a rollback (logged). Errors are logged; the box serves anyway.
    pub fn start(&self) {
        let path = &self.places.bootstate;
        let (state, source) = match bootstate::read_file(path) {
            Ok(s) => s,
            Err(e) => return tracing::error!(path = %path.display(), error = %e, "cannot read the boot state"),
        };
        tracing::info!(slot = self.booted.name(), source = ?source, "booted from slot");
        let other_version = slot::read_footer(self.places.slot(self.booted.other()), &self.key).map(|m| m.version.to_string());
        if let Some(next) = at_start(&state, self.booted, other_version) {
            let u = next.last_update();
            tracing::warn!(update = ?u, "the update failed; U-Boot rolled back to this slot");
            if let Err(e) = bootstate::write_file(path, &next) {
                tracing::error!(error = %e, "cannot repair the boot order after a rollback");
            }
        }
    }

    /// Confirm this start: the booted slot's counter back to 3 (and a pending update confirmed).
    pub fn confirm(&self) -> std::io::Result<()> {
        let path = &self.places.bootstate;
        let (state, _) = bootstate::read_file(path)?;
        if let Some(next) = confirmed(&state, self.booted) {
            bootstate::write_file(path, &next)?;
        }
        self.mark_confirmed();
        tracing::info!(slot = self.booted.name(), "healthy start confirmed");
        Ok(())
    }
}

/// Hold the state's writes while unconfirmed if the stored record was migrated from an older schema. Call
/// before the first write of the run. No slots (a host): nothing held.
pub fn hold_migration(handle: &crate::state::Handle, migrated: bool) {
    if migrated && Slots::get().is_some_and(|s| !s.confirmed()) {
        tracing::info!("the stored state has an older schema: it is kept on flash as it is until this start is confirmed");
        handle.hold_writes();
    }
}

/// Watch the heartbeats and confirm once they have all been fresh for the board's time; then release the
/// state's write hold. Returns at once without slots.
pub async fn watch(beats: crate::system::watchdog::Heartbeats, stale_after: Duration, handle: crate::state::Handle) {
    let Some(slots) = Slots::get() else { return };
    let mut healthy_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match beats.check(now, stale_after) {
            Ok(()) => {
                let since = *healthy_since.get_or_insert(now);
                if now - since >= slots.confirm_after {
                    break;
                }
            }
            Err(_) => healthy_since = None,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let done = tokio::task::spawn_blocking(move || slots.confirm()).await;
    if let Ok(Err(e)) = done {
        tracing::error!(error = %e, "cannot write the boot state to confirm this start; U-Boot will count this start as a failed try");
        return;
    }
    if handle.release_writes() && let Err(e) = handle.rewrite().await {
        tracing::error!(error = %e, "the state in the new schema could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(order: &str, a: u8, b: u8, upd: Option<&str>) -> BootState {
        let mut s = BootState::default();
        s.set("BOOT_ORDER", order);
        s.set("BOOT_A_LEFT", &a.to_string());
        s.set("BOOT_B_LEFT", &b.to_string());
        if let Some(u) = upd {
            s.set("HEARTH_UPDATE", u);
        }
        s
    }

    #[test]
    fn a_spent_update_is_a_rollback_and_the_order_is_repaired() {
        let s = state("B A", 2, 0, Some("pending B 0.2.0"));
        let next = at_start(&s, Slot::A, None).unwrap();
        assert_eq!(next.order(), [Slot::A, Slot::B]);
        let u = next.last_update().unwrap();
        assert_eq!(sentence(&u, Slot::A, false), "update to 0.2.0 failed, rolled back");
        // The footer names the version when HEARTH_UPDATE does not.
        let next = at_start(&state("B A", 2, 0, None), Slot::A, Some("0.3.0".into())).unwrap();
        assert_eq!(next.last_update().unwrap().version, "0.3.0");
        // Neither names it (a slot written without a footer): the System screen still says what happened.
        let next = at_start(&state("B A", 2, 0, None), Slot::A, None).unwrap();
        let u = next.last_update().expect("the record reads back");
        assert_eq!(sentence(&u, Slot::A, false), "update to an unknown version failed, rolled back");
    }

    #[test]
    fn no_rollback_when_the_booted_slot_leads_or_the_other_has_tries() {
        assert_eq!(at_start(&state("A B", 2, 3, None), Slot::A, None), None);
        assert_eq!(at_start(&state("B A", 2, 3, Some("pending B 0.2.0")), Slot::B, None), None);
        // An update installed in this run, not yet booted: B leads with tries left.
        assert_eq!(at_start(&state("B A", 3, 3, Some("pending B 0.2.0")), Slot::A, None), None);
    }

    #[test]
    fn confirming_resets_the_counter_and_the_pending_update() {
        let next = confirmed(&state("B A", 3, 2, Some("pending B 0.2.0")), Slot::B).unwrap();
        assert_eq!(next.left(Slot::B), 3);
        assert_eq!(next.last_update().unwrap().outcome, Outcome::Confirmed);
        assert_eq!(sentence(&next.last_update().unwrap(), Slot::B, true), "updated to 0.2.0");
        assert_eq!(confirmed(&state("A B", 3, 3, None), Slot::A), None);
        // A failed update stays reported after the old slot confirms itself.
        let next = confirmed(&state("A B", 2, 0, Some("failed B 0.2.0")), Slot::A).unwrap();
        assert_eq!(next.last_update().unwrap().outcome, Outcome::Failed);
    }
}
