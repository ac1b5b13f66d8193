//! Opening a media file for a client: the one door every media body goes through (the fast path, the copy
//! path and DLNA's `/res/`).
//!
//! A file is served only when, at the moment it is opened, it is a regular file inside its library folder,
//! reached without a symlink that leaves the folder (A-F9: the scan checked once, a link swapped in afterwards
//! must not lead to the flash file). Links that stay inside the folder are followed, as the scanner follows
//! them ([`crate::library::scan`]).
//!
//! - openat2(2) with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` relative to the folder (Linux 5.6+): the
//!   kernel refuses any step out of it, `..` and absolute links included.
//! - Where openat2 is missing (`ENOSYS`, or a seccomp filter's `EPERM`), or refuses an absolute link that may
//!   still land inside the folder (`EXDEV`; the scanner allows those), the path is resolved here: canonicalised,
//!   checked to lie under the canonical folder, then opened from the folder one component at a time with
//!   `O_NOFOLLOW`, so a link swapped in between the check and the open fails (`ELOOP`/`ENOTDIR`) instead of
//!   being followed.
//!
//! The open is `O_NONBLOCK` (a FIFO without a writer returns at once instead of blocking), then fstat(2) refuses
//! anything but a regular file, then `O_NONBLOCK` is cleared. It runs on a thread of its own, never on a
//! connection worker (R-F4): a sleeping disk or a hung network mount stalls only that thread, the request
//! gets 503 after [`DEADLINE`], and at most [`MAX_WAITING`] such threads wait at once (more requests are
//! refused at once rather than piling up threads on a mount that never answers).

use super::Refused;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// How long a request waits for its file to open: long enough for a disk to spin up, short enough that a
/// player hears why before its own timeout.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Opens that may be waiting on a filesystem at the same time, over the whole process.
pub const MAX_WAITING: usize = 32;

/// A media file open for reading, with what fstat(2) said about it.
#[derive(Debug)]
pub struct MediaFile {
    /// The open file (O_RDONLY, resolved beneath the library folder).
    pub file: File,
    /// fstat(2) of the open file: size, times, inode for the ETag.
    pub meta: Metadata,
}

/// Why a media file is not served. `Display` is the sentence for the client; [`Refusal::status`] its status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("That file is gone from its folder; refresh the library.")]
    Gone,
    /// A link out of the library folder, or no library folder holds the path any more.
    #[error("That file is no longer inside its library folder (it links elsewhere), so it is not served.")]
    Outside,
    /// A FIFO, socket, device or folder where the scan found a file.
    #[error("That file is no longer a regular file (a pipe, a device or a folder), so it is not served.")]
    NotRegular,
    #[error("That file could not be opened ({0}); check its permissions.")]
    Unreadable(Errno),
    #[error("The media folder did not answer within {} s (a disk spinning up, or a network share that hangs); try again shortly.", DEADLINE.as_secs())]
    TimedOut,
    #[error("Too many media files are waiting on a folder that does not answer; try again shortly.")]
    Busy,
}

impl Refusal {
    /// 404 for a file that is not (or no longer) servable, 503 when the folder did not answer in time.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::TimedOut | Refusal::Busy => 503,
            _ => 404,
        }
    }

    fn from_errno(e: Errno) -> Refusal {
        match e {
            Errno::ENOENT | Errno::ENOTDIR => Refusal::Gone,
            Errno::ELOOP | Errno::EXDEV => Refusal::Outside,
            Errno::ENXIO | Errno::ENODEV | Errno::EISDIR => Refusal::NotRegular,
            e => Refusal::Unreadable(e),
        }
    }
}

impl From<&Refusal> for Refused {
    /// The answer to a part request whose file was refused (503 asks to come back in a few seconds).
    fn from(r: &Refusal) -> Refused {
        let headers = if r.status() == 503 { vec![("Retry-After", "5".into())] } else { Vec::new() };
        Refused { status: r.status(), headers, message: r.to_string() }
    }
}

/// Open `path`, a file the scan found under the library folder `root`, for a client: off the calling
/// worker, within [`DEADLINE`], only as a regular file inside `root` (see the module doc). `root` is None
/// when no folder of the item's library holds the path any more (`library::root_of`).
pub async fn open_media(root: Option<PathBuf>, path: PathBuf) -> Result<MediaFile, Refusal> {
    let Some(root) = root else {
        return Err(Refusal::Outside);
    };
    let shown = path.clone();
    let opened = OPENERS.run(DEADLINE, move || open_beneath(&root, &path)).await;
    if let Err(r) = &opened {
        match r {
            Refusal::Gone => tracing::debug!(path = %shown.display(), "media file gone"),
            _ => tracing::warn!(path = %shown.display(), reason = %r, "media file not served"),
        }
    }
    opened
}

/// The process's opener threads: a count of those still running, bounded by [`MAX_WAITING`].
static OPENERS: Openers = Openers::new(MAX_WAITING);

