//! What the integration tests share: the built `hearth serve` as a child process on 127.0.0.1 with its own data
//! folder, as a user runs it, and one-shot HTTP/1.1 requests to it (`Connection: close`, read to the end).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub port: u16,
    pub data: PathBuf,
    /// Hearth's stdout: the lines up to "is running" already read, and the rest.
    printed: String,
    stdout: BufReader<ChildStdout>,
}

/// The port in Hearth's "Hearth X is running. Set it up at http://127.0.0.1:PORT/web/" line.
pub fn listening_port(line: &str) -> Option<u16> {
    line.split(" Set it up at http://127.0.0.1:").nth(1)?.split('/').next()?.parse().ok()
}

impl Server {
    /// `hearth serve --listen 127.0.0.1:0 --data-dir DATA` with `RUST_LOG=warn`; waits until it listens. The
    /// kernel picks the port and Hearth prints it ("... is running. Set it up at http://127.0.0.1:PORT/web/"):
    /// a port picked here and released before Hearth binds it could be taken by a test running beside this one.
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[], &[])
    }

    /// As [`Server::start`], with more serve options (e.g. `--format`) and environment (e.g. `NOTIFY_SOCKET`).
    pub fn start_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(Server::command(data, args, env), data)
    }

    /// As [`Server::start`], allowed to run on the first CPU only: Hearth starts one connection worker per CPU
    /// it may run on, so here every connection shares one worker.
    pub fn start_on_one_core(data: &Path) -> Server {
        use std::os::unix::process::CommandExt;
        let mut cmd = Server::command(data, &[], &[]);
        // SAFETY: sched_setaffinity is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut one = nix::sched::CpuSet::new();
                one.set(0).map_err(std::io::Error::from)?;
                nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).map_err(std::io::Error::from)
            });
        }
        Server::spawn(cmd, data)
    }

    fn command(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    }

    fn spawn(mut cmd: Command, data: &Path) -> Server {
        let mut child = cmd.spawn().expect("start hearth");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        let port = loop {
            let mut line = String::new();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "hearth exited before it listened ({:?}); it printed: {printed}", child.wait());
            printed += &line;
            if line.contains(" is running. ") {
                break listening_port(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
            }
        };
        let addr = format!("127.0.0.1:{port}");
        Server { child, addr, port, data: data.to_owned(), printed, stdout }
    }

    /// Send `raw` as it is; answers (status, head, body bytes).
    pub fn raw(&self, raw: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |p| p + 4);
        let head = String::from_utf8_lossy(&out[..split]).into_owned();
        let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let chunked = head.to_ascii_lowercase().contains("\r\ntransfer-encoding: chunked");
        (status, head, if chunked { dechunk(&out[split..]) } else { out[split..].to_vec() })
    }

    /// One request with `headers` (a `Host` is added unless given) and an optional JSON body; answers (status,
    /// lower-cased head, body as text).
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, String, String) {
        let host = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) { "" } else { "Host: 127.0.0.1\r\n" };
        let mut raw = format!("{method} {path} HTTP/1.1\r\n{host}Connection: close\r\n");
        for (k, v) in headers {
            raw += &format!("{k}: {v}\r\n");
        }
        let body = body.unwrap_or("");
        if !body.is_empty() || method != "GET" {
            raw += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len());
        }
        raw += "\r\n";
        raw += body;
        let (status, head, body) = self.raw(raw.as_bytes());
        (status, head.to_ascii_lowercase(), String::from_utf8_lossy(&body).into_owned())
    }

    /// [`Server::call`] as an API client: `Accept: application/json`; the body parsed (Null when not JSON).
    pub fn json(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> (u16, Value) {
        let mut h = vec![("Accept", "application/json")];
        h.extend_from_slice(headers);
        let (status, _, text) = self.call(method, path, &h, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Claim the server as owner `name` from this (loopback, so LAN) client; the owner's token.
    pub fn claim(&self, name: &str, password: &str) -> String {
        let body = serde_json::json!({ "name": name, "password": password }).to_string();
        let (st, v) = self.json("POST", "/api/v1/claim", &[("X-Plex-Client-Identifier", "t1")], Some(&body));
        assert_eq!(st, 201, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// Wait (at most 30 s) until library `id` lists `items` items and no scan runs, as `GET /api/v1/libraries`
    /// shows it to `token`; that library's entry.
    pub fn library_ready(&self, token: &str, id: u64, items: u64) -> Value {
        wait_for(&format!("library {id} to list {items} items"), 30, || {
            let (_, v) = self.json("GET", "/api/v1/libraries", &[("X-Plex-Token", token)], None);
            let l = v["libraries"].as_array()?.iter().find(|l| l["id"] == id)?.clone();
            (l["items"] == items && l["progress"]["running"] == false).then_some(l)
        })
    }

    /// Wait (at most 30 s) until section `section` lists an item with a media part, as `token` sees it (no
    /// token: the request carries none); the first part's key.
    pub fn first_part(&self, token: Option<&str>, section: u64) -> String {
        let auth: Vec<(&str, &str)> = token.map(|t| ("X-Plex-Token", t)).into_iter().collect();
        wait_for(&format!("section {section} to list a part"), 30, || {
            let (_, v) = self.json("GET", &format!("/library/sections/{section}/all"), &auth, None);
            Some(v["MediaContainer"]["Metadata"][0]["Media"][0]["Part"][0]["key"].as_str()?.to_owned())
        })
    }

    /// `GET /api/v1/system` as the owner (must answer 200).
    pub fn system(&self, token: &str) -> Value {
        let (st, v) = self.json("GET", "/api/v1/system", &[("X-Plex-Token", token)], None);
        assert_eq!(st, 200, "{v}");
        v
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// SIGTERM and wait (the clean stop flushes the store); the exit status and everything printed on stdout.
    pub fn stop(mut self) -> (i32, String) {
        self.signal(nix::sys::signal::SIGTERM);
        let status = self.child.wait().unwrap();
        let mut out = std::mem::take(&mut self.printed);
        self.stdout.read_to_string(&mut out).unwrap();
        (status.code().unwrap_or(-1), out)
    }

    /// [`Server::stop`], which must exit 0.
    pub fn stop_cleanly(self) {
        let (code, out) = self.stop();
        assert_eq!(code, 0, "hearth exited with {code}; it printed: {out}");
    }

    /// SIGKILL: the process ends without its clean stop, like a power cut.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ask `done` every 20 ms until it answers `Some`, for at most `secs` seconds: how a test waits for something the
/// server does in the background (a scan, a status change). After the deadline it fails saying "waited for `what`".
pub fn wait_for<T>(what: &str, secs: u64, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Undo `Transfer-Encoding: chunked` (RFC 9112 §7.1; no trailers): streamed answers such as long listings.
pub fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end]).ok().and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|&n| n > 0 && rest.len() >= end + 2 + n) else { break };
        out.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = rest.get(end + 4 + size..).unwrap_or_default();
    }
    out
}

/// Change the stored settings before the server starts (the data folder is opened through the library).
pub fn preset(dir: &Path, change: impl FnOnce(&mut hearth::state::State) + Send + 'static) {
    let cfg = hearth::serve::Config { data_dir: dir.to_owned(), ..Default::default() };
    let opening = hearth::serve::open_data(&cfg).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        opening
            .handle
            .update(|s| {
                change(s);
                Ok::<_, std::convert::Infallible>(())
            })
            .await
            .unwrap();
        opening.handle.flush().await;
    });
    opening.handle.shutdown();
}

