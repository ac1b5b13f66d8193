//! The IGD core against miniupnpd's own answers (captured from the netlab router, miniupnpd 2.3.1 as Debian
//! ships it: `firmware/fuzz-remote/seeds/igd/`, which are also the fuzz target's seeds) and against the
//! hostile and odd answers other routers or LAN hosts could send.

use super::*;

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-remote/seeds/igd");

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(format!("{SEEDS}/{name}")).unwrap_or_else(|e| panic!("{SEEDS}/{name}: {e}"))
}

fn router() -> Location {
    parse_url("http://192.168.77.1:5000/rootDesc.xml").unwrap()
}

fn lan(a: &str) -> SocketAddr {
    SocketAddr::new(a.parse().unwrap(), 1900)
}

#[test]
fn miniupnpd_search_answer() {
    let f = parse_search_answer(&seed("ssdp-answer-miniupnpd")).unwrap();
    assert_eq!(f.location, router());
    assert_eq!(f.st, "urn:schemas-upnp-org:device:InternetGatewayDevice:1");
    assert_eq!(f.usn, "uuid:3e1f4a52-6c1b-4c7e-9a52-1d2c3b4a5f60::urn:schemas-upnp-org:device:InternetGatewayDevice:1");
    assert_eq!(f.boot_id, Some(1796434005));
    let f = parse_search_answer(&seed("ssdp-answer-wanipconnection2-miniupnpd")).unwrap();
    assert_eq!((f.location, f.st.as_str()), (router(), "urn:schemas-upnp-org:service:WANIPConnection:2"));
}

#[test]
fn search_requests_are_ssdp_discovers() {
    let r = search_request(TARGETS[0]);
    assert!(r.starts_with("M-SEARCH * HTTP/1.1\r\n"), "{r}");
    for h in ["HOST: 239.255.255.250:1900\r\n", "MAN: \"ssdp:discover\"\r\n", "MX: 2\r\n", "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"] {
        assert!(r.contains(h), "{h} in {r}");
    }
    assert!(r.ends_with("\r\n\r\n"));
}

#[test]
fn search_answers_that_are_not_used() {
    let ok = "HTTP/1.1 200 OK\r\nLOCATION: http://192.168.1.1:1900/igd.xml\r\nST: urn:schemas-upnp-org:service:WANPPPConnection:1\r\nUSN: uuid:x\r\n\r\n";
    let f = parse_search_answer(ok.as_bytes()).unwrap();
    assert_eq!((f.location.addr, f.location.path.as_str(), f.boot_id), (lan("192.168.1.1"), "/igd.xml", None));
    // Header names in any case, LF-only lines.
    let lower = "HTTP/1.1 200 OK\nlocation: http://10.0.0.1/d.xml\nst: urn:schemas-upnp-org:device:InternetGatewayDevice:2\n\n";
    assert_eq!(parse_search_answer(lower.as_bytes()).unwrap().location.addr, SocketAddr::new("10.0.0.1".parse().unwrap(), 80));
    let cases: [(&str, Unusable); 7] = [
        ("NOTIFY * HTTP/1.1\r\nLOCATION: http://10.0.0.1/\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n", Unusable::NotAnswer),
        ("HTTP/1.1 404 Not Found\r\n\r\n", Unusable::NotAnswer),
        ("HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/\r\n\r\n", Unusable::NotAnswer),
        ("HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.1/\r\nST: urn:schemas-upnp-org:device:MediaRenderer:1\r\n\r\n",
         Unusable::NotGateway("urn:schemas-upnp-org:device:MediaRenderer:1".into())),
        // A name would need resolving: refused. So are https and user info.
        ("HTTP/1.1 200 OK\r\nLOCATION: http://router.lan:5000/\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n", Unusable::Location),
        ("HTTP/1.1 200 OK\r\nLOCATION: https://10.0.0.1/\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n", Unusable::Location),
        ("HTTP/1.1 200 OK\r\nLOCATION: http://u@10.0.0.1/\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n", Unusable::Location),
    ];
    for (text, why) in cases {
        assert_eq!(parse_search_answer(text.as_bytes()), Err(why), "{text}");
    }
    assert_eq!(parse_search_answer(&[b'A'; DATAGRAM_MAX + 1]), Err(Unusable::Length(DATAGRAM_MAX + 1)));
}

