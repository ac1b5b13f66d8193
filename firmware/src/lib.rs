//! Hearth: media-server firmware for ARM NAS boards. See ../shared/DESIGN.md for the whole picture.
//!
//! Rooms (each owns what its `//!` doc says and nothing else):
//! - [`state`]: the persistent schema and the state handle.
//! - [`store`]: the power-loss-safe flash store.
//! - [`http`]: listener, dispatch, route table, API handlers.
//! - [`remote`]: port mapping, remote-access status, STUN, the reflector.
//! - [`serve`]: `hearth serve`, wiring the rooms together on a host.

pub mod http;
pub mod remote;
pub mod serve;
pub mod state;
pub mod store;

/// Version string reported by `/identity` and the setup page.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
