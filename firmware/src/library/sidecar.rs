//! Sidecar subtitles: `.srt` and `.vtt` files beside a video, and the SRT → WebVTT conversion (sans-IO) that
//! lets a browser's `<track>` show them.
//!
//! Which files count, for `Film (2020).mkv`: `Film (2020).srt`, `Film (2020).en.srt`, `Film (2020).pt-BR.vtt`,
//! `Film (2020).en.forced.srt` — the video's file name without its extension, then any dot-separated words,
//! then `.srt` or `.vtt` (any case). The first word that looks like a language tag (two or three letters,
//! optionally `-` and a region: BCP 47's simplest form) is the language. At most [`MAX_SIDECARS`] per video,
//! in file-name order, which is what their stream index follows.
//!
//! Stream ids (Plex's `/library/streams/{id}`): one u32 that names the video and the sidecar, so the access rule
//! binds it to the video's library like any item route ([`super::Catalog::library_of`] decodes it):
//!
//! ```text
//! bit 31      1 (item ids are a counter from 1 and never reach it)
//! bits 30..4  the video's item id (below 2^27)
//! bits 3..0   the sidecar's index (below 16)
//! ```
//!
//! Text: UTF-8 (a BOM is dropped), UTF-16 with a BOM, else Latin-1 (ISO 8859-1: every byte is a character).
//! A file with NUL or other C0 control bytes (other than tab, LF, FF and CR) is not text and is refused, as is
//! a file over [`MAX_SUBTITLE`].
//!
//! SRT (no formal spec; the SubRip layout as players read it) → WebVTT (W3C WebVTT §4):
//!
//! ```text
//! SRT cue:  [index line]                          WebVTT:  WEBVTT
//!           00:01:02,345 --> 00:01:04,000 [X1:..]          <blank line>
//!           text line(s)                                   00:01:02.345 --> 00:01:04.000
//!           <blank line>                                   text line(s), escaped (§4.2.2)
//! ```
//!
//! Malformed cues are skipped, not fatal: a block without a timing line, with a time that does not parse, or
//! that ends before it starts. A file in which no cue survives is refused ([`SubtitleError::NoCues`]). In cue
//! text `&`, `<` and `>` are escaped except the tags both formats share (`<b>`, `<i>`, `<u>` and their ends);
//! `<font …>` tags and SSA overrides (`{\an8}`) are dropped; a `-->` in text is escaped so it cannot end a cue.

use super::kind::Media;
use super::{Catalog, Item, ItemId};
use std::borrow::Cow;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The largest subtitle file read (a feature film's SRT is 50–150 KB).
pub const MAX_SUBTITLE: u64 = 2 * 1024 * 1024;
/// Sidecars listed per video (the stream id has four bits for the index).
pub const MAX_SIDECARS: usize = 16;
/// Entries of a folder looked at for sidecars.
const DIR_CAP: usize = 4096;
/// Bit 31 of a stream id (layout in the module doc).
const STREAM_BIT: u32 = 0x8000_0000;

/// A sidecar's format, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// SubRip `.srt`.
    Srt,
    /// WebVTT `.vtt`.
    Vtt,
}

impl Format {
    /// The codec name Plex uses for the stream (`srt`, `vtt`).
    pub fn codec(self) -> &'static str {
        match self {
            Format::Srt => "srt",
            Format::Vtt => "vtt",
        }
    }

    /// The media type of the text served in this format (UTF-8).
    pub fn mime(self) -> &'static str {
        match self {
            Format::Srt => "application/x-subrip; charset=utf-8",
            Format::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

/// One sidecar subtitle file of a video.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subtitle {
    /// Its place among the video's sidecars (file-name order), below [`MAX_SIDECARS`].
    pub index: u8,
    /// Its stream id (see the module doc): what `/library/streams/{id}` takes.
    pub stream: u32,
    /// The file.
    pub path: PathBuf,
    /// SRT or WebVTT.
    pub format: Format,
    /// The language tag the name gives, lower-case (`en`, `pt-br`, `eng`), if any.
    pub language: Option<String>,
    /// The name says `forced` (only the lines in a foreign language).
    pub forced: bool,
}

impl Subtitle {
    /// The ISO 639-2/B code of the language (`eng`), when the tag names one Hearth knows (Plex's
    /// `languageCode`).
    pub fn language_code(&self) -> Option<&'static str> {
        language(self.language.as_deref()?).map(|(code, _)| code)
    }

    /// The English name of the language (`English`), when known (Plex's `language`).
    pub fn language_name(&self) -> Option<&'static str> {
        language(self.language.as_deref()?).map(|(_, name)| name)
    }
}

