//! `hearth reflector`: a small public service that tells a server whether the internet can reach it, and the
//! client side the server uses to ask it.
//!
//! Protocol: `POST /check` with `{"port": 32400, "machineIdentifier": "<32 hex>"}`. The reflector connects
//! back to **the address the request came from** (never an address named in the request) on that port, sends
//! `GET /identity` (`Accept: application/json`) and answers
//! `{"reachable": bool, "address": "<source address>", "port": N, "error": "<why not>"}`.
//!
//! Bounds against abuse: only `/identity` is fetched, only from the caller's own address; 5 s for the
//! whole fetch (connect included), 16 KiB of answer; at most [`CONCURRENCY`] checks at once (more get 503); callers
//! from non-public addresses are refused unless started with `--allow-private-targets` (the lab).

use super::fetch;
use super::status::is_non_public;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Checks run at once; one more gets 503 (bounds the outbound fetches one reflector makes).
pub const CONCURRENCY: usize = 8;
/// Where `hearth reflector` listens without `--listen`: both families, so it can check IPv4 and IPv6 reachability.
pub const DEFAULT_LISTEN: &str = "[::]:32499";
const FETCH_DEADLINE: Duration = Duration::from_secs(5);
const IDENTITY_LIMIT: usize = 16 * 1024;

/// How `hearth reflector` runs, from its command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address and port the reflector listens on.
    pub listen: SocketAddr,
    /// Also check callers with private or loopback addresses (tests on one machine); off, they get 403.
    pub allow_private_targets: bool,
}

impl Config {
    /// Read `--listen ADDR:PORT` and `--allow-private-targets` from the arguments after `hearth reflector`.
    pub fn parse(args: Vec<OsString>) -> Result<Config, String> {
        use lexopt::prelude::*;
        let mut cfg = Config { listen: DEFAULT_LISTEN.parse().expect("valid"), allow_private_targets: false };
        let mut p = lexopt::Parser::from_args(args);
        let e = |e: lexopt::Error| e.to_string();
        while let Some(arg) = p.next().map_err(e)? {
            match arg {
                Long("listen") => {
                    let v = p.value().map_err(e)?.string().map_err(e)?;
                    cfg.listen = v.parse().map_err(|_| format!("--listen wants an address like [::]:32499 or 0.0.0.0:32499, not {v:?}"))?;
                }
                Long("allow-private-targets") => cfg.allow_private_targets = true,
                other => return Err(other.unexpected().to_string()),
            }
        }
        Ok(cfg)
    }
}

/// Answer checks on `listener` until `stop` resolves (the command shell, `crate::command::reflector`, binds
/// the address and passes the stop signals).
pub async fn serve(listener: tokio::net::TcpListener, cfg: Config, stop: impl std::future::Future<Output = ()>) {
    tracing::info!(addr = %listener.local_addr().expect("addr"), private = cfg.allow_private_targets, "reflector listening");
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let accept = async {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let gate = gate.clone();
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let gate = gate.clone();
                    let cfg = cfg.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, peer, &cfg, &gate).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    };
    tokio::select! {
        _ = accept => {},
        _ = stop => {},
    }
}

fn reply(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("valid response")
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    cfg: &Config,
    gate: &Semaphore,
) -> Response<Full<Bytes>> {
    let err = |s: StatusCode, m: &str| reply(s, serde_json::json!({ "error": m }));
    if req.uri().path() != "/check" {
        return err(StatusCode::NOT_FOUND, "This is a Hearth reflector: POST /check {\"port\": N, \"machineIdentifier\": \"...\"}.");
    }
    if req.method() != Method::POST {
        return err(StatusCode::METHOD_NOT_ALLOWED, "Use POST /check.");
    }
    let ip = crate::system::dual_stack::canonical(peer.ip());
    if is_non_public(ip) && !cfg.allow_private_targets {
        return err(StatusCode::FORBIDDEN, "This reflector only checks public addresses; yours is private.");
    }
    let Ok(_permit) = gate.try_acquire() else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "The reflector is busy; try again in a few seconds.");
    };
    let body = match tokio::time::timeout(Duration::from_secs(5), Limited::new(req.into_body(), 1024).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return err(StatusCode::BAD_REQUEST, "Send a JSON body of at most 1 KiB."),
    };
    #[derive(serde::Deserialize)]
    struct Ask {
        port: u16,
        #[serde(rename = "machineIdentifier")]
        machine: String,
    }
    let Ok(ask) = serde_json::from_slice::<Ask>(&body) else {
        return err(StatusCode::BAD_REQUEST, "The body must be {\"port\": 1-65535, \"machineIdentifier\": \"...\"}.");
    };
    if ask.port == 0 {
        return err(StatusCode::BAD_REQUEST, "The port must be between 1 and 65535.");
    }
    let target = SocketAddr::new(ip, ask.port);
    let outcome = fetch_identity(target).await;
    let (reachable, error) = match outcome {
        Ok(id) if id == ask.machine => (true, None),
        Ok(id) => (false, Some(format!("another server answered there (machineIdentifier {id})"))),
        Err(e) => (false, Some(e)),
    };
    tracing::info!(%target, reachable, "checked");
    reply(
        StatusCode::OK,
        serde_json::json!({ "reachable": reachable, "address": ip.to_string(), "port": ask.port, "error": error }),
    )
}

