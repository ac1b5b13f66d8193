//! The ACME task: follows `Settings::acme`, the remote-access status and the served certificate, orders when
//! [`super::plan`] says so, and stores the certificate, its key and the account in one state update (so a
//! failed order changes nothing stored). The order itself (RFC 8555 §7.4): account, newOrder, HTTP-01 for
//! each authorization through an external port-80 mapping, finalize with our CSR, download the chain.

use super::transport::Transport;
use super::{Control, Facts, Next, Served, Stage, ca_name, plan, validity};
use crate::remote::mapping;
use crate::remote::status::Status;
use crate::state::{self, AcmeAccount, Handle, MappingMethod, State};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A whole order, account to certificate; the CA's own polling included.
pub const ORDER_TIMEOUT: Duration = Duration::from_secs(120);
/// The external port HTTP-01 is checked on (RFC 8555 §8.3: port 80).
pub const HTTP01_PORT: u16 = 80;

/// How the task runs (from the serve command line, through the remote room's config).
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// Our listening port: the internal port of the port-80 mapping.
    pub internal_port: u16,
    /// Mapping methods in the order tried (as for the main mapping).
    pub methods: Vec<MappingMethod>,
    /// `--acme-root FILE`: more roots to trust for the CA's own HTTPS (a test CA).
    pub extra_root: Option<PathBuf>,
}

/// Why an order failed: one sentence for the owner and the detail under it.
struct Failure {
    sentence: String,
    detail: String,
}

impl Failure {
    fn new(sentence: impl Into<String>, detail: impl std::fmt::Display) -> Failure {
        Failure { sentence: sentence.into(), detail: detail.to_string() }
    }
}

fn ca_said(e: instant_acme::Error) -> Failure {
    Failure::new("The certificate authority refused or could not be reached; Hearth keeps its own certificate.", e)
}

/// What the task remembers between orders (runtime only).
#[derive(Default)]
struct Memory {
    failures: u32,
    failed_at: i64,
    issued_for: Option<String>,
    renewals_seen: u64,
    account: Option<AcmeAccount>,
}

/// Follow the state, the remote view and "renew now" until `stop` turns true.
pub async fn run(handle: Handle, remote: crate::remote::Control, acme: Control, setup: Setup, mut stop: watch::Receiver<bool>) {
    let mut states = handle.subscribe();
    let mut views = remote.subscribe();
    let mut renew = acme.subscribe_renew();
    let mut mem = Memory::default();
    loop {
        let state = handle.snapshot();
        let view = remote.view();
        let ident = identifier(&state, &view.status);
        let forced = *renew.borrow_and_update() != mem.renewals_seen;
        let facts = Facts {
            wanted: state.is_claimed() && state.settings.acme.enabled,
            reachable: ident.is_some()
                && (state.settings.acme.domain.is_some() || matches!(view.status, Status::Successful { .. })),
            served: served(&state),
            identifier_changed: ident.as_ref().map(label) != mem.issued_for && mem.issued_for.is_some(),
            failures: mem.failures,
            failed_at: mem.failed_at,
        };
        let now = crate::system::clock::unix_now() as i64;
        let wait = match plan(&facts) {
            Next::Idle(stage, sentence) => {
                acme.publish(|v| {
                    v.stage = stage;
                    v.sentence = sentence.into();
                    v.detail = None;
                    v.next_order = None;
                });
                None
            }
            Next::OrderAt(at) if at <= now || forced => {
                mem.renewals_seen = *renew.borrow();
                let Some(ident) = ident else { continue };
                order_now(&handle, &acme, &setup, &view, &state, ident, &mut mem).await;
                continue;
            }
            Next::OrderAt(at) => {
                acme.publish(|v| v.next_order = Some(at as u64));
                Some(Duration::from_secs((at - now) as u64))
            }
        };
        let timer = async {
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = states.changed() => if r.is_err() { return },
            r = views.changed() => if r.is_err() { return },
            r = renew.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
            _ = timer => {}
        }
    }
}

