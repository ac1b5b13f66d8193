//! The route-table test: every route (and every class a later route may use) × every identity × LAN/WAN ×
//! every server state → the status the class semantics in [`super::access`]'s table demand. Zero leaks.
//!
//! The expectation is written here from the class table in words, not by calling `decide`; the actual answer
//! goes through the whole admission (`http::routes::admit`: origin, token carrier, identity, rule).

use super::{home, secret, token};
use crate::auth::{Access, Section};
use crate::http::routes::{self, Params, ROUTES};
use crate::state::{Account, Library, LibraryKind, Net, Role, Scope, State, TokenHash};
use hyper::HeaderMap;
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    NoToken,
    Garbage,
    Revoked,
    FriendWithout,
    FriendWith,
    Member,
    Owner,
    Tool(Scope),
}

const WHO: [Who; 10] = [
    Who::NoToken,
    Who::Garbage,
    Who::Revoked,
    Who::FriendWithout,
    Who::FriendWith,
    Who::Member,
    Who::Owner,
    Who::Tool(Scope::ReadLibrary),
    Who::Tool(Scope::RefreshLibrary),
    Who::Tool(Scope::Admin),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Unclaimed,
    Unsecured,
    UnsecuredBypass,
    Secured,
}

const LAN: &str = "192.168.1.20:50000";
const WAN: &str = "203.0.113.7:50000";
/// IPv6 and IPv4-mapped origins (issue 21): each must get the answer its IPv4 equivalent gets. Under the
/// listed LAN (192.168.1.0/24) only link-local is LAN by scope; under the default rule (own subnets
/// 192.168.1.10/24 and 2001:db8:77::10/64) the on-link /64 and unique-local are LAN too.
const LISTED_ORIGINS: [(bool, &str); 6] = [
    (true, LAN),
    (false, WAN),
    (true, "[::ffff:192.168.1.20]:50000"),
    (false, "[::ffff:203.0.113.7]:50000"),
    (true, "[fe80::20]:50000"),
    (false, "[2001:db8:77::20]:50000"),
];
const DEFAULT_ORIGINS: [(bool, &str); 7] = [
    (true, LAN),
    (false, WAN),
    (true, "[2001:db8:77::20]:50000"),
    (true, "[fd00:77::20]:50000"),
    (true, "[fe80::20]:50000"),
    (false, "[2001:db8:11::7]:50000"),
    (false, "[::ffff:203.0.113.7]:50000"),
];
/// The library shared with "friend with" and the member.
const SHARED: u8 = 1;

struct World {
    state: State,
    tokens: Vec<(Who, String)>,
}

fn secret_fast() -> crate::state::Secret {
    // The table test does not need real hashes (nobody signs in here); a fixed value keeps it fast.
    crate::state::Secret { salt: [1; 16], hash: [2; 16] }
}