/// Runs blocking opens on threads of their own, at most `max` at once; a thread stuck in the kernel keeps its
/// slot until the filesystem lets it go.
pub(crate) struct Openers {
    running: AtomicUsize,
    max: usize,
}

impl Openers {
    /// At most `max` opens waiting on folders at once.
    pub(crate) const fn new(max: usize) -> Openers {
        Openers { running: AtomicUsize::new(0), max }
    }

    /// `job` on a new thread; its answer, or `TimedOut` after `deadline` (the thread then finishes, or not,
    /// on its own, and drops what it opened), or `Busy` when `max` threads are still running.
    pub(crate) async fn run<T: Send + 'static>(
        &'static self,
        deadline: Duration,
        job: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
    ) -> Result<T, Refusal> {
        if self.running.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new().name("media open".into()).stack_size(128 * 1024).spawn(move || {
            let answer = job();
            self.running.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(answer);
        });
        if spawned.is_err() {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Busy);
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(answer)) => answer,
            // The job panicked: treat as a folder that did not answer.
            Ok(Err(_)) => Err(Refusal::TimedOut),
            Err(_) => Err(Refusal::TimedOut),
        }
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }
}

/// The blocking open (see the module doc). `path` must lie under `root` as written; both are as the state and
/// the scan have them.
pub fn open_beneath(root: &Path, path: &Path) -> Result<MediaFile, Refusal> {
    let rel = path.strip_prefix(root).map_err(|_| Refusal::Outside)?;
    if rel.as_os_str().is_empty() {
        return Err(Refusal::NotRegular);
    }
    let folder = sys(nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()))?;
    let file_flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY;
    let how = OpenHow::new().flags(file_flags).resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match sys(nix::fcntl::openat2(folder.as_raw_fd(), rel, how)) {
        Ok(fd) => fd,
        // No openat2 here, or it could not prove the walk stayed inside (an absolute link, which may still
        // land inside as the scanner allows; a `..` racing a rename): resolve it step by step.
        Err(Refusal::Unreadable(Errno::ENOSYS | Errno::EPERM | Errno::EAGAIN)) | Err(Refusal::Outside) => {
            walk_beneath(&folder, root, path, file_flags)?
        }
        Err(r) => return Err(r),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| Refusal::from_errno(errno(&e)))?;
    if !meta.is_file() {
        return Err(Refusal::NotRegular);
    }
    let flags = OFlag::from_bits_retain(sys_raw(nix::fcntl::fcntl(file.as_raw_fd(), FcntlArg::F_GETFL))?);
    sys_raw(nix::fcntl::fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(flags.difference(OFlag::O_NONBLOCK))))?;
    Ok(MediaFile { file, meta })
}

/// Without openat2: canonicalise, check the result lies under the canonical `root`, then open it from
/// `folder` (an fd of `root`) one component at a time without following any link.
fn walk_beneath(folder: &OwnedFd, root: &Path, path: &Path, file_flags: OFlag) -> Result<OwnedFd, Refusal> {
    let canon = |p: &Path| std::fs::canonicalize(p).map_err(|e| Refusal::from_errno(errno(&e)));
    let (root_c, path_c) = (canon(root)?, canon(path)?);
    let rel = path_c.strip_prefix(&root_c).map_err(|_| Refusal::Outside)?;
    let mut names: Vec<&OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            _ => return Err(Refusal::Outside),
        }
    }
    let Some(last) = names.pop() else {
        return Err(Refusal::NotRegular);
    };
    let mut dir: Option<OwnedFd> = None;
    for name in names {
        let at = dir.as_ref().unwrap_or(folder).as_raw_fd();
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        dir = Some(sys(nix::fcntl::openat(Some(at), name, flags, Mode::empty()))?);
    }
    let at = dir.as_ref().unwrap_or(folder).as_raw_fd();
    sys(nix::fcntl::openat(Some(at), last, file_flags | OFlag::O_NOFOLLOW, Mode::empty()))
}

/// An fd nix handed back, owned; its errno as a refusal.
fn sys(r: nix::Result<RawFd>) -> Result<OwnedFd, Refusal> {
    // SAFETY: nix returns a new descriptor that nothing else owns.
    r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).map_err(Refusal::from_errno)
}