/// One order, published as Ordering and then as Issued or Failed.
async fn order_now(
    handle: &Handle,
    acme: &Control,
    setup: &Setup,
    view: &crate::remote::View,
    state: &State,
    ident: Identifier,
    mem: &mut Memory,
) {
    let dir = state.settings.acme.directory_url.as_str().to_string();
    let name = label(&ident);
    acme.publish(|v| {
        v.stage = Stage::Ordering;
        v.sentence = format!("Asking {} for a certificate for {name}…", ca_name(&dir));
        v.detail = None;
        v.identifier = Some(name.clone());
        v.ca = Some(ca_name(&dir));
        v.orders += 1;
    });
    let started = Instant::now();
    let port80 = open_port_80(setup, view).await;
    let got = match &port80 {
        Err(f) => Err(Failure::new(f.sentence.clone(), &f.detail)),
        Ok(_) => match tokio::time::timeout(ORDER_TIMEOUT, order(acme, setup, &dir, &ident, mem)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                "The certificate authority took too long; Hearth keeps its own certificate and tries again later.",
                format!("no certificate within {} s", ORDER_TIMEOUT.as_secs()),
            )),
        },
    };
    acme.withdraw_all();
    if let Ok(Some(a)) = &port80 {
        mapping::release(a).await;
    }
    let now = crate::system::clock::unix_now() as i64;
    let stored = match got {
        Ok(issued) => store(handle, issued, mem.account.clone()).await,
        Err(f) => Err(f),
    };
    match stored {
        Ok(()) => {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(identifier = %name, ca = %ca_name(&dir), ms, "ACME certificate stored and served");
            mem.failures = 0;
            mem.issued_for = Some(name.clone());
            acme.publish(|v| {
                v.stage = Stage::Issued;
                v.sentence = format!("Browsers trust this server: the certificate for {name} is from {}.", ca_name(&dir));
                v.order_ms = Some(ms);
            });
        }
        Err(f) => {
            tracing::warn!(identifier = %name, detail = %f.detail, "ACME order failed");
            mem.failures += 1;
            mem.failed_at = now;
            acme.publish(|v| {
                v.stage = Stage::Failed;
                v.sentence = f.sentence;
                v.detail = Some(f.detail);
            });
        }
    }
}

/// The external port-80 mapping HTTP-01 needs, made like the main mapping; None when the owner forwards by
/// hand (manual port) or gave a domain without remote access (their port 80 is theirs to forward).
async fn open_port_80(setup: &Setup, view: &crate::remote::View) -> Result<Option<mapping::Active>, Failure> {
    let manual = matches!(view.status, Status::Successful { method: MappingMethod::Manual, .. });
    let (Some(IpAddr::V4(gw)), Some(IpAddr::V4(local))) = (view.mapping.gateway, view.mapping.private_addr) else {
        return Ok(None);
    };
    if manual || !matches!(view.status, Status::Successful { .. }) {
        return Ok(None);
    }
    let refused = |d: String| {
        Failure::new("Your router did not open port 80, which the certificate authority checks; Hearth keeps its own certificate.", d)
    };
    match mapping::map_any(&setup.methods, gw, local, setup.internal_port, HTTP01_PORT).await {
        Ok(a) if a.external_port == HTTP01_PORT => Ok(Some(a)),
        Ok(a) => {
            let port = a.external_port;
            mapping::release(&a).await;
            Err(refused(format!("the router opened external port {port}, not {HTTP01_PORT}")))
        }
        Err(missed) => Err(refused(missed.reason.sentence())),
    }
}

/// The stored pieces of a new certificate.
struct Issued {
    tls: state::Tls,
    leaf_sha256: [u8; 32],
}

