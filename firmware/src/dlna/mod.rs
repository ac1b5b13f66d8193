//! DLNA media server: SSDP discovery, the device description, ContentDirectory and ConnectionManager.
//!
//! Owns: the SSDP engine ([`ssdp`], sans-IO) and, as they land, its socket shell on UDP 1900 and the
//! description/control endpoints on TCP 32469. Runs only while `State::dlna_effectively_on()`.
//! Must not touch: accounts or tokens (DLNA has none: the access rule decides whether it runs at all).

pub mod ssdp;