fn sys_raw(r: nix::Result<i32>) -> Result<i32, Refusal> {
    r.map_err(Refusal::from_errno)
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Lab {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    /// A library folder with `film.mp4` and `sub/deep.mp4`, and `outside/secret.mp4` beside it.
    fn lab() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("film.mp4"), b"film").unwrap();
        std::fs::write(root.join("sub/deep.mp4"), b"deep").unwrap();
        std::fs::write(outside.join("secret.mp4"), b"secret").unwrap();
        Lab { root, outside, _dir: dir }
    }

    fn read(r: Result<MediaFile, Refusal>) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let mut m = r.map_err(|e| format!("{e:?}"))?;
        let mut out = Vec::new();
        m.file.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    /// Both ways to the file: openat2 (where the kernel has it) and the step-by-step walk every kernel has.
    fn both(root: &Path, path: &Path) -> [Result<Vec<u8>, String>; 2] {
        let walked = (|| {
            let folder = sys(nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()))?;
            let fd = walk_beneath(&folder, root, path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
            let file = File::from(fd);
            let meta = file.metadata().unwrap();
            if !meta.is_file() {
                return Err(Refusal::NotRegular);
            }
            Ok(MediaFile { file, meta })
        })();
        [read(open_beneath(root, path)), read(walked)]
    }

    #[test]
    fn a_f9_links_out_of_the_folder_are_refused_links_inside_are_followed() {
        let l = lab();
        let r = &l.root;
        symlink("film.mp4", r.join("relative.mp4")).unwrap();
        symlink(r.join("sub/deep.mp4"), r.join("absolute.mp4")).unwrap();
        symlink("sub", r.join("linked-dir")).unwrap();
        symlink(l.outside.join("secret.mp4"), r.join("out-absolute.mp4")).unwrap();
        symlink("../outside/secret.mp4", r.join("out-relative.mp4")).unwrap();
        symlink(&l.outside, r.join("out-dir")).unwrap();
        symlink(Path::new("/proc/self/root").join(l.outside.strip_prefix("/").unwrap()).join("secret.mp4"), r.join("magic.mp4")).unwrap();
        for (name, want) in [
            ("film.mp4", Ok(b"film".to_vec())),
            ("sub/deep.mp4", Ok(b"deep".to_vec())),
            ("relative.mp4", Ok(b"film".to_vec())),
            ("absolute.mp4", Ok(b"deep".to_vec())),
            ("linked-dir/deep.mp4", Ok(b"deep".to_vec())),
            ("out-absolute.mp4", Err("Outside".to_string())),
            ("out-relative.mp4", Err("Outside".to_string())),
            ("out-dir/secret.mp4", Err("Outside".to_string())),
            ("magic.mp4", Err("Outside".to_string())),
            ("sub/../../outside/secret.mp4", Err("Outside".to_string())),
            ("missing.mp4", Err("Gone".to_string())),
        ] {
            for (way, got) in ["openat2", "walk"].iter().zip(both(r, &r.join(name))) {
                assert_eq!(got, want, "{name} by {way}");
            }
        }
        // A path the scan did not find under this folder.
        assert!(matches!(open_beneath(r, &l.outside.join("secret.mp4")), Err(Refusal::Outside)));
    }

    #[test]
    fn r_f4_a_fifo_or_a_folder_is_refused_without_blocking() {
        let l = lab();
        let fifo = l.root.join("fifo.mp4");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        // No writer: a blocking open(2) would wait here for ever.
        for (way, got) in ["openat2", "walk"].iter().zip(both(&l.root, &fifo)) {
            assert_eq!(got, Err("NotRegular".to_string()), "{way}");
        }
        assert!(matches!(open_beneath(&l.root, &l.root.join("sub")), Err(Refusal::NotRegular)));
        assert!(matches!(open_beneath(&l.root, &l.root), Err(Refusal::NotRegular)));
    }

    #[test]
    fn opened_files_block_as_usual() {
        let l = lab();
        let m = open_beneath(&l.root, &l.root.join("film.mp4")).unwrap();
        let flags = OFlag::from_bits_retain(nix::fcntl::fcntl(m.file.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
        assert_eq!(m.meta.len(), 4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn r_f4_a_stuck_open_leaves_the_worker_free_and_answers_503() {
        static STUCK: Openers = Openers::new(2);
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = std::sync::Arc::new(std::sync::Mutex::new(stuck));
        // Two opens that hang (a hung mount) on this single-threaded runtime, with a short deadline.
        let hang = |s: std::sync::Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| {
            move || -> Result<(), Refusal> {
                let _ = s.lock().unwrap().recv();
                Ok(())
            }
        };
        let first = tokio::spawn(STUCK.run(Duration::from_millis(200), hang(stuck.clone())));
        // Meanwhile the runtime runs other work.
        let other = tokio::spawn(async { 7 });
        assert_eq!(other.await.unwrap(), 7);
        let second = tokio::spawn(STUCK.run(Duration::from_millis(200), hang(stuck.clone())));
        assert!(matches!(first.await.unwrap(), Err(Refusal::TimedOut)));
        assert!(matches!(second.await.unwrap(), Err(Refusal::TimedOut)));
        // Both threads still wait in the "kernel": a third open is refused at once, not queued behind them.
        assert_eq!(STUCK.running(), 2);
        assert!(matches!(STUCK.run(Duration::from_secs(60), || Ok(())).await, Err(Refusal::Busy)));
        assert_eq!(Refusal::Busy.status(), 503);
        assert_eq!(Refusal::TimedOut.status(), 503);
        // The mount answers again: the slots come back.
        release.send(()).unwrap();
        release.send(()).unwrap();
        while STUCK.running() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(matches!(STUCK.run(Duration::from_secs(60), || Ok(())).await, Ok(())));
    }
}
