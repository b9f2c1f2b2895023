//! `pointsman-load`: the load generator of the zero-downtime benchmark (`bench/run.sh`).
//!
//! wrk and oha count failures but cannot say *which backend* answered *when*, and that is the
//! whole question during a blue/green switch. This program sends a fixed rate of keep-alive
//! HTTP/1.1 GETs through Traefik and records, per response, a monotonic timestamp, the status
//! and the `X-Slot` header. Meanwhile it runs the flip commands itself, one after another, on
//! the same clock, so "time from the CLI's start to the first response from the new slot"
//! needs no cross-process clock.
//!
//! ```text
//! pointsman-load --addr IP:PORT [--host web.bench] [--path /] [--rate 1000] [--connections 8]
//!                [--timeout-ms 2000] [--warmup-ms 3000] [--gap-ms 3000]
//!                [--flips N --flip 'CMD ARG…' [--flip 'CMD ARG…']…]
//!                [--duration-ms D] [--stop-file PATH] [--out summary.json] [--responses r.tsv]
//! ```
//!
//! - Load: `--connections` threads, each with one keep-alive connection, together sending
//!   `--rate` requests per second on a fixed schedule (a late response does not shift the
//!   schedule; a thread more than one interval behind skips ahead instead of bursting, and
//!   the requests it did not send are counted as `unsent`: a stalled connection shows there
//!   rather than disappearing from the failure count).
//!   A failure is a non-2xx status, a socket error (refused, reset, closed early) or no
//!   complete response within `--timeout-ms`; after a failure the connection is reopened.
//! - Flips: after `--warmup-ms`, run the `--flip` commands in turn (split on whitespace, no
//!   shell) until `--flips` have run, waiting `--gap-ms` after each one ends. Then wait
//!   `--gap-ms` more and stop. Without flips, stop after `--duration-ms` or when
//!   `--stop-file` appears.
//! - Per flip: `old` is the slot of the last good response before the command started, `new`
//!   the first other slot answering after it; `to_new_ms` is the time from the command's start
//!   to that first response (`after_command_ms` from the command's end), and `last_old_ms` to
//!   the last response from `old` before the next flip (0 when none came after the start).
//!
//! The summary (JSON) goes to `--out` and a readable version to stderr; `--responses` also
//! writes every response as `done_us sent_us status slot` (status 0 = socket error,
//! 1 = timeout). Exit status: 0 when it ran, whatever it measured; 2 on bad usage.
//!
//! Arguments are parsed by clap and the summary written by serde_json. The HTTP/1.1 client is
//! this file's own on purpose: a client library would pool, retry or hide a reconnect, and each
//! of those would blur what is measured (one request, one connection, every failure counted).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use serde::Serialize;

/// The command line as typed (see the module doc); [`Args::validate`] makes it [`Options`].
#[derive(Parser, Debug)]
#[command(
    name = "pointsman-load",
    about = "Fixed-rate HTTP/1.1 load that records which slot answered when, and runs flip commands on the same clock",
    max_term_width = 100
)]
struct Args {
    /// Where to send the load (Traefik's entrypoint).
    #[arg(long, value_name = "IP:PORT")]
    addr: SocketAddr,
    /// `Host` header of every request.
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Request path.
    #[arg(long, default_value = "/")]
    path: String,
    /// Requests per second, all connections together.
    #[arg(long, default_value_t = 1000.0, value_parser = positive_rate)]
    rate: f64,
    /// Keep-alive connections, one thread each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    connections: u16,
    /// A request without a complete response after this long is a failure.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    timeout_ms: u64,
    /// Load before the first flip.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    warmup_ms: u64,
    /// Pause after each flip command ends (and after the last one, before stopping).
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    gap_ms: u64,
    /// Number of flips to run; the --flip commands take turns.
    #[arg(long, default_value_t = 0, value_name = "N")]
    flips: usize,
    /// A flip command, split on whitespace (no shell); repeat for commands taking turns.
    #[arg(long = "flip", value_name = "CMD ARG...", allow_hyphen_values = true)]
    flip_commands: Vec<String>,
    /// Without flips: stop after this long.
    #[arg(long, value_name = "MS")]
    duration_ms: Option<u64>,
    /// Without flips: stop when this file appears.
    #[arg(long, value_name = "PATH")]
    stop_file: Option<PathBuf>,
    /// Write the summary (JSON) here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write every response here, as `done_us sent_us status slot` (TSV).
    #[arg(long, value_name = "FILE")]
    responses: Option<PathBuf>,
}