/// `hearth recover --password-stdin` on the console for the data folder `dir`, typing `password`.
pub fn recover(dir: &Path, password: &str) -> std::process::Output {
    let mut rec = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["recover", "--password-stdin", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rec.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    rec.wait_with_output().unwrap()
}

/// Hearth's HTTP listener in this process, on 127.0.0.1 (the kernel picks the port), over a state store in a
/// temporary folder: for tests that reach inside (the state handle, the context) instead of running the binary.
pub struct InProcess {
    pub addr: std::net::SocketAddr,
    pub handle: hearth::state::Handle,
    pub ctx: std::sync::Arc<hearth::http::Ctx>,
    /// Dropping it stops the listener; [`InProcess::stopping`] hands receivers to other tasks.
    stop: tokio::sync::watch::Sender<bool>,
    pub dir: tempfile::TempDir,
}

/// The owner account the in-process servers are claimed with (id 1, "owner"; a password no test signs in with).
pub fn test_owner() -> hearth::state::Account {
    hearth::state::Account {
        id: 1,
        role: hearth::state::Role::Owner,
        name: hearth::state::bounded("name", "owner").unwrap(),
        password: Some(hearth::state::Secret { salt: [1; 16], hash: [2; 16] }),
        pin: None,
        shares: Default::default(),
        created: 0,
    }
}

impl InProcess {
    /// Start the store (a 128 KiB NOR file), the state handle with `state`, and `http::serve` on 127.0.0.1:0.
    /// Must run inside a tokio runtime.
    pub async fn start(state: hearth::state::State) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let flash = hearth::store::NorFile::open_or_create(&dir.path().join("flash.img"), 128 * 1024, 4096).unwrap();
        let (store, _) = hearth::store::Store::open(flash).unwrap();
        let handle = hearth::state::Handle::start(store, state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = std::sync::Arc::new(hearth::http::Ctx::new(handle.clone(), false, dir.path().to_path_buf()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(hearth::http::serve(listener, ctx.clone(), stop_rx));
        InProcess { addr, handle, ctx, stop, dir }
    }

    /// A receiver that sees the listener's stop: for tasks started beside it (the remote-access task).
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stop.subscribe()
    }
}
