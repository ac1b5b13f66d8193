//! argv → serve | init | reflector | recover | bundle | update. Nothing else lives here.

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
usage: hearth [serve] [options]     run the media server (the default)
       hearth recover [--password-stdin] [--data-dir DIR]
                                    give the owner a new password, remove the owner's PIN and sign out
                                    the owner's devices; nothing else changes (stop the server first,
                                    or put the new password in DIR/recover-owner for the next start)
       hearth init [--board FILE]   run as PID 1 on a board (automatic when started as PID 1)
       hearth init --check-board FILE   check a board file and print what it says
       hearth reflector [options]   tell Hearth servers whether the internet reaches them
       hearth bundle --new-key FILE  make an Ed25519 update signing key (PKCS#8) in FILE and its public
                                    half in FILE's .pub (hex; the image build's HEARTH_UPDATE_PUBKEY)
       hearth bundle --key KEY --board BOARD --version V [--min-version M] --image SLOT.img --out OUT
                     [--footer FILE]
                                    sign a slot image into an update bundle (--footer: also write the
                                    64 KiB slot footer, for a factory image's slot)
       hearth update FILE [--allow-downgrade] [--board FILE | --slots FILE]
                                    install an update bundle into the inactive slot (as the System
                                    screen does); it boots at the next restart
       hearth --version

serve options:
  --listen ADDR          address to listen on (default [::]:32400: IPv6 and IPv4)
  --data-dir DIR         where Hearth keeps its state (default ./hearth-data)
  --flash-size BYTES     size of the emulated NOR flash file, on first run (default 131072)
  --erase-size BYTES     erase-block size of the emulated flash, on first run (default 4096)
  --format               erase a flash file that does not hold a Hearth store (destroys its contents)
  --remote-methods LIST  port-mapping methods in the order tried (default igd,pcp,natpmp)
  --remote-check-secs N  how often to check that the router still holds the mapping (default 60)
  --watch-state-batch-secs N  write the watch-state file at most every N seconds (default 30)
  --slots FILE           run as if booted from a slot: FILE (TOML) names board, booted (A|B), bootstate,
                         a, b (partitions or files) and confirm_after_secs (tests; hosts on a disk image)
  --acme-root FILE       also trust these PEM roots for the ACME CA's own HTTPS (a test CA such as Pebble;
                         Let's Encrypt's ISRG roots are built in)

reflector options:
  --listen ADDR              address to listen on (default 0.0.0.0:32499)
  --allow-private-targets    also check callers with private addresses (test labs only)
";

fn main() -> ExitCode {
    one_allocator_arena();
    if std::process::id() == 1 {
        // The kernel started us as /init: init mode, whatever argv says (the kernel passes its own words).
        return hearth::init::run(None);
    }
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let sub = argv.first().and_then(|a| a.to_str()).map(str::to_owned);
    // `hearth serve --help` (or any command's) is a request for the usage, not an unknown option.
    let help = argv.iter().any(|a| a == "-h" || a == "--help");
    let result = match sub.as_deref() {
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("serve" | "recover" | "init" | "reflector" | "bundle" | "update") if help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") if argv.len() > 1 => Err(format!("--version takes no arguments, not {:?}", argv[1])),
        Some("-V" | "--version") => {
            println!("hearth {}", hearth::VERSION);
            return ExitCode::SUCCESS;
        }
        Some("serve") => {
            argv.remove(0);
            hearth::serve::Config::parse(argv).map(hearth::serve::run)
        }
        Some("recover") => {
            argv.remove(0);
            hearth::command::recover(argv)
        }
        Some("init") => {
            argv.remove(0);
            init(argv)
        }
        Some("update") => {
            argv.remove(0);
            hearth::update::command::update(argv)
        }
        Some("bundle") => {
            argv.remove(0);
            hearth::update::command::bundle(argv)
        }
        Some("reflector") => {
            argv.remove(0);
            hearth::remote::reflector::Config::parse(argv).map(hearth::command::reflector)
        }
        Some(s) if !s.starts_with('-') => Err(format!("unknown command {s:?}")),
        _ => hearth::serve::Config::parse(argv).map(hearth::serve::run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hearth: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn init(argv: Vec<OsString>) -> Result<ExitCode, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(argv);
    let e = |e: lexopt::Error| e.to_string();
    let mut board = None;
    let mut check = None;
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            Long("board") => board = Some(p.value().map_err(e)?.string().map_err(e)?),
            Long("check-board") => check = Some(p.value().map_err(e)?.string().map_err(e)?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    if let Some(path) = check {
        return match hearth::system::board::Board::load(std::path::Path::new(&path)) {
            Ok(b) => {
                println!("{path}: board {} for {}, {} modules, flash {} at {} (+{} bytes, erase {}), media {} ({})",
                    b.name, b.target, b.modules.len(), b.flash.device, b.flash.offset, b.flash.size,
                    b.flash.erase_size, b.media.device, b.media.fs);
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprintln!("hearth: {err}");
                Ok(ExitCode::from(1))
            }
        };
    }
    Ok(hearth::init::run(board))
}

/// Host builds on glibc: by default every thread that allocates gets its own malloc arena, and the scanner
/// thread's arena keeps the scan's freed memory in fragments that malloc_trim cannot return (10,000 items:
/// 3.5 MiB of heap instead of 2; with two arenas still about one start in six). One arena (each thread keeps
/// its own small-block cache in front of it) is plenty for a server that waits on sockets. (The firmware's
/// musl has no arenas.)
fn one_allocator_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}
