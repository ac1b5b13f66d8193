//! Remote access: making this server reachable from the internet, and saying plainly whether it is.
//!
//! Owns: the mapping methods ([`mapping`]: UPnP IGD through our own control point [`igd`], PCP and NAT-PMP
//! through our own sans-IO core [`pcp`]), the manual port, the status machine ([`status`]), the server mapping view, STUN
//! ([`stun`]), the reachability check and the `hearth reflector` service ([`reflector`]), and the task that
//! follows `Settings.remote` ([`run`]).
//! Must not touch: authentication or the access rule (auth room), stream pacing (stream room reads
//! `upload_kbps`/`stream_kbps`), or the flash store (changes go through the state handle).
//!
//! While a mapping is held the task also listens for the router's announcements ([`announce`], the sans-IO
//! rule; [`listener`], its sockets): a restart announced by the gateway (PCP ANNOUNCE, NAT-PMP epoch, SSDP
//! BOOTID) starts a new attempt at once, and the status says "checking again" until it is judged. Leases are
//! renewed at half the lifetime the router granted (RFC 6887 §11.2.1).
//!
//! The task persists `Settings.remote.last_mapping` coarsely: when a mapping is first made or changes
//! (method, gateway, ports, external address), and when it is deleted; never per renewal. Runtime facts
//! (status, router name, STUN answer) live in [`View`], published through [`Control`].

pub mod acme;
pub mod announce;
pub mod fetch;
pub mod igd;
pub mod listener;
pub mod mapping;
pub mod pcp;
pub mod pinhole;
pub mod reflector;
pub mod router;
pub mod settings;
pub mod status;
pub mod stun;

use crate::state::{Handle, Mapping, MappingMethod, State};
use crate::system::watchdog::Beat;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use mapping::{Active, Kept};
use serde::Serialize;
use status::{Findings, Lease, Reach, Reason, Status};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the task runs (from the serve command line).
#[derive(Clone, Debug)]
pub struct Config {
    /// The port we listen on: the internal port of every mapping, and the external port we ask for first.
    pub internal_port: u16,
    /// Methods in the order tried; default [`mapping::ORDER`].
    pub methods: Vec<MappingMethod>,
    /// How often to check that the router still holds the mapping (router restarts).
    pub check_every: Duration,
    /// `--acme-root FILE`: more roots the ACME task trusts for the CA's HTTPS (a test CA such as Pebble).
    pub acme_root: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config { internal_port: 32400, methods: mapping::ORDER.to_vec(), check_every: Duration::from_secs(60), acme_root: None }
    }
}

/// The seed's "server mapping" view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerMapping {
    /// Our address on the interface of the default route.
    pub private_addr: Option<IpAddr>,
    /// The interface of the default route.
    pub interface: Option<String>,
    /// The default route's gateway.
    pub gateway: Option<IpAddr>,
    /// IGD friendly name, or "PCP" / "NAT-PMP".
    pub router: Option<String>,
    /// What the router says its external address is.
    pub router_external_addr: Option<IpAddr>,
    /// What a STUN server saw.
    pub public_addr_stun: Option<IpAddr>,
    /// A mapping method answered.
    pub server_router_up: bool,
    /// STUN or the reflector answered; None = nothing to ask (no STUN servers, no reflector).
    pub router_internet_up: Option<bool>,
}

/// What the remote-access screen shows: the status, the router and addresses found, and how the last attempt went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct View {
    /// Where remote access stands.
    pub status: Status,
    /// The router and addresses the last attempt found.
    pub mapping: ServerMapping,
    /// Milliseconds from the start of the attempt to its outcome.
    pub attempt_ms: Option<u64>,
    /// Attempts so far (tests and the page use it to see that a Retry ran).
    pub attempts: u64,
    /// IPv6: the pinhole task's status ([`pinhole::follow`]); `status::with_ipv6` combines it with `status`.
    pub ipv6: status::FamilyStatus,
}

/// Shared between the task and the API: the published view and the Retry button.
#[derive(Clone)]
pub struct Control {
    view: Arc<watch::Sender<View>>,
    retry: Arc<watch::Sender<u64>>,
    /// The ACME task's view, HTTP-01 answers and "renew now" ([`acme`]).
    pub acme: acme::Control,
}

impl Default for Control {
    fn default() -> Self {
        let (view, _) = watch::channel(View { status: Status::Disabled, mapping: Default::default(), attempt_ms: None, attempts: 0, ipv6: Default::default() });
        let (retry, _) = watch::channel(0);
        Control { view: Arc::new(view), retry: Arc::new(retry), acme: Default::default() }
    }
}

