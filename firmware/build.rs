//! Link settings for the board images (issue 24, binary budget 4 MiB): release builds for the boards' musl targets
//! link `hearth` with `link/no-unwind-tables.ld`, which drops the DWARF unwind tables (`.eh_frame`, its header).
//! Release is `panic = "abort"`: nothing unwinds, a panic still prints its message and runs the crash-marker hook;
//! only a `RUST_BACKTRACE` backtrace would read the tables (it then shows no frames). Host builds and tests
//! (`panic = "unwind"`) keep them.

fn main() {
    println!("cargo:rerun-if-changed=link/no-unwind-tables.ld");
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let board = matches!(target.as_str(), "aarch64-unknown-linux-musl" | "armv7-unknown-linux-musleabihf");
    if release && board {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link/no-unwind-tables.ld");
    }
}