#[test]
fn a_device_is_believed_only_at_its_own_address_and_asked_once() {
    let answer = seed("ssdp-answer-miniupnpd");
    let mut s = Search::default();
    // Another LAN host repeating the router's answer (or pointing us elsewhere) is not believed.
    assert_eq!(s.heard(lan("192.168.77.66"), &answer), None);
    let f = s.heard(lan("192.168.77.1"), &answer).expect("the router itself");
    assert_eq!(f.location, router());
    // The same device answering the other search targets, and the second round: asked once.
    assert_eq!(s.heard(lan("192.168.77.1"), &answer), None);
    // Bounded: at most ANSWERS_MAX datagrams, at most DEVICES_MAX devices.
    let mut s = Search::default();
    for i in 0..100u8 {
        let a = format!("HTTP/1.1 200 OK\r\nLOCATION: http://10.0.0.{i}/\r\nST: {}\r\n\r\n", TARGETS[0]);
        s.heard(lan(&format!("10.0.0.{i}")), a.as_bytes());
    }
    assert_eq!(s.asked.len(), DEVICES_MAX);
    assert!(!s.open());
    let mut s = Search::default();
    for _ in 0..ANSWERS_MAX {
        assert!(s.heard(lan("10.0.0.1"), b"chatter").is_none());
    }
    assert!(!s.open() && s.heard(lan("192.168.77.1"), &answer).is_none(), "a LAN full of chatter ends the search");
}

#[test]
fn miniupnpd_description() {
    let d = parse_description(&seed("description-miniupnpd.xml"), &router()).unwrap();
    assert_eq!(d.friendly_name.as_deref(), Some("Hearth Lab Router"));
    let wan = d.wan.as_ref().unwrap();
    assert_eq!(wan.service_type, "urn:schemas-upnp-org:service:WANIPConnection:2");
    assert!(wan.has_any_port());
    assert_eq!(wan.control, parse_url("http://192.168.77.1:5000/ctl/IPConn").unwrap());
    assert_eq!(d.firewall6, Some(parse_url("http://192.168.77.1:5000/ctl/IP6FCtl").unwrap()));
    assert!(d.maps_ports() && d.opens_pinholes());
}

/// A description in the shape of other routers: URLBase, nested devices, a PPP service, relative URLs.
#[test]
fn descriptions_of_other_routers() {
    let at = parse_url("http://192.168.1.1:49000/desc/igd.xml").unwrap();
    let d = br#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<URLBase>http://192.168.1.1:49000/</URLBase>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
 <friendlyName>Box &amp; Co&#x20;7590</friendlyName>
 <serviceList><service><serviceType>urn:schemas-any-com:service:Any:1</serviceType><controlURL>/upnp/control/any</controlURL></service></serviceList>
 <deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><friendlyName>WANDevice</friendlyName>
  <deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
   <serviceList>
    <service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType><controlURL>upnp/control/wanpppconn1</controlURL></service>
    <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/upnp/control/wanipconnection1</controlURL></service>
   </serviceList></device></deviceList></device></deviceList></device></root>"#;
    let got = parse_description(d, &at).unwrap();
    assert_eq!(got.friendly_name.as_deref(), Some("Box & Co 7590"), "the root device's name, entities decoded");
    let wan = got.wan.unwrap();
    assert_eq!(wan.service_type, "urn:schemas-upnp-org:service:WANIPConnection:1", "an IP connection before PPP");
    assert!(!wan.has_any_port());
    assert_eq!(wan.control, parse_url("http://192.168.1.1:49000/upnp/control/wanipconnection1").unwrap());
    assert_eq!(got.firewall6, None);
    // Only PPP: relative to URLBase.
    let ppp = String::from_utf8_lossy(d).replace("WANIPConnection:1", "Other:1");
    let wan = parse_description(ppp.as_bytes(), &at).unwrap().wan.unwrap();
    assert_eq!(wan.control, parse_url("http://192.168.1.1:49000/upnp/control/wanpppconn1").unwrap());
    // Without URLBase a relative URL resolves against LOCATION's directory.
    let no_base = ppp.replace("<URLBase>http://192.168.1.1:49000/</URLBase>", "");
    let wan = parse_description(no_base.as_bytes(), &at).unwrap().wan.unwrap();
    assert_eq!(wan.control.path, "/desc/upnp/control/wanpppconn1");
}

