//! Logging and the stop signals of a process, shared by every command (`serve`, `init`, `recover`,
//! `reflector`).

/// Start logging once: `RUST_LOG` takes `target=level` pairs or a bare level (default info).
pub fn init() {
    init_to(true)
}

/// As [`init`]; `ansi: false` for a serial console that shows escape codes as text (init mode).
/// Besides stderr, every event that passes the filter is kept in the recent log ([`super::journal`]) for the
/// System screen.
pub fn init_to(ansi: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).with_ansi(ansi))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(|| super::journal::RECENT.writer())
                .with_target(false)
                .with_ansi(false),
        )
        .with(filter)
        .try_init();
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
