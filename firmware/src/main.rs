//! argv → serve | init | reflector | recover. Nothing else lives here.

use std::ffi::OsString;
use std::process::ExitCode;

const USAGE: &str = "\
usage: hearth [serve] [options]     run the media server (the default)
       hearth reflector [options]   tell Hearth servers whether the internet reaches them
       hearth --version

serve options:
  --listen ADDR          address to listen on (default 0.0.0.0:32400)
  --data-dir DIR         where Hearth keeps its state (default ./hearth-data)
  --flash-size BYTES     size of the emulated NOR flash file, on first run (default 131072)
  --erase-size BYTES     erase-block size of the emulated flash, on first run (default 4096)
  --format               erase a flash file that does not hold a Hearth store (destroys its contents)
  --remote-methods LIST  port-mapping methods in the order tried (default igd,pcp,natpmp)
  --remote-check-secs N  how often to check that the router still holds the mapping (default 60)

reflector options:
  --listen ADDR              address to listen on (default 0.0.0.0:32499)
  --allow-private-targets    also check callers with private addresses (test labs only)
";

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let sub = argv.first().and_then(|a| a.to_str()).map(str::to_owned);
    let result = match sub.as_deref() {
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("hearth {}", hearth::VERSION);
            return ExitCode::SUCCESS;
        }
        Some("serve") => {
            argv.remove(0);
            hearth::serve::Config::parse(argv).map(hearth::serve::run)
        }
        Some("reflector") => {
            argv.remove(0);
            hearth::remote::reflector::Config::parse(argv).map(hearth::remote::reflector::run)
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
