//! DLNA media server: SSDP discovery, the device description, ContentDirectory and ConnectionManager, and the
//! media streams renderers play.
//!
//! Owns: the SSDP engine ([`ssdp`], sans-IO) and its socket shell ([`discovery`]) on UDP 1900; the description,
//! control and `res` endpoints on TCP 32469 ([`http`]); the SOAP parser ([`soap`]); the hierarchy ([`view`])
//! built from the content interface ([`catalog`]), which the library room's catalog implements ([`library`]).
//! GENA eventing on the description's event URLs: the sans-IO core ([`gena`]) and its NOTIFY sender ([`events`]).
//! Runs only while `State::dlna_effectively_on()` ([`run`] follows the state).
//! Must not touch: accounts or tokens (DLNA has none: [`admit`] asks the auth room's one rule, the DLNA class of
//! `auth::decide`, who it answers and what they see), the flash store.

pub mod catalog;
pub mod companions;
pub mod content;
pub mod description;
pub mod discovery;
pub mod events;
pub mod gena;
pub mod http;
pub mod lan;
pub mod library;
pub mod soap;
pub mod ssdp;
pub mod switch;
pub mod view;

use crate::auth::{Access, Denial, Identity, Visible};
use crate::state::{Handle, Library, Net, State};
use crate::system::watchdog::Beat;
use catalog::Catalog;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use view::View;

pub use crate::auth::Via;

/// Whom DLNA answers and what they see: the auth room's one rule for the DLNA class (`auth::decide` with
/// `Access::Dlna`: LAN sources only, in every state, while DLNA is effectively on), with the origin by the same
/// rule as 32400 (`auth::origin` over the server's own subnets `own`: IPv6, IPv4-mapped addresses, the owner's
/// LAN networks, "treat WAN IP as LAN"). DLNA has no tokens and believes no proxy.
pub fn admit(state: &State, own: &[Net], peer: IpAddr, via: Via) -> Result<Visible, Denial> {
    // Without an X-Forwarded-For chain the origin rule cannot fail; refuse if it ever does.
    let origin = crate::auth::origin(peer, None, state, own).map_err(|_| Denial::DlnaLanOnly)?;
    crate::auth::decide(Access::Dlna(via), &Identity::Anonymous, &origin, state).map(|caller| caller.sees())
}

/// The libraries DLNA shows: the owner's choice, all when the choice is empty (the DLNA caller's visible set).
pub fn visible_libraries(state: &State) -> Vec<Library> {
    let sees = crate::auth::access::dlna_libraries(state);
    state.libraries.iter().filter(|l| sees.allows(l.id)).cloned().collect()
}

/// A content view nobody asked for in this long is dropped (rebuilt on the next request): an idle server does
/// not hold a second copy of the catalog.
pub const VIEW_IDLE: Duration = Duration::from_secs(60);

/// What the running server shares between its tasks.
pub struct Live {
    /// The state handle, which the DLNA HTTP side reads at request time (the description, the library folders).
    pub state: Handle,
    /// The content view, built on the first request after a change or an idle spell.
    view: Mutex<Option<Arc<View>>>,
    catalog: Arc<dyn Catalog>,
    /// The libraries DLNA shows and the SystemUpdateID, as the builder last saw them.
    shown: RwLock<Vec<Library>>,
    update_id: AtomicU32,
    last_asked: Mutex<Instant>,
    /// The state and the server's own subnets (`auth::own_subnets`) the rule is asked with.
    rule: RwLock<(Arc<State>, Vec<Net>)>,
    /// Set when DLNA turns off: refuse everything from that moment, before the sockets are gone.
    closed: AtomicBool,
    /// The stream room's shared counters, pacer and running streams: media bodies on 32469 go through it (LAN).
    pub streams: Arc<crate::stream::Streams>,
    /// GENA subscriptions of this on-period ([`events`]).
    events: events::Events,
}

