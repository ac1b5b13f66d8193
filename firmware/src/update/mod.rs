//! The update room: signed firmware bundles, the two boot slots and U-Boot's boot state (issue 19).
//!
//! Owns: the bundle format and its checks ([`bundle`]), the raw boot-state partition that U-Boot's boot script
//! and Hearth share ([`bootstate`]), which slot booted and what each slot holds ([`slot`]), writing a bundle into
//! the inactive slot and making it the next boot ([`install`]), confirming a healthy start and noticing a
//! rollback ([`confirm`]), and the console commands `hearth bundle` and `hearth update` ([`command`]).
//! Must not touch: HTTP (http/update_api.rs calls in here), the record format (store room) or the schema
//! (state room); it uses only [`crate::system`] (board profile) below it.
//!
//! The public key that bundles must be signed with is built in ([`PUBLIC_KEY`]): the hex in the build-time
//! environment variable `HEARTH_UPDATE_PUBKEY` (64 lowercase hex digits, the content of a `.pub` file made by
//! `hearth bundle --new-key`), else the development key in `board/keys/dev-update.pub` ([`trusts_dev_key`]
//! says which, and GET /api/v1/system reports it).

pub mod bootstate;
pub mod bundle;
pub mod command;
pub mod confirm;
pub mod install;
pub mod slot;

pub use install::Slots;

/// What GET /api/v1/system shows under `"update"`: the key trusted, this version, and (when running from a
/// slot) the booted slot, the other slot's version, whether this start is confirmed, the next boot and the
/// last update's result with a sentence for the System screen.
pub fn status() -> serde_json::Value {
    let slots = Slots::get().map(|s| {
        let state = bootstate::read_file(&s.places.bootstate).map(|x| x.0).unwrap_or_default();
        let other = s.booted.other();
        let other_version = slot::read_footer(s.places.slot(other), &s.key).map(|m| m.version.to_string());
        let last = state.last_update().map(|u| {
            serde_json::json!({
                "outcome": match u.outcome { bootstate::Outcome::Pending => "pending", bootstate::Outcome::Confirmed => "confirmed", bootstate::Outcome::Failed => "failed" },
                "slot": u.slot.name(),
                "version": u.version,
                "message": confirm::sentence(&u, s.booted, s.confirmed()),
            })
        });
        serde_json::json!({
            "board": s.board,
            "booted": s.booted.name(),
            "booted_version": crate::VERSION,
            "other": other.name(),
            "other_version": other_version,
            "confirmed": s.confirmed(),
            "next_boot": state.order().first().map(|x| x.name()),
            "last_update": last,
            "installing": s.installing(),
        })
    });
    serde_json::json!({
        "version": crate::VERSION,
        "trusts_dev_key": trusts_dev_key(),
        "slots": slots,
    })
}

/// Init mode, once the board's devices exist: when the board has `[slots]` and the kernel command line names
/// the booted slot (`rauc.slot=`), record the slots for this run and repair the boot state after a rollback.
pub fn begin_on_board(board: &crate::system::board::Board) {
    let Some(s) = &board.slots else { return };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let Some(booted) = slot::booted_from_cmdline(&cmdline) else {
        tracing::warn!("the board has slots but the kernel command line has no rauc.slot=: not started by the boot script; updates are off");
        return;
    };
    let places = slot::Places { bootstate: s.bootstate.clone().into(), a: s.a.clone().into(), b: s.b.clone().into() };
    let confirm_after = std::time::Duration::from_secs(s.confirm_after_secs.into());
    begin(Slots::new(board.name.clone(), booted, places, confirm_after));
}

/// Record this run's slots and repair the boot state after a rollback (`hearth serve --slots` and init mode).
pub fn begin(slots: Slots) {
    if Slots::set(slots)
        && let Some(s) = Slots::get()
    {
        s.start();
    }
}

/// The development public key kept in the repository (board/keys/README.md: DEVELOPMENT ONLY).
pub const DEV_PUBLIC_KEY: [u8; 32] = hex32(include_str!("../../../board/keys/dev-update.pub"));

/// The key every bundle must be signed with: `HEARTH_UPDATE_PUBKEY` at build time, else the development key.
pub const PUBLIC_KEY: [u8; 32] = match option_env!("HEARTH_UPDATE_PUBKEY") {
    Some(hex) => hex32(hex),
    None => DEV_PUBLIC_KEY,
};

/// True when this firmware accepts bundles signed with the development key (a development build).
pub fn trusts_dev_key() -> bool {
    PUBLIC_KEY == DEV_PUBLIC_KEY
}

/// 64 lowercase hex digits (a trailing newline allowed) → 32 bytes, at compile time: a malformed key fails the
/// build rather than the first update.
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64 || (b.len() == 65 && b[64] == b'\n'), "an update public key is 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("an update public key is lowercase hex"),
    }
}
