//! Matroska and WebM headers (EBML, RFC 8794; Matroska, RFC 9559): the duration and the first video and audio
//! track's codec, from the Segment's Info and Tracks elements only, within a fixed byte budget.
//!
//! An element (RFC 8794 §4–6):
//!
//! ```text
//! Element ID    1–4 bytes, a VINT kept whole (marker bit included), e.g. 0x1A45DFA3 (EBML header)
//! Data Size     1–8 bytes, a VINT: leading zero bits + 1 = its length; the value is the bits after the
//!               marker; all value bits 1 = unknown size (§6.2, only for Segment and Cluster here)
//! Data          Data Size bytes: child elements (master), or an integer, float, string or binary
//! ```
//!
//! What is read (RFC 9559 §5.1):
//!
//! ```text
//! EBML header (0x1A45DFA3)        skipped by its size
//! Segment (0x18538067) ┬ SeekHead (0x114D9B74) ─ Seek (0x4DBB) ┬ SeekID (0x53AB)
//!                      │                                       └ SeekPosition (0x53AC), from the Segment's data
//!                      ├ Info (0x1549A966) ┬ TimestampScale (0x2AD7B1), uint, ns per tick, default 1,000,000
//!                      │                   └ Duration (0x4489), float (4 or 8 bytes), in ticks
//!                      ├ Tracks (0x1654AE6B) ─ TrackEntry (0xAE) ┬ TrackType (0x83): 1 video, 2 audio
//!                      │                                         └ CodecID (0x86): "V_MPEG4/ISO/AVC"...
//!                      └ Cluster (0x1F43B675)...  never read; a SeekHead entry may point past them
//! ```
//!
//! Why not a general Matroska library: `matroska-demuxer` 0.7 allocates each string and binary element at its
//! declared size before reading it (`vec![0; size]`, up to 2^56), reads on over any run of zero bytes one at a
//! time, and parses Cues, Chapters and Tags whole: a crafted or sparse file can abort the server or hold it for
//! minutes (review finding R-F1's MKV sibling). Here only headers are read until Info and Tracks are found,
//! each of them is read into memory only when it is at most [`ELEMENT_BUDGET`] bytes and inside its Segment,
//! and the whole probe reads at most [`READ_BUDGET`] bytes and looks at most [`MAX_ELEMENTS`] headers.

/// The largest Info or Tracks element read (Tracks holds each track's CodecPrivate: a few KiB in practice).
pub const ELEMENT_BUDGET: u64 = 4 * 1024 * 1024;

/// All bytes one probe reads.
pub const READ_BUDGET: u64 = 8 * 1024 * 1024;

/// Top-level headers looked at (a real Segment starts with a handful before its first Cluster).
pub const MAX_ELEMENTS: u32 = 1024;

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CLUSTER: u32 = 0x1F43_B675;

/// Why the headers could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EbmlError {
    #[error("an element header is cut short or malformed")]
    BadHeader,
    #[error("the file does not start with an EBML header and a Segment")]
    NotMatroska,
    #[error("an element is larger than what holds it")]
    Overruns,
    #[error("an element is larger than the probe budget")]
    TooLarge,
    #[error("the probe read budget is spent")]
    BudgetSpent,
    #[error("no Tracks element found")]
    NoTracks,
}

/// An element header (RFC 8794 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The element id with its length marker bits kept (as the spec writes ids, e.g. 0x1A45DFA3).
    pub id: u32,
    /// None: unknown size (§6.2).
    pub size: Option<u64>,
    /// Bytes of the id and the size field together: where the element's data starts.
    pub header_len: u8,
}

/// A VINT at the start of `b` (§4): (value without the marker, length, all value bits set).
fn vint(b: &[u8], max_len: u32) -> Result<(u64, u8, bool), EbmlError> {
    let first = *b.first().ok_or(EbmlError::BadHeader)?;
    let len = first.leading_zeros() + 1;
    if len > max_len {
        return Err(EbmlError::BadHeader);
    }
    let bytes = b.get(..len as usize).ok_or(EbmlError::BadHeader)?;
    let mut v = u64::from(first) & (0xFF >> len);
    for x in &bytes[1..] {
        v = v << 8 | u64::from(*x);
    }
    let all_ones = v == (1u64 << (7 * len)) - 1;
    Ok((v, len as u8, all_ones))
}

/// Read an element header from the start of `b` (up to 12 bytes).
pub fn header(b: &[u8]) -> Result<Header, EbmlError> {
    let (_, id_len, _) = vint(b, 4)?;
    let id = b[..usize::from(id_len)].iter().fold(0u32, |v, x| v << 8 | u32::from(*x));
    let (size, size_len, unknown) = vint(&b[usize::from(id_len)..], 8)?;
    Ok(Header { id, size: (!unknown).then_some(size), header_len: id_len + size_len })
}

