//! Pictures and subtitles of the Plex-compatible API (docs/api.md "Pictures and subtitles"):
//!
//! - `GET /library/metadata/{id}/thumb`: the cover of an item or a group as stored (JPEG or PNG, never
//!   re-encoded; [`crate::library::art`] says where it comes from), with `ETag` and `Cache-Control`; 304 for a
//!   matching `If-None-Match` (RFC 9110 §13.1.2); 404 with a sentence when there is none.
//! - `GET /library/streams/{id}`: a sidecar subtitle file ([`crate::library::sidecar`]) as stored (SRT or
//!   WebVTT, as UTF-8); `?format=vtt` converts an SRT to WebVTT for a browser's `<track>`.
//!
//! Both are item routes: the access rule binds `{id}` to the library of the item (a stream id names its video;
//! see the sidecar module's layout), and a caller who may not see it gets the item's own 404 words.
//! The files are read on the blocking pool, never on the runtime's threads.

use super::{Found, find_metadata, query, visible};
use crate::http::routes::Call;
use crate::http::{Body, error, full};
use crate::library::art::{Cover, Picture};
use crate::library::sidecar::{self, SubtitleError};
use hyper::{Method, Response, StatusCode, header};

/// How long a client may keep a picture without asking again; after that it revalidates with the ETag.
/// `private`: the answer depends on who asked (the access rule).
const PICTURE_CACHE: &str = "private, max-age=3600";

/// `GET /library/metadata/{id}/thumb`: the cover of an item or group.
pub async fn thumb(call: Call) -> Response<Body> {
    let (_, found) = match find_metadata(&call) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id = match &found {
        Found::Item(i) => i.id,
        Found::Group(g) => g.id,
    };
    let library = call.ctx.library.clone();
    let cover = tokio::task::spawn_blocking(move || library.cover(id)).await.ok().flatten();
    let Some(cover) = cover else {
        return error(
            StatusCode::NOT_FOUND,
            "That item has no picture: none in its tags, and no poster.jpg, folder.jpg or cover.jpg beside it.",
            call.format,
        );
    };
    let etag = cover.etag();
    let matches = call
        .req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*" || t.trim().strip_prefix("W/") == Some(&etag));
    let b = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, PICTURE_CACHE)
        .header(header::VARY, "Authorization, X-Plex-Token");
    if matches {
        return b.status(StatusCode::NOT_MODIFIED).body(crate::http::empty()).expect("valid response");
    }
    let b = b.header(header::CONTENT_TYPE, cover.info.mime.as_str()).header(header::CONTENT_LENGTH, length(&cover));
    if call.req.method() == Method::HEAD {
        return b.body(crate::http::empty()).expect("valid response");
    }
    match picture_body(&call, cover).await {
        Ok(body) => b.body(body).expect("valid response"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("The picture could not be read: {e}"), call.format),
    }
}

fn length(cover: &Cover) -> u64 {
    match &cover.picture {
        Picture::Memory(b) => b.len() as u64,
        Picture::File { len, .. } => *len,
    }
}

/// The picture's bytes: from memory, or copied from its file by the stream room's file body (paced like a
/// remote stream for a remote caller, so a photo album does not fill the box's memory or the uplink).
async fn picture_body(call: &Call, cover: Cover) -> std::io::Result<Body> {
    use http_body_util::BodyExt;
    match cover.picture {
        Picture::Memory(b) => Ok(full(b)),
        Picture::File { path, start, len } => {
            let file = tokio::task::spawn_blocking(move || std::fs::File::open(path)).await.map_err(std::io::Error::other)??;
            let class = if call.origin.lan { crate::stream::pace::Class::Lan } else { crate::stream::pace::Class::RemoteStream };
            let body = crate::stream::FileBody::new(file, start, len, class, call.ctx.streams.clone()).await?;
            Ok(body.boxed())
        }
    }
}

