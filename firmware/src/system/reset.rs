//! Reset reasons and safe mode (issue 9): what the start of a run writes into the state.
//!
//! At every start Hearth knows two things about the run before it: the watchdog driver's boot status
//! (WDIOC_GETBOOTSTATUS, `WDIOF_CARDRESET` = "the last reboot was caused by the watchdog";
//! Documentation/watchdog/watchdog-api.rst) and the clean-stop marker in the state (`State::run`). [`start`]
//! turns them into a reason, keeps the last [`crate::state::MAX_RESETS`] reasons with times, decides safe mode
//! and sets the marker to `Running` — one pure function, one state change, one record written before any
//! subsystem starts.
//!
//! | marker found | boot status CARDRESET | died in a probe | reason      |
//! |--------------|-----------------------|-----------------|-------------|
//! | any          | yes                   | any             | Watchdog    |
//! | Starving     | no                    | any             | Watchdog    |
//! | Running      | no                    | no              | PowerLoss   |
//! | Running      | no                    | yes             | Crash       |
//! | Crashed      | no                    | any             | Crash       |
//! | Stopped      | no                    | any             | Clean       |
//!
//! "Died in a probe": the library's probe marker still named a file ([`crate::library::quarantine`]). An abort
//! (an allocation failure, `panic = "abort"` in release) or an out-of-memory kill inside a probe does not run
//! the panic hook that writes `Crashed`, so without the probe marker it would read as a power loss.
//!
//! Not every driver reports CARDRESET (softdog never does; QEMU's i6300esb loses it when QEMU exits under
//! `-no-reboot`), so the watchdog thread writes `Starving` as soon as it stops petting. If the stalled part is
//! the store writer itself that write cannot happen, and the reset reads as a power loss.
//!
//! Safe mode: when the watchdog reset the box `watchdog_resets` times within `within_minutes` minutes (the board
//! file's `[safe_mode]`), the run starts with remote access and DLNA off until the owner clears it. Times are
//! the wall clock; a board without a battery-backed clock may start in 1970, so a time before
//! [`CLOCK_FLOOR`] counts as unknown (stored as 0) and, when the clock is unknown, only an unbroken run of
//! watchdog resets (newest backwards) counts.

use crate::state::{ResetReason, Run, SafeMode, State, Time};

/// 2025-01-01T00:00:00Z. A clock before this has not been set.
pub const CLOCK_FLOOR: Time = 1_735_689_600;

/// The board's safe-mode rule (`[safe_mode]` in the board file; `hearth serve` uses [`Rule::default`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Watchdog resets that turn safe mode on, when they fall within `within_minutes`.
    pub watchdog_resets: u32,
    /// The window, in minutes, the resets are counted in.
    pub within_minutes: u32,
}

impl Default for Rule {
    fn default() -> Self {
        Rule { watchdog_resets: 3, within_minutes: 15 }
    }
}

/// What [`start`] concluded, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// Why the previous run ended; None on a new or unreadable store (there was no previous run to judge).
    pub reason: Option<ResetReason>,
    /// Safe mode was entered by this start (it may also have been on already).
    pub entered_safe_mode: bool,
}

/// Record why the previous run ended, decide safe mode, mark this run as running. `had_previous_run` is false
/// for a blank or damaged store. `died_in_probe`: the previous run left the library's probe marker behind.
/// `now` is the wall clock in Unix seconds.
pub fn start(
    state: &mut State,
    card_reset: bool,
    had_previous_run: bool,
    died_in_probe: bool,
    now: Time,
    rule: Rule,
) -> Started {
    let now = if now >= CLOCK_FLOOR { now } else { 0 };
    let reason = had_previous_run.then_some(match (card_reset, state.run) {
        (true, _) | (false, Run::Starving) => ResetReason::Watchdog,
        (false, Run::Running) if died_in_probe => ResetReason::Crash,
        (false, Run::Running) => ResetReason::PowerLoss,
        (false, Run::Crashed) => ResetReason::Crash,
        (false, Run::Stopped) => ResetReason::Clean,
    });
    if let Some(r) = reason {
        state.record_reset(r, now);
    }
    let entered = reason == Some(ResetReason::Watchdog)
        && !state.safe_mode.active
        && recent_watchdog_resets(state, now, rule.within_minutes) >= rule.watchdog_resets as usize;
    if entered {
        state.safe_mode = SafeMode { active: true, since: now };
    }
    state.run = Run::Running;
    Started { reason, entered_safe_mode: entered }
}

/// Watchdog resets within the window before `now` (0 = clock unknown: the unbroken newest run of them).
fn recent_watchdog_resets(state: &State, now: Time, within_minutes: u32) -> usize {
    if now == 0 {
        return state.resets.iter().rev().take_while(|r| r.reason == ResetReason::Watchdog).count();
    }
    let since = now.saturating_sub(within_minutes.saturating_mul(60));
    state.resets.iter().filter(|r| r.reason == ResetReason::Watchdog && r.at != 0 && r.at >= since).count()
}

/// The reason as the API names it.
pub fn name(r: ResetReason) -> &'static str {
    match r {
        ResetReason::PowerLoss => "power_loss",
        ResetReason::Watchdog => "watchdog",
        ResetReason::Clean => "clean",
        ResetReason::Crash => "crash",
    }
}

/// The reason in words, for the log.
pub fn sentence(r: ResetReason) -> &'static str {
    match r {
        ResetReason::PowerLoss => "without a clean stop (power cut, or the process was killed)",
        ResetReason::Watchdog => "the watchdog reset the board because a part of Hearth stopped responding",
        ResetReason::Clean => "cleanly (reboot, power-off or stop)",
        ResetReason::Crash => {
            "Hearth crashed (a panic, or a media file whose headers it was reading; such a file is skipped \
             until it changes, and the Libraries screen lists it); the log of that run has the details"
        }
    }
}

