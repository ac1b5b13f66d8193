//! The owner's JSON API for libraries, folders, scans, stream counters and bandwidth caps (`/api/v1/...`).
//! Every change goes through `Handle::update` (validated, persisted, published); bad input gets a status and
//! a sentence and changes nothing.

// Handlers return ready error responses through `Result`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use super::routes::{Call, Params};
use super::{Body, Ctx, Format, MAX_BODY, error, json};
use crate::state::{Folder, Library, LibraryKind, StateError, UpdateError, bounded, push};
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde::Deserialize;

fn kind_name(k: LibraryKind) -> &'static str {
    match k {
        LibraryKind::Movies => "movies",
        LibraryKind::Shows => "shows",
        LibraryKind::Music => "music",
        LibraryKind::Photos => "photos",
        LibraryKind::OtherVideos => "other_videos",
    }
}

fn parse_kind(s: &str) -> Option<LibraryKind> {
    Some(match s {
        "movies" => LibraryKind::Movies,
        "shows" => LibraryKind::Shows,
        "music" => LibraryKind::Music,
        "photos" => LibraryKind::Photos,
        "other_videos" => LibraryKind::OtherVideos,
        _ => return None,
    })
}

fn bad(status: StatusCode, msg: &str) -> Response<Body> {
    error(status, msg, Format::Json)
}

/// Read a JSON body (at most [`MAX_BODY`]).
async fn body<T: for<'de> Deserialize<'de>>(
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<T, Response<Body>> {
    let bytes = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => {
            return Err(bad(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than 64 KiB.",
            ));
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        bad(
            StatusCode::BAD_REQUEST,
            &format!("The request body is not the JSON expected: {e}"),
        )
    })
}