/// ISO 639-1 and 639-2/B codes of common subtitle languages → (639-2/B, English name).
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("ar", "ara", "Arabic"), ("bg", "bul", "Bulgarian"), ("ca", "cat", "Catalan"), ("cs", "cze", "Czech"),
    ("da", "dan", "Danish"), ("de", "ger", "German"), ("el", "gre", "Greek"), ("en", "eng", "English"),
    ("es", "spa", "Spanish"), ("et", "est", "Estonian"), ("fi", "fin", "Finnish"), ("fr", "fre", "French"),
    ("he", "heb", "Hebrew"), ("hi", "hin", "Hindi"), ("hr", "hrv", "Croatian"), ("hu", "hun", "Hungarian"),
    ("id", "ind", "Indonesian"), ("is", "ice", "Icelandic"), ("it", "ita", "Italian"), ("ja", "jpn", "Japanese"),
    ("ko", "kor", "Korean"), ("lt", "lit", "Lithuanian"), ("lv", "lav", "Latvian"), ("nl", "dut", "Dutch"),
    ("no", "nor", "Norwegian"), ("nb", "nob", "Norwegian Bokmål"), ("pl", "pol", "Polish"),
    ("pt", "por", "Portuguese"), ("ro", "rum", "Romanian"), ("ru", "rus", "Russian"), ("sk", "slo", "Slovak"),
    ("sl", "slv", "Slovenian"), ("sr", "srp", "Serbian"), ("sv", "swe", "Swedish"), ("th", "tha", "Thai"),
    ("tr", "tur", "Turkish"), ("uk", "ukr", "Ukrainian"), ("vi", "vie", "Vietnamese"), ("zh", "chi", "Chinese"),
];

fn language(tag: &str) -> Option<(&'static str, &'static str)> {
    let primary = tag.split('-').next()?;
    LANGUAGES
        .iter()
        .find(|(two, three, _)| *two == primary || *three == primary)
        .map(|(_, three, name)| (*three, *name))
}

/// The stream id of sidecar `index` of `item` (layout in the module doc); None when either is out of range.
pub fn stream_id(item: ItemId, index: usize) -> Option<u32> {
    (item < 1 << 27 && index < MAX_SIDECARS).then(|| STREAM_BIT | item << 4 | index as u32)
}

/// The item and sidecar index a stream id names; None for an id that is not a stream id (an item's or group's).
pub fn stream_of(id: u32) -> Option<(ItemId, usize)> {
    (id & STREAM_BIT != 0).then(|| ((id & !STREAM_BIT) >> 4, (id & 0xF) as usize))
}

