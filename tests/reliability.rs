//! Reliability under faults, against a real Docker Engine and a real Traefik 3.7 (issue 5).
//!
//! - Crash safety: the controller is SIGKILLed at random moments during a storm of container
//!   starts, stops, removals, health flips and CLI role changes, and restarted each time.
//! - Docker faults: the event stream is cut, Docker is unreachable (while running and at
//!   start) or hung, through [`DockerProxy`], a socket proxy the test controls.
//! - Concurrency: parallel CLI processes make 200 relabels while the controller renders.
//! - Least privilege: the whole flow through a proxy that lets only GET reach Docker.
//!
//! The tests take turns ([`serial`]): they measure times on a small machine, and a storm in one
//! would slow the clock of another. Each prints what it measured (`-- --nocapture`).
//! Like `tests/integration.rs`, each test has its own [`Harness`] (label prefix, directory,
//! Traefik, controller), and fails (never skips) when Docker, the images or Traefik are missing.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::harness::{APP, HOST, Harness, SETTLE, output_text};
use support::proxy::DockerProxy;
use support::{Docker, TraefikOptions, wait_for, wait_until};

/// The `--backoff-cap` the fault tests run the controller with.
const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// What "within the backoff cap" may add: one listing and one render, on a loaded machine.
const MARGIN: Duration = Duration::from_secs(1);

/// One test at a time: see the module doc.
fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// xorshift64*: reproducible choices from a printed seed, no dependency.
/// The storm's seeded choices (fastrand: replayable with `POINTSMAN_TEST_SEED`).
struct Rng(fastrand::Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.u64(..)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(self.0.u64(from..=to))
    }
}

/// `POINTSMAN_TEST_SEED` to replay a run's choices, else one from the clock (printed).
fn seed() -> u64 {
    std::env::var("POINTSMAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// The `retry_in_ms=` values the controller logged.
fn retry_delays(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.split("retry_in_ms=").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

fn stats_line(d: &[Duration]) -> String {
    let mut d = d.to_vec();
    d.sort();
    if d.is_empty() {
        return "none".into();
    }
    format!(
        "n={} min={:?} median={:?} max={:?}",
        d.len(),
        d[0],
        d[d.len() / 2],
        d[d.len() - 1]
    )
}

// ---- what a directory must look like at any instant ---------------------------------------------

/// What [`check_dir`] found.
#[derive(Debug, Default)]
struct DirReport {
    config_files: usize,
    /// Temp files in `.pointsman/` left by a killed writer (Traefik ignores them: not `*.yml`).
    stray_temps: usize,
}

/// Every file Traefik loads (`*.yml|*.yaml|*.toml`, recursively) is a comment line and then a
/// complete JSON document; the app's file exists and has its public router; `state.json`
/// parses; the top level holds nothing but pointsman's files.
fn check_dir(dir: &Path) -> Result<DirReport, String> {
    let mut report = DirReport::default();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).map_err(|e| format!("read {}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let top = d == dir;
            if top && !(name.starts_with("pointsman-") && name.ends_with(".yml")) {
                return Err(format!("stray file at the top level, where Traefik watches: {name}"));
            }
            if [".yml", ".yaml", ".toml"].iter().any(|s| name.ends_with(s)) {
                let bytes = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
                let body = std::str::from_utf8(&bytes).map_err(|e| format!("{name}: not UTF-8: {e}"))?;
                let (comment, json) = body
                    .split_once('\n')
                    .ok_or_else(|| format!("{name}: no comment line: {body:?}"))?;
                if !comment.starts_with('#') {
                    return Err(format!("{name}: first line is not a comment: {comment:?}"));
                }
                let doc: Value = serde_json::from_str(json)
                    .map_err(|e| format!("{name}: incomplete or invalid JSON ({e}): {body:?}"))?;
                if !doc["http"]["routers"].is_object() {
                    return Err(format!("{name}: no http.routers: {body}"));
                }
                report.config_files += 1;
            } else if name == "state.json" {
                let bytes = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
                let state: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("state.json: invalid ({e}): {:?}", String::from_utf8_lossy(&bytes)))?;
                if state["format"] != 2
                    || !state["apps"].is_object()
                    || state["history"].as_array().is_none_or(|h| h.len() > 1000)
                {
                    return Err(format!("state.json: unexpected shape: {state}"));
                }
            } else if name.ends_with(".tmp") {
                report.stray_temps += 1;
            } else if name != "lock" {
                return Err(format!("unexpected file {}", path.display()));
            }
        }
    }
    let app_file = dir.join(format!("pointsman-{APP}.yml"));
    let body =
        fs::read_to_string(&app_file).map_err(|e| format!("{}: {e} (Traefik would answer 404)", app_file.display()))?;
    if !body.contains(&format!("\"{APP}\"")) {
        return Err(format!("{} has no router {APP}: {body}", app_file.display()));
    }
    Ok(report)
}

// ---- 1. crash safety ----------------------------------------------------------------------------

/// Shared by the storm's workers and the thread that kills the controller.
#[derive(Default)]
struct Storm {
    /// Workers start operations only while this is set.
    running: AtomicBool,
    done: AtomicBool,
    /// Operations in flight.
    busy: AtomicUsize,
    ops: AtomicU64,
    /// Count and total time by kind of operation.
    by_kind: Mutex<BTreeMap<&'static str, (u64, Duration)>>,
    /// CLI refusals (exit 1: a gate failed, no previous slot…), which are fine.
    refused: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Storm {
    /// Ends the workers when dropped, so a failed assertion does not leave `thread::scope`
    /// waiting for them forever.
    fn finish_on_drop(&self) -> impl Drop + '_ {
        struct Finish<'a>(&'a AtomicBool);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        Finish(&self.done)
    }

    fn pause(&self) {
        self.running.store(false, Ordering::SeqCst);
        wait_until("storm operations in flight to finish", SETTLE, || {
            (self.busy.load(Ordering::SeqCst) == 0).then_some(())
        });
    }
}