impl Control {
    /// The view as last published.
    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    /// A receiver that wakes whenever a new view is published.
    pub fn subscribe(&self) -> watch::Receiver<View> {
        self.view.subscribe()
    }

    /// Re-run the attempt now.
    pub fn retry(&self) {
        self.retry.send_modify(|n| *n += 1);
    }

    fn publish(&self, f: impl FnOnce(&mut View)) {
        self.view.send_modify(f);
    }
}

/// The subset of settings that decides what the task does; other changes (bitrates) do not re-map.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wanted {
    claimed: bool,
    enabled: bool,
    safe_mode: bool,
    manual_port: Option<u16>,
    reflector_url: String,
    stun_servers: Vec<String>,
}

impl Wanted {
    fn of(s: &State) -> Wanted {
        let r = &s.settings.remote;
        Wanted {
            claimed: s.is_claimed(),
            enabled: r.enabled,
            safe_mode: s.safe_mode.active,
            manual_port: r.manual_port,
            reflector_url: r.reflector_url.as_str().to_string(),
            stun_servers: r.stun_servers.iter().map(|s| s.as_str().to_string()).collect(),
        }
    }
}

/// Follow `Settings.remote` until `stop` turns true; then delete any mapping and return.
///
/// `beat` is the remote-access heartbeat of the watchdog: bumped every second while the loop waits, and while
/// a mapping attempt, renewal or check runs for at most [`HUNG`] (they are bounded by their own timeouts).
pub async fn run(handle: Handle, control: Control, cfg: Config, mut stop: watch::Receiver<bool>, beat: Beat) {
    let mut states = handle.subscribe();
    let mut retries = control.retry.subscribe();
    let mut active: Option<Active> = None;
    let six = tokio::spawn(pinhole::follow(handle.clone(), control.clone(), cfg.clone(), stop.clone()));
    let acme_setup = acme::order::Setup { internal_port: cfg.internal_port, methods: cfg.methods.clone(), extra_root: cfg.acme_root.clone() };
    tokio::spawn(acme::order::run(handle.clone(), control.clone(), control.acme.clone(), acme_setup, stop.clone()));
    let mut hearing = Hearing::default();
    let mut cause = None;
    loop {
        let state = states.borrow_and_update().clone();
        retries.borrow_and_update();
        let wanted = Wanted::of(&state);
        if !wanted.claimed || !wanted.enabled || wanted.safe_mode {
            stand_down(&handle, &control, &beat, &mut active, &state, &wanted).await;
        } else {
            map_now(&handle, &control, &cfg, &beat, &mut active, &state, &wanted, cause.take()).await;
        }
        hearing.follow(active.as_ref());
        let mut wake = Wake { states: &mut states, retries: &mut retries, stop: &mut stop, hearing: &mut hearing };
        match wake.again(&cfg, &beat, &mut active, &wanted).await {
            Next::Stop => break,
            Next::Map(why) => cause = why,
        }
    }
    if let Some(a) = active.take() {
        mapping::release(&a).await;
    }
    let _ = six.await;
    beat.rest();
}

/// What the task does after waiting: stop, or map again (with the reason when the mapping was lost or the
/// router went away: the status says "checking again…" until the new attempt is judged).
enum Next {
    Stop,
    Map(Option<String>),
}

/// The router's announcements ([`announce`]): the sockets on our LAN address and what the gateway said.
#[derive(Default)]
struct Hearing {
    ears: Option<listener::Listener>,
    watch: announce::Watch,
}

impl Hearing {
    /// Listen on the held mapping's LAN address and judge announcements against its gateway and epoch.
    fn follow(&mut self, a: Option<&Active>) {
        let Some(a) = a else { return };
        if self.ears.as_ref().is_none_or(|e| e.local != a.local) {
            self.ears = Some(listener::Listener::open(a.local));
        }
        let epoch = match &a.held {
            mapping::Held::Pcp { epoch, .. } | mapping::Held::NatPmp { epoch } => Some(*epoch),
            mapping::Held::Igd(_) => None,
        };
        self.watch.follow(a.gateway, epoch, a.external_addr);
    }

