//! Hearth: media-server firmware for ARM NAS boards. See ../shared/DESIGN.md for the whole picture.
//!
//! Rooms (each owns what its `//!` doc says and nothing else):
//! - [`state`]: the persistent schema and the state handle.
//! - [`store`]: the power-loss-safe flash store.
//! - [`auth`]: accounts, Home, PINs, friends, devices and tokens, lockout, the access rule.
//! - [`http`]: listener, dispatch, route table, API handlers.
//! - [`library`]: scanner, catalog, index file, watcher.
//! - [`stream`]: the stream fast path (Range, sendfile, pacing classes).
//! - [`remote`]: port mapping, remote-access status, STUN, the reflector.
//! - [`serve`]: `hearth serve`, wiring the rooms together on a host.
//! - [`init`]: init mode (PID 1 on a board): mounts, modules, network, then serving; reboot.
//! - [`command`]: the `recover` and `reflector` commands' shells (argv, logging, opening the data).
//! - [`system`]: the bottom shelf (clock, interfaces, random bytes, logging, connection workers), board
//!   profiles, network bring-up, watchdog, reset reasons.
//! - [`wire`]: HTTP/1.1 framing below the rooms that speak it: the request head parsed once, HTTP dates,
//!   percent-decoding and XML escaping.
//! - [`gdm`]: Plex's LAN discovery (GDM) on UDP 32414, while claimed, to LAN sources.
//! - [`update`]: signed bundles, the two boot slots, U-Boot's boot state, confirm and rollback.

pub mod dlna;
pub mod gdm;
pub mod auth;
pub mod command;
pub mod http;
pub mod init;
pub mod library;
pub mod remote;
pub mod serve;
pub mod state;
pub mod store;
pub mod stream;
pub mod system;
pub mod wire;
pub mod update;

/// Version string reported by `/identity`, the setup page and the update room (MAJOR.MINOR.PATCH): the
/// build-time environment variable `HEARTH_VERSION` when set (scripts/build-image passes the image's version;
/// changing it rebuilds only this crate), else the crate's version.
pub const VERSION: &str = match option_env!("HEARTH_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