#[test]
fn a_description_cannot_send_us_off_the_device() {
    let at = router();
    let svc = |url: &str| {
        format!("<root><URLBase>{url}</URLBase><device><serviceList><service><serviceType>{}</serviceType><controlURL>/c</controlURL></service>\
                 <service><serviceType>{FIREWALL6}</serviceType><controlURL>{url}f</controlURL></service></serviceList></device></root>", WAN_SERVICES[1])
    };
    // Another host in URLBase: ignored (LOCATION is the base); an absolute control URL on another host: dropped.
    let d = parse_description(svc("http://10.9.9.9:80/").as_bytes(), &at).unwrap();
    assert_eq!(d.wan.unwrap().control, parse_url("http://192.168.77.1:5000/c").unwrap());
    assert_eq!(d.firewall6, None);
    // Same host, another port: fine (IGDs often serve control on another port).
    let d = parse_description(svc("http://192.168.77.1:5001/").as_bytes(), &at).unwrap();
    assert_eq!(d.wan.unwrap().control, parse_url("http://192.168.77.1:5001/c").unwrap());
    assert_eq!(d.firewall6, Some(parse_url("http://192.168.77.1:5001/f").unwrap()));
}

#[test]
fn descriptions_that_are_refused() {
    let at = router();
    for bad in [&b"<root><device>"[..], b"not xml <", b"<root></root>", b"\xff\xfe<root/>", b""] {
        assert!(parse_description(bad, &at).is_err(), "{}", String::from_utf8_lossy(bad));
    }
    let deep = format!("<root>{}{}</root>", "<device>".repeat(40), "</device>".repeat(40));
    assert_eq!(parse_description(deep.as_bytes(), &at), Err(Unusable::Xml));
    let wide = format!("<root><device>{}</device></root>", "<x/>".repeat(XML_ELEMENTS_MAX));
    assert_eq!(parse_description(wide.as_bytes(), &at), Err(Unusable::Xml));
    assert_eq!(parse_description(&vec![b' '; BODY_MAX + 1], &at), Err(Unusable::Xml));
    // A hostile friendlyName is cut and cleaned.
    let name = format!("<root><device><friendlyName>a\u{7}b{}</friendlyName></device></root>", "n".repeat(5000));
    let d = parse_description(name.as_bytes(), &at).unwrap();
    assert_eq!(d.friendly_name.as_ref().unwrap().chars().count(), 64);
    assert!(d.friendly_name.unwrap().starts_with("abnn"));
}

#[test]
fn urls_resolve_as_rfc_3986_says() {
    let base = parse_url("http://10.0.0.1:5000/a/b/desc.xml?x=1").unwrap();
    let r = |s: &str| resolve(&base, s).map(|l| format!("{}{}", l.addr, l.path));
    assert_eq!(r("/ctl").as_deref(), Some("10.0.0.1:5000/ctl"));
    assert_eq!(r("ctl").as_deref(), Some("10.0.0.1:5000/a/b/ctl"));
    assert_eq!(r("../ctl").as_deref(), Some("10.0.0.1:5000/a/ctl"));
    assert_eq!(r("./c/../d").as_deref(), Some("10.0.0.1:5000/a/b/d"));
    assert_eq!(r("../../../../ctl").as_deref(), Some("10.0.0.1:5000/ctl"));
    assert_eq!(r("?q").as_deref(), Some("10.0.0.1:5000/a/b/desc.xml?q"));
    assert_eq!(r("//10.0.0.2:81/x").as_deref(), Some("10.0.0.2:81/x"));
    assert_eq!(r("HTTP://10.0.0.3/y#frag").as_deref(), Some("10.0.0.3:80/y"));
    assert_eq!(r("http://[fe80::1]:5000/z").as_deref(), Some("[fe80::1]:5000/z"));
    for bad in ["", "https://10.0.0.1/", "file:/etc/passwd", "http://name/x", "/a b", "/a\r\nX: y", "http://10.0.0.1:0/"] {
        assert_eq!(r(bad), None, "{bad:?}");
    }
    assert_eq!(parse_url("http://10.0.0.1:5000").unwrap().path, "/");
    assert_eq!(parse_url("http://[::1]x/"), None);
    assert_eq!(parse_url("http://[fe80::1%eth0]:80/"), None);
    assert_eq!(parse_url("http://1.2.3.4:65536/"), None);
}

