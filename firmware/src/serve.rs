//! `hearth serve`: the server on a host (and, called from init mode, on the board).
//!
//! Owns: the serve command line, the data folder, opening the flash store and loading the state, starting
//! the tokio runtime and the subsystems, and the clean stop (SIGINT/SIGTERM → stop accepting, flush the store).
//! Must not touch: protocol details (the http, dlna and remote rooms) or the record format (store room).

/// The data folder's permissions (the owner's alone).
pub mod data_folder;

use crate::http;
use crate::state::{self, Handle, Run, State};
use crate::system::{reset, watchdog};
use crate::store::{Flash, NorFile, Opened, Store, StoreError};
use crate::system::PowerSwitch;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `--listen` unless given: every interface, both families on one socket (`system::dual_stack`), the port
/// Plex clients look for.
pub const DEFAULT_LISTEN: &str = "[::]:32400";
/// `--flash-size` unless given: the emulated NOR flash file's size on first run.
pub const DEFAULT_FLASH_SIZE: u64 = 128 * 1024;
/// `--erase-size` unless given: the emulated flash's erase block.
pub const DEFAULT_ERASE_SIZE: u32 = 4096;
/// The emulated flash file in the data folder (its presence says the folder holds Hearth data).
pub const FLASH_FILE: &str = "flash.img";
/// Locked (flock) while a Hearth process uses the data folder.
pub const LOCK_FILE: &str = "lock";