/// `GET /library/streams/{id}`: a sidecar subtitle, as stored or (`?format=vtt`) as WebVTT.
pub async fn stream(call: Call) -> Response<Body> {
    let nf = || error(StatusCode::NOT_FOUND, crate::auth::Denial::NoSuchItem.message(), call.format);
    let vtt = match query(&call, "format").as_deref() {
        None | Some("") | Some("srt") => false,
        Some("vtt") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Subtitles are served as srt or vtt, not {other:?}; leave format out for the file as stored."),
                call.format,
            );
        }
    };
    let Some(id) = call.params.get("id").and_then(|v| v.parse::<u32>().ok()).filter(|id| sidecar::stream_of(*id).is_some()) else {
        return nf();
    };
    let library = call.ctx.library.clone();
    let found = tokio::task::spawn_blocking(move || {
        let (item, sub) = library.subtitle(id)?;
        Some((item, sidecar::serve(&sub, vtt), sub))
    })
    .await
    .ok()
    .flatten();
    let Some((item, served, sub)) = found.filter(|(item, ..)| visible(&call).allows(item.library)) else {
        return nf();
    };
    let name = sub.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (format, text) = match served {
        Ok(s) => s,
        Err(SubtitleError::Unreadable(why)) => {
            tracing::info!(item = item.id, %why, "a sidecar subtitle vanished or cannot be read");
            return nf();
        }
        Err(e) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("The subtitle file {name} cannot be shown: {e}."), call.format);
        }
    };
    let b = Response::builder()
        .header(header::CONTENT_TYPE, format.mime())
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::CONTENT_LENGTH, text.len());
    let body = if call.req.method() == Method::HEAD { crate::http::empty() } else { full(text) };
    b.body(body).expect("valid response")
}

/// The `thumb` attribute of an item or group in a listing: its thumb route when the catalog knows it has a
/// cover (from memory: listings read no files).
pub(super) fn thumb_key(call: &Call, id: crate::library::ItemId) -> Option<String> {
    call.ctx.library.cover_known(id).map(|_| format!("/library/metadata/{id}/thumb"))
}

/// Bring what the catalog knows about an item's cover up to date (on the blocking pool) before its metadata
/// is shown alone; the item back.
pub(super) async fn learn(call: &Call, item: &crate::library::Item) -> crate::library::Item {
    let (library, id) = (call.ctx.library.clone(), item.id);
    let _ = tokio::task::spawn_blocking(move || library.cover_info(id)).await;
    item.clone()
}

/// An item's node with its sidecar subtitles as Plex `Stream` elements (streamType 3) in its `Part`: what a
/// client offers as external subtitles, fetched from their `key`.
pub(super) async fn with_subtitles(mut node: super::Node, call: &Call, item: &crate::library::Item) -> super::Node {
    let (library, id) = (call.ctx.library.clone(), item.id);
    let subs = tokio::task::spawn_blocking(move || library.subtitles(id)).await.unwrap_or_default();
    let Some(part) = node.kids.iter_mut().find(|k| k.tag == "Media").and_then(|m| m.kids.iter_mut().find(|k| k.tag == "Part")) else {
        return node;
    };
    for s in subs {
        let title = s.language_name().map(str::to_owned).or_else(|| s.language.clone()).unwrap_or_else(|| "Unknown".into());
        let mut n = super::Node::new("Stream", "Stream")
            .a("id", u64::from(s.stream))
            .a("streamType", 3u64)
            .a("codec", s.format.codec())
            .a("format", s.format.codec())
            .a("key", format!("/library/streams/{}", s.stream))
            .opt("language", s.language_name())
            .opt("languageCode", s.language_code())
            .opt("languageTag", s.language.as_deref())
            .a("displayTitle", format!("{title} ({})", s.format.codec().to_uppercase()))
            .a("external", "1");
        if s.forced {
            n = n.a("forced", "1");
        }
        part.kids.push(n);
    }
    node
}
