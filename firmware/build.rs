//! Link settings for the board images (issue 24, binary budget 4 MiB): release builds for the boards' musl targets
//! link `hearth` with `link/no-unwind-tables.ld`, which drops the DWARF unwind tables (`.eh_frame`, its header).
//! Release is `panic = "abort"`: nothing unwinds, a panic still prints its message and runs the crash-marker hook;
//! only a `RUST_BACKTRACE` backtrace would read the tables (it then shows no frames). Host builds and tests
//! (`panic = "unwind"`) keep them.

fn main() {
    web_page();
    println!("cargo:rerun-if-changed=link/no-unwind-tables.ld");
    let target = std::env::var("TARGET").unwrap_or_default();
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let board = matches!(target.as_str(), "aarch64-unknown-linux-musl" | "armv7-unknown-linux-musleabihf");
    if release && board {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link/no-unwind-tables.ld");
    }
}

/// The web page's files (`src/http/web/`), gzip-compressed at the best level into `OUT_DIR`: `http::web` serves
/// these bytes as they are to browsers (all send `Accept-Encoding: gzip`) and inflates them for other clients, so
/// the binary carries about a third of the page's plain bytes.
fn web_page() {
    use std::io::Write;
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in ["index.html", "app.css", "app.js", "watch.js"] {
        let src = format!("src/http/web/{name}");
        println!("cargo:rerun-if-changed={src}");
        let plain = std::fs::read(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        // No file name and mtime 0 in the gzip header (RFC 1952 §2.3): the same page gives the same bytes.
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        gz.write_all(&plain).expect("gzip into memory");
        std::fs::write(format!("{out}/{name}.gz"), gz.finish().expect("gzip into memory")).expect("write to OUT_DIR");
    }
}
