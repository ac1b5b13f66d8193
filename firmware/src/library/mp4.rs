//! MP4 and QuickTime headers (ISO/IEC 14496-12, the ISO base media file format): the duration and the first
//! video and audio track's sample entry, read from `moov` only, within a fixed byte budget.
//!
//! A box (§4.2 "Object Structure"):
//!
//! ```text
//! offset 0   size       u32 big-endian: the whole box, header included
//!                       0 = the box runs to the end of its parent (top level: of the file)
//!                       1 = the 64-bit largesize below holds the size
//! offset 4   type       4 bytes (fourcc), e.g. b"moov"
//! offset 8   largesize  u64 big-endian, only when size == 1
//! then       the body: child boxes for containers (moov, trak, mdia, minf, stbl), fields for the others
//! ```
//!
//! What is read from the body of `moov` (§8.2.1):
//!
//! ```text
//! moov ─ mvhd (§8.2.2, full box)      v0: created u32, modified u32, timescale u32, duration u32
//!      │                              v1: created u64, modified u64, timescale u32, duration u64
//!      └ trak ─ mdia ┬ hdlr (§8.4.3)  version+flags u32, pre_defined u32, handler_type fourcc (vide, soun)
//!                    └ minf ─ stbl ─ stsd (§8.5.2)  version+flags u32, entry_count u32, then sample
//!                                                   entries as boxes: the first one's type is the codec
//!                                                   (avc1, hvc1, mp4a, Opus...)
//! ```
//!
//! Why not a general MP4 library: the `mp4` crate (and most readers) trust each box's declared size and each
//! table's entry count and reserve memory for them before reading (review finding R-F1: an `stts` count of
//! 0xFFFFFFFF in a sparse 40 GiB file asked for 32 GiB and aborted the server). Here the file's top-level
//! boxes are walked by their headers only ([`Walk`], sans-IO); `moov` is refused when it is larger than
//! [`MOOV_BUDGET`] or than the file, and read whole into memory; everything else is parsed from that slice, where
//! every child must fit inside its parent. No table is read, so no count is trusted; the memory a probe takes
//! is at most [`MOOV_BUDGET`] plus a few strings.

/// The largest `moov` probed. A `moov` is mostly its sample tables; for a two-hour film at 24 fps with AAC at
/// 48 kHz (an estimate from the table layouts, §8.6–8.7): 172,800 video samples × about 16 bytes (stsz, ctts,
/// stco) plus 337,500 audio frames × about 4 bytes (stsz) ≈ 4 MB. 16 MiB leaves room for long multi-track
/// files.
pub const MOOV_BUDGET: u64 = 16 * 1024 * 1024;

/// Top-level boxes looked at before giving up (a real file has a handful: ftyp, free, mdat, moov, maybe
/// fragments). Bounds the time a file of millions of tiny boxes can take.
pub const MAX_TOP_LEVEL_BOXES: u32 = 4096;

/// Nesting levels followed below `moov` (moov/trak/mdia/minf/stbl/stsd is 6).
const MAX_DEPTH: usize = 8;

/// One box header (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    /// The box type fourcc, e.g. `moov`.
    pub kind: [u8; 4],
    /// 8, or 16 with a largesize.
    pub header_len: u8,
    /// The whole box, header included; `None` when the box runs to the end of its parent (size 0).
    pub size: Option<u64>,
}

/// Why a box header or body could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoxError {
    #[error("the box header is cut short")]
    Short,
    #[error("a box is smaller than its own header")]
    TooSmall,
    #[error("a box is larger than what holds it")]
    Overruns,
    #[error("the file has no moov box")]
    NoMoov,
    #[error("moov is larger than the probe budget")]
    MoovTooLarge,
    #[error("too many top-level boxes")]
    TooManyBoxes,
}

/// Read a box header from the start of `b` (at least 8 bytes, 16 for a largesize).
pub fn header(b: &[u8]) -> Result<BoxHeader, BoxError> {
    let fixed: &[u8; 8] = b.get(..8).and_then(|s| s.try_into().ok()).ok_or(BoxError::Short)?;
    let small = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    let kind = [fixed[4], fixed[5], fixed[6], fixed[7]];
    let (header_len, size) = match small {
        0 => (8u8, None),
        1 => {
            let large: [u8; 8] = b.get(8..16).and_then(|s| s.try_into().ok()).ok_or(BoxError::Short)?;
            (16, Some(u64::from_be_bytes(large)))
        }
        n => (8, Some(u64::from(n))),
    };
    if size.is_some_and(|s| s < u64::from(header_len)) {
        return Err(BoxError::TooSmall);
    }
    Ok(BoxHeader { kind, header_len, size })
}

