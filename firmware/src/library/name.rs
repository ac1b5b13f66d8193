//! Titles from file names (sans-IO).
//!
//! Shows: `Show.Name.S01E02.720p.mkv`, `Show Name - s1e2`, `Show_Name_1x02`, `Show.Name.S01.E02`. Movies and
//! other videos: `Movie.Name.2010.1080p.mkv` or `Movie Name (2010).mp4` → title and year. Music (what the tags
//! leave out): `01 - Title`, `01. Title`, `1-03 Title` (disc 1, track 3) and folders `Artist/Album/` with an
//! optional `CD2` or `Disc 2` folder below the album. Separators `.` and `_` become spaces. Names that are not UTF-8 are shown with U+FFFD in place of the broken bytes.

/// What a file name says about its item.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The title to show: separators made spaces, the year left out; for an episode, the words after the
    /// marker up to the first quality tag, or "Episode N".
    pub title: String,
    /// The release year the name carries, if any.
    pub year: Option<u16>,
    /// (show name, season, episode) when the name carries an episode marker.
    pub episode: Option<(String, u16, u16)>,
}

/// Parse a file stem (the name without its extension).
pub fn parse(stem: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(stem);
    let clean: String = text
        .chars()
        .map(|c| if c == '.' || c == '_' { ' ' } else { c })
        .collect();
    if let Some((at, len, season, episode)) = find_episode(&clean) {
        let show = tidy(&clean[..at]);
        let rest = tidy(&clean[at + len..]);
        let title = if rest.is_empty() {
            format!("Episode {episode}")
        } else {
            episode_title(&rest)
        };
        return Parsed {
            title,
            year: None,
            episode: Some((show, season, episode)),
        };
    }
    let (title, year) = split_year(&clean);
    Parsed {
        title: tidy(&title),
        year,
        episode: None,
    }
}

/// Trim separators and collapse runs of spaces.
fn tidy(s: &str) -> String {
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '[' || c == '(');
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words after the marker up to the first quality tag.
fn episode_title(rest: &str) -> String {
    let mut words = Vec::new();
    for w in rest.split_whitespace() {
        if is_tag(w) {
            break;
        }
        words.push(w);
    }
    tidy(&words.join(" "))
}

fn is_tag(w: &str) -> bool {
    let l = w.to_ascii_lowercase();
    let l = l.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')');
    matches!(
        l,
        "720p"
            | "1080p"
            | "2160p"
            | "480p"
            | "4k"
            | "hdtv"
            | "webrip"
            | "web-dl"
            | "web"
            | "bluray"
            | "x264"
            | "x265"
            | "h264"
            | "h265"
            | "hevc"
            | "dvdrip"
            | "brrip"
            | "proper"
            | "repack"
    )
}

/// Find `SxxEyy`, `Sxx Eyy`, `sXeY` or `NxMM`: (byte offset, length, season, episode).
fn find_episode(s: &str) -> Option<(usize, usize, u16, u16)> {
    let b = s.as_bytes();
    let digits = |from: usize| -> (usize, Option<u16>) {
        let mut i = from;
        while i < b.len() && b[i].is_ascii_digit() && i - from < 4 {
            i += 1;
        }
        (
            i,
            if i > from {
                s[from..i].parse().ok()
            } else {
                None
            },
        )
    };
    let boundary = |i: usize| i == 0 || !b[i - 1].is_ascii_alphanumeric();
    for i in 0..b.len() {
        if !boundary(i) {
            continue;
        }
        if b[i] == b'S' || b[i] == b's' {
            let (j, season) = digits(i + 1);
            let Some(season) = season else { continue };
            let mut k = j;
            while k < b.len() && b[k] == b' ' {
                k += 1;
            }
            if k < b.len() && (b[k] == b'E' || b[k] == b'e') {
                let (end, ep) = digits(k + 1);
                if let Some(ep) = ep
                    && (end == b.len()
                        || !b[end].is_ascii_alphanumeric()
                        || b[end] == b'E'
                        || b[end] == b'e')
                {
                    return Some((i, end - i, season, ep));
                }
            }
        } else if b[i].is_ascii_digit() {
            let (j, season) = digits(i);
            if j < b.len() && (b[j] == b'x' || b[j] == b'X') && j - i <= 2 {
                let (end, ep) = digits(j + 1);
                if let (Some(season), Some(ep)) = (season, ep)
                    && end - j > 2
                    && (end == b.len() || !b[end].is_ascii_alphanumeric())
                {
                    return Some((i, end - i, season, ep));
                }
            }
        }
    }
    None
}

