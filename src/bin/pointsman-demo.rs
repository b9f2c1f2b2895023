//! `pointsman-demo`: a tiny HTTP/1.1 backend for demos, integration tests and benchmarks.
//!
//! It stands in for "the app" behind Traefik in blue/green releases: every response says which
//! slot and version served it, so a test (or a person with `curl`) can see where traffic went.
//! It uses only `std`, so it links statically (`-C target-feature=+crt-static`) and runs as the
//! only file of a `FROM scratch` image, where it is also its own healthcheck command.
//!
//! Subcommands (default `serve`):
//! - `serve`: listen on `0.0.0.0:$PORT` (default 80). Any path (but `/status/CODE`) answers `200`,
//!   `Content-Type: text/plain`, `X-Slot: $SLOT`, `X-Version: $VERSION`, body `"$SLOT $VERSION\n"`
//!   (`SLOT` defaults to the hostname from `/etc/hostname`, else `unknown`; `VERSION` to `v1`).
//!   `GET /healthz` answers `200 ok`, or `503 unhealthy` while the file `$HEALTH_FILE`
//!   (default `/tmp/pointsman-demo-unhealthy`) exists. HTTP/1.1 keep-alive and pipelining work,
//!   request bodies may be sized by `Content-Length` or chunked; one thread per connection;
//!   idle connections are closed after 60 s.
//! - `check`: exit 0 if `GET http://127.0.0.1:$PORT/healthz` answers 200 within 2 s, else 1
//!   (for `HEALTHCHECK CMD ["/pointsman-demo","check"]`: a scratch image has no shell or curl).
//! - `fail` / `recover`: create / remove `$HEALTH_FILE`, so a test can run
//!   `docker exec C /pointsman-demo fail` to make the container unhealthy.
//! - `mode [error=PERCENT] [latency=MS]`: change how `serve` misbehaves, at runtime (below).
//!   Keys not given keep their current value; `mode reset` goes back to the environment's;
//!   `mode` alone prints the current mode file.
//!
//! Misbehaving on purpose, so canary analysis has something to catch. Only *app requests*
//! misbehave and are counted: every request except `/healthz` (Docker's healthcheck stays
//! truthful) and `/stats`.
//! - `ERROR_PERCENT` (0–100, decimals allowed, default 0): that share of app requests answers
//!   `500 Internal Server Error` (same headers and body as a 200, plus
//!   `X-Demo-Error: injected`). The spread is deterministic, not random: app request number `n`
//!   (counted from 1 since start) fails when `floor(n·P/100)` moves past `floor((n-1)·P/100)`,
//!   so 5 % is exactly every 20th request and any window of N requests holds
//!   `N·P/100` errors, ±1.
//! - `LATENCY_MS` (default 0): the server sleeps that long before answering an app request.
//! - `GET /status/CODE` (CODE from 200 to 599) answers that status, with the usual headers and
//!   body, whatever the mode: a request that fails on purpose, for the visitor who sends it
//!   only (so a test can make one route's requests fail while the others succeed). It is an app
//!   request (counted in `requests`, slowed by the latency), not an injected error.
//! - `$MODE_FILE` (default `/tmp/pointsman-demo-mode`), written by the `mode` subcommand
//!   (atomically, by a rename), holds `error=P latency=MS`; each app request reads it, and a key
//!   it holds overrides the environment's value. So `docker exec C /pointsman-demo mode error=5`
//!   turns a healthy candidate bad without a restart (a restart would change its health and
//!   its routing, which is what a test wants to keep still).
//! - `GET /stats` answers `{"requests":N,"errors":E,"bodies":B,"body_bytes":X,
//!   "error_percent":P,"latency_ms":L}`: app requests served since start, how many answered an
//!   injected 500, how many carried a non-empty body and its total size, and the mode in
//!   force. Traefik's mirroring discards the mirror's answers, so these counters are how a test
//!   sees how many mirrored copies (and which bodies) a candidate received.
//!
//! Shutdown: as PID 1 of a container the process gets no default signal actions, so SIGTERM and
//! SIGINT handlers are installed through libc's `signal()` (already linked by std; no crate
//! dependency). After the signal, responses carry `Connection: close` and the process exits with
//! status 0 as soon as no request is being handled, or after `SHUTDOWN_TIMEOUT_MS`
//! (default 1000) at most; with `DRAIN_MS` it first keeps serving (new connections too) for that
//! long, as an app behind a load balancer should while the balancer takes it out of the pool. Idle keep-alive connections are simply closed by the exit. Until the
//! signal the main thread sleeps in a blocking read that the handler ends (a self-pipe), so an
//! idle container uses no CPU at all (a thousand of them polling every 20 ms took both cores of
//! the benchmark machine).