/// Looks like a language tag: `en`, `eng`, `pt-br`, `zh-hant`.
fn is_language_tag(word: &str) -> bool {
    let mut parts = word.split('-');
    let primary = parts.next().unwrap_or_default();
    let region = parts.next();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && region.is_none_or(|r| (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts.next().is_none()
}

/// What a file name says as a sidecar of the video whose name without extension is `stem`: format, language,
/// forced. None when it is not one.
pub fn parse_name(stem: &str, name: &str) -> Option<(Format, Option<String>, bool)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let (words, ext) = rest.rsplit_once('.').map_or(("", rest), |(w, e)| (w, e));
    let format = match ext.to_ascii_lowercase().as_str() {
        "srt" => Format::Srt,
        "vtt" => Format::Vtt,
        _ => return None,
    };
    let words: Vec<String> = words.split('.').filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect();
    let forced = words.iter().any(|w| w == "forced");
    let language = words.into_iter().find(|w| w != "forced" && w != "sdh" && is_language_tag(w));
    Some((format, language, forced))
}

/// The sidecars beside the video at `media` (item `item`), in file-name order (at most [`MAX_SIDECARS`]).
pub fn beside(item: ItemId, media: &Path) -> Vec<Subtitle> {
    let (Some(dir), Some(stem)) = (media.parent(), media.file_stem().and_then(|s| s.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(String, PathBuf)> = entries
        .take(DIR_CAP)
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = std::str::from_utf8(e.file_name().as_bytes()).ok()?.to_owned();
            parse_name(stem, &name)?;
            e.file_type().ok().filter(|t| t.is_file() || t.is_symlink())?;
            Some((name, e.path()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .take(MAX_SIDECARS)
        .enumerate()
        .filter_map(|(index, (name, path))| {
            let (format, language, forced) = parse_name(stem, &name)?;
            Some(Subtitle { index: index as u8, stream: stream_id(item, index)?, path, format, language, forced })
        })
        .collect()
}

/// Why a subtitle file cannot be served; the text is shown to the person who asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubtitleError {
    #[error("the subtitle file is {0} bytes; Hearth serves subtitle files up to 2 MiB")]
    TooLarge(u64),
    #[error("the subtitle file is not text (a control byte at offset {0}); it cannot be shown as subtitles")]
    NotText(usize),
    #[error("the subtitle file has no cue Hearth can read (an SRT cue is a line like 00:00:01,000 --> 00:00:02,500, then its text)")]
    NoCues,
    #[error("the WebVTT file does not start with the line WEBVTT, so players will not read it")]
    NotWebVtt,
    #[error("the subtitle file could not be read: {0}")]
    Unreadable(String),
}

/// Read a subtitle file whole, refusing one over [`MAX_SUBTITLE`] (without reading it).
pub fn read(path: &Path) -> Result<Vec<u8>, SubtitleError> {
    let unreadable = |e: std::io::Error| SubtitleError::Unreadable(e.to_string());
    let f = std::fs::File::open(path).map_err(unreadable)?;
    let len = f.metadata().map_err(unreadable)?.len();
    if len > MAX_SUBTITLE {
        return Err(SubtitleError::TooLarge(len));
    }
    let mut out = Vec::with_capacity(len as usize);
    f.take(MAX_SUBTITLE + 1).read_to_end(&mut out).map_err(unreadable)?;
    if out.len() as u64 > MAX_SUBTITLE {
        return Err(SubtitleError::TooLarge(out.len() as u64));
    }
    Ok(out)
}

/// The text of a subtitle file (encodings in the module doc), or why it is not text.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, SubtitleError> {
    if bytes.len() as u64 > MAX_SUBTITLE {
        return Err(SubtitleError::TooLarge(bytes.len() as u64));
    }
    let text: Cow<'_, str> = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        String::from_utf8_lossy(rest)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes)?.into()
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes)?.into()
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.into(),
            // ISO 8859-1: each byte is the code point of the same value.
            Err(_) => bytes.iter().map(|b| char::from(*b)).collect::<String>().into(),
        }
    };
    match text.char_indices().find(|(_, c)| c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\x0c' | '\r')) {
        Some((at, _)) => Err(SubtitleError::NotText(at)),
        None => Ok(text),
    }
}

fn utf16(b: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, SubtitleError> {
    let units = b.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .enumerate()
        .map(|(i, c)| c.map_err(|_| SubtitleError::NotText(2 + 2 * i)))
        .collect()
}

/// A WebVTT file's text, checked: text (as [`decode`]) that starts with `WEBVTT` (WebVTT §4.1).
pub fn check_vtt(bytes: &[u8]) -> Result<String, SubtitleError> {
    let text = decode(bytes)?;
    let rest = text.strip_prefix("WEBVTT").ok_or(SubtitleError::NotWebVtt)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])) {
        return Err(SubtitleError::NotWebVtt);
    }
    Ok(text.into_owned())
}

/// An SRT file's text, checked and with its line ends made `\n`: what `/library/streams/{id}` serves for an
/// `.srt`. Refused like [`srt_to_vtt`] when no cue can be read.
pub fn check_srt(bytes: &[u8]) -> Result<String, SubtitleError> {
    srt_to_vtt(bytes)?;
    Ok(decode(bytes)?.replace("\r\n", "\n").replace('\r', "\n"))
}

