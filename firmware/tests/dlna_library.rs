//! DLNA over the real library catalog: the catalog `hearth serve` builds (`http::Ctx::new`: index file, scanner
//! probing MP4 headers, watcher) is what ContentDirectory Browse shows: the probed duration in the `res`
//! element, and the same item id in the res URL as in the Plex API's part URL. The Plex side is asked over
//! HTTP (the real listener and router, in process); the DLNA side through the ContentDirectory action handler
//! that 32469 runs (the fixed port 32469 itself is left to tests/dlna/run, in its own namespaces).

mod common;

use hearth::dlna::content::{CDS, content_directory};
use hearth::dlna::soap::Action;
use hearth::dlna::view::View;
use hearth::state::{Folder, Library, LibraryKind, State, bounded};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// A real MP4, written by the `mp4` crate's muxer: one H.264 video track of `seconds` one-second samples.
fn real_mp4(path: &Path, seconds: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let config = mp4::Mp4Config {
        major_brand: "isom".parse().unwrap(),
        minor_version: 512,
        compatible_brands: vec!["isom".parse().unwrap(), "avc1".parse().unwrap()],
        timescale: 1000,
    };
    let mut w = mp4::Mp4Writer::write_start(file, &config).unwrap();
    w.add_track(&mp4::TrackConfig {
        track_type: mp4::TrackType::Video,
        timescale: 1000,
        language: "und".into(),
        media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
            width: 64,
            height: 48,
            seq_param_set: vec![0x67, 0x42, 0xC0, 0x0A],
            pic_param_set: vec![0x68, 0xCE, 0x3C, 0x80],
        }),
    })
    .unwrap();
    for s in 0..seconds {
        let sample = mp4::Mp4Sample {
            start_time: s as u64 * 1000,
            duration: 1000,
            rendering_offset: 0,
            is_sync: true,
            bytes: bytes::Bytes::from(vec![0x65; 200]),
        };
        w.write_sample(1, &sample).unwrap();
    }
    w.write_end().unwrap();
}

/// One request on a fresh connection: (status, body).
fn request(addr: &str, raw: String) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&all[..split]);
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = &all[split + 4..];
    if head.to_ascii_lowercase().contains("\r\ntransfer-encoding: chunked") {
        // The unpaged listing is streamed (R-F5).
        let mut out = Vec::new();
        let mut rest = body;
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + n]);
            rest = &rest[end + 4 + n..];
        }
        return (code, out);
    }
    (code, body.to_vec())
}

fn json(code_body: (u16, Vec<u8>)) -> serde_json::Value {
    let (code, body) = code_body;
    assert!((200..300).contains(&code), "{code}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn browse_children(view: &View, id: &str) -> String {
    let args = [("ObjectID", id), ("BrowseFlag", "BrowseDirectChildren"), ("Filter", "*"), ("StartingIndex", "0"), ("RequestedCount", "0"), ("SortCriteria", "")];
    let a = Action { service: CDS.into(), name: "Browse".into(), args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    let r = content_directory(&a, view, "http://10.0.0.1:32469").unwrap();
    // The DIDL-Lite document travels as escaped text inside <Result>.
    let didl = r.split("<Result>").nth(1).unwrap().split("</Result>").next().unwrap();
    didl.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlna_browse_shows_the_catalogs_probed_duration_and_plex_item_id() {
    let t = tempfile::tempdir().unwrap();
    let films = t.path().join("films");
    real_mp4(&films.join("Big.Buck.Bunny.2008.mp4"), 3);
    let mut s = State::new([7; 16]);
    s.libraries.push(Library { id: 1, kind: LibraryKind::Movies, name: bounded("name", "Films").unwrap() }).unwrap();
    s.folders.push(Folder { library: 1, path: bounded("path", films.to_str().unwrap()).unwrap() }).unwrap();
    // The context exactly as `hearth serve` makes it (tests/common): opens the catalog and starts its first scan.
    let srv = common::InProcess::start(s).await;
    let (handle, ctx, addr) = (srv.handle.clone(), srv.ctx.clone(), srv.addr.to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    while ctx.library.progress_of(1).scans.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the first scan never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let plex_id = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let body = r#"{"name":"Owner","password":"films and shows"}"#;
            let claim = json(request(&addr, format!("POST /api/v1/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())));
            let token = claim["token"].as_str().unwrap().to_string();
            let all = json(request(&addr, format!("GET /library/sections/1/all HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Plex-Token: {token}\r\nAccept: application/json\r\nConnection: close\r\n\r\n")));
            let item = &all["MediaContainer"]["Metadata"][0];
            assert_eq!(item["title"], "Big Buck Bunny", "{all}");
            assert_eq!(item["Media"][0]["duration"], 3000, "the Plex API shows the probed duration: {all}");
            let key = item["Media"][0]["Part"][0]["key"].as_str().unwrap().to_string();
            // /library/parts/{id}/{mtime}/file.mp4
            key.split('/').nth(3).unwrap().parse::<u64>().unwrap()
        })
        .await
        .unwrap()
    };

    let state = handle.snapshot();
    let libraries = hearth::dlna::visible_libraries(&state);
    let view = View::build(&libraries, &*ctx.library, 1);
    let films = browse_children(&view, "L1");
    assert!(films.contains("<dc:title>Big Buck Bunny</dc:title>"), "{films}");
    assert!(films.contains("object.item.videoItem.movie"), "{films}");
    assert!(films.contains("duration=\"0:00:03.000\""), "the res element carries the probed duration: {films}");
    assert!(films.contains(":video/mp4:"), "{films}");
    assert!(films.contains(&format!("<item id=\"i{plex_id:016x}\"")), "the DLNA item id is the Plex item id {plex_id}: {films}");
    assert!(films.contains(&format!("/res/{plex_id:016x}.mp4</res>")), "the res URL carries the Plex item id {plex_id}: {films}");

    // A second file: the catalog's generation moves (the DLNA view is rebuilt on it) and the old id stays.
    let before = hearth::dlna::catalog::Catalog::generation(&*ctx.library);
    // Written beside the folder, then moved in whole (as a copy tool finishing would), so no scan sees half a file.
    let part = t.path().join("Metropolis.part");
    real_mp4(&part, 2);
    std::fs::rename(&part, t.path().join("films/Metropolis (1927).mp4")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while hearth::dlna::catalog::Catalog::generation(&*ctx.library) == before {
        assert!(Instant::now() < deadline, "the watcher's rescan never changed the catalog's generation");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let view = View::build(&libraries, &*ctx.library, 2);
    let films = browse_children(&view, "L1");
    assert!(films.contains("duration=\"0:00:02.000\"") && films.contains("<dc:title>Metropolis</dc:title>"), "{films}");
    assert!(films.contains(&format!("<item id=\"i{plex_id:016x}\"")), "{films}");
    // A rescan that finds everything as it was leaves the generation alone (no needless SystemUpdateID bumps).
    let settled = hearth::dlna::catalog::Catalog::generation(&*ctx.library);
    ctx.library.scan_now(1);
    assert_eq!(hearth::dlna::catalog::Catalog::generation(&*ctx.library), settled);

    drop(srv);
}
