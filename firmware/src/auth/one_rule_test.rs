//! One decision for every door (issue 18 item 2; review findings A-F3, C-1, C-2): the item routes and DLNA
//! are classes of [`super::decide`], and what a caller sees comes from the decision alone.

use super::{Access, Caller, Visible, home, token};
use crate::dlna::{self, Via};
use crate::http::routes::{self, Params, ROUTES};
use crate::state::{Account, Library, LibraryKind, Mapping, MappingMethod, Net, Role, Secret, State};
use hyper::HeaderMap;
use std::net::{IpAddr, SocketAddr};

const A: u8 = 1;
const B: u8 = 2;
/// Items of library A: a film. Items of library B: a show (a group), its season (a group), an episode.
const FILM: u32 = 10;
const SHOW: u32 = 20;
const SEASON: u32 = 21;
const EPISODE: u32 = 22;
const MISSING: u32 = 999;

fn library_of(id: u32) -> Option<u8> {
    match id {
        FILM => Some(A),
        SHOW | SEASON | EPISODE => Some(B),
        _ => None,
    }
}

fn secret() -> Secret {
    Secret { salt: [1; 16], hash: [2; 16] }
}

fn account(name: &str, role: Role, shares: &[u8]) -> Account {
    let password = (role != Role::Member).then(secret);
    Account { id: 0, role, name: name.try_into().unwrap(), password, pin: None, shares: shares.iter().copied().collect(), created: 0 }
}

/// A claimed server with libraries A and B, and a token for each caller.
fn world() -> (State, Vec<(&'static str, String)>) {
    let mut s = State::new([3; 16]);
    s.libraries.push(Library { id: A, kind: LibraryKind::Movies, name: "A".try_into().unwrap() }).unwrap();
    s.libraries.push(Library { id: B, kind: LibraryKind::Shows, name: "B".try_into().unwrap() }).unwrap();
    let owner = home::claim(&mut s, "owner".try_into().unwrap(), secret(), false, 0).unwrap();
    let client = token::Client { client: [0; 8], name: "t".try_into().unwrap(), product: "t".try_into().unwrap() };
    let mut tokens = Vec::new();
    let mut device = |s: &mut State, who: &'static str, id: u16| {
        let (text, hash) = token::mint();
        home::add_device(s, id, &client, hash, 0).unwrap();
        tokens.push((who, text));
    };
    device(&mut s, "owner", owner);
    for (who, role, shares) in [
        ("friend with A", Role::Friend, &[A][..]),
        ("friend without a share", Role::Friend, &[][..]),
        ("member with A", Role::Member, &[A][..]),
        ("member without a share", Role::Member, &[][..]),
    ] {
        let id = home::add_account(&mut s, account(who, role, shares)).unwrap();
        device(&mut s, who, id);
    }
    s.validate().unwrap();
    (s, tokens)
}

/// What each caller may see, by the words of the access rule's table.
fn sees(who: &str, library: u8) -> bool {
    match who {
        "owner" => true,
        "friend with A" | "member with A" => library == A,
        _ => false,
    }
}