/// A time as SRT writes it (`HH:MM:SS,mmm`; also `.` for the comma, `MM:SS,mmm`, and one to three digits of
/// milliseconds), in milliseconds.
fn parse_time(t: &str) -> Option<u64> {
    let t = t.trim();
    let (clock, frac) = t.split_once([',', '.']).unwrap_or((t, "0"));
    if frac.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = frac.parse::<u64>().ok()? * 10u64.pow(3 - frac.len() as u32);
    let fields: Vec<&str> = clock.split(':').collect();
    let num = |s: &str, max: u64| -> Option<u64> {
        (!s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten().filter(|n| *n <= max)
    };
    let (h, m, s) = match fields.as_slice() {
        [h, m, s] => (num(h, 999)?, num(m, 59)?, num(s, 59)?),
        [m, s] => (0, num(m, 59)?, num(s, 59)?),
        _ => return None,
    };
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// WebVTT §4.2.1: `HH:MM:SS.mmm`.
fn vtt_time(ms: u64) -> String {
    let (h, rest) = (ms / 3_600_000, ms % 3_600_000);
    format!("{h:02}:{:02}:{:02}.{:03}", rest / 60_000, rest % 60_000 / 1000, rest % 1000)
}

/// A timing line: `start --> end`, anything after the end time (SRT position hints) dropped.
fn parse_timing(line: &str) -> Option<(u64, u64)> {
    let (a, b) = line.split_once("-->")?;
    let b = b.split_whitespace().next()?;
    Some((parse_time(a)?, parse_time(b)?))
}

/// Cue text for WebVTT (§4.2.2): the shared tags kept, `<font>` and other tags and `{\…}` overrides dropped,
/// `&`, `<`, `>` escaped.
fn cue_text(line: &str) -> String {
    const KEPT: [&str; 6] = ["<b>", "</b>", "<i>", "</i>", "<u>", "</u>"];
    let mut out = String::with_capacity(line.len() + 8);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        let lower = rest.get(..4.min(rest.len())).map(str::to_ascii_lowercase).unwrap_or_default();
        if let Some(tag) = KEPT.iter().find(|t| lower.starts_with(**t)) {
            out.push_str(tag);
            rest = &rest[tag.len()..];
        } else if c == '<' && let Some(end) = rest.find('>').filter(|_| {
            let l = rest.to_ascii_lowercase();
            l.starts_with("<font") || l.starts_with("</font")
        }) {
            rest = &rest[end + 1..];
        } else if c == '{' && rest.starts_with("{\\") && let Some(end) = rest.find('}') {
            rest = &rest[end + 1..];
        } else {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// What [`srt_to_vtt`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The WebVTT file.
    pub vtt: String,
    /// Cues written.
    pub cues: usize,
    /// Blocks skipped as malformed (see the module doc).
    pub skipped: usize,
}

/// Convert an SRT file to WebVTT (rules in the module doc). Sans-IO; at most [`MAX_SUBTITLE`] bytes in.
pub fn srt_to_vtt(bytes: &[u8]) -> Result<Converted, SubtitleError> {
    let text = decode(bytes)?;
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Converted { vtt: String::from("WEBVTT\n\n"), cues: 0, skipped: 0 };
    let mut lines = text.lines().peekable();
    loop {
        while lines.peek().is_some_and(|l| l.trim().is_empty()) {
            lines.next();
        }
        let Some(first) = lines.next() else { break };
        let block: Vec<&str> = std::iter::once(first).chain(lines.by_ref().take_while(|l| !l.trim().is_empty())).collect();
        let at = block.iter().position(|l| l.contains("-->"));
        let timing = at.filter(|at| *at <= 1).and_then(|at| parse_timing(block[at]).map(|t| (at, t)));
        let Some((at, (start, end))) = timing.filter(|(_, (s, e))| e >= s) else {
            out.skipped += 1;
            continue;
        };
        out.vtt.push_str(&vtt_time(start));
        out.vtt.push_str(" --> ");
        out.vtt.push_str(&vtt_time(end));
        out.vtt.push('\n');
        for l in &block[at + 1..] {
            out.vtt.push_str(&cue_text(l));
            out.vtt.push('\n');
        }
        out.vtt.push('\n');
        out.cues += 1;
    }
    if out.cues == 0 {
        return Err(SubtitleError::NoCues);
    }
    Ok(out)
}

/// The text a sidecar is served as: as stored (checked) or, with `vtt`, as WebVTT (converted from SRT).
pub fn serve(sub: &Subtitle, vtt: bool) -> Result<(Format, String), SubtitleError> {
    let bytes = read(&sub.path)?;
    match (sub.format, vtt) {
        (Format::Srt, true) => Ok((Format::Vtt, srt_to_vtt(&bytes)?.vtt)),
        (Format::Srt, false) => Ok((Format::Srt, check_srt(&bytes)?)),
        (Format::Vtt, _) => Ok((Format::Vtt, check_vtt(&bytes)?)),
    }
}

impl Catalog {
    /// The sidecar subtitles of a video item (none for other items or ids). Reads its folder.
    pub fn subtitles(&self, item: ItemId) -> Vec<Subtitle> {
        match self.item(item) {
            Some(i) if i.media == Media::Video => beside(i.id, i.path()),
            _ => Vec::new(),
        }
    }

    /// The video and sidecar a stream id names, if both exist now.
    pub fn subtitle(&self, stream: u32) -> Option<(Item, Subtitle)> {
        let (item, index) = stream_of(stream)?;
        let sub = self.subtitles(item).into_iter().find(|s| usize::from(s.index) == index)?;
        Some((self.item(item)?, sub))
    }
}

#[cfg(test)]
#[path = "sidecar_tests.rs"]
mod tests;