fn positive_rate(v: &str) -> Result<f64, String> {
    match v.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("expected requests per second, more than 0".into()),
    }
}

/// What to do, validated.
struct Options {
    addr: SocketAddr,
    host: String,
    path: String,
    rate: f64,
    connections: usize,
    timeout: Duration,
    warmup: Duration,
    gap: Duration,
    flips: usize,
    flip_commands: Vec<Vec<String>>,
    duration: Option<Duration>,
    stop_file: Option<PathBuf>,
    out: Option<PathBuf>,
    responses: Option<PathBuf>,
}

impl Args {
    /// The checks that span several flags; the message is for a usage error (exit 2).
    fn validate(self) -> Result<Options, &'static str> {
        let flip_commands: Vec<Vec<String>> = self
            .flip_commands
            .iter()
            .map(|c| c.split_whitespace().map(String::from).collect())
            .collect();
        if self.flips > 0 && (flip_commands.is_empty() || flip_commands.iter().any(Vec::is_empty)) {
            return Err("--flips needs at least one non-empty --flip command");
        }
        if self.flips == 0 && self.duration_ms.is_none() && self.stop_file.is_none() {
            return Err("give --flips, --duration-ms or --stop-file, so the load stops by itself");
        }
        Ok(Options {
            addr: self.addr,
            host: self.host,
            path: self.path,
            rate: self.rate,
            connections: usize::from(self.connections),
            timeout: Duration::from_millis(self.timeout_ms),
            warmup: Duration::from_millis(self.warmup_ms),
            gap: Duration::from_millis(self.gap_ms),
            flips: self.flips,
            flip_commands,
            duration: self.duration_ms.map(Duration::from_millis),
            stop_file: self.stop_file,
            out: self.out,
            responses: self.responses,
        })
    }
}

fn main() -> ExitCode {
    let opts = match Args::parse().validate() {
        Ok(o) => o,
        // Printed like clap's own usage errors, exit status 2.
        Err(e) => Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, e)
            .exit(),
    };
    let clock = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pointsman-load\r\n\r\n",
        opts.path, opts.host
    );
    let interval = Duration::from_secs_f64(opts.connections as f64 / opts.rate);

    let workers: Vec<_> = (0..opts.connections)
        .map(|i| {
            let (stop, request) = (stop.clone(), request.clone().into_bytes());
            let (addr, timeout) = (opts.addr, opts.timeout);
            // Spread the threads' schedules evenly over one interval.
            let offset = interval.mul_f64(i as f64 / opts.connections as f64);
            thread::spawn(move || load(addr, &request, timeout, clock, offset, interval, &stop))
        })
        .collect();

    let flips = if opts.flips > 0 {
        run_flips(&opts, clock)
    } else {
        wait_until_done(&opts, clock)
    };
    stop.store(true, Ordering::SeqCst);
    let end_us = micros(clock);
    let mut samples = Vec::new();
    let mut unsent = 0;
    for w in workers {
        let (s, u) = w.join().expect("load thread");
        samples.extend(s);
        unsent += u;
    }
    samples.sort_by_key(|s| s.done_us);

    let report = Report::build(&samples, &flips, end_us, unsent);
    eprint!("{}", report.text());
    if let Some(path) = &opts.out
        && let Err(e) = fs::write(path, report.json())
    {
        eprintln!("pointsman-load: cannot write {}: {e}", path.display());
    }
    if let Some(path) = &opts.responses
        && let Err(e) = write_responses(path, &samples)
    {
        eprintln!("pointsman-load: cannot write {}: {e}", path.display());
    }
    ExitCode::SUCCESS
}

