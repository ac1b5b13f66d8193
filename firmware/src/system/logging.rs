//! Logging and the stop signals of a process, shared by every command (`serve`, `init`, `recover`,
//! `reflector`).
//!
//! Owns: the one tracing subscriber of the process ([`Log`]): the `RUST_LOG` filter ([`Filter`]), the line each
//! event becomes, written to stderr and kept in the recent log ([`super::journal`]). Spans are not shown (the
//! code base logs events only). A line, as tracing-subscriber's `fmt` printed it before (issue 24: our own
//! subscriber is ~35 KB smaller than its registry, layers and ANSI crate):
//!
//! ```text
//! 2026-12-05T01:18:01.123456Z  WARN sign-in refused peer="192.0.2.7" attempts=3
//! └ UTC, RFC 3339, µs         └ level, right-aligned to 5   └ message, then each field as name=value
//! ```
//!
//! String fields are quoted (Debug), `%field` ones shown as Display. ESC in a message is written as `\x1b`, so
//! a logged name cannot drive the terminal. With `ansi` the console line colours the level and dims the time;
//! the journal never gets colour codes.

use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// Start logging once: `RUST_LOG` takes `target=level` pairs or a bare level (default info).
pub fn init() {
    init_to(true)
}

/// As [`init`]; `ansi: false` for a serial console that shows escape codes as text (init mode).
/// Besides stderr, every event that passes the filter is kept in the recent log ([`super::journal`]) for the
/// System screen.
pub fn init_to(ansi: bool) {
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| Filter::parse(&v)).unwrap_or_default();
    let _ = tracing::subscriber::set_global_default(Log { filter, ansi, stderr: true, journal: &super::journal::RECENT });
}

/// Which events are logged: `RUST_LOG` as tracing-subscriber's `Targets` read it, a comma-separated list of
/// `target=level` (the longest target that is a prefix of the event's target wins), `target` (all levels) and
/// a bare `level` for every other target. Levels: off, error, warn, info, debug, trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    targets: Vec<(String, LevelFilter)>,
}

impl Default for Filter {
    /// Info for everything.
    fn default() -> Filter {
        Filter { default: LevelFilter::INFO, targets: Vec::new() }
    }
}

impl Filter {
    /// `None` when any part is not understood (the caller then logs at info, as before).
    pub fn parse(spec: &str) -> Option<Filter> {
        let mut f = Filter { default: LevelFilter::OFF, targets: Vec::new() };
        let mut any_default = false;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((target, level)) => f.targets.push((target.trim().to_string(), level.trim().parse().ok()?)),
                None => match part.parse::<LevelFilter>() {
                    Ok(level) => {
                        f.default = level;
                        any_default = true;
                    }
                    // A bare target: all its levels.
                    Err(_) => f.targets.push((part.to_string(), LevelFilter::TRACE)),
                },
            }
        }
        if !any_default && f.targets.is_empty() {
            return None;
        }
        Some(f)
    }

    /// Whether an event of `level` from `target` is logged.
    pub fn allows(&self, target: &str, level: &Level) -> bool {
        let by_target = self.targets.iter().filter(|(t, _)| target.starts_with(t.as_str())).max_by_key(|(t, _)| t.len());
        *level <= by_target.map_or(self.default, |(_, l)| *l)
    }

    /// The most verbose level any target gets.
    fn max(&self) -> LevelFilter {
        self.targets.iter().map(|(_, l)| *l).fold(self.default, LevelFilter::max)
    }
}

/// The process's subscriber: events that pass the filter go to stderr (when `stderr`) and `journal`.
pub struct Log {
    pub filter: Filter,
    /// Colour the console line.
    pub ansi: bool,
    pub stderr: bool,
    pub journal: &'static super::journal::Journal,
}

