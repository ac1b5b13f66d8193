use super::*;

fn s<const N: usize>(fill: char) -> String<N> {
    let mut out = String::new();
    while out.push(fill).is_ok() {}
    out
}

fn secret() -> Secret {
    Secret { salt: [0xAB; 16], hash: [0xCD; 16] }
}

/// Every collection full, every string at its bound, every number at its widest varint.
pub(crate) fn full_state() -> State {
    let mut st = State::new([0xEE; 16]);
    st.next_id = u16::MAX;
    for i in 0..MAX_LIBRARIES as u8 {
        let mut name: Name = s('L');
        name.truncate(MAX_NAME - 3);
        let _ = core::fmt::Write::write_fmt(&mut name, format_args!("{i:03}"));
        st.libraries.push(Library { id: u8::MAX - i, kind: LibraryKind::OtherVideos, name }).unwrap();
    }
    for i in 0..MAX_FOLDERS {
        let mut path: String<MAX_PATH> = String::new();
        path.push('/').unwrap();
        while path.push('p').is_ok() {}
        st.folders.push(Folder { library: st.libraries[i % MAX_LIBRARIES].id, path }).unwrap();
    }
    let all_libs: Vec<LibraryId, MAX_LIBRARIES> = st.libraries.iter().map(|l| l.id).collect();
    for i in 0..MAX_ACCOUNTS {
        let role = match i {
            0 => Role::Owner,
            i if i <= MAX_MEMBERS => Role::Member,
            _ => Role::Friend,
        };
        let mut name: Name = s('n');
        name.truncate(MAX_NAME - 3);
        let _ = core::fmt::Write::write_fmt(&mut name, format_args!("{i:03}"));
        st.accounts
            .push(Account {
                id: u16::MAX - i as u16,
                role,
                name,
                password: Some(secret()),
                pin: Some(secret()),
                shares: all_libs.clone(),
                created: u32::MAX,
            })
            .unwrap();
    }
    for i in 0..MAX_DEVICES {
        st.devices
            .push(Device {
                id: u16::MAX - i as u16,
                account: st.accounts[i % MAX_ACCOUNTS].id,
                token: TokenHash([0x11; 16]),
                client: [0x33; 8],
                name: s('d'),
                product: s('P'),
                created: u32::MAX,
                last_seen: u32::MAX,
            })
            .unwrap();
    }
    for i in 0..MAX_API_TOKENS {
        st.api_tokens
            .push(ApiToken {
                id: u16::MAX - i as u16,
                name: s('t'),
                scope: Scope::RefreshLibrary,
                token: TokenHash([0x22; 16]),
                created: u32::MAX,
            })
            .unwrap();
    }
    let v6 = Net { addr: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(), prefix: 128 };
    let set = &mut st.settings;
    set.friendly_name = s('f');
    while set.lan_networks.push(v6).is_ok() {}
    while set.allowed_without_auth.push(v6).is_ok() {}
    while set.trusted_proxies.push(v6).is_ok() {}
    set.treat_wan_ip_as_lan = true;
    set.dlna = Dlna { enabled: true, reenabled_secured: true, libraries: all_libs };
    set.remote = Remote {
        enabled: true,
        manual_port: Some(u16::MAX),
        upload_kbps: u32::MAX,
        stream_kbps: u32::MAX,
        reflector_url: s('u'),
        stun_servers: core::iter::repeat_with(|| s('s')).take(MAX_STUN).collect(),
        last_mapping: Some(Mapping {
            method: MappingMethod::UpnpIgd,
            gateway: v6.addr,
            external_addr: Some(v6.addr),
            external_port: u16::MAX,
            internal_port: u16::MAX,
            lease_secs: u32::MAX,
            obtained: u32::MAX,
        }),
    };
    let mut chain = Vec::new();
    while chain.push(0x30).is_ok() {}
    let mut key = Vec::new();
    while key.push(0x30).is_ok() {}
    st.tls = Some(Tls { chain, key, custom: true });
    for _ in 0..MAX_RESETS {
        st.record_reset(ResetReason::Watchdog, u32::MAX);
    }
    for i in 0..MAX_HOST_NAMES {
        let name = format!("{i}{}.{}", "h".repeat(62), "h".repeat(63));
        st.settings.host_names.push(host_name(&name).unwrap()).unwrap();
    }
    let name = format!("{}.{}", "a".repeat(63), "b".repeat(63));
    let https = |n: usize| format!("https://{}", "d".repeat(n - 8));
    st.settings.acme = AcmeSettings { enabled: true, domain: Some(host_name(&name).unwrap()), directory_url: bounded("", &https(MAX_URL)).unwrap() };
    let mut account_key = Vec::new();
    while account_key.push(0x30).is_ok() {}
    st.acme = Acme {
        account: Some(AcmeAccount {
            directory_url: bounded("", &https(MAX_URL)).unwrap(),
            url: bounded("", &https(MAX_ACCOUNT_URL)).unwrap(),
            key: account_key,
        }),
        issued: Some([0xFF; 32]),
    };
    st.safe_mode = SafeMode { active: true, since: u32::MAX };
    st.run = Run::Crashed;
    st
}

