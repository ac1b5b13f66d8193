//! The page: one HTML file, one stylesheet and two scripts, compiled into the binary and served at `/web/`.
//! `app.js` is the setup and account screens; `watch.js` is where people watch (browse the libraries through the
//! Plex-compatible API, play with the browser's own `<video>`/`<audio>`, photos in a viewer; docs/web.md).
//!
//! Owns: the page's bytes (`index.html`, `app.css`, `app.js`, `watch.js` beside this file: plain HTML, CSS and
//! JavaScript, no build step, no external fetches), the security headers they are served with, and the redirect of a
//! browser asking for `/` to `/web/`.
//! Must not touch: any data. The page is Public; everything it shows comes from the `/api/v1/` routes, which
//! enforce access themselves. Nothing here reads the state.
//!
//! Budget: the four files together stay under [`BUDGET`] bytes (a test asserts it).

use super::routes::Call;
use super::{Body, full};
use bytes::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use std::io::Read;
use std::sync::OnceLock;

/// The page's files as the binary holds them: gzip (RFC 1952) made by build.rs at the best level, in the order
/// `index.html`, `app.css`, `app.js`, `watch.js`. Browsers get these bytes as they are (`Content-Encoding: gzip`);
/// a client that does not accept gzip gets them inflated once and kept ([`plain`]). About 28 KiB instead of 89.
const GZ: [&[u8]; 4] = [
    include_bytes!(concat!(env!("OUT_DIR"), "/index.html.gz")),
    include_bytes!(concat!(env!("OUT_DIR"), "/app.css.gz")),
    include_bytes!(concat!(env!("OUT_DIR"), "/app.js.gz")),
    include_bytes!(concat!(env!("OUT_DIR"), "/watch.js.gz")),
];
const INDEX: usize = 0;
const CSS: usize = 1;
const JS: usize = 2;
const WATCH: usize = 3;

/// The whole page, all files, must stay under 96 KiB uncompressed. Issue 7 set 64 KiB for the setup screens alone
/// (about 63 KiB by wave 5, plus 1.9 KB for the owner's folder picker, issue 20 part 6); issue 20 makes the page
/// where people watch (libraries, rows, search, player, subtitles, photo viewer: `watch.js`, about 25 KiB with its
/// styles). What goes over the wire and into the binary is the gzip form, about a third of that; the walk prints
/// both.
pub const BUDGET: usize = 96 * 1024;

/// Content-Security-Policy of every page file: only our own origin, no inline script or style, no framing
/// (CSP Level 3 `frame-ancestors`), no plugins, no `<base>` rewriting, forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// FNV-1a (64-bit) of a file, at compile time: the file's entity tag changes exactly when its bytes do.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

const TAGS: [u64; 4] = [fnv1a(GZ[0]), fnv1a(GZ[1]), fnv1a(GZ[2]), fnv1a(GZ[3])];

/// A file's plain bytes, inflated on first use and kept.
fn plain(i: usize) -> Bytes {
    static PLAIN: [OnceLock<Bytes>; 4] = [const { OnceLock::new() }; 4];
    PLAIN[i]
        .get_or_init(|| {
            let mut v = Vec::new();
            flate2::read::GzDecoder::new(GZ[i]).read_to_end(&mut v).expect("build.rs writes valid gzip");
            Bytes::from(v)
        })
        .clone()
}

/// RFC 9110 §13.1.2: `If-None-Match` names our current tag (or `*`) → 304 without the body.
fn not_modified(headers: &hyper::HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag
    })
}

/// RFC 9110 §12.5.3: the request's `Accept-Encoding` lists `gzip` (or `*` without naming gzip) with a non-zero
/// quality.
fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        let named = v.split(',').any(|c| c.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("gzip"));
        if named { lists(v, "gzip") } else { lists(v, "*") }
    })
}

fn asset(call: &Call, ctype: &'static str, i: usize) -> Response<Body> {
    let gzip = accepts_gzip(call.req.headers());
    // Each content coding is its own representation with its own strong tag (RFC 9110 §8.8.3).
    let etag = format!("\"{:016x}{}\"", TAGS[i], if gzip { "-gz" } else { "" });
    let fresh = not_modified(call.req.headers(), &etag);
    let mut b = Response::builder()
        .status(if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK })
        .header(header::ETAG, etag)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::VARY, "Accept-Encoding")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        // For browsers older than frame-ancestors.
        .header(header::X_FRAME_OPTIONS, "DENY")
        // The page changes with the firmware; a cached copy is revalidated (ETag, 304).
        .header(header::CACHE_CONTROL, "no-cache");
    if gzip {
        b = b.header(header::CONTENT_ENCODING, "gzip");
    }
    let body = if fresh {
        super::empty()
    } else if gzip {
        full(GZ[i])
    } else {
        full(plain(i))
    };
    b.body(body).expect("valid response")
}

/// `GET /web/`.
pub async fn index(call: Call) -> Response<Body> {
    asset(&call, "text/html; charset=utf-8", INDEX)
}

/// `GET /web/app.css`.
pub async fn css(call: Call) -> Response<Body> {
    asset(&call, "text/css; charset=utf-8", CSS)
}

/// `GET /web/app.js`.
pub async fn js(call: Call) -> Response<Body> {
    asset(&call, "text/javascript; charset=utf-8", JS)
}

/// `GET /web/watch.js`.
pub async fn watch_js(call: Call) -> Response<Body> {
    asset(&call, "text/javascript; charset=utf-8", WATCH)
}

/// `GET /web`: to the page's canonical address (relative URLs in the page resolve against `/web/`).
pub async fn slashless(_call: Call) -> Response<Body> {
    redirect("/web/")
}

fn redirect(to: &'static str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, to)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(super::empty())
        .expect("valid response")
}

