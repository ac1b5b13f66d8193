//! What accompanies a media item on TCP 32469: its cover (`upnp:albumArtURI`) and its sidecar subtitles (LG's
//! `res` entries, Samsung's `sec:CaptionInfoEx` and `CaptionInfo.sec`), served from the library room's
//! `library::art` and `library::sidecar` through the content interface ([`super::catalog::Catalog`]).
//!
//! ```text
//! GET /art/<item id, 16 hex digits>.jpg|png      the item's cover (a container's art names its first item's)
//! GET /sub/<item id, 16 hex digits>.<index>.srt  sidecar <index> of a video (SRT only: what TVs read)
//! ```
//! Both answer only for an item the peer sees, like `/res/`. Covers that are a range of a file (a cover file,
//! a photo's bytes, an MP4's `covr`) go through the stream room ([`crate::stream::span::answer`]); a picture
//! read from tags and subtitle text are small and written whole. Lookups read files, so they run off the
//! connection workers, within [`LOOKUP`].

use super::Live;
use super::catalog::Medium;
use super::http::{item_id, simple};
use crate::system::dual_stack::canonical;
use crate::auth::Visible;
use crate::library::art::{Cover, Picture};
use crate::library::sidecar::{self, Format, Subtitle};
use crate::stream::pace::Class;
use crate::stream::span::{self, Span};
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest a cover or subtitle lookup may take (a folder that does not answer is a 503, not a hung worker).
pub const LOOKUP: Duration = Duration::from_secs(5);

/// Run a lookup that reads files off the connection workers, within [`LOOKUP`]; None when it did not finish.
async fn off_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::time::timeout(LOOKUP, tokio::task::spawn_blocking(f)).await.ok()?.ok()
}

/// The item a companion URL names (`<16 hex digits>.<rest>`), if the peer sees it.
fn visible_item(live: &Live, sees: Visible, name: &str) -> Option<super::catalog::Item> {
    item_id(name).and_then(|id| live.view(sees).item(id).cloned()).filter(|i| sees.allows(i.library))
}

/// `GET`/`HEAD /art/<id>.<ext>`: the item's cover, or 404 with what to do.
pub async fn art(stream: &mut TcpStream, live: &Live, sees: Visible, name: &str, head: bool, keep: bool) -> std::io::Result<bool> {
    let none = b"This item has no cover: browse again, the library may have changed.\r\n";
    let Some(item) = visible_item(live, sees, name) else {
        return simple(stream, 404, "text/plain", &[], none, head, keep).await;
    };
    let catalog = live.catalog.clone();
    let id = item.id;
    let Some(found) = off_worker(move || catalog.cover(id)).await else {
        let retry = [("Retry-After", "5".to_string())];
        return simple(stream, 503, "text/plain", &retry, b"The cover's folder did not answer in time; try again.\r\n", head, keep).await;
    };
    let Some(cover) = found else {
        return simple(stream, 404, "text/plain", &[], none, head, keep).await;
    };
    let fields = vec![
        ("ETag", cover.etag()),
        ("contentFeatures.dlna.org", format!("DLNA.ORG_PN={}", super::content::art_profile(&cover.info))),
        ("transferMode.dlna.org", "Interactive".to_string()),
    ];
    match cover.picture {
        Picture::Memory(ref bytes) => simple(stream, 200, cover.info.mime.as_str(), &fields, bytes, head, keep).await,
        Picture::File { .. } => from_file(stream, live, &item, cover, fields, head, keep).await,
    }
}

/// A cover that is a range of a file: opened as a media file is (inside its library folder, a regular file,
/// within the open deadline), sent by the stream room.
async fn from_file(
    stream: &mut TcpStream,
    live: &Live,
    item: &super::catalog::Item,
    cover: Cover,
    fields: Vec<(&str, String)>,
    head: bool,
    keep: bool,
) -> std::io::Result<bool> {
    let Picture::File { path, start, len } = cover.picture else { return Ok(false) };
    let root = crate::library::root_of(&live.state.snapshot(), item.library, &path);
    let file = match crate::stream::open::open_media(root, path).await {
        Ok(m) => m.file,
        Err(r) => return simple(stream, r.status(), "text/plain", &[], format!("{r}\r\n").as_bytes(), head, keep).await,
    };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nServer: {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\n",
        super::http::server_header(),
        crate::wire::date::now(),
        cover.info.mime.as_str()
    );
    for (k, v) in &fields {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(if keep { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let span = (!head && len > 0).then_some(Span { file, start, len, library: item.library });
    let peer = stream.peer_addr().map(|a| canonical(a.ip()))?;
    let standing = super::http::standing(live, peer);
    Ok(span::answer(stream, out.as_bytes(), span, Class::Lan, standing, &live.streams).await.is_ok() && keep)
}

/// The SRT sidecars of a visible video item, read off the connection workers (None: the folder did not answer).
pub async fn subtitles_of(live: &Live, sees: Visible, item: &super::catalog::Item) -> Option<Vec<Subtitle>> {
    if super::catalog::medium(item.mime) != Medium::Video {
        return Some(Vec::new());
    }
    let view = live.view(sees);
    let item = item.clone();
    off_worker(move || view.subtitles(&item)).await
}

/// `GET`/`HEAD /sub/<id>.<index>.srt`: a video's sidecar subtitle as SRT text (checked by the library room), or
/// 404 with what to do.
pub async fn subtitle(stream: &mut TcpStream, live: &Live, sees: Visible, name: &str, head: bool, keep: bool) -> std::io::Result<bool> {
    let none = b"No such subtitle: browse again, the subtitle file may have been renamed or removed.\r\n";
    let index = name.strip_suffix(".srt").and_then(|n| n.rsplit_once('.')).and_then(|(_, i)| i.parse::<u8>().ok());
    let (Some(item), Some(index)) = (visible_item(live, sees, name), index) else {
        return simple(stream, 404, "text/plain", &[], none, head, keep).await;
    };
    let Some(subs) = subtitles_of(live, sees, &item).await else {
        return simple(stream, 503, "text/plain", &[], b"The subtitle's folder did not answer in time; try again.\r\n", head, keep).await;
    };
    let Some(sub) = subs.into_iter().find(|s| s.index == index && s.format == Format::Srt) else {
        return simple(stream, 404, "text/plain", &[], none, head, keep).await;
    };
    match off_worker(move || sidecar::serve(&sub, false)).await {
        Some(Ok((_, text))) => simple(stream, 200, "text/srt; charset=utf-8", &[], text.as_bytes(), head, keep).await,
        Some(Err(e)) => simple(stream, 404, "text/plain", &[], format!("{e}\r\n").as_bytes(), head, keep).await,
        None => simple(stream, 503, "text/plain", &[], b"The subtitle's folder did not answer in time; try again.\r\n", head, keep).await,
    }
}

/// Samsung's `getCaptionInfo.sec: 1` on a video: the `CaptionInfo.sec` field naming its first SRT sidecar, if it
/// has one (MiniDLNA upnphttp.c answers the same way).
pub async fn caption_field(live: &Live, sees: Visible, item: &super::catalog::Item, base: &str) -> Option<(&'static str, String)> {
    let first = subtitles_of(live, sees, item).await?.into_iter().next()?;
    Some(("CaptionInfo.sec", super::content::subtitle_url(base, item.id, first.index)))
}