#[test]
fn full_state_fits_in_a_record() {
    let empty = encode(&State::new([0; 16])).unwrap();
    let full = full_state();
    full.validate().unwrap();
    let bytes = postcard::to_allocvec(&full).unwrap();
    println!("state record: empty {} bytes, every bound filled {} bytes (limit {MAX_RECORD})", empty.len(), bytes.len());
    assert!(bytes.len() <= MAX_RECORD, "full state is {} bytes, over {MAX_RECORD}", bytes.len());
    assert_eq!(decode(SCHEMA_VERSION, &bytes).unwrap(), full);
}

#[test]
fn bounds_refuse_with_a_named_error() {
    let mut st = full_state();
    let d = st.devices[0].clone();
    let err = push("devices", &mut st.devices, d).unwrap_err();
    assert_eq!(err.to_string(), "too many devices (at most 64)");
    let err = bounded::<MAX_NAME>("a name", &"x".repeat(33)).unwrap_err();
    assert_eq!(err.to_string(), "a name is too long (at most 32 bytes)");
}

#[test]
fn validation_refuses_broken_invariants() {
    let mut st = full_state();
    st.accounts[3].name = st.accounts[2].name.clone();
    assert!(matches!(st.validate(), Err(StateError::Duplicate(_))));

    let mut st = full_state();
    st.accounts[1].role = Role::Owner;
    assert_eq!(st.validate(), Err(StateError::Invalid("there can be only one owner")));

    let mut st = full_state();
    st.accounts[20].shares.push(7).unwrap_or(());
    st.accounts[20].shares[0] = 7;
    assert_eq!(st.validate(), Err(StateError::Missing { what: "library", id: 7 }));

    let mut st = State::new([0; 16]);
    st.settings.remote.enabled = true;
    assert!(st.validate().is_err(), "remote access before the claim");
}

#[test]
fn secured_and_dlna_follow_the_seed_rules() {
    let mut st = full_state();
    st.safe_mode.active = false;
    assert!(st.is_secured());
    st.settings.dlna.reenabled_secured = false;
    assert!(!st.dlna_effectively_on(), "secured without re-enable: DLNA off");
    st.settings.dlna.reenabled_secured = true;
    assert!(st.dlna_effectively_on());

    let mut st = State::new([0; 16]);
    st.accounts
        .push(Account {
            id: 1,
            role: Role::Owner,
            name: bounded("name", "owner").unwrap(),
            password: Some(secret()),
            pin: None,
            shares: Vec::new(),
            created: 0,
        })
        .unwrap();
    assert!(!st.is_secured(), "an owner alone with no PIN is not secured");
    assert!(st.dlna_effectively_on());
    st.accounts[0].pin = Some(secret());
    assert!(st.is_secured(), "any PIN secures the server");
    assert!(!st.dlna_effectively_on());
}

/// The full schema 3 record written by main at 3b368cf (see `v3.rs`).
const V3_RECORD: &[u8] = include_bytes!("fixtures/v3.rec");

fn v3_fixture() -> v3::State {
    postcard::from_bytes(V3_RECORD).unwrap()
}