/// Account, order, HTTP-01, CSR, chain (RFC 8555 §7.3-§7.4.2).
async fn order(acme: &Control, setup: &Setup, dir: &str, ident: &Identifier, mem: &mut Memory) -> Result<Issued, Failure> {
    let http = || Transport::new(setup.extra_root.as_deref()).map_err(|e| Failure::new("Hearth cannot talk to the certificate authority.", e));
    let account = match mem.account.as_ref().filter(|a| a.directory_url == dir) {
        Some(a) => Account::builder_with_http(Box::new(http()?))
            .from_parts(a.url.to_string(), PrivatePkcs8KeyDer::from(a.key.to_vec()), dir.to_string())
            .await
            .map_err(ca_said)?,
        None => {
            let new = NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
            let (account, creds) =
                Account::builder_with_http(Box::new(http()?)).create(&new, dir.to_string(), None).await.map_err(ca_said)?;
            mem.account = Some(AcmeAccount {
                directory_url: state::bounded("the ACME directory URL", dir).map_err(|e| Failure::new("The ACME directory URL is too long.", e))?,
                url: state::bounded("the ACME account URL", account.id()).map_err(|e| Failure::new("The CA's account URL is too long to keep.", e))?,
                key: heapless::Vec::from_slice(creds.private_key().secret_pkcs8_der())
                    .map_err(|_| Failure::new("The CA's account key is too large to keep.", "PKCS#8 over MAX_ACCOUNT_KEY"))?,
            });
            account
        }
    };
    let ids = [ident.clone()];
    let shortlived = account.profiles().any(|p| p.name == "shortlived");
    let mut new = NewOrder::new(&ids);
    if shortlived {
        new = new.profile("shortlived");
    }
    let mut order = account.new_order(&new).await.map_err(ca_said)?;
    let mut authzs = order.authorizations();
    while let Some(a) = authzs.next().await {
        let mut a = a.map_err(ca_said)?;
        match a.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(Failure::new("The certificate authority would not let Hearth prove this address.", format!("authorization {other:?}"))),
        }
        let mut ch = a
            .challenge(ChallengeType::Http01)
            .ok_or_else(|| Failure::new("The certificate authority offers no HTTP-01 check for this name.", "no http-01 challenge"))?;
        acme.offer(ch.token.clone(), ch.key_authorization().as_str().to_string());
        ch.set_ready().await.map_err(ca_said)?;
    }
    let retry = RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(Duration::from_secs(60));
    let status = order.poll_ready(&retry).await.map_err(ca_said)?;
    if status != OrderStatus::Ready {
        return Err(Failure::new(
            format!(
                "The certificate authority could not reach this server at http://{}/.well-known/acme-challenge/ (port 80); Hearth keeps its own certificate.",
                label(ident)
            ),
            problems(&mut order).await.unwrap_or_else(|| format!("order {status:?}")),
        ));
    }
    let (csr, key) = request(ident)?;
    order.finalize_csr(&csr).await.map_err(ca_said)?;
    let pem = order.poll_certificate(&retry).await.map_err(ca_said)?;
    chain(&pem, &key)
}

/// The CA's words about failed challenges (RFC 8555 §7.1.4 `error` of a challenge).
async fn problems(order: &mut instant_acme::Order) -> Option<String> {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(Ok(mut a)) = authzs.next().await {
        if let Ok(st) = a.refresh().await {
            out.extend(st.challenges.iter().filter_map(|c| c.error.as_ref()).map(|p| p.to_string()));
        }
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// A CSR for the identifier with a fresh ECDSA P-256 key (rcgen; RFC 2986), and the key as PKCS#8 DER.
fn request(ident: &Identifier) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256, SanType};
    let fail = |e: rcgen::Error| Failure::new("Hearth could not make the certificate request.", e);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![match ident {
        Identifier::Ip(ip) => SanType::IpAddress(*ip),
        Identifier::Dns(d) => SanType::DnsName(d.clone().try_into().map_err(fail)?),
        _ => return Err(Failure::new("Hearth asks only for addresses and domains.", "unexpected identifier")),
    }];
    let csr = params.serialize_request(&key).map_err(fail)?;
    Ok((csr.der().to_vec(), key.serialize_der()))
}

