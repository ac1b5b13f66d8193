//! The shells of the commands that are neither `serve` nor `init`: argv, logging, opening the data folder and
//! the runtime. The rules they run stay in their rooms: owner recovery in `auth::recover`, the reflector's
//! protocol in `remote::reflector`.

use std::process::ExitCode;

/// `hearth recover [--password-stdin] [--data-dir DIR] ...`: stop the server first (the data folder is locked
/// while it runs; boxes without a console use the recovery file instead).
pub fn recover(args: Vec<std::ffi::OsString>) -> Result<ExitCode, String> {
    let from_stdin = args.iter().any(|a| a == "--password-stdin");
    let rest: Vec<_> = args.into_iter().filter(|a| a != "--password-stdin").collect();
    let cfg = crate::serve::Config::parse(rest)?;
    // Recovery acts on an existing server's data: a mistyped folder must not become a new, unclaimed one.
    if !cfg.data_dir.join(crate::serve::FLASH_FILE).is_file() {
        eprintln!(
            "hearth recover: {} holds no Hearth data (no {}); give the --data-dir the server runs with. Nothing was created.",
            cfg.data_dir.display(),
            crate::serve::FLASH_FILE
        );
        return Ok(ExitCode::from(1));
    }
    crate::system::logging::init();
    let opening = crate::serve::open_data(&cfg).map_err(|e| e.to_string())?;
    let fail = |msg: String| {
        eprintln!("hearth recover: {msg}");
        ExitCode::from(1)
    };
    let handle = opening.handle.clone();
    if !handle.snapshot().is_claimed() {
        handle.shutdown();
        return Ok(fail("this server is not claimed yet: there is no owner to recover; claim it from the setup page".into()));
    }
    let password = match crate::auth::recover::read_password(from_stdin) {
        Ok(p) => p,
        Err(e) => {
            handle.shutdown();
            return Ok(fail(e));
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        let r = crate::auth::recover::recover_owner(&handle, &password).await;
        handle.flush().await;
        r
    });
    handle.shutdown();
    match result {
        Ok(r) => {
            println!(
                "The owner has a new password and no PIN; {} owner device(s) were signed out and {} API token(s) \
                 revoked.",
                r.signed_out, r.revoked_tokens
            );
            println!("Accounts on this server: {}.", r.account_list());
            println!(
                "If you do not know one of them, remove it on the setup page (Home or Friends) after signing in. \
                 Members' and friends' devices, libraries and settings are unchanged."
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(fail(format!("{e}; nothing changed"))),
    }
}

/// `hearth reflector`: run the reflector ([`crate::remote::reflector::serve`]) until SIGINT/SIGTERM.
pub fn reflector(cfg: crate::remote::reflector::Config) -> ExitCode {
    crate::system::logging::init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = match crate::system::dual_stack::bind(cfg.listen) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hearth reflector: cannot listen on {}: {e}", cfg.listen);
                return ExitCode::from(1);
            }
        };
        let stop = crate::system::logging::wait_for_signal();
        crate::remote::reflector::serve(listener, cfg, stop).await;
        ExitCode::SUCCESS
    })
}
