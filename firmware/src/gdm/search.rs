//! The GDM core, sans-IO: one datagram and the time in, the answer's bytes out (or nothing).
//!
//! A Plex client looking for servers sends a search to 239.0.0.250:32414 (or broadcasts it); python-plexapi's
//! `plexapi.gdm.GDM().scan()` sends exactly `M-SEARCH * HTTP/1.0` (no line end at all), Plex apps send
//! `M-SEARCH * HTTP/1.1\r\n\r\n`. A server answers unicast to the sender, from 32414:
//!
//! ```text
//! HTTP/1.0 200 OK\r\n
//! Content-Type: plex/media-server\r\n
//! Resource-Identifier: <machineIdentifier, 32 hex digits>\r\n
//! Name: <friendly name, or the host name>\r\n
//! Port: <the HTTP port>\r\n
//! Updated-At: <unix seconds: when this on-period began, or the name last changed>\r\n
//! Version: <Hearth's version>\r\n
//! \r\n
//! ```
//!
//! No value contains a colon, a control character or a line separator: plexapi splits every line on `:` into
//! exactly two parts (a second colon ends its scan with an exception) and splits lines the way Python's
//! `str.splitlines` does (also at U+0085, U+2028, U+2029). The answer stays under [`MAX_ANSWER`] (plexapi reads
//! 1024 bytes and decodes them as UTF-8: a cut character would end its scan too).
//!
//! Who is answered is the auth room's one rule ([`crate::auth::Access::Gdm`]): a claimed server, a LAN
//! source. Before the claim nothing is sent (no name, no id). Each source gets at most [`SOURCE_BURST`]
//! answers, then one per [`SOURCE_EVERY`]; all sources together at most [`ALL_BURST`], then one per
//! [`ALL_EVERY`] (a forged source cannot turn the box into a flood aimed at a neighbour).

use crate::auth::{Access, Identity, Origin, decide};
use crate::state::State;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// The UDP port Plex servers answer GDM searches on.
pub const PORT: u16 = 32414;
/// The group Plex clients send searches to.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(239, 0, 0, 250);
/// A search longer than this is not one (the real ones are 19 to 23 bytes).
pub const MAX_SEARCH: usize = 512;
/// An answer is always shorter than this (python-plexapi reads 1024 bytes).
pub const MAX_ANSWER: usize = 1024;
/// Characters of the name that are sent (the rest is cut).
pub const MAX_NAME_CHARS: usize = 64;
/// Answers one source gets at once ...
pub const SOURCE_BURST: u32 = 4;
/// ... then one per this long.
pub const SOURCE_EVERY: Duration = Duration::from_secs(1);
/// Answers all sources together get at once ...
pub const ALL_BURST: u32 = 32;
/// ... then one per this long.
pub const ALL_EVERY: Duration = Duration::from_millis(50);
/// Sources remembered for their rate; the one that waited longest is forgotten first.
pub const MAX_SOURCES: usize = 128;

/// What the answer says about the server, besides the state's machine id and friendly name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The host name, said when the owner gave no friendly name.
    pub host_name: String,
    /// The HTTP port apps connect to.
    pub port: u16,
    /// `Updated-At`: unix seconds.
    pub updated_at: u64,
    /// The name the answers said when `updated_at` was last moved.
    said: String,
}

impl Server {
    /// A server whose details are new at `now` (unix seconds): GDM coming on.
    pub fn new(state: &State, host_name: String, port: u16, now: u64) -> Server {
        let said = said_name(state, &host_name).to_string();
        Server { host_name, port, updated_at: now, said }
    }

    /// The state and host name as of `now`: when the name the answer says changes (the owner renamed the
    /// server, or the host name changed under no friendly name), `Updated-At` moves to `now`, so an app that
    /// keeps what GDM told it knows to read the server's details again.
    pub fn note(&mut self, state: &State, host_name: String, now: u64) {
        self.host_name = host_name;
        if said_name(state, &self.host_name) != self.said {
            self.said = said_name(state, &self.host_name).to_string();
            self.updated_at = now;
        }
    }
}

/// The name an answer says (before [`clean`]): the owner's friendly name, else the host name.
fn said_name<'a>(state: &'a State, host_name: &'a str) -> &'a str {
    if state.settings.friendly_name.is_empty() { host_name } else { state.settings.friendly_name.as_str() }
}