    /// The next announcement that means "check again", with what was heard. Pending without sockets.
    async fn restart(&mut self) -> String {
        let Some(ears) = self.ears.as_ref() else { return std::future::pending().await };
        loop {
            let (from, heard) = ears.next().await;
            // Other SSDP devices (this server's own DLNA, TVs) are strangers all the time: not worth a line.
            let ssdp = matches!(heard, announce::Heard::Ssdp { .. });
            match self.watch.hear(from, heard, crate::system::clock::unix_now()) {
                announce::Verdict::Recheck(what) => return what,
                announce::Verdict::Stranger if !ssdp => {
                    tracing::info!(%from, "ignored a router announcement from an address that is not the gateway")
                }
                announce::Verdict::Stranger | announce::Verdict::Nothing => {}
            }
        }
    }
}

/// Remote access is off (not claimed, disabled or safe mode): delete the mapping we hold, forget the stored
/// one, and say why.
async fn stand_down(handle: &Handle, control: &Control, beat: &Beat, active: &mut Option<Active>, state: &State, wanted: &Wanted) {
    if let Some(a) = active.take() {
        beat.during(HUNG, mapping::release(&a)).await;
    }
    if state.settings.remote.last_mapping.is_some() && wanted.claimed {
        persist(handle, None).await;
    }
    let st = if !wanted.claimed {
        Status::Unsuccessful { reason: Reason::NotClaimed }
    } else if wanted.enabled && wanted.safe_mode {
        Status::Unsuccessful { reason: Reason::SafeMode }
    } else {
        Status::Disabled
    };
    control.publish(|v| {
        v.status = st;
        v.mapping = ServerMapping::default();
    });
}

/// One mapping attempt (the stored external port preferred), its judgement published and a new mapping stored.
#[allow(clippy::too_many_arguments)]
async fn map_now(
    handle: &Handle,
    control: &Control,
    cfg: &Config,
    beat: &Beat,
    active: &mut Option<Active>,
    state: &State,
    wanted: &Wanted,
    cause: Option<String>,
) {
    let started = std::time::Instant::now();
    control.publish(|v| {
        // Never "verified" about a mapping not checked since the router went away.
        v.status = match cause {
            Some(cause) => Status::Checking { cause },
            None => Status::Mapping,
        };
        v.attempts += 1;
    });
    // The method that held the mapping is asked first: after a router restart the mapping comes back by
    // the same door at once, without waiting out the others' searches.
    let mut methods = cfg.methods.clone();
    if let Some(a) = active.take() {
        if let Some(i) = methods.iter().position(|m| *m == a.method) {
            methods[..=i].rotate_right(1);
        }
        beat.during(HUNG, mapping::release(&a)).await;
    }
    let last = state.settings.remote.last_mapping.as_ref();
    let preferred = last.filter(|m| m.method != MappingMethod::Manual).map(|m| m.external_port).unwrap_or(cfg.internal_port);
    let machine = state.machine_identifier();
    let cfg = Config { methods, ..cfg.clone() };
    let (findings, view_map, held) = beat.during(HUNG, attempt(wanted, &cfg, preferred, &machine)).await;
    let st = status::judge(&findings);
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(status = ?st, ms, "remote access attempt finished");
    if let (Status::Successful { .. }, Some(a)) = (&st, held.as_ref()) {
        let m = Mapping {
            method: a.method,
            gateway: IpAddr::V4(a.gateway),
            external_addr: a.external_addr,
            external_port: a.external_port,
            internal_port: a.internal_port,
            lease_secs: a.lease_secs,
            obtained: crate::system::clock::now(),
        };
        let same = last.is_some_and(|l| Mapping { obtained: l.obtained, ..m.clone() } == *l);
        if !same {
            persist(handle, Some(m)).await;
        }
    }
    // A mapping we hold is kept even when the status is not Successful (double NAT, unreachable):
    // Retry re-runs; Disable deletes it.
    *active = held;
    control.publish(|v| {
        v.status = st;
        v.mapping = view_map;
        v.attempt_ms = Some(ms);
    });
}

/// What wakes the remote task between attempts: a change of what is wanted, Retry, the stop, the router's
/// announcement of a restart.
struct Wake<'a> {
    states: &'a mut watch::Receiver<Arc<State>>,
    retries: &'a mut watch::Receiver<u64>,
    stop: &'a mut watch::Receiver<bool>,
    hearing: &'a mut Hearing,
}

/// When to renew a lease the router granted for `granted_secs`: after half of it (RFC 6887 §11.2.1), at least
/// a second; never for a permanent lease (0).
pub fn renew_after(granted_secs: u32) -> Option<Duration> {
    (granted_secs > 0).then(|| Duration::from_secs((granted_secs as u64 / 2).max(1)))
}

fn renewal_due(a: &Active) -> Option<tokio::time::Instant> {
    renew_after(a.lease_secs).map(|d| tokio::time::Instant::now() + d)
}

