//! The owner's remote-access settings (`PUT /api/v1/remote` and the Enable / Disable buttons): which fields a
//! change may carry, what each may hold, and how a change is applied to the state. Sans-IO: bytes in, a
//! [`Change`] out; a [`Change`] and a `&mut State` in, the edited state out. The http room reads the body and
//! runs [`apply`] inside `Handle::update`; this file decides.
//!
//! Owns: the field checks (manual port 1-65535 or null, bitrates 0..=[`MAX_KBPS`], a plain-http reflector
//! URL, at most `MAX_STUN` `host:port` STUN servers), the refusal of unknown fields by name (the field list is
//! checked here, one by one, so each refusal says what that field takes) and of `last_mapping` (kept by the
//! remote task), and the rule that remote access is turned on only on a claimed server.
//! Must not touch: sockets or the mapping task (it follows the state), HTTP.

use super::status::Reason;
use crate::state::{self, MAX_STUN, State, StateError};
use serde_json::Value;

/// A settings change, every field optional; validated completely before anything is applied.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct Change {
    /// Turn remote access on or off.
    pub enabled: Option<bool>,
    /// The external port the owner forwarded by hand, or `Some(None)` for automatic mapping.
    pub manual_port: Option<Option<u16>>,
    /// The upload cap, kbit/s (0: none).
    pub upload_kbps: Option<u32>,
    /// The per-stream cap, kbit/s (0: none).
    pub stream_kbps: Option<u32>,
    /// The reflector that checks reachability from outside (empty: none).
    pub reflector_url: Option<String>,
    /// STUN servers, `host:port`.
    pub stun_servers: Option<Vec<String>>,
}

impl Change {
    /// The change of the Enable (`true`) and Disable (`false`) buttons.
    pub fn switch(enabled: bool) -> Change {
        Change { enabled: Some(enabled), ..Change::default() }
    }
}

/// Why a change was refused; the http room maps it (409 / 400).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Remote access cannot be turned on before the server is claimed.
    NotClaimed,
    /// A field is wrong: the sentence says which and what it takes.
    Invalid(String),
}

impl Refusal {
    /// The sentence a person reads.
    pub fn sentence(&self) -> String {
        match self {
            Refusal::NotClaimed => Reason::NotClaimed.sentence(),
            Refusal::Invalid(m) => m.clone(),
        }
    }
}

impl From<StateError> for Refusal {
    fn from(e: StateError) -> Refusal {
        Refusal::Invalid(e.to_string())
    }
}

/// The most a bitrate setting takes: 10 Gbit/s.
pub const MAX_KBPS: u64 = 10_000_000;

/// Parse and validate a PUT body. The error is a sentence the owner can act on; an unknown field is named.
pub fn parse_change(body: &[u8]) -> Result<Change, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("The body must be a JSON object: {e}."))?;
    let obj = v.as_object().ok_or("The body must be a JSON object.")?;
    let mut c = Change::default();
    for (k, v) in obj {
        match k.as_str() {
            "enabled" => c.enabled = Some(v.as_bool().ok_or("enabled must be true or false.")?),
            "manual_port" => c.manual_port = Some(manual_port(v)?),
            "upload_kbps" => c.upload_kbps = Some(kbps(k, v)?),
            "stream_kbps" => c.stream_kbps = Some(kbps(k, v)?),
            "reflector_url" => c.reflector_url = Some(reflector_url(v)?),
            "stun_servers" => c.stun_servers = Some(stun_servers(v)?),
            "last_mapping" => return Err("last_mapping is kept by the server and cannot be set.".into()),
            other => return Err(format!("Unknown setting {other:?}.")),
        }
    }
    Ok(c)
}

fn manual_port(v: &Value) -> Result<Option<u16>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let p = v.as_u64().filter(|p| (1..=65535).contains(p)).ok_or(
        "manual_port must be a whole number from 1 to 65535 (the external port you forwarded), \
         or null for automatic mapping.",
    )?;
    Ok(Some(p as u16))
}

fn kbps(field: &str, v: &Value) -> Result<u32, String> {
    let n = v
        .as_u64()
        .filter(|n| *n <= MAX_KBPS)
        .ok_or_else(|| format!("{field} must be a whole number of kbit/s from 0 (no limit) to {MAX_KBPS}."))?;
    Ok(n as u32)
}

fn reflector_url(v: &Value) -> Result<String, String> {
    let u = v.as_str().ok_or("reflector_url must be a string (empty for none).")?.trim();
    if !u.is_empty() {
        super::fetch::split_url(u).map_err(|_| {
            "reflector_url must look like http://reflector.example:32499 (plain http, no user name).".to_string()
        })?;
    }
    if u.len() > state::MAX_URL {
        return Err(format!("reflector_url is longer than {} characters.", state::MAX_URL));
    }
    Ok(u.to_string())
}