#[test]
fn migrates_version_1_records() {
    let f = v3_fixture();
    let old = v1::State {
        machine_id: f.machine_id,
        accounts: f.accounts.clone(),
        devices: f.devices.clone(),
        api_tokens: f.api_tokens.clone(),
        settings: v1::Settings {
            friendly_name: f.settings.friendly_name.clone(),
            lan_networks: f.settings.lan_networks.clone(),
            allowed_without_auth: f.settings.allowed_without_auth.clone(),
            treat_wan_ip_as_lan: true,
            trusted_proxies: f.settings.trusted_proxies.clone(),
            secure_connections: v3::SecureConnections::Required,
            dlna: f.settings.dlna.clone(),
            remote: v1::Remote {
                enabled: true,
                manual_port: Some(40000),
                upload_mbps: 20,
                reflector_url: f.settings.remote.reflector_url.clone(),
                stun_servers: f.settings.remote.stun_servers.clone(),
                last_mapping: None,
            },
        },
        tls: f.tls.clone(),
        libraries: f.libraries.clone(),
        folders: f.folders.clone(),
        resets: f.resets.clone(),
        next_id: 77,
    };
    let bytes = postcard::to_allocvec(&old).unwrap();
    // Version 1 bytes do not decode as the current version by accident...
    assert!(!decode(SCHEMA_VERSION, &bytes).map(|s| s.settings.remote.upload_kbps == 20_000).unwrap_or(false));
    // ...and migrate with their meaning kept.
    let new = decode(1, &bytes).unwrap();
    assert_eq!(new.settings.remote.upload_kbps, 20_000);
    assert_eq!(new.settings.remote.stream_kbps, 0);
    assert_eq!(new.settings.remote.manual_port, Some(40000));
    assert_eq!(new.settings.secure_connections, SecureConnections::Required);
    assert_eq!(new.accounts, decode(3, V3_RECORD).unwrap().accounts);
    assert_eq!(new.next_id, 77);
    assert!(!new.safe_mode.active);
    assert!(new.settings.host_names.is_empty());
    new.validate().unwrap();
}

#[test]
fn refuses_records_from_a_newer_schema() {
    let err = decode(SCHEMA_VERSION + 1, &[]).unwrap_err();
    assert!(err.to_string().contains("newer Hearth"), "{err}");
}

#[test]
fn nets_parse_and_match() {
    let n: Net = "192.168.1.0/24".parse().unwrap();
    assert!(n.contains("192.168.1.77".parse().unwrap()));
    assert!(!n.contains("192.168.2.1".parse().unwrap()));
    assert!(n.contains("::ffff:192.168.1.5".parse().unwrap()));
    let h: Net = "10.0.0.1".parse().unwrap();
    assert_eq!(h.prefix, 32);
    assert!("10.0.0.0/33".parse::<Net>().is_err());
    assert!("nonsense".parse::<Net>().is_err());
    let v6: Net = "fd00::/8".parse().unwrap();
    assert!(v6.contains("fd12::1".parse().unwrap()));
    assert_eq!(v6.to_string(), "fd00::/8");
}

#[test]
fn migrates_version_2_records_with_the_run_marker_stopped() {
    let f = v3_fixture();
    let old = v2::State {
        machine_id: f.machine_id,
        accounts: f.accounts.clone(),
        devices: f.devices.clone(),
        api_tokens: f.api_tokens.clone(),
        settings: f.settings.clone(),
        tls: f.tls.clone(),
        libraries: f.libraries.clone(),
        folders: f.folders.clone(),
        resets: f.resets.clone(),
        safe_mode: f.safe_mode.clone(),
        next_id: f.next_id,
    };
    let bytes = postcard::to_allocvec(&old).unwrap();
    assert!(decode(3, &bytes).is_err(), "version 2 bytes are not read as version 3");
    let new = decode(2, &bytes).unwrap();
    let v3 = decode(3, V3_RECORD).unwrap();
    assert_eq!(v3.run, Run::Running);
    assert_eq!(new, State { run: Run::Stopped, ..v3 }, "everything kept; the marker says stopped");
}

