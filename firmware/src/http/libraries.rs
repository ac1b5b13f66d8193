//! The owner's JSON API for libraries, folders, scans, stream counters and bandwidth caps (`/api/v1/...`).
//! Every change goes through `Handle::update` (validated, persisted, published); bad input gets a status and
//! a sentence and changes nothing.

// Handlers return ready error responses through `Result`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use super::body;
use super::refused::{Answer, Refused, reply};
use super::routes::{Call, Params};
use super::{Body, Ctx, json};
use crate::state::{Folder, Library, LibraryKind, StateError, bounded, push};
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
fn scanning(ctx: &Ctx, id: u8) -> Answer {
    ctx.library.refresh(id);
    match ctx.state.snapshot().libraries.iter().find(|l| l.id == id) {
        Some(l) => Ok(created(library_json(ctx, l))),
        None => Err(deleted_meanwhile()),
    }
}

fn deleted_meanwhile() -> Refused {
    Refused::not_found("That library was deleted meanwhile.")
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
#[serde(deny_unknown_fields)]
struct NewLibrary {
    name: String,
    kind: String,
    #[serde(default)]
    folders: Vec<String>,
}

/// `POST /api/v1/libraries` `{"name", "kind", "folders": [...]}`.
pub async fn create(mut call: Call) -> Response<Body> {
    reply(async {
        let new: NewLibrary = body::json(&mut call.req).await?;
        let kind = parse_kind(&new.kind)
            .ok_or_else(|| Refused::bad("kind is one of movies, shows, music, photos, other_videos."))?;
        let name = new.name.trim().to_string();
        if name.is_empty() {
            return Err(Refused::bad("A library needs a name."));
        }
        let folders = new.folders;
        let paths = super::folders::off_the_worker(move || {
            folders.iter().map(|f| crate::library::check_folder(f).map_err(Refused::from)).collect::<Result<Vec<_>, _>>()
        })
        .await?;
        let id = call
            .ctx
            .state
            .update(|s| {
                let id = s.free_library_id()?;
                let name = bounded("the library name", &name)?;
                push("libraries", &mut s.libraries, Library { id, kind, name })?;
                for p in &paths {
                    if s.folders.iter().any(|f| f.library == id && f.path.as_str() == p) {
                        continue;
                    }
                    let path = bounded("the folder path", p)?;
                    push("media folders", &mut s.folders, Folder { library: id, path })?;
                }
                Ok::<_, StateError>(id)
            })
            .await?;
        scanning(&call.ctx, id)
    }
    .await)
}

fn lib_id(ctx: &Ctx, params: &Params) -> Result<u8, Refused> {
    let s = ctx.state.snapshot();
    params
        .get("id")
        .and_then(|v| v.parse::<u8>().ok())
        .filter(|id| s.libraries.iter().any(|l| l.id == *id))
        .ok_or_else(|| Refused::not_found("There is no library with that id."))
}

/// `DELETE /api/v1/libraries/{id}`: the library, its folders, its shares and its items go.
pub async fn delete(call: Call) -> Response<Body> {
    reply(async {
        let id = lib_id(&call.ctx, &call.params)?;
        call.ctx
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
            .await?;
        call.ctx.library.retain_libraries(&call.ctx.state.snapshot());
        Ok(json(&serde_json::json!({ "deleted": id })))
    }
    .await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderBody {
    path: String,
}

/// The prologue of both folder routes: the library `{id}` (404 when there is none) and the folder the body
/// names.
async fn folder_call(call: &mut Call) -> Result<(u8, FolderBody), Refused> {
    let id = lib_id(&call.ctx, &call.params)?;
    let f: FolderBody = body::json(&mut call.req).await?;
    Ok((id, f))
}

/// `POST /api/v1/libraries/{id}/folders` `{"path"}`.
pub async fn add_folder(mut call: Call) -> Response<Body> {
    reply(async {
        let (id, f) = folder_call(&mut call).await?;
        let path = super::folders::off_the_worker(move || Ok(crate::library::check_folder(&f.path)?)).await?;
        // Checked and changed in one update: a DELETE of the library that wins the race is a 404 here.
        call.ctx
            .state
            .update(|s| {
                if !s.libraries.iter().any(|l| l.id == id) {
                    return Err(deleted_meanwhile());
                }
                if s.folders.iter().any(|x| x.library == id && x.path.as_str() == path) {
                    return Err(Refused::conflict("That folder is already in this library."));
                }
                let p = bounded("the folder path", &path)?;
                push("media folders", &mut s.folders, Folder { library: id, path: p })?;
                Ok(())
            })
            .await?;
        scanning(&call.ctx, id)
    }
    .await)
}

/// `DELETE /api/v1/libraries/{id}/folders` `{"path"}`: the folder's items leave with the next scan.
pub async fn remove_folder(mut call: Call) -> Response<Body> {
    reply(async {
        let (id, f) = folder_call(&mut call).await?;
        let want = if f.path.len() > 1 { f.path.trim_end_matches('/') } else { &f.path };
        // Checked and changed in one update, which also hands back the library: a DELETE of the library that
        // wins the race is a 404 here, not a library missing after the change (C-8).
        let l = call
            .ctx
            .state
            .update(|s| {
                let Some(l) = s.libraries.iter().find(|l| l.id == id).cloned() else {
                    return Err(deleted_meanwhile());
                };
                let before = s.folders.len();
                s.folders.retain(|x| !(x.library == id && x.path.as_str() == want));
                if s.folders.len() == before {
                    return Err(Refused::not_found("That folder is not in this library."));
                }
                Ok(l)
            })
            .await?;
        call.ctx.library.refresh(id);
        Ok(json(&library_json(&call.ctx, &l)))
    }
    .await)
}

/// `POST /api/v1/libraries/{id}/refresh`.
pub async fn refresh(call: Call) -> Response<Body> {
    let id = match lib_id(&call.ctx, &call.params) {
        Ok(id) => id,
        Err(r) => return r.into(),
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
        Err(r) => return r.into(),
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
#[serde(deny_unknown_fields)]
struct BandwidthBody {
    upload_kbps: Option<u32>,
    stream_kbps: Option<u32>,
    lan_networks: Option<Vec<String>>,
}

/// `PUT /api/v1/bandwidth` `{"upload_kbps", "stream_kbps", "lan_networks"}` (each optional; 0 = uncapped;
/// an empty network list = the server's own subnets). Running streams follow at once.
pub async fn set_bandwidth(mut call: Call) -> Response<Body> {
    reply(async {
        let b: BandwidthBody = body::json(&mut call.req).await?;
        let nets = b
            .lan_networks
            .iter()
            .flatten()
            .map(|n| n.parse::<crate::state::Net>().map_err(|e| Refused::bad(format!("{n:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        call.ctx
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
            .await?;
        Ok(bandwidth_json(&call.ctx))
    }
    .await)
}