impl Wake<'_> {
    /// Wait for a reason to act again, renewing the lease at half its granted life, checking every
    /// `check_every` that the router still holds the mapping, and listening for the router's announcements.
    async fn again(&mut self, cfg: &Config, beat: &Beat, active: &mut Option<Active>, wanted: &Wanted) -> Next {
        let mut renew_at = active.as_ref().and_then(renewal_due);
        let mut check_at = tokio::time::Instant::now() + cfg.check_every;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let (has, deadline) = (active.is_some(), renew_at);
            let check = async move {
                if has { tokio::time::sleep_until(check_at).await } else { std::future::pending::<()>().await }
            };
            let renew = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let hearing = &mut *self.hearing;
            let heard = async move {
                if has { hearing.restart().await } else { std::future::pending().await }
            };
            tokio::select! {
                changed = self.states.changed() => {
                    if changed.is_err() { return Next::Stop; }
                    let now = Wanted::of(&self.states.borrow());
                    if now != *wanted { return Next::Map(None); }
                }
                _ = self.retries.changed() => return Next::Map(None),
                _ = self.stop.changed() => return Next::Stop,
                _ = tick.tick() => beat.bump(),
                what = heard => {
                    tracing::info!(%what, "the router announced a restart; mapping again");
                    return Next::Map(Some(format!("your router announced a restart ({what})")));
                }
                _ = renew => {
                    let a = active.as_mut().expect("renew only with a mapping");
                    match beat.during(HUNG, mapping::keep(a, true)).await {
                        Kept::Held => {
                            tracing::debug!(port = a.external_port, granted = a.lease_secs, "lease renewed");
                            renew_at = renewal_due(a);
                        }
                        other => {
                            tracing::info!(outcome = ?other, "renewal failed; mapping again");
                            return Next::Map(Some(format!("the router did not renew the mapping ({})", kept_text(&other))));
                        }
                    }
                }
                _ = check => {
                    check_at = tokio::time::Instant::now() + cfg.check_every;
                    let a = active.as_mut().expect("check only with a mapping");
                    match beat.during(HUNG, mapping::keep(a, false)).await {
                        Kept::Held => {}
                        other => {
                            tracing::info!(outcome = ?other, method = ?a.method, "the router lost our mapping (restart?); mapping again");
                            return Next::Map(Some(format!("the router no longer holds the mapping ({})", kept_text(&other))));
                        }
                    }
                }
            }
        }
    }
}

fn kept_text(k: &Kept) -> String {
    match k {
        Kept::Held => "held".into(),
        Kept::Lost => "it restarted or dropped it".into(),
        Kept::Failed(why) => why.clone(),
    }
}

/// Longest a mapping attempt, renewal, check or release may keep the remote heartbeat fresh. The slowest
/// legitimate one (no gateway: UPnP search, then PCP and NAT-PMP retransmissions) takes about 7 s.
pub const HUNG: Duration = Duration::from_secs(60);

async fn persist(handle: &Handle, m: Option<Mapping>) {
    let r = handle
        .update(|s| {
            s.settings.remote.last_mapping = m;
            Ok::<_, core::convert::Infallible>(())
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "could not save the mapping");
    }
}