fn micros(clock: Instant) -> u64 {
    clock.elapsed().as_micros() as u64
}

// ---- load -------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Status(u16),
    Timeout,
    /// A socket error or a connection closed before a complete response.
    Socket(String),
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self, Outcome::Status(200..=299))
    }

    fn name(&self) -> String {
        match self {
            Outcome::Status(s) => format!("status {s}"),
            Outcome::Timeout => "timeout".into(),
            Outcome::Socket(kind) => format!("socket: {kind}"),
        }
    }
}

struct Sample {
    sent_us: u64,
    done_us: u64,
    outcome: Outcome,
    slot: Option<Arc<str>>,
}

struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// One thread's share of the load: one connection, a fixed schedule, every response recorded.
/// Returns the samples and how many scheduled requests were not sent because it fell behind.
fn load(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
    clock: Instant,
    offset: Duration,
    interval: Duration,
    stop: &AtomicBool,
) -> (Vec<Sample>, u64) {
    let mut samples = Vec::new();
    let mut unsent = 0;
    let mut slots: Vec<Arc<str>> = Vec::new();
    let mut conn: Option<Connection> = None;
    let mut next = clock + offset;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else if now - next > interval {
            // More than one interval behind: skip ahead, do not burst.
            unsent += ((now - next).as_nanos() / interval.as_nanos()) as u64;
            next = now;
        }
        next += interval;
        let sent_us = micros(clock);
        let (outcome, slot) = match exchange(&mut conn, addr, request, timeout) {
            Ok((status, slot)) => (Outcome::Status(status), slot),
            Err(e) => {
                conn = None;
                (e, None)
            }
        };
        let slot = slot.map(|s| match slots.iter().find(|known| ***known == *s) {
            Some(known) => known.clone(),
            None => {
                slots.push(Arc::from(s));
                slots.last().unwrap().clone()
            }
        });
        samples.push(Sample {
            sent_us,
            done_us: micros(clock),
            outcome,
            slot,
        });
    }
    (samples, unsent)
}

/// Sends one request on the connection (opening it if needed) and reads the whole response.
fn exchange(
    conn: &mut Option<Connection>,
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<(u16, Option<String>), Outcome> {
    let deadline = Instant::now() + timeout;
    if conn.is_none() {
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io_outcome)?;
        stream.set_nodelay(true).map_err(io_outcome)?;
        *conn = Some(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        });
    }
    let c = conn.as_mut().unwrap();
    c.stream.set_write_timeout(Some(timeout)).map_err(io_outcome)?;
    c.stream.write_all(request).map_err(io_outcome)?;

    let head_end = loop {
        if let Some(i) = find(&c.buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(c, deadline)?;
    };
    let head = String::from_utf8_lossy(&c.buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Outcome::Socket("malformed status line".into()))?;
    let (mut length, mut chunked, mut close, mut slot) = (None, false, false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("x-slot") {
            slot = Some(value.to_string());
        }
    }
    c.buf.drain(..head_end);
    if chunked {
        read_chunked(c, deadline)?;
    } else if let Some(n) = length {
        while c.buf.len() < n {
            fill(c, deadline)?;
        }
        c.buf.drain(..n);
    } else if !(status == 204 || status == 304 || (100..200).contains(&status)) {
        // No framing: the body runs to the end of the connection.
        while fill(c, deadline).is_ok() {}
        close = true;
    }
    if close {
        *conn = None;
    }
    Ok((status, slot))
}

fn read_chunked(c: &mut Connection, deadline: Instant) -> Result<(), Outcome> {
    loop {
        let line_end = loop {
            if let Some(i) = find(&c.buf, b"\r\n") {
                break i;
            }
            fill(c, deadline)?;
        };
        let size_text = String::from_utf8_lossy(&c.buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| Outcome::Socket("malformed chunk".into()))?;
        c.buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                if let Some(i) = find(&c.buf, b"\r\n") {
                    let empty = i == 0;
                    c.buf.drain(..i + 2);
                    if empty {
                        return Ok(());
                    }
                    continue;
                }
                fill(c, deadline)?;
            }
        }
        while c.buf.len() < size + 2 {
            fill(c, deadline)?;
        }
        c.buf.drain(..size + 2);
    }
}