/// A browser opening `http://box:32400/` wants the setup page; API clients asking for `/` (the Plex
/// MediaContainer) send `Accept: */*`, `application/json` or `application/xml` and never `text/html`.
/// Called by dispatch before routing, so it holds whatever the route table says about `/`.
pub fn browser_root<B>(req: &Request<B>) -> Option<Response<Body>> {
    if req.uri().path() != "/" || !(req.method() == Method::GET || req.method() == Method::HEAD) {
        return None;
    }
    let accept = req.headers().get(header::ACCEPT)?.to_str().ok()?;
    wants_html(accept).then(|| redirect("/web/"))
}

/// True when an Accept header (RFC 9110 §12.5.1) names `text/html` with a non-zero quality.
pub fn wants_html(accept: &str) -> bool {
    lists(accept, "text/html")
}

/// True when a header of comma-separated values with `;q=` weights (RFC 9110 §12.4.2) lists `value` with a
/// non-zero quality.
fn lists(header: &str, value: &str) -> bool {
    header.split(',').any(|range| {
        let mut parts = range.split(';');
        let kind = parts.next().unwrap_or("").trim();
        if !kind.eq_ignore_ascii_case(value) {
            return false;
        }
        !parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")).is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
        })
    })
}

/// The URL to print: the listen address, or the first LAN address when listening on all interfaces.
pub fn setup_url(local: std::net::SocketAddr) -> String {
    let ip = if local.ip().is_unspecified() { crate::system::ifaces::lan_address().unwrap_or(local.ip()) } else { local.ip() };
    let host = match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    format!("http://{host}:{}/web/", local.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX_HTML: &str = include_str!("index.html");
    const APP_CSS: &str = include_str!("app.css");
    const APP_JS: &str = include_str!("app.js");
    const WATCH_JS: &str = include_str!("watch.js");

    #[test]
    fn the_binary_holds_the_files_gzipped_and_inflates_them_exactly() {
        for (i, text) in [INDEX_HTML, APP_CSS, APP_JS, WATCH_JS].into_iter().enumerate() {
            assert_eq!(&plain(i)[..], text.as_bytes(), "file {i}");
            assert!(GZ[i].len() * 2 < text.len(), "file {i}: gzip {} of {} bytes", GZ[i].len(), text.len());
        }
        let h = |v: &str| {
            let mut m = hyper::HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, v.parse().unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip, deflate, br, zstd") && h("GZIP") && h("br;q=1, gzip;q=0.5") && h("*"));
        assert!(!h("identity") && !h("gzip;q=0") && !h("br") && !h("gzip;q=0, *") && !accepts_gzip(&hyper::HeaderMap::new()));
    }

    #[test]
    fn the_page_fits_its_budget() {
        let total = INDEX_HTML.len() + APP_CSS.len() + APP_JS.len() + WATCH_JS.len();
        assert!(total < BUDGET, "the setup page is {total} bytes; the budget is {BUDGET}");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        // The only absolute URLs allowed: the SVG namespace name, the IPv6 check's URL parse, hint text, and the
        // same host over the other scheme when the owner changes "Secure connections".
        let allowed = [
            "http://www.w3.org/2000/svg",
            "'http://['",
            "http://<server address>",
            "'https://' + location.host",
            "'http://' + location.host",
            "https://)",
            "plain http://",
            "Disabled: https://",
        ];
        for (name, text) in [("index.html", INDEX_HTML), ("app.css", APP_CSS), ("app.js", APP_JS), ("watch.js", WATCH_JS)] {
            let text = allowed.iter().fold(text.to_string(), |t, a| t.replace(a, ""));
            for bad in ["http://", "https://", "//cdn", "@import", "<script>", " style=\"", "onclick=", "eval(", "innerHTML"] {
                assert!(!text.contains(bad), "{name} contains {bad:?}");
            }
        }
        assert!(INDEX_HTML.contains("src=\"app.js\"") && INDEX_HTML.contains("href=\"app.css\""));
        // watch.js after app.js (both deferred, so they run in order): it uses app.js's helpers.
        let (app, watch) = (INDEX_HTML.find("src=\"app.js\""), INDEX_HTML.find("src=\"watch.js\""));
        assert!(app.is_some() && watch > app, "index.html loads watch.js after app.js");
    }

    #[test]
    fn entity_tags_follow_the_bytes_and_revalidate() {
        assert_ne!(TAGS[0], TAGS[1]);
        assert_ne!(TAGS[2], TAGS[3]);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        let mut h = hyper::HeaderMap::new();
        assert!(!not_modified(&h, "\"00ff\""));
        h.insert(header::IF_NONE_MATCH, "\"0001\", W/\"00ff\"".parse().unwrap());
        assert!(not_modified(&h, "\"00ff\""));
        assert!(!not_modified(&h, "\"0002\""));
    }

    #[test]
    fn browsers_are_sent_to_the_page_and_api_clients_are_not() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(chrome) && wants_html(firefox));
        for api in ["*/*", "application/json", "application/xml", "text/xml", "", "text/html;q=0", "text/htmlx"] {
            assert!(!wants_html(api), "{api:?}");
        }
        let req = |path: &str, accept: &str| Request::get(path).header(header::ACCEPT, accept).body(()).unwrap();
        let r = browser_root(&req("/", chrome)).expect("redirect");
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(r.headers()[header::LOCATION], "/web/");
        assert!(browser_root(&req("/", "application/json")).is_none());
        assert!(browser_root(&req("/identity", chrome)).is_none());
        assert!(browser_root(&Request::get("/").body(()).unwrap()).is_none());
        assert!(browser_root(&Request::post("/").header(header::ACCEPT, chrome).body(()).unwrap()).is_none());
    }
}
