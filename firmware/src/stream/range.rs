//! Range requests and conditional headers, sans-IO (RFC 9110 §13 and §14).
//!
//! Hearth serves one range per response. A `Range` with several ranges is answered as if it were absent
//! (200 with the whole file), which RFC 9110 §14.2 allows ("A server MAY ignore the Range header field");
//! if none of the ranges is satisfiable, 416 (§15.5.17), however many there are. A malformed `Range` is
//! ignored the same way (§14.2: a server ignores a Range it does not understand), and so is a repeated one
//! ([`single`]: Range is not a list field). Every server of files asks this module: the fast path and the
//! copy path on 32400 (`stream`, `http::plex`) and DLNA's `/res/` on 32469.

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// 200 with the whole representation.
    Full,
    /// 206 with bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// One parsed byte-range-spec (RFC 9110 §14.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-suffix`.
    Suffix(u64),
}

/// Parse a `Range` header value against a representation of `size` bytes.
pub fn plan(value: &[u8], size: u64) -> Plan {
    let Some(specs) = parse(value) else {
        return Plan::Full;
    };
    let mut satisfiable = specs.iter().filter_map(|s| resolve(*s, size));
    match (specs.len(), satisfiable.next()) {
        // §15.5.17: none of the ranges is satisfiable → 416, whether one range or many.
        (_, None) => Plan::Unsatisfiable,
        (1, Some((start, end))) => Plan::Partial { start, end },
        // Several ranges: RFC 9110 §14.2 lets us ignore Range.
        _ => Plan::Full,
    }
}

/// The value of a field that a request may carry once, or None when it is absent or repeated.
///
/// `Range` is not a list field (RFC 9110 §14.2, §5.3: only list fields may be sent more than once), so a
/// request with two has no Range the server can trust; it is ignored as an invalid Range is (§14.2), and
/// every path that serves files (the fast path, hyper's copy path, DLNA) asks this one function.
pub fn single<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let mut values = values.into_iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// RFC 9110 §14.1.2: `ranges-specifier = range-unit "=" range-set`; `range-set = 1#range-spec`;
/// `int-range = first-pos "-" [ last-pos ]`; `suffix-range = "-" suffix-length`. No whitespace is allowed
/// inside a range-spec or around `=`; the list rule (§5.6.1) allows OWS around commas and empty elements.
/// None = not a bytes range we understand (the caller ignores it).
fn parse(value: &[u8]) -> Option<Vec<Spec>> {
    const OWS: [char; 2] = [' ', '\t'];
    let text = std::str::from_utf8(value).ok()?.trim_matches(OWS);
    let (unit, set) = text.split_once('=')?;
    // §14.1: range units are case-insensitive.
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    // §5.6.1: empty list elements are allowed and ignored.
    for part in set.split(',').map(|p| p.trim_matches(OWS)).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-')?;
        let spec = if a.is_empty() {
            Spec::Suffix(number(b)?)
        } else {
            let first = number(a)?;
            let last = if b.is_empty() { None } else { Some(number(b)?) };
            // §14.1.2: "A range-spec is invalid if ... last-pos value is less than the first-pos value"
            // (compared as written: both may be past u64).
            if last.is_some() && decimal_less(b, a) {
                return None;
            }
            Spec::From { first, last }
        };
        specs.push(spec);
    }
    if specs.is_empty() { None } else { Some(specs) }
}

/// 1*DIGIT (§14.1.2 sets no bound). A value past u64 is past the end of every file, so it saturates: as a
/// first-pos it is unsatisfiable, as a last-pos it is clipped, as a suffix-length it selects the whole file.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

/// `a < b` for two strings of decimal digits of any length.
fn decimal_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a.as_bytes()) < (b.len(), b.as_bytes())
}

/// §14.1.2: a first-pos at or past the end is unsatisfiable; a last-pos past the end is clipped; a suffix
/// longer than the representation selects all of it; a zero suffix is unsatisfiable.
fn resolve(spec: Spec, size: u64) -> Option<(u64, u64)> {
    match spec {
        Spec::From { first, last } => {
            if first >= size {
                return None;
            }
            let end = last.map_or(size - 1, |l| l.min(size - 1));
            Some((first, end))
        }
        Spec::Suffix(n) => {
            if n == 0 || size == 0 {
                return None;
            }
            Some((size.saturating_sub(n), size - 1))
        }
    }
}

