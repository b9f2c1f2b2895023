//! The multi-host stack of `traefik/redis/` end to end, on images built here: Redis (keyspace
//! notifications, append-only persistence on a volume), Traefik with the Redis provider, and
//! `pointsman run --store redis://redis:6379/0 --host-id host-1 --address container`, driven as
//! README's "Several hosts (Redis)" tells a person to: `docker compose up`, a new version
//! deployed as the candidate, `docker compose exec pointsman pointsman promote demo`, curl
//! through Traefik, and the CLI on the host against the published Redis port.
//!
//! The stack is `traefik/redis/compose.yml` itself with the locally built images swapped in
//! through its variables. Which images: `TRAEFIK_IMAGE`, `POINTSMAN_IMAGE`, `DEMO_IMAGE`,
//! `REDIS_IMAGE` from the environment when set, else the `:dev` tags `scripts/build-images.sh`
//! (and so `scripts/test.sh`) builds by default. Each run is its own Compose project with a
//! unique name (given as `COMPOSE_PROJECT_NAME`, which the file also scopes pointsman to), every
//! port published on a free loopback port. A guard runs `down -v` when the test ends, also when
//! it panics (after printing the stack's logs); the test also checks that nothing of the
//! project (container, volume, network) is left.
//!
//! A test binary of its own: its demo containers carry the same labels as those of
//! `tests/compose.rs`, whose unscoped controller would pick them up if both ran at once (cargo
//! runs test binaries one after another).
//!
//! Uses `docker-compose` when it is installed, else `docker compose`. Fails, never skips, when
//! Docker, Compose or the images are missing.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::compose::{CANDIDATE_COOKIE, SETTLE, Spec, Stack, assert_clean, run, text};
use support::{Docker, wait_for};

#[test]
fn redis_stack_deploy_and_promote_end_to_end() {
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let t0 = Instant::now();

    // ---- up: blue (v1) stable, green (v2) the candidate, all through Redis ----
    let mut stack = new_stack();
    let start = Instant::now();
    stack.up();
    timings.push(("docker-compose up -d", start.elapsed()));
    let start = Instant::now();
    stack.wait_body("blue v1 on the public entrypoint", stack.web(), &[], "blue v1");
    timings.push(("up until blue v1 is served", start.elapsed()));
    stack.wait_body(
        "green v2 with the candidate cookie",
        stack.web(),
        &[CANDIDATE_COOKIE],
        "green v2",
    );
    stack.wait_body("green v2 on the preview port", stack.preview(), &[], "green v2");

    // ---- Redis is configured as Traefik and pointsman need, and holds the rendered keys ----
    let notify = stack.redis_cli(&["CONFIG", "GET", "notify-keyspace-events"]);
    let flags = notify.lines().nth(1).unwrap_or_default();
    for c in ['K', 'E', 'A'] {
        assert!(flags.contains(c), "notify-keyspace-events lacks {c}: {notify:?}");
    }
    let aof = stack.redis_cli(&["CONFIG", "GET", "appendonly"]);
    assert_eq!(aof.lines().nth(1), Some("yes"), "{aof:?}");
    let dir = stack.redis_cli(&["CONFIG", "GET", "dir"]);
    assert_eq!(dir.lines().nth(1), Some("/data"), "{dir:?}");
    let rule = stack.redis_cli(&["GET", "traefik/http/routers/demo/rule"]);
    assert!(rule.contains("demo.localhost"), "router demo's rule in Redis: {rule:?}");
    let status = stack.status();
    assert_eq!(status["apps"]["demo"]["stable"], "blue", "{status:#}");
    assert_eq!(status["apps"]["demo"]["candidate"], "green", "{status:#}");
    // Scoped to its own project: two demo containers, whatever else Docker runs.
    let text_status = stack.pointsman_ok(&["status", "demo"]);
    assert!(text_status.contains("leader host-1"), "{text_status}");
    assert_eq!(
        text_status.matches(stack.project()).count(),
        2,
        "containers of other projects were picked up:\n{text_status}"
    );

    // ---- deploy a new version to the idle colour: it joins as the candidate ----
    let load = stack.load_public();
    let start = Instant::now();
    stack.compose_ok(&[("GREEN_VERSION", "v3")], &["up", "-d", "--no-build", "green"]);
    stack.wait_steady(
        "green v3 with the candidate cookie",
        stack.web(),
        &[CANDIDATE_COOKIE],
        "green v3",
    );
    timings.push(("deploy green v3 until it is the candidate", start.elapsed()));
    stack.assert_body("green v3 on the preview port", stack.preview(), &[], "green v3");
    stack.assert_body("blue v1 still public after the deploy", stack.web(), &[], "blue v1");
    let stats = load.stop();
    assert_clean("deploying the candidate", &stats, &["blue v1"]);

    // ---- promote through `docker-compose exec`, --wait on Traefik's API, under load ----
    let load = stack.load_public();
    let start = Instant::now();
    let out = stack.pointsman_ok(&["promote", "demo", "--wait"]);
    assert!(
        out.contains("slot green is now stable (was blue)"),
        "promote said: {out}"
    );
    timings.push(("promote --wait (exec)", start.elapsed()));
    stack.wait_body("green v3 public after promote", stack.web(), &[], "green v3");
    timings.push(("promote: exec until green v3 is public", start.elapsed()));
    stack.wait_body(
        "blue v1 (now the candidate) on the preview port",
        stack.preview(),
        &[],
        "blue v1",
    );
    thread::sleep(Duration::from_millis(500));
    let stats = load.stop();
    assert_clean("promote", &stats, &["blue v1", "green v3"]);

    // ---- the CLI on the host, against the published Redis port, sees the same roles ----
    let redis_url = format!("redis://{}/0", stack.published("redis", 6379));
    let out = run(Command::new(env!("CARGO_BIN_EXE_pointsman"))
        .args(["--store", &redis_url, "status", "--json"])
        .env_remove("POINTSMAN_STORE")
        .env_remove("POINTSMAN_DIR")
        .stdin(Stdio::null()));
    assert!(out.status.success(), "host CLI status failed: {}", text(&out.stderr));
    let host_status: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(host_status["apps"]["demo"]["stable"], "green", "{host_status:#}");
    assert_eq!(host_status["apps"]["demo"]["previous"], "blue", "{host_status:#}");

    // ---- restart Redis: roles come back from the append-only file; the controller reconnects
    //      and renders the next change ----
    let start = Instant::now();
    stack.compose_ok(&[], &["restart", "-t", "5", "redis"]);
    timings.push(("docker-compose restart redis", start.elapsed()));
    let after = wait_for("pointsman status after Redis restarted", SETTLE, || stack.try_status());
    assert_eq!(
        after["apps"]["demo"]["stable"], "green",
        "roles lost across a Redis restart: {after:#}"
    );
    stack.assert_body(
        "green v3 still public after Redis restarted",
        stack.web(),
        &[],
        "green v3",
    );
    let out = wait_for("rollback after Redis restarted", SETTLE, || {
        let o = stack.pointsman(&["rollback", "demo"]);
        if o.status.success() {
            Ok(text(&o.stdout))
        } else {
            Err(text(&o.stderr))
        }
    });
    assert!(
        out.contains("slot blue is now stable (was green)"),
        "rollback said: {out}"
    );
    timings.push(("restart redis until rollback is accepted", start.elapsed()));
    stack.wait_body("blue v1 public after rollback", stack.web(), &[], "blue v1");
    timings.push(("restart redis, rollback until blue v1 is public", start.elapsed()));

    // ---- down -v leaves nothing of the project behind ----
    let project = stack.project().to_string();
    let start = Instant::now();
    stack.down();
    timings.push(("docker-compose down -v", start.elapsed()));
    let filter = format!("label=com.docker.compose.project={project}");
    for what in [&["ps", "-aq"][..], &["volume", "ls", "-q"], &["network", "ls", "-q"]] {
        let mut args = what.to_vec();
        args.extend(["--filter", &filter]);
        let left = Docker::run(&args);
        assert!(
            left.is_empty(),
            "docker {what:?} of project {project} after down -v: {left}"
        );
    }
    timings.push(("whole test, including down", t0.elapsed()));
    for (what, took) in timings {
        eprintln!("timing: {what:<48} {took:>8.2?}");
    }
}