#[test]
fn a_real_version_3_record_migrates_with_everything_kept() {
    let st = decode(3, V3_RECORD).unwrap();
    st.validate().unwrap();
    assert_eq!(&st.machine_id, b"hearth-fixture03");
    let names: std::vec::Vec<(&str, Role)> = st.accounts.iter().map(|a| (a.name.as_str(), a.role)).collect();
    assert_eq!(names, [("ada", Role::Owner), ("kid", Role::Member), ("bob", Role::Friend)]);
    assert_eq!(st.accounts[1].pin, Some(Secret { salt: [3; 16], hash: [4; 16] }));
    assert_eq!(st.accounts[2].shares.as_slice(), [1, 2]);
    assert_eq!(st.devices[0].name.as_str(), "Living room TV");
    assert_eq!(st.devices[0].last_seen, 1_764_000_400);
    assert_eq!((st.api_tokens[0].name.as_str(), st.api_tokens[0].scope), ("sonarr", Scope::RefreshLibrary));
    let libs: std::vec::Vec<&str> = st.libraries.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(libs, ["Films", "Música"]);
    assert_eq!(st.folders[1].path.as_str(), "/srv/media/music");
    let set = &st.settings;
    assert_eq!(set.friendly_name.as_str(), "Attic box");
    assert_eq!(set.lan_networks.as_slice(), ["192.168.1.0/24".parse().unwrap(), "fd00::/8".parse().unwrap()]);
    assert_eq!(set.allowed_without_auth[0].to_string(), "192.168.1.50/32");
    assert!(set.treat_wan_ip_as_lan);
    assert_eq!(set.secure_connections, SecureConnections::Required);
    assert_eq!(set.dlna.libraries.as_slice(), [1]);
    assert_eq!((set.remote.manual_port, set.remote.upload_kbps, set.remote.stream_kbps), (Some(40000), 20_000, 4_000));
    assert_eq!(set.remote.stun_servers[0].as_str(), "stun.example:3478");
    let m = set.remote.last_mapping.as_ref().unwrap();
    assert_eq!((m.method, m.external_addr, m.lease_secs), (MappingMethod::Pcp, Some("198.51.100.4".parse().unwrap()), 7200));
    assert!(set.host_names.is_empty(), "version 3 had no added host names");
    assert!(st.tls.as_ref().unwrap().custom);
    let resets: std::vec::Vec<ResetReason> = st.resets.iter().map(|r| r.reason).collect();
    assert_eq!(resets, [ResetReason::PowerLoss, ResetReason::Clean]);
    assert_eq!((st.next_id, st.run), (8, Run::Running));
    // Written again, it is a current record that reads back the same.
    assert_eq!(decode(SCHEMA_VERSION, &encode(&st).unwrap()).unwrap(), st);
}

#[test]
fn host_names_are_dns_names_or_addresses_normalised() {
    assert_eq!(host_name("Home.Example.NET.").unwrap().as_str(), "home.example.net");
    assert_eq!(host_name(" nas ").unwrap().as_str(), "nas");
    assert_eq!(host_name("xn--bcher-kva.example").unwrap().as_str(), "xn--bcher-kva.example");
    assert_eq!(host_name("[2001:DB8::1]").unwrap().as_str(), "2001:db8::1");
    assert_eq!(host_name("203.0.113.5").unwrap().as_str(), "203.0.113.5");
    for bad in ["", ".", "a..b", "-a.example", "a-.example", "home.example.net:8080", "under_score.example",
        "http://x.example", "a b", "1.2.3", &format!("{}.example", "a".repeat(64)), "ä.example"] {
        assert!(host_name(bad).is_err(), "{bad:?} was accepted");
    }
    let mut st = State::new([0; 16]);
    st.settings.host_names.push(bounded("n", "Not Valid").unwrap()).unwrap();
    assert!(st.validate().is_err(), "a stored name must be a valid, normalised name");
    st.settings.host_names[0] = host_name("a.example").unwrap();
    st.settings.host_names.push(host_name("a.example").unwrap()).unwrap();
    assert!(matches!(st.validate(), Err(StateError::Duplicate(_))));
}

/// A full schema 1 record written by the version 1 code (`v1::State` of 9012a71, see `fixtures/README.md`).
const V1_RECORD: &[u8] = include_bytes!("fixtures/v1.rec");
/// A full schema 2 record written by `encode` of 9012a71 (schema 2, see `fixtures/README.md`).
const V2_RECORD: &[u8] = include_bytes!("fixtures/v2.rec");

/// An account as the fixture tests compare it: id, name, role, salts of password and PIN, shares, created.
type AccountRow<'a> = (u16, &'a str, Role, Option<u8>, Option<u8>, &'a [u8], u32);
/// A device as the fixture tests compare it: id, account, token hash, client, name, product, created, last seen.
type DeviceRow<'a> = (u16, u16, [u8; 16], &'a [u8; 8], &'a str, &'a str, u32, u32);