/// `Name (2010)` or `Name 2010 1080p`: the last plausible year that is not the first word.
fn split_year(s: &str) -> (String, Option<u16>) {
    let words: Vec<&str> = s.split_whitespace().collect();
    for (i, w) in words.iter().enumerate().skip(1).rev() {
        let y = w.trim_matches(|c| c == '(' || c == ')' || c == '[' || c == ']');
        if y.len() == 4 && y.bytes().all(|c| c.is_ascii_digit()) {
            let n: u16 = y.parse().unwrap_or(0);
            if (1890..=2100).contains(&n) {
                return (words[..i].join(" "), Some(n));
            }
        }
    }
    let mut out = Vec::new();
    for w in &words {
        if is_tag(w) {
            break;
        }
        out.push(*w);
    }
    (out.join(" "), None)
}

/// What a music file's name says.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TrackName {
    /// The track's title, number left out.
    pub title: String,
    /// Track number from the name, if any.
    pub track: Option<u16>,
    /// Disc number from a `1-03` style name, if any (never 0).
    pub disc: Option<u16>,
}

/// `01 - Title`, `01. Title`, `01 Title`, `1-03 Title`; a name without a leading number is all title.
pub fn track(stem: &[u8]) -> TrackName {
    let text = String::from_utf8_lossy(stem);
    let clean: String = text.chars().map(|c| if c == '_' { ' ' } else { c }).collect();
    let b = clean.as_bytes();
    let lead = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut disc = None;
    let mut track = None;
    let mut at = 0;
    if (1..=3).contains(&lead) {
        let first: u16 = clean[..lead].parse().unwrap_or(0);
        // `1-03 Title`: a one-digit disc, a dash, the track number.
        let second = b[lead..].first() == Some(&b'-') && {
            let n = b[lead + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            lead == 1 && (2..=3).contains(&n) && b.get(lead + 1 + n).is_some_and(|c| !c.is_ascii_alphanumeric())
        };
        if second {
            let n = b[lead + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            disc = Some(first);
            track = clean[lead + 1..lead + 1 + n].parse().ok();
            at = lead + 1 + n;
        } else if b.get(lead).is_none_or(|c| !c.is_ascii_alphanumeric()) {
            track = Some(first);
            at = lead;
        }
    }
    let rest = clean[at..].trim_start_matches(['.', '-', ' ']);
    let title = tidy(rest);
    TrackName {
        title: if title.is_empty() { tidy(&clean) } else { title },
        track: track.filter(|t| *t > 0),
        disc: disc.filter(|d| *d > 0),
    }
}

/// What the folders between the library folder and a music file say.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MusicFolders {
    /// The folder above the album folder, if any.
    pub artist: Option<String>,
    /// The folder the file is in (above its disc folder, if it has one), if any.
    pub album: Option<String>,
    /// Disc number from a `CD2` or `Disc 2` folder below the album, if any.
    pub disc: Option<u16>,
}

/// `[.., Artist, Album]` or `[.., Artist, Album, CD2]`; one folder is the album; none says nothing.
pub fn music_folders(dirs: &[String]) -> MusicFolders {
    let mut dirs: Vec<&str> = dirs.iter().map(|d| d.trim()).filter(|d| !d.is_empty()).collect();
    let disc = dirs.last().and_then(|d| disc_folder(d));
    if disc.is_some() {
        dirs.pop();
    }
    let album = dirs.pop().map(str::to_string);
    let artist = dirs.pop().map(str::to_string);
    MusicFolders { artist, album, disc }
}

/// `CD2`, `CD 2`, `Disc 2`, `Disk02` → 2.
fn disc_folder(name: &str) -> Option<u16> {
    let l = name.to_ascii_lowercase();
    let rest = ["disc", "disk", "cd"].iter().find_map(|p| l.strip_prefix(p))?;
    let n = rest.trim_start_matches([' ', '_', '-', '.']);
    (!n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
        .filter(|d| *d > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_numbers_and_titles_from_file_names() {
        let t = |s: &str| {
            let n = track(s.as_bytes());
            (n.disc, n.track, n.title)
        };
        assert_eq!(t("01 - Song One"), (None, Some(1), "Song One".into()));
        assert_eq!(t("07. Seventh Song"), (None, Some(7), "Seventh Song".into()));
        assert_eq!(t("12 Twelve"), (None, Some(12), "Twelve".into()));
        assert_eq!(t("1-03 Third of Disc One"), (Some(1), Some(3), "Third of Disc One".into()));
        assert_eq!(t("03_under_scores"), (None, Some(3), "under scores".into()));
        // A name that starts with a word, a year or a number that is the title keeps it.
        assert_eq!(t("Song Without Number"), (None, None, "Song Without Number".into()));
        assert_eq!(t("1999"), (None, None, "1999".into()));
        assert_eq!(t("99 Luftballons"), (None, Some(99), "Luftballons".into()));
        assert_eq!(t("42"), (None, Some(42), "42".into()));
        assert_eq!(t("7th Heaven"), (None, None, "7th Heaven".into()));
    }

    #[test]
    fn artist_album_and_disc_from_folders() {
        let f = |d: &[&str]| music_folders(&d.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let want = |a: Option<&str>, b: Option<&str>, d: Option<u16>| MusicFolders {
            artist: a.map(Into::into),
            album: b.map(Into::into),
            disc: d,
        };
        assert_eq!(f(&["The Band", "First Album"]), want(Some("The Band"), Some("First Album"), None));
        assert_eq!(f(&["Rock", "The Band", "First Album", "CD2"]), want(Some("The Band"), Some("First Album"), Some(2)));
        assert_eq!(f(&["The Band", "Live", "Disc 1"]), want(Some("The Band"), Some("Live"), Some(1)));
        assert_eq!(f(&["Loose Album"]), want(None, Some("Loose Album"), None));
        assert_eq!(f(&[]), want(None, None, None));
        // "CDs" or "Discography" are names, not disc numbers.
        assert_eq!(f(&["The Band", "Discography"]), want(Some("The Band"), Some("Discography"), None));
    }

    fn ep(s: &str) -> Option<(String, u16, u16)> {
        parse(s.as_bytes()).episode
    }

    #[test]
    fn episodes_in_common_spellings() {
        let want = Some(("The Show".to_string(), 1, 2));
        assert_eq!(ep("The.Show.S01E02.720p.HDTV"), want);
        assert_eq!(ep("The Show - s01e02 - Pilot"), want);
        assert_eq!(ep("The_Show_1x02"), want);
        assert_eq!(ep("The Show S01 E02"), want);
        assert_eq!(ep("The.Show.S1E2"), want);
        assert_eq!(
            parse(b"The Show - s01e02 - Pilot Part 1 720p").title,
            "Pilot Part 1"
        );
        assert_eq!(parse(b"The.Show.S01E02").title, "Episode 2");
        assert_eq!(ep("Show.S10E100"), Some(("Show".into(), 10, 100)));
        // 1920x1080 is a resolution, not season 1920.
        assert_eq!(ep("Movie 1920x1080"), None);
        assert_eq!(ep("Sunset"), None);
    }

    #[test]
    fn movies_with_years_and_tags() {
        let p = parse(b"Big.Buck.Bunny.2008.1080p.x264");
        assert_eq!((p.title.as_str(), p.year), ("Big Buck Bunny", Some(2008)));
        let p = parse(b"Metropolis (1927)");
        assert_eq!((p.title.as_str(), p.year), ("Metropolis", Some(1927)));
        // A title that is a year stays the title.
        let p = parse(b"1917");
        assert_eq!((p.title.as_str(), p.year), ("1917", None));
        let p = parse(b"2001 A Space Odyssey 1968");
        assert_eq!(
            (p.title.as_str(), p.year),
            ("2001 A Space Odyssey", Some(1968))
        );
        let p = parse(b"home_video_720p");
        assert_eq!((p.title.as_str(), p.year), ("home video", None));
    }

    #[test]
    fn broken_utf8_is_shown_not_fatal() {
        let p = parse(b"caf\xe9 au lait");
        assert_eq!(p.title, "caf\u{fffd} au lait");
    }
}