impl Subscriber for Log {
    fn register_callsite(&self, m: &'static Metadata<'static>) -> Interest {
        if self.enabled(m) { Interest::always() } else { Interest::never() }
    }

    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.filter.allows(m.target(), m.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max())
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let level = *event.metadata().level();
        let mut text = Line(String::new());
        event.record(&mut text);
        let time = rfc3339_micros(now);
        if self.stderr {
            let line = if self.ansi {
                let colour = match level {
                    Level::ERROR => "31",
                    Level::WARN => "33",
                    Level::INFO => "32",
                    Level::DEBUG => "34",
                    Level::TRACE => "35",
                };
                format!("\x1b[2m{time}\x1b[0m \x1b[{colour}m{:>5}\x1b[0m {}\n", level.as_str(), text.0)
            } else {
                format!("{time} {:>5} {}\n", level.as_str(), text.0)
            };
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        self.journal.push(&format!("{time} {:>5} {}", level.as_str(), text.0));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// One event's message and fields, as the module doc draws them.
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let start = self.0.len();
        let _ = match field.name() {
            "message" => write!(self.0, "{value:?}"),
            name => write!(self.0, "{}={value:?}", name.strip_prefix("r#").unwrap_or(name)),
        };
        if self.0[start..].contains('\x1b') {
            let escaped = self.0[start..].replace('\x1b', "\\x1b");
            self.0.truncate(start);
            self.0.push_str(&escaped);
        }
    }
}

/// `2026-12-05T01:18:01.123456Z` for a time since the Unix epoch.
fn rfc3339_micros(t: std::time::Duration) -> String {
    let secs = t.as_secs() as i64;
    let (y, mo, d) = crate::wire::calendar::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z", s / 3600, s / 60 % 60, s % 60, t.subsec_micros())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when the future is first
/// polled: a stop sent the moment the setup URL is printed (before the main task reaches its `.await`) is a clean
/// stop, not the default action's kill.
pub fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_is_read_as_targets_with_a_default() {
        let f = Filter::parse("warn").unwrap();
        assert!(f.allows("hearth::http", &Level::WARN) && !f.allows("hearth::http", &Level::INFO));
        let f = Filter::parse("hearth=debug,info").unwrap();
        assert!(f.allows("hearth::http::conn", &Level::DEBUG));
        assert!(!f.allows("hearth::http::conn", &Level::TRACE));
        assert!(f.allows("rustls", &Level::INFO) && !f.allows("rustls", &Level::DEBUG));
        let f = Filter::parse("hearth=trace,hearth::dlna=off").unwrap();
        assert!(!f.allows("hearth::dlna::ssdp", &Level::ERROR), "the longest matching target wins");
        assert!(f.allows("hearth::http", &Level::TRACE));
        assert!(!f.allows("tokio", &Level::ERROR), "no bare level: other targets are off");
        let f = Filter::parse("hearth").unwrap();
        assert!(f.allows("hearth::x", &Level::TRACE));
        assert_eq!(Filter::parse("hearth=loud"), None, "not understood: the caller logs at info");
        assert_eq!(Filter::parse(""), None);
        assert!(Filter::default().allows("anything", &Level::INFO) && !Filter::default().allows("x", &Level::DEBUG));
        assert_eq!(Filter::parse("hearth=debug,warn").unwrap().max(), LevelFilter::DEBUG);
    }

    #[test]
    fn lines_carry_time_level_message_and_fields_and_no_escape_codes() {
        static J: super::super::journal::Journal = super::super::journal::Journal::new(10);
        let log = Log { filter: Filter::parse("debug").unwrap(), ansi: false, stderr: false, journal: &J };
        tracing::subscriber::with_default(log, || {
            tracing::warn!(peer = "192.0.2.7", attempts = 3, "sign-in refused");
            tracing::info!(addr = %std::net::Ipv4Addr::new(10, 0, 2, 15), "LAN configured");
            tracing::trace!("filtered out");
            tracing::info!(name = "\x1b[2Jevil", "named \x1b[31m");
        });
        let lines = J.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let (time, rest) = lines[0].split_at(27);
        assert!(time.len() == 27 && time.starts_with("20") && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert_eq!(rest, "  WARN sign-in refused peer=\"192.0.2.7\" attempts=3");
        assert!(lines[1].ends_with("  INFO LAN configured addr=10.0.2.15"), "{lines:?}");
        assert!(!lines[2].contains('\x1b') && lines[2].contains("named \\x1b[31m"), "{lines:?}");
    }

    #[test]
    fn times_are_utc_rfc3339_with_microseconds() {
        let t = std::time::Duration::new(1_796_433_481, 123_456_789);
        assert_eq!(rfc3339_micros(t), "2026-12-05T01:18:01.123456Z");
        assert_eq!(rfc3339_micros(std::time::Duration::ZERO), "1970-01-01T00:00:00.000000Z");
    }
}