/// The owner read the reason and clears safe mode (`DELETE /api/v1/system/safe-mode`).
pub fn clear_safe_mode(state: &mut State) {
    state.safe_mode = SafeMode::default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResetReason::*;

    const NOW: Time = 1_790_000_000;

    fn with(marker: Run, earlier: &[(ResetReason, Time)]) -> State {
        let mut s = State::new([7; 16]);
        for &(r, at) in earlier {
            s.record_reset(r, at);
        }
        s.run = marker;
        s
    }

    #[test]
    fn the_reason_table() {
        // (marker found, CARDRESET, previous run?, died in a probe?) → reason
        let table = [
            (Run::Stopped, false, true, false, Some(Clean)),
            (Run::Running, false, true, false, Some(PowerLoss)),
            (Run::Running, false, true, true, Some(Crash)),
            (Run::Starving, false, true, false, Some(Watchdog)),
            (Run::Starving, false, true, true, Some(Watchdog)),
            (Run::Crashed, false, true, false, Some(Crash)),
            (Run::Stopped, true, true, false, Some(Watchdog)),
            (Run::Running, true, true, false, Some(Watchdog)),
            (Run::Running, true, true, true, Some(Watchdog)),
            (Run::Crashed, true, true, false, Some(Watchdog)),
            (Run::Running, false, false, false, None),
            (Run::Running, false, false, true, None),
            (Run::Stopped, true, false, false, None),
        ];
        for (marker, card, prev, probe, want) in table {
            let mut s = with(marker, &[]);
            let got = start(&mut s, card, prev, probe, NOW, Rule::default());
            assert_eq!(got.reason, want, "{marker:?} card_reset={card} previous={prev} died_in_probe={probe}");
            assert_eq!(s.run, Run::Running, "every start marks the run");
            match want {
                Some(r) => assert_eq!(s.resets.last().map(|x| (x.reason, x.at)), Some((r, NOW))),
                None => assert!(s.resets.is_empty(), "no previous run, nothing recorded"),
            }
            assert!(!s.safe_mode.active, "one reset is not enough for safe mode");
        }
    }

    #[test]
    fn keeps_the_last_eight_newest_last() {
        let mut s = with(Run::Stopped, &[]);
        for i in 0..11 {
            s.run = if i % 2 == 0 { Run::Running } else { Run::Stopped };
            start(&mut s, false, true, false, NOW + i, Rule::default());
        }
        assert_eq!(s.resets.len(), 8);
        assert_eq!(s.resets.first().unwrap().at, NOW + 3);
        assert_eq!(s.resets.last().map(|r| (r.reason, r.at)), Some((PowerLoss, NOW + 10)));
    }

    #[test]
    fn safe_mode_after_n_watchdog_resets_within_m_minutes() {
        let rule = Rule { watchdog_resets: 3, within_minutes: 15 };
        // Two earlier watchdog resets 10 and 5 minutes ago, a clean one between: the third enters safe mode.
        let mut s = with(Run::Starving, &[(Watchdog, NOW - 600), (Clean, NOW - 400), (Watchdog, NOW - 300)]);
        let got = start(&mut s, false, true, false, NOW, rule);
        assert_eq!(got, Started { reason: Some(Watchdog), entered_safe_mode: true });
        assert_eq!(s.safe_mode, SafeMode { active: true, since: NOW });
        assert!(!s.dlna_effectively_on(), "safe mode keeps DLNA off");

        // One of them too old: no safe mode.
        let mut s = with(Run::Starving, &[(Watchdog, NOW - 16 * 60), (Watchdog, NOW - 300)]);
        assert!(!start(&mut s, false, true, false, NOW, rule).entered_safe_mode);
        assert!(!s.safe_mode.active);

        // Power losses do not count.
        let mut s = with(Run::Running, &[(Watchdog, NOW - 60), (Watchdog, NOW - 30)]);
        assert!(!start(&mut s, false, true, false, NOW, rule).entered_safe_mode);

        // Safe mode stays on across clean restarts until cleared, and `since` is kept.
        let mut s = with(Run::Starving, &[(Watchdog, NOW - 60), (Watchdog, NOW - 30)]);
        start(&mut s, false, true, false, NOW, rule);
        s.run = Run::Stopped;
        let got = start(&mut s, false, true, false, NOW + 100, rule);
        assert_eq!(got, Started { reason: Some(Clean), entered_safe_mode: false });
        assert_eq!(s.safe_mode, SafeMode { active: true, since: NOW });
        clear_safe_mode(&mut s);
        assert!(!s.safe_mode.active);
    }

    #[test]
    fn an_unset_clock_counts_only_an_unbroken_run_of_watchdog_resets() {
        let rule = Rule { watchdog_resets: 3, within_minutes: 15 };
        // The board started in 1970: the time is stored as unknown (0).
        let mut s = with(Run::Starving, &[(Watchdog, 0), (Watchdog, 0)]);
        let got = start(&mut s, false, true, false, 12, rule);
        assert!(got.entered_safe_mode);
        assert_eq!(s.resets.last().map(|r| r.at), Some(0), "a time before 2025 is stored as unknown");
        let mut s = with(Run::Starving, &[(Watchdog, 0), (PowerLoss, 0), (Watchdog, 0)]);
        assert!(!start(&mut s, false, true, false, 12, rule).entered_safe_mode, "a power loss breaks the run");
    }
}
