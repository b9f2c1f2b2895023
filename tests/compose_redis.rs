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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Docker, HttpResponse, Load, LoadStats, http_get, unique_id, wait_for};

const HOST: &str = "demo.localhost";
const CANDIDATE_COOKIE: (&str, &str) = ("Cookie", "pointsman-demo=candidate");
/// A route change needs Docker's healthcheck (2 s interval) and Traefik's provider throttle
/// (2 s): generous, since only correctness is asserted here.
const SETTLE: Duration = Duration::from_secs(30);
/// How long an answer must hold before a redeploy counts as settled (longer than Traefik's 2 s
/// throttle, so no older configuration can still be waiting to be applied).
const STEADY: Duration = Duration::from_secs(3);

#[test]
fn redis_stack_deploy_and_promote_end_to_end() {
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let t0 = Instant::now();

    // ---- up: blue (v1) stable, green (v2) the candidate, all through Redis ----
    let mut stack = Stack::new();
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
        text_status.matches(stack.project.as_str()).count(),
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
    let project = stack.project.clone();
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

/// One Compose project running `traefik/redis/compose.yml`; `down -v` on drop.
struct Stack {
    compose: Vec<String>,
    project: String,
    dir: PathBuf,
    images: Vec<(&'static str, String)>,
    web: String,
    preview: String,
    down: bool,
}

impl Stack {
    fn new() -> Stack {
        Docker::require_docker();
        let images = vec![
            ("TRAEFIK_IMAGE", image("TRAEFIK_IMAGE", "pointsman-traefik:dev")),
            ("POINTSMAN_IMAGE", image("POINTSMAN_IMAGE", "pointsman:dev")),
            ("DEMO_IMAGE", image("DEMO_IMAGE", support::DEMO_IMAGE)),
            ("REDIS_IMAGE", image("REDIS_IMAGE", "pointsman-redis:dev")),
        ];
        for (_, image) in &images {
            Docker::require_image(image);
        }
        Stack {
            compose: compose_command(),
            project: unique_id("pmredis").replace('-', ""),
            dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("traefik").join("redis"),
            images,
            web: String::new(),
            preview: String::new(),
            down: false,
        }
    }

    fn up(&mut self) {
        self.compose_ok(&[], &["up", "-d", "--no-build"]);
        self.web = self.published("traefik", 80);
        self.preview = self.published("traefik", 81);
    }

    fn web(&self) -> &str {
        &self.web
    }

    fn preview(&self) -> &str {
        &self.preview
    }

    /// `docker-compose -p PROJECT -f traefik/redis/compose.yml ARGS` in `traefik/redis/`, with
    /// the images and free ports; `env` overrides (e.g. `GREEN_VERSION`).
    fn compose(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(self.dir.join("compose.yml"))
            .args(args)
            .current_dir(&self.dir);
        for var in ["COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR"] {
            cmd.env_remove(var);
        }
        // The file scopes pointsman to ${COMPOSE_PROJECT_NAME}: the same name as `-p`.
        cmd.env("COMPOSE_PROJECT_NAME", &self.project);
        for (k, v) in &self.images {
            cmd.env(k, v);
        }
        let defaults = [
            ("PUBLISH_ADDRESS", "127.0.0.1"),
            ("REDIS_PUBLISH_ADDRESS", "127.0.0.1"),
            ("WEB_PORT", "0"),
            ("PREVIEW_PORT", "0"),
            ("POINTSMAN_PORT", "0"),
            ("REDIS_PORT", "0"),
            ("POINTSMAN_HOST_ID", "host-1"),
            ("BLUE_VERSION", "v1"),
            ("GREEN_VERSION", "v2"),
        ];
        for (k, v) in defaults.iter().chain(env) {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    fn compose_ok(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let out = run(&mut self.compose(env, args));
        assert!(
            out.status.success(),
            "{} {args:?} failed ({}):\n{}{}",
            self.compose.join(" "),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `docker-compose exec -T pointsman pointsman ARGS`: the CLI inside the controller's
    /// container, with its environment (POINTSMAN_STORE=redis://redis:6379/0, …).
    fn pointsman(&self, args: &[&str]) -> Output {
        let mut full = vec!["exec", "-T", "pointsman", "pointsman"];
        full.extend(args);
        run(&mut self.compose(&[], &full))
    }

    fn pointsman_ok(&self, args: &[&str]) -> String {
        let out = self.pointsman(args);
        assert!(
            out.status.success(),
            "pointsman {args:?} in the container failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `redis-cli ARGS` inside the redis container; its stdout.
    fn redis_cli(&self, args: &[&str]) -> String {
        let mut full = vec!["exec", "-T", "redis", "redis-cli"];
        full.extend(args);
        self.compose_ok(&[], &full)
    }

    fn try_status(&self) -> Result<Value, String> {
        let out = self.pointsman(&["status", "--json"]);
        if !out.status.success() {
            return Err(format!("status failed ({}): {}", out.status, text(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("status --json: {e}: {}", text(&out.stdout)))
    }

    fn status(&self) -> Value {
        self.try_status().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `127.0.0.1:PORT` that Docker published for `service`'s container port.
    fn published(&self, service: &str, container_port: u16) -> String {
        let out = self.compose_ok(&[], &["port", service, &container_port.to_string()]);
        let port = out.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        match port {
            Some(p) if p != 0 => format!("127.0.0.1:{p}"),
            _ => panic!("no published port for {service}:{container_port}: {out:?}"),
        }
    }

    fn wait_body(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
        wait_for(what, SETTLE, || expect_body(addr, headers, body));
    }

    /// Waits until `body` has been the only answer for [`STEADY`] (a redeployed container may
    /// get its predecessor's address, so one right answer does not mean Traefik caught up).
    fn wait_steady(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
        let mut since: Option<Instant> = None;
        wait_for(what, SETTLE, || {
            expect_body(addr, headers, body).inspect_err(|_| since = None)?;
            let held = since.get_or_insert_with(Instant::now).elapsed();
            if held >= STEADY {
                Ok(())
            } else {
                Err(format!("right answer held for {held:.1?} so far"))
            }
        });
    }

    fn assert_body(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
        if let Err(seen) = expect_body(addr, headers, body) {
            panic!("{what}: {seen}");
        }
    }

    /// Two keep-alive clients looping on the public route.
    fn load_public(&self) -> Load {
        let load = Load::start(self.web(), HOST, "/", &[], 2);
        wait_for("the load to flow", Duration::from_secs(5), || {
            if load.sent() > 10 { Ok(()) } else { Err(load.sent()) }
        });
        load
    }

    /// `down -v --remove-orphans`; panics if it fails.
    fn down(&mut self) {
        self.down = true;
        self.compose_ok(&[], &["down", "-v", "--remove-orphans", "-t", "2"]);
    }

    fn print_logs(&self) {
        if let Ok(out) = self.compose(&[], &["ps"]).output() {
            eprintln!("---- {} ps ----\n{}", self.project, text(&out.stdout));
        }
        if let Ok(out) = self.compose(&[], &["logs", "--no-color", "--tail", "200"]).output() {
            eprintln!(
                "---- {} logs ----\n{}{}",
                self.project,
                text(&out.stdout),
                text(&out.stderr)
            );
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if thread::panicking() {
            self.print_logs();
        }
        if self.down {
            return;
        }
        if std::env::var_os("POINTSMAN_TEST_KEEP").is_some_and(|v| v == "1") {
            eprintln!("POINTSMAN_TEST_KEEP=1: keeping compose project {}", self.project);
            return;
        }
        match self
            .compose(&[], &["down", "-v", "--remove-orphans", "-t", "2"])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!("compose down for {} failed: {}", self.project, text(&o.stderr)),
            Err(e) => eprintln!("compose down for {}: {e}", self.project),
        }
    }
}

// ---- helpers ---------------------------------------------------------------------------------

/// `["docker-compose"]` if installed, else `["docker", "compose"]`; panics if neither works.
fn compose_command() -> Vec<String> {
    let works = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&["docker-compose"]) {
        vec!["docker-compose".into()]
    } else if works(&["docker", "compose"]) {
        vec!["docker".into(), "compose".into()]
    } else {
        panic!(
            "this test needs Docker Compose: neither `docker-compose` nor `docker compose` works (apt-get install docker-compose)"
        )
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Ok if one GET through Traefik answers 200 with `"BODY\n"`, else what it saw.
fn expect_body(addr: &str, headers: &[(&str, &str)], body: &str) -> Result<(), String> {
    match http_get(addr, HOST, "/", headers) {
        Ok(HttpResponse {
            status: 200, body: b, ..
        }) if b.trim_end() == body => Ok(()),
        Ok(r) => Err(format!("{} {:?}", r.status, r.body)),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// No failed request, and every answer came from one of `allowed` (`"SLOT VERSION"`).
fn assert_clean(what: &str, stats: &LoadStats, allowed: &[&str]) {
    assert!(stats.requests > 0, "{what}: the load sent no request");
    assert_eq!(stats.failures(), 0, "{what}: failed requests: {stats:?}");
    let unexpected: BTreeMap<&String, &u64> = stats
        .bodies
        .iter()
        .filter(|(b, _)| !allowed.contains(&b.trim_end()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{what}: answers from outside {allowed:?}: {unexpected:?}"
    );
    eprintln!(
        "load during {what}: {} requests, 0 failed, bodies {:?}",
        stats.requests, stats.bodies
    );
}
