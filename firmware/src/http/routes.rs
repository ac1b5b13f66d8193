//! The route table: every route Hearth answers, declared once, with its access class.
//!
//! A route that is not in [`ROUTES`] does not exist (404 with a message). The access class of each route is
//! checked before its handler runs; the table test in the auth room walks every route.

use super::{Body, Ctx, Format};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// Who may call a route. (The auth room's access rule gives each class its meaning.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, in any state: `/identity`, `/health`. Must reveal nothing private.
    Public,
    /// The owner, or an API token with admin scope.
    Owner,
}

/// Everything a handler gets.
pub struct Call {
    pub ctx: Arc<Ctx>,
    pub req: Request<Incoming>,
    pub params: Params,
    pub peer: SocketAddr,
    pub format: Format,
    /// The request came over TLS.
    pub secure: bool,
}

pub type Reply = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Call) -> Reply;

pub struct Route {
    pub method: Method,
    /// Segments; `{name}` captures one segment.
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
}

/// Captured path segments, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params(pub Vec<(&'static str, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

macro_rules! route {
    ($method:ident $path:literal, $access:expr, $handler:path) => {
        Route { method: Method::$method, path: $path, access: $access, handler: |c| Box::pin($handler(c)) }
    };
}

pub static ROUTES: &[Route] = &[
    route!(GET "/identity", Access::Public, super::api::identity),
    route!(GET "/health", Access::Public, super::api::health),
    route!(GET "/api/v1/remote", Access::Owner, super::remote::get),
    route!(PUT "/api/v1/remote", Access::Owner, super::remote::put),
    route!(POST "/api/v1/remote/enable", Access::Owner, super::remote::enable),
    route!(POST "/api/v1/remote/retry", Access::Owner, super::remote::retry),
    route!(POST "/api/v1/remote/disable", Access::Owner, super::remote::disable),
];

#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    NotFound,
    /// The path exists with other methods.
    MethodNotAllowed(Vec<Method>),
}

/// Find the route for a request. HEAD matches GET routes.
pub fn find(method: &Method, path: &str) -> Result<(&'static Route, Params), Miss> {
    let want = if method == Method::HEAD { &Method::GET } else { method };
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(p) = matches(r.path, path) {
            if r.method == *want {
                return Ok((r, p));
            }
            allowed.push(r.method.clone());
        }
    }
    if allowed.is_empty() { Err(Miss::NotFound) } else { Err(Miss::MethodNotAllowed(allowed)) }
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

/// Decode %XX escapes in a path segment; None when the result is not UTF-8 or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

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
        assert!(matches!(find(&Method::POST, "/identity"), Err(Miss::MethodNotAllowed(m)) if m == [Method::GET]));
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
