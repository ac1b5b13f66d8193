//! `hearth serve`: the server on a host (and, called from init mode, on the board).
//!
//! Owns: the serve command line, the data folder, opening the flash store and loading the state, starting
//! the tokio runtime and the subsystems, and the clean stop (SIGINT/SIGTERM → stop accepting, flush the store).
//! Must not touch: protocol details (the http, dlna and remote rooms) or the record format (store room).

use crate::http;
use crate::state::{self, Handle, State};
use crate::store::{NorFile, Opened, Store, StoreError};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:32400";
pub const DEFAULT_FLASH_SIZE: u64 = 128 * 1024;
pub const DEFAULT_ERASE_SIZE: u32 = 4096;
pub const FLASH_FILE: &str = "flash.img";

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub flash_size: u64,
    pub erase_size: u32,
    pub format: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            data_dir: PathBuf::from("hearth-data"),
            flash_size: DEFAULT_FLASH_SIZE,
            erase_size: DEFAULT_ERASE_SIZE,
            format: false,
        }
    }
}

impl Config {
    /// Parse serve options. Errors are one line a person can act on; the caller adds the usage.
    pub fn parse(args: Vec<OsString>) -> Result<Config, String> {
        use lexopt::prelude::*;
        let mut cfg = Config::default();
        let mut p = lexopt::Parser::from_args(args);
        let e = |e: lexopt::Error| e.to_string();
        while let Some(arg) = p.next().map_err(e)? {
            match arg {
                Long("listen") => {
                    let v = p.value().map_err(e)?.string().map_err(e)?;
                    cfg.listen = v.parse().map_err(|_| format!("--listen wants an address like 0.0.0.0:32400, not {v:?}"))?;
                }
                Long("data-dir") => cfg.data_dir = p.value().map_err(e)?.into(),
                Long("flash-size") => cfg.flash_size = p.value().map_err(e)?.parse().map_err(e)?,
                Long("erase-size") => cfg.erase_size = p.value().map_err(e)?.parse().map_err(e)?,
                Long("format") => cfg.format = true,
                other => return Err(other.unexpected().to_string()),
            }
        }
        if cfg.erase_size == 0 || !cfg.erase_size.is_power_of_two() {
            return Err(format!("--erase-size must be a power of two, not {}", cfg.erase_size));
        }
        if cfg.flash_size % cfg.erase_size as u64 != 0 || cfg.flash_size < 2 * cfg.erase_size as u64 {
            return Err("--flash-size must be a multiple of --erase-size and hold at least two erase blocks".into());
        }
        if cfg.flash_size > 64 * 1024 * 1024 {
            return Err("--flash-size is at most 64 MiB".into());
        }
        Ok(cfg)
    }
}

/// Start logging once: `RUST_LOG` takes `target=level` pairs or a bare level (default info).
pub fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false))
        .with(filter)
        .try_init();
}

/// What opening the data folder produced.
pub struct Opening {
    pub handle: Handle,
    /// Neither slot held a valid record: running on defaults; the page shows it.
    pub recovered_from_damage: bool,
    /// A new, migrated or recovered state that is not yet on flash in this build's encoding.
    pub needs_write: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data folder {path} is not usable: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("the flash file {path} could not be opened: {source}")]
    Flash { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Store { path: PathBuf, source: StoreError },
    #[error("{path}: {source}")]
    State { path: PathBuf, source: state::StateError },
}