use std::env;
use std::fmt;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_HEALTH_FILE: &str = "/tmp/pointsman-demo-unhealthy";
const DEFAULT_MODE_FILE: &str = "/tmp/pointsman-demo-mode";
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 16 * 1024;

static STOPPING: AtomicBool = AtomicBool::new(false);
/// The write end of the self-pipe the signal handler wakes the main thread through.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static WAKE_BYTE: u8 = 1;
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let cmd = args.next().unwrap_or_else(|| "serve".to_string());
    let result = match cmd.as_str() {
        "serve" => serve(),
        "check" => return if check() { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        "fail" => fail(),
        "recover" => recover(),
        "mode" => mode(&args.collect::<Vec<_>>()),
        "-h" | "--help" | "help" => {
            println!(
                "usage: pointsman-demo [serve|check|fail|recover|mode [error=PERCENT] [latency=MS]|mode reset]\n\
                 env: PORT SLOT VERSION HEALTH_FILE MODE_FILE ERROR_PERCENT LATENCY_MS DRAIN_MS SHUTDOWN_TIMEOUT_MS"
            );
            Ok(())
        }
        other => {
            eprintln!("pointsman-demo: unknown command {other:?} (serve, check, fail, recover, mode)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pointsman-demo {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn port() -> u16 {
    env::var("PORT").ok().and_then(|p| p.trim().parse().ok()).unwrap_or(80)
}

fn file_from_env(var: &str, default: &str) -> PathBuf {
    env::var_os(var).map(PathBuf::from).unwrap_or_else(|| default.into())
}

fn health_file() -> PathBuf {
    file_from_env("HEALTH_FILE", DEFAULT_HEALTH_FILE)
}

fn mode_file() -> PathBuf {
    file_from_env("MODE_FILE", DEFAULT_MODE_FILE)
}

fn fail() -> io::Result<()> {
    let path = health_file();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, b"unhealthy\n")
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn recover() -> io::Result<()> {
    remove_if_present(&health_file())
}

/// Health probe used by Docker's HEALTHCHECK.
fn check() -> bool {
    let probe = || -> io::Result<bool> {
        let timeout = Duration::from_secs(2);
        let addr = ([127, 0, 0, 1], port()).into();
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    probe().unwrap_or(false)
}

// ---- modes: injected errors and latency ------------------------------------------------------

/// How app requests misbehave. `None`: not set here (the next layer's value applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mode {
    /// Share of app requests answering 500, in hundredths of a percent (0..=10_000).
    error_bp: Option<u64>,
    latency_ms: Option<u64>,
}

impl Mode {
    fn from_env() -> Result<Mode, String> {
        let mut mode = Mode::default();
        if let Ok(v) = env::var("ERROR_PERCENT") {
            mode.set("error", &v).map_err(|e| format!("ERROR_PERCENT: {e}"))?;
        }
        if let Ok(v) = env::var("LATENCY_MS") {
            mode.set("latency", &v).map_err(|e| format!("LATENCY_MS: {e}"))?;
        }
        Ok(mode)
    }

    /// `error=5 latency=200` (the mode file's text and the `mode` subcommand's arguments).
    fn parse(text: &str) -> Result<Mode, String> {
        let mut mode = Mode::default();
        mode.apply(text.split_whitespace())?;
        Ok(mode)
    }

    fn apply<'a>(&mut self, words: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not KEY=VALUE (error=PERCENT, latency=MS)"))?;
            self.set(key, value)?;
        }
        Ok(())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match key {
            "error" => {
                let p: f64 = value
                    .trim_end_matches('%')
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=100.0).contains(p))
                    .ok_or_else(|| format!("error={value:?} is not a percentage from 0 to 100"))?;
                self.error_bp = Some((p * 100.0).round() as u64);
            }
            "latency" => {
                let ms = value
                    .trim_end_matches("ms")
                    .parse()
                    .map_err(|_| format!("latency={value:?} is not a number of milliseconds"))?;
                self.latency_ms = Some(ms);
            }
            other => return Err(format!("unknown mode key {other:?} (error=PERCENT, latency=MS)")),
        }
        Ok(())
    }

    /// `self`'s values where set, else `base`'s.
    fn over(self, base: Mode) -> Mode {
        Mode {
            error_bp: self.error_bp.or(base.error_bp),
            latency_ms: self.latency_ms.or(base.latency_ms),
        }
    }

    fn error_bp(&self) -> u64 {
        self.error_bp.unwrap_or(0)
    }

    fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.unwrap_or(0))
    }

    /// Whether app request number `n` (from 1) fails: the error count `floor(n·P)` steps up.
    fn fails(&self, n: u64) -> bool {
        let bp = self.error_bp();
        n * bp / 10_000 > (n - 1) * bp / 10_000
    }
}

