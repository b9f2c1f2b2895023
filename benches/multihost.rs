//! Several hosts, one release (issue 12): figures through real Traefiks, real Docker and one real
//! Redis.
//!
//! - Switch latency: from the start of a `promote`/`rollback` command until Traefik serves the
//!   new slot, over 20 flips: on one host with the directory store (file provider), then on
//!   three simulated hosts sharing Redis (until *all three* Traefiks serve it), in the same run.
//!   Flips are spaced past two of Traefik's default 2 s `providersThrottleDuration` windows
//!   (Traefik re-reads its Redis tree once per changed key, so one change can hold the throttle
//!   twice; the file provider sees one rename).
//! - The same flips again with clients looping against all three Traefiks: latency under that
//!   load, and failed requests (target 0).
//! - Leader takeover: SIGKILL the leading controller, time until another holds the lease
//!   (lease 2 s), three times.
//!
//! Run: `cargo bench --bench multihost` (needs what `scripts/test.sh` installs: Docker, the demo
//! image, Traefik, redis-server).

#[path = "../tests/support/mod.rs"]
mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::cluster::{LEASE, WEB, three_hosts};
use support::harness::Harness;
use support::{Load, wait_until};

const FLIPS: usize = 20;

fn spacing() -> Duration {
    std::env::var("POINTSMAN_BENCH_SPACING_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_millis(4500), Duration::from_millis)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut d: Vec<Duration>) -> String {
    d.sort();
    format!(
        "{name}: p50 {} ms, p95 {} ms, max {} ms (n={})",
        percentile(&d, 0.5).as_millis(),
        percentile(&d, 0.95).as_millis(),
        d.last().unwrap().as_millis(),
        d.len()
    )
}

fn flip(k: usize) -> (&'static [&'static str], &'static str) {
    if k.is_multiple_of(2) {
        (&["promote", "web"], "green")
    } else {
        (&["rollback", "web"], "blue")
    }
}

fn main() {
    // A benchmark, not a test (scripts/test.sh does not run benches): run without `--bench`
    // it fails loudly rather than report a figure it did not measure.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("multihost-bench: not run; run it with `cargo bench --bench multihost`");
        std::process::exit(2);
    }
    let spacing = spacing();

    // One host, the directory store.
    let h = Harness::builder("bench-mh-file").start();
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", None, "v2");
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    thread::sleep(spacing);
    let mut file = Vec::new();
    for k in 0..FLIPS {
        let (args, slot) = flip(k);
        let start = Instant::now();
        h.cli_ok(args);
        wait_until(
            "the file-provider Traefik serves the new slot",
            Duration::from_secs(10),
            || h.public(&[]).starts_with(slot).then_some(()),
        );
        file.push(start.elapsed());
        thread::sleep(spacing);
    }
    drop(h);

    // Three hosts, one Redis: first as the file provider was measured (no load), then again
    // with clients looping against all three Traefiks, counting failed requests.
    let mut c = three_hosts("bench-mh-redis");
    thread::sleep(spacing);
    let mut redis = Vec::new();
    for k in 0..FLIPS {
        let (args, slot) = flip(k);
        let start = Instant::now();
        c.cli_ok(args);
        c.wait_all(WEB, slot, Duration::from_secs(10));
        redis.push(start.elapsed());
        thread::sleep(spacing);
    }
    let loads: Vec<Load> = c
        .hosts
        .iter()
        .map(|h| Load::start(h.traefik.web_addr(), WEB, "/", &[], 2))
        .collect();
    thread::sleep(spacing);
    let mut loaded = Vec::new();
    for k in 0..FLIPS {
        let (args, slot) = flip(k);
        let start = Instant::now();
        c.cli_ok(args);
        c.wait_all(WEB, slot, Duration::from_secs(10));
        loaded.push(start.elapsed());
        thread::sleep(spacing);
    }
    let (mut requests, mut failures) = (0, 0);
    for load in loads {
        let stats = load.stop();
        requests += stats.requests;
        failures += stats.failures();
    }

    // Leader takeover.
    let mut takeover = Vec::new();
    for _ in 0..3 {
        let leader = c.leader().expect("a leader");
        let i = c.hosts.iter().position(|h| h.id == leader).unwrap();
        let killed = Instant::now();
        c.kill_controller(i);
        wait_until("another controller leads", LEASE * 3, || {
            c.leader().filter(|l| *l != leader)
        });
        takeover.push(killed.elapsed());
        c.start_controller(i);
        c.wait_servers("web.slot.blue", 3);
        thread::sleep(Duration::from_millis(500));
    }

    println!(
        "multihost-bench (flips spaced {} ms apart, Traefik's default throttle):",
        spacing.as_millis()
    );
    println!("  {}", summary("one host, file provider: command → served", file));
    println!("  {}", summary("three hosts, Redis: command → all three serve", redis));
    println!(
        "  {}",
        summary(
            "three hosts, Redis, 3 clients looping (6 connections): command → all three serve",
            loaded
        )
    );
    println!("  failed requests on those clients over {FLIPS} flips: {failures} of {requests}");
    println!(
        "  {}",
        summary(
            &format!(
                "leader SIGKILLed → another holds the lease (lease {} ms)",
                LEASE.as_millis()
            ),
            takeover
        )
    );
}
