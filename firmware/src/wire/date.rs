//! HTTP dates (RFC 9110 §5.6.7): the one formatter and parser every door uses (`Date`, `Last-Modified`,
//! `If-Modified-Since`, `If-Range`), on the civil calendar of [`super::calendar`].

use super::calendar::{civil_from_days, days_from_civil};

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/// Day names from 1970-01-01, a Thursday.
const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// RFC 9110 §5.6.7: IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, of `secs` since 1970-01-01 UTC.
pub fn http_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// [`http_date`] of now (the `Date` field, RFC 9110 §6.6.1).
pub fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    http_date(secs as i64)
}

/// [`http_date`] of a file time (`Last-Modified`), whole seconds; times before 1970 count as 1970.
pub fn of(t: std::time::SystemTime) -> String {
    http_date(t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64)
}

/// Parse an IMF-fixdate (the only form we generate; §5.6.7 says recipients should accept the obsolete
/// forms too, which players do not send for media). None when it is not one: every numeric field is
/// digits of the ABNF's width (`day = 2DIGIT`, `year = 4DIGIT`, `hour`/`minute`/`second = 2DIGIT`), so a
/// sign or a short field is refused rather than read as a date.
pub fn parse_http_date(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = |t: &str, width: usize| -> Option<i64> {
        if t.len() == width && t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    let mut w = s.split_whitespace();
    let _day = w.next()?.strip_suffix(',')?;
    let d = digits(w.next()?, 2)?;
    let mon = w.next()?;
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let y = digits(w.next()?, 4)?;
    let mut hms = w.next()?.split(':');
    let (h, mi, se) = (digits(hms.next()?, 2)?, digits(hms.next()?, 2)?, digits(hms.next()?, 2)?);
    if hms.next().is_some() || w.next()? != "GMT" || w.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_times_print_as_imf_fixdate() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(of(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date(now().as_bytes()).map(|s| s > 784_111_777), Some(true));
    }
}
