//! GENA's tokio shell: answers SUBSCRIBE and UNSUBSCRIBE on 32469 with the [`gena`] core's rules and runs the
//! NOTIFY sender ([`run`]), one task per DLNA on-period (the table goes when DLNA turns off).
//!
//! The sender wakes when a subscription's 200 is out (initial event), when a message finishes, at the end of a
//! moderation wait, and twice a second to look at the content view's SystemUpdateID (an atomic load, which the
//! builder in [`super`] moves when the catalog's generation or the shown libraries change); with no
//! subscription it sleeps until one comes. Each NOTIFY (UDA 1.1 §4.2.1) is its own short connection to the
//! subscriber's own address and port: [`CONNECT`] to connect, [`TOTAL`] for the whole exchange, an answer read
//! up to [`MAX_ANSWER`] bytes and judged on its status line alone (2xx arrived; a redirect or anything else is a
//! failure, never followed). Before each message the DLNA rule is asked again about the address, so an address
//! that stopped being LAN gets nothing.

use super::gena::{self, Ask, Fields, Notify, Refusal, Service, Table};
use super::{Live, content};
use crate::auth::Visible;
use crate::wire::Fields as _;
use crate::wire::Head;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Time to connect to a subscriber's callback.
pub const CONNECT: Duration = Duration::from_secs(2);
/// Time for a whole NOTIFY exchange, connect included.
pub const TOTAL: Duration = Duration::from_secs(5);
/// Bytes of a subscriber's answer read at most (the status line is all that counts).
pub const MAX_ANSWER: usize = 4096;
/// How often the sender looks at the SystemUpdateID while anyone is subscribed.
const LOOK: Duration = Duration::from_millis(500);

/// The subscriptions of one DLNA on-period and the sender's wake-up.
#[derive(Default)]
pub struct Events {
    table: Mutex<Table>,
    wake: tokio::sync::Notify,
}