impl Live {
    /// A fresh server's shared part: no view yet, the rule asked with `state` and today's own subnets.
    fn new(
        handle: Handle,
        catalog: Arc<dyn Catalog>,
        streams: Arc<crate::stream::Streams>,
        state: &Arc<State>,
    ) -> Live {
        Live {
            state: handle,
            view: Mutex::new(None),
            catalog,
            shown: RwLock::new(Vec::new()),
            update_id: AtomicU32::new(0),
            last_asked: Mutex::new(Instant::now()),
            rule: RwLock::new((state.clone(), crate::auth::own_subnets())),
            closed: AtomicBool::new(false),
            streams,
            events: Default::default(),
        }
    }

    /// The content view of the libraries DLNA shows that `sees` (the access decision) allows, built now if the
    /// one at hand is not exactly that.
    pub fn view(&self, sees: Visible) -> Arc<View> {
        let mut slot = self.view.lock().unwrap();
        *self.last_asked.lock().unwrap() = Instant::now();
        let libraries: Vec<Library> = self.shown.read().unwrap().iter().filter(|l| sees.allows(l.id)).cloned().collect();
        if let Some(v) = &*slot
            && v.libraries.iter().copied().eq(libraries.iter().map(|l| l.id))
        {
            return v.clone();
        }
        let view = Arc::new(View::build(&libraries, &*self.catalog, self.update_id.load(Ordering::SeqCst)).with_source(self.catalog.clone()));
        tracing::info!(items = view.item_count(), libraries = libraries.len(), update_id = view.update_id, "DLNA content view built");
        *slot = Some(view.clone());
        view
    }

    /// Drop the view if nobody asked for it in `idle`.
    fn forget_if_idle(&self, idle: Duration) {
        let mut slot = self.view.lock().unwrap();
        if slot.is_some() && self.last_asked.lock().unwrap().elapsed() >= idle {
            *slot = None;
            tracing::debug!("DLNA content view dropped while idle");
        }
    }

    /// [`admit`] on 32469 with the state and subnets of the last refresh: what the peer may see, or why not.
    pub fn admits_http(&self, peer: IpAddr) -> Result<Visible, Denial> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Denial::DlnaOff);
        }
        let r = self.rule.read().unwrap();
        admit(&r.0, &r.1, peer, Via::Http)
    }

    /// [`admit`] on UDP 1900: whether to answer a search from `peer`.
    pub fn admits_ssdp(&self, peer: IpAddr) -> bool {
        if self.closed.load(Ordering::SeqCst) {
            return false;
        }
        let r = self.rule.read().unwrap();
        admit(&r.0, &r.1, peer, Via::Ssdp).is_ok()
    }
}

/// The view is rebuilt (on the next request) when the catalog's generation or the visible libraries change.
struct Builder {
    generation: u64,
    libraries: Vec<Library>,
    update_id: u32,
}

impl Builder {
    fn refresh(&mut self, live: &Live, catalog: &dyn Catalog, state: &State, force: bool) {
        let generation = catalog.generation();
        let libraries = visible_libraries(state);
        if !force && generation == self.generation && libraries == self.libraries {
            return;
        }
        // SystemUpdateID only grows (CDS:1 §2.5.21); seconds keep it growing across restarts too.
        let now = crate::system::clock::now();
        self.update_id = now.max(self.update_id.wrapping_add(1));
        self.generation = generation;
        self.libraries = libraries;
        let mut slot = live.view.lock().unwrap();
        *live.shown.write().unwrap() = self.libraries.clone();
        live.update_id.store(self.update_id, Ordering::SeqCst);
        *slot = None;
    }
}

/// Start DLNA over the library room's catalog (serve.rs calls this with the HTTP context's catalog, so DLNA and
/// the Plex API show the same items with the same ids). `listen` is the server's listen address: a specific
/// address confines DLNA to the interface that has it (loopback: no SSDP at all); unspecified means every LAN
/// interface. Media bodies DLNA sends go through `streams` (the stream room: counted as LAN).
pub fn spawn(
    state: Handle,
    catalog: Arc<crate::library::Catalog>,
    listen: IpAddr,
    streams: Arc<crate::stream::Streams>,
    stop: watch::Receiver<bool>,
    beat: Beat,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state, catalog, listen, streams, stop, beat))
}

