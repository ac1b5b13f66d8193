//! The content interface between DLNA and whatever knows the media: plain items, no hierarchy.
//!
//! DLNA asks a [`Catalog`] for the items of one library at a time and arranges them itself (see [`super::view`]).
//! The library room's catalog implements it ([`super::library`]).

use crate::state::LibraryId;
use std::path::PathBuf;
use std::time::Duration;

/// What a media file is, as far as the hierarchy cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Movie,
    Episode { show: String, season: u16, episode: u16 },
    Track { artist: String, album: String, number: Option<u16> },
    Photo,
    /// Home videos and everything else that plays: arranged by folder.
    Video,
}

/// One playable file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Stable across rescans (the res URL carries it).
    pub id: u64,
    /// The library the item belongs to (DLNA shows only the libraries the rule allows).
    pub library: LibraryId,
    /// Absolute path; streams open it.
    pub path: PathBuf,
    /// Folder of the file relative to its library folder, `/`-separated, "" at the top (folder views).
    pub folder: String,
    /// The title shown (`dc:title`).
    pub title: String,
    /// Video, audio or image: picks its place in the tree and its upnp:class.
    pub kind: Kind,
    /// Size in bytes (the `res@size`).
    pub size: u64,
    /// Unix seconds.
    pub modified: u64,
    /// The MIME type the stream is served with and `protocolInfo` names.
    pub mime: &'static str,
    /// Playing time, when the probe found it (`res@duration`).
    pub duration: Option<Duration>,
    /// Width and height of a video, when known (`res@resolution`, and the DLNA profile).
    pub resolution: Option<(u32, u32)>,
}

impl Item {
    /// The DLNA class of the item (UPnP AV ContentDirectory:1 Appendix C).
    pub fn class(&self) -> &'static str {
        match self.kind {
            Kind::Movie => "object.item.videoItem.movie",
            Kind::Episode { .. } | Kind::Video => "object.item.videoItem",
            Kind::Track { .. } => "object.item.audioItem.musicTrack",
            Kind::Photo => "object.item.imageItem.photo",
        }
    }

    /// File name extension for the res URL (some renderers look at it).
    pub fn extension(&self) -> &str {
        self.path.extension().and_then(|e| e.to_str()).filter(|e| e.len() <= 5 && e.bytes().all(|b| b.is_ascii_alphanumeric())).unwrap_or("bin")
    }
}

/// Where DLNA gets its items. Implementations must be cheap to call again when `generation` has not changed.
pub trait Catalog: Send + Sync + 'static {
    /// Changes whenever any item is added, removed or changed (drives SystemUpdateID).
    fn generation(&self) -> u64;
    /// Every item of one library.
    fn items(&self, library: LibraryId) -> Vec<Item>;
    /// What is known of item `id`'s cover without its bytes (for `upnp:albumArtURI` and its profile); None when
    /// it has none. May read files the first time (call it off the async runtime for many items).
    fn cover_info(&self, _id: u64) -> Option<crate::library::art::CoverInfo> {
        None
    }
    /// Item `id`'s cover with its bytes (or where they are), for the art URL. Reads files.
    fn cover(&self, _id: u64) -> Option<crate::library::art::Cover> {
        None
    }
    /// The sidecar subtitles of video item `id` (none for other items). Reads its folder.
    fn subtitles(&self, _id: u64) -> Vec<crate::library::sidecar::Subtitle> {
        Vec::new()
    }
}

/// The broad kind of a MIME type, for transfer modes and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    Video,
    Audio,
    Image,
}

/// Whether a MIME type is video, audio or an image: picks the DLNA flags and the upnp:class.
pub fn medium(mime: &str) -> Medium {
    if mime.starts_with("audio/") {
        Medium::Audio
    } else if mime.starts_with("image/") {
        Medium::Image
    } else {
        Medium::Video
    }
}

/// MIME type by file extension; None for files that are not media.
pub fn mime_of(ext: &str) -> Option<&'static str> {
    Some(match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "ts" | "m2ts" | "mts" => "video/mp2t",
        "mpg" | "mpeg" => "video/mpeg",
        "wmv" => "video/x-ms-wmv",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "wma" => "audio/x-ms-wma",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// DLNA.ORG_PN where the MIME type alone decides it (DLNA guidelines, media format profiles). Video profiles
/// depend on codecs, levels and resolutions the catalog does not probe, so they are left out (renderers then go by MIME).
pub fn dlna_profile(mime: &str, resolution: Option<(u32, u32)>) -> Option<&'static str> {
    match mime {
        "audio/mpeg" => Some("MP3"),
        "image/jpeg" => Some(match resolution {
            Some((w, h)) if w <= 640 && h <= 480 => "JPEG_SM",
            Some((w, h)) if w <= 1024 && h <= 768 => "JPEG_MED",
            _ => "JPEG_LRG",
        }),
        "image/png" => Some("PNG_LRG"),
        _ => None,
    }
}

/// DLNA.ORG_FLAGS (DLNA guidelines 7.4.1.3.24): bit 24 streaming mode, 23 interactive, 22 background,
/// 21 connection stall, 20 DLNA v1.5. 32 hex digits, the low 96 bits reserved as zero.
pub fn dlna_flags(medium: Medium) -> &'static str {
    match medium {
        Medium::Image => "00F00000000000000000000000000000",
        Medium::Video | Medium::Audio => "01700000000000000000000000000000",
    }
}

/// The fourth field of protocolInfo (and the value of `contentFeatures.dlna.org`). OP=01: byte seek (Range)
/// is supported, time seek is not (DLNA guidelines 7.4.1.3.19); CI=0: not transcoded.
pub fn content_features(mime: &str, resolution: Option<(u32, u32)>) -> String {
    let pn = dlna_profile(mime, resolution).map(|p| format!("DLNA.ORG_PN={p};")).unwrap_or_default();
    format!("{pn}DLNA.ORG_OP=01;DLNA.ORG_CI=0;DLNA.ORG_FLAGS={}", dlna_flags(medium(mime)))
}

/// The `protocolInfo` of a `res` element: `http-get:*:<mime>:<fourth field>`, which renderers match against
/// what they can play.
pub fn protocol_info(mime: &str, resolution: Option<(u32, u32)>) -> String {
    format!("http-get:*:{mime}:{}", content_features(mime, resolution))
}

/// FNV-1a 64: container ids from names (not for anything secret).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}