fn world(mode: Mode) -> World {
    let mut s = State::new([7; 16]);
    s.settings.lan_networks.push("192.168.1.0/24".parse().unwrap()).unwrap();
    s.libraries.push(Library { id: SHARED, kind: LibraryKind::Movies, name: "Films".try_into().unwrap() }).unwrap();
    s.libraries.push(Library { id: 2, kind: LibraryKind::Music, name: "Music".try_into().unwrap() }).unwrap();
    // Every Who gets a token text; only those with a record in this state resolve.
    let mut tokens: Vec<(Who, String)> = Vec::new();
    let garbage = "not-a-token".to_string();
    tokens.push((Who::NoToken, String::new()));
    tokens.push((Who::Garbage, garbage));
    let (revoked, _) = token::mint(); // never stored: exactly what a revoked token looks like to the server
    tokens.push((Who::Revoked, revoked));
    if mode == Mode::Unclaimed {
        for w in &WHO[3..] {
            tokens.push((*w, token::mint().0));
        }
        return World { state: s, tokens };
    }
    let client = token::Client { client: [0; 8], name: "t".try_into().unwrap(), product: "t".try_into().unwrap() };
    let owner = home::claim(&mut s, "owner".try_into().unwrap(), secret_fast(), false, 0).unwrap();
    let device = |s: &mut State, who: Who, account: u16, tokens: &mut Vec<(Who, String)>| {
        let (text, hash) = token::mint();
        home::add_device(s, account, &client, hash, 0).unwrap();
        tokens.push((who, text));
    };
    device(&mut s, Who::Owner, owner, &mut tokens);
    let friend = |name: &str, shares: &[u8]| Account {
        id: 0,
        role: Role::Friend,
        name: name.try_into().unwrap(),
        password: Some(secret_fast()),
        pin: None,
        shares: shares.iter().copied().collect(),
        created: 0,
    };
    let fw = home::add_account(&mut s, friend("friend-with", &[SHARED])).unwrap();
    device(&mut s, Who::FriendWith, fw, &mut tokens);
    let fo = home::add_account(&mut s, friend("friend-without", &[2])).unwrap();
    device(&mut s, Who::FriendWithout, fo, &mut tokens);
    for scope in [Scope::ReadLibrary, Scope::RefreshLibrary, Scope::Admin] {
        let (text, hash): (String, TokenHash) = token::mint();
        home::add_api_token(&mut s, format!("{scope:?}").as_str().try_into().unwrap(), scope, hash, 0).unwrap();
        tokens.push((Who::Tool(scope), text));
    }
    if matches!(mode, Mode::UnsecuredBypass | Mode::Secured) {
        // Both test origins are in the bypass list, so it matters only through the rule, not the address.
        let nets: [Net; 6] = ["192.168.1.0/24", "203.0.113.0/24", "2001:db8:77::/64", "fd00::/8", "fe80::/10", "2001:db8:11::/64"]
            .map(|n| n.parse().unwrap());
        for n in nets {
            s.settings.allowed_without_auth.push(n).unwrap();
        }
    }
    if mode == Mode::Secured {
        let m = Account {
            id: 0,
            role: Role::Member,
            name: "kid".try_into().unwrap(),
            password: None,
            pin: Some(secret_fast()),
            shares: [SHARED].into_iter().collect(),
            created: 0,
        };
        let m = home::add_account(&mut s, m).unwrap();
        device(&mut s, Who::Member, m, &mut tokens);
        assert!(s.is_secured());
    } else {
        assert!(!s.is_secured());
    }
    s.validate().unwrap();
    World { state: s, tokens }
}

/// The catalog the table test pretends: item `n` is in library `n` for the two libraries of `world`.
fn library_of(item: u32) -> Option<u8> {
    // A subtitle's stream id names its video (library::sidecar), as the real catalog decodes it.
    let item = crate::library::sidecar::stream_of(item).map_or(item, |(video, _)| video);
    [1u8, 2].into_iter().find(|l| u32::from(*l) == item)
}