#[test]
fn requests_name_their_arguments_in_the_spec_order() {
    let s = WAN_SERVICES[0];
    let b = add_port_mapping(s, 32400, "192.168.77.10:32400".parse().unwrap(), 7200, "Hearth");
    let order = ["NewRemoteHost", "NewExternalPort", "NewProtocol", "NewInternalPort", "NewInternalClient", "NewEnabled",
        "NewPortMappingDescription", "NewLeaseDuration"];
    let at: Vec<usize> = order.iter().map(|n| b.find(&format!("<{n}>")).unwrap_or_else(|| panic!("{n}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{b}");
    for want in ["<u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\">", "<NewRemoteHost></NewRemoteHost>",
        "<NewExternalPort>32400</NewExternalPort>", "<NewProtocol>TCP</NewProtocol>", "<NewInternalClient>192.168.77.10</NewInternalClient>",
        "<NewEnabled>1</NewEnabled>", "<NewPortMappingDescription>Hearth</NewPortMappingDescription>", "<NewLeaseDuration>7200</NewLeaseDuration>"] {
        assert!(b.contains(want), "{want} in {b}");
    }
    assert!(add_any_port_mapping(s, 1, "1.2.3.4:5".parse().unwrap(), 0, "x").contains("<u:AddAnyPortMapping"));
    assert!(delete_port_mapping(s, 40000).contains("<NewRemoteHost></NewRemoteHost><NewExternalPort>40000</NewExternalPort><NewProtocol>TCP</NewProtocol>"));
    assert!(get_specific_entry(s, 40000).contains("<u:GetSpecificPortMappingEntry"));
    assert!(get_generic_entry(s, 3).contains("<NewPortMappingIndex>3</NewPortMappingIndex>"));
    assert!(get_external_ip_address(s).contains("<u:GetExternalIPAddress xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:2\"></u:GetExternalIPAddress>"));
    // Values are escaped: a description cannot add elements.
    let evil = add_port_mapping(s, 1, "1.2.3.4:5".parse().unwrap(), 0, "a</NewPortMappingDescription><x>&");
    assert!(evil.contains("a&lt;/NewPortMappingDescription&gt;&lt;x&gt;&amp;") && !evil.contains("<x>"), "{evil}");
    // What we send, miniupnpd's parser reads back (our reply decoder reads envelopes of either direction).
    assert!(matches!(reply(200, b.replace("AddPortMapping xmlns", "AddPortMappingResponse xmlns").replace("</u:AddPortMapping>", "</u:AddPortMappingResponse>").as_bytes()),
        Reply::Done { ref action, ref args } if action == "AddPortMapping" && args.len() == 8));
}

#[test]
fn miniupnpd_answers() {
    let r = reply(200, &seed("soap-get-external-ip-miniupnpd.xml"));
    assert_eq!(r.arg("NewExternalIPAddress"), Some("11.0.0.2"), "{r:?}");
    assert!(matches!(reply(200, &seed("soap-add-port-mapping-miniupnpd.xml")), Reply::Done { ref action, ref args } if action == "AddPortMapping" && args.is_empty()));
    let r = reply(200, &seed("soap-add-any-port-mapping-miniupnpd.xml"));
    assert!(r.arg("NewReservedPort").and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| p != 0), "{r:?}");
    // AddAnyPortMapping for internal 32401 got 40001 (hearth-tv held 40000), replacing our own 40001 → 32400.
    let r = reply(200, &seed("soap-get-specific-entry-miniupnpd.xml"));
    let e = entry(&r).unwrap();
    assert_eq!((e.external_port, e.internal_port, e.internal_client), (None, 32401, Some("192.168.77.10".parse().unwrap())));
    // Entry 1 of the table: hearth-tv's mapping.
    let r = reply(200, &seed("soap-get-generic-entry-miniupnpd.xml"));
    let e = entry(&r).unwrap();
    assert_eq!((e.external_port, e.protocol.as_deref(), e.internal_port), (Some(40000), Some("TCP"), 32400));
    assert_eq!(e.internal_client, Some("192.168.77.20".parse().unwrap()));
    assert!(matches!(reply(200, &seed("soap-delete-port-mapping-miniupnpd.xml")), Reply::Done { ref action, .. } if action == "DeletePortMapping"));
    for (name, code) in [("soap-fault-718-miniupnpd.xml", 718), ("soap-fault-714-miniupnpd.xml", 714), ("soap-fault-713-miniupnpd.xml", 713)] {
        assert_eq!(reply(500, &seed(name)), Reply::Fault { code, description: error_name(code).unwrap().into() }, "{name}");
    }
}

#[test]
fn answers_that_are_not_replies() {
    assert_eq!(reply(200, b""), Reply::Garbled);
    assert_eq!(reply(500, b"<html><body>Internal error</body></html>"), Reply::Garbled);
    assert_eq!(reply(200, b"<s:Envelope><s:Body><u:XResponse><A>1</A>"), Reply::Garbled, "cut short");
    // A 200 that carries a fault, and a 500 that carries a response: only the fault counts.
    let fault = b"<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>501</errorCode><errorDescription>Action Failed</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>";
    assert_eq!(reply(200, fault), Reply::Fault { code: 501, description: "Action Failed".into() });
    assert_eq!(reply(500, b"<Envelope><Body><XResponse/></Body></Envelope>"), Reply::Garbled);
    // No prefixes, empty arguments, a header, and trailing bytes after the envelope.
    let r = reply(200, b"<Envelope><Header><x/></Header><Body><GetExternalIPAddressResponse><NewExternalIPAddress/></GetExternalIPAddressResponse></Body></Envelope>\0\0junk");
    assert_eq!(r, Reply::Done { action: "GetExternalIPAddress".into(), args: vec![("NewExternalIPAddress".into(), String::new())] });
    // Bounded: arguments and description.
    let many = format!("<Envelope><Body><AResponse>{}</AResponse></Body></Envelope>", "<x>1</x>".repeat(100));
    assert!(matches!(reply(200, many.as_bytes()), Reply::Done { args, .. } if args.len() == ARGS_MAX));
    let long = format!("<Envelope><Body><Fault><UPnPError><errorCode>606</errorCode><errorDescription>{}\u{1b}</errorDescription></UPnPError></Fault></Body></Envelope>", "d".repeat(500));
    assert!(matches!(reply(500, long.as_bytes()), Reply::Fault { code: 606, description } if description.len() == 120));
}

#[test]
fn hostile_answers_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(112_008);
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(SEEDS).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    let at = router();
    for i in 0..6_000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..rng.gen_range(1..8) {
            if b.is_empty() {
                break;
            }
            let at = rng.gen_range(0..b.len());
            b[at] = rng.r#gen();
        }
        b.truncate(rng.gen_range(0..=b.len()));
        check(&b, &at);
    }
}