/// A percentage in hundredths, printed without trailing zeros (`5`, `2.5`, `0.25`).
struct Percent(u64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}"),
            f10 if f10 % 10 == 0 => write!(f, "{whole}.{}", f10 / 10),
            _ => write!(f, "{whole}.{frac:02}"),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(bp) = self.error_bp {
            write!(f, "error={}", Percent(bp))?;
            sep = " ";
        }
        if let Some(ms) = self.latency_ms {
            write!(f, "{sep}latency={ms}")?;
        }
        Ok(())
    }
}

/// The mode file's mode; an absent file sets nothing. Unreadable or invalid: also nothing,
/// and `serve` says why on stderr (the `mode` subcommand never writes an invalid file).
fn read_mode_file(path: &Path) -> Result<Mode, String> {
    match fs::read_to_string(path) {
        Ok(text) => Mode::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Mode::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// `mode [KEY=VALUE…]`: merge into the mode file (written by a rename, so `serve` never reads
/// half a file); `mode reset`: remove it; `mode`: print it.
fn mode(args: &[String]) -> io::Result<()> {
    let path = mode_file();
    let invalid = |e: String| io::Error::new(ErrorKind::InvalidInput, e);
    match args {
        [] => {
            println!("{}", read_mode_file(&path).map_err(invalid)?);
            Ok(())
        }
        [reset] if reset == "reset" => remove_if_present(&path),
        words => {
            let mut mode = read_mode_file(&path).unwrap_or_default();
            mode.apply(words.iter().map(String::as_str)).map_err(invalid)?;
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
            fs::write(&tmp, format!("{mode}\n"))?;
            fs::rename(&tmp, &path)
        }
    }
}

// ---- signals: std has no API, but libc is linked anyway --------------------------------------
// The only `unsafe` of this test tool (Cargo.toml denies it elsewhere): two libc calls.

#[allow(unsafe_code)]
unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

#[allow(unsafe_code)]
extern "C" fn on_stop_signal(_: i32) {
    STOPPING.store(true, Ordering::SeqCst); // an atomic store is async-signal-safe
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the descriptor stays open for the process's
        // life and is non-blocking, so a full buffer (many signals) cannot block the handler.
        unsafe { write(fd, &WAKE_BYTE, 1) };
    }
}

/// Installs the handlers; returns the read end of the self-pipe they write to.
#[allow(unsafe_code)]
fn install_signal_handlers() -> io::Result<UnixStream> {
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    let (wake, tx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    WAKE_FD.store(tx.into_raw_fd(), Ordering::SeqCst);
    // SAFETY: the handler only stores to atomics and calls write(2).
    unsafe {
        signal(SIGINT, on_stop_signal);
        signal(SIGTERM, on_stop_signal);
    }
    Ok(wake)
}

// ---- server ----------------------------------------------------------------------------------

/// What every connection thread shares: fixed response bytes, the files to look at, counters.
struct Server {
    slot: String,
    version: String,
    /// The main response with and without keep-alive, prepared once.
    keep_alive: Vec<u8>,
    close: Vec<u8>,
    body_len: usize,
    health_file: PathBuf,
    mode_file: PathBuf,
    env_mode: Mode,
    /// App requests (not /healthz, not /stats) since start; also numbers them for the spread.
    requests: AtomicU64,
    errors: AtomicU64,
    bodies: AtomicU64,
    body_bytes: AtomicU64,
    /// The last mode-file problem reported, so a bad file is reported once, not per request.
    mode_problem: std::sync::Mutex<Option<String>>,
}

impl Server {
    fn mode(&self) -> Mode {
        let file = read_mode_file(&self.mode_file);
        let mut reported = self.mode_problem.lock().unwrap_or_else(|e| e.into_inner());
        match file {
            Ok(m) => {
                *reported = None;
                m.over(self.env_mode)
            }
            Err(e) => {
                if reported.as_deref() != Some(e.as_str()) {
                    eprintln!("pointsman-demo: ignoring the mode file: {e}");
                    *reported = Some(e);
                }
                self.env_mode
            }
        }
    }

    fn stats_json(&self) -> String {
        let mode = self.mode();
        format!(
            "{{\"requests\":{},\"errors\":{},\"bodies\":{},\"body_bytes\":{},\"error_percent\":{},\"latency_ms\":{}}}\n",
            self.requests.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            self.bodies.load(Ordering::SeqCst),
            self.body_bytes.load(Ordering::SeqCst),
            Percent(mode.error_bp()),
            mode.latency().as_millis(),
        )
    }
}

fn serve() -> io::Result<()> {
    let mut wake = install_signal_handlers()?;
    let env_mode = Mode::from_env().map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
    let slot = env::var("SLOT").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
        fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    });
    let version = env::var("VERSION")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "v1".into());
    let body = format!("{slot} {version}\n");
    let head = |conn: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slot: {slot}\r\nX-Version: {version}\r\n\
             Content-Length: {}\r\nConnection: {conn}\r\n\r\n",
            body.len()
        )
    };
    let server = Arc::new(Server {
        keep_alive: [head("keep-alive").as_bytes(), body.as_bytes()].concat(),
        close: [head("close").as_bytes(), body.as_bytes()].concat(),
        body_len: body.len(),
        slot,
        version,
        health_file: health_file(),
        mode_file: mode_file(),
        env_mode,
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        bodies: AtomicU64::new(0),
        body_bytes: AtomicU64::new(0),
        mode_problem: Default::default(),
    });

    let listener = TcpListener::bind(("0.0.0.0", port()))?;
    eprintln!(
        "pointsman-demo: slot={} version={} mode=[{}] listening on {}",
        server.slot,
        server.version,
        server.mode(),
        listener.local_addr()?
    );

    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(stream) = conn else { continue };
            let server = server.clone();
            thread::spawn(move || {
                let _ = handle(stream, &server);
            });
        }
    });

    let mut byte = [0u8; 1];
    while !STOPPING.load(Ordering::SeqCst) {
        match wake.read(&mut byte) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => thread::sleep(Duration::from_millis(20)), // not expected; never spin
        }
    }
    // DRAIN_MS: keep serving (new connections too) this long after the signal, as an app
    // behind a load balancer should while the balancer takes it out of the pool.
    let drain = env::var("DRAIN_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if drain > 0 {
        eprintln!("pointsman-demo: draining for {drain} ms");
        thread::sleep(Duration::from_millis(drain));
    }
    let timeout = env::var("SHUTDOWN_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let deadline = Instant::now() + Duration::from_millis(timeout);
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    eprintln!("pointsman-demo: stopping");
    Ok(())
}