/// The walk over a file's top-level boxes, sans-IO: it says which bytes to read next ([`Walk::want`]), the
/// caller reads them and hands them to [`Walk::feed`], until it answers where `moov` is.
#[derive(Debug)]
pub struct Walk {
    file_len: u64,
    at: u64,
    seen: u32,
}

/// What the walk needs next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read up to 16 bytes at this offset (fewer at the end of the file) and feed them.
    Header { at: u64 },
    /// `moov`'s body is at `at`, `len` bytes: read it whole and pass it to [`parse_moov`].
    Moov { at: u64, len: u64 },
}

impl Walk {
    /// A walk over a file of `file_len` bytes, from its first box.
    pub fn new(file_len: u64) -> Walk {
        Walk { file_len, at: 0, seen: 0 }
    }

    /// The first step.
    pub fn want(&self) -> Step {
        Step::Header { at: self.at }
    }

    /// The bytes read for the last [`Step::Header`]; the next step, or why there is none.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Step, BoxError> {
        self.seen += 1;
        if self.seen > MAX_TOP_LEVEL_BOXES {
            return Err(BoxError::TooManyBoxes);
        }
        let h = header(bytes)?;
        let left = self.file_len.saturating_sub(self.at);
        let size = h.size.unwrap_or(left);
        if size > left {
            return Err(BoxError::Overruns);
        }
        if &h.kind == b"moov" {
            if size > MOOV_BUDGET {
                return Err(BoxError::MoovTooLarge);
            }
            return Ok(Step::Moov { at: self.at + u64::from(h.header_len), len: size - u64::from(h.header_len) });
        }
        self.at += size;
        if self.at >= self.file_len || size == 0 {
            return Err(BoxError::NoMoov);
        }
        Ok(Step::Header { at: self.at })
    }
}

/// What `moov` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Movie {
    /// `mvhd` duration over its timescale, in milliseconds.
    pub duration_ms: Option<u64>,
    /// The first video track's sample entry type (fourcc), e.g. `avc1`.
    pub video: Option<[u8; 4]>,
    /// The first audio track's sample entry type, e.g. `mp4a`.
    pub audio: Option<[u8; 4]>,
}

/// The child boxes of a body: `(type, body)` each, in order; a child that does not fit ends the list with an
/// error.
fn children(body: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), BoxError>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let got = header(rest).and_then(|h| {
            let size = match h.size {
                None => rest.len(),
                Some(s) => usize::try_from(s).ok().filter(|s| *s <= rest.len()).ok_or(BoxError::Overruns)?,
            };
            let body = &rest[usize::from(h.header_len)..size];
            rest = &rest[size..];
            Ok((h.kind, body))
        });
        if got.is_err() {
            rest = &[];
        }
        Some(got)
    })
}

/// The first child of type `kind` (children that do not fit are ignored from there on).
fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(body).map_while(Result::ok).find(|(k, _)| k == kind).map(|(_, b)| b)
}

/// The body at `path` below `body` (each step the first child of that type).
fn descend<'a>(body: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    debug_assert!(path.len() <= MAX_DEPTH);
    path.iter().try_fold(body, |b, k| child(b, k))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parse `moov`'s body (the bytes after its header).
pub fn parse_moov(moov: &[u8]) -> Movie {
    let mut m = Movie { duration_ms: child(moov, b"mvhd").and_then(mvhd_duration_ms), ..Movie::default() };
    for (kind, trak) in children(moov).map_while(Result::ok) {
        if &kind != b"trak" {
            continue;
        }
        let Some(mdia) = child(trak, b"mdia") else { continue };
        // §8.4.3: handler_type after version+flags and pre_defined.
        let Some(handler) = child(mdia, b"hdlr").and_then(|h| h.get(8..12)) else { continue };
        // §8.5.2: the first sample entry after version+flags and entry_count.
        let entry = descend(mdia, &[b"minf", b"stbl", b"stsd"])
            .and_then(|stsd| stsd.get(8..))
            .and_then(|e| header(e).ok())
            .map(|h| h.kind);
        match handler {
            b"vide" if m.video.is_none() => m.video = entry,
            b"soun" if m.audio.is_none() => m.audio = entry,
            _ => {}
        }
    }
    m
}

