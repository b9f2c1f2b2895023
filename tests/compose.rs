//! The Compose stack in `traefik/` end to end, driven the way its README section tells a person to
//! drive it: `docker compose up`, curl through Traefik, `docker compose exec pointsman pointsman
//! promote demo`, and so on.
//!
//! The stack is `traefik/compose.yml` itself, with the locally built images swapped in through
//! its variables (`scripts/build-images.sh`: `pointsman-traefik:dev`, `pointsman:dev`,
//! `pointsman-demo:dev`; nothing can be pulled here). Each run is its own Compose project with a
//! unique name, and Traefik's `web` and `preview` ports are published on free loopback ports
//! (`WEB_PORT=0`), so runs never collide and the test only talks to 127.0.0.1. A guard runs
//! `down -v` when the test ends, also when it panics (after printing the stack's logs).
//!
//! Uses `docker-compose` when it is installed, else `docker compose`. Fails, never skips, when
//! Docker, Compose or the images are missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::compose::{
    CANDIDATE_COOKIE, HOST, SETTLE, Spec, Stack, assert_clean, clear_compose_env, compose_command, run, text,
};
use support::{Docker, Load, wait_for};

const TRAEFIK_IMAGE: &str = "pointsman-traefik:dev";
const POINTSMAN_IMAGE: &str = "pointsman:dev";
const CANDIDATE_HEADER: (&str, &str) = ("X-Pointsman-Version", "candidate");