/// What the fuzz target (`fuzz-remote/fuzz_targets/igd.rs`) checks, for one input.
fn check(b: &[u8], at: &Location) {
    if let Ok(f) = parse_search_answer(b) {
        assert!(f.location.path.starts_with('/') && f.location.path.bytes().all(|c| c.is_ascii_graphic()));
        assert!(f.st.len() <= 128 && f.usn.len() <= 256);
    }
    if let Ok(d) = parse_description(b, at) {
        for l in d.wan.iter().map(|s| &s.control).chain(d.firewall6.iter()) {
            assert_eq!(l.addr.ip(), at.addr.ip(), "a control URL off the device");
            assert!(l.path.starts_with('/') && l.path.bytes().all(|c| c.is_ascii_graphic()));
        }
        assert!(d.friendly_name.is_none_or(|n| n.chars().count() <= 64 && !n.chars().any(char::is_control)));
    }
    for status in [200, 500] {
        match reply(status, b) {
            Reply::Done { args, .. } => assert!(args.len() <= ARGS_MAX && args.iter().all(|(_, v)| v.len() <= TEXT_MAX)),
            Reply::Fault { description, .. } => assert!(description.chars().count() <= 120),
            Reply::Garbled => {}
        }
    }
    let s = String::from_utf8_lossy(b);
    if let Some(l) = resolve(at, &s) {
        assert!(l.path.starts_with('/') && l.path.bytes().all(|c| c.is_ascii_graphic()), "{l:?}");
    }
}

