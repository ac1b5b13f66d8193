//! ACME certificates (issue 21 deliverable 4), against the built binary: the TLS settings take the ACME
//! choice and refuse bad input by name with nothing stored changed; the HTTP-01 path answers only a pending
//! order's exact token, before the Host door (the CA names the public address or the owner's domain). The
//! order itself runs against Pebble in the netlab (tests/netlab/run case i); a CA answering garbage, nothing or
//! too much is `remote::acme::tests`.

mod common;

use common::Server;
use serde_json::Value;

fn claimed() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path());
    let token = srv.claim("Ada", "correct horse battery");
    (dir, srv, token)
}

fn acme(v: &Value) -> Value {
    let mut a = v["acme"].clone();
    a.as_object_mut().unwrap().remove("status");
    a
}

#[test]
fn acme_settings_refuse_bad_input_and_change_nothing() {
    let (_dir, srv, token) = claimed();
    let auth = [("X-Plex-Token", token.as_str())];
    // The self-signed certificate is made just after the claim.
    let before = common::wait_for("the self-signed certificate", 10, || {
        let (st, v) = srv.json("GET", "/api/v1/settings/tls", &auth, None);
        (st == 200 && !v["certificate"].is_null()).then_some(v)
    });
    assert_eq!(
        acme(&before),
        serde_json::json!({"enabled": false, "domain": null, "directory_url": "https://acme-v02.api.letsencrypt.org/directory"})
    );
    assert_eq!(before["certificate"]["source"], "self_signed", "{before}");
    assert_eq!(before["certificate"]["issuer"], "self-signed by Hearth", "{before}");
    assert_eq!(before["acme"]["status"]["stage"], "off", "{before}");
    for (body, names) in [
        (r#"{"acme":{"enabled":true,"domain":"not a name!"}}"#, "acme.domain"),
        (r#"{"acme":{"enabled":true,"directory_url":"http://ca.example/dir"}}"#, "acme.directory_url"),
        (r#"{"acme":{"enabled":true,"directory_url":"https://"}}"#, "acme.directory_url"),
        (r#"{"acme":{"enable":true}}"#, "enable"),
    ] {
        let (st, v) = srv.json("PUT", "/api/v1/settings/tls", &auth, Some(body));
        assert_eq!(st, 400, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(names), "{body}: the message names {names}: {v}");
        let (_, after) = srv.json("GET", "/api/v1/settings/tls", &auth, None);
        assert_eq!(acme(&after), acme(&before), "{body}: a refusal changes nothing stored");
        assert_eq!(after["certificate"], before["certificate"], "{body}");
    }
    // A good change is kept; with remote access off the task waits and says why.
    let body = r#"{"acme":{"enabled":true,"domain":"Home.Example.NET.","directory_url":"https://ca.example/dir"}}"#;
    let (st, v) = srv.json("PUT", "/api/v1/settings/tls", &auth, Some(body));
    assert_eq!(st, 200, "{v}");
    assert_eq!(acme(&v), serde_json::json!({"enabled": true, "domain": "home.example.net", "directory_url": "https://ca.example/dir"}));
    let v = common::wait_for("the ACME task to answer", 10, || {
        let (_, v) = srv.json("GET", "/api/v1/settings/tls", &auth, None);
        (v["acme"]["status"]["stage"] != "off").then_some(v)
    });
    assert_eq!(v["certificate"]["source"], "self_signed", "{v}");
    let (st, v) = srv.json("PUT", "/api/v1/settings/tls", &auth, Some(r#"{"acme":{"domain":null}}"#));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["acme"]["domain"], Value::Null, "{v}");
}

#[test]
fn http_01_answers_only_a_pending_token_whatever_the_host() {
    let (_dir, srv, _token) = claimed();
    for host in ["127.0.0.1", "11.0.0.2", "home.example.net"] {
        let (st, _, body) = srv.call("GET", "/.well-known/acme-challenge/some-token", &[("Host", host)], None);
        assert_eq!(st, 404, "{host}: {body}");
        assert!(body.contains("no pending ACME check"), "{host}: {body}");
    }
    // Nothing else under the prefix, and nothing but GET/HEAD there.
    let (st, _, body) = srv.call("GET", "/.well-known/acme-challenge/", &[], None);
    assert!(st == 404 && body.contains("no pending ACME check"), "{st} {body}");
    let (st, _, _) = srv.call("GET", "/.well-known/other", &[], None);
    assert_eq!(st, 404);
}