#[test]
fn c_1_every_item_route_answers_hidden_items_as_missing_ones() {
    let (state, tokens) = world();
    let item_routes: Vec<_> = ROUTES.iter().filter(|r| r.access == routes::ITEM).collect();
    let paths: Vec<&str> = item_routes.iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/library/metadata/{id}",
            "/library/metadata/{id}/children",
            "/library/metadata/{id}/allLeaves",
            "/library/metadata/{id}/thumb",
            "/library/streams/{id}",
            "/library/parts/{id}/{ts}/{file}",
            // Watch state (http/plex/progress.rs): the item comes from the query (routes::item_from_query).
            "/:/timeline",
            "/:/progress",
            "/:/scrobble",
            "/:/unscrobble"
        ],
        "every route that returns one item by id is an item route"
    );
    let peer: SocketAddr = "192.168.1.20:5000".parse().unwrap();
    let own: Vec<Net> = vec!["192.168.1.0/24".parse().unwrap()];
    let (mut cases, mut wrong) = (0, Vec::new());
    for (who, tok) in &tokens {
        let mut h = HeaderMap::new();
        h.insert("x-plex-token", tok.parse().unwrap());
        let ask = |item: u32| {
            let p = Params(vec![("id", item.to_string()), ("ts", "1".into()), ("file", "f.mp4".into())]);
            routes::admit(routes::ITEM, &p, &h, None, peer, &state, &own, &library_of).map_err(|r| (r.status, r.message))
        };
        let gone = ask(MISSING).expect_err("a missing item is refused");
        assert_eq!(gone.0, 404, "{who}");
        for _route in &item_routes {
            for item in [FILM, SHOW, SEASON, EPISODE] {
                cases += 1;
                let got = ask(item);
                let visible = sees(who, library_of(item).unwrap());
                let ok = match &got {
                    Ok(_) => visible,
                    // Not found, word for word as a missing id: ids reveal nothing about other libraries.
                    Err(e) => !visible && *e == gone,
                };
                if !ok {
                    wrong.push(format!("{who}, item {item}: {got:?}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "item routes disagree with the callers' libraries:\n{}", wrong.join("\n"));
    assert_eq!(cases, 5 * 10 * 4);
}

#[test]
fn c_1_the_decision_carries_the_callers_libraries() {
    let (state, tokens) = world();
    let origin = super::Origin { addr: "192.168.1.20".parse().unwrap(), lan: true };
    for (who, tok) in &tokens {
        let identity = token::identify(&token::Presented::Text(tok.clone()), &state);
        let caller = super::decide(Access::Libraries, &identity, &origin, &state).unwrap();
        for l in [A, B] {
            assert_eq!(caller.sees().allows(l), sees(who, l), "{who} and library {l}");
        }
    }
    // A member with no share sees nothing at all; so does a caller that passed a public route.
    assert_eq!(Caller::Anyone.sees(), Visible::NOTHING);
    // A share of a library that no longer exists shows nothing.
    let mut gone = state.clone();
    gone.libraries.retain(|l| l.id != A);
    let (_, friend) = tokens.iter().find(|(w, _)| *w == "friend with A").unwrap();
    let identity = token::identify(&token::Presented::Text(friend.clone()), &gone);
    let caller = super::decide(Access::Libraries, &identity, &origin, &gone).unwrap();
    assert!(!caller.sees().allows(A));
}

/// Who DLNA answers, on both doors, against the origin rule of 32400 (A-F3, C-2).
#[test]
fn a_f3_dlna_refuses_wan_sources() {
    let own: Vec<Net> =
        vec!["192.168.1.10/24".parse().unwrap(), "fd00:1::10/64".parse().unwrap(), "127.0.0.1/8".parse().unwrap()];
    let unclaimed = State::new([4; 16]);
    let mut unsecured = unclaimed.clone();
    home::claim(&mut unsecured, "owner".try_into().unwrap(), secret(), false, 0).unwrap();
    home::add_account(&mut unsecured, account("friend", Role::Friend, &[])).unwrap();
    assert!(!unsecured.is_secured());
    let mut secured = unsecured.clone();
    secured.accounts[0].pin = Some(secret());
    let mut reenabled = secured.clone();
    reenabled.settings.dlna.reenabled_secured = true;
    // The public address remote access found, for "treat WAN IP as LAN".
    let public: IpAddr = "203.0.113.4".parse().unwrap();
    let with_public = |s: &State, treat: bool| {
        let mut s = s.clone();
        s.settings.remote.last_mapping = Some(Mapping {
            method: MappingMethod::NatPmp,
            gateway: "192.168.1.1".parse().unwrap(),
            external_addr: Some(public),
            external_port: 32400,
            internal_port: 32400,
            lease_secs: 0,
            obtained: 0,
        });
        s.settings.treat_wan_ip_as_lan = treat;
        s
    };
    // (source, LAN?) with the default LAN (the server's own subnets).
    let origins: &[(&str, bool)] = &[
        ("192.168.1.50", true),
        ("fd00:1::50", true),
        ("::ffff:192.168.1.50", true),
        ("127.0.0.1", true),
        ("198.51.100.7", false),
        ("2001:db8::7", false),
        ("::ffff:198.51.100.7", false),
        ("203.0.113.4", false),
    ];
    let mut rows = 0;
    for (name, state, on) in [("unclaimed", &unclaimed, true), ("unsecured", &unsecured, true), ("secured", &secured, false), ("secured, re-enabled", &reenabled, true)] {
        for treat in [false, true] {
            let s = with_public(state, treat);
            for (src, lan) in origins {
                let peer: IpAddr = src.parse().unwrap();
                let lan = *lan || (treat && *src == "203.0.113.4");
                // The same LAN rule as 32400.
                assert_eq!(super::origin(peer, None, &s, &own).unwrap().lan, lan, "{src}");
                for via in [Via::Http, Via::Ssdp] {
                    let got = dlna::admit(&s, &own, peer, via);
                    assert_eq!(got.is_ok(), on && lan, "{name}, treat WAN IP as LAN {treat}: {src} via {via:?}: {got:?}");
                    rows += 1;
                }
            }
        }
    }
    // The owner's LAN networks replace the default, for DLNA as for 32400.
    let mut listed = unsecured.clone();
    listed.settings.lan_networks.push("10.0.0.0/8".parse().unwrap()).unwrap();
    assert!(dlna::admit(&listed, &own, "10.1.2.3".parse().unwrap(), Via::Http).is_ok());
    assert!(dlna::admit(&listed, &own, "192.168.1.50".parse().unwrap(), Via::Http).is_err());
    // DLNA off, or safe mode: nobody.
    let mut off = unsecured.clone();
    off.settings.dlna.enabled = false;
    assert!(dlna::admit(&off, &own, "192.168.1.50".parse().unwrap(), Via::Http).is_err());
    println!("DLNA rule: {rows} rows checked");
}

#[test]
fn dlna_callers_see_the_libraries_chosen_for_dlna() {
    let (mut s, _) = world();
    s.accounts.retain(|a| a.role != Role::Member); // unsecured: DLNA on
    s.devices.retain(|d| s.accounts.iter().any(|a| a.id == d.account));
    let own: Vec<Net> = vec!["192.168.1.0/24".parse().unwrap()];
    let peer: IpAddr = "192.168.1.50".parse().unwrap();
    assert_eq!(dlna::admit(&s, &own, peer, Via::Http), Ok(Visible::All));
    s.settings.dlna.libraries.push(B).unwrap();
    let sees = dlna::admit(&s, &own, peer, Via::Http).unwrap();
    assert!(sees.allows(B) && !sees.allows(A));
}