/// The committed fuzz seeds through the fuzz target's checks.
#[test]
fn fuzz_seeds_hold_the_target_checks() {
    let mut n = 0;
    for e in std::fs::read_dir(SEEDS).unwrap() {
        check(&std::fs::read(e.unwrap().path()).unwrap(), &router());
        n += 1;
    }
    assert!(n >= 10, "seeds in {SEEDS}");
}

/// A router's HTTP server on loopback: answers each connection with the next of `answers` (raw bytes, head and
/// body), after reading the request head and its Content-Length body; `None` never answers.
async fn fake_router(answers: Vec<Option<Vec<u8>>>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        for a in answers {
            let (mut s, _) = l.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()));
                    if got.len() >= end + 4 + len.unwrap_or(0) {
                        // Header names as hyper writes them (lower case; HTTP/1.1 names are case-insensitive).
                        assert!(text.to_ascii_lowercase().contains("\r\nsoapaction: \"urn:schemas-upnp-org:service:wanipconnection:2#"), "{text}");
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            match a {
                Some(a) => {
                    // The client may stop reading (a body over the cap): not the server's failure.
                    let _ = s.write_all(&a).await;
                    let _ = s.shutdown().await;
                }
                None => tokio::time::sleep(Duration::from_secs(30)).await,
            }
        }
    });
    addr
}

fn gateway_at(addr: SocketAddr) -> Gateway {
    let control = Location { addr, path: "/ctl/IPConn".into() };
    let wan = Some(Service { service_type: WAN_SERVICES[0].into(), control });
    Gateway { location: Location { addr, path: "/rootDesc.xml".into() }, description: Description { wan, ..Default::default() } }
}

/// Routers answer with Content-Length, chunked, or a body that ends when they close: all read; a fault is the
/// router's refusal with its code; an answer too large or too slow is no answer.
#[tokio::test]
async fn soap_exchanges_with_a_router() {
    let ip = seed("soap-get-external-ip-miniupnpd.xml");
    let with_length = [format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n", ip.len()).into_bytes(), ip.clone()].concat();
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for c in ip.chunks(50) {
        chunked.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        chunked.extend_from_slice(c);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let until_close = [b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n".to_vec(), ip.clone()].concat();
    let fault = seed("soap-fault-718-miniupnpd.xml");
    let fault = [format!("HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n", fault.len()).into_bytes(), fault].concat();
    let huge = [format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", BODY_MAX + 1).into_bytes(), vec![b' '; BODY_MAX + 1]].concat();
    let html = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found".to_vec();
    let addr = fake_router(vec![Some(with_length), Some(chunked), Some(until_close), Some(fault), Some(huge), Some(html), None]).await;
    let gw = gateway_at(addr);
    for how in ["Content-Length", "chunked", "close-delimited"] {
        assert_eq!(gw.external_address().await, Ok("11.0.0.2".parse().unwrap()), "{how}");
    }
    let refused = gw.add_port_mapping(40000, "192.168.77.10:32400".parse().unwrap(), 7200, "Hearth").await;
    assert_eq!(refused, Err(Failure::Refused { code: 718, description: "ConflictInMappingEntry".into() }));
    assert!(matches!(gw.external_address().await, Err(Failure::Unanswered(e)) if e.contains("larger than 65536 bytes")));
    assert!(matches!(gw.external_address().await, Err(Failure::Unanswered(e)) if e.contains("not SOAP (HTTP 404)")));
    let body = get_external_ip_address(WAN_SERVICES[0]);
    let soap_action = Some(format!("{}#GetExternalIPAddress", WAN_SERVICES[0]));
    let slow = exchange(None, addr, Method::POST, "/ctl/IPConn", soap_action, body, Duration::from_millis(300)).await;
    assert_eq!(slow, Err(format!("no answer from {addr} within 300ms")));
}