/// One attempt: find the router, map (or take the manual port), ask STUN and the reflector.
async fn attempt(
    wanted: &Wanted,
    cfg: &Config,
    preferred: u16,
    machine: &str,
) -> (Findings, ServerMapping, Option<Active>) {
    let mut view = ServerMapping::default();
    let route = router::default_route();
    let local = route.as_ref().and_then(|r| crate::system::ifaces::ipv4_of(&r.interface));
    view.interface = route.as_ref().map(|r| r.interface.clone());
    view.gateway = route.as_ref().map(|r| IpAddr::V4(r.gateway));
    view.private_addr = local.map(IpAddr::V4);
    let stun = async {
        if wanted.stun_servers.is_empty() { None } else { stun_public(&wanted.stun_servers).await }
    };
    let mut router_external = None;
    let mut refusals = Vec::new();
    let (mapping, held) = match wanted.manual_port {
        Some(port) => {
            (Ok(Lease { method: MappingMethod::Manual, external_addr: None, external_port: port, lease_secs: None }), None)
        }
        None => match (route.as_ref(), local) {
            (Some(r), Some(local)) => {
                match mapping::map_any(&cfg.methods, r.gateway, local, cfg.internal_port, preferred).await {
                    Ok(a) => (
                        Ok(Lease {
                            method: a.method,
                            external_addr: a.external_addr,
                            external_port: a.external_port,
                            lease_secs: Some(a.lease_secs),
                        }),
                        Some(a),
                    ),
                    Err(missed) => {
                        router_external = missed.named;
                        refusals = missed.refusals;
                        (Err(missed.reason), None)
                    }
                }
            }
            _ => (Err(Reason::NoRoute), None),
        },
    };
    if let Some(a) = &held {
        view.router = Some(a.router_name.clone());
        view.router_external_addr = a.external_addr;
        router_external = a.external_addr;
        view.server_router_up = true;
        view.gateway = Some(IpAddr::V4(a.gateway));
    } else if let Err(Reason::Refused { method, .. }) = &mapping {
        view.server_router_up = true;
        view.router = Some(status::method_name(*method).to_string());
        view.router_external_addr = router_external;
    }
    let stun_public = stun.await;
    view.public_addr_stun = stun_public;
    let reach = match (&mapping, wanted.reflector_url.is_empty()) {
        (Ok(lease), false) => match reflector::ask(&wanted.reflector_url, lease.external_port, machine).await {
            Ok(v) if v.reachable => Reach::Reached { seen_as: v.seen_as.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) },
            Ok(v) => Reach::Unreached {
                how: format!(
                    "the reflector at {} could not fetch /identity from {}:{} ({})",
                    wanted.reflector_url,
                    v.seen_as.map(|a| a.to_string()).unwrap_or_else(|| "our address".into()),
                    lease.external_port,
                    v.error.unwrap_or_default()
                ),
            },
            Err(e) => Reach::Unreached { how: format!("the reflector could not be asked: {e}") },
        },
        _ => Reach::NotChecked,
    };
    let reflector_answered = match &reach {
        Reach::Reached { .. } => Some(true),
        Reach::Unreached { how } if how.starts_with("the reflector at") => Some(true),
        _ => None,
    };
    view.router_internet_up = match (stun_public.is_some(), reflector_answered, wanted.stun_servers.is_empty() && wanted.reflector_url.is_empty()) {
        (true, _, _) | (_, Some(true), _) => Some(true),
        (_, _, true) => None,
        _ => Some(false),
    };
    let asked_port = wanted.manual_port.unwrap_or(preferred);
    let forward_to = local.map(|l| SocketAddr::new(IpAddr::V4(l), cfg.internal_port));
    (Findings { mapping, router_external, stun_public, reach, refusals, asked_port, forward_to }, view, held)
}

/// Ask the configured STUN servers in turn; the first answer wins (RFC 5389 §7.2.1 retransmits, shortened).
pub async fn stun_public(servers: &[String]) -> Option<IpAddr> {
    for s in servers {
        let Some((host, port)) = s.rsplit_once(':') else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        let Ok(addr) = fetch::resolve(host.trim_matches(|c| c == '[' || c == ']'), port).await else { continue };
        if let Some(a) = stun_ask(addr).await {
            return Some(a.ip());
        }
        tracing::info!(server = %s, "no STUN answer");
    }
    None
}

async fn stun_ask(server: SocketAddr) -> Option<SocketAddr> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
    let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
    sock.connect(server).await.ok()?;
    let tid: [u8; 12] = crate::system::random::bytes();
    let req = stun::binding_request(tid);
    let mut buf = [0u8; 1500];
    for wait in [500u64, 1000, 1500] {
        let _ = sock.send(&req).await;
        let until = tokio::time::Instant::now() + Duration::from_millis(wait);
        while let Ok(got) = tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
            match got {
                Ok(n) => {
                    if let Ok(a) = stun::parse_binding_response(&buf[..n], &tid) {
                        return Some(a);
                    }
                }
                Err(_) => {
                    tokio::time::sleep_until(until).await;
                    break;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code review 2026-12-04 §5 "UPnP lease renewal": renew at half the lifetime the router granted, not the
    /// one asked for (`mapping::keep` stores the granted lifetime of every renewal reply in `lease_secs`).
    #[test]
    fn code_review_5_renewal_at_half_the_granted_lease() {
        assert_eq!(renew_after(mapping::LEASE_SECS), Some(Duration::from_secs(3600)));
        // miniupnpd's min_lifetime / a router that grants less than asked: half of what it granted.
        assert_eq!(renew_after(120), Some(Duration::from_secs(60)));
        assert_eq!(renew_after(1), Some(Duration::from_secs(1)), "never a busy loop");
        assert_eq!(renew_after(0), None, "a permanent lease is not renewed");
    }
}