/// Status the class semantics demand (200 = let through to the handler). `library` is the library the route is
/// about: the id parameter, or for item routes the library of the item it names.
fn expected(access: Access, library: Option<u8>, who: Who, lan: bool, mode: Mode) -> u16 {
    let claimed = mode != Mode::Unclaimed;
    match access {
        Access::Public => return 200,
        Access::Claim if !claimed => return if lan { 200 } else { 403 },
        Access::Claim => return 409,
        _ if !claimed => return 403,
        Access::SignIn => return 200,
        _ => {}
    }
    let library_class = matches!(access, Access::Libraries | Access::Library(_) | Access::Refresh(_) | Access::Item(_));
    // An item routes answers 404 for an item the caller may not see, exactly as for a missing one.
    let item_answer = |sees: bool| if library.is_some() && sees { 200 } else { 404 };
    match who {
        Who::Garbage | Who::Revoked => return 401,
        Who::NoToken if library_class && mode == Mode::UnsecuredBypass && matches!(access, Access::Item(_)) => {
            return item_answer(true);
        }
        Who::NoToken if library_class && mode == Mode::UnsecuredBypass => return 200,
        Who::NoToken => return 401,
        Who::Member if mode != Mode::Secured => unreachable!("members exist only when secured"),
        _ => {}
    }
    // What world() shares: friend-with and the member see library 1, friend-without sees library 2 only.
    let shares: &[u8] = match who {
        Who::FriendWith | Who::Member => &[SHARED],
        Who::FriendWithout => &[2],
        _ => &[],
    };
    let shared_with = |_: Section| library.is_some_and(|id| shares.contains(&id));
    let admitted = match access {
        Access::Account => matches!(who, Who::FriendWithout | Who::FriendWith | Who::Member | Who::Owner),
        Access::Home => matches!(who, Who::Member | Who::Owner),
        Access::Libraries => true,
        Access::Library(s) => matches!(who, Who::Owner | Who::Tool(_)) || shared_with(s),
        Access::Refresh(_) => matches!(who, Who::Owner | Who::Tool(Scope::RefreshLibrary | Scope::Admin)),
        Access::Owner => matches!(who, Who::Owner | Who::Tool(Scope::Admin)),
        Access::Item(s) => return item_answer(matches!(who, Who::Owner | Who::Tool(_)) || shared_with(s)),
        Access::Public | Access::Claim | Access::SignIn | Access::Dlna(_) => unreachable!("not an HTTP route class"),
    };
    if admitted { 200 } else { 403 }
}

fn headers_for(token: &str, case: usize) -> (HeaderMap, Option<String>) {
    let mut h = HeaderMap::new();
    if token.is_empty() {
        return (h, None);
    }
    // Rotate through the three carriers so each is exercised across the table.
    match case % 3 {
        0 => {
            h.insert("x-plex-token", token.parse().unwrap());
            (h, None)
        }
        1 => {
            h.insert("authorization", format!("Bearer {token}").parse().unwrap());
            (h, None)
        }
        _ => (h, Some(format!("X-Plex-Product=t&X-Plex-Token={token}"))),
    }
}