/// Check the data folder, open (or create) the flash file and load the state.
pub fn open_data(cfg: &Config) -> Result<Opening, OpenError> {
    let dir = &cfg.data_dir;
    let dir_err = |source| OpenError::DataDir { path: dir.clone(), source };
    std::fs::create_dir_all(dir).map_err(dir_err)?;
    check_writable(dir).map_err(dir_err)?;
    let path = dir.join(FLASH_FILE);
    let flash = NorFile::open_or_create(&path, cfg.flash_size, cfg.erase_size)
        .map_err(|source| OpenError::Flash { path: path.clone(), source })?;
    let store_err = |source| OpenError::Store { path: path.clone(), source };
    let (store, opened) = match Store::open(flash) {
        Err(StoreError::NotAStore) if cfg.format => {
            tracing::warn!(path = %path.display(), "--format: erasing a flash file that held no Hearth store");
            let flash = NorFile::open_or_create(&path, cfg.flash_size, cfg.erase_size)
                .map_err(|source| OpenError::Flash { path: path.clone(), source })?;
            (Store::format(flash).map_err(store_err)?, Opened::Blank)
        }
        other => other.map_err(store_err)?,
    };
    let (state, fresh, damaged) = match opened {
        Opened::Found(rec) => {
            let s = state::decode(rec.schema, &rec.payload)
                .map_err(|source| OpenError::State { path: path.clone(), source })?;
            if rec.schema != state::SCHEMA_VERSION {
                tracing::info!(from = rec.schema, to = state::SCHEMA_VERSION, "migrated the stored state");
            }
            (s, rec.schema != state::SCHEMA_VERSION, false)
        }
        Opened::Blank => (State::new(random_id()), true, false),
        Opened::Damaged => {
            tracing::error!(path = %path.display(), "no valid state record on flash; starting from defaults");
            (State::new(random_id()), true, true)
        }
    };
    let handle = Handle::start(store, state);
    Ok(Opening { handle, recovered_from_damage: damaged, needs_write: fresh })
}

fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// 16 random bytes from the kernel.
pub fn random_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).expect("kernel random");
    id
}

/// Run until SIGINT/SIGTERM. Exit status 1 with a message when the data folder or flash is unusable.
pub fn run(cfg: Config) -> ExitCode {
    init_logging();
    let opening = match open_data(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hearth: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    
    rt.block_on(serve(cfg, opening))
}

async fn serve(cfg: Config, opening: Opening) -> ExitCode {
    let handle = opening.handle.clone();
    if opening.needs_write
        && let Err(e) = handle.rewrite().await {
            eprintln!("hearth: the state could not be written to flash: {e}");
            handle.shutdown();
            return ExitCode::from(1);
        }
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hearth: cannot listen on {}: {e}", cfg.listen);
            handle.shutdown();
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().expect("local addr");
    let ctx = Arc::new(http::Ctx::new(handle.clone(), opening.recovered_from_damage, cfg.data_dir.clone()));
    let s = handle.snapshot();
    tracing::info!(addr = %local, machine = %s.machine_identifier(), claimed = s.is_claimed(), "listening");
    println!("Hearth {} is running. Set it up at {}", crate::VERSION, setup_url(local));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(http::serve(listener, ctx, stop_rx));
    tokio::spawn(http::tls::keep_certificate(handle.clone()));
    // DLNA (issue 5): follows "DLNA effectively on"; on stop it says byebye and closes its ports. It stays on the
    // interface of --listen (127.0.0.1 in tests: no SSDP leaves the host).
    let dlna = crate::dlna::spawn(handle.clone(), cfg.listen.ip(), stop_tx.subscribe());
    wait_for_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), dlna).await;
    handle.flush().await;
    tokio::task::spawn_blocking(move || handle.shutdown()).await.ok();
    tracing::info!("state flushed; bye");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

/// The URL to print: the listen address, or the first LAN address when listening on all interfaces.
pub fn setup_url(local: SocketAddr) -> String {
    let ip = if local.ip().is_unspecified() { lan_address().unwrap_or(local.ip()) } else { local.ip() };
    let host = match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    format!("http://{host}:{}/web/", local.port())
}

/// The first non-loopback IPv4 address of an interface that is up.
pub fn lan_address() -> Option<std::net::IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if !a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            let ip = sin.ip();
            if !ip.is_loopback() {
                return Some(ip.into());
            }
        }
    }
    None
}