/// Whether `datagram` is a well-formed GDM search: `M-SEARCH * HTTP/1.0` or `HTTP/1.1`, then nothing, or line
/// ends and `Name: value` header lines up to an empty line; printable ASCII only; at most [`MAX_SEARCH`] bytes.
pub fn is_search(datagram: &[u8]) -> bool {
    if datagram.len() > MAX_SEARCH || !datagram.iter().all(|b| matches!(b, b'\r' | b'\n' | 0x20..=0x7e)) {
        return false;
    }
    // Printable ASCII is UTF-8.
    let text = std::str::from_utf8(datagram).unwrap_or_default();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    if !matches!(lines.next(), Some("M-SEARCH * HTTP/1.0" | "M-SEARCH * HTTP/1.1")) {
        return false;
    }
    let mut ended = false;
    for line in lines {
        if line.contains('\r') {
            return false;
        }
        if ended || line.is_empty() {
            ended = true;
            if !line.is_empty() {
                return false;
            }
            continue;
        }
        let Some((name, _)) = line.split_once(':') else { return false };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return false;
        }
    }
    true
}

/// A value as GDM may carry it: no colon (a space instead), no control character or line separator, runs of
/// white space as one space, at most `max` characters; `fallback` when nothing is left.
pub fn clean(value: &str, max: usize, fallback: &str) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in value.chars() {
        let c = if c == ':' || c.is_whitespace() { ' ' } else { c };
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            continue;
        }
        if c == ' ' {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    let cut: String = out.chars().take(max).collect();
    let cut = cut.trim_end().to_string();
    if cut.is_empty() { fallback.to_string() } else { cut }
}

/// The answer's bytes for `state` (claimed or not: [`Responder`] decides whether to send them).
pub fn answer(state: &State, server: &Server) -> Vec<u8> {
    let name = said_name(state, &server.host_name);
    let text = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: plex/media-server\r\nResource-Identifier: {}\r\nName: {}\r\nPort: {}\r\nUpdated-At: {}\r\nVersion: {}\r\n\r\n",
        state.machine_identifier(),
        clean(name, MAX_NAME_CHARS, "Hearth"),
        server.port,
        server.updated_at,
        clean(crate::VERSION, 32, "0"),
    );
    debug_assert!(text.len() < MAX_ANSWER);
    text.into_bytes()
}

/// A rate: at most `burst` at once, then one per `every` (GCRA: `due` is when the bucket is full again).
#[derive(Clone, Copy, Debug)]
struct Rate {
    due: Instant,
}

impl Rate {
    fn take(&mut self, now: Instant, burst: u32, every: Duration) -> bool {
        let due = self.due.max(now);
        if due > now + every * (burst - 1) {
            return false;
        }
        self.due = due + every;
        true
    }
}

/// Why a datagram got no answer (for the shell's debug log and the tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// Not a well-formed search.
    NotASearch,
    /// The access rule said no: not claimed, or not a LAN source.
    Refused(crate::auth::Denial),
    /// This source asked too often.
    SourceRate,
    /// All sources together asked too often.
    AllRate,
}

/// The searches answered lately, per source and in all; sans-IO: the caller passes the time.
#[derive(Debug)]
pub struct Responder {
    sources: Vec<(IpAddr, Rate)>,
    all: Rate,
}

impl Responder {
    /// Nobody answered yet; `now` is the start.
    pub fn new(now: Instant) -> Responder {
        Responder { sources: Vec::new(), all: Rate { due: now } }
    }

    /// One datagram from `origin` (the auth room's origin of its source): the answer to send back to the
    /// source, or why there is none.
    pub fn on_datagram(&mut self, now: Instant, origin: &Origin, state: &State, server: &Server, datagram: &[u8]) -> Result<Vec<u8>, Silence> {
        if !is_search(datagram) {
            return Err(Silence::NotASearch);
        }
        decide(Access::Gdm, &Identity::Anonymous, origin, state).map_err(Silence::Refused)?;
        let at = match self.sources.iter().position(|(a, _)| *a == origin.addr) {
            Some(i) => i,
            None => {
                if self.sources.len() >= MAX_SOURCES {
                    // Forget the source whose bucket is fullest (the one that waited longest).
                    let oldest = (0..self.sources.len()).min_by_key(|i| self.sources[*i].1.due).unwrap_or(0);
                    self.sources.swap_remove(oldest);
                }
                self.sources.push((origin.addr, Rate { due: now }));
                self.sources.len() - 1
            }
        };
        let mut mine = self.sources[at].1;
        if !mine.take(now, SOURCE_BURST, SOURCE_EVERY) {
            return Err(Silence::SourceRate);
        }
        if !self.all.take(now, ALL_BURST, ALL_EVERY) {
            return Err(Silence::AllRate);
        }
        self.sources[at].1 = mine;
        Ok(answer(state, server))
    }