/// A replica a storm worker owns and churns; the worker tracks what it did to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Churn {
    Absent,
    Running { unhealthy: bool },
    Stopped { unhealthy: bool },
}

/// One worker: operations on its own two replicas (one per slot) and CLI role changes.
fn storm_worker(h: &Harness, storm: &Storm, worker: usize, seed: u64, cores: &[String; 2]) {
    let mut rng = Rng::new(seed);
    let replicas = [
        ("blue", format!("blue-w{worker}")),
        ("green", format!("green-w{worker}")),
    ];
    let mut churn = [Churn::Absent; 2];
    while !storm.done.load(Ordering::SeqCst) {
        storm.busy.fetch_add(1, Ordering::SeqCst);
        if !storm.running.load(Ordering::SeqCst) {
            storm.busy.fetch_sub(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        let op_started = Instant::now();
        let (kind, result): (&'static str, Result<(), String>) = if rng.below(100) < 50 {
            let i = rng.below(2) as usize;
            let (slot, name) = (&replicas[i].0, &replicas[i].1);
            let full = h.name(name);
            let docker = |args: &[&str]| Docker::try_run(args).map(drop);
            match churn[i] {
                Churn::Absent => {
                    let args = h.demo_args(name, slot, None, &format!("w{worker}"));
                    churn[i] = Churn::Running { unhealthy: false };
                    (
                        "docker run",
                        docker(&args.iter().map(String::as_str).collect::<Vec<_>>()),
                    )
                }
                Churn::Running { unhealthy } => match rng.below(100) {
                    0..25 => {
                        churn[i] = Churn::Stopped { unhealthy };
                        ("docker stop", docker(&["stop", "-t", "1", &full]))
                    }
                    25..45 => {
                        churn[i] = Churn::Absent;
                        ("docker rm -f", docker(&["rm", "-f", &full]))
                    }
                    45..60 => ("docker restart", docker(&["restart", "-t", "1", &full])),
                    _ => {
                        churn[i] = Churn::Running { unhealthy: !unhealthy };
                        let flip = if unhealthy { "recover" } else { "fail" };
                        ("health flip", docker(&["exec", &full, "/pointsman-demo", flip]))
                    }
                },
                Churn::Stopped { unhealthy } => {
                    if rng.below(100) < 60 {
                        churn[i] = Churn::Running { unhealthy };
                        ("docker start", docker(&["start", &full]))
                    } else {
                        churn[i] = Churn::Absent;
                        ("docker rm", docker(&["rm", &full]))
                    }
                }
            }
        } else {
            // Either slot: pinning the stable one as candidate is refused (exit 1), which is fine.
            let by_slot = format!("{APP}/{}", ["blue", "green"][rng.below(2) as usize]);
            let (kind, args): (&'static str, Vec<&str>) = match rng.below(100) {
                0..35 => ("relabel APP/SLOT", vec!["relabel", &by_slot, "version=stable"]),
                35..50 => (
                    "relabel CONTAINER",
                    vec!["relabel", &cores[rng.below(2) as usize], "version=stable"],
                ),
                50..75 => ("promote", vec!["promote", APP]),
                75..88 => ("rollback", vec!["rollback", APP]),
                88..95 => ("pin candidate", vec!["relabel", &by_slot, "version=candidate"]),
                _ => ("render", vec!["render"]),
            };
            let out = h.cli(&args);
            let result = match out.status.code() {
                Some(0) => Ok(()),
                Some(1) => {
                    storm.refused.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
                _ => Err(format!(
                    "pointsman {args:?} failed ({}): {}",
                    out.status,
                    output_text(&out)
                )),
            };
            (kind, result)
        };
        if let Err(e) = result {
            storm.failures.lock().unwrap().push(format!("{kind}: {e}"));
        }
        let mut by_kind = storm.by_kind.lock().unwrap();
        let entry = by_kind.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += op_started.elapsed();
        drop(by_kind);
        storm.ops.fetch_add(1, Ordering::SeqCst);
        storm.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// pointsman has converged when nothing would be rewritten: `render --check` is clean.
fn files_converged(h: &Harness) -> Result<(), String> {
    let out = h.cli(&["render", "--check"]);
    if out.status.success() {
        Ok(())
    } else {
        Err(output_text(&out))
    }
}

/// One public request with a short timeout. While Traefik still routes to a removed
/// container, a request can hang on its address (nothing answers there any more): that is
/// "not converged yet", and the next look should not wait out a 2 s client timeout first.
fn public_quick(h: &Harness) -> String {
    const QUICK: Duration = Duration::from_millis(300);
    let attempt = || -> std::io::Result<String> {
        let addr: std::net::SocketAddr = h.traefik.web_addr().parse().expect("web address");
        let mut conn = std::net::TcpStream::connect_timeout(&addr, QUICK)?;
        conn.set_read_timeout(Some(QUICK))?;
        write!(conn, "GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        let status = answer.split(' ').nth(1).unwrap_or("?");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body.trim());
        Ok(if status == "200" {
            body.to_string()
        } else {
            format!("HTTP {status}")
        })
    };
    attempt().unwrap_or_else(|e| format!("error: {e}"))
}

/// Routing has converged when Traefik answers, several times in a row, from the slot the state
/// says is stable (and so from no server that is gone). Returns when that streak began.
fn public_converged(h: &Harness) -> Result<Instant, String> {
    let stable = h.stable().ok_or("no stable slot in state.json")?;
    let since = Instant::now();
    for _ in 0..6 {
        let got = public_quick(h);
        if !got.starts_with(&format!("{stable} ")) {
            return Err(format!("public answered {got:?}; the stable slot is {stable}"));
        }
    }
    Ok(since)
}

/// A paced background client through Traefik: one keep-alive connection, a request about
/// every millisecond, each status counted. Lighter than `support::Load`, which sends back to back and
/// on two cores would slow the storm it watches.
struct Prober {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<support::LoadStats>>,
}

impl Prober {
    fn start(addr: &str) -> Prober {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), addr.to_string());
        let thread = thread::spawn(move || {
            let mut conn = support::HttpConn::new(&addr);
            let mut stats = support::LoadStats::default();
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                stats.requests += 1;
                let sample = match conn.get(HOST, "/", &[]) {
                    Ok(r) => {
                        *stats.statuses.entry(r.status).or_default() += 1;
                        *stats.bodies.entry(r.body.trim().to_string()).or_default() += 1;
                        (!(200..300).contains(&r.status))
                            .then(|| format!("{:.3?}: {} {:?}", started.elapsed(), r.status, r.body))
                    }
                    Err(e) => {
                        stats.errors += 1;
                        Some(format!("{:.3?}: error {e}", started.elapsed()))
                    }
                };
                if let Some(sample) = sample.filter(|_| stats.samples.len() < 20) {
                    stats.samples.push(sample);
                }
                thread::sleep(Duration::from_millis(1));
            }
            stats.elapsed = started.elapsed();
            stats
        });
        Prober {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> support::LoadStats {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().expect("prober panicked")
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn sigkill_at_random_moments_during_a_storm_never_breaks_a_file_or_routing() {
    let _turn = serial();
    let seed = seed();
    eprintln!("crash storm: seed {seed} (replay the choices with POINTSMAN_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    // Traefik applies a file change at most once per `providersThrottleDuration` (default 2 s,
    // measured from the previous change). The storm changes files all the time, so with the
    // default the public side of "converged within 2 s" would measure Traefik's throttle, not
    // pointsman. 200 ms keeps Traefik's part small; the files' part is measured on its own.
    let options = TraefikOptions {
        providers_throttle: Some("200ms".into()),
        ..TraefikOptions::default()
    };
    let h = Harness::builder("crash").traefik(options).start();
    // One core replica per slot that the storm never touches, so whichever slot is stable always
    // has a healthy server: then any non-2xx is pointsman's (or a churned replica's) doing.
    let cores = [
        h.deploy("blue-core", "blue", Some("stable"), "core"),
        h.deploy("green-core", "green", Some("candidate"), "core"),
    ];
    h.start_controller();
    h.wait_healthy(&cores[0]);
    h.wait_healthy(&cores[1]);
    h.wait_public(&[], "blue core");
    let load = Prober::start(h.traefik.web_addr());

    const WORKERS: usize = 3;
    const MIN_OPS: u64 = 200;
    const MIN_KILLS: usize = 15;
    let storm = Storm::default();
    let started = Instant::now();
    let mut kills = 0;
    let (mut files_convergence, mut convergence) = (Vec::new(), Vec::new());
    let mut killed_mid_write = 0;
    thread::scope(|s| {
        let _finish = storm.finish_on_drop();
        for w in 0..WORKERS {
            let (h, storm, cores) = (&h, &storm, &cores);
            let worker_seed = rng.next();
            s.spawn(move || storm_worker(h, storm, w, worker_seed, cores));
        }
        while storm.ops.load(Ordering::SeqCst) < MIN_OPS || kills < MIN_KILLS {
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "the storm is too slow: {} ops, {kills} kills",
                storm.ops.load(Ordering::SeqCst)
            );
            storm.running.store(true, Ordering::SeqCst);
            thread::sleep(rng.millis(300, 1500));
            h.kill_controller();
            kills += 1;
            // Right after the kill, with CLI writers possibly still at work: every file whole.
            if let Err(e) = check_dir(&h.dir) {
                panic!("after kill {kills}: {e}");
            }
            // The CLI keeps working with no controller; then let the in-flight operations end.
            thread::sleep(rng.millis(0, 300));
            storm.pause();
            match check_dir(&h.dir) {
                Ok(r) => killed_mid_write += usize::from(r.stray_temps > 0),
                Err(e) => panic!("after kill {kills}, storm paused: {e}"),
            }
            let restarted = Instant::now();
            h.start_controller();
            wait_for(&format!("files to converge after restart {kills}"), SETTLE, || {
                files_converged(&h)
            });
            files_convergence.push(restarted.elapsed());
            let mut seen = Vec::new();
            let since = wait_for(&format!("routing to converge after restart {kills}"), SETTLE, || {
                public_converged(&h).inspect_err(|e| seen.push(format!("{:?}: {e}", restarted.elapsed())))
            });
            convergence.push(since.saturating_duration_since(restarted));
            if since.saturating_duration_since(restarted) > Duration::from_secs(1) {
                eprintln!("slow convergence after kill {kills}: {seen:#?}");
            }
            // The restarted controller has taken the lock: what a killed writer left is gone.
            // Check under the lock too, so a write in progress right now is not counted.
            let lock = std::fs::File::open(h.dir.join(".pointsman/lock")).unwrap();
            lock.lock().unwrap();
            let report = check_dir(&h.dir).unwrap_or_else(|e| panic!("after restart {kills}: {e}"));
            drop(lock);
            assert_eq!(
                report.stray_temps, 0,
                "temp files of killed writers are swept after restart {kills}"
            );
        }
    });
    let storm_time = started.elapsed();
    let stats = load.stop();
    let failures = storm.failures.lock().unwrap().clone();
    let traefik_errors: Vec<String> = h
        .traefik
        .log()
        .lines()
        .filter(|l| l.contains(" ERR "))
        .map(String::from)
        .collect();

    eprintln!(
        "crash storm: {} operations in {storm_time:.1?} by {WORKERS} workers, {} refused by the CLI (exit 1)",
        storm.ops.load(Ordering::SeqCst),
        storm.refused.load(Ordering::SeqCst)
    );
    let by_kind: Vec<String> = storm
        .by_kind
        .lock()
        .unwrap()
        .iter()
        .map(|(kind, (n, total))| format!("{kind}: {n} (avg {:?})", *total / *n as u32))
        .collect();
    eprintln!("crash storm: operations by kind: {}", by_kind.join(", "));
    eprintln!(
        "crash storm: {kills} SIGKILLs; after each restart, files converged: {}",
        stats_line(&files_convergence)
    );
    eprintln!(
        "crash storm: after each restart, Traefik answered from the stable slot: {}",
        stats_line(&convergence)
    );
    eprintln!("crash storm: kills that left a temp file behind (a write cut short): {killed_mid_write}");
    eprintln!(
        "crash storm: public load: {} requests, statuses {:?}, {} errors; samples: {:?}",
        stats.requests, stats.statuses, stats.errors, stats.samples
    );
    assert!(failures.is_empty(), "operations failed: {failures:#?}");
    assert!(
        traefik_errors.iter().all(|l| !l.contains("providerName=file")),
        "Traefik rejected a file: {traefik_errors:#?}"
    );
    assert_eq!(
        stats.statuses.get(&404),
        None,
        "Traefik answered 404 for the live app: {stats:?}"
    );
    assert_eq!(
        stats.statuses.get(&503),
        None,
        "a 503 means the stable slot had no server, but its core replica was always healthy: {stats:?}"
    );
    let slowest = convergence.iter().max().unwrap();
    assert!(
        *slowest <= Duration::from_secs(2),
        "routing took {slowest:?} to converge after a restart: {}",
        stats_line(&convergence)
    );
}

// ---- 2. Docker faults ---------------------------------------------------------------------------

#[test]
fn a_cut_event_stream_is_reconnected_and_no_stale_server_outlives_the_backoff_cap() {
    let _turn = serial();
    let proxy = DockerProxy::start();
    let h = Harness::builder("faults").docker_proxy(&proxy).start();
    let one = h.deploy("blue-1", "blue", Some("stable"), "r1");
    let two = h.deploy("blue-2", "blue", Some("stable"), "r2");
    h.start_controller_with(&["--backoff-cap", "2", "--resync-interval", "300"]);
    h.wait_healthy(&one);
    h.wait_healthy(&two);
    let (ip1, ip2) = (Docker::ip(&one), Docker::ip(&two));
    h.wait_servers("both replicas routed", &[(&ip1, true), (&ip2, true)]);
    wait_until("the event stream open", SETTLE, || {
        (proxy.stats().endpoints.contains_key("GET /events")).then_some(())
    });

    // 1. Docker goes away (every connection cut, new ones closed) while the stable slot changes:
    //    another replica starts, one stops (in this order: Docker hands a freed address out
    //    again at once). pointsman cannot know; it keeps routing as written.
    proxy.set_down(true);
    proxy.cut();
    let cut_at = Instant::now();
    let three = h.deploy("blue-3", "blue", None, "r3");
    Docker::run(&["stop", "-t", "1", &one]);
    h.wait_healthy(&three);
    let ip3 = Docker::ip(&three);
    assert_ne!(
        ip3, ip1,
        "Docker reused the stopped replica's address; the test cannot tell them apart"
    );
    // Long enough for the backoff to reach its cap.
    thread::sleep((cut_at + Duration::from_secs(4)).saturating_duration_since(Instant::now()));
    let file = h.file();
    assert!(
        file.contains(&format!("http://{ip1}:80")) && !file.contains(&format!("http://{ip3}:80")),
        "routing stays as written while Docker is away: {file}"
    );
    let lost = count(&h.controller_log(), "lost Docker; routing stays as written, retrying");
    assert!(
        lost >= 3,
        "the controller retries and says so: {lost} lines\n{}",
        h.controller_log()
    );

    proxy.set_down(false);
    let up_at = Instant::now();
    let fixed_at = h.wait_servers(
        "stale replica gone, new one routed",
        &[(&ip1, false), (&ip2, true), (&ip3, true)],
    );
    let after_up = fixed_at - up_at;
    let stale_for = fixed_at - cut_at;

    // 2. The stream alone breaks (Docker stays reachable) and a replica is removed right away.
    let synced_before = count(&h.controller_log(), "synced with Docker");
    proxy.cut();
    let cut2_at = Instant::now();
    Docker::run(&["rm", "-f", &two]);
    let removed_at = Instant::now();
    let fixed2_at = h.wait_servers("removed replica gone", &[(&ip2, false), (&ip3, true)]);
    wait_until("a second resync", SETTLE, || {
        (count(&h.controller_log(), "synced with Docker") > synced_before).then_some(())
    });

    let log = h.controller_log();
    let delays = retry_delays(&log);
    let stats = proxy.stats();
    eprintln!(
        "docker faults: Docker away {:.1?}; {lost} retries logged while away; retry delays (ms): {delays:?}",
        up_at - cut_at
    );
    eprintln!(
        "docker faults: stale server gone {after_up:?} after Docker came back (cap {BACKOFF_CAP:?}); listed in the file for {stale_for:.1?} in all"
    );
    eprintln!(
        "docker faults: stream cut alone: removal reflected {:?} after `docker rm -f` returned ({:?} after the cut)",
        fixed2_at - removed_at,
        fixed2_at - cut2_at
    );
    eprintln!(
        "docker faults: proxy saw {} connections, {} refused, {} cut, {} resyncs logged",
        stats.connections,
        stats.refused,
        stats.cut,
        count(&log, "synced with Docker")
    );
    assert!(
        after_up <= BACKOFF_CAP + MARGIN,
        "stale server routed {after_up:?} after Docker came back (cap {BACKOFF_CAP:?})"
    );
    assert!(
        fixed2_at - removed_at <= BACKOFF_CAP + MARGIN,
        "removed replica routed {:?} after a stream cut",
        fixed2_at - removed_at
    );
    assert!(
        delays.iter().all(|d| *d <= BACKOFF_CAP.as_millis() as u64),
        "a retry waited longer than the cap: {delays:?}"
    );
    assert!(
        count(&log, "synced with Docker") >= 3,
        "a full resync after each reconnect:\n{log}"
    );
    assert!(stats.refused >= 3, "{stats:?}");
}

#[test]
fn docker_unreachable_at_start_is_retried_and_reported_and_the_files_are_left_alone() {
    let _turn = serial();
    let proxy = DockerProxy::start();
    proxy.set_down(true);
    let h = Harness::builder("unreachable").docker_proxy(&proxy).start();
    let blue = h.deploy("blue-1", "blue", Some("candidate"), "v1");
    // What an earlier controller left: blue is stable (the labels say candidate: state wins),
    // and the file routes to an address that no longer serves (TEST-NET-1).
    let state_path = h.dir.join(".pointsman/state.json");
    let file_path = h.dir.join(format!("pointsman-{APP}.yml"));
    fs::create_dir_all(state_path.parent().unwrap()).unwrap();
    let state = serde_json::json!({
        "format": 1,
        "apps": { APP: { "stable": "blue" } },
        "history": [{ "at": "2026-01-01T00:00:00Z", "app": APP, "action": "seed", "from": null, "to": "blue", "by": "controller" }],
    });
    support::write_atomic(&state_path, &serde_json::to_string_pretty(&state).unwrap());
    let old_file = format!(
        "# written by an earlier pointsman\n{}",
        serde_json::json!({ "http": {
            "routers": { APP: { "rule": format!("Host(`{HOST}`)"), "entryPoints": ["web"], "service": APP } },
            "services": { APP: { "loadBalancer": { "servers": [{ "url": "http://192.0.2.1:80" }] } } },
        }})
    );
    support::write_atomic(&file_path, &old_file);
    let snapshot = || -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
        [&state_path, &file_path]
            .iter()
            .map(|p| {
                (
                    p.to_path_buf(),
                    fs::read(p).unwrap(),
                    fs::metadata(p).unwrap().modified().unwrap(),
                )
            })
            .collect()
    };
    let before = snapshot();
    h.wait_healthy(&blue);

    let started = Instant::now();
    h.start_controller_with(&["--backoff-cap", "2"]);
    wait_until("three retries logged", SETTLE, || {
        (count(&h.controller_log(), "lost Docker; routing stays as written, retrying") >= 3).then_some(())
    });
    let log = h.controller_log();
    assert!(
        log.contains("cannot reach Docker"),
        "the log says what is wrong:\n{log}"
    );
    assert!(!log.contains("synced with Docker"));
    // Hold Docker away a little longer, then compare: nothing written, nothing removed.
    thread::sleep(Duration::from_millis(1500));
    assert!(snapshot() == before, "files changed while Docker was unreachable");
    let top: Vec<String> = fs::read_dir(&h.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top.iter().filter(|n| n.as_str() != ".pointsman").collect::<Vec<_>>(),
        [&format!("pointsman-{APP}.yml")]
    );
    let retries = count(&h.controller_log(), "lost Docker; routing stays as written, retrying");

    proxy.set_down(false);
    let up_at = Instant::now();
    let ip = Docker::ip(&blue);
    h.wait_servers(
        "the file routes to the real container",
        &[(&ip, true), ("192.0.2.1", false)],
    );
    let synced_after = up_at.elapsed();
    h.wait_public(&[], "blue v1");
    let state = h.state();
    let log = h.controller_log();
    eprintln!(
        "docker unreachable at start: {retries} retries logged in {:.1?} (delays ms: {:?}); {} connections refused; file rewritten {synced_after:?} after Docker came back",
        up_at - started,
        retry_delays(&log),
        proxy.stats().refused
    );
    assert!(log.contains("synced with Docker"), "{log}");
    assert!(synced_after <= BACKOFF_CAP + MARGIN, "{synced_after:?}");
    assert_eq!(state["apps"][APP]["stable"], "blue", "roles are never reset: {state}");
    assert_eq!(
        state["history"][0]["at"], "2026-01-01T00:00:00Z",
        "history kept: {state}"
    );
}

/// A Docker that accepts connections and never answers (a paused socket proxy, a dropped
/// route) must not silence pointsman: each request gives up after a bounded time, the
/// controller says so and retries, and the CLI exits 2 instead of hanging.
#[test]
fn a_docker_that_never_answers_is_timed_out_reported_and_retried() {
    let _turn = serial();
    let proxy = DockerProxy::start();
    proxy.set_stalled(true);
    let h = Harness::builder("hung").docker_proxy(&proxy).start();
    let blue = h.deploy("blue-1", "blue", Some("stable"), "v1");
    h.wait_healthy(&blue);
    let ip = Docker::ip(&blue);

    let started = Instant::now();
    h.start_controller_with(&["--backoff-cap", "2"]);
    let cli = h
        .command(&["status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reported_after = wait_until(
        "the controller to report the hung Docker",
        Duration::from_secs(30),
        || {
            (count(&h.controller_log(), "lost Docker; routing stays as written, retrying") >= 1)
                .then(|| started.elapsed())
        },
    );
    let out = cli.wait_with_output().unwrap();
    let cli_after = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the CLI gives up with exit 2: {}",
        output_text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach Docker"),
        "{}",
        output_text(&out)
    );
    assert!(
        !h.dir.join(format!("pointsman-{APP}.yml")).exists(),
        "nothing written before a full listing"
    );

    // Docker answers again (the held connections are dropped, as when a proxy restarts).
    proxy.set_stalled(false);
    proxy.cut();
    let up_at = Instant::now();
    h.wait_servers("routed once Docker answers", &[(&ip, true)]);
    let synced_after = up_at.elapsed();
    eprintln!(
        "hung docker: controller reported it after {reported_after:.1?}, the CLI gave up after {cli_after:.1?}; routed {synced_after:?} after Docker answered again; {} connections held unanswered",
        proxy.stats().stalled
    );
    assert!(reported_after <= Duration::from_secs(15), "{reported_after:?}");
    assert!(synced_after <= BACKOFF_CAP + MARGIN, "{synced_after:?}");
}

// ---- 3. concurrency -----------------------------------------------------------------------------

#[test]
fn two_hundred_parallel_relabels_are_all_recorded_in_one_serial_order() {
    let _turn = serial();
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let h = Harness::new("parallel");
    // Each thread alternates between two slots of its own. Only it names them, so the slot it
    // targets is never the stable one at that moment: every relabel changes something and must
    // be recorded. Another thread stops and starts a noise replica so the controller renders too.
    let mut containers = vec![
        h.deploy("base", "base", Some("stable"), "v0"),
        h.deploy("noise", "noise", None, "n"),
    ];
    for t in 0..THREADS {
        for side in ["a", "b"] {
            let slot = format!("t{t}{side}");
            containers.push(h.deploy(&slot, &slot, None, "v1"));
        }
    }
    h.start_controller();
    for c in &containers {
        h.wait_healthy(c);
    }
    h.wait_public(&[], "base v0");
    let noise = containers[1].clone();

    let renders_before = count(&h.controller_log(), "files updated");
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (mut latencies, mut outputs) = (Vec::new(), Vec::new());
    let mut noise_cycles = 0;
    thread::scope(|s| {
        let noise_thread = s.spawn(|| {
            // Stopped, it leaves the file; started, it joins once healthy (~1 s): two renders.
            let mut cycles = 0;
            while !done.load(Ordering::SeqCst) {
                Docker::run(&["stop", "-t", "1", &noise]);
                Docker::run(&["start", &noise]);
                cycles += 1;
                thread::sleep(Duration::from_millis(1300));
            }
            cycles
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let h = &h;
                s.spawn(move || {
                    let mut made = Vec::new();
                    for i in 0..PER_THREAD {
                        let slot = format!("t{t}{}", if i % 2 == 0 { "a" } else { "b" });
                        let t0 = Instant::now();
                        let out = h.cli_ok(&["relabel", &format!("{APP}/{slot}"), "version=stable"]);
                        made.push((slot, t0.elapsed(), out));
                    }
                    made
                })
            })
            .collect();
        // Join every worker before judging any, so the noise thread always gets told to stop.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::SeqCst);
        noise_cycles = noise_thread.join().unwrap();
        for (slot, latency, out) in results.into_iter().flat_map(|r| r.expect("a relabel thread failed")) {
            latencies.push(latency);
            outputs.push((slot, out));
        }
    });
    let elapsed = started.elapsed();
    // Let the noise replica settle (healthy, and the controller has seen it) before judging drift.
    h.wait_healthy(&containers[1]);
    thread::sleep(Duration::from_millis(300));

    let switched = outputs
        .iter()
        .filter(|(slot, out)| out.contains(&format!("slot {slot} is now stable")))
        .count();
    let history: Vec<Value> = serde_json::from_str(&h.cli_ok(&["history", "--json", "--limit", "1000"])).unwrap();
    let history: Vec<&Value> = history.iter().filter(|t| t["app"] == APP).collect();
    let relabels: Vec<&&Value> = history.iter().filter(|t| t["action"] == "relabel").collect();
    let check = h.cli(&["render", "--check"]);
    let final_stable = h.stable();
    let log = h.controller_log();
    let renders = count(&log, "files updated") - renders_before;
    eprintln!(
        "parallel relabels: {} by {THREADS} CLI processes at a time in {elapsed:.1?} ({:.0}/s); latency {}",
        outputs.len(),
        outputs.len() as f64 / elapsed.as_secs_f64(),
        stats_line(&latencies)
    );
    eprintln!(
        "parallel relabels: {switched} said \"is now stable\"; history has {} relabels; controller wrote files {} times meanwhile ({noise_cycles} noise stop/start cycles)",
        relabels.len(),
        renders
    );
    assert!(renders >= 3, "the controller rendered while the relabels ran:\n{log}");

    assert_eq!(switched, THREADS * PER_THREAD, "every relabel changed the stable slot");
    assert_eq!(relabels.len(), switched, "no relabel is lost");
    assert_eq!(history[0]["action"], "seed");
    for pair in history.windows(2) {
        assert_eq!(
            pair[1]["from"], pair[0]["to"],
            "one serial order: each change starts where the previous ended: {pair:#?}"
        );
    }
    for t in 0..THREADS {
        let mine: Vec<&str> = relabels
            .iter()
            .filter_map(|r| r["to"].as_str())
            .filter(|to| to.starts_with(&format!("t{t}")))
            .collect();
        let expected: Vec<String> = (0..PER_THREAD)
            .map(|i| format!("t{t}{}", if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        assert_eq!(
            mine, expected,
            "thread {t}'s relabels are recorded in the order it made them"
        );
    }
    assert!(relabels.iter().all(|r| r["by"] == "cli"));
    let last = history.last().unwrap()["to"].as_str().unwrap();
    assert_eq!(
        final_stable.as_deref(),
        Some(last),
        "the final state is the last transition"
    );
    assert!(check.status.success(), "no drift at the end: {}", output_text(&check));
    h.wait_public(&[], &format!("{last} v1"));
}

// ---- 4. least privilege -------------------------------------------------------------------------

/// TCP and UDP sockets process `pid` listens on or is bound to, as `proto address:port` (hex
/// address for IPv6), read from /proc.
fn listening_sockets(pid: u32) -> Vec<String> {
    let inodes: BTreeSet<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    l.to_string_lossy()
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for (proto, listening) in [("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")] {
        let table = fs::read_to_string(format!("/proc/{pid}/net/{proto}")).unwrap_or_default();
        for row in table.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            if cols.len() > 9 && cols[3] == listening && inodes.contains(cols[9]) {
                let (addr, port) = cols[1].split_once(':').unwrap();
                let port = u16::from_str_radix(port, 16).unwrap();
                let addr = match u32::from_str_radix(addr, 16) {
                    Ok(v4) if addr.len() == 8 => std::net::Ipv4Addr::from(v4.swap_bytes()).to_string(),
                    _ => addr.to_string(),
                };
                found.push(format!("{proto} {addr}:{port}"));
            }
        }
    }
    found
}

fn is_loopback(socket: &str) -> bool {
    let addr = socket.split(' ').nth(1).unwrap_or("");
    addr.starts_with("127.") || addr.starts_with("00000000000000000000000001000000:")
}

#[test]
fn the_controller_and_the_cli_work_through_a_proxy_that_allows_only_get() {
    let _turn = serial();
    let proxy = DockerProxy::get_only();
    let h = Harness::builder("readonly").docker_proxy(&proxy).start();
    let one = h.deploy("blue-1", "blue", Some("stable"), "v1");
    let two = h.deploy("blue-2", "blue", Some("stable"), "v1");
    let green = h.deploy("green-1", "green", Some("candidate"), "v2");
    h.start_controller();
    for c in [&one, &two, &green] {
        h.wait_healthy(c);
    }
    let (ip1, ip2, ipg) = (Docker::ip(&one), Docker::ip(&two), Docker::ip(&green));
    h.wait_servers("every replica routed", &[(&ip1, true), (&ip2, true), (&ipg, true)]);
    h.wait_public(&[], "blue v1");

    // Events reach the controller through the proxy: a stop, a health flip and back.
    Docker::run(&["stop", "-t", "1", &two]);
    h.wait_servers("stopped replica removed", &[(&ip1, true), (&ip2, false), (&ipg, true)]);
    Docker::run(&["exec", &green, "/pointsman-demo", "fail"]);
    h.wait_servers("unhealthy candidate removed", &[(&ip1, true), (&ipg, false)]);
    Docker::run(&["exec", &green, "/pointsman-demo", "recover"]);
    h.wait_servers("recovered candidate back", &[(&ip1, true), (&ipg, true)]);
    // The CLI reads Docker through the same proxy.
    let out = h.cli_ok(&["promote", APP]);
    assert!(out.contains("slot green is now stable"), "{out}");
    h.wait_public(&[], "green v2");
    h.cli_ok(&["status", "--json"]);
    h.cli_ok(&["render", "--check"]);

    let sockets = listening_sockets(h.controller_pid());
    let stats = proxy.stats();
    eprintln!(
        "read-only proxy: {} requests on {} connections: {:?}",
        stats.requests(),
        stats.connections,
        stats.methods
    );
    eprintln!("read-only proxy: endpoints {:?}", stats.endpoints);
    eprintln!("read-only proxy: sockets the controller listens on: {sockets:?}");
    assert_eq!(stats.non_get(), 0, "pointsman only reads Docker: {stats:?}");
    assert!(stats.forbidden.is_empty() && stats.refused == 0, "{stats:?}");
    let allowed = [
        "GET /_ping",
        "GET /version",
        "GET /events",
        "GET /containers/json",
        "GET /containers/{id}/json",
    ];
    for endpoint in stats.endpoints.keys() {
        assert!(
            allowed.contains(&endpoint.as_str()),
            "{endpoint} is outside what docker-socket-proxy allows with CONTAINERS=1 EVENTS=1"
        );
    }
    assert!(
        sockets.iter().all(|s| is_loopback(s)),
        "any listener binds to loopback: {sockets:?}"
    );

    // The proxy does refuse a write, so the zero above means something.
    let mut conn = std::net::TcpStream::connect(proxy.docker_host().trim_start_matches("tcp://")).unwrap();
    let name = h.name("forbidden");
    let body = format!("{{\"Image\":\"{}\"}}", support::DEMO_IMAGE);
    write!(
        conn,
        "POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(proxy.stats().forbidden.len(), 1);
    assert!(
        Docker::try_run(&["inspect", &name]).is_err(),
        "the refused request never reached Docker"
    );
}

// ---- the test proxy itself ----------------------------------------------------------------------

/// The proxy must judge pipelined requests one by one and answer each in its place, or the
/// "0 non-GET requests" above would mean little. (bollard opens a connection per request, so
/// the tests above never pipeline.) The refused request is one Docker would answer 404 anyway.
#[test]
fn the_test_proxy_answers_pipelined_requests_in_order_and_refuses_writes_in_place() {
    Docker::require_docker();
    let proxy = DockerProxy::get_only();
    let addr = proxy.docker_host().trim_start_matches("tcp://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(
        b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n\
          POST /v1.41/containers/pointsman-no-such-container/stop HTTP/1.1\r\nHost: docker\r\nContent-Length: 2\r\n\r\n{}\
          GET /version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    // Bodies need not end in a newline ("OK"): find each status line by its prefix.
    let statuses: Vec<&str> = answer.split("HTTP/1.1 ").skip(1).map(|rest| &rest[..3]).collect();
    assert_eq!(statuses, ["200", "403", "200"], "{answer}");
    assert!(
        answer.contains("\"ApiVersion\""),
        "the last answer is /version's: {answer}"
    );
    let stats = proxy.stats();
    assert_eq!(
        (stats.connections, stats.requests(), stats.non_get()),
        (1, 3, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.forbidden,
        ["POST /v1.41/containers/pointsman-no-such-container/stop HTTP/1.1"]
    );

    // Down: a new connection is closed at once, unanswered.
    proxy.set_down(true);
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n");
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    wait_until("the refusal counted", SETTLE, || {
        (proxy.stats().refused == 1).then_some(())
    });
}
