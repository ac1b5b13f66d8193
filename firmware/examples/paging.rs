//! What a page of a 10,000-item library costs the server (issue 20: large libraries page smoothly). Starts a
//! built `hearth` on a generated 10,000-film library and prints the median request time of a page of 100 at
//! `X-Plex-Container-Start=9900` against one at `Start=0`, for the section listing, "Recently added" and search;
//! given a second binary (a peer: e.g. main's build, before the catalog kept its orders), the same for it.
//! Prints only: no assertion on times (DESIGN.md "Tests and benchmarks").
//!
//! `cargo build -p hearth && cargo run -p hearth --example paging -- target/debug/hearth [PEER]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ITEMS: usize = 10_000;
const RUNS: usize = 15;

struct Hearth {
    child: Child,
    addr: String,
    token: String,
}

impl Drop for Hearth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (status, body) of one request on a fresh connection.
fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n");
    if !token.is_empty() {
        raw += &format!("X-Plex-Token: {token}\r\n");
    }
    if method != "GET" {
        raw += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    }
    raw += "\r\n";
    raw += body;
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

fn start(bin: &str, media: &Path) -> (Hearth, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hearth");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let port = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "hearth exited before it listened");
        if let Some(rest) = line.split(" Set it up at http://127.0.0.1:").nth(1) {
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    let addr = format!("127.0.0.1:{port}");
    let (_, v) = request(&addr, "POST", "/api/v1/claim", "", r#"{"name":"Owner","password":"a long owner password"}"#);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    let body = serde_json::json!({"name": "Films", "kind": "movies", "folders": [media]}).to_string();
    let (st, _) = request(&addr, "POST", "/api/v1/libraries", &token, &body);
    assert_eq!(st, 201);
    let began = Instant::now();
    loop {
        let (_, v) = request(&addr, "GET", "/api/v1/libraries", &token, "");
        let v: serde_json::Value = serde_json::from_str(&v).unwrap();
        let l = &v["libraries"][0];
        if l["items"] == ITEMS && l["progress"]["running"] == false {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(300), "the scan did not finish: {l}");
        std::thread::sleep(Duration::from_millis(200));
    }
    (Hearth { child, addr, token }, data)
}

/// Median milliseconds of `path`, or None when the binary does not answer it with 200.
fn median_ms(h: &Hearth, path: &str) -> Option<f64> {
    if request(&h.addr, "GET", path, &h.token, "").0 != 200 {
        return None;
    }
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            request(&h.addr, "GET", path, &h.token, "");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Some(times[RUNS / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(bin) = args.first() else {
        eprintln!("usage: paging PATH/TO/hearth [PEER/hearth]");
        std::process::exit(2);
    };
    let media = tempfile::tempdir().unwrap();
    for i in 0..ITEMS {
        let mut v = b"\0\0\0\x10ftypisom\0\0\x02\0".to_vec();
        v.extend_from_slice(&[7; 64]);
        // Titles out of id order, so title order is not the scan's order.
        std::fs::write(media.path().join(format!("Film {:05} (2001).mp4", (i * 7919) % ITEMS)), &v).unwrap();
    }
    let page = |path: &str, start: usize| format!("{path}{}X-Plex-Container-Start={start}&X-Plex-Container-Size=100", if path.contains('?') { '&' } else { '?' });
    let lists = ["/library/sections/1/all", "/library/recentlyAdded", "/library/all?type=1&title=film"];
    let mut rows: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for list in lists {
        rows.push((page(list, 0), Vec::new()));
        rows.push((page(list, 9900), Vec::new()));
    }
    rows.push(("/hubs/search?query=film%2009&limit=10".into(), Vec::new()));
    let bins: Vec<&String> = args.iter().take(2).collect();
    for bin in &bins {
        let (h, _data) = start(bin, media.path());
        for (path, times) in rows.iter_mut() {
            times.push(median_ms(&h, path));
        }
    }
    println!("{ITEMS} films, pages of 100, median of {RUNS} requests (ms), one request per connection");
    let head: Vec<String> = bins.iter().map(|b| format!("{:>12}", if *b == bin { "hearth" } else { "peer" })).collect();
    println!("{:<90}{}", "request", head.join(""));
    for (path, times) in &rows {
        let cells: Vec<String> =
            times.iter().map(|t| t.map_or_else(|| format!("{:>12}", "n/a"), |t| format!("{t:>12.2}"))).collect();
        println!("{path:<90}{}", cells.join(""));
    }
    for (at, b) in bins.iter().enumerate() {
        let ratio = |list: &str| {
            let t = |s| rows.iter().find(|(p, _)| *p == page(list, s)).and_then(|(_, t)| t[at]);
            Some(t(9900)? / t(0)?)
        };
        let shown: Vec<String> = lists.iter().map(|l| ratio(l).map_or("n/a".into(), |r| format!("{r:.2}"))).collect();
        println!("{b}: start=9900 / start=0 ratio: {}", shown.join(", "));
    }
    if bins.len() == 2 {
        let a = rows.iter().find_map(|(p, t)| (*p == page(lists[0], 9900)).then(|| t[0].zip(t[1]))).flatten();
        if let Some((mine, peer)) = a {
            println!("section page at 9900: hearth {mine:.2} ms vs peer {peer:.2} ms (peer/hearth {:.1}x)", peer / mine);
        }
    }
}
