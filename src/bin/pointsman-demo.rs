//! `pointsman-demo`: a tiny HTTP/1.1 backend for demos, integration tests and benchmarks.
//!
//! It stands in for "the app" behind Traefik in blue/green releases: every response says which
//! slot and version served it, so a test (or a person with `curl`) can see where traffic went.
//! It uses only `std`, so it links statically (`-C target-feature=+crt-static`) and runs as the
//! only file of a `FROM scratch` image, where it is also its own healthcheck command.
//!
//! Subcommands (default `serve`):
//! - `serve`: listen on `0.0.0.0:$PORT` (default 80). Any path answers `200`,
//!   `Content-Type: text/plain`, `X-Slot: $SLOT`, `X-Version: $VERSION`, body `"$SLOT $VERSION\n"`
//!   (`SLOT` defaults to the hostname from `/etc/hostname`, else `unknown`; `VERSION` to `v1`).
//!   `GET /healthz` answers `200 ok`, or `503 unhealthy` while the file `$HEALTH_FILE`
//!   (default `/tmp/pointsman-demo-unhealthy`) exists. HTTP/1.1 keep-alive and pipelining work;
//!   one thread per connection; idle connections are closed after 60 s.
//! - `check`: exit 0 if `GET http://127.0.0.1:$PORT/healthz` answers 200 within 2 s, else 1
//!   (for `HEALTHCHECK CMD ["/pointsman-demo","check"]`: a scratch image has no shell or curl).
//! - `fail` / `recover`: create / remove `$HEALTH_FILE`, so a test can run
//!   `docker exec C /pointsman-demo fail` to make the container unhealthy.
//!
//! Shutdown: as PID 1 of a container the process gets no default signal actions, so SIGTERM and
//! SIGINT handlers are installed through libc's `signal()` (already linked by std; no crate
//! dependency). After the signal, responses carry `Connection: close` and the process exits with
//! status 0 as soon as no request is being handled, or after `SHUTDOWN_TIMEOUT_MS`
//! (default 1000) at most. Idle keep-alive connections are simply closed by the exit. Until the
//! signal the main thread sleeps in a blocking read that the handler ends (a self-pipe), so an
//! idle container uses no CPU at all (a thousand of them polling every 20 ms took both cores of
//! the benchmark machine).

use std::env;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const DEFAULT_HEALTH_FILE: &str = "/tmp/pointsman-demo-unhealthy";
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 16 * 1024;

static STOPPING: AtomicBool = AtomicBool::new(false);
/// The write end of the self-pipe the signal handler wakes the main thread through.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static WAKE_BYTE: u8 = 1;
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let cmd = env::args().nth(1).unwrap_or_else(|| "serve".to_string());
    let result = match cmd.as_str() {
        "serve" => serve(),
        "check" => return if check() { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        "fail" => fail(),
        "recover" => recover(),
        "-h" | "--help" | "help" => {
            println!(
                "usage: pointsman-demo [serve|check|fail|recover]  (env: PORT SLOT VERSION HEALTH_FILE SHUTDOWN_TIMEOUT_MS)"
            );
            Ok(())
        }
        other => {
            eprintln!("pointsman-demo: unknown command {other:?} (serve, check, fail, recover)");
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

fn health_file() -> PathBuf {
    env::var_os("HEALTH_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_HEALTH_FILE.into())
}

fn fail() -> io::Result<()> {
    let path = health_file();
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, b"unhealthy\n")
}

fn recover() -> io::Result<()> {
    match fs::remove_file(health_file()) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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

// ---- signals: std has no API, but libc is linked anyway --------------------------------------

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

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

/// Response bytes prepared once: the main response with and without keep-alive.
struct Responses {
    keep_alive: Vec<u8>,
    close: Vec<u8>,
    body_len: usize,
}

fn serve() -> io::Result<()> {
    let mut wake = install_signal_handlers()?;
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
    let responses = Arc::new(Responses {
        keep_alive: [head("keep-alive").as_bytes(), body.as_bytes()].concat(),
        close: [head("close").as_bytes(), body.as_bytes()].concat(),
        body_len: body.len(),
    });
    let health_file = Arc::new(health_file());

    let listener = TcpListener::bind(("0.0.0.0", port()))?;
    eprintln!(
        "pointsman-demo: slot={slot} version={version} listening on {}",
        listener.local_addr()?
    );

    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(stream) = conn else { continue };
            let (responses, health_file) = (responses.clone(), health_file.clone());
            thread::spawn(move || {
                let _ = handle(stream, &responses, &health_file);
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
fn handle(mut stream: TcpStream, responses: &Responses, health_file: &Path) -> io::Result<()> {
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
        let result = respond(&mut stream, &mut buf, head_end, &mut chunk, responses, health_file);
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if !result? {
            let _ = stream.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Answers the request whose head is `buf[..head_end]`; returns whether to keep the connection.
fn respond(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    head_end: usize,
    chunk: &mut [u8],
    responses: &Responses,
    health_file: &Path,
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
    if chunked || !proto.starts_with("HTTP/1.") {
        // A chunked request body is not worth supporting here: answer and drop the connection.
        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(false);
    }
    // Consume the head and any request body, keeping pipelined bytes that follow.
    while buf.len() < head_end + content_length {
        match stream.read(chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.drain(..head_end + content_length);

    let keep = !STOPPING.load(Ordering::SeqCst) && !conn_close && (proto == "HTTP/1.1" || conn_keep);
    let connection = if keep { "keep-alive" } else { "close" };
    let head_only = method == "HEAD";
    let path = target.split('?').next().unwrap_or("");
    if path == "/healthz" {
        let (status, body) = if health_file.exists() {
            ("503 Service Unavailable", "unhealthy\n")
        } else {
            ("200 OK", "ok\n")
        };
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        );
        if !head_only {
            out.push_str(body);
        }
        stream.write_all(out.as_bytes())?;
    } else {
        let full = if keep { &responses.keep_alive } else { &responses.close };
        let len = if head_only {
            full.len() - responses.body_len
        } else {
            full.len()
        };
        stream.write_all(&full[..len])?;
    }
    Ok(keep)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