/// What the version 1 and 2 fixtures hold (they differ only in the machine id, the caps and safe mode).
fn assert_old_fixture(st: &State, machine: &[u8; 16]) {
    st.validate().unwrap();
    assert_eq!(&st.machine_id, machine);
    let people: std::vec::Vec<AccountRow> = st
        .accounts
        .iter()
        .map(|a| {
            let (pw, pin) = (a.password.as_ref().map(|s| s.salt[0]), a.pin.as_ref().map(|s| s.salt[0]));
            (a.id, a.name.as_str(), a.role, pw, pin, a.shares.as_slice(), a.created)
        })
        .collect();
    assert_eq!(people, [
        (1, "ada", Role::Owner, Some(1), None, &[][..], 1_700_000_000),
        (2, "kid", Role::Member, None, Some(3), &[2][..], 1_700_000_100),
        (3, "gran", Role::Member, None, Some(5), &[1, 3][..], 1_700_000_150),
        (4, "bob", Role::Friend, Some(7), None, &[1, 2][..], 1_700_000_200),
        (5, "cy", Role::Friend, Some(9), None, &[3][..], 1_700_000_250),
    ]);
    assert_eq!(st.accounts[0].password, Some(Secret { salt: [1; 16], hash: [2; 16] }));
    assert_eq!(st.accounts[2].pin, Some(Secret { salt: [5; 16], hash: [6; 16] }));
    let devices: std::vec::Vec<DeviceRow> = st
        .devices
        .iter()
        .map(|d| (d.id, d.account, d.token.0, &d.client, d.name.as_str(), d.product.as_str(), d.created, d.last_seen))
        .collect();
    assert_eq!(devices, [
        (6, 1, [11; 16], b"tv-00001", "Living room TV", "Plex for LG", 1_700_000_300, 1_700_000_400),
        (7, 4, [12; 16], b"ph-00002", "Bob's phone", "Plex for iOS", 1_700_000_500, 1_700_000_600),
    ]);
    let tokens: std::vec::Vec<(u16, &str, Scope, [u8; 16], u32)> =
        st.api_tokens.iter().map(|t| (t.id, t.name.as_str(), t.scope, t.token.0, t.created)).collect();
    assert_eq!(tokens, [
        (8, "sonarr", Scope::RefreshLibrary, [13; 16], 1_700_000_700),
        (9, "backup", Scope::Admin, [14; 16], 1_700_000_800),
    ]);
    let libs: std::vec::Vec<(u8, LibraryKind, &str)> = st.libraries.iter().map(|l| (l.id, l.kind, l.name.as_str())).collect();
    assert_eq!(libs, [(1, LibraryKind::Movies, "Films"), (2, LibraryKind::Shows, "Séries"), (3, LibraryKind::Music, "Música")]);
    let folders: std::vec::Vec<(u8, &str)> = st.folders.iter().map(|f| (f.library, f.path.as_str())).collect();
    assert_eq!(folders, [(1, "/srv/media/films"), (2, "/srv/media/shows"), (3, "/srv/media/music")]);
    let set = &st.settings;
    assert_eq!(set.friendly_name.as_str(), "Attic box");
    assert_eq!(set.lan_networks.as_slice(), ["192.168.1.0/24".parse().unwrap(), "fd00::/8".parse().unwrap()]);
    assert_eq!(set.allowed_without_auth.as_slice(), ["192.168.1.50/32".parse().unwrap()]);
    assert!(set.treat_wan_ip_as_lan);
    assert_eq!(set.trusted_proxies.as_slice(), ["10.0.0.2/32".parse().unwrap()]);
    assert_eq!(set.secure_connections, SecureConnections::Required);
    assert_eq!(set.dlna, Dlna { enabled: false, reenabled_secured: true, libraries: [1, 3].into_iter().collect() });
    let r = &set.remote;
    assert_eq!((r.enabled, r.manual_port, r.upload_kbps), (true, Some(40000), 20_000), "20 Mbit/s is 20,000 kbit/s");
    assert_eq!((r.reflector_url.as_str(), r.stun_servers.len(), r.stun_servers[0].as_str()), ("https://reflect.example/ip", 1, "stun.example:3478"));
    assert_eq!(r.last_mapping, Some(Mapping {
        method: MappingMethod::Pcp,
        gateway: "192.168.1.1".parse().unwrap(),
        external_addr: Some("198.51.100.4".parse().unwrap()),
        external_port: 40000,
        internal_port: 32400,
        lease_secs: 7200,
        obtained: 1_700_000_900,
    }));
    assert!(set.host_names.is_empty(), "versions 1 and 2 had no added host names");
    let tls = st.tls.as_ref().unwrap();
    assert_eq!((tls.chain.as_slice(), tls.key.as_slice(), tls.custom), (&[0x30, 0x82, 0x01, 0x0a, 0xc4][..], &[0x30, 0x81, 0x87, 0x02][..], true));
    assert_eq!(st.resets.as_slice(), [
        Reset { reason: ResetReason::PowerLoss, at: 1_700_001_000 },
        Reset { reason: ResetReason::Watchdog, at: 1_700_002_000 },
    ]);
    assert_eq!((st.next_id, st.run), (10, Run::Stopped), "the run marker of an old record says stopped");
}

