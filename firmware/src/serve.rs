//! `hearth serve`: the server on a host (and, called from init mode, on the board).
//!
//! Owns: the serve command line, the data folder, opening the flash store and loading the state, starting
//! the tokio runtime and the subsystems, and the clean stop (SIGINT/SIGTERM → stop accepting, flush the store).
//! Must not touch: protocol details (the http, dlna and remote rooms) or the record format (store room).

use crate::http;
use crate::state::{self, Handle, State};
use crate::store::{Flash, NorFile, Opened, Store, StoreError};
use crate::system::PowerSwitch;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:32400";
pub const DEFAULT_FLASH_SIZE: u64 = 128 * 1024;
pub const DEFAULT_ERASE_SIZE: u32 = 4096;
pub const FLASH_FILE: &str = "flash.img";
/// Locked (flock) while a Hearth process uses the data folder.
pub const LOCK_FILE: &str = "lock";

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub flash_size: u64,
    pub erase_size: u32,
    pub format: bool,
    /// Mapping methods in the order tried (`--remote-methods`).
    pub remote_methods: Vec<crate::state::MappingMethod>,
    /// How often the remote task checks that the router still holds the mapping (`--remote-check-secs`).
    pub remote_check: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.parse().unwrap(),
            data_dir: PathBuf::from("hearth-data"),
            flash_size: DEFAULT_FLASH_SIZE,
            erase_size: DEFAULT_ERASE_SIZE,
            format: false,
            remote_methods: crate::remote::mapping::ORDER.to_vec(),
            remote_check: std::time::Duration::from_secs(60),
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
                Long("remote-methods") => {
                    let v = p.value().map_err(e)?.string().map_err(e)?;
                    cfg.remote_methods = crate::remote::mapping::parse_methods(&v)?;
                }
                Long("remote-check-secs") => {
                    let v: u64 = p.value().map_err(e)?.parse().map_err(e)?;
                    if !(1..=3600).contains(&v) {
                        return Err("--remote-check-secs is between 1 and 3600".into());
                    }
                    cfg.remote_check = std::time::Duration::from_secs(v);
                }
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
    init_logging_to(true)
}

/// As [`init_logging`]; `ansi: false` for a serial console that shows escape codes as text (init mode).
/// Besides stderr, every event that passes the filter is kept in the recent log (system::journal) for the
/// System screen.
pub fn init_logging_to(ansi: bool) {
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
                .with_writer(|| crate::system::journal::RECENT.writer())
                .with_target(false)
                .with_ansi(false),
        )
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
    /// Held while the data folder is in use: `hearth recover` and a second server cannot open it meanwhile.
    /// The data folder's lock (host mode); None in init mode, where Hearth is the only process.
    pub lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the data folder {path} is in use by a running Hearth; stop it first (or use the recovery file)")]
    InUse { path: PathBuf },
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
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(dir_err)?;
    let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| OpenError::InUse { path: dir.clone() })?;
    let path = dir.join(FLASH_FILE);
    let mut opening = open_state(&path, || NorFile::open_or_create(&path, cfg.flash_size, cfg.erase_size), cfg.format)?;
    opening.lock = Some(lock);
    Ok(opening)
}

/// Open the store on a flash backend and load the state. `open` is called again when `format` erases a flash
/// that held no Hearth store; `path` names the backend in messages. Init mode passes the board's device here.
pub fn open_state<F: Flash + 'static>(
    path: &Path,
    open: impl Fn() -> std::io::Result<F>,
    format: bool,
) -> Result<Opening, OpenError> {
    let path = path.to_path_buf();
    let flash = open().map_err(|source| OpenError::Flash { path: path.clone(), source })?;
    let store_err = |source| OpenError::Store { path: path.clone(), source };
    let (store, opened) = match Store::open(flash) {
        Err(StoreError::NotAStore) if format => {
            tracing::warn!(path = %path.display(), "--format: erasing a flash file that held no Hearth store");
            let flash = open().map_err(|source| OpenError::Flash { path: path.clone(), source })?;
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
    Ok(Opening { handle, recovered_from_damage: damaged, needs_write: fresh, lock: None })
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
    let remote = crate::remote::Config { methods: cfg.remote_methods, check_every: cfg.remote_check, ..Default::default() };
    serve_until(cfg.listen, cfg.data_dir, opening, None, remote, wait_for_signal()).await
}

/// Serve on `listen` until `stop` resolves, then stop accepting and flush the store. `power` lets the API ask
/// for a reboot (init mode on a board); `None` on a host, where the reboot route answers that it cannot.
/// Exit status 1 with a message when the state cannot be written or the address cannot be bound.
pub async fn serve_until(
    listen: SocketAddr,
    data_dir: PathBuf,
    opening: Opening,
    power: Option<PowerSwitch>,
    remote: crate::remote::Config,
    stop: impl std::future::Future<Output = ()>,
) -> ExitCode {
    let handle = opening.handle.clone();
    if opening.needs_write
        && let Err(e) = handle.rewrite().await
    {
        eprintln!("hearth: the state could not be written to flash: {e}");
        handle.shutdown();
        return ExitCode::from(1);
    }
    crate::auth::recover::apply_file(&handle, &data_dir).await;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hearth: cannot listen on {listen}: {e}");
            handle.shutdown();
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().expect("local addr");
    let mut ctx = http::Ctx::new(handle.clone(), opening.recovered_from_damage, data_dir);
    ctx.power = power;
    let ctx = Arc::new(ctx);
    crate::auth::spawn_duties(ctx.auth.clone(), handle.clone());
    let s = handle.snapshot();
    tracing::info!(addr = %local, machine = %s.machine_identifier(), claimed = s.is_claimed(), "listening");
    println!("Hearth {} is running. Set it up at {}", crate::VERSION, setup_url(local));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(http::serve(listener, ctx.clone(), stop_rx));
    tokio::spawn(http::tls::keep_certificate(handle.clone()));
    let remote_cfg = crate::remote::Config { internal_port: local.port(), ..remote };
    let remote = tokio::spawn(crate::remote::run(handle.clone(), ctx.remote.clone(), remote_cfg, stop_tx.subscribe()));
    // DLNA (issue 5): follows "DLNA effectively on"; on stop it says byebye and closes its ports. It stays on the
    // interface of --listen (127.0.0.1 in tests: no SSDP leaves the host). It shows the library catalog of `ctx`.
    let dlna = crate::dlna::spawn(handle.clone(), ctx.library.clone(), listen.ip(), ctx.streams.egress.clone(), stop_tx.subscribe());
    stop.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    // The remote task deletes its mapping from the router before it returns.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), remote).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), dlna).await;
    ctx.auth.flush_last_seen(&handle).await;
    handle.flush().await;
    tokio::task::spawn_blocking(move || handle.shutdown()).await.ok();
    tracing::info!("state flushed; bye");
    ExitCode::SUCCESS
}

pub async fn wait_for_signal() {
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