    /// Sources remembered now (bounded by [`MAX_SOURCES`]).
    pub fn remembered(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::auth::Denial;
    use crate::state::{Account, Role, Secret};

    /// The owner a claimed test state has (also the room's tests in gdm/mod.rs).
    pub(in crate::gdm) fn owner() -> Account {
        Account {
            id: 1,
            role: Role::Owner,
            name: "ada".try_into().unwrap(),
            password: Some(Secret { salt: [1; 16], hash: [2; 16] }),
            pin: None,
            shares: Default::default(),
            created: 0,
        }
    }

    fn claimed() -> State {
        let mut s = State::new([0xab; 16]);
        s.accounts.push(owner()).unwrap();
        s
    }

    fn server() -> Server {
        Server::new(&claimed(), "nas".into(), 32400, 1_700_000_000)
    }

    fn lan(a: &str) -> Origin {
        Origin { addr: a.parse().unwrap(), lan: true }
    }

    /// What python-plexapi does with an answer (gdm.py): `{k: v.strip() for (k, v) in (line.split(':') for line
    /// in data.splitlines() if ':' in line)}`, which fails when a line has two colons.
    fn plexapi_reads(bytes: &[u8]) -> Vec<(String, String)> {
        assert!(bytes.len() < 1024, "plexapi reads 1024 bytes");
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.lines().next().unwrap().contains("200 OK"));
        let seps = ['\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}', '\u{2029}'];
        text.split(|c| seps.contains(&c))
            .filter(|l| l.contains(':'))
            .map(|l| {
                let parts: Vec<&str> = l.split(':').collect();
                assert_eq!(parts.len(), 2, "plexapi's split(':') would fail on {l:?}");
                (parts[0].to_string(), parts[1].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn what_clients_send_is_a_search_and_little_else_is() {
        for ok in [&b"M-SEARCH * HTTP/1.0"[..], b"M-SEARCH * HTTP/1.1\r\n\r\n", b"M-SEARCH * HTTP/1.1\r\nMX: 3\r\n\r\n", b"M-SEARCH * HTTP/1.1\n"] {
            assert!(is_search(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        let long = [b"M-SEARCH * HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 600], b"\r\n\r\n"].concat();
        for bad in [
            &b""[..],
            b"M-SEARCH",
            b"M-SEARCH * HTTP/2.0\r\n\r\n",
            b"m-search * HTTP/1.1\r\n\r\n",
            b"NOTIFY * HTTP/1.1\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nContent-Type: plex/media-server\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nno colon here\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\n\r\ntrailing",
            b"M-SEARCH * HTTP/1.1\r\nX: \x00\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\r\nX: \xc3\xa9\r\n\r\n",
            b"M-SEARCH * HTTP/1.1\rX: y\r\n\r\n",
            &long,
        ] {
            assert!(!is_search(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_answer_is_what_plexapi_reads() {
        let mut r = Responder::new(Instant::now());
        let bytes = r.on_datagram(Instant::now(), &lan("192.168.1.20"), &claimed(), &server(), b"M-SEARCH * HTTP/1.0").unwrap();
        assert!(bytes.starts_with(b"HTTP/1.0 200 OK\r\n") && bytes.ends_with(b"\r\n\r\n"));
        let got = plexapi_reads(&bytes);
        let want = [
            ("Content-Type", "plex/media-server"),
            ("Resource-Identifier", "abababababababababababababababab"),
            ("Name", "nas"),
            ("Port", "32400"),
            ("Updated-At", "1700000000"),
            ("Version", crate::VERSION),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn names_lose_colons_controls_and_line_separators_and_stay_short() {
        let mut s = claimed();
        s.settings.friendly_name = "Den: films\u{2028}2\u{85}\u{7}".try_into().unwrap();
        let got = plexapi_reads(&answer(&s, &server()));
        assert_eq!(got[2], ("Name".into(), "Den films 2".into()));
        let host = Server { host_name: "é".repeat(200) + ":x", ..server() };
        let bytes = answer(&claimed(), &host);
        assert_eq!(plexapi_reads(&bytes)[2].1, "é".repeat(MAX_NAME_CHARS));
        assert_eq!(clean(" :\r\n ", 10, "Hearth"), "Hearth");
        assert_eq!(clean("a\tb:c  d", 10, "-"), "a b c d");
    }

    #[test]
    fn nothing_before_the_claim_and_nothing_to_wan_sources() {
        let mut r = Responder::new(Instant::now());
        let now = Instant::now();
        let unclaimed = State::new([0xab; 16]);
        assert_eq!(r.on_datagram(now, &lan("192.168.1.20"), &unclaimed, &server(), b"M-SEARCH * HTTP/1.0"), Err(Silence::Refused(Denial::NotClaimed)));
        let wan = Origin { addr: "203.0.113.7".parse().unwrap(), lan: false };
        assert_eq!(r.on_datagram(now, &wan, &claimed(), &server(), b"M-SEARCH * HTTP/1.0"), Err(Silence::Refused(Denial::GdmLanOnly)));
        assert_eq!(r.on_datagram(now, &lan("192.168.1.20"), &claimed(), &server(), b"GET / HTTP/1.0"), Err(Silence::NotASearch));
        // Refused sources take no place in the table.
        assert_eq!(r.remembered(), 0);
    }

    #[test]
    fn each_source_is_answered_a_few_times_then_once_a_second() {
        let t0 = Instant::now();
        let mut r = Responder::new(t0);
        let (s, srv) = (claimed(), server());
        let ask = |r: &mut Responder, at: Instant, from: &str| r.on_datagram(at, &lan(from), &s, &srv, b"M-SEARCH * HTTP/1.1\r\n\r\n");
        for _ in 0..SOURCE_BURST {
            assert!(ask(&mut r, t0, "192.168.1.20").is_ok());
        }
        assert_eq!(ask(&mut r, t0, "192.168.1.20"), Err(Silence::SourceRate));
        // Another source is not held up by the first.
        assert!(ask(&mut r, t0, "192.168.1.21").is_ok());
        assert_eq!(ask(&mut r, t0 + SOURCE_EVERY / 2, "192.168.1.20"), Err(Silence::SourceRate));
        assert!(ask(&mut r, t0 + SOURCE_EVERY, "192.168.1.20").is_ok());
        assert_eq!(ask(&mut r, t0 + SOURCE_EVERY, "192.168.1.20"), Err(Silence::SourceRate));
    }

    #[test]
    fn many_sources_share_one_cap_and_a_bounded_table() {
        let t0 = Instant::now();
        let mut r = Responder::new(t0);
        let (s, srv) = (claimed(), server());
        let mut answered = 0;
        for i in 0..1000u32 {
            let from = Origin { addr: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), lan: true };
            if r.on_datagram(t0, &from, &s, &srv, b"M-SEARCH * HTTP/1.0").is_ok() {
                answered += 1;
            }
        }
        assert_eq!(answered, ALL_BURST);
        assert!(r.remembered() <= MAX_SOURCES);
        let later = t0 + ALL_EVERY * 10;
        let from = Origin { addr: "10.9.9.9".parse().unwrap(), lan: true };
        assert!(r.on_datagram(later, &from, &s, &srv, b"M-SEARCH * HTTP/1.0").is_ok());
    }

    /// The committed fuzz seeds (`firmware/fuzz-dlna/seeds/gdm/`) through the fuzz target's checks.
    #[test]
    fn fuzz_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-dlna/seeds/gdm");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            fuzz_check(&data);
            n += 1;
        }
        assert!(n >= 3, "seeds in {}", dir.display());
    }

    /// What `fuzz_targets/gdm.rs` checks: never a panic; an answer only for a search, always readable by plexapi.
    pub(crate) fn fuzz_check(data: &[u8]) {
        let mut r = Responder::new(Instant::now());
        for chunk in data.split(|b| *b == 0) {
            match r.on_datagram(Instant::now(), &lan("192.168.1.20"), &claimed(), &server(), chunk) {
                Ok(bytes) => {
                    assert!(is_search(chunk));
                    plexapi_reads(&bytes);
                }
                Err(Silence::NotASearch) => assert!(!is_search(chunk)),
                Err(_) => assert!(is_search(chunk)),
            }
        }
    }

    /// GDM Updated-At (2026-12-05 stop note): it stayed at when GDM came on, so an app that keeps the server's
    /// details had no sign that the owner renamed it. It moves when the said name changes, and only then.
    #[test]
    fn updated_at_moves_when_the_said_name_changes() {
        let mut state = claimed();
        let mut server = server();
        let said = |state: &State, server: &Server| answer(state, server);
        server.note(&state, "nas".into(), 1_700_000_100);
        assert_eq!(server.updated_at, 1_700_000_000, "nothing changed");
        server.note(&state, "nas2".into(), 1_700_000_200);
        assert_eq!(server.updated_at, 1_700_000_200, "the host name is said while there is no friendly name");
        assert!(String::from_utf8(said(&state, &server)).unwrap().contains("Updated-At: 1700000200\r\n"));
        state.settings.friendly_name = "Den".try_into().unwrap();
        server.note(&state, "nas2".into(), 1_700_000_300);
        assert_eq!(server.updated_at, 1_700_000_300, "the owner named the server");
        server.note(&state, "nas3".into(), 1_700_000_400);
        assert_eq!(server.updated_at, 1_700_000_300, "a host name behind a friendly name is not said");
        let text = String::from_utf8(said(&state, &server)).unwrap();
        assert!(text.contains("Name: Den\r\n") && text.contains("Updated-At: 1700000300\r\n"), "{text}");
    }
}
