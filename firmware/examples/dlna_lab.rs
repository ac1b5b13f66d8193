//! The DLNA lab server: the state handle, the library catalog and the DLNA task as `hearth serve` starts them,
//! plus state changes read from standard input, one command a line (for tests/dlna/run):
//!
//! ```text
//! library <Movies|Shows|Music|Photos|OtherVideos> <name> <absolute folder>   add a library with one folder
//!                             (and queue its scan, as the library API does)
//! secure                      add a Home member "kid" with a PIN (the server becomes secured)
//! reenable                    the owner turns DLNA back on while secured (warning acknowledged)
//! dlna-libraries <id,...>     the libraries DLNA shows ("" = all)
//! ```
//! Each command prints `ok <detail>` or `error <message>`. EOF or SIGTERM stops the server (byebye, flush).
//! When the real API lands, [`change`] is the one function to switch to HTTP calls.

use hearth::library::Catalog;
use hearth::serve::{Config, open_data};
use hearth::state::{Account, Folder, Handle, Library, LibraryKind, Role, Secret, State, StateError, bounded, push};
use std::io::BufRead;

/// Apply one command through the library API (the state handle: validated, persisted, published).
async fn change(handle: &Handle, catalog: &Catalog, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let r = match words.as_slice() {
        ["library", kind, name, path] => {
            let kind = match *kind {
                "Movies" => LibraryKind::Movies,
                "Shows" => LibraryKind::Shows,
                "Music" => LibraryKind::Music,
                "Photos" => LibraryKind::Photos,
                "OtherVideos" => LibraryKind::OtherVideos,
                other => return Err(format!("unknown library kind {other:?}")),
            };
            let (name, path) = (name.to_string(), path.to_string());
            let id = handle
                .update(move |s: &mut State| {
                    let id = s.free_library_id()?;
                    push("libraries", &mut s.libraries, Library { id, kind, name: bounded("name", &name)? })?;
                    push("folders", &mut s.folders, Folder { library: id, path: bounded("path", &path)? })?;
                    Ok::<_, StateError>(id)
                })
                .await
                .map_err(|e| e.to_string())?;
            catalog.refresh(id);
            Ok(format!("library {id}"))
        }
        ["secure"] => {
            handle
                .update(|s: &mut State| {
                    let id = s.allocate_id()?;
                    // A PIN as the auth room will store it (argon2id output); the value does not matter here.
                    let pin = Secret { salt: [7; 16], hash: [9; 16] };
                    let kid = Account { id, role: Role::Member, name: bounded("name", "kid")?, password: None, pin: Some(pin), shares: Default::default(), created: 0 };
                    // Entering the secured state clears any earlier DLNA re-enable: the state update does it
                    // (`State::settle`), not this closure.
                    push("accounts", &mut s.accounts, kid)?;
                    Ok::<_, StateError>(format!("secured={}", s.is_secured()))
                })
                .await
        }
        ["reenable"] => {
            handle
                .update(|s: &mut State| {
                    s.settings.dlna.enabled = true;
                    s.settings.dlna.reenabled_secured = true;
                    Ok::<_, StateError>(format!("dlna_effectively_on={}", s.dlna_effectively_on()))
                })
                .await
        }
        ["dlna-libraries", rest @ ..] => {
            let ids: Vec<u8> = rest.join(",").split(',').filter(|x| !x.is_empty()).map(|x| x.parse().unwrap_or(0)).collect();
            handle
                .update(move |s: &mut State| {
                    s.settings.dlna.libraries.clear();
                    for id in ids {
                        push("DLNA libraries", &mut s.settings.dlna.libraries, id)?;
                    }
                    Ok::<_, StateError>("libraries set".to_string())
                })
                .await
        }
        _ => return Err(format!("unknown command {line:?}")),
    };
    r.map_err(|e| e.to_string())
}

fn main() {
    hearth::system::logging::init();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let cfg = Config::parse(args).unwrap_or_else(|e| {
        eprintln!("dlna_lab: {e}");
        std::process::exit(2)
    });
    let opening = open_data(&cfg).unwrap_or_else(|e| {
        eprintln!("dlna_lab: {e}");
        std::process::exit(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let handle = opening.handle.clone();
        if opening.needs_write {
            handle.rewrite().await.expect("first state write");
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // The catalog as `http::Ctx::new` opens it: index file in the data folder, scanner, watcher.
        let catalog = Catalog::open(&cfg.data_dir, handle.clone());
        catalog.start();
        let beat = hearth::system::watchdog::Heartbeats::default().register("DLNA");
        let dlna = hearth::dlna::spawn(handle.clone(), catalog.clone(), cfg.listen.ip(), hearth::stream::Streams::new(), stop_rx, beat);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
        println!("ready");
        loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(l) if l.trim().is_empty() => {}
                    Some(l) => match change(&handle, &catalog, l.trim()).await {
                        Ok(detail) => println!("ok {detail}"),
                        Err(e) => println!("error {e}"),
                    },
                    None => break,
                },
                _ = term.recv() => break,
            }
        }
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), dlna).await;
        handle.flush().await;
        tokio::task::spawn_blocking(move || handle.shutdown()).await.ok();
    });
}