impl Events {
    /// Subscriptions held now.
    pub fn held(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// The answer to a GENA request, for the HTTP loop to write; then [`Reply::sent`].
pub struct Reply {
    /// 200, or the refusal's status.
    pub status: u16,
    /// `SID` and `TIMEOUT` of a granted subscription or renewal.
    pub headers: Vec<(&'static str, String)>,
    /// Empty on 200, else what was wrong.
    pub body: String,
    /// The new subscription whose initial event waits for this answer.
    initial: Option<String>,
}

impl Reply {
    fn refused(r: Refusal) -> Reply {
        Reply { status: r.status, headers: Vec::new(), body: format!("{}\r\n", r.message), initial: None }
    }

    fn granted(g: gena::Granted, initial: bool) -> Reply {
        let headers = vec![("SID", g.sid.clone()), ("TIMEOUT", format!("Second-{}", g.timeout))];
        Reply { status: 200, headers, body: String::new(), initial: initial.then_some(g.sid) }
    }

    /// The answer is written: a new subscription's initial event may go now (§4.2.1: after the 200).
    pub fn sent(&self, live: &Live) {
        if let Some(sid) = &self.initial {
            live.events.table.lock().unwrap().release(sid);
            live.events.wake.notify_one();
        }
    }
}

/// Answer a SUBSCRIBE or UNSUBSCRIBE `req` (with `body`) from `peer`, who may see `sees`: the [`gena`] core's
/// checks, then the table. Refusals change nothing.
pub fn answer(live: &Live, req: &Head, body: &[u8], peer: Option<SocketAddr>, sees: Visible) -> Reply {
    let Some(service) = gena::Service::at(req.path()) else {
        return Reply::refused(Refusal { status: 404, message: "No events are published at this address; use the eventSubURL of the description." });
    };
    let Some(peer) = peer.map(|p| crate::system::dual_stack::canonical(p.ip())) else {
        return Reply::refused(Refusal { status: 400, message: "The connection has no peer address." });
    };
    let fields = Fields {
        nt: req.field("nt"),
        callback: req.field("callback"),
        sid: req.field("sid"),
        timeout: req.field("timeout"),
        body: req.has_body() || !body.is_empty(),
    };
    let now = Instant::now();
    let unsubscribe = req.method() == "UNSUBSCRIBE";
    let done = gena::parse(unsubscribe, &fields, peer).and_then(|ask| match ask {
        Ask::Subscribe { callbacks, timeout } => {
            let info = if service == Service::ConnectionManager { source_protocol_info(live, sees) } else { String::new() };
            let mut table = live.events.table.lock().unwrap();
            let g = table.subscribe(now, service, peer, callbacks, timeout, gena::new_sid(), info)?;
            tracing::info!(%peer, ?service, timeout = g.timeout, held = table.len(), "GENA subscription");
            Ok(Reply::granted(g, true))
        }
        Ask::Renew { sid, timeout } => live.events.table.lock().unwrap().renew(now, service, peer, &sid, timeout).map(|g| Reply::granted(g, false)),
        Ask::Unsubscribe { sid } => {
            let mut table = live.events.table.lock().unwrap();
            table.unsubscribe(now, service, peer, &sid)?;
            tracing::info!(%peer, ?service, held = table.len(), "GENA subscription cancelled");
            Ok(Reply { status: 200, headers: Vec::new(), body: String::new(), initial: None })
        }
    });
    done.unwrap_or_else(|r| {
        tracing::info!(%peer, status = r.status, method = req.method(), "GENA request refused: {}", r.message);
        Reply::refused(r)
    })
}

/// ConnectionManager's SourceProtocolInfo for `sees`: the `Source` of its GetProtocolInfo answer, the same
/// list (already XML-escaped there, and protocolInfo strings hold no XML specials).
fn source_protocol_info(live: &Live, sees: Visible) -> String {
    let ask = super::soap::Action { service: content::CMS.into(), name: "GetProtocolInfo".into(), args: Vec::new() };
    let xml = content::connection_manager(&ask, &live.view(sees)).unwrap_or_default();
    let from = xml.find("<Source>").map(|i| i + "<Source>".len());
    let to = xml.find("</Source>");
    match (from, to) {
        (Some(a), Some(b)) if a <= b => xml[a..b].to_string(),
        _ => String::new(),
    }
}

/// The NOTIFY sender for one DLNA on-period: runs until aborted (DLNA off), with the messages out in a
/// [`JoinSet`] that goes with it.
pub async fn run(live: std::sync::Arc<Live>) {
    let events = &live.events;
    let mut out: JoinSet<(Notify, bool)> = JoinSet::new();
    loop {
        let now = Instant::now();
        let update_id = live.update_id.load(Ordering::SeqCst);
        let (due, wake, idle) = {
            let mut t = events.table.lock().unwrap();
            if t.expire(now) > 0 {
                tracing::info!(held = t.len(), "GENA subscriptions expired");
            }
            (t.due(now, update_id), t.next_wake(now), t.is_empty())
        };
        for n in due {
            let lan = live.admits_http(n.to.addr.ip()).is_ok();
            out.spawn(async move {
                let ok = lan && deliver(&n).await;
                (n, ok)
            });
        }
        let until = wake.map_or(now + LOOK, |w| w.min(now + LOOK));
        tokio::select! {
            _ = events.wake.notified() => {}
            _ = tokio::time::sleep_until(until.into()), if !idle || !out.is_empty() => {}
            Some(Ok((n, ok))) = out.join_next(), if !out.is_empty() => finished(events, &n, ok),
        }
    }
}

/// Record how a message went; say so when it cost the subscription.
fn finished(events: &Events, n: &Notify, ok: bool) {
    let mut t = events.table.lock().unwrap();
    let held = t.delivered(&n.sid, n.seq, ok);
    if !ok {
        let to: IpAddr = n.to.addr.ip();
        tracing::info!(%to, port = n.to.addr.port(), seq = n.seq, dropped = !held, held = t.len(), "GENA NOTIFY failed");
    }
}

/// Send one NOTIFY and read the status line of the answer, within the deadlines: whether it arrived (2xx).
async fn deliver(n: &Notify) -> bool {
    let exchange = async {
        let mut s = tokio::time::timeout(CONNECT, TcpStream::connect(n.to.addr)).await.ok()?.ok()?;
        let _ = s.set_nodelay(true);
        s.write_all(&n.request()).await.ok()?;
        let mut answer = Vec::with_capacity(256);
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(ok) = gena::accepted(&answer) {
                return Some(ok);
            }
            let room = MAX_ANSWER - answer.len();
            if room == 0 {
                return Some(false);
            }
            let take = room.min(chunk.len());
            let got = s.read(&mut chunk[..take]).await.ok()?;
            if got == 0 {
                return Some(false);
            }
            answer.extend_from_slice(&chunk[..got]);
        }
    };
    matches!(tokio::time::timeout(TOTAL, exchange).await, Ok(Some(true)))
}
