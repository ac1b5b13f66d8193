//! Owner recovery without any cloud: `hearth recover` on the console or a host shell, or a recovery file.
//!
//! Both give the owner a new password, remove the owner's PIN, sign out every owner device and revoke every
//! API token (an attacker who took the owner account may have minted an admin one; review finding A-F14), and
//! list the accounts that exist, names and roles only, so the owner sees any the attacker may have created.
//! Nothing else changes: members, friends, their devices, libraries and settings stay as they were (the owner
//! removes unwanted accounts on the Home and Friends screens).
//!
//! The recovery file is `<data-dir>/recover-owner` ([`RECOVERY_FILE`]): its first line is the new password. It
//! is applied at the next start, before the server listens, and deleted whether or not it worked (the reason is
//! logged; the password never is).

use super::{AuthError, home, secret};
use crate::state::{Handle, Role};
use std::io::BufRead;
use std::path::Path;

/// Name of the recovery file in the data directory; its first line is the new owner password.
pub const RECOVERY_FILE: &str = "recover-owner";

/// What a recovery did, for the console and the log (no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// Owner devices signed out.
    pub signed_out: usize,
    /// API tokens revoked (all of them).
    pub revoked_tokens: usize,
    /// Every account that exists after the recovery: name and role.
    pub accounts: Vec<(String, Role)>,
}

impl Recovered {
    /// The accounts as one line: `Ada (owner), Kid (Home member), Bob (friend)`.
    pub fn account_list(&self) -> String {
        let names: Vec<String> =
            self.accounts.iter().map(|(n, r)| format!("{n} ({})", home::role_word(*r))).collect();
        names.join(", ")
    }
}

/// Check the password and apply the recovery to the state.
pub async fn recover_owner(state: &Handle, password: &str) -> Result<Recovered, AuthError> {
    let owner = state.snapshot().owner().map(|o| o.name.as_str().to_owned());
    let Some(owner) = owner else {
        return Err(AuthError::Conflict("this server is not claimed: there is no owner to recover".into()));
    };
    if let Some(p) = secret::password_problem(password, &owner) {
        return Err(AuthError::BadInput(p.into()));
    }
    let pw = password.to_owned();
    let sealed = tokio::task::spawn_blocking(move || secret::seal(&pw)).await.expect("hashing does not panic");
    let recovered = state.update(|s| {
        let signed_out = home::recover_owner(s, sealed)?;
        let revoked_tokens = s.api_tokens.len();
        s.api_tokens.clear();
        let accounts = s.accounts.iter().map(|a| (a.name.as_str().to_owned(), a.role)).collect();
        Ok(Recovered { signed_out, revoked_tokens, accounts })
    });
    recovered.await.map_err(|e| match e {
        crate::state::UpdateError::Rejected(e) => e,
        crate::state::UpdateError::Invalid(e) => AuthError::State(e),
        crate::state::UpdateError::Store(m) => AuthError::Conflict(m),
    })
}

/// Apply `<data-dir>/recover-owner` if present, then delete it. Returns whether a recovery happened.
pub async fn apply_file(state: &Handle, data_dir: &Path) -> bool {
    let path = data_dir.join(RECOVERY_FILE);
    let text = match read_file(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "the recovery file could not be read");
            return false;
        }
    };
    let removed = std::fs::remove_file(&path);
    if let Err(e) = removed {
        tracing::error!(path = %path.display(), error = %e, "the recovery file could not be deleted; delete it by hand");
    }
    let Ok(text) = String::from_utf8(text) else {
        tracing::error!(path = %path.display(), "the recovery file is not UTF-8 text; nothing changed");
        return false;
    };
    let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
    match recover_owner(state, password).await {
        Ok(r) => {
            tracing::warn!(
                path = %path.display(),
                signed_out = r.signed_out,
                revoked_api_tokens = r.revoked_tokens,
                accounts = %r.account_list(),
                "owner recovered from the recovery file: new password, no PIN, owner devices signed out, every API \
                 token revoked; check that every account listed is one you know"
            );
            true
        }
        Err(e) => {
            tracing::error!(path = %path.display(), reason = %e, "the recovery file was not applied; nothing changed");
            false
        }
    }
}

/// The recovery file's bytes: a regular file in the data folder itself, never through a symlink (`ELOOP`), and
/// never waiting on a FIFO (A-F8: only what is in the owner's folder counts).
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = Vec::new();
    f.by_ref().take(64 * 1024).read_to_end(&mut text)?;
    Ok(text)
}

/// Read the new password: one line from stdin, or (on a terminal) asked twice with echo off.
pub fn read_password(from_stdin: bool) -> Result<String, String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| format!("could not read the password from stdin: {e}"))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    let first = prompt("New owner password: ")?;
    let second = prompt("Again: ")?;
    if first != second {
        return Err("the two passwords differ; nothing changed".into());
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<String, String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::io::Write;
    let stdin = std::io::stdin();
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let saved = tcgetattr(&stdin).map_err(|e| format!("terminal: {e}"))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    r.map_err(|e| format!("could not read the password: {e}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