// ---- the stack -------------------------------------------------------------------------------

/// `VAR` from the environment when set, else `default`.
fn image(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.into())
}

/// `traefik/redis/compose.yml`, run in `traefik/redis/`, with the images and free ports; the
/// file scopes pointsman to ${COMPOSE_PROJECT_NAME}, given the same name as `-p`. `down -v` on
/// drop.
fn new_stack() -> Stack {
    Stack::new(Spec {
        project_prefix: "pmredis",
        dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("traefik").join("redis"),
        file: "compose.yml",
        run_in_dir: true,
        project_env: true,
        images: vec![
            ("TRAEFIK_IMAGE", image("TRAEFIK_IMAGE", "pointsman-traefik:dev")),
            ("POINTSMAN_IMAGE", image("POINTSMAN_IMAGE", "pointsman:dev")),
            ("DEMO_IMAGE", image("DEMO_IMAGE", support::DEMO_IMAGE)),
            ("REDIS_IMAGE", image("REDIS_IMAGE", "pointsman-redis:dev")),
        ],
        defaults: &[
            ("PUBLISH_ADDRESS", "127.0.0.1"),
            ("REDIS_PUBLISH_ADDRESS", "127.0.0.1"),
            ("WEB_PORT", "0"),
            ("PREVIEW_PORT", "0"),
            ("POINTSMAN_PORT", "0"),
            ("REDIS_PORT", "0"),
            ("POINTSMAN_HOST_ID", "host-1"),
            ("BLUE_VERSION", "v1"),
            ("GREEN_VERSION", "v2"),
        ],
        pointsman_in: "the container",
    })
}

/// What only this test asks of the stack.
impl Stack {
    /// `redis-cli ARGS` inside the redis container; its stdout.
    fn redis_cli(&self, args: &[&str]) -> String {
        let mut full = vec!["exec", "-T", "redis", "redis-cli"];
        full.extend(args);
        self.compose_ok(&[], &full)
    }
}
