//! The route table: every route Hearth answers, declared once, with its access class.
//!
//! A route that is not in [`ROUTES`] does not exist (404 with a message). The access class of each route is
//! checked by [`run`] (the auth room's [`decide`]) before its handler runs; a route cannot be declared without
//! a class (the `access` field has no default), and the table test in the auth room walks every route.

use super::{Body, Ctx, Format};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::auth::{Access, Section};
use crate::auth::{Caller, Origin, decide, token};

/// Everything a handler gets.
pub struct Call {
    /// What every handler can reach (state, auth, library, streams).
    pub ctx: Arc<Ctx>,
    /// The request, body not yet read.
    pub req: Request<Incoming>,
    /// The path segments the route captured.
    pub params: Params,
    /// The socket peer (a trusted proxy's address when behind one; see `origin`).
    pub peer: SocketAddr,
    /// Whether to answer JSON or XML.
    pub format: Format,
    /// The request came over TLS.
    pub secure: bool,
    /// Where the request comes from (after trusted proxies).
    pub origin: Origin,
    /// Who passed the access rule.
    pub caller: Caller,
}

/// The future a handler returns: boxed, so every handler fits the one [`Handler`] type of the table.
pub type Reply = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
/// A route's handler: gets the admitted request, answers it.
pub type Handler = fn(Call) -> Reply;

/// One row of [`ROUTES`]: method, path pattern, access class, accepted body type and handler.
pub struct Route {
    /// The method it answers (HEAD is answered by the GET route).
    pub method: Method,
    /// Segments; `{name}` captures one segment.
    pub path: &'static str,
    /// Who may call it, checked before the handler runs (no default on purpose).
    pub access: Access,
    /// The media type a state-changing request's body must have ([`super::doors::body_type`]): JSON unless
    /// the route names another (e.g. a firmware upload), which keeps every other check.
    pub accepts: &'static str,
    /// What answers the request once admitted.
    pub handler: Handler,
}

/// Captured path segments, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(pub Vec<(&'static str, String)>);