#[test]
fn a_real_version_1_record_migrates_with_everything_kept() {
    assert!(decode(2, V1_RECORD).is_err(), "version 1 bytes are not read as version 2");
    let st = decode(1, V1_RECORD).unwrap();
    assert_old_fixture(&st, b"hearth-fixture01");
    assert_eq!(st.settings.remote.stream_kbps, 0, "version 1 had no per-stream cap");
    assert_eq!(st.safe_mode, SafeMode { active: false, since: 0 }, "version 1 had no safe mode");
    assert_eq!(decode(SCHEMA_VERSION, &encode(&st).unwrap()).unwrap(), st, "written again, it reads back the same");
}

#[test]
fn a_real_version_2_record_migrates_with_everything_kept() {
    assert!(decode(3, V2_RECORD).is_err(), "version 2 bytes are not read as version 3");
    let st = decode(2, V2_RECORD).unwrap();
    assert_old_fixture(&st, b"hearth-fixture02");
    assert_eq!(st.settings.remote.stream_kbps, 4_000);
    assert_eq!(st.safe_mode, SafeMode { active: true, since: 1_700_002_000 }, "safe mode survives");
    assert_eq!(decode(SCHEMA_VERSION, &encode(&st).unwrap()).unwrap(), st, "written again, it reads back the same");
}