/// The `hearth serve` options (see the usage in main.rs).
#[derive(Clone, Debug)]
pub struct Config {
    /// `--listen`: the address of the HTTP(S) port.
    pub listen: SocketAddr,
    /// `--data-dir`: where the flash file and the lock live.
    pub data_dir: PathBuf,
    /// `--flash-size`: bytes of the flash file, on first run.
    pub flash_size: u64,
    /// `--erase-size`: erase-block size of the flash file, on first run.
    pub erase_size: u32,
    /// `--format`: erase a flash file that holds no Hearth store.
    pub format: bool,
    /// Mapping methods in the order tried (`--remote-methods`).
    pub remote_methods: Vec<crate::state::MappingMethod>,
    /// How often the remote task checks that the router still holds the mapping (`--remote-check-secs`).
    pub remote_check: std::time::Duration,
    /// `--slots FILE`: run as if booted from a slot (update room; tests and hosts running a disk image).
    pub slots: Option<PathBuf>,
    /// `--acme-root FILE`: more roots the ACME task trusts for the CA's HTTPS (a test CA such as Pebble).
    pub acme_root: Option<PathBuf>,
    /// `--watch-state-batch-secs`: the watch-state file is written at most this often (library::viewing).
    pub watch_state_batch: std::time::Duration,
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
            slots: None,
            acme_root: None,
            watch_state_batch: crate::library::viewing::batch(),
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
        // Each option once: a second --listen (or --data-dir...) is a mistake to report, not a silent override.
        let mut given: Vec<String> = Vec::new();
        while let Some(arg) = p.next().map_err(e)? {
            if let Long(name) = arg {
                if given.iter().any(|g| g == name) {
                    return Err(format!("--{name} is given twice; give it once"));
                }
                given.push(name.to_string());
            }
            match arg {
                Long("listen") => {
                    let v = p.value().map_err(e)?.string().map_err(e)?;
                    cfg.listen = v.parse().map_err(|_| format!("--listen wants an address like [::]:32400, 0.0.0.0:32400 or [2001:db8::5]:32400, not {v:?}"))?;
                }
                Long("data-dir") => cfg.data_dir = p.value().map_err(e)?.into(),
                Long("flash-size") => cfg.flash_size = p.value().map_err(e)?.parse().map_err(e)?,
                Long("erase-size") => cfg.erase_size = p.value().map_err(e)?.parse().map_err(e)?,
                Long("format") => cfg.format = true,
                Long("slots") => cfg.slots = Some(p.value().map_err(e)?.into()),
                Long("acme-root") => cfg.acme_root = Some(p.value().map_err(e)?.into()),
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
                Long("watch-state-batch-secs") => {
                    let v: u64 = p.value().map_err(e)?.parse().map_err(e)?;
                    if !(1..=3600).contains(&v) {
                        return Err("--watch-state-batch-secs is between 1 and 3600".into());
                    }
                    cfg.watch_state_batch = std::time::Duration::from_secs(v);
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

/// What opening the data folder produced.
pub struct Opening {
    /// The state handle of the opened store.
    pub handle: Handle,
    /// Neither slot held a valid record: running on defaults; the page shows it.
    pub recovered_from_damage: bool,
    /// A new, migrated or recovered state that is not yet on flash in this build's encoding.
    pub needs_write: bool,
    /// The store held a record: there was a previous run whose end can be judged (reset reasons).
    pub previous_run: bool,
    /// Held while the data folder is in use: `hearth recover` and a second server cannot open it meanwhile.
    /// The data folder's lock (host mode); None in init mode, where Hearth is the only process.
    pub lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

/// Why the data folder, the flash or the state could not be opened (one line for the console).
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
    data_folder::make_private(dir).map_err(dir_err)?;
    check_writable(dir).map_err(dir_err)?;
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(data_folder::FILE_MODE)
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
    let (state, fresh, damaged, found) = match opened {
        Opened::Found(rec) => {
            let s = state::decode(state::handle::read_schema(rec.schema), &rec.payload)
                .map_err(|source| OpenError::State { path: path.clone(), source })?;
            let current = state::handle::write_schema();
            if rec.schema != current {
                tracing::info!(from = rec.schema, to = current, "migrated the stored state");
            }
            (s, rec.schema != current, false, true)
        }
        Opened::Blank => (State::new(crate::system::random::id()), true, false, false),
        Opened::Damaged => {
            tracing::error!(path = %path.display(), "no valid state record on flash; starting from defaults");
            (State::new(crate::system::random::id()), true, true, false)
        }
    };
    let handle = Handle::start(store, state);
    Ok(Opening { handle, recovered_from_damage: damaged, needs_write: fresh, previous_run: found, lock: None })
}

fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(".write-test");
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(data_folder::FILE_MODE).open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Run until SIGINT/SIGTERM. Exit status 1 with a message when the data folder or flash is unusable.
pub fn run(cfg: Config) -> ExitCode {
    crate::system::logging::init();
    if let Some(path) = &cfg.slots {
        match crate::update::Slots::from_host_file(path) {
            Ok(s) => crate::update::begin(s),
            Err(e) => {
                eprintln!("hearth: {e}");
                return ExitCode::from(2);
            }
        }
    }
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
    crate::library::viewing::set_batch(cfg.watch_state_batch);
    let remote = crate::remote::Config { methods: cfg.remote_methods, check_every: cfg.remote_check, acme_root: cfg.acme_root, ..Default::default() };
    serve_until(cfg.listen, cfg.data_dir, opening, None, remote, Supervision::host(), crate::system::logging::wait_for_signal()).await
}

/// How long a heartbeat may stay quiet on a host without systemd's `WATCHDOG_USEC` before it is reported
/// (half of this; nothing resets a host, the log and the System screen say which part stopped).
pub const HOST_WATCHDOG: Duration = Duration::from_secs(20);

/// The watchdog side of a run (issue 9): what the petting thread pets, its timeout, what the driver's boot
/// status said about the last reset, and the safe-mode rule. Init mode fills it from the board file;
/// `hearth serve` uses [`Supervision::host`].
pub struct Supervision {
    /// What the petting thread pets: the watchdog device and/or systemd.
    pub pets: watchdog::Pets,
    /// The watchdog's timeout as the driver (or systemd) has it; heartbeats are stale after half of it.
    pub timeout: Duration,
    /// WDIOC_GETBOOTSTATUS said WDIOF_CARDRESET.
    pub card_reset: bool,
    /// The safe-mode rule (the board file's `[safe_mode]`).
    pub rule: reset::Rule,
    /// Test images only (feature `test-hooks`): the runtime canary stops this many seconds after start.
    pub stall_after: Option<u64>,
    /// Test images only: the runtime canary panics this many seconds after start (the crash marker's proof).
    pub panic_after: Option<u64>,
    /// Print boot milestones on the console (init mode).
    pub milestones: bool,
}

impl Supervision {
    /// `hearth serve` on a host: no device; systemd's watchdog when `NOTIFY_SOCKET` and `WATCHDOG_USEC` say so.
    pub fn host() -> Supervision {
        let notify = watchdog::Notify::from_env();
        let timeout = notify.as_ref().and_then(|n| n.watchdog).unwrap_or(HOST_WATCHDOG);
        Supervision {
            pets: watchdog::Pets { device: Err("`hearth serve` on a host does not use /dev/watchdog".into()), notify },
            timeout,
            card_reset: false,
            rule: reset::Rule::default(),
            stall_after: None,
            panic_after: None,
            milestones: false,
        }
    }
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
    sup: Supervision,
    stop: impl std::future::Future<Output = ()>,
) -> ExitCode {
    // R-F2: the fd limit is the number of connections the server can hold; take all the system allows.
    crate::system::fds::raise_limit();
    let handle = opening.handle.clone();
    crate::update::confirm::hold_migration(&handle, opening.previous_run && opening.needs_write);
    if let Err(code) = start_run(&handle, &data_dir, opening.previous_run, &sup).await {
        return code;
    }
    crash_marker(&handle);
    crate::auth::recover::apply_file(&handle, &data_dir).await;
    let listener = match crate::system::dual_stack::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hearth: cannot listen on {listen}: {e}");
            handle.shutdown();
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().expect("local addr");
    let mut watch = Watch::start(&handle, sup, crate::system::dual_stack::own_loopback(local));
    let mut ctx = http::Ctx::new(handle.clone(), opening.recovered_from_damage, data_dir);
    ctx.power = power;
    ctx.library.set_heartbeat(watch.watcher.clone());
    let serving = Serving::start(Arc::new(ctx), listener, listen, remote, &watch);
    if let Some(n) = &watch.notify {
        n.send("READY=1");
    }
    stop.await;
    tracing::info!("stopping");
    if let Some(n) = &watch.notify {
        n.send("STOPPING=1");
    }
    watch.rest_parts().await;
    serving.stop().await;
    finish_run(handle, watch).await;
    tracing::info!("state flushed; bye");
    ExitCode::SUCCESS
}

/// One record before anything starts: why the previous run ended, safe mode, the run marker (and the new,
/// migrated or recovered state in this build's encoding). Exit status 1 when it cannot be written.
async fn start_run(handle: &Handle, data_dir: &Path, previous: bool, sup: &Supervision) -> Result<(), ExitCode> {
    let (card_reset, rule) = (sup.card_reset, sup.rule);
    // A run that died inside a media probe left the probe marker: the file is quarantined, the reason is crash.
    let died_in_probe = crate::library::quarantine::take_leftover(data_dir, handle.snapshot().run == Run::Stopped);
    let now = crate::system::clock::now();
    let started = handle
        .update(|s| Ok::<_, core::convert::Infallible>(reset::start(s, card_reset, previous, died_in_probe, now, rule)))
        .await;
    match started {
        Ok(st) => {
            if let Some(reason) = st.reason {
                tracing::info!(reason = %reset::name(reason), "the previous run ended: {}", reset::sentence(reason));
            }
            if st.entered_safe_mode {
                tracing::warn!(resets = rule.watchdog_resets, minutes = rule.within_minutes,
                    "safe mode: too many watchdog resets; remote access and DLNA stay off until the owner clears it");
            } else if handle.snapshot().safe_mode.active {
                tracing::warn!("safe mode is still on; remote access and DLNA stay off until the owner clears it");
            }
            Ok(())
        }
        Err(e) => {
            eprintln!("hearth: the state could not be written to flash: {e}");
            handle.shutdown();
            Err(ExitCode::from(1))
        }
    }
}

/// The watchdog side of a run (DESIGN.md "Runtime shape"): a heartbeat per part, the thread that pets while
/// every heartbeat is fresh, the runtime canary and the listener probe.
struct Watch {
    listener: watchdog::Beat,
    store: watchdog::Beat,
    remote: watchdog::Beat,
    dlna: watchdog::Beat,
    watcher: watchdog::Beat,
    workers: Vec<(tokio::task::JoinHandle<()>, watchdog::Beat)>,
    notify: Option<watchdog::Notify>,
    petter: watchdog::Petter,
    canary: tokio::task::JoinHandle<()>,
    probe: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(handle: &Handle, sup: Supervision, probe_at: SocketAddr) -> Watch {
        let beats = watchdog::Heartbeats::default();
        let canary = beats.register("runtime canary");
        let listener = beats.register("listener");
        let store = beats.register("store writer");
        let remote = beats.register("remote access");
        let dlna = beats.register("DLNA");
        let watcher = beats.register("library watcher");
        let workers = crate::system::workers::Workers::get().beat(&beats);
        {
            let b = store.clone();
            handle.set_heartbeat(move || b.bump());
        }
        let notify = sup.pets.notify.clone();
        // Issue 19: the start is confirmed once every heartbeat stayed fresh for the board's confirm time.
        tokio::spawn(crate::update::confirm::watch(beats.clone(), sup.timeout / 2, handle.clone()));
        let marker = handle.clone();
        let petter = watchdog::spawn(sup.pets, beats, sup.timeout, move |starving| {
            // Not waiting: the stalled part may be the store writer. See system::reset.
            let _ = marker.update_detached(|s| s.run = if starving { Run::Starving } else { Run::Running });
        });
        let canary = tokio::spawn(runtime_canary(canary, sup.stall_after, sup.panic_after, sup.milestones));
        let period = (sup.timeout / 4).max(Duration::from_millis(500));
        let probe = tokio::spawn(listener_probe(probe_at, listener.clone(), period, sup.milestones));
        Watch { listener, store, remote, dlna, watcher, workers, notify, petter, canary, probe }
    }

    /// The parts stop now: their beats rest so the watchdog keeps petting while the stop runs its course (the
    /// runtime canary keeps beating; a stop that hangs in the runtime still ends in a reset).
    async fn rest_parts(&mut self) {
        self.probe.abort();
        crate::system::workers::Workers::rest(std::mem::take(&mut self.workers)).await;
        for b in [&self.listener, &self.remote, &self.dlna, &self.watcher] {
            b.rest();
        }
    }
}

/// The serving parts of a run: the HTTP server, remote access and DLNA, and the switch that stops them.
struct Serving {
    ctx: Arc<http::Ctx>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    remote: tokio::task::JoinHandle<()>,
    dlna: tokio::task::JoinHandle<()>,
}

impl Serving {
    fn start(ctx: Arc<http::Ctx>, listener: tokio::net::TcpListener, listen: SocketAddr, remote: crate::remote::Config, watch: &Watch) -> Serving {
        let handle = ctx.state.clone();
        crate::auth::spawn_duties(ctx.auth.clone(), handle.clone());
        let local = listener.local_addr().expect("local addr");
        let s = handle.snapshot();
        tracing::info!(addr = %local, machine = %s.machine_identifier(), claimed = s.is_claimed(), "listening");
        println!("Hearth {} is running. Set it up at {}", crate::VERSION, http::web::setup_url(local));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(http::serve(listener, ctx.clone(), stop_rx));
        tokio::spawn(http::tls::keep_certificate(handle.clone()));
        let remote_cfg = crate::remote::Config { internal_port: local.port(), ..remote };
        let remote = tokio::spawn(crate::remote::run(handle.clone(), ctx.remote.clone(), remote_cfg, stop.subscribe(), watch.remote.clone()));
        // DLNA (issue 5): follows "DLNA effectively on"; on stop it says byebye and closes its ports. It stays on the
        // interface of --listen (127.0.0.1 in tests: no SSDP leaves the host). It shows the library catalog of `ctx`.
        let dlna = crate::dlna::spawn(handle, ctx.library.clone(), listen.ip(), ctx.streams.clone(), stop.subscribe(), watch.dlna.clone());
        Serving { ctx, stop, server, remote, dlna }
    }

    /// Stop accepting and wait (5 s each) for the server, remote access (which deletes its mapping from the
    /// router before it returns) and DLNA; then write the devices' last-seen times.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.remote).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.dlna).await;
        self.ctx.auth.flush_last_seen(&self.ctx.state).await;
        // The last batch of watch state (library::viewing): written now, not lost with the process.
        let library = self.ctx.library.clone();
        let _ = tokio::task::spawn_blocking(move || library.save_viewings()).await;
    }
}

/// The clean-stop marker (the next start reads "clean"), the store flushed and closed, the watchdog closed.
async fn finish_run(handle: Handle, watch: Watch) {
    if let Err(e) = handle.update(|s| {
        s.run = Run::Stopped;
        Ok::<_, core::convert::Infallible>(())
    }).await {
        tracing::error!(error = %e, "the clean-stop marker could not be written; the next start will call this a power loss");
    }
    handle.flush().await;
    watch.store.rest();
    tokio::task::spawn_blocking(move || handle.shutdown()).await.ok();
    watch.canary.abort();
    // The thread writes the magic close, so the watchdog does not reset the board while it reboots.
    let petter = watch.petter;
    tokio::task::spawn_blocking(move || petter.stop()).await.ok();
}

/// Bumps every second while the runtime schedules tasks. `stall_after` (test images only) stops it;
/// `panic_after` (test images only) panics.
async fn runtime_canary(beat: watchdog::Beat, stall_after: Option<u64>, panic_after: Option<u64>, milestones: bool) {
    let (stall_after, panic_after) = if cfg!(feature = "test-hooks") { (stall_after, panic_after) } else { (None, None) };
    let started = std::time::Instant::now();
    loop {
        if panic_after.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            panic!("test hook: panic as asked by hearth.test.panic_after");
        }
        if stall_after.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            if milestones {
                crate::system::boot::milestone("test hook: runtime canary stalled");
            }
            tracing::warn!("test hook: runtime canary stalled");
            std::future::pending::<()>().await;
        }
        beat.bump();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The listener's heartbeat: a request to our own `/health` over loopback, as a client would make it.
/// The first answer is the "serving" boot milestone.
async fn listener_probe(addr: SocketAddr, beat: watchdog::Beat, period: Duration, milestones: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = true;
    loop {
        let probe = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).await?;
            Ok::<bool, std::io::Error>(&head[9..12] == b"200")
        };
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
            beat.bump();
            if first {
                if milestones {
                    crate::system::boot::milestone("serving");
                }
                first = false;
            }
        }
        tokio::time::sleep(if first { Duration::from_millis(10) } else { period }).await;
    }
}

/// The state a panic marks as crashed (the newest `serve_until` of this process).
static CRASH_MARK: std::sync::Mutex<Option<Handle>> = std::sync::Mutex::new(None);

/// Install (once per process) a panic hook that writes the `Crashed` marker before the process goes down,
/// waiting at most 2 s for the store writer, so the next start names the reason "crash".
fn crash_marker(handle: &Handle) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    *CRASH_MARK.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let Some(h) = CRASH_MARK.try_lock().ok().and_then(|g| g.clone()) else { return };
            if let Some(mut written) = h.update_detached(|s| s.run = Run::Crashed) {
                let until = std::time::Instant::now() + Duration::from_secs(2);
                while std::time::Instant::now() < until {
                    match written.try_recv() {
                        Err(tokio::sync::oneshot::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(10)),
                        _ => break,
                    }
                }
            }
        }));
    });
}
