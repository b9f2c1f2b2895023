//! Progressive-delivery figures through a real Traefik and real Docker (issue 9):
//!
//! - weight change → visible in traffic, p50/p95, changes spaced past Traefik's default 2 s
//!   `providersThrottleDuration` (`canary web 50` ↔ `canary web 0`, timed from the command's
//!   start to the first response from the candidate, and to the last one);
//! - a failing candidate: first 5xx a client sees → the abort served (no more candidate answers);
//! - failed requests over 20 weight changes under load (target 0).
//!
//! Run: `cargo bench --bench canary` (needs what `scripts/test.sh` installs: Docker, the demo
//! image, Traefik). Prints the figures; `POINTSMAN_BENCH_OUT=FILE` also writes them as JSON.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::harness::{APP, HOST, Harness};
use support::{HttpConn, Load, TraefikOptions};

const THROTTLE: Duration = Duration::from_millis(2500);
const FLIPS: usize = 20;

fn main() {
    // A benchmark, not a test (scripts/test.sh does not run benches): run without `--bench`
    // it fails loudly rather than report a figure it did not measure.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("canary-bench: not run; run it with `cargo bench --bench canary`");
        std::process::exit(2);
    }
    let h = Harness::builder("bench-canary")
        .traefik(TraefikOptions {
            metrics: true,
            ..Default::default()
        })
        .start();
    let url = h.traefik.metrics_url();
    let h = h.with_env("POINTSMAN_TRAEFIK_METRICS", &url);
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", None, "v2");
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    thread::sleep(THROTTLE);

    // 0. Verified apply: `--wait` returns when Traefik's API shows the change (no load).
    let api = h.traefik.api_url();
    let mut waits = Vec::new();
    for i in 0..FLIPS {
        let percent = if i % 2 == 0 { "50" } else { "0" };
        let out = h.cli_ok(&["--traefik-api", &api, "canary", APP, percent, "--wait"]);
        let ms: u64 = out
            .split("Traefik serves it (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        waits.push(Duration::from_millis(ms));
        thread::sleep(THROTTLE);
    }

    // 1. Weight change → visible, with a background load (failures counted over all flips).
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    let (mut first_new, mut last_old) = (Vec::new(), Vec::new());
    for i in 0..FLIPS {
        let on = i % 2 == 0;
        let started = Instant::now();
        h.cli_ok(&["canary", APP, if on { "50" } else { "0" }]);
        // Probe as new visitors until the change shows (first) and holds for 200 requests.
        let mut conn = HttpConn::new(h.traefik.web_addr());
        let mut first = None;
        let mut streak = 0;
        while started.elapsed() < Duration::from_secs(10) {
            let r = conn.get(HOST, "/", &[]).expect("probe");
            let candidate = r.body.starts_with("green");
            if on && candidate && first.is_none() {
                first = Some(started.elapsed());
            }
            if !on {
                if candidate {
                    streak = 0;
                    first = None;
                } else {
                    first.get_or_insert(started.elapsed());
                    streak += 1;
                }
                if streak >= 200 {
                    break;
                }
            } else if first.is_some() {
                break;
            }
        }
        let seen = first.expect("the change became visible within 10 s");
        if on {
            first_new.push(seen);
        } else {
            last_old.push(seen);
        }
        thread::sleep(THROTTLE);
    }
    let stats = load.stop();

    // 2. A candidate that starts failing: first 5xx seen → abort served.
    Docker::mode(&green, "error=20");
    let stop = Arc::new(AtomicBool::new(false));
    let probe = {
        let (addr, stop) = (h.traefik.web_addr().to_string(), stop.clone());
        thread::spawn(move || {
            let mut conn = HttpConn::new(&addr);
            let mut first_bad: Option<Instant> = None;
            let mut last_candidate: Option<Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                let Ok(r) = conn.get(HOST, "/", &[]) else { continue };
                let now = Instant::now();
                if r.status >= 500 {
                    first_bad.get_or_insert(now);
                }
                if r.status >= 500 || r.body.starts_with("green") {
                    last_candidate = Some(now);
                }
            }
            (first_bad, last_candidate)
        })
    };
    let out = h.cli(&["rollout", APP, "--steps", "10,50,100", "--pause", "5s", "--wait"]);
    let aborted_at = Instant::now();
    thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let (first_bad, last_candidate) = probe.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", support::harness::output_text(&out));
    let first_bad = first_bad.expect("the client saw a 5xx");
    let served = last_candidate.expect("the client reached the candidate");
    let detect = served.duration_since(first_bad);

    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        ms(&v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1])
    };
    let (on50, on95) = (pct(&mut first_new, 0.5), pct(&mut first_new, 0.95));
    let (off50, off95) = (pct(&mut last_old, 0.5), pct(&mut last_old, 0.95));
    let (wait50, wait95) = (pct(&mut waits, 0.5), pct(&mut waits, 0.95));
    println!(
        "canary-bench: --wait (write → Traefik's API shows it), {FLIPS} changes, no load: p50 {wait50:.0} ms, p95 {wait95:.0} ms"
    );
    println!(
        "canary-bench: {FLIPS} weight changes spaced {} ms (Traefik's default 2 s throttle)",
        THROTTLE.as_millis()
    );
    println!("canary-bench: canary 0 → 50, command start → first candidate answer: p50 {on50:.0} ms, p95 {on95:.0} ms");
    println!(
        "canary-bench: canary 50 → 0, command start → last candidate answer: p50 {off50:.0} ms, p95 {off95:.0} ms"
    );
    println!(
        "canary-bench: failed requests over {FLIPS} weight changes under load: {} of {} ({:?})",
        stats.failures(),
        stats.requests,
        stats.statuses
    );
    println!(
        "canary-bench: 20% 5xx candidate, first 5xx seen → abort served (last candidate answer): {:.0} ms; command returned {:.0} ms after the first 5xx",
        ms(&detect),
        ms(&aborted_at.duration_since(first_bad))
    );
    if let Ok(path) = std::env::var("POINTSMAN_BENCH_OUT") {
        let doc = serde_json::json!({
            "flips": FLIPS,
            "visible_on_p50_ms": on50, "visible_on_p95_ms": on95,
            "visible_off_p50_ms": off50, "visible_off_p95_ms": off95,
            "failed": stats.failures(), "requests": stats.requests,
            "abort_after_first_5xx_ms": ms(&detect),
            "wait_p50_ms": wait50, "wait_p95_ms": wait95,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}

struct Docker;
impl Docker {
    fn mode(container: &str, mode: &str) {
        support::Docker::run(&["exec", container, "/pointsman-demo", "mode", mode]);
    }
}