/// The validators of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// Strong entity tag, quoted.
    pub etag: String,
    /// Seconds since the epoch.
    pub modified: i64,
}

impl Validators {
    /// An ETag from size, modification time (ns) and inode: changes whenever the bytes may have.
    pub fn new(size: u64, mtime_ns: i64, ino: u64) -> Validators {
        Validators {
            etag: format!("\"{size:x}-{mtime_ns:x}-{ino:x}\""),
            modified: mtime_ns.div_euclid(1_000_000_000),
        }
    }
}

/// The request's conditional headers (raw values).
#[derive(Clone, Debug, Default)]
pub struct Conditions<'a> {
    /// `If-None-Match` (RFC 9110 §13.1.2).
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since` (RFC 9110 §13.1.3).
    pub if_modified_since: Option<&'a [u8]>,
    /// `If-Range` (RFC 9110 §13.1.5).
    pub if_range: Option<&'a [u8]>,
    /// `Range` (RFC 9110 §14.2), already checked to be the only one.
    pub range: Option<&'a [u8]>,
}

/// The status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    NotModified,
    Send(Plan),
}

/// RFC 9110 §13.2.2: evaluate preconditions in order, then Range (§14.2, with If-Range §13.1.5).
/// (If-Match and If-Unmodified-Since are for state-changing methods and not used by players.)
pub fn decide(c: &Conditions<'_>, v: &Validators, size: u64) -> Decision {
    // §13.2.2 step 3: If-None-Match; false for GET/HEAD → 304.
    if let Some(inm) = c.if_none_match {
        if none_match_fails(inm, &v.etag) {
            return Decision::NotModified;
        }
    } else if let Some(ims) = c.if_modified_since {
        // §13.2.2 step 4: If-Modified-Since only when If-None-Match is absent.
        if let Some(t) = parse_http_date(ims)
            && v.modified <= t
        {
            return Decision::NotModified;
        }
    }
    let Some(range) = c.range else {
        return Decision::Send(Plan::Full);
    };
    // §13.1.5: If-Range with a strong ETag match or an exact Last-Modified date; otherwise send everything.
    if let Some(ir) = c.if_range {
        let ir = trim(ir);
        let matches = if ir.starts_with(b"\"") {
            ir == v.etag.as_bytes()
        } else if ir.starts_with(b"W/") {
            false // §13.1.5: a weak tag never matches
        } else {
            parse_http_date(ir) == Some(v.modified)
        };
        if !matches {
            return Decision::Send(Plan::Full);
        }
    }
    Decision::Send(plan(range, size))
}

/// §13.1.2: If-None-Match uses weak comparison; `*` matches any current representation.
fn none_match_fails(value: &[u8], etag: &str) -> bool {
    let value = trim(value);
    if value == b"*" {
        return true;
    }
    let strip = |t: &[u8]| -> Vec<u8> { trim(t).strip_prefix(b"W/").unwrap_or(trim(t)).to_vec() };
    let ours = strip(etag.as_bytes());
    value.split(|b| *b == b',').any(|t| strip(t) == ours)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |e| e + 1);
    &b[s..e]
}

/// The HTTP date codec lives in the wire room; re-exported for the Range core's callers and tests.
pub use crate::wire::date::{http_date, parse_http_date};

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9110 §14.1.2 examples, for a representation of 10000 bytes.
    #[test]
    fn rfc_9110_examples() {
        assert_eq!(
            plan(b"bytes=0-499", 10000),
            Plan::Partial { start: 0, end: 499 }
        );
        assert_eq!(
            plan(b"bytes=500-999", 10000),
            Plan::Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            plan(b"bytes=-500", 10000),
            Plan::Partial {
                start: 9500,
                end: 9999
            }
        );
        assert_eq!(
            plan(b"bytes=9500-", 10000),
            Plan::Partial {
                start: 9500,
                end: 9999
            }
        );
        assert_eq!(
            plan(b"bytes=0-0", 10000),
            Plan::Partial { start: 0, end: 0 }
        );
        assert_eq!(
            plan(b"bytes=-1", 10000),
            Plan::Partial {
                start: 9999,
                end: 9999
            }
        );
        // Several ranges: served whole (documented choice, §14.2 MAY ignore).
        assert_eq!(plan(b"bytes=0-999, 4500-5499, -1000", 10000), Plan::Full);
        assert_eq!(plan(b"bytes=500-600,601-999", 10000), Plan::Full);
    }

    #[test]
    fn edges_clip_or_refuse() {
        assert_eq!(
            plan(b"bytes=0-99999999999", 100),
            Plan::Partial { start: 0, end: 99 }
        );
        assert_eq!(plan(b"bytes=100-", 100), Plan::Unsatisfiable);
        assert_eq!(plan(b"bytes=-0", 100), Plan::Unsatisfiable);
        assert_eq!(
            plan(b"bytes=-1000", 100),
            Plan::Partial { start: 0, end: 99 }
        );
        assert_eq!(plan(b"bytes=0-", 0), Plan::Unsatisfiable);
        assert_eq!(plan(b"bytes=200-300,400-500", 100), Plan::Unsatisfiable);
        assert_eq!(
            plan(b"BYTES=1-2", 100),
            Plan::Partial { start: 1, end: 2 }
        );
    }

    #[test]
    fn malformed_is_ignored() {
        for bad in [
            &b"bytes=5-1"[..],
            b"bytes=",
            b"bytes=abc",
            b"bytes=1-2-3",
            b"items=0-1",
            b"bytes=0-1-",
            b"bytes=0-1,,x",
            b"bytes=+1-2",
            b"\xff\xfe",
            b"bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17,18-19,20-21,22-23,24-25,26-27,28-29,30-31,32-33",
        ] {
            assert_eq!(plan(bad, 100), Plan::Full, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// R-F7: the edge cases the robustness review found, each with the status RFC 9110 gives it, on a
    /// 100-byte file. (Whole = 200, Partial = 206, Unsatisfiable = 416.)
    #[test]
    fn r_f7_range_edge_statuses_follow_rfc_9110() {
        let seventeen_past_the_end =
            format!("bytes={}", (0..17).map(|i| format!("{}-", 200 + i)).collect::<Vec<_>>().join(","));
        let seventeen_one_inside = format!("{seventeen_past_the_end},5-9");
        let table: [(&str, Plan); 12] = [
            // §15.5.17: none of the ranges is satisfiable → 416, however many there are.
            (&seventeen_past_the_end, Plan::Unsatisfiable),
            // Several ranges with one satisfiable: served whole (§14.2 MAY ignore).
            (&seventeen_one_inside, Plan::Full),
            // §14.1.2: first-pos is 1*DIGIT with no bound; past the end of any file → 416.
            ("bytes=18446744073709551616-", Plan::Unsatisfiable),
            ("bytes=99999999999999999999999-99999999999999999999999", Plan::Unsatisfiable),
            // ...and a last-pos below it, however large both are, is an invalid range-spec → ignored.
            ("bytes=99999999999999999999999-99999999999999999999998", Plan::Full),
            // A last-pos past the end is clipped; a suffix longer than the file selects all of it.
            ("bytes=0-99999999999999999999999", Plan::Partial { start: 0, end: 99 }),
            ("bytes=-99999999999999999999999", Plan::Partial { start: 0, end: 99 }),
            // §14.1.2 ABNF has no whitespace around "=" or "-": not a Range we understand → ignored.
            ("bytes = 0 - 5", Plan::Full),
            ("bytes=0 -5", Plan::Full),
            ("BYTES = 1-2", Plan::Full),
            // ...while OWS around list commas is the list rule's (§5.6.1) and the unit is case-insensitive.
            ("Bytes=0-4 ,", Plan::Partial { start: 0, end: 4 }),
            (" bytes=0-4 ", Plan::Partial { start: 0, end: 4 }),
        ];
        for (value, want) in table {
            assert_eq!(plan(value.as_bytes(), 100), want, "{value:?}");
        }
        // §5.6.7: an IMF-fixdate has two-digit fields; a negative one is not a date, so If-Modified-Since
        // with it is ignored (200), not taken as a date in the past (304).
        let v = Validators::new(100, 1_700_000_000_000_000_000, 5);
        for bad in ["Sun, 06 Nov 2030 -5:-99:-99 GMT", "Sun, -6 Nov 2030 08:49:37 GMT", "Sun, 06 Nov -2030 08:49:37 GMT", "Sun, 06 Nov 2030 +8:49:37 GMT"] {
            assert_eq!(parse_http_date(bad.as_bytes()), None, "{bad}");
            let c = Conditions { if_modified_since: Some(bad.as_bytes()), ..Conditions::default() };
            assert_eq!(decide(&c, &v, 100), Decision::Send(Plan::Full), "{bad}");
        }
    }

    /// The same property the fuzz target checks (firmware/fuzz), on random bytes: never a panic, and a
    /// partial answer always lies inside the file.
    #[test]
    fn random_input_stays_inside_the_file() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(9110);
        let alphabet = b"bytes=0123456789-, \t*Wa\"";
        for _ in 0..200_000 {
            let len = rng.gen_range(0..24);
            let mut v: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            if rng.gen_bool(0.7) {
                v.splice(0..0, b"bytes=".iter().copied());
            }
            let size = match rng.gen_range(0..4) {
                0 => 0,
                1 => rng.gen_range(0..20),
                2 => rng.r#gen::<u64>(),
                _ => rng.gen_range(0..100_000),
            };
            if let Plan::Partial { start, end } = plan(&v, size) {
                assert!(
                    start <= end && end < size,
                    "{:?} {size}",
                    String::from_utf8_lossy(&v)
                );
            }
        }
    }

    #[test]
    fn dates_round_trip() {
        // RFC 9110 §5.6.7 example.
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        for t in [0i64, 951782400, 1700000000, 4102444799] {
            assert_eq!(parse_http_date(http_date(t).as_bytes()), Some(t));
        }
    }

    #[test]
    fn conditions_follow_rfc_9110_13_2_2() {
        let v = Validators::new(100, 1_700_000_000_000_000_000, 5);
        let date = http_date(v.modified);
        let etag = v.etag.clone();
        let c = |inm: Option<&'static str>,
                 ims: Option<String>,
                 ir: Option<String>,
                 r: Option<&'static str>| {
            let ims: Option<&'static str> = ims.map(|s| &*Box::leak(s.into_boxed_str()));
            let ir: Option<&'static str> = ir.map(|s| &*Box::leak(s.into_boxed_str()));
            decide(
                &Conditions {
                    if_none_match: inm.map(str::as_bytes),
                    if_modified_since: ims.map(str::as_bytes),
                    if_range: ir.map(str::as_bytes),
                    range: r.map(str::as_bytes),
                },
                &v,
                100,
            )
        };
        let etag_s: &'static str = Box::leak(etag.clone().into_boxed_str());
        assert_eq!(c(Some(etag_s), None, None, None), Decision::NotModified);
        assert_eq!(
            c(Some("\"other\", W/\"x\""), None, None, None),
            Decision::Send(Plan::Full)
        );
        assert_eq!(c(Some("*"), None, None, None), Decision::NotModified);
        assert_eq!(
            c(None, Some(date.clone()), None, None),
            Decision::NotModified
        );
        assert_eq!(
            c(None, Some(http_date(v.modified - 1)), None, None),
            Decision::Send(Plan::Full)
        );
        // If-None-Match that does not match wins over a matching If-Modified-Since.
        assert_eq!(
            c(Some("\"other\""), Some(date.clone()), None, None),
            Decision::Send(Plan::Full)
        );
        let part = Decision::Send(Plan::Partial { start: 0, end: 9 });
        assert_eq!(c(None, None, None, Some("bytes=0-9")), part);
        assert_eq!(c(None, None, Some(etag.clone()), Some("bytes=0-9")), part);
        assert_eq!(c(None, None, Some(date.clone()), Some("bytes=0-9")), part);
        assert_eq!(
            c(None, None, Some("\"stale\"".into()), Some("bytes=0-9")),
            Decision::Send(Plan::Full)
        );
        assert_eq!(
            c(None, None, Some(format!("W/{etag}")), Some("bytes=0-9")),
            Decision::Send(Plan::Full)
        );
        assert_eq!(
            c(
                None,
                None,
                Some(http_date(v.modified + 1)),
                Some("bytes=0-9")
            ),
            Decision::Send(Plan::Full)
        );
    }
}
