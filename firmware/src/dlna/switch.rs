//! The owner's DLNA switch, and the rule that guards it (DESIGN.md "The seeds' rules"): DLNA has no tokens, so
//! while the server is secured (a Home member, or a PIN on any account) turning DLNA on gives every device on
//! the LAN the libraries DLNA shows. The owner may still do it, but only by acknowledging [`WARNING`]; turning
//! DLNA off clears the acknowledgement, so the next time needs it again. (Becoming secured clears it too: that
//! rule is the state's, `State::settle`.)
//!
//! Pure: a [`Switch`] and the stored `state::Dlna` in, the edited `Dlna` or a [`Refusal`] out. The http room
//! runs [`Switch::apply`] inside `Handle::update` (`PUT /api/v1/settings/dlna`).

use crate::state::Dlna;

/// The warning the owner acknowledges to turn DLNA on while the server is secured (seed wording).
pub const WARNING: &str = "Turning DLNA on while the server is secured gives any DLNA device on your local \
network unrestricted access to the libraries DLNA shows, without a token or PIN. Hearth answers DLNA from LAN \
addresses only.";

/// What the owner asked of the switch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Switch {
    /// On or off; `None` keeps the switch where it is.
    pub enabled: Option<bool>,
    /// The owner read [`WARNING`] and accepts it.
    pub acknowledge_warning: bool,
}

/// Turning DLNA on while secured needs the acknowledgement: the sentence to show (409).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal;

impl Refusal {
    /// The warning and what to send to go ahead.
    pub fn sentence(&self) -> String {
        format!("{WARNING} Send acknowledge_warning: true to turn it on.")
    }
}

impl Switch {
    /// Apply this ask to `d` on a server that is `secured` (or not). Refused, with `d` untouched, when it
    /// would turn DLNA on while secured without the acknowledgement.
    pub fn apply(self, d: &mut Dlna, secured: bool) -> Result<(), Refusal> {
        let on = self.enabled.unwrap_or(d.enabled);
        let asks_on = self.enabled == Some(true) || self.acknowledge_warning;
        if on && secured && !d.reenabled_secured && asks_on {
            if !self.acknowledge_warning {
                return Err(Refusal);
            }
            d.reenabled_secured = true;
        }
        if !on {
            d.reenabled_secured = false;
        }
        d.enabled = on;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(acknowledge_warning: bool) -> Switch {
        Switch { enabled: Some(true), acknowledge_warning }
    }

    fn off() -> Dlna {
        Dlna { enabled: false, ..Dlna::default() }
    }

    #[test]
    fn unsecured_dlna_turns_on_and_off_freely() {
        let mut d = off();
        on(false).apply(&mut d, false).unwrap();
        assert!(d.enabled && !d.reenabled_secured);
        Switch { enabled: Some(false), ..Switch::default() }.apply(&mut d, false).unwrap();
        assert!(!d.enabled);
    }

    #[test]
    fn secured_needs_the_acknowledgement_and_a_refusal_changes_nothing() {
        let mut d = off();
        assert_eq!(on(false).apply(&mut d, true), Err(Refusal));
        assert_eq!(d, off(), "refused: untouched");
        assert!(Refusal.sentence().contains("unrestricted access") && Refusal.sentence().contains("acknowledge_warning"));
        on(true).apply(&mut d, true).unwrap();
        assert!(d.enabled && d.reenabled_secured);
        // Once acknowledged, other changes (no `enabled`) need nothing more.
        Switch::default().apply(&mut d, true).unwrap();
        assert!(d.enabled && d.reenabled_secured);
    }

    #[test]
    fn a_switch_still_on_after_securing_needs_the_acknowledgement_to_stay_on_by_ask() {
        // Enabled but secured without acknowledgement (State::settle cleared it): asking "on" again is refused,
        // acknowledging alone turns it effectively on.
        let mut d = Dlna::default();
        assert_eq!(on(false).apply(&mut d, true), Err(Refusal));
        Switch { enabled: None, acknowledge_warning: true }.apply(&mut d, true).unwrap();
        assert!(d.enabled && d.reenabled_secured);
        // An ask that does not say "on" leaves an unacknowledged switch alone (no 409 for unrelated edits).
        let mut d = Dlna::default();
        Switch::default().apply(&mut d, true).unwrap();
        assert!(d.enabled && !d.reenabled_secured);
    }

    #[test]
    fn turning_off_clears_the_acknowledgement() {
        let mut d = Dlna { enabled: true, reenabled_secured: true, ..Dlna::default() };
        Switch { enabled: Some(false), acknowledge_warning: false }.apply(&mut d, true).unwrap();
        assert!(!d.enabled && !d.reenabled_secured);
        assert_eq!(on(false).apply(&mut d, true), Err(Refusal), "the next time needs it again");
    }
}