/// Reads more bytes into the buffer before the deadline.
fn fill(c: &mut Connection, deadline: Instant) -> Result<(), Outcome> {
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Outcome::Timeout);
        }
        c.stream.set_read_timeout(Some(left)).map_err(io_outcome)?;
        match c.stream.read(&mut chunk) {
            Ok(0) => return Err(Outcome::Socket("connection closed before a complete response".into())),
            Ok(n) => {
                c.buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_outcome(e)),
        }
    }
}

fn io_outcome(e: io::Error) -> Outcome {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Outcome::Timeout,
        kind => Outcome::Socket(format!("{kind:?}")),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---- flips --------------------------------------------------------------------------------------

struct Flip {
    command: String,
    start_us: u64,
    end_us: u64,
    /// The command's exit status, or -1 if it could not run or was killed.
    exit: i32,
}

fn run_flips(opts: &Options, clock: Instant) -> Vec<Flip> {
    thread::sleep(opts.warmup);
    let mut flips = Vec::with_capacity(opts.flips);
    for i in 0..opts.flips {
        let argv = &opts.flip_commands[i % opts.flip_commands.len()];
        let start_us = micros(clock);
        let result = Command::new(&argv[0]).args(&argv[1..]).stdin(Stdio::null()).output();
        let end_us = micros(clock);
        let exit = match &result {
            Ok(out) => {
                if !out.status.success() {
                    eprintln!(
                        "pointsman-load: flip {} `{}` failed ({}): {}",
                        i + 1,
                        argv.join(" "),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                out.status.code().unwrap_or(-1)
            }
            Err(e) => {
                eprintln!("pointsman-load: flip {} `{}` could not run: {e}", i + 1, argv.join(" "));
                -1
            }
        };
        flips.push(Flip {
            command: argv.join(" "),
            start_us,
            end_us,
            exit,
        });
        thread::sleep(opts.gap);
    }
    flips
}

fn wait_until_done(opts: &Options, clock: Instant) -> Vec<Flip> {
    let deadline = opts.duration.map(|d| clock + d);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || opts.stop_file.as_ref().is_some_and(|p| p.exists()) {
            return Vec::new();
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---- analysis -----------------------------------------------------------------------------------

struct FlipResult {
    command: String,
    start_us: u64,
    exit: i32,
    cli_ms: f64,
    old: Option<String>,
    new: Option<String>,
    to_new_ms: Option<f64>,
    /// From the command's end to the first response from the new slot: the proxy's part
    /// (negative if the switch was seen before the command exited).
    after_command_ms: Option<f64>,
    /// 0 when no response from the old slot came after the start.
    last_old_ms: f64,
    requests: usize,
    failed: usize,
    /// The slowest request completed in the window: a stall shows here.
    max_latency_ms: f64,
}

struct Report {
    duration_s: f64,
    requests: usize,
    unsent: u64,
    failed: usize,
    failures: BTreeMap<String, usize>,
    latency_ms: Vec<f64>,
    flips: Vec<FlipResult>,
}

impl Report {
    fn build(samples: &[Sample], flips: &[Flip], end_us: u64, unsent: u64) -> Report {
        let mut failures = BTreeMap::new();
        for s in samples.iter().filter(|s| !s.outcome.ok()) {
            *failures.entry(s.outcome.name()).or_insert(0) += 1;
        }
        let mut latency_ms: Vec<f64> = samples
            .iter()
            .filter(|s| s.outcome.ok())
            .map(|s| (s.done_us - s.sent_us) as f64 / 1000.0)
            .collect();
        latency_ms.sort_by(f64::total_cmp);

        let mut results = Vec::new();
        for (i, f) in flips.iter().enumerate() {
            let window_end = flips.get(i + 1).map_or(end_us, |n| n.start_us);
            let slot_of = |s: &Sample| s.slot.as_deref().filter(|_| s.outcome.ok()).map(String::from);
            let old = samples
                .iter()
                .rev()
                .filter(|s| s.done_us < f.start_us)
                .find_map(slot_of);
            let window: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.done_us >= f.start_us && s.done_us < window_end)
                .collect();
            let since = |s: &Sample| (s.done_us - f.start_us) as f64 / 1000.0;
            let first_new = window
                .iter()
                .find(|s| slot_of(s).is_some_and(|slot| Some(&slot) != old.as_ref()));
            let last_old = window.iter().rev().find(|s| slot_of(s).is_some() && slot_of(s) == old);
            results.push(FlipResult {
                command: f.command.clone(),
                start_us: f.start_us,
                exit: f.exit,
                cli_ms: (f.end_us - f.start_us) as f64 / 1000.0,
                new: first_new.and_then(|s| slot_of(s)),
                to_new_ms: first_new.map(|s| since(s)),
                after_command_ms: first_new.map(|s| (s.done_us as f64 - f.end_us as f64) / 1000.0),
                last_old_ms: last_old.map_or(0.0, |s| since(s)),
                old,
                requests: window.len(),
                failed: window.iter().filter(|s| !s.outcome.ok()).count(),
                max_latency_ms: window
                    .iter()
                    .map(|s| (s.done_us - s.sent_us) as f64 / 1000.0)
                    .fold(0.0, f64::max),
            });
        }
        Report {
            duration_s: end_us as f64 / 1e6,
            requests: samples.len(),
            unsent,
            failed: samples.iter().filter(|s| !s.outcome.ok()).count(),
            failures,
            latency_ms,
            flips: results,
        }
    }

    fn switch_stats(&self) -> [(&'static str, Vec<f64>); 4] {
        let collect = |f: fn(&FlipResult) -> Option<f64>| {
            let mut v: Vec<f64> = self.flips.iter().filter_map(f).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        [
            ("to_new_ms", collect(|f| f.to_new_ms)),
            ("after_command_ms", collect(|f| f.after_command_ms)),
            ("last_old_ms", collect(|f| Some(f.last_old_ms))),
            ("cli_ms", collect(|f| Some(f.cli_ms))),
        ]
    }

    fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "pointsman-load: {} requests in {:.1} s ({:.0}/s, {} unsent), {} failed {:?}; latency ms p50 {:.2} p99 {:.2} max {:.2}",
            self.requests,
            self.duration_s,
            self.requests as f64 / self.duration_s,
            self.unsent,
            self.failed,
            self.failures,
            percentile(&self.latency_ms, 0.50),
            percentile(&self.latency_ms, 0.99),
            self.latency_ms.last().copied().unwrap_or(f64::NAN),
        );
        for (i, f) in self.flips.iter().enumerate() {
            let _ = write!(
                t,
                "  flip {:>3} at {:.3} s: {} -> {}  cli {:.1} ms  first new {}  last old {:.1} ms  slowest {:.1} ms  failed {}/{}",
                i + 1,
                f.start_us as f64 / 1e6,
                f.old.as_deref().unwrap_or("?"),
                f.new.as_deref().unwrap_or("?"),
                f.cli_ms,
                f.to_new_ms.map_or("never".into(), |v| format!("{v:.1} ms")),
                f.last_old_ms,
                f.max_latency_ms,
                f.failed,
                f.requests,
            );
            let _ = if f.exit == 0 {
                writeln!(t)
            } else {
                writeln!(t, "  EXIT {}", f.exit)
            };
        }
        if !self.flips.is_empty() {
            for (name, v) in self.switch_stats() {
                let _ = writeln!(
                    t,
                    "  {name:<16} n {:>3}  p50 {:.1}  p95 {:.1}  max {:.1}",
                    v.len(),
                    percentile(&v, 0.50),
                    percentile(&v, 0.95),
                    v.last().copied().unwrap_or(f64::NAN)
                );
            }
        }
        t
    }

    /// The summary bench/report.py reads: see [`Summary`].
    fn json(&self) -> String {
        let [to_new, after_command, last_old, cli] = self.switch_stats().map(|(_, v)| Stats::of(&v));
        let summary = Summary {
            duration_s: num(self.duration_s),
            requests: self.requests,
            unsent: self.unsent,
            failed: self.failed,
            failures: &self.failures,
            latency_ms: Stats::of(&self.latency_ms),
            to_new_ms: to_new,
            after_command_ms: after_command,
            last_old_ms: last_old,
            cli_ms: cli,
            flips_unswitched: self.flips.iter().filter(|f| f.to_new_ms.is_none()).count(),
            flips_failed_commands: self.flips.iter().filter(|f| f.exit != 0).count(),
            flips: self
                .flips
                .iter()
                .map(|f| FlipSummary {
                    command: &f.command,
                    start_ms: num(f.start_us as f64 / 1000.0),
                    exit: f.exit,
                    cli_ms: num(f.cli_ms),
                    old: f.old.as_deref(),
                    new: f.new.as_deref(),
                    to_new_ms: f.to_new_ms.and_then(num),
                    after_command_ms: f.after_command_ms.and_then(num),
                    last_old_ms: num(f.last_old_ms),
                    requests: f.requests,
                    failed: f.failed,
                    max_latency_ms: num(f.max_latency_ms),
                })
                .collect(),
        };
        let mut json = serde_json::to_string_pretty(&summary).expect("the summary serializes");
        json.push('\n');
        json
    }
}

/// The JSON summary (`--out`), read by bench/report.py: times in ms (the run's in s) rounded to
/// the µs; `null` where there is no value (no sample, no switch).
#[derive(Serialize)]
struct Summary<'a> {
    duration_s: Option<f64>,
    requests: usize,
    unsent: u64,
    failed: usize,
    /// Failed requests by kind (`status 502`, `timeout`, `socket: ConnectionReset`…).
    failures: &'a BTreeMap<String, usize>,
    latency_ms: Stats,
    to_new_ms: Stats,
    after_command_ms: Stats,
    last_old_ms: Stats,
    cli_ms: Stats,
    flips_unswitched: usize,
    flips_failed_commands: usize,
    flips: Vec<FlipSummary<'a>>,
}

#[derive(Serialize)]
struct FlipSummary<'a> {
    command: &'a str,
    start_ms: Option<f64>,
    exit: i32,
    cli_ms: Option<f64>,
    old: Option<&'a str>,
    new: Option<&'a str>,
    to_new_ms: Option<f64>,
    after_command_ms: Option<f64>,
    last_old_ms: Option<f64>,
    requests: usize,
    failed: usize,
    max_latency_ms: Option<f64>,
}

/// Nearest-rank percentiles of sorted values.
#[derive(Serialize)]
struct Stats {
    n: usize,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    max: Option<f64>,
}

impl Stats {
    fn of(sorted: &[f64]) -> Stats {
        Stats {
            n: sorted.len(),
            p50: num(percentile(sorted, 0.50)),
            p95: num(percentile(sorted, 0.95)),
            p99: num(percentile(sorted, 0.99)),
            max: sorted.last().copied().and_then(num),
        }
    }
}

/// A figure for the summary: rounded to 3 decimals, None (`null`) unless finite.
fn num(v: f64) -> Option<f64> {
    v.is_finite().then(|| (v * 1000.0).round() / 1000.0)
}

/// Nearest-rank percentile of sorted values; NaN when there are none. The definition
/// bench/report.py uses too; four lines, no statistics crate needed.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn write_responses(path: &PathBuf, samples: &[Sample]) -> io::Result<()> {
    let mut out = io::BufWriter::new(fs::File::create(path)?);
    writeln!(out, "done_us\tsent_us\tstatus\tslot")?;
    for s in samples {
        let status = match &s.outcome {
            Outcome::Status(c) => *c,
            Outcome::Timeout => 1,
            Outcome::Socket(_) => 0,
        };
        writeln!(
            out,
            "{}\t{}\t{status}\t{}",
            s.done_us,
            s.sent_us,
            s.slot.as_deref().unwrap_or("-")
        )?;
    }
    out.flush()
}