/// Follow the state: serve while DLNA is effectively on, byebye and close both ports when it turns off or
/// `stop` turns true. `beat` (the watchdog's DLNA heartbeat) is bumped by the on-loop's tick while DLNA is on
/// and rests while it is off.
pub async fn run(
    state: Handle,
    catalog: Arc<dyn Catalog>,
    listen: IpAddr,
    streams: Arc<crate::stream::Streams>,
    mut stop: watch::Receiver<bool>,
    beat: Beat,
) {
    let scope = match listen {
        IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    };
    let mut rx = state.subscribe();
    let mut retry = false;
    loop {
        beat.rest();
        if !wait_until_on(&mut rx, &mut stop).await {
            return;
        }
        if retry {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let s = rx.borrow().clone();
        let live = Arc::new(Live::new(state.clone(), catalog.clone(), streams.clone(), &s));
        let mut builder = Builder { generation: u64::MAX, libraries: Vec::new(), update_id: 0 };
        builder.refresh(&live, &*catalog, &s, true);
        let listener = match bind_tcp(scope).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(port = http::PORT, error = %e, "DLNA cannot listen; trying again in 5 s");
                retry = true;
                continue;
            }
        };
        let discovery = match discovery::Discovery::bind(ssdp::PORT, scope) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(port = ssdp::PORT, error = %e, "SSDP cannot bind; trying again in 5 s");
                retry = true;
                continue;
            }
        };
        retry = false;
        let server = tokio::spawn(http::serve(listener, live.clone()));
        let (quit, quit_rx) = oneshot::channel();
        let ssdp = tokio::spawn(discovery.run(live.clone(), description::udn(&s.machine_id), quit_rx));
        let eventing = tokio::spawn(events::run(live.clone()));
        tracing::info!(port = http::PORT, secured = s.is_secured(), "DLNA on");
        beat.bump();
        let ended = follow_while_on(&live, &mut builder, &*catalog, &mut rx, &mut stop, &beat).await;
        // Off: refuse at once, close 32469 and every open connection, then byebye and close 1900.
        live.closed.store(true, Ordering::SeqCst);
        server.abort();
        let _ = server.await;
        eventing.abort();
        let _ = quit.send(());
        let _ = tokio::time::timeout(Duration::from_secs(3), ssdp).await;
        tracing::info!(port = http::PORT, "DLNA off");
        if ended {
            beat.rest();
            return;
        }
    }
}

/// Off: wait until the state turns DLNA on. `false` when the server stops (or the state is gone) first.
async fn wait_until_on(rx: &mut watch::Receiver<Arc<State>>, stop: &mut watch::Receiver<bool>) -> bool {
    loop {
        if *stop.borrow() {
            return false;
        }
        if rx.borrow_and_update().dlna_effectively_on() {
            return true;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return false },
            _ = stop.changed() => {}
        }
    }
}

/// On: keep the access rule's state and subnets and the content view current until DLNA turns off (`false`)
/// or the server stops (`true`). Catalog generation and the own subnets are looked at twice a second (an
/// atomic load and one getifaddrs); each tick bumps the watchdog's DLNA `beat` and drops an idle view.
async fn follow_while_on(
    live: &Live,
    builder: &mut Builder,
    catalog: &dyn Catalog,
    rx: &mut watch::Receiver<Arc<State>>,
    stop: &mut watch::Receiver<bool>,
    beat: &Beat,
) -> bool {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            r = rx.changed() => {
                if r.is_err() {
                    return true;
                }
                let s = rx.borrow_and_update().clone();
                if !s.dlna_effectively_on() {
                    return false;
                }
                *live.rule.write().unwrap() = (s.clone(), crate::auth::own_subnets());
                builder.refresh(live, catalog, &s, false);
            }
            _ = tick.tick() => {
                beat.bump();
                let s = rx.borrow().clone();
                *live.rule.write().unwrap() = (s.clone(), crate::auth::own_subnets());
                builder.refresh(live, catalog, &s, false);
                live.forget_if_idle(VIEW_IDLE);
            }
            _ = stop.changed() => return true,
        }
    }
}

