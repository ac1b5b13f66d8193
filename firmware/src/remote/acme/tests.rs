use super::*;

const DAY: i64 = 86_400;

fn facts() -> Facts {
    Facts { wanted: true, reachable: true, served: Served::SelfSigned, identifier_changed: false, failures: 0, failed_at: 0 }
}

#[test]
fn orders_at_once_when_nothing_of_ours_is_served() {
    assert_eq!(plan(&facts()), Next::OrderAt(i64::MIN));
}

#[test]
fn renews_when_a_third_of_the_validity_is_left() {
    // Let's Encrypt's short-lived profile: 160 hours; renew with 53 h 20 min left.
    let f = Facts { served: Served::Acme { not_before: 0, not_after: 160 * 3600 }, ..facts() };
    assert_eq!(plan(&f), Next::OrderAt(160 * 3600 - 160 * 3600 / 3));
    // 90 days: renew 30 days before the end.
    let f = Facts { served: Served::Acme { not_before: 10 * DAY, not_after: 100 * DAY }, ..facts() };
    assert_eq!(plan(&f), Next::OrderAt(70 * DAY));
    // A new public address needs a new certificate now.
    let f = Facts { identifier_changed: true, ..f };
    assert_eq!(plan(&f), Next::OrderAt(i64::MIN));
}

#[test]
fn waits_for_the_owner_and_for_remote_access() {
    assert!(matches!(plan(&Facts { wanted: false, ..facts() }), Next::Idle(Stage::Off, _)));
    assert!(matches!(plan(&Facts { reachable: false, ..facts() }), Next::Idle(Stage::Waiting, s) if s.contains("port 80")));
    assert!(matches!(plan(&Facts { served: Served::Owners, ..facts() }), Next::Idle(Stage::Waiting, s) if s.contains("your own certificate")));
}

#[test]
fn failures_back_off_doubling_up_to_six_hours() {
    assert_eq!(backoff(1), BACKOFF_FIRST);
    assert_eq!(backoff(2), BACKOFF_FIRST * 2);
    assert_eq!(backoff(5), BACKOFF_FIRST * 16);
    assert_eq!(backoff(40), BACKOFF_MAX);
    let f = Facts { failures: 3, failed_at: 1_000, ..facts() };
    assert_eq!(plan(&f), Next::OrderAt(1_000 + 240));
    // Backoff never brings a renewal forward.
    let f = Facts { served: Served::Acme { not_before: 0, not_after: 90 * DAY }, ..f };
    assert_eq!(plan(&f), Next::OrderAt(60 * DAY));
}

#[test]
fn ca_names_are_the_directory_host() {
    assert_eq!(ca_name("https://acme-v02.api.letsencrypt.org/directory"), "acme-v02.api.letsencrypt.org");
    assert_eq!(ca_name("https://11.0.0.1:14000/dir"), "11.0.0.1:14000");
}

#[test]
fn validity_reads_rcgen_certificates_and_refuses_damage() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["nas.example.org".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2026, 12, 1);
    p.not_after = rcgen::date_time_ymd(2051, 1, 1); // GeneralizedTime (2050 and later, RFC 5280 §4.1.2.5)
    let cert = p.self_signed(&key).unwrap();
    let (nb, na) = validity(cert.der()).unwrap();
    assert_eq!(nb, 1_796_083_200);
    assert_eq!(na, 2_556_144_000);
    for cut in [1, 10, 100, cert.der().len() - 1] {
        assert_eq!(validity(&cert.der()[..cut]), None, "cut at {cut}");
    }
    assert_eq!(crate::wire::certificate::der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
    assert_eq!(crate::wire::certificate::der_time(0x17, b"701301000000Z"), None);
}

#[test]
fn challenge_answers_only_the_exact_pending_token() {
    let c = Control::default();
    assert_eq!(c.answer("tok"), None);
    c.offer("tok".into(), "tok.thumb".into());
    assert_eq!(c.answer("tok").as_deref(), Some("tok.thumb"));
    assert_eq!(c.answer("to"), None);
    assert_eq!(c.answer("tok/"), None);
    assert_eq!(c.answer(""), None);
    c.withdraw_all();
    assert_eq!(c.answer("tok"), None);
}

/// A local HTTPS "CA" on 127.0.0.1 that answers every connection with `answer` (or nothing), and a transport
/// that trusts it. Bad input (issue 21): garbage, silence and an endless body are each bounded and reported.
async fn fake_ca(answer: &'static [u8], hang: bool) -> (String, transport::Transport, tempfile::TempDir) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, cert.pem()).unwrap();
    let der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/dir", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                if hang {
                    std::future::pending::<()>().await;
                }
                let _ = tls.write_all(answer).await;
                if answer.ends_with(b"chunked\r\n\r\n") {
                    // An endless chunked body: 1 MiB and more in 64 KiB chunks.
                    let chunk = [b'x'; 65_536];
                    for _ in 0..32 {
                        if tls.write_all(b"10000\r\n").await.is_err() || tls.write_all(&chunk).await.is_err() || tls.write_all(b"\r\n").await.is_err() {
                            return;
                        }
                    }
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    let t = transport::Transport::new(Some(&root)).unwrap();
    (url, t, dir)
}

async fn make_account(url: String, t: transport::Transport) -> String {
    let new = instant_acme::NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
    match instant_acme::Account::builder_with_http(Box::new(t)).create(&new, url, None).await {
        Ok(_) => panic!("an account from a CA that answers nonsense"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_ca_answering_garbage_is_reported() {
    let (url, t, _dir) = fake_ca(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", false).await;
    let e = make_account(url, t).await;
    assert!(e.contains("not HTTP"), "{e}");
    let (url, t, _dir) = fake_ca(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"nonce\":", false).await;
    let e = make_account(url, t).await;
    assert!(e.to_lowercase().contains("json") || e.contains("EOF"), "{e}");
}

#[tokio::test]
async fn a_ca_answering_too_much_is_cut_at_the_cap() {
    let (url, t, _dir) = fake_ca(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).await;
    let e = make_account(url, t).await;
    assert!(e.contains(&format!("more than {} bytes", transport::MAX_BODY)), "{e}");
}

#[tokio::test(start_paused = true)]
async fn a_ca_that_never_answers_times_out() {
    let (url, t, _dir) = fake_ca(b"", true).await;
    let e = make_account(url, t).await;
    assert!(e.contains("did not answer within 10 s"), "{e}");
}

#[test]
fn a_url_that_is_not_https_is_refused_before_connecting() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let e = rt.block_on(make_account("http://127.0.0.1:9/dir".into(), transport::Transport::new(None).unwrap()));
    assert!(e.contains("is not https://"), "{e}");
}