/// The downloaded PEM chain and our key as the stored `state::Tls` (chain layout: u16 BE length + DER per
/// certificate, leaf first, as `state::Tls` documents).
fn chain(pem: &str, key: &[u8]) -> Result<Issued, Failure> {
    let bad = |d: String| Failure::new("The certificate authority sent a certificate Hearth cannot use; it keeps its own.", d);
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| bad(format!("not PEM: {e:?}")))?;
    let leaf = certs.first().ok_or_else(|| bad("no certificate in the answer".into()))?;
    validity(leaf).ok_or_else(|| bad("the leaf has no readable validity".into()))?;
    let mut packed = heapless::Vec::<u8, { state::MAX_CERT }>::new();
    let total: usize = certs.iter().map(|c| c.len() + 2).sum();
    for c in &certs {
        let len = u16::try_from(c.len()).map_err(|_| bad(format!("a certificate of {} bytes", c.len())))?;
        packed
            .extend_from_slice(&len.to_be_bytes())
            .and_then(|_| packed.extend_from_slice(c))
            .map_err(|_| bad(format!("the chain is {total} bytes; at most {} fit on flash", state::MAX_CERT)))?;
    }
    let leaf_sha256 = sha256(leaf);
    let key = heapless::Vec::from_slice(key).map_err(|_| bad("the key is too large".into()))?;
    Ok(Issued { tls: state::Tls { chain: packed, key, custom: true }, leaf_sha256 })
}

/// Certificate, key, account and "issued by ACME" in one state update (the acceptor follows `State::tls`).
/// An owner's certificate installed while the order ran is kept.
async fn store(handle: &Handle, issued: Issued, account: Option<AcmeAccount>) -> Result<(), Failure> {
    let r = handle
        .update(|s| {
            if served(s) == Served::Owners {
                return Err(state::StateError::Invalid("the owner installed a certificate while the order ran"));
            }
            s.tls = Some(issued.tls);
            s.acme.issued = Some(issued.leaf_sha256);
            if account.is_some() {
                s.acme.account = account;
            }
            Ok(())
        })
        .await;
    r.map_err(|e| Failure::new("Hearth could not keep the new certificate; it keeps the one it has.", e))
}

/// What `State::tls` holds, for [`plan`].
pub fn served(s: &State) -> Served {
    let Some(tls) = &s.tls else { return Served::SelfSigned };
    let leaf = leaf(&tls.chain);
    match leaf {
        Some(l) if s.acme.issued == Some(sha256(l)) => match validity(l) {
            Some((not_before, not_after)) => Served::Acme { not_before, not_after },
            None => Served::SelfSigned,
        },
        _ if tls.custom => Served::Owners,
        _ => Served::SelfSigned,
    }
}

/// The first certificate of the stored chain layout.
pub fn leaf(chain: &[u8]) -> Option<&[u8]> {
    let len = u16::from_be_bytes([*chain.first()?, *chain.get(1)?]) as usize;
    chain.get(2..2 + len)
}

/// SHA-256 (ring), for "this leaf is the one the CA issued".
pub fn sha256(b: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The name the certificate is for: the owner's domain (or an address the owner typed), else the public IPv4
/// address remote access found (RFC 8738: IP identifiers; Let's Encrypt certifies no IPv6 by HTTP-01 here).
fn identifier(s: &State, status: &Status) -> Option<Identifier> {
    if let Some(d) = &s.settings.acme.domain {
        return Some(match d.parse::<IpAddr>() {
            Ok(ip) => Identifier::Ip(ip),
            Err(_) => Identifier::Dns(d.to_string()),
        });
    }
    match status {
        Status::Successful { external_addr: Some(IpAddr::V4(a)), .. } if is_public(*a) => Some(Identifier::Ip(IpAddr::V4(*a))),
        _ => None,
    }
}

fn is_public(a: Ipv4Addr) -> bool {
    !(a.is_private() || a.is_loopback() || a.is_link_local() || a.is_unspecified() || a.is_broadcast())
}

/// The identifier as the screen shows it.
pub fn label(i: &Identifier) -> String {
    match i {
        Identifier::Ip(ip) => ip.to_string(),
        Identifier::Dns(d) => d.clone(),
        _ => "?".into(),
    }
}