async fn bind_tcp(scope: Option<std::net::Ipv4Addr>) -> std::io::Result<tokio::net::TcpListener> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    let ip = scope.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    s.bind(&std::net::SocketAddr::from((ip, http::PORT)).into())?;
    s.listen(128)?;
    tokio::net::TcpListener::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who DLNA answers is the auth room's rule: see `auth::one_rule_test::a_f3_dlna_refuses_wan_sources`.

    #[test]
    fn dlna_libraries_default_to_all() {
        let mut s = State::new([1; 16]);
        for (id, name) in [(1, "A"), (2, "B")] {
            s.libraries.push(Library { id, kind: crate::state::LibraryKind::Movies, name: name.try_into().unwrap() }).unwrap();
        }
        assert_eq!(visible_libraries(&s).len(), 2);
        s.settings.dlna.libraries.push(2).unwrap();
        assert_eq!(visible_libraries(&s).iter().map(|l| l.id).collect::<Vec<_>>(), [2]);
    }

    /// Items of library 1, changeable, with a generation that follows them.
    struct Shelf(Mutex<Vec<catalog::Item>>, std::sync::atomic::AtomicU64);
    impl Catalog for Shelf {
        fn generation(&self) -> u64 {
            self.1.load(Ordering::SeqCst)
        }
        fn items(&self, library: u8) -> Vec<catalog::Item> {
            self.0.lock().unwrap().iter().filter(|i| i.library == library).cloned().collect()
        }
    }

    fn film(id: u64) -> catalog::Item {
        catalog::Item {
            id,
            library: 1,
            path: format!("/m/{id}.mp4").into(),
            folder: String::new(),
            title: format!("Film {id}"),
            kind: catalog::Kind::Movie,
            size: 1,
            modified: 0,
            mime: "video/mp4",
            duration: None,
            resolution: None,
        }
    }

    /// The view is built when asked for, follows catalog changes (with a new SystemUpdateID), and after an
    /// idle drop comes back with the same items and the same SystemUpdateID (a TV sees no change).
    #[test]
    fn content_view_is_built_on_demand_and_survives_idle_drops() {
        let t = tempfile::tempdir().unwrap();
        let flash = crate::store::NorFile::open_or_create(&t.path().join("flash.img"), 64 * 1024, 4096).unwrap();
        let mut s = State::new([1; 16]);
        s.libraries.push(Library { id: 1, kind: crate::state::LibraryKind::Movies, name: "Films".try_into().unwrap() }).unwrap();
        let handle = Handle::start(crate::store::Store::format(flash).unwrap(), s.clone());
        let shelf = Arc::new(Shelf(Mutex::new(vec![film(1)]), 1.into()));
        let live = Live {
            state: handle.clone(),
            view: Mutex::new(None),
            catalog: shelf.clone(),
            shown: RwLock::new(Vec::new()),
            update_id: AtomicU32::new(0),
            last_asked: Mutex::new(Instant::now()),
            rule: RwLock::new((Arc::new(s.clone()), Vec::new())),
            closed: AtomicBool::new(false),
            streams: crate::stream::Streams::new(),
            events: Default::default(),
        };
        let mut builder = Builder { generation: u64::MAX, libraries: Vec::new(), update_id: 0 };
        builder.refresh(&live, &*shelf, &s, true);
        let first = live.view(Visible::All);
        assert!(first.item(1).is_some() && first.item(2).is_none());

        shelf.0.lock().unwrap().push(film(2));
        shelf.1.store(2, Ordering::SeqCst);
        builder.refresh(&live, &*shelf, &s, false);
        let second = live.view(Visible::All);
        assert!(second.item(2).is_some());
        assert!(second.update_id > first.update_id);

        live.forget_if_idle(Duration::ZERO);
        assert!(live.view.lock().unwrap().is_none());
        let again = live.view(Visible::All);
        assert_eq!((again.item_count(), again.update_id), (2, second.update_id));
        handle.shutdown();
    }
}