/// §8.2.2: duration ÷ timescale, in ms. An all-ones duration means unknown.
fn mvhd_duration_ms(b: &[u8]) -> Option<u64> {
    let (timescale, duration) = match b.first()? {
        0 => (be_u32(b, 12)?, be_u32(b, 16).filter(|d| *d != u32::MAX).map(u64::from)?),
        1 => (be_u32(b, 20)?, be_u64(b, 24).filter(|d| *d != u64::MAX)?),
        _ => return None,
    };
    if timescale == 0 {
        return None;
    }
    u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok()
}

/// Read the headers of an MP4/QuickTime file of `file_len` bytes through `read_at` (offset, buffer → bytes
/// read; fewer only at the end of the file). Reads 16 bytes per top-level box and then `moov` once.
pub fn read(
    file_len: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Result<Movie, BoxError> {
    let mut walk = Walk::new(file_len);
    let mut step = walk.want();
    loop {
        match step {
            Step::Header { at } => {
                let mut h = [0u8; 16];
                let n = read_at(at, &mut h).map_err(|_| BoxError::Short)?;
                step = walk.feed(&h[..n])?;
            }
            Step::Moov { at, len } => {
                // Bounded by MOOV_BUDGET and by the file (the walk checked both).
                let mut body = vec![0u8; len as usize];
                let n = read_at(at, &mut body).map_err(|_| BoxError::Short)?;
                if n != body.len() {
                    return Err(BoxError::Short);
                }
                return Ok(parse_moov(&body));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn large(kind: &[u8; 4], size: u64) -> Vec<u8> {
        let mut v = 1u32.to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(&size.to_be_bytes());
        v
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4 + 8];
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&duration.to_be_bytes());
        b.extend_from_slice(&[0u8; 80]);
        mk(b"mvhd", &b)
    }

    fn trak(handler: &[u8; 4], entry: &[u8; 4]) -> Vec<u8> {
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 13]);
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(mk(entry, &[0u8; 20]));
        let stbl = mk(b"stbl", &mk(b"stsd", &stsd));
        let minf = mk(b"minf", &stbl);
        let mdia = mk(b"mdia", &[mk(b"hdlr", &hdlr), minf].concat());
        mk(b"trak", &mdia)
    }

    fn read_slice(file: &[u8]) -> Result<Movie, BoxError> {
        read(file.len() as u64, |at, buf| {
            let from = (at as usize).min(file.len());
            let n = buf.len().min(file.len() - from);
            buf[..n].copy_from_slice(&file[from..from + n]);
            Ok(n)
        })
    }

    #[test]
    fn headers_small_large_to_the_end_and_bad() {
        assert_eq!(header(&mk(b"ftyp", &[0; 8])), Ok(BoxHeader { kind: *b"ftyp", header_len: 8, size: Some(16) }));
        assert_eq!(header(&large(b"mdat", 1 << 40)), Ok(BoxHeader { kind: *b"mdat", header_len: 16, size: Some(1 << 40) }));
        assert_eq!(header(b"\0\0\0\0moov"), Ok(BoxHeader { kind: *b"moov", header_len: 8, size: None }));
        assert_eq!(header(b"\0\0\0\x07free"), Err(BoxError::TooSmall), "smaller than its header");
        assert_eq!(header(&large(b"mdat", 15)), Err(BoxError::TooSmall), "largesize smaller than 16");
        assert_eq!(header(b"\0\0\0\x01mdat\0\0"), Err(BoxError::Short), "largesize cut short");
        assert_eq!(header(b"\0\0\0"), Err(BoxError::Short));
    }

    #[test]
    fn finds_moov_after_mdat_and_reads_duration_and_codecs() {
        let moov = mk(b"moov", &[mvhd_v0(1000, 3000), trak(b"soun", b"mp4a"), trak(b"vide", b"avc1"), trak(b"vide", b"hvc1")].concat());
        let file = [mk(b"ftyp", b"isom\0\0\0\0"), mk(b"mdat", &[7; 100]), moov].concat();
        let m = read_slice(&file).unwrap();
        assert_eq!(m, Movie { duration_ms: Some(3000), video: Some(*b"avc1"), audio: Some(*b"mp4a") });
    }

    #[test]
    fn mvhd_version_1_and_unknown_durations() {
        let mut v1 = vec![1, 0, 0, 0];
        v1.extend_from_slice(&[0; 16]);
        v1.extend_from_slice(&90_000u32.to_be_bytes());
        v1.extend_from_slice(&(90_000u64 * 7200).to_be_bytes());
        assert_eq!(mvhd_duration_ms(&v1), Some(7_200_000));
        let mut unknown = v1.clone();
        unknown[24..32].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(mvhd_duration_ms(&unknown), None);
        assert_eq!(parse_moov(&mvhd_v0(0, 5)).duration_ms, None, "timescale 0");
        assert_eq!(parse_moov(&mvhd_v0(600, u32::MAX)).duration_ms, None, "all ones: unknown");
        assert_eq!(mvhd_duration_ms(&[0, 0, 0]), None, "cut short");
    }

    #[test]
    fn the_crafted_file_of_r_f1_is_refused_from_its_headers() {
        // ftyp, then moov/trak/mdia/minf/stbl each with a largesize that fills a 40 GiB file, then stts with
        // entry_count 0xFFFFFFFF: moov is larger than the budget, nothing past its header is read.
        let len = 40u64 << 30;
        let ftyp = mk(b"ftyp", b"isom\0\0\0\0");
        let mut file = ftyp.clone();
        let mut left = len - ftyp.len() as u64;
        for k in [b"moov", b"trak", b"mdia", b"minf", b"stbl"] {
            file.extend(large(k, left));
            left -= 16;
        }
        let mut reads = Vec::new();
        let got = read(len, |at, buf| {
            reads.push((at, buf.len()));
            let from = (at as usize).min(file.len());
            let n = buf.len().min(file.len() - from);
            buf[..n].copy_from_slice(&file[from..from + n]);
            Ok(n)
        });
        assert_eq!(got, Err(BoxError::MoovTooLarge));
        assert!(reads.iter().all(|(_, n)| *n <= 16), "only headers were read: {reads:?}");
    }

    #[test]
    fn boxes_that_overrun_their_file_or_parent() {
        let file = [mk(b"ftyp", &[0; 8]), large(b"mdat", 1 << 33)].concat();
        assert_eq!(read_slice(&file), Err(BoxError::Overruns), "mdat larger than the file");
        let file = [mk(b"ftyp", &[0; 8]), mk(b"free", &[0; 4])].concat();
        assert_eq!(read_slice(&file), Err(BoxError::NoMoov));
        // A trak whose mdia claims more than the trak holds: that track is skipped, the next is read.
        let bad = mk(b"trak", &large(b"mdia", 1 << 40));
        let moov = [mvhd_v0(1000, 1000), bad, trak(b"vide", b"vp09")].concat();
        assert_eq!(parse_moov(&moov), Movie { duration_ms: Some(1000), video: Some(*b"vp09"), audio: None });
        // A size-0 box runs to the end of its parent.
        let moov = [mvhd_v0(10, 20), b"\0\0\0\0trak".to_vec(), trak(b"soun", b"Opus")[8..].to_vec()].concat();
        assert_eq!(parse_moov(&moov).audio, Some(*b"Opus"));
    }

    #[test]
    fn many_tiny_boxes_end_the_walk() {
        let file: Vec<u8> = std::iter::repeat_n(mk(b"free", &[]), 5000).flatten().collect();
        assert_eq!(read_slice(&file), Err(BoxError::TooManyBoxes));
    }

    #[test]
    fn moov_at_the_budget_is_read_one_byte_over_is_not() {
        let mut w = Walk::new(u64::MAX);
        let at_budget = [(MOOV_BUDGET as u32).to_be_bytes().as_slice(), b"moov"].concat();
        assert_eq!(w.feed(&at_budget), Ok(Step::Moov { at: 8, len: MOOV_BUDGET - 8 }));
        let mut w = Walk::new(u64::MAX);
        let over = [(MOOV_BUDGET as u32 + 1).to_be_bytes().as_slice(), b"moov"].concat();
        assert_eq!(w.feed(&over), Err(BoxError::MoovTooLarge));
    }
}