/// Serves requests on one connection until the client closes, asks to close, or idles out.
fn handle(mut stream: TcpStream, server: &Server) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until a complete request head is buffered (pipelined requests stay in `buf`).
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > MAX_HEAD {
                stream.write_all(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        let result = respond(&mut stream, &mut buf, head_end, &mut chunk, server);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if !result? {
            let _ = stream.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Reads into `buf` until `complete(buf)` finds the whole message (None: the peer closed first).
fn read_until<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    mut complete: impl FnMut(&[u8]) -> Result<Option<T>, String>,
) -> io::Result<Option<T>> {
    loop {
        if let Some(n) = complete(buf).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))? {
            return Ok(Some(n));
        }
        match stream.read(chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A chunked body at the start of `data`: `Some((bytes it spans, payload size))` once complete.
fn chunked_body(data: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let (mut pos, mut payload) = (0usize, 0usize);
    loop {
        let Some(eol) = find(&data[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&data[pos..pos + eol]);
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(eol) = find(&data[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((pos, payload)));
                }
            }
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
        payload += size;
    }
}

/// Answers the request whose head is `buf[..head_end]`; returns whether to keep the connection.
fn respond(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_end: usize,
    chunk: &mut [u8],
    server: &Server,
) -> io::Result<bool> {
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (method, target, proto) = (
        request_line.next().unwrap_or(""),
        request_line.next().unwrap_or(""),
        request_line.next().unwrap_or(""),
    );
    let (mut content_length, mut chunked, mut conn_close, mut conn_keep) = (0usize, false, false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = !value.eq_ignore_ascii_case("identity");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                conn_close |= token.trim().eq_ignore_ascii_case("close");
                conn_keep |= token.trim().eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    if !proto.starts_with("HTTP/1.") {
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(false);
    }
    // Consume the head and the request body, keeping pipelined bytes that follow.
    let (span, payload) = if chunked {
        match read_until(stream, buf, chunk, |b| chunked_body(&b[head_end..])) {
            Ok(Some(span_and_payload)) => span_and_payload,
            Ok(None) => return Ok(false),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    } else {
        let wanted = head_end + content_length;
        if read_until(stream, buf, chunk, |b| Ok((b.len() >= wanted).then_some(wanted)))?.is_none() {
            return Ok(false);
        }
        (content_length, content_length)
    };
    buf.drain(..head_end + span);

    let keep = !STOPPING.load(Ordering::SeqCst) && !conn_close && (proto == "HTTP/1.1" || conn_keep);
    let connection = if keep { "keep-alive" } else { "close" };
    let head_only = method == "HEAD";
    let path = target.split('?').next().unwrap_or("");
    let small = |status: &str, content_type: &str, body: &str| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        );
        if !head_only {
            out.push_str(body);
        }
        out.into_bytes()
    };
    if path == "/healthz" {
        let out = if server.health_file.exists() {
            small("503 Service Unavailable", "text/plain", "unhealthy\n")
        } else {
            small("200 OK", "text/plain", "ok\n")
        };
        stream.write_all(&out)?;
        return Ok(keep);
    }
    if path == "/stats" {
        stream.write_all(&small("200 OK", "application/json", &server.stats_json()))?;
        return Ok(keep);
    }

    // An app request: counted, and maybe slowed down or failed as the mode says.
    let n = server.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if payload > 0 {
        server.bodies.fetch_add(1, Ordering::SeqCst);
        server.body_bytes.fetch_add(payload as u64, Ordering::SeqCst);
    }
    let mode = server.mode();
    if !mode.latency().is_zero() {
        thread::sleep(mode.latency());
    }
    let full = if keep { &server.keep_alive } else { &server.close };
    let len = if head_only {
        full.len() - server.body_len
    } else {
        full.len()
    };
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\n";
    if let Some(code) = asked_status(path) {
        let mut out = format!("HTTP/1.1 {code} {}\r\n", reason(code)).into_bytes();
        out.extend_from_slice(&full[OK.len()..len]);
        stream.write_all(&out)?;
    } else if mode.fails(n) {
        server.errors.fetch_add(1, Ordering::SeqCst);
        let mut out = b"HTTP/1.1 500 Internal Server Error\r\nX-Demo-Error: injected\r\n".to_vec();
        out.extend_from_slice(&full[OK.len()..len]);
        stream.write_all(&out)?;
    } else {
        stream.write_all(&full[..len])?;
    }
    Ok(keep)
}

/// The status `/status/CODE` asks for, if the path is that and CODE is from 200 to 599.
fn asked_status(path: &str) -> Option<u16> {
    let code: u16 = path.strip_prefix("/status/")?.parse().ok()?;
    (200..=599).contains(&code).then_some(code)
}

/// A reason phrase for a status line (clients read the code; the phrase is for people).
fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_spread_evenly_and_exactly() {
        let mode = Mode::parse("error=5").unwrap();
        let failing: Vec<u64> = (1..=100).filter(|&n| mode.fails(n)).collect();
        assert_eq!(failing, [20, 40, 60, 80, 100]);
        for p in ["0", "2.5", "10", "33.33", "100"] {
            let mode = Mode::parse(&format!("error={p}")).unwrap();
            let errors = (1..=2000).filter(|&n| mode.fails(n)).count() as f64;
            assert!(
                (errors - 20.0 * p.parse::<f64>().unwrap()).abs() <= 1.0,
                "{p}: {errors}"
            );
            // Any window holds its share, ±1.
            let window = (701..=900).filter(|&n| mode.fails(n)).count() as f64;
            assert!((window - 2.0 * p.parse::<f64>().unwrap()).abs() <= 1.0, "{p}: {window}");
        }
    }

    #[test]
    fn modes_parse_merge_and_print() {
        let mut m = Mode::parse("error=5% latency=200ms").unwrap();
        assert_eq!((m.error_bp, m.latency_ms), (Some(500), Some(200)));
        m.apply(["error=0.25"]).unwrap();
        assert_eq!(m.to_string(), "error=0.25 latency=200");
        assert_eq!(Mode::parse(&m.to_string()), Ok(m));
        assert_eq!(Mode::parse("latency=7").unwrap().to_string(), "latency=7");
        let env = Mode::parse("error=1 latency=9").unwrap();
        assert_eq!(
            Mode::parse("latency=0").unwrap().over(env).to_string(),
            "error=1 latency=0"
        );
        assert!(Mode::parse("error=101").is_err());
        assert!(Mode::parse("error=-1").is_err());
        assert!(Mode::parse("latency=fast").is_err());
        assert!(Mode::parse("speed=1").unwrap_err().contains("unknown mode key"));
        assert!(Mode::parse("error").is_err());
    }

    #[test]
    fn a_status_path_asks_for_its_code_and_nothing_else_does() {
        assert_eq!(asked_status("/status/500"), Some(500));
        assert_eq!(asked_status("/status/200"), Some(200));
        assert_eq!(asked_status("/status/599"), Some(599));
        for path in [
            "/status/",
            "/status/199",
            "/status/600",
            "/status/5x0",
            "/",
            "/statuses/500",
        ] {
            assert_eq!(asked_status(path), None, "{path}");
        }
    }

    #[test]
    fn chunked_bodies_are_measured_once_complete() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1";
        assert_eq!(chunked_body(body), Ok(Some((body.len() - 14, 11))));
        assert_eq!(chunked_body(&body[..10]), Ok(None));
        assert_eq!(chunked_body(b"0\r\n\r\n"), Ok(Some((5, 0))));
        assert!(chunked_body(b"zz\r\n").is_err());
    }
}