fn state_error<E: std::fmt::Display>(e: UpdateError<E>) -> Response<Body> {
    match e {
        UpdateError::Rejected(r) => bad(StatusCode::BAD_REQUEST, &r.to_string()),
        UpdateError::Invalid(StateError::Duplicate(name)) => bad(
            StatusCode::CONFLICT,
            &format!("There is already a library called {name:?}; pick another name."),
        ),
        UpdateError::Invalid(StateError::Full { what, max }) => bad(
            StatusCode::CONFLICT,
            &format!("Hearth holds at most {max} {what}; remove one first."),
        ),
        UpdateError::Invalid(e) => bad(StatusCode::BAD_REQUEST, &e.to_string()),
        UpdateError::Store(e) => bad(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

fn library_json(ctx: &Ctx, l: &Library) -> serde_json::Value {
    let s = ctx.state.snapshot();
    let folders: Vec<&str> = s
        .folders
        .iter()
        .filter(|f| f.library == l.id)
        .map(|f| f.path.as_str())
        .collect();
    serde_json::json!({
        "id": l.id,
        "kind": kind_name(l.kind),
        "name": l.name.as_str(),
        "folders": folders,
        "items": ctx.library.item_count(l.id),
        "progress": ctx.library.progress_of(l.id).view(),
    })
}

/// Start a scan of library `id` (new or with a new folder) and answer 201 with the library.
fn scanning(ctx: &Ctx, id: u8) -> Response<Body> {
    ctx.library.refresh(id);
    match ctx.state.snapshot().libraries.iter().find(|l| l.id == id) {
        Some(l) => created(library_json(ctx, l)),
        None => bad(StatusCode::NOT_FOUND, "That library was deleted meanwhile."),
    }
}

fn created(v: serde_json::Value) -> Response<Body> {
    let mut r = json(&v);
    *r.status_mut() = StatusCode::CREATED;
    r
}

/// `GET /api/v1/libraries`: the libraries, and `skipped`, the files quarantined because reading them ended a run.
pub async fn list(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    let libs: Vec<serde_json::Value> = s
        .libraries
        .iter()
        .map(|l| library_json(&call.ctx, l))
        .collect();
    // Files a probe died on (R-F1): skipped by every scan until they change.
    json(&serde_json::json!({ "libraries": libs, "skipped": call.ctx.library.quarantined() }))
}

#[derive(Deserialize)]
struct NewLibrary {
    name: String,
    kind: String,
    #[serde(default)]
    folders: Vec<String>,
}

/// `POST /api/v1/libraries` `{"name", "kind", "folders": [...]}`.
pub async fn create(call: Call) -> Response<Body> {
    let Call { ctx, req, .. } = call;
    let new: NewLibrary = match body(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(kind) = parse_kind(&new.kind) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "kind is one of movies, shows, music, photos, other_videos.",
        );
    };
    let name = new.name.trim().to_string();
    if name.is_empty() {
        return bad(StatusCode::BAD_REQUEST, "A library needs a name.");
    }
    let mut paths = Vec::new();
    for f in &new.folders {
        match crate::library::check_folder(f) {
            Ok(p) => paths.push(p),
            Err(e) => return bad(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }
    let result = ctx
        .state
        .update(|s| {
            let id = s.free_library_id()?;
            let name = bounded("the library name", &name)?;
            push("libraries", &mut s.libraries, Library { id, kind, name })?;
            for p in &paths {
                if s.folders
                    .iter()
                    .any(|f| f.library == id && f.path.as_str() == p)
                {
                    continue;
                }
                let path = bounded("the folder path", p)?;
                push(
                    "media folders",
                    &mut s.folders,
                    Folder { library: id, path },
                )?;
            }
            Ok::<_, StateError>(id)
        })
        .await;
    let id = match result {
        Ok(id) => id,
        Err(UpdateError::Rejected(e)) => return state_error(UpdateError::<StateError>::Invalid(e)),
        Err(e) => return state_error(e),
    };
    scanning(&ctx, id)
}

fn lib_id(ctx: &Ctx, params: &Params) -> Result<u8, Response<Body>> {
    let s = ctx.state.snapshot();
    params
        .get("id")
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|id| s.libraries.iter().any(|l| l.id == *id))
        .ok_or_else(|| bad(StatusCode::NOT_FOUND, "There is no library with that id."))
}

/// `DELETE /api/v1/libraries/{id}`: the library, its folders, its shares and its items go.
pub async fn delete(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let result = call
        .ctx
        .state
        .update(|s| {
            s.libraries.retain(|l| l.id != id);
            s.folders.retain(|f| f.library != id);
            s.settings.dlna.libraries.retain(|l| *l != id);
            for a in s.accounts.iter_mut() {
                a.shares.retain(|l| *l != id);
            }
            Ok::<_, StateError>(())
        })
        .await;
    if let Err(e) = result {
        return state_error(e);
    }
    call.ctx
        .library
        .retain_libraries(&call.ctx.state.snapshot());
    json(&serde_json::json!({ "deleted": id }))
}

#[derive(Deserialize)]
struct FolderBody {
    path: String,
}

/// `POST /api/v1/libraries/{id}/folders` `{"path"}`.
pub async fn add_folder(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Call { ctx, req, .. } = call;
    let f: FolderBody = match body(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let path = match crate::library::check_folder(&f.path) {
        Ok(p) => p,
        Err(e) => return bad(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let result = ctx
        .state
        .update(|s| {
            if !s.libraries.iter().any(|l| l.id == id) {
                return Err(StateError::Missing { what: "library", id: id as u32 });
            }
            if s.folders
                .iter()
                .any(|x| x.library == id && x.path.as_str() == path)
            {
                return Err(StateError::Invalid(
                    "that folder is already in this library",
                ));
            }
            let p = bounded("the folder path", &path)?;
            push(
                "media folders",
                &mut s.folders,
                Folder {
                    library: id,
                    path: p,
                },
            )
        })
        .await;
    match result {
        Ok(()) => {}
        Err(UpdateError::Rejected(StateError::Invalid(m))) => {
            return bad(StatusCode::CONFLICT, &format!("{m}."));
        }
        Err(UpdateError::Rejected(StateError::Missing { .. })) => {
            return bad(StatusCode::NOT_FOUND, "That library was deleted meanwhile.");
        }
        Err(UpdateError::Rejected(e)) => return state_error(UpdateError::<StateError>::Invalid(e)),
        Err(e) => return state_error(e),
    }
    scanning(&ctx, id)
}

/// `DELETE /api/v1/libraries/{id}/folders` `{"path"}`: the folder's items leave with the next scan.
pub async fn remove_folder(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Call { ctx, req, .. } = call;
    let f: FolderBody = match body(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let want = if f.path.len() > 1 {
        f.path.trim_end_matches('/')
    } else {
        &f.path
    };
    // Checked and changed in one update, which also hands back the library: a DELETE of the library that wins
    // the race is a 404 here, not a library missing after the change (C-8).
    let result = ctx
        .state
        .update(|s| {
            let Some(l) = s.libraries.iter().find(|l| l.id == id).cloned() else {
                return Err("That library was deleted meanwhile.");
            };
            let before = s.folders.len();
            s.folders
                .retain(|x| !(x.library == id && x.path.as_str() == want));
            if s.folders.len() == before {
                return Err("That folder is not in this library.");
            }
            Ok(l)
        })
        .await;
    let l = match result {
        Ok(l) => l,
        Err(UpdateError::Rejected(m)) => return bad(StatusCode::NOT_FOUND, m),
        Err(e) => return state_error(e),
    };
    ctx.library.refresh(id);
    json(&library_json(&ctx, &l))
}

/// `POST /api/v1/libraries/{id}/refresh`.
pub async fn refresh(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    call.ctx.library.refresh(id);
    let mut r = json(&serde_json::json!({ "queued": id }));
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

/// `GET /api/v1/libraries/{id}/progress`: files seen, rate, estimate.
pub async fn progress(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r,
    };
    json(&serde_json::to_value(call.ctx.library.progress_of(id).view()).unwrap_or_default())
}

/// `GET /api/v1/streams`: bytes sent zero-copy and copied, active streams.
pub async fn streams(call: Call) -> Response<Body> {
    json(&call.ctx.streams.stats())
}

/// `GET /api/v1/bandwidth`.
pub async fn bandwidth(call: Call) -> Response<Body> {
    bandwidth_json(&call.ctx)
}

fn bandwidth_json(ctx: &Ctx) -> Response<Body> {
    let s = ctx.state.snapshot();
    let nets: Vec<String> = s
        .settings
        .lan_networks
        .iter()
        .map(|n| n.to_string())
        .collect();
    json(&serde_json::json!({
        "upload_kbps": s.settings.remote.upload_kbps,
        "stream_kbps": s.settings.remote.stream_kbps,
        "lan_networks": nets,
    }))
}

#[derive(Deserialize)]
struct BandwidthBody {
    upload_kbps: Option<u32>,
    stream_kbps: Option<u32>,
    lan_networks: Option<Vec<String>>,
}

/// `PUT /api/v1/bandwidth` `{"upload_kbps", "stream_kbps", "lan_networks"}` (each optional; 0 = uncapped;
/// an empty network list = the server's own subnets). Running streams follow at once.
pub async fn set_bandwidth(call: Call) -> Response<Body> {
    let Call { ctx, req, .. } = call;
    let b: BandwidthBody = match body(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut nets = Vec::new();
    for n in b.lan_networks.iter().flatten() {
        match n.parse::<crate::state::Net>() {
            Ok(n) => nets.push(n),
            Err(e) => return bad(StatusCode::BAD_REQUEST, &format!("{n:?}: {e}")),
        }
    }
    let result = ctx
        .state
        .update(|s| {
            if let Some(u) = b.upload_kbps {
                s.settings.remote.upload_kbps = u;
            }
            if let Some(k) = b.stream_kbps {
                s.settings.remote.stream_kbps = k;
            }
            if b.lan_networks.is_some() {
                s.settings.lan_networks.clear();
                for n in &nets {
                    push("LAN networks", &mut s.settings.lan_networks, *n)?;
                }
            }
            Ok::<_, StateError>(())
        })
        .await;
    match result {
        Ok(()) => bandwidth_json(&ctx),
        Err(UpdateError::Rejected(e)) => state_error(UpdateError::<StateError>::Invalid(e)),
        Err(e) => state_error(e),
    }
}