fn stun_servers(v: &Value) -> Result<Vec<String>, String> {
    const SHAPE: &str = "stun_servers must be a list of \"host:port\" strings.";
    let list = v.as_array().ok_or(SHAPE)?;
    if list.len() > MAX_STUN {
        return Err(format!("At most {MAX_STUN} STUN servers."));
    }
    let mut out = Vec::new();
    for s in list {
        let s = s.as_str().ok_or(SHAPE)?.trim();
        if !is_stun_server(s) {
            return Err(format!("{s:?} is not a STUN server: write host:port, like stun.example.net:3478."));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

/// `host:port` with a non-zero port and a host of name or address characters, at most 64 bytes.
fn is_stun_server(s: &str) -> bool {
    s.len() <= 64
        && s.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty()
                && p.parse::<u16>().is_ok_and(|p| p != 0)
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
}

/// Apply a validated change to the state (inside `Handle::update`): refused whole, before any field changes,
/// when it turns remote access on for an unclaimed server.
pub fn apply(c: Change, s: &mut State) -> Result<(), Refusal> {
    if c.enabled == Some(true) && !s.is_claimed() {
        return Err(Refusal::NotClaimed);
    }
    let r = &mut s.settings.remote;
    if let Some(e) = c.enabled {
        r.enabled = e;
    }
    if let Some(p) = c.manual_port {
        r.manual_port = p;
        // A manual forward replaces any router mapping: the stored one (and its external address) is stale.
        if p.is_some() {
            r.last_mapping = None;
        }
    }
    if let Some(n) = c.upload_kbps {
        r.upload_kbps = n;
    }
    if let Some(n) = c.stream_kbps {
        r.stream_kbps = n;
    }
    if let Some(u) = c.reflector_url {
        r.reflector_url = state::bounded("the reflector URL", &u)?;
    }
    if let Some(list) = c.stun_servers {
        r.stun_servers.clear();
        for s in list {
            let b = state::bounded("a STUN server", &s)?;
            state::push("STUN servers", &mut r.stun_servers, b)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_port_is_checked() {
        assert_eq!(parse_change(br#"{"manual_port": 443}"#).unwrap().manual_port, Some(Some(443)));
        assert_eq!(parse_change(br#"{"manual_port": null}"#).unwrap().manual_port, Some(None));
        for bad in [r#"{"manual_port": 0}"#, r#"{"manual_port": 65536}"#, r#"{"manual_port": -1}"#, r#"{"manual_port": "80"}"#, r#"{"manual_port": 8.5}"#] {
            let e = parse_change(bad.as_bytes()).unwrap_err();
            assert!(e.contains("1 to 65535"), "{bad}: {e}");
        }
    }

    #[test]
    fn other_fields_are_checked() {
        assert!(parse_change(br#"{"reflector_url": "ftp://x"}"#).unwrap_err().contains("http://"));
        assert!(parse_change(br#"{"stun_servers": ["a:1","b:2","c:3"]}"#).unwrap_err().contains("At most"));
        assert!(parse_change(br#"{"stun_servers": ["nohostport"]}"#).unwrap_err().contains("host:port"));
        assert!(parse_change(br#"{"upload_kbps": 99999999999}"#).unwrap_err().contains("upload_kbps"));
        assert!(parse_change(br#"{"colour": 1}"#).unwrap_err().contains("Unknown setting"));
        assert!(parse_change(b"[1]").is_err());
        let c = parse_change(br#"{"upload_kbps": 20000, "stream_kbps": 4000, "stun_servers": ["11.0.0.1:3478"]}"#).unwrap();
        assert_eq!((c.upload_kbps, c.stream_kbps), (Some(20000), Some(4000)));
    }

    #[test]
    fn unknown_and_server_kept_fields_are_named() {
        assert!(parse_change(br#"{"colour": 1}"#).unwrap_err().contains("\"colour\""));
        assert!(parse_change(br#"{"last_mapping": null}"#).unwrap_err().contains("kept by the server"));
        let e = parse_change(b"{\"enabled\": ").unwrap_err();
        assert!(e.contains("line 1 column"), "malformed JSON says where: {e}");
    }

    fn claimed() -> State {
        let mut s = State::new([1; 16]);
        let owner = crate::state::Account {
            id: 1,
            role: crate::state::Role::Owner,
            name: "ada".try_into().unwrap(),
            password: Some(crate::state::Secret { salt: [0; 16], hash: [0; 16] }),
            pin: None,
            shares: Default::default(),
            created: 0,
        };
        s.accounts.push(owner).unwrap();
        s
    }

    #[test]
    fn enabling_needs_a_claimed_server_and_changes_nothing_when_refused() {
        let mut s = State::new([1; 16]);
        let change = parse_change(br#"{"enabled": true, "upload_kbps": 5}"#).unwrap();
        assert_eq!(apply(change, &mut s), Err(Refusal::NotClaimed));
        assert_eq!((s.settings.remote.enabled, s.settings.remote.upload_kbps), (false, 0));
        assert!(Refusal::NotClaimed.sentence().contains("Claim"));
        // Turning it off is always allowed.
        assert_eq!(apply(Change::switch(false), &mut s), Ok(()));
    }

    #[test]
    fn a_change_sets_exactly_its_fields() {
        let mut s = claimed();
        let before = s.settings.remote.clone();
        let change = parse_change(br#"{"enabled": true, "manual_port": 443, "stun_servers": ["stun.example.net:3478"]}"#);
        apply(change.unwrap(), &mut s).unwrap();
        let r = &s.settings.remote;
        assert!(r.enabled && r.manual_port == Some(443));
        assert_eq!(r.stun_servers.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["stun.example.net:3478"]);
        assert_eq!((r.upload_kbps, r.stream_kbps, &r.reflector_url), (before.upload_kbps, before.stream_kbps, &before.reflector_url));
        apply(Change::switch(false), &mut s).unwrap();
        assert!(!s.settings.remote.enabled && s.settings.remote.manual_port == Some(443));
    }
}
