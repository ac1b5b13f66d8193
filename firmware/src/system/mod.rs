//! The system room: the bottom shelf every room may use, and the duties of Hearth as the whole userspace of a
//! board (the init sequence itself, which wires the rooms, is `crate::init` at the top).
//!
//! Owns: the wall clock ([`clock`]), the interface addresses ([`ifaces`]), dual-stack listening and canonical
//! source addresses ([`dual_stack`]), random bytes ([`random`]), logging
//! and stop signals ([`logging`]), the per-core connection workers ([`workers`]) and where they and the
//! network's interrupts run ([`cores`]), board profiles ([`board`]),
//! network bring-up ([`net`]: interface flags, addresses, routes, the DHCP client shell around dhcproto), the
//! flash store's area on the board's device ([`flash`]), the watchdog and heartbeats ([`watchdog`], which also
//! publishes what it knows for the System screen), reset reasons and safe mode ([`reset`]), the recent log
//! lines ([`journal`]), the fd limit and what one source's connections may hold ([`fds`]), and power requests
//! ([`PowerSwitch`]).
//! Must not touch: the record format (store room), the schema (state room), or protocol details of HTTP.

pub mod board;
pub mod boot;
pub mod clock;
pub mod cores;
pub mod dual_stack;
pub mod fds;
pub mod flash;
pub mod ifaces;
pub mod journal;
pub mod logging;
pub mod net;
pub mod random;
pub mod reset;
pub mod watchdog;
pub mod workers;

use serde::{Deserialize, Serialize};

/// What the machine should do when init mode stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    Reboot,
    #[serde(alias = "power-off", alias = "shutdown")]
    Poweroff,
    Halt,
}

/// Lets the API (and signals) ask init mode to stop and then reboot or power off. Cloned into the HTTP context.
#[derive(Clone, Debug)]
pub struct PowerSwitch(tokio::sync::watch::Sender<Option<PowerAction>>);

impl PowerSwitch {
    /// The switch and the receiver init mode waits on for the first request.
    pub fn new() -> (PowerSwitch, tokio::sync::watch::Receiver<Option<PowerAction>>) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (PowerSwitch(tx), rx)
    }

    /// The first request wins; later ones are ignored (a reboot already under way is not turned into a halt).
    pub fn request(&self, action: PowerAction) {
        self.0.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(action);
                true
            } else {
                false
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_power_request_wins() {
        let (sw, rx) = PowerSwitch::new();
        assert_eq!(*rx.borrow(), None);
        sw.request(PowerAction::Reboot);
        sw.request(PowerAction::Halt);
        assert_eq!(*rx.borrow(), Some(PowerAction::Reboot));
    }
}