/// The child elements of a master element's data: `(id, data)` each; one that does not fit ends the list.
fn children(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let h = header(rest).ok()?;
        let start = usize::from(h.header_len);
        let len = usize::try_from(h.size?).ok()?;
        let end = start.checked_add(len).filter(|e| *e <= rest.len())?;
        let got = (h.id, &rest[start..end]);
        rest = &rest[end..];
        Some(got)
    })
}

fn uint(data: &[u8]) -> Option<u64> {
    (data.len() <= 8).then(|| data.iter().fold(0u64, |v, x| v << 8 | u64::from(*x)))
}

/// What the headers say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Video {
    /// `Info/Duration` × `TimestampScale` (RFC 9559 §5.1.2.4), in milliseconds.
    pub duration_ms: Option<u64>,
    /// The first video track's CodecID, e.g. `V_MPEG4/ISO/AVC`.
    pub video: Option<String>,
    /// The first audio track's CodecID, e.g. `A_OPUS`.
    pub audio: Option<String>,
}

/// Info's data: the duration in ms (RFC 9559 §5.1.2.4: Duration × TimestampScale ns).
pub fn info_duration_ms(data: &[u8]) -> Option<u64> {
    let mut scale = 1_000_000u64;
    let mut ticks = None;
    for (id, d) in children(data) {
        match id {
            TIMESTAMP_SCALE => scale = uint(d).filter(|s| *s > 0)?,
            DURATION => {
                ticks = match d.len() {
                    4 => Some(f64::from(f32::from_be_bytes(d.try_into().ok()?))),
                    8 => Some(f64::from_be_bytes(d.try_into().ok()?)),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    let ms = ticks? * scale as f64 / 1e6;
    // `as` saturates; NaN and negatives are not a duration.
    (ms.is_finite() && ms >= 0.0).then_some(ms as u64)
}

/// Tracks' data: the first video and audio track's CodecID.
pub fn tracks_codecs(data: &[u8], into: &mut Video) {
    for (id, entry) in children(data) {
        if id != TRACK_ENTRY {
            continue;
        }
        let (mut kind, mut codec) = (None, None);
        for (id, d) in children(entry) {
            match id {
                TRACK_TYPE => kind = uint(d),
                CODEC_ID => codec = std::str::from_utf8(d).ok().map(|s| s.trim_end_matches('\0').to_string()),
                _ => {}
            }
        }
        let codec = codec.filter(|c| !c.is_empty() && c.len() <= 64);
        match kind {
            Some(1) if into.video.is_none() => into.video = codec,
            Some(2) if into.audio.is_none() => into.audio = codec,
            _ => {}
        }
    }
}

/// SeekHead's data: where Info and Tracks are, from the Segment's data start.
fn seek_targets(data: &[u8]) -> Vec<u64> {
    let mut at = Vec::new();
    for (id, seek) in children(data) {
        if id != SEEK {
            continue;
        }
        let (mut target, mut pos) = (None, None);
        for (id, d) in children(seek) {
            match id {
                SEEK_ID => target = Some(d.iter().fold(0u32, |v, x| v.wrapping_shl(8) | u32::from(*x))),
                SEEK_POSITION => pos = uint(d),
                _ => {}
            }
        }
        if let (Some(INFO | TRACKS), Some(p)) = (target, pos)
            && at.len() < 4
        {
            at.push(p);
        }
    }
    at
}

/// Reads through `read_at` within [`READ_BUDGET`].
struct Source<F> {
    read_at: F,
    spent: u64,
}

impl<F: FnMut(u64, &mut [u8]) -> std::io::Result<usize>> Source<F> {
    /// Up to `buf.len()` bytes at `at`; how many.
    fn read(&mut self, at: u64, buf: &mut [u8]) -> Result<usize, EbmlError> {
        self.spent += buf.len() as u64;
        if self.spent > READ_BUDGET {
            return Err(EbmlError::BudgetSpent);
        }
        (self.read_at)(at, buf).map_err(|_| EbmlError::BadHeader)
    }

    fn header(&mut self, at: u64) -> Result<Header, EbmlError> {
        let mut b = [0u8; 12];
        let n = self.read(at, &mut b)?;
        header(&b[..n])
    }

    /// The data of an element of `size` at `at`, which must end by `end`.
    fn data(&mut self, at: u64, size: Option<u64>, end: u64) -> Result<Vec<u8>, EbmlError> {
        let size = size.ok_or(EbmlError::TooLarge)?;
        if size > ELEMENT_BUDGET {
            return Err(EbmlError::TooLarge);
        }
        if at.checked_add(size).is_none_or(|e| e > end) {
            return Err(EbmlError::Overruns);
        }
        let mut v = vec![0u8; size as usize];
        if self.read(at, &mut v)? != v.len() {
            return Err(EbmlError::Overruns);
        }
        Ok(v)
    }
}

/// Read the headers of a Matroska/WebM file of `file_len` bytes through `read_at` (offset, buffer → bytes read;
/// fewer only at the end of the file).
pub fn read(
    file_len: u64,
    read_at: impl FnMut(u64, &mut [u8]) -> std::io::Result<usize>,
) -> Result<Video, EbmlError> {
    let mut src = Source { read_at, spent: 0 };
    let ebml = src.header(0)?;
    let ebml_size = ebml.size.filter(|s| *s <= 4096).ok_or(EbmlError::NotMatroska)?;
    if ebml.id != EBML {
        return Err(EbmlError::NotMatroska);
    }
    let seg_at = u64::from(ebml.header_len) + ebml_size;
    let seg = src.header(seg_at)?;
    if seg.id != SEGMENT {
        return Err(EbmlError::NotMatroska);
    }
    let start = seg_at + u64::from(seg.header_len);
    let end = seg.size.map_or(file_len, |s| start.saturating_add(s)).min(file_len);
    let mut out = Video::default();
    let (mut have_info, mut have_tracks) = (false, false);
    let mut jumps: Vec<u64> = Vec::new();
    let mut at = start;
    let mut looked = 0u32;
    // The elements in order up to the first Cluster (or one of unknown size), then what SeekHead points at.
    let mut next_jump = 0;
    loop {
        if have_info && have_tracks {
            break;
        }
        if at >= end {
            match jumps.get(next_jump) {
                Some(j) => {
                    at = start.saturating_add(*j);
                    next_jump += 1;
                    continue;
                }
                None => break,
            }
        }
        looked += 1;
        if looked > MAX_ELEMENTS {
            break;
        }
        let h = src.header(at)?;
        let data_at = at + u64::from(h.header_len);
        match h.id {
            INFO if !have_info => {
                out.duration_ms = info_duration_ms(&src.data(data_at, h.size, end)?);
                have_info = true;
            }
            TRACKS if !have_tracks => {
                tracks_codecs(&src.data(data_at, h.size, end)?, &mut out);
                have_tracks = true;
            }
            SEEK_HEAD if jumps.is_empty() => jumps = seek_targets(&src.data(data_at, h.size, end)?),
            _ => {}
        }
        at = match h.size {
            Some(s) if h.id != CLUSTER => data_at.saturating_add(s),
            // A Cluster or an element of unknown size: the rest is media; go where SeekHead points.
            _ => end,
        };
    }
    if !have_tracks {
        return Err(EbmlError::NoTracks);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(id: u32, data: &[u8]) -> Vec<u8> {
        let id_bytes = id.to_be_bytes();
        let skip = id_bytes.iter().position(|b| *b != 0).unwrap();
        let mut v = id_bytes[skip..].to_vec();
        // 8-byte size VINT: 0x01 then 7 bytes.
        v.push(0x01);
        v.extend_from_slice(&(data.len() as u64).to_be_bytes()[1..]);
        v.extend_from_slice(data);
        v
    }

    fn track(kind: u8, codec: &str) -> Vec<u8> {
        el(TRACK_ENTRY, &[el(TRACK_TYPE, &[kind]), el(CODEC_ID, codec.as_bytes())].concat())
    }

    fn info(scale: u32, duration: f64) -> Vec<u8> {
        el(INFO, &[el(TIMESTAMP_SCALE, &scale.to_be_bytes()), el(DURATION, &duration.to_be_bytes())].concat())
    }

    fn file(segment: &[u8]) -> Vec<u8> {
        [el(EBML, &el(0x4282, b"matroska")), el(SEGMENT, segment)].concat()
    }

    fn read_slice(f: &[u8]) -> Result<Video, EbmlError> {
        read(f.len() as u64, |at, buf| {
            let from = (at as usize).min(f.len());
            let n = buf.len().min(f.len() - from);
            buf[..n].copy_from_slice(&f[from..from + n]);
            Ok(n)
        })
    }

    #[test]
    fn vints_and_headers() {
        assert_eq!(vint(&[0x81], 8), Ok((1, 1, false)));
        assert_eq!(vint(&[0x40, 0x02], 8), Ok((2, 2, false)));
        assert_eq!(vint(&[0xFF], 8), Ok((127, 1, true)), "all ones: unknown");
        assert_eq!(vint(&[0x00], 8), Err(EbmlError::BadHeader), "no marker in the first byte");
        assert_eq!(vint(&[0x10], 3), Err(EbmlError::BadHeader), "longer than allowed");
        assert_eq!(vint(&[0x20, 0], 8), Err(EbmlError::BadHeader), "cut short");
        assert_eq!(
            header(&[0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Ok(Header { id: SEGMENT, size: None, header_len: 12 })
        );
    }

    #[test]
    fn info_and_tracks_in_order() {
        let f = file(&[info(1_000_000, 5000.0), el(TRACKS, &[track(2, "A_OPUS"), track(1, "V_VP9"), track(1, "V_AV1")].concat())].concat());
        let v = read_slice(&f).unwrap();
        assert_eq!(v, Video { duration_ms: Some(5000), video: Some("V_VP9".into()), audio: Some("A_OPUS".into()) });
    }

    #[test]
    fn seek_head_points_past_the_clusters() {
        let cluster = el(CLUSTER, &[0u8; 64]);
        let tracks = el(TRACKS, &track(1, "V_MPEG4/ISO/AVC"));
        let info = info(1_000, 2_000_000.0);
        // SeekHead (fixed size once built), Cluster, Info, Tracks.
        let seek = |pos: u64, id: u32| el(SEEK, &[el(SEEK_ID, &id.to_be_bytes()), el(SEEK_POSITION, &pos.to_be_bytes())].concat());
        let head_len = el(SEEK_HEAD, &[seek(0, INFO), seek(0, TRACKS)].concat()).len() as u64;
        let info_at = head_len + cluster.len() as u64;
        let tracks_at = info_at + info.len() as u64;
        let head = el(SEEK_HEAD, &[seek(info_at, INFO), seek(tracks_at, TRACKS)].concat());
        let f = file(&[head, cluster, info, tracks].concat());
        let v = read_slice(&f).unwrap();
        assert_eq!(v, Video { duration_ms: Some(2000), video: Some("V_MPEG4/ISO/AVC".into()), audio: None });
    }

    #[test]
    fn huge_declared_sizes_are_refused_before_reading() {
        // A Tracks element declaring 2^55 bytes in a small file, and one past the budget inside a huge Segment.
        let f = [el(EBML, &[]), vec![0x18, 0x53, 0x80, 0x67, 0xFF, 0x16, 0x54, 0xAE, 0x6B, 0x01, 0x80, 0, 0, 0, 0, 0, 0]].concat();
        assert_eq!(read_slice(&f), Err(EbmlError::TooLarge));
        let mut reads = Vec::new();
        let got = read(40 << 30, |at, buf| {
            reads.push(buf.len());
            let f = [el(EBML, &[]), vec![0x18, 0x53, 0x80, 0x67, 0xFF], vec![0x16, 0x54, 0xAE, 0x6B, 0x08, 0xFF, 0xFF, 0xFF, 0xFE]].concat();
            let from = (at as usize).min(f.len());
            let n = buf.len().min(f.len() - from);
            buf[..n].copy_from_slice(&f[from..from + n]);
            Ok(n)
        });
        assert_eq!(got, Err(EbmlError::TooLarge));
        assert!(reads.iter().all(|n| *n <= 12), "only headers were read: {reads:?}");
        // A child that claims more than its parent holds is ignored.
        let bad = [vec![0x86, 0x01, 0, 0, 0, 0, 0, 0x10, 0], b"V_VP8".to_vec()].concat();
        let f = file(&el(TRACKS, &el(TRACK_ENTRY, &[el(TRACK_TYPE, &[1]), bad].concat())));
        assert_eq!(read_slice(&f).unwrap().video, None);
    }

    #[test]
    fn zeros_and_odd_durations_are_no_answer() {
        assert_eq!(read_slice(&[0u8; 4096]), Err(EbmlError::BadHeader), "zero bytes are not skipped one by one");
        assert_eq!(info_duration_ms(&info(1_000_000, f64::NAN)[12..]), None);
        assert_eq!(info_duration_ms(&info(1_000_000, -1.0)[12..]), None);
        assert_eq!(info_duration_ms(&info(1_000_000, 1e300)[12..]), Some(u64::MAX), "saturates");
        assert_eq!(info_duration_ms(&el(DURATION, &1.5f32.to_be_bytes())), Some(1), "4-byte float, default scale");
    }

    #[test]
    fn many_tiny_elements_end_the_walk() {
        let voids: Vec<u8> = std::iter::repeat_n([0xECu8, 0x80], 5000).flatten().collect();
        assert_eq!(read_slice(&file(&voids)), Err(EbmlError::NoTracks));
    }
}