#[test]
fn compose_stack_blue_green_end_to_end() {
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let t0 = Instant::now();

    // ---- up: blue (v1) is stable, green (v2) the candidate ----
    let mut stack = new_stack();
    let start = Instant::now();
    stack.up();
    timings.push(("docker-compose up -d", start.elapsed()));
    let start = Instant::now();
    stack.wait_body("blue v1 on the public entrypoint", stack.web(), &[], "blue v1");
    timings.push(("up until blue v1 is served", start.elapsed()));

    // ---- preview: cookie, header and port 81 reach the candidate; nothing else does ----
    let start = Instant::now();
    stack.wait_body(
        "green v2 with the candidate cookie",
        stack.web(),
        &[CANDIDATE_COOKIE],
        "green v2",
    );
    stack.assert_body(
        "green v2 with the candidate header",
        stack.web(),
        &[CANDIDATE_HEADER],
        "green v2",
    );
    stack.assert_body("green v2 on the preview port", stack.preview(), &[], "green v2");
    stack.assert_body(
        "blue v1 with another cookie",
        stack.web(),
        &[("Cookie", "pointsman-demo=other")],
        "blue v1",
    );
    timings.push(("until the candidate is previewable", start.elapsed()));
    stack.assert_roles("after up", "blue", Some("green"), None);

    // ---- pointsman's page, /metrics and /healthz: published on loopback only; its Docker
    //      healthcheck asks /healthz ----
    let page = stack.published_raw("pointsman", 9191);
    assert!(page.starts_with("127.0.0.1:"), "published beyond loopback: {page}");
    let health = support::http_get(&page, "localhost", "/healthz", &[]).expect("GET /healthz");
    assert_eq!(health.status, 200, "{}", health.body);
    let html = support::http_get(&page, "localhost", "/", &[]).expect("GET /").body;
    assert!(html.contains("data-app=\"demo\""), "{html}");
    let id = stack.compose_ok(&[], &["ps", "-q", "pointsman"]);
    wait_for(
        "the pointsman container healthy (pointsman healthcheck)",
        SETTLE,
        || match Docker::health(id.trim()).as_deref() {
            Some("healthy") => Ok(()),
            other => Err(other.map(String::from)),
        },
    );

    // ---- promote and roll back through `docker-compose exec`, under load ----
    let load = stack.load_public();
    let start = Instant::now();
    let out = stack.pointsman_ok(&["promote", "demo"]);
    assert!(
        out.contains("slot green is now stable (was blue)"),
        "promote said: {out}"
    );
    stack.wait_body(
        "green v2 on the public entrypoint after promote",
        stack.web(),
        &[],
        "green v2",
    );
    timings.push(("promote: exec until green v2 is public", start.elapsed()));
    stack.wait_body(
        "blue v1 (the previous) by its slot cookie",
        stack.web(),
        &[("Cookie", "pointsman-demo=blue")],
        "blue v1",
    );
    stack.wait_body(
        "blue v1 (now the candidate) on the preview port",
        stack.preview(),
        &[],
        "blue v1",
    );
    stack.assert_roles("after promote", "green", Some("blue"), Some("blue"));

    let start = Instant::now();
    let out = stack.pointsman_ok(&["rollback", "demo"]);
    assert!(
        out.contains("slot blue is now stable (was green)"),
        "rollback said: {out}"
    );
    stack.wait_body(
        "blue v1 on the public entrypoint after rollback",
        stack.web(),
        &[],
        "blue v1",
    );
    timings.push(("rollback: exec until blue v1 is public", start.elapsed()));
    stack.wait_body(
        "green v2 with the candidate cookie after rollback",
        stack.web(),
        &[CANDIDATE_COOKIE],
        "green v2",
    );
    let stats = load.stop();
    assert_clean("promote and rollback", &stats, &["blue v1", "green v2"]);

    // ---- deploy v3 to the idle colour: it joins as the candidate, public traffic stays ----
    stack.assert_roles("before the redeploy", "blue", Some("green"), Some("green"));
    let load = stack.load_public();
    let start = Instant::now();
    stack.compose_ok(&[("GREEN_VERSION", "v3")], &["up", "-d", "--no-build", "green"]);
    stack.wait_steady(
        "green v3 with the candidate cookie",
        stack.web(),
        &[CANDIDATE_COOKIE],
        "green v3",
    );
    timings.push(("redeploy green v3 until it is the candidate", start.elapsed()));
    stack.assert_body("green v3 on the preview port", stack.preview(), &[], "green v3");
    stack.assert_body("blue v1 still public after the redeploy", stack.web(), &[], "blue v1");
    let stats = load.stop();
    assert_clean("redeploying the idle colour", &stats, &["blue v1"]);
    stack.assert_roles("after the redeploy", "blue", Some("green"), Some("green"));

    // ---- restart the sidecar: every role kept, no request through Traefik fails ----
    let roles_before = stack.status()["apps"]["demo"].clone();
    let history_before = stack.history_len();
    let public = stack.load_public();
    let candidate = Load::start(stack.web(), HOST, "/", &[CANDIDATE_COOKIE], 1);
    let started_before = stack.pointsman_started_at();
    let start = Instant::now();
    stack.compose_ok(&[], &["restart", "pointsman"]);
    timings.push(("docker-compose restart pointsman", start.elapsed()));
    assert_ne!(
        stack.pointsman_started_at(),
        started_before,
        "pointsman was not restarted"
    );
    // The controller's first render after the restart must not move traffic either: keep the
    // load running until it has listed Docker (its status shows the containers again).
    wait_for("pointsman to answer after the restart", SETTLE, || {
        let s = stack.try_status()?;
        if s["apps"]["demo"]["slots"]["green"]["containers"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            Ok(s)
        } else {
            Err(format!("no green container yet: {s}"))
        }
    });
    thread::sleep(Duration::from_secs(1));
    let public = public.stop();
    let candidate = candidate.stop();
    assert_clean("public traffic while pointsman restarted", &public, &["blue v1"]);
    assert_clean("candidate traffic while pointsman restarted", &candidate, &["green v3"]);
    let roles_after = stack.status()["apps"]["demo"].clone();
    for key in ["stable", "candidate", "previous", "pinned"] {
        assert_eq!(
            roles_after[key], roles_before[key],
            "{key} changed across the restart: {roles_after}"
        );
    }
    assert_eq!(stack.history_len(), history_before, "the restart recorded a transition");

    // ---- the restarted controller still follows Docker: promote v3, redeploy blue as v4 ----
    let start = Instant::now();
    stack.pointsman_ok(&["promote", "demo"]);
    stack.wait_body("green v3 public after the second promote", stack.web(), &[], "green v3");
    stack.compose_ok(&[("BLUE_VERSION", "v4")], &["up", "-d", "--no-build", "blue"]);
    stack.wait_steady("blue v4 as the candidate", stack.web(), &[CANDIDATE_COOKIE], "blue v4");
    stack.assert_body("green v3 still public", stack.web(), &[], "green v3");
    stack.assert_roles("at the end", "green", Some("blue"), Some("blue"));
    timings.push(("after the restart: promote v3, redeploy blue v4", start.elapsed()));

    drop(stack);
    timings.push(("whole test, including down", t0.elapsed()));
    for (what, took) in timings {
        eprintln!("timing: {what:<48} {took:>8.2?}");
    }
}