impl Params {
    /// The value captured for `{name}`, if the route has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

macro_rules! route {
    ($method:ident $path:literal, $access:expr, $handler:path) => {
        route!($method $path, $access, $handler, accepts super::doors::JSON)
    };
    ($method:ident $path:literal, $access:expr, $handler:path, accepts $accepts:expr) => {
        Route {
            method: Method::$method,
            path: $path,
            access: $access,
            accepts: $accepts,
            handler: |c| Box::pin($handler(c)),
        }
    };
}

use super::account_api as acct;

/// The class of every item route (metadata, children, leaves, parts; the stream fast path too): bound at
/// dispatch to the library of the item the `id` parameter names.
pub const ITEM: Access = Access::Item(Section::Param("id"));

/// Every route Hearth answers on port 32400: a request that matches none gets 404 (or 405 when only the
/// method differs).
pub static ROUTES: &[Route] = &[
    route!(GET "/identity", Access::Public, super::api::identity),
    route!(GET "/health", Access::Public, super::api::health),
    route!(GET "/api/v1/server", Access::Public, acct::session::server),
    route!(POST "/api/v1/claim", Access::Claim, acct::session::claim),
    route!(POST "/api/v1/sign-in", Access::SignIn, acct::session::sign_in),
    route!(POST "/api/v1/sign-out", Access::Account, acct::session::sign_out),
    route!(GET "/api/v1/me", Access::Account, acct::session::me),
    route!(POST "/api/v1/me/password", Access::Account, acct::session::change_password),
    route!(PUT "/api/v1/me/pin", Access::Account, acct::session::set_own_pin),
    route!(GET "/api/v1/home/users", Access::Home, acct::home::home_users),
    route!(POST "/api/v1/home/switch", Access::Home, acct::home::home_switch),
    route!(GET "/api/v1/members", Access::Owner, acct::accounts::list::<acct::accounts::Members>),
    route!(POST "/api/v1/members", Access::Owner, acct::accounts::add::<acct::accounts::Members>),
    route!(PATCH "/api/v1/members/{id}", Access::Owner, acct::accounts::edit::<acct::accounts::Members>),
    route!(DELETE "/api/v1/members/{id}", Access::Owner, acct::accounts::remove::<acct::accounts::Members>),
    route!(GET "/api/v1/friends", Access::Owner, acct::accounts::list::<acct::accounts::Friends>),
    route!(POST "/api/v1/friends", Access::Owner, acct::accounts::add::<acct::accounts::Friends>),
    route!(PATCH "/api/v1/friends/{id}", Access::Owner, acct::accounts::edit::<acct::accounts::Friends>),
    route!(DELETE "/api/v1/friends/{id}", Access::Owner, acct::accounts::remove::<acct::accounts::Friends>),
    route!(GET "/api/v1/tokens", Access::Owner, acct::devices::list_tokens),
    route!(POST "/api/v1/tokens", Access::Owner, acct::devices::create_token),
    route!(DELETE "/api/v1/tokens/{id}", Access::Owner, acct::devices::revoke_token),
    route!(GET "/api/v1/devices", Access::Owner, acct::devices::list_devices),
    route!(PATCH "/api/v1/devices/{id}", Access::Owner, acct::devices::rename_device),
    route!(DELETE "/api/v1/devices/{id}", Access::Owner, acct::devices::revoke_device),
    route!(GET "/api/v1/settings/network", Access::Owner, acct::settings::network_settings),
    route!(PUT "/api/v1/settings/network", Access::Owner, acct::settings::set_network_settings),
    route!(GET "/api/v1/settings/dlna", Access::Owner, acct::settings::dlna_settings),
    route!(PUT "/api/v1/settings/dlna", Access::Owner, acct::settings::set_dlna_settings),
    // Plex-compatible client API (plex.rs). `/` redirects browsers to /web/ inside the handler.
    route!(GET "/", Access::Libraries, super::plex::root),
    route!(GET "/library", Access::Libraries, super::plex::library),
    route!(GET "/library/sections", Access::Libraries, super::plex::sections),
    route!(GET "/library/sections/{id}/all", Access::Library(Section::Param("id")), super::plex::section_all),
    route!(GET "/library/sections/{id}/albums", Access::Library(Section::Param("id")), super::plex::section_albums),
    route!(GET "/library/sections/{id}/collections", Access::Library(Section::Param("id")), super::plex::section_collections),
    route!(GET "/library/sections/{id}/refresh", Access::Refresh(Section::Param("id")), super::plex::section_refresh),
    route!(DELETE "/library/sections/{id}/refresh", Access::Refresh(Section::Param("id")), super::plex::section_refresh_cancel),
    // Search and "Recently added" (plex/hubs.rs): across the libraries the caller sees, or one of them.
    route!(GET "/hubs/search", Access::Libraries, super::plex::hubs::search),
    route!(GET "/library/all", Access::Libraries, super::plex::hubs::all),
    route!(GET "/library/recentlyAdded", Access::Libraries, super::plex::hubs::recently_added),
    route!(GET "/library/sections/{id}/recentlyAdded", Access::Library(Section::Param("id")), super::plex::hubs::section_recently_added),
    route!(GET "/library/metadata/{id}", ITEM, super::plex::metadata),
    route!(GET "/library/metadata/{id}/children", ITEM, super::plex::children),
    route!(GET "/library/metadata/{id}/allLeaves", ITEM, super::plex::all_leaves),
    // Pictures and sidecar subtitles (plex/pictures.rs): a stream id names its video, so ITEM binds it too.
    route!(GET "/library/metadata/{id}/thumb", ITEM, super::plex::pictures::thumb),
    route!(GET "/library/streams/{id}", ITEM, super::plex::pictures::stream),
    // Part streams: the stream fast path (stream room) answers these before hyper sees them whenever the
    // request is the first on its connection (or follows another part request); this route is the copy path.
    route!(GET "/library/parts/{id}/{ts}/{file}", ITEM, super::plex::part),
    // Watch state per person (plex/progress.rs). Plex clients send these as GET with the item in the query
    // (`ratingKey`/`key`): ITEM binds it there ([`item_from_query`]), so a caller who cannot see the item gets
    // the same 404 as for its metadata and changes nothing.
    route!(GET "/:/timeline", ITEM, super::plex::progress::timeline),
    route!(GET "/:/progress", ITEM, super::plex::progress::progress),
    route!(GET "/:/scrobble", ITEM, super::plex::progress::scrobble),
    route!(GET "/:/unscrobble", ITEM, super::plex::progress::unscrobble),
    route!(GET "/library/onDeck", Access::Libraries, super::plex::progress::on_deck),
    route!(GET "/library/sections/{id}/onDeck", Access::Library(Section::Param("id")), super::plex::progress::section_on_deck),
    // The home screen's rows (plex/hubs.rs): Continue Watching and Recently Added, across libraries or in one.
    route!(GET "/hubs", Access::Libraries, super::plex::hubs::home),
    route!(GET "/hubs/sections/{id}", Access::Library(Section::Param("id")), super::plex::hubs::section_home),
    // Plex's newer name for the same row: the "Continue Watching" hub's items (plexapi `continueWatching()`).
    route!(GET "/hubs/continueWatching/items", Access::Libraries, super::plex::progress::on_deck),
    route!(GET "/hubs/sections/{id}/continueWatching/items", Access::Library(Section::Param("id")), super::plex::progress::section_on_deck),
    // Owner JSON API for libraries (libraries.rs).
    route!(GET "/api/v1/libraries", Access::Owner, super::libraries::list),
    route!(POST "/api/v1/libraries", Access::Owner, super::libraries::create),
    route!(DELETE "/api/v1/libraries/{id}", Access::Owner, super::libraries::delete),
    route!(POST "/api/v1/libraries/{id}/folders", Access::Owner, super::libraries::add_folder),
    route!(DELETE "/api/v1/libraries/{id}/folders", Access::Owner, super::libraries::remove_folder),
    route!(POST "/api/v1/libraries/{id}/refresh", Access::Refresh(Section::Param("id")), super::libraries::refresh),
    route!(GET "/api/v1/libraries/{id}/progress", Access::Refresh(Section::Param("id")), super::libraries::progress),
    // The owner's folder picker for new libraries (folders.rs): sub-folders only, read off the worker.
    route!(GET "/api/v1/folders", Access::Owner, super::folders::folders),
    route!(GET "/api/v1/streams", Access::Owner, super::libraries::streams),
    route!(GET "/api/v1/bandwidth", Access::Owner, super::libraries::bandwidth),
    route!(PUT "/api/v1/bandwidth", Access::Owner, super::libraries::set_bandwidth),
    route!(POST "/api/v1/system/reboot", Access::Owner, super::api::reboot),
    route!(GET "/api/v1/remote", Access::Owner, super::remote::get),
    route!(PUT "/api/v1/remote", Access::Owner, super::remote::put),
    route!(POST "/api/v1/remote/enable", Access::Owner, super::remote::enable),
    route!(POST "/api/v1/remote/retry", Access::Owner, super::remote::retry),
    route!(POST "/api/v1/remote/disable", Access::Owner, super::remote::disable),
    route!(GET "/api/v1/settings/tls", Access::Owner, super::tls_api::get),
    route!(PUT "/api/v1/settings/tls", Access::Owner, super::tls_api::put),
    route!(GET "/api/v1/system", Access::Owner, super::system_api::system),
    route!(POST "/api/v1/system/update", Access::Owner, super::update_api::update, accepts "application/octet-stream"),
    route!(DELETE "/api/v1/system/safe-mode", Access::Owner, super::system_api::clear_safe_mode),
    // The setup page (issue 7): public files; its data comes from the routes above.
    route!(GET "/web", Access::Public, super::web::slashless),
    route!(GET "/web/", Access::Public, super::web::index),
    route!(GET "/web/app.css", Access::Public, super::web::css),
    route!(GET "/web/app.js", Access::Public, super::web::js),
    route!(GET "/web/watch.js", Access::Public, super::web::watch_js),
];

/// Why [`admit`] refused a request.
#[derive(Debug)]
pub struct Refusal {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The sentence shown to the person refused.
    pub message: &'static str,
    /// The caller's address, for the log of refused tokens.
    pub addr: std::net::IpAddr,
    /// The request carried a token: a 401 then means a bad or revoked token, which is logged.
    pub token_presented: bool,
}

/// Which library an item (or show, season, artist, album) id belongs to: the catalog's answer, for binding
/// [`ITEM`] routes.
pub type LibraryOf<'a> = &'a dyn Fn(u32) -> Option<crate::state::LibraryId>;

/// The whole admission of a request, without I/O: origin (trusted proxies), token (header, Bearer, query),
/// identity, then the access rule for the route's class bound to its path parameters (and, for item routes,
/// to the item's library through `library_of`).
#[allow(clippy::too_many_arguments)]
pub fn admit(
    access: Access,
    params: &Params,
    headers: &impl crate::wire::Fields,
    query: Option<&str>,
    peer: SocketAddr,
    state: &crate::state::State,
    own_subnets: &[crate::state::Net],
    library_of: LibraryOf<'_>,
) -> Result<(Origin, Caller), Refusal> {
    let forwarded = headers.text("x-forwarded-for").map(|v| v.unwrap_or("?"));
    let origin = crate::auth::origin(peer.ip(), forwarded, state, own_subnets)
        .map_err(|e| Refusal { status: 400, message: e.0, addr: peer.ip(), token_presented: false })?;
    let presented = token::presented(headers, query);
    let identity = token::identify(&presented, state);
    let access = access.bind(|name| params.get(name).map(str::to_owned), library_of);
    match decide(access, &identity, &origin, state) {
        Ok(caller) => Ok((origin, caller)),
        Err(d) => Err(Refusal {
            status: d.status(),
            message: d.message(),
            addr: origin.addr,
            token_presented: !matches!(presented, token::Presented::None),
        }),
    }
}

/// [`admit`] for a request head the connection loop parsed ([`crate::wire::Head`]), as the stream fast path
/// has it: the same door, reading the head's fields where they are.
pub fn admit_head(
    access: Access,
    params: &Params,
    head: &crate::wire::Head,
    peer: SocketAddr,
    state: &crate::state::State,
    own_subnets: &[crate::state::Net],
    library_of: LibraryOf<'_>,
) -> Result<(Origin, Caller), Refusal> {
    admit(access, params, head, head.query(), peer, state, own_subnets, library_of)
}

/// Check the request's body type against the route's, then the route's access class, then run its handler.
pub async fn run(
    route: &'static Route,
    params: Params,
    ctx: Arc<Ctx>,
    peer: SocketAddr,
    secure: bool,
    req: Request<Incoming>,
    format: Format,
) -> Response<Body> {
    // The JSON API answers JSON whatever Accept says.
    let format = if req.uri().path().starts_with("/api/") { Format::Json } else { format };
    if let Err(refused) = super::doors::body_type(req.method(), req.headers(), route.accepts) {
        return super::error(hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE, &refused.message, format);
    }
    let params = item_from_query(route, params, req.uri().query());
    let state = ctx.state.snapshot();
    let own = ctx.auth.subnets();
    let library_of = |id: u32| ctx.library.library_of(id);
    let (origin, caller) = match admit(route.access, &params, req.headers(), req.uri().query(), peer, &state, &own, &library_of) {
        Ok(pass) => pass,
        Err(refusal) => {
            if refusal.status == 401 && refusal.token_presented {
                tracing::info!(peer = %refusal.addr, path = req.uri().path(), "refused a request with an invalid token");
            }
            let status = hyper::StatusCode::from_u16(refusal.status).expect("valid status");
            let mut r = super::error(status, refusal.message, format);
            if status == hyper::StatusCode::UNAUTHORIZED {
                let v = hyper::header::HeaderValue::from_static("Bearer realm=\"hearth\"");
                r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    };
    if let Caller::Account { device, .. } = caller {
        ctx.auth.seen(device);
    }
    (route.handler)(Call { ctx, req, params, peer, format, secure, origin, caller }).await
}

/// An [`ITEM`] route whose path names no item (Plex's `/:/timeline`, `/:/progress`, `/:/scrobble`,
/// `/:/unscrobble`) takes the item from the query: `ratingKey`, else `key`; either an id or
/// `/library/metadata/<id>`. Both given and naming different items, or a key that is neither: no item (the
/// access rule answers 404). The handler acts on this parameter, so it acts on the item the rule decided on.
pub fn item_from_query(route: &Route, mut params: Params, query: Option<&str>) -> Params {
    let Access::Item(Section::Param(name)) = route.access else { return params };
    if params.get(name).is_some() {
        return params;
    }
    let field = |key: &str| {
        query?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v).unwrap_or_default())
        })
    };
    let id = |v: String| {
        let bare = v.strip_prefix("/library/metadata/").unwrap_or(&v);
        bare.parse::<u32>().ok()
    };
    let item = match (field("ratingKey").map(id), field("key").map(id)) {
        (Some(Some(a)), Some(Some(b))) if a != b => None,
        (Some(a), _) => a,
        (None, Some(b)) => b,
        (None, None) => None,
    };
    // A value the access rule cannot parse: "no such item".
    params.0.push((name, item.map_or_else(|| "none".into(), |i| i.to_string())));
    params
}