#[test]
fn every_route_every_identity_every_origin_every_state() {
    // Every route in the table, with its path parameters set to the shared library's id...
    let mut subjects: Vec<(String, Access, Params)> = ROUTES
        .iter()
        .map(|r| {
            let mut p = Params::default();
            for seg in r.path.split('/') {
                if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    p.0.push((name, SHARED.to_string()));
                }
            }
            // An item route with no id in its path (Plex's progress routes) takes it from the query.
            let p = routes::item_from_query(r, p, Some(&format!("ratingKey={SHARED}&key=/library/metadata/{SHARED}")));
            (format!("{} {}", r.method, r.path), r.access, p)
        })
        .collect();
    // The progress routes with items of each library in their query, and keys that disagree or name nothing.
    for path in ["/:/timeline", "/:/progress", "/:/scrobble", "/:/unscrobble"] {
        let (route, _) = routes::find(&hyper::Method::GET, path).unwrap();
        for q in ["key=1", "key=2", "ratingKey=2&key=/library/metadata/2", "ratingKey=1&key=/library/metadata/2", "key=9", "key=x", ""] {
            let p = routes::item_from_query(route, Params::default(), Some(q));
            subjects.push((format!("GET {path}?{q}"), route.access, p));
        }
    }
    // ...plus every class a later route can declare, about the shared library, an unshared one and a bad id.
    for (label, section, value) in [("lib 1", "id", "1"), ("lib 2", "id", "2"), ("no such lib", "id", "9"), ("bad id", "id", "x")] {
        let p = Params(vec![(section, value.to_string())]);
        subjects.push((format!("class Library ({label})"), Access::Library(Section::Param("id")), p.clone()));
        subjects.push((format!("class Refresh ({label})"), Access::Refresh(Section::Param("id")), p));
    }
    for (label, value) in [("item of lib 1", "1"), ("item of lib 2", "2"), ("no such item", "9"), ("bad item id", "x")] {
        let p = Params(vec![("id", value.to_string())]);
        subjects.push((format!("class Item ({label})"), routes::ITEM, p));
    }
    // The subtitle route with stream ids: a sidecar of an item of each library, and of no item.
    for (label, item) in [("lib 1", 1), ("lib 2", 2), ("no such item", 9)] {
        let stream = crate::library::sidecar::stream_id(item, 3).unwrap().to_string();
        let (route, _) = routes::find(&hyper::Method::GET, &format!("/library/streams/{stream}")).unwrap();
        subjects.push((format!("GET /library/streams/{{id}} (subtitle of {label})"), route.access, Params(vec![("id", stream)])));
    }
    subjects.push(("class Libraries".into(), Access::Libraries, Params::default()));
    // A section's "Recently added" about the unshared library and ids that name none (issue 20).
    for (label, value) in [("lib 2", "2"), ("no such lib", "9"), ("bad id", "x")] {
        let (route, _) = routes::find(&hyper::Method::GET, &format!("/library/sections/{value}/recentlyAdded")).unwrap();
        subjects.push((format!("GET /library/sections/{{id}}/recentlyAdded ({label})"), route.access, Params(vec![("id", value.to_string())])));
    }

    // The listed LAN (world's lan_networks; own subnets do not matter), then the default rule (no list: the
    // server's own subnets and the IPv6 scopes).
    let own_default: Vec<Net> = ["192.168.1.10/24", "2001:db8:77::10/64"].map(|n| n.parse().unwrap()).to_vec();
    let rules = [(false, Vec::new(), &LISTED_ORIGINS[..]), (true, own_default, &DEFAULT_ORIGINS[..])];
    let (mut cases, mut leaks, mut wrong) = (0usize, Vec::new(), Vec::new());
    for (default_rule, own, origins) in &rules {
        for mode in [Mode::Unclaimed, Mode::Unsecured, Mode::UnsecuredBypass, Mode::Secured] {
            let mut w = world(mode);
            if *default_rule {
                w.state.settings.lan_networks.clear();
            }
            for (label, access, params) in &subjects {
                for (who, tok) in &w.tokens {
                    for &(lan, peer_text) in origins.iter() {
                        let peer: SocketAddr = peer_text.parse().unwrap();
                        let (h, q) = headers_for(tok, cases);
                        let got = match routes::admit(*access, params, &h, q.as_deref(), peer, &w.state, own, &library_of) {
                            Ok(_) => 200,
                            Err(r) => r.status,
                        };
                        let id = params.get("id");
                        let library = match access {
                            Access::Item(_) => id.and_then(|v| v.parse().ok()).and_then(library_of),
                            _ => id.and_then(|v| v.parse().ok()),
                        };
                        let want = expected(*access, library, *who, lan, mode);
                        cases += 1;
                        if got != want {
                            let line = format!("{label} as {who:?} from {peer_text} ({}) in {mode:?}: got {got}, want {want}", if lan { "LAN" } else { "WAN" });
                            if got == 200 { leaks.push(line) } else { wrong.push(line) }
                        }
                    }
                }
            }
        }
    }
    println!("route-table test: {} routes + {} class probes, {cases} cases checked, {} leaks, {} other mismatches",
        ROUTES.len(), subjects.len() - ROUTES.len(), leaks.len(), wrong.len());
    assert!(leaks.is_empty(), "LEAKS:\n{}", leaks.join("\n"));
    assert!(wrong.is_empty(), "mismatches:\n{}", wrong.join("\n"));
    assert!(cases > 2000);
}