/// `GET /identity` at `target`; the machineIdentifier it names. (Connect and fetch share the 5 s deadline.)
async fn fetch_identity(target: SocketAddr) -> Result<String, String> {
    let host = target.to_string();
    let (status, body) =
        fetch::exchange(target, &host, Method::GET, "/identity", None, IDENTITY_LIMIT, FETCH_DEADLINE)
            .await
            .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{target} answered /identity with HTTP {}", status.as_u16()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| format!("{target} did not answer /identity with JSON"))?;
    v["MediaContainer"]["machineIdentifier"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{target} answered /identity without a machineIdentifier"))
}

/// What the reflector said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The reflector fetched `/identity` at the address and port and the machine id matched.
    pub reachable: bool,
    /// The address the reflector saw the request from (the caller's public address).
    pub seen_as: Option<std::net::IpAddr>,
    /// What went wrong when not reachable, in words.
    pub error: Option<String>,
}

/// Ask the reflector at `url` to reach us on `port`. Err = the reflector itself could not be asked.
pub async fn ask(url: &str, port: u16, machine: &str) -> Result<Verdict, String> {
    let (host, rport, path) = fetch::split_url(url).map_err(|e| e.to_string())?;
    // The IPv4 check goes over IPv4 when the name has both (an IPv6 check is [`ask_from`]'s).
    let addr = match resolve_family(&host, rport, false).await {
        Some(a) => a,
        None => fetch::resolve(&host, rport).await.map_err(|e| e.to_string())?,
    };
    check(url, &host, rport, &path, addr, None, port, machine).await
}

/// Ask the reflector at `url` to reach us over `from`'s family, from the address `from` (issue 21: the IPv6
/// check must come from the global address the pinhole was opened for, so the reflector connects back to it).
/// The reflector's name must resolve to an address of that family (a name with an AAAA record, or an IPv6
/// literal); Err says so when it does not.
pub async fn ask_from(url: &str, port: u16, machine: &str, from: std::net::IpAddr) -> Result<Verdict, String> {
    let (host, rport, path) = fetch::split_url(url).map_err(|e| e.to_string())?;
    let addr = resolve_family(&host, rport, from.is_ipv6())
        .await
        .ok_or_else(|| format!("the reflector URL {url} names no {} address", if from.is_ipv6() { "IPv6" } else { "IPv4" }))?;
    check(url, &host, rport, &path, addr, Some(from), port, machine).await
}

/// The one check exchange both families use: POST `{port, machineIdentifier}` to the reflector's `/check` at
/// `addr` (from `from` when given) and read its verdict.
#[allow(clippy::too_many_arguments)]
async fn check(
    url: &str,
    host: &str,
    rport: u16,
    path: &str,
    addr: std::net::SocketAddr,
    from: Option<std::net::IpAddr>,
    port: u16,
    machine: &str,
) -> Result<Verdict, String> {
    let path = format!("{}/check", path.trim_end_matches('/'));
    let body = serde_json::json!({ "port": port, "machineIdentifier": machine }).to_string();
    let host_header = if host.contains(':') {
        format!("[{host}]:{rport}")
    } else if rport == 80 {
        host.to_string()
    } else {
        format!("{host}:{rport}")
    };
    let (status, bytes) = fetch::exchange_from(from, addr, &host_header, Method::POST, &path, Some(body), 16 * 1024, Duration::from_secs(12))
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| format!("the reflector at {url} did not answer JSON"))?;
    if !status.is_success() {
        let msg = v["error"].as_str().unwrap_or("no reason given");
        return Err(format!("the reflector at {url} answered HTTP {}: {msg}", status.as_u16()));
    }
    Ok(Verdict {
        reachable: v["reachable"].as_bool().unwrap_or(false),
        seen_as: v["address"].as_str().and_then(|a| a.parse().ok()),
        error: v["error"].as_str().map(str::to_string),
    })
}

/// The first address of `host` in the wanted family (a literal, or the system resolver's A/AAAA answers).
async fn resolve_family(host: &str, port: u16, v6: bool) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return (ip.is_ipv6() == v6).then_some(SocketAddr::new(ip, port));
    }
    let found = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port))).await.ok()?.ok()?;
    found.into_iter().find(|a| a.is_ipv6() == v6)
}