/// The variant file must really take the Docker socket away from pointsman: its only way to
/// Docker is the read-only proxy, on a network nothing else joins.
#[test]
fn socket_proxy_variant_gives_pointsman_no_socket() {
    let compose = compose_command();
    let file = traefik_dir().join("compose.socket-proxy.yml");
    let mut cmd = Command::new(&compose[0]);
    cmd.args(&compose[1..]).arg("-f").arg(&file).args(["config"]);
    clear_compose_env(&mut cmd);
    let out = run(&mut cmd);
    assert!(out.status.success(), "compose config failed: {}", text(&out.stderr));
    // v2 quotes some scalars that v1 prints bare (`CONTAINERS: "1"`); compare without quotes.
    let config = text(&out.stdout).replace('"', "");
    let services = section(&config, "services:");

    let pointsman = section(&services, "  pointsman:");
    assert!(
        !pointsman.contains("docker.sock"),
        "pointsman still mounts the socket:\n{pointsman}"
    );
    for line in [
        "DOCKER_HOST: tcp://socket-proxy:2375",
        "POINTSMAN_DIR: /etc/traefik/dynamic",
        "docker-api",
    ] {
        assert!(pointsman.contains(line), "pointsman lacks {line:?}:\n{pointsman}");
    }

    let proxy = section(&services, "  socket-proxy:");
    for line in ["CONTAINERS: 1", "EVENTS: 1", "POST: 0", "/var/run/docker.sock"] {
        assert!(proxy.contains(line), "socket-proxy lacks {line:?}:\n{proxy}");
    }
    // Compose v1 prints `SRC:DST:ro`, v2 the long syntax.
    assert!(
        proxy.contains("docker.sock:ro") || proxy.contains("read_only: true"),
        "socket not read-only:\n{proxy}"
    );
    // Only the proxy and pointsman join the internal network.
    for other in ["  traefik:", "  blue:", "  green:"] {
        let s = section(&services, other);
        assert!(
            !s.contains("docker-api") && !s.contains("docker.sock"),
            "{other} reaches Docker:\n{s}"
        );
    }
    let networks = section(&config, "networks:");
    assert!(
        section(&networks, "  docker-api:").contains("internal: true"),
        "networks:\n{networks}"
    );
}

// ---- the stack -------------------------------------------------------------------------------

/// `traefik/compose.yml` with the locally built images; `down -v` on drop.
fn new_stack() -> Stack {
    Stack::new(Spec {
        project_prefix: "pmcompose",
        dir: traefik_dir(),
        file: "compose.yml",
        run_in_dir: false,
        project_env: false,
        images: vec![
            ("TRAEFIK_IMAGE", TRAEFIK_IMAGE.into()),
            ("POINTSMAN_IMAGE", POINTSMAN_IMAGE.into()),
            ("DEMO_IMAGE", support::DEMO_IMAGE.into()),
        ],
        defaults: &[
            ("PUBLISH_ADDRESS", "127.0.0.1"),
            ("WEB_PORT", "0"),
            ("PREVIEW_PORT", "0"),
            ("POINTSMAN_PORT", "0"),
            ("BLUE_VERSION", "v1"),
            ("GREEN_VERSION", "v2"),
        ],
        pointsman_in: "the sidecar",
    })
}

/// What only this test asks of the stack.
impl Stack {
    fn history_len(&self) -> usize {
        let out = self.pointsman_ok(&["history", "--json", "--limit", "100000"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("history --json: {e}: {out}"));
        v.as_array().map_or(0, Vec::len)
    }

    fn assert_roles(&self, when: &str, stable: &str, candidate: Option<&str>, previous: Option<&str>) {
        let status = self.status();
        let app = &status["apps"]["demo"];
        let got = (
            app["stable"].as_str(),
            app["candidate"].as_str(),
            app["previous"].as_str(),
        );
        assert_eq!(
            got,
            (Some(stable), candidate, previous),
            "roles {when} (stable, candidate, previous): {status:#}"
        );
        let errors = status["errors"].as_array().map_or(0, Vec::len);
        assert_eq!(errors, 0, "label errors {when}: {status:#}");
    }

    fn pointsman_started_at(&self) -> String {
        let id = self.compose_ok(&[], &["ps", "-q", "pointsman"]);
        Docker::run(&["inspect", "--format", "{{.State.StartedAt}}", id.trim()])
    }
}

// ---- helpers ---------------------------------------------------------------------------------

fn traefik_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("traefik")
}

/// The lines of the block that starts with the line `header` in `docker-compose config` output:
/// the following lines indented deeper than it.
fn section(yaml: &str, header: &str) -> String {
    let indent = header.len() - header.trim_start().len();
    let mut lines = yaml.lines().skip_while(|l| *l != header);
    if lines.next().is_none() {
        panic!("no {header:?} in:\n{yaml}");
    }
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}
