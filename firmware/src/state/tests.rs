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
