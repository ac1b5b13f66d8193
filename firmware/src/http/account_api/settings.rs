//! Network settings (LAN networks, who needs no sign-in, trusted proxies, host names) and DLNA settings (the
//! switch and its warning are the DLNA room's rule, `dlna::switch`).

use super::ok;
use crate::auth::{AuthError, home};
use crate::dlna::switch::{self, Switch};
use crate::http::body;
use crate::http::refused::{Refused, reply};
use crate::http::routes::Call;
use crate::http::Body;
use crate::state::{self, LibraryId, Net, State};
use hyper::Response;
use serde::Deserialize;
use serde_json::{Value, json};

fn nets_json(n: &[Net]) -> Vec<String> {
    n.iter().map(|n| n.to_string()).collect()
}

fn network_json(call: &Call, s: &State) -> Value {
    let set = &s.settings;
    json!({
        "lan_networks": nets_json(&set.lan_networks),
        "own_subnets": nets_json(&call.ctx.auth.subnets()),
        "allowed_without_auth": nets_json(&set.allowed_without_auth),
        "allowed_without_auth_ignored": s.is_secured(),
        "treat_wan_ip_as_lan": set.treat_wan_ip_as_lan,
        "trusted_proxies": nets_json(&set.trusted_proxies),
        "host_names": set.host_names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/settings/network` (Owner).
pub async fn network_settings(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    reply(ok(network_json(&call, &s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkBody {
    #[serde(default)]
    lan_networks: Option<Vec<String>>,
    #[serde(default)]
    allowed_without_auth: Option<Vec<String>>,
    #[serde(default)]
    treat_wan_ip_as_lan: Option<bool>,
    #[serde(default)]
    trusted_proxies: Option<Vec<String>>,
    /// Names a request's Host may carry besides the box's own (issue 18; see auth/doors.rs).
    #[serde(default)]
    host_names: Option<Vec<String>>,
}

/// The owner's host names, checked and normalised (`state::host_name`); duplicates after normalising are
/// kept once.
fn parse_host_names(v: &[String]) -> Result<heapless::Vec<state::HostName, { state::MAX_HOST_NAMES }>, Refused> {
    let mut out = heapless::Vec::new();
    for raw in v {
        let n = state::host_name(raw).map_err(|e| Refused::bad(format!("host_names: {raw:?} is not usable: {e}")))?;
        if !out.contains(&n) {
            state::push("host names", &mut out, n)?;
        }
    }
    Ok(out)
}

fn parse_nets<const N: usize>(what: &'static str, v: &[String]) -> Result<heapless::Vec<Net, N>, Refused> {
    let mut out = heapless::Vec::new();
    for raw in v {
        let n: Net = raw
            .parse()
            .map_err(|_| Refused::bad(format!("{what}: {raw:?} is not a network like 192.168.1.0/24 or fd00::/8")))?;
        state::push(what, &mut out, n)?;
    }
    Ok(out)
}

/// `PUT /api/v1/settings/network` (Owner): any of the five fields; absent fields stay.
pub async fn set_network_settings(mut call: Call) -> Response<Body> {
    reply(async {
        let b: NetworkBody = body::json(&mut call.req).await?;
        let lan = b.lan_networks.as_deref().map(|v| parse_nets("lan_networks", v)).transpose()?;
        let bypass = b.allowed_without_auth.as_deref().map(|v| parse_nets("allowed_without_auth", v)).transpose()?;
        let proxies = b.trusted_proxies.as_deref().map(|v| parse_nets("trusted_proxies", v)).transpose()?;
        let names = b.host_names.as_deref().map(parse_host_names).transpose()?;
        call.ctx
            .state
            .update(|s| {
                let set = &mut s.settings;
                if let Some(v) = lan {
                    set.lan_networks = v;
                }
                if let Some(v) = bypass {
                    set.allowed_without_auth = v;
                }
                if let Some(v) = proxies {
                    set.trusted_proxies = v;
                }
                if let Some(v) = b.treat_wan_ip_as_lan {
                    set.treat_wan_ip_as_lan = v;
                }
                if let Some(v) = names {
                    set.host_names = v;
                }
                Ok::<_, AuthError>(())
            })
            .await?;
        let s = call.ctx.state.snapshot();
        ok(network_json(&call, &s))
    }
    .await)
}

fn dlna_json(s: &State) -> Value {
    let d = &s.settings.dlna;
    json!({
        "enabled": d.enabled,
        "effectively_on": s.dlna_effectively_on(),
        "secured": s.is_secured(),
        "warning_acknowledged": d.reenabled_secured,
        "libraries": d.libraries.as_slice(),
        "warning": switch::WARNING,
    })
}

/// `GET /api/v1/settings/dlna` (Owner).
pub async fn dlna_settings(call: Call) -> Response<Body> {
    let s = call.ctx.state.snapshot();
    reply(ok(dlna_json(&s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DlnaBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    libraries: Option<Vec<LibraryId>>,
    #[serde(default)]
    acknowledge_warning: bool,
}

/// `PUT /api/v1/settings/dlna` (Owner): `{enabled?, libraries?, acknowledge_warning?}`. The switch follows
/// `dlna::switch` (409 with the warning when turning DLNA on while secured without acknowledging it).
pub async fn set_dlna_settings(mut call: Call) -> Response<Body> {
    reply(async {
        let b: DlnaBody = body::json(&mut call.req).await?;
        let ask = Switch { enabled: b.enabled, acknowledge_warning: b.acknowledge_warning };
        call.ctx
            .state
            .update(|s| {
                let libraries = b.libraries.as_deref().map(|l| home::shares(s, l)).transpose()?;
                let secured = s.is_secured();
                ask.apply(&mut s.settings.dlna, secured)?;
                if let Some(l) = libraries {
                    s.settings.dlna.libraries = l;
                }
                Ok::<_, Refused>(())
            })
            .await?;
        let s = call.ctx.state.snapshot();
        tracing::info!(dlna_on = s.dlna_effectively_on(), "DLNA settings changed");
        ok(dlna_json(&s))
    }
    .await)
}