/// Search and "Recently added" (issue 20): the lists across libraries are Libraries routes (each handler lists
/// only the libraries the caller sees, `firmware/tests/search.rs`), a section's list is Library(id), so a caller
/// without that library is refused before anything is listed.
#[test]
fn search_and_recently_added_routes_have_their_classes() {
    let library = Access::Library(Section::Param("id"));
    for (path, want) in [
        ("/hubs/search", Access::Libraries),
        ("/library/all", Access::Libraries),
        ("/library/recentlyAdded", Access::Libraries),
        ("/library/sections/2/recentlyAdded", library),
    ] {
        let (route, _) = routes::find(&hyper::Method::GET, path).unwrap_or_else(|m| panic!("{path}: {m:?}"));
        assert_eq!(route.access, want, "{path}");
    }
}

#[test]
fn a_route_is_in_the_table_once() {
    for (i, r) in ROUTES.iter().enumerate() {
        assert!(
            !ROUTES[..i].iter().any(|o| o.method == r.method && o.path == r.path),
            "{} {} is declared twice",
            r.method,
            r.path
        );
    }
}

#[test]
fn secured_state_ignores_the_bypass_list_and_turns_dlna_off() {
    let mut w = world(Mode::UnsecuredBypass);
    w.state.settings.dlna.reenabled_secured = true; // stale acknowledgement from an earlier secured period
    assert!(w.state.dlna_effectively_on());
    let before = w.state.clone();
    let member = Account {
        id: 0,
        role: Role::Member,
        name: "kid".try_into().unwrap(),
        password: None,
        pin: None,
        shares: Default::default(),
        created: 0,
    };
    home::add_account(&mut w.state, member).unwrap();
    w.state.settle(&before); // what the state handle does after every change
    assert!(w.state.is_secured());
    assert!(!w.state.settings.dlna.reenabled_secured, "securing clears the acknowledgement at that moment");
    assert!(!w.state.dlna_effectively_on());
}

#[test]
fn record_size_with_a_full_home() {
    // 15 members with PINs and shares, the owner with a PIN, 64 devices and 16 API tokens, real argon2 values.
    let mut s = State::new([9; 16]);
    for i in 1..=16u8 {
        let name = format!("Library number {i:02}");
        s.libraries.push(Library { id: i, kind: LibraryKind::Movies, name: name.as_str().try_into().unwrap() }).unwrap();
    }
    let sealed = secret::seal("a long owner password");
    let owner = home::claim(&mut s, "The Owner Of This Box".try_into().unwrap(), sealed.clone(), true, 1_800_000_000).unwrap();
    s.accounts[0].pin = Some(sealed.clone());
    for m in 0..15 {
        let a = Account {
            id: 0,
            role: Role::Member,
            name: format!("Home member number {m:02}").as_str().try_into().unwrap(),
            password: None,
            pin: Some(sealed.clone()),
            shares: (1..=4u8).collect(),
            created: 1_800_000_000,
        };
        home::add_account(&mut s, a).unwrap();
    }
    let accounts: Vec<u16> = s.accounts.iter().map(|a| a.id).collect();
    for d in 0..64 {
        let client = token::Client {
            client: [d as u8; 8],
            name: token::truncate(&format!("Living room TV {d:02} long")),
            product: token::truncate("Plex for Android (TV)"),
        };
        home::add_device(&mut s, accounts[d % accounts.len()], &client, token::mint().1, 1_800_000_000).unwrap();
    }
    for t in 0..16 {
        let name = format!("library update hook {t:02}");
        home::add_api_token(&mut s, name.as_str().try_into().unwrap(), Scope::RefreshLibrary, token::mint().1, 1_800_000_000).unwrap();
    }
    let _ = owner;
    s.validate().unwrap();
    let bytes = crate::state::encode(&s).unwrap();
    println!(
        "record size with 15 members, 64 devices, 16 API tokens: {} bytes ({:.1}% of the {}-byte record bound)",
        bytes.len(),
        100.0 * bytes.len() as f64 / crate::state::MAX_RECORD as f64,
        crate::state::MAX_RECORD
    );
    assert!(bytes.len() <= crate::state::MAX_RECORD);
    assert_eq!(s.devices.len(), 64);
}