/// Every schema version this build reads has a real record in `fixtures/`, and it decodes and validates.
#[test]
fn every_schema_version_has_a_fixture_that_decodes() {
    for version in 1..=SCHEMA_VERSION {
        let path = format!("{}/src/state/fixtures/v{version}.rec", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}: every schema version needs a fixture"));
        let st = decode(version, &bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        st.validate().unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// One of everything today's schema holds, built field by field (a new field does not compile here until it is
/// given a value): the state `fixtures/v{SCHEMA_VERSION}.rec` was encoded from.
fn todays_fixture() -> State {
    let net = |s: &str| s.parse::<Net>().unwrap();
    let acct = |id, role, name: &str, password, pin, shares: &[u8]| Account {
        id, role, name: bounded("", name).unwrap(), password, pin, shares: shares.iter().copied().collect(), created: 1_800_000_000 + u32::from(id),
    };
    let secret = |a: u8| Some(Secret { salt: [a; 16], hash: [a + 1; 16] });
    State {
        machine_id: *b"hearth-fixture05",
        accounts: [
            acct(1, Role::Owner, "ada", secret(1), secret(3), &[]),
            acct(2, Role::Member, "kid", None, secret(5), &[2]),
            acct(3, Role::Friend, "bob", secret(7), None, &[1, 2]),
        ]
        .into_iter()
        .collect(),
        devices: [Device {
            id: 4, account: 3, token: TokenHash([9; 16]), client: *b"tv-00004", name: bounded("", "TV").unwrap(),
            product: bounded("", "Plex for LG").unwrap(), created: 1_800_000_100, last_seen: 1_800_000_200,
        }]
        .into_iter()
        .collect(),
        api_tokens: [ApiToken { id: 5, name: bounded("", "sonarr").unwrap(), scope: Scope::ReadLibrary, token: TokenHash([10; 16]), created: 1_800_000_300 }]
            .into_iter()
            .collect(),
        settings: Settings {
            friendly_name: bounded("", "Attic box").unwrap(),
            lan_networks: [net("192.168.1.0/24"), net("fd00::/8")].into_iter().collect(),
            allowed_without_auth: [net("192.168.1.50")].into_iter().collect(),
            treat_wan_ip_as_lan: true,
            trusted_proxies: [net("10.0.0.2")].into_iter().collect(),
            secure_connections: SecureConnections::Disabled,
            dlna: Dlna { enabled: false, reenabled_secured: true, libraries: [1].into_iter().collect() },
            remote: Remote {
                enabled: true,
                manual_port: Some(40000),
                upload_kbps: 20_000,
                stream_kbps: 4_000,
                reflector_url: bounded("", "https://reflect.example/ip").unwrap(),
                stun_servers: [bounded("", "stun.example:3478").unwrap()].into_iter().collect(),
                last_mapping: Some(Mapping {
                    method: MappingMethod::NatPmp,
                    gateway: "192.168.1.1".parse().unwrap(),
                    external_addr: Some("2001:db8::4".parse().unwrap()),
                    external_port: 40000,
                    internal_port: 32400,
                    lease_secs: 7200,
                    obtained: 1_800_000_400,
                }),
            },
            host_names: [host_name("home.example.net").unwrap()].into_iter().collect(),
            acme: AcmeSettings {
                enabled: true,
                domain: Some(host_name("home.example.net").unwrap()),
                directory_url: bounded("", "https://acme.example/dir").unwrap(),
            },
        },
        tls: Some(Tls { chain: [0x30, 0x82].into_iter().collect(), key: [0x30, 0x81].into_iter().collect(), custom: false }),
        libraries: [
            Library { id: 1, kind: LibraryKind::Movies, name: bounded("", "Films").unwrap() },
            Library { id: 2, kind: LibraryKind::Photos, name: bounded("", "Fotos").unwrap() },
        ]
        .into_iter()
        .collect(),
        folders: [Folder { library: 1, path: bounded("", "/srv/films").unwrap() }, Folder { library: 2, path: bounded("", "/srv/photos").unwrap() }]
            .into_iter()
            .collect(),
        resets: [Reset { reason: ResetReason::Crash, at: 1_800_000_500 }].into_iter().collect(),
        safe_mode: SafeMode { active: true, since: 1_800_000_500 },
        next_id: 6,
        run: Run::Running,
        acme: Acme {
            account: Some(AcmeAccount {
                directory_url: bounded("", "https://acme.example/dir").unwrap(),
                url: bounded("", "https://acme.example/acct/7").unwrap(),
                key: [0x30, 0x77].into_iter().collect(),
            }),
            issued: Some([0xAC; 32]),
        },
    }
}

/// The record today's schema wrote before ACME (schema 4: `todays_fixture()` of d1e4d02, see `fixtures/README.md`).
const V4_RECORD: &[u8] = include_bytes!("fixtures/v4.rec");

/// A real version 4 record migrates with everything it held kept, and ACME off with no account (issue 21).
#[test]
fn a_real_version_4_record_migrates_with_everything_kept() {
    let st = decode(4, V4_RECORD).unwrap();
    st.validate().unwrap();
    let mut want = todays_fixture();
    want.machine_id = *b"hearth-fixture04";
    want.settings.acme = AcmeSettings::default();
    want.acme = Acme::default();
    assert_eq!(st, want);
    assert!(!st.settings.acme.enabled && st.settings.acme.directory_url == LETS_ENCRYPT);
    // Older versions pass through version 4 on their way.
    assert_eq!(decode(3, include_bytes!("fixtures/v3.rec")).unwrap().acme, Acme::default());
}

/// Today's encoder still writes exactly the committed record of today's schema: a field added, removed,
/// reordered or retyped changes these bytes, and records already on flash would no longer decode.
#[test]
fn c_4_todays_schema_is_the_committed_one() {
    let path = format!("{}/src/state/fixtures/v{SCHEMA_VERSION}.rec", env!("CARGO_MANIFEST_DIR"));
    let st = todays_fixture();
    let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    st.validate().unwrap();
    let bytes = encode(&st).unwrap();
    assert!(
        bytes == committed,
        "The state schema changed, but SCHEMA_VERSION is still {SCHEMA_VERSION}: records on flash written as \
         version {SCHEMA_VERSION} would no longer decode. Freeze today's types as they were in \
         state/v{SCHEMA_VERSION}.rs (copies, no imports of the current types), add its migration to `decode`, bump \
         SCHEMA_VERSION to {next}, keep fixtures/v{SCHEMA_VERSION}.rec (it is now a real old record), write \
         fixtures/v{next}.rec from `todays_fixture()` with the new field set, and add a test that migrates the \
         old record (see a_real_version_2_record_migrates_with_everything_kept).",
        next = SCHEMA_VERSION + 1
    );
    assert_eq!(decode(SCHEMA_VERSION, &committed).unwrap(), st);
}