/// Why [`find`] found no route: none has the path (404), or none with this method (405).
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists with other methods.
    MethodNotAllowed(Vec<Method>),
}

/// Find the route for a request. HEAD matches GET routes.
pub fn find(method: &Method, path: &str) -> Result<(&'static Route, Params), Miss> {
    let want = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(p) = matches(r.path, path) {
            if r.method == *want {
                return Ok((r, p));
            }
            allowed.push(r.method.clone());
        }
    }
    if allowed.is_empty() {
        Err(Miss::NotFound)
    } else {
        Err(Miss::MethodNotAllowed(allowed))
    }
}

fn matches(pattern: &'static str, path: &str) -> Option<Params> {
    let mut params = Params::default();
    let mut pat = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(p), Some(g)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.0.push((name, percent_decode(g)?));
                } else if p != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Percent-decoding lives in the wire room (auth decodes a query token with it too).
pub use crate::wire::percent_decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_routes_and_captures() {
        let (r, p) = find(&Method::GET, "/identity").unwrap();
        assert_eq!(r.path, "/identity");
        assert!(p.0.is_empty());
        assert!(find(&Method::HEAD, "/identity").is_ok());
        assert!(matches!(find(&Method::GET, "/nope"), Err(Miss::NotFound)));
        assert!(
            matches!(find(&Method::POST, "/identity"), Err(Miss::MethodNotAllowed(m)) if m == [Method::GET])
        );
    }

    #[test]
    fn the_reboot_route_is_post_only() {
        assert!(find(&Method::POST, "/api/v1/system/reboot").is_ok());
        assert!(matches!(find(&Method::GET, "/api/v1/system/reboot"), Err(Miss::MethodNotAllowed(m)) if m == [Method::POST]));
    }

    #[test]
    fn progress_routes_take_the_item_from_the_query() {
        let (r, _) = find(&Method::GET, "/:/timeline").unwrap();
        let id = |q: &str| item_from_query(r, Params::default(), Some(q)).get("id").map(str::to_owned);
        assert_eq!(id("ratingKey=12&key=%2Flibrary%2Fmetadata%2F12&time=5").as_deref(), Some("12"));
        assert_eq!(id("key=12&identifier=com.plexapp.plugins.library").as_deref(), Some("12"));
        assert_eq!(id("key=/library/metadata/7").as_deref(), Some("7"));
        // Disagreeing or unreadable keys name no item.
        assert_eq!(id("ratingKey=12&key=/library/metadata/13").as_deref(), Some("none"));
        assert_eq!(id("key=../../etc").as_deref(), Some("none"));
        assert_eq!(id("time=5").as_deref(), Some("none"));
        // A route with the id in its path keeps it; a route of another class is left alone.
        let (m, p) = find(&Method::GET, "/library/metadata/3").unwrap();
        assert_eq!(item_from_query(m, p, Some("key=4")).get("id"), Some("3"));
        let (d, p) = find(&Method::GET, "/library/onDeck").unwrap();
        assert_eq!(item_from_query(d, p, Some("key=4")).get("id"), None);
    }

    #[test]
    fn captures_decode_and_reject_broken_escapes() {
        let p = matches("/a/{id}/b", "/a/x%20y/b").unwrap();
        assert_eq!(p.get("id"), Some("x y"));
        assert!(matches("/a/{id}/b", "/a/%zz/b").is_none());
        assert!(matches("/a/{id}", "/a/").is_none());
        assert!(matches("/a/{id}", "/a/1/2").is_none());
    }
}
