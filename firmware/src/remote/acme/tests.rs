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
    assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
    assert_eq!(time(0x17, b"701301000000Z"), None);
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
