//! `POST /api/v1/system/update` (Owner, body `application/octet-stream`, `?allow_downgrade=1`): stream a
//! firmware bundle into the inactive slot (the update room does the work: [`crate::update::Slots::install`]).
//!
//! Owns: the route's HTTP side: the query, pumping the body into the installer through a small bounded queue
//! (back-pressure: a slow slot write slows the upload; at most [`QUEUE`] body frames wait in memory), and the
//! status of each refusal. The body deadline for this path is rate-based ([`MIN_RATE`], http::deadline).
//! Must not touch: the bundle format or the slots (update room).
//!
//! Answers: 200 installed (restart into it with POST /api/v1/system/reboot); 400 not a bundle, damaged,
//! truncated or the upload broke off; 403 not signed by the built-in key; 409 another install is running, the
//! bundle is not newer (downgrade without `allow_downgrade=1`) or this server has no slots; 413 the image does
//! not fit the slot; 422 another board, too old a running version for it, or image bytes that do not match
//! the signed manifest; 500 the slot could not be written or read back. On every error the booted slot and the
//! boot order are as they were.

use super::routes::Call;
use super::{Body, error, json};
use crate::update::bundle::BundleError;
use crate::update::install::InstallError;
use crate::update::Slots;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};

/// The route's path (http::conn arms the rate-based body deadline for it).
pub const PATH: &str = "/api/v1/system/update";
/// Slowest upload accepted after the first [`crate::system::fds::body_timeout`]: 64 KiB/s.
pub const MIN_RATE: u64 = 64 * 1024;
/// Body frames that may wait for the slot writer.
pub const QUEUE: usize = 4;

/// The HTTP status for an install error.
pub fn status_of(e: &InstallError) -> StatusCode {
    match e {
        InstallError::Bundle(BundleError::Signature) => StatusCode::FORBIDDEN,
        InstallError::Bundle(BundleError::Hash) => StatusCode::UNPROCESSABLE_ENTITY,
        InstallError::Bundle(_) | InstallError::Upload(_) => StatusCode::BAD_REQUEST,
        InstallError::OtherBoard { .. } | InstallError::TooOld { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        InstallError::Downgrade { .. } | InstallError::Busy | InstallError::NoSlots => StatusCode::CONFLICT,
        InstallError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        InstallError::Io { .. } | InstallError::ReadBack(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /api/v1/system/update`.
pub async fn update(call: Call) -> Response<Body> {
    let format = call.format;
    let fail = |e: InstallError| error(status_of(&e), &e.to_string(), format);
    let allow_downgrade = match call.req.uri().query() {
        None | Some("") => false,
        Some("allow_downgrade=1") => true,
        Some(q) => {
            let msg = format!("unknown query {q:?}: the only option is allow_downgrade=1");
            return error(StatusCode::BAD_REQUEST, &msg, format);
        }
    };
    let Some(slots) = Slots::get() else { return fail(InstallError::NoSlots) };
    let turn = match slots.turn() {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(QUEUE);
    let worker = tokio::task::spawn_blocking(move || {
        slots.install(&turn, allow_downgrade, || match rx.blocking_recv() {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(InstallError::Upload(e)),
        })
    });
    let mut body = call.req.into_body();
    loop {
        let item = match body.frame().await {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => Ok(data),
                Err(_) => continue,
            },
            Some(Err(e)) => Err(e.to_string()),
        };
        let broke = item.is_err();
        // The installer stopped (it refused the bundle): its answer says why.
        if tx.send(item).await.is_err() || broke {
            break;
        }
    }
    drop(tx);
    let result = match worker.await {
        Ok(r) => r,
        Err(_) => Err(InstallError::Io { slot: slots.booted.other().name(), what: "the installer stopped", err: "panic".into() }),
    };
    match result {
        Ok(m) => {
            tracing::info!(peer = %call.peer, version = %m.version, "firmware update installed through the API");
            json(&serde_json::json!({
                "installed": { "version": m.version.to_string(), "board": m.board, "slot": slots.booted.other().name() },
                "restart_into": m.version.to_string(),
                "message": format!("version {} is installed in slot {}; restart into it", m.version, slots.booted.other().name()),
            }))
        }
        Err(e) => {
            tracing::warn!(peer = %call.peer, error = %e, "firmware update refused");
            fail(e)
        }
    }
}
