//! A Compose stack of the project's own files (`traefik/compose.yml`, `traefik/redis/compose.yml`)
//! as one test's unique Compose project: the compose command with the local images and the test's
//! variables, the pointsman CLI inside the stack (`exec -T pointsman pointsman`), its status,
//! published ports, requests through Traefik, and `down -v` when the test ends (also when it
//! panics, after printing the stack's logs).
//!
//! [`Spec`] says what differs between stacks: the compose file and where compose runs, the project
//! name's prefix, the image variables, the other variables' defaults.
//!
//! Uses `docker-compose` when it is installed, else `docker compose`. Fails, never skips, when
//! Docker, Compose or an image is missing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Docker, HttpResponse, Load, LoadStats, http_get, unique_id, wait_for};

/// The demo app's host name in the compose files.
pub const HOST: &str = "demo.localhost";
pub const CANDIDATE_COOKIE: (&str, &str) = ("Cookie", "pointsman-demo=candidate");
/// A route change needs Docker's healthcheck (2 s interval in the compose files) and, right after
/// the previous change, Traefik's 2 s provider throttle: generous, since only correctness is
/// asserted here.
pub const SETTLE: Duration = Duration::from_secs(30);
/// How long an answer must hold before a redeploy counts as settled: longer than Traefik's 2 s
/// `providersThrottleDuration`, so no older configuration can still be waiting to be applied.
pub const STEADY: Duration = Duration::from_secs(3);

/// What one kind of stack needs.
pub struct Spec {
    /// The project name is `unique_id(project_prefix)` without dashes.
    pub project_prefix: &'static str,
    /// The directory of the compose file.
    pub dir: PathBuf,
    /// The compose file's name in `dir`.
    pub file: &'static str,
    /// Run compose with `dir` as working directory (else the test's own).
    pub run_in_dir: bool,
    /// Also give the project name as `COMPOSE_PROJECT_NAME` (for a file that reads it).
    pub project_env: bool,
    /// Image variables and the images they name; each must exist locally.
    pub images: Vec<(&'static str, String)>,
    /// The other variables every compose command gets; a call's own `env` overrides them.
    pub defaults: &'static [(&'static str, &'static str)],
    /// Where the CLI runs, for failure messages (`"the sidecar"`).
    pub pointsman_in: &'static str,
}

/// One Compose project; `down -v` on drop unless [`Stack::down`] ran.
pub struct Stack {
    compose: Vec<String>,
    project: String,
    spec: Spec,
    web: String,
    preview: String,
    down: bool,
}

impl Stack {
    /// Checks Docker and the images; starts nothing yet (see [`Stack::up`]).
    pub fn new(spec: Spec) -> Stack {
        Docker::require_docker();
        for (_, image) in &spec.images {
            Docker::require_image(image);
        }
        Stack {
            compose: compose_command(),
            project: unique_id(spec.project_prefix).replace('-', ""),
            spec,
            web: String::new(),
            preview: String::new(),
            down: false,
        }
    }

    /// `up -d --no-build`, then finds Traefik's published `web` (80) and `preview` (81) ports.
    pub fn up(&mut self) {
        self.compose_ok(&[], &["up", "-d", "--no-build"]);
        self.web = self.published("traefik", 80);
        self.preview = self.published("traefik", 81);
    }

    /// The Compose project's name.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// `127.0.0.1:PORT` of Traefik's `web` entrypoint.
    pub fn web(&self) -> &str {
        &self.web
    }

    /// `127.0.0.1:PORT` of Traefik's `preview` entrypoint.
    pub fn preview(&self) -> &str {
        &self.preview
    }

    /// `docker-compose -p PROJECT -f DIR/FILE ARGS`, with the images and the defaults; `env`
    /// overrides (e.g. `GREEN_VERSION`).
    pub fn compose(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("-p")
            .arg(&self.project)
            .arg("-f")
            .arg(self.spec.dir.join(self.spec.file))
            .args(args);
        if self.spec.run_in_dir {
            cmd.current_dir(&self.spec.dir);
        }
        clear_compose_env(&mut cmd);
        if self.spec.project_env {
            cmd.env("COMPOSE_PROJECT_NAME", &self.project);
        }
        for (k, v) in &self.spec.images {
            cmd.env(k, v);
        }
        for (k, v) in self.spec.defaults.iter().chain(env) {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs compose; panics with its output unless it succeeds; returns stdout.
    pub fn compose_ok(&self, env: &[(&str, &str)], args: &[&str]) -> String {
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

    /// `docker-compose exec -T pointsman pointsman ARGS`: the CLI inside the pointsman service's
    /// container, with its environment (POINTSMAN_DIR or POINTSMAN_STORE, …).
    pub fn pointsman(&self, args: &[&str]) -> Output {
        let mut full = vec!["exec", "-T", "pointsman", "pointsman"];
        full.extend(args);
        run(&mut self.compose(&[], &full))
    }

    /// [`Stack::pointsman`]; panics with its output unless it succeeds; returns stdout.
    pub fn pointsman_ok(&self, args: &[&str]) -> String {
        let out = self.pointsman(args);
        assert!(
            out.status.success(),
            "pointsman {args:?} in {} failed ({}):\n{}{}",
            self.spec.pointsman_in,
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `status --json` in the stack, or what went wrong.
    pub fn try_status(&self) -> Result<Value, String> {
        let out = self.pointsman(&["status", "--json"]);
        if !out.status.success() {
            return Err(format!("status failed ({}): {}", out.status, text(&out.stderr)));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("status --json: {e}: {}", text(&out.stdout)))
    }

    pub fn status(&self) -> Value {
        self.try_status().unwrap_or_else(|e| panic!("{e}"))
    }

    /// `127.0.0.1:PORT` that Docker published for `service`'s container port.
    pub fn published(&self, service: &str, container_port: u16) -> String {
        let out = self.compose_ok(&[], &["port", service, &container_port.to_string()]);
        let port = out.trim().rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
        match port {
            Some(p) if p != 0 => format!("127.0.0.1:{p}"),
            _ => panic!("no published port for {service}:{container_port}: {out:?}"),
        }
    }

    /// `ADDRESS:PORT` exactly as Docker published `service`'s container port.
    pub fn published_raw(&self, service: &str, container_port: u16) -> String {
        let out = self.compose_ok(&[], &["port", service, &container_port.to_string()]);
        out.trim().to_string()
    }

    pub fn wait_body(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
        wait_for(what, SETTLE, || expect_body(addr, headers, body));
    }

    /// Waits until `body` has been the only answer for [`STEADY`].
    ///
    /// A redeployed container often gets the IP its predecessor had, so while Traefik still holds
    /// a throttled, older configuration, that stale route already reaches the new container: one
    /// right answer does not mean Traefik has caught up. It may still apply the configuration
    /// pointsman wrote while the old container was stopping (candidate without servers, so the
    /// cookie falls through to stable) before the final one.
    pub fn wait_steady(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
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

    pub fn assert_body(&self, what: &str, addr: &str, headers: &[(&str, &str)], body: &str) {
        if let Err(seen) = expect_body(addr, headers, body) {
            panic!("{what}: {seen}");
        }
    }

    /// Two keep-alive clients looping on the public route.
    pub fn load_public(&self) -> Load {
        let load = Load::start(self.web(), HOST, "/", &[], 2);
        wait_for("the load to flow", Duration::from_secs(5), || {
            if load.sent() > 10 { Ok(()) } else { Err(load.sent()) }
        });
        load
    }

    /// `down -v --remove-orphans`; panics if it fails.
    pub fn down(&mut self) {
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
pub fn compose_command() -> Vec<String> {
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

/// Variables from the caller's environment that would change what compose runs.
pub fn clear_compose_env(cmd: &mut Command) {
    for var in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "COMPOSE_PATH_SEPARATOR",
    ] {
        cmd.env_remove(var);
    }
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Ok if one GET through Traefik answers 200 with `"BODY\n"`, else what it saw.
pub fn expect_body(addr: &str, headers: &[(&str, &str)], body: &str) -> Result<(), String> {
    match http_get(addr, HOST, "/", headers) {
        Ok(HttpResponse {
            status: 200, body: b, ..
        }) if b.trim_end() == body => Ok(()),
        Ok(r) => Err(format!("{} {:?}", r.status, r.body)),
        Err(e) => Err(format!("error: {e}")),
    }
}

/// No failed request, and every answer came from one of `allowed` (`"SLOT VERSION"`).
pub fn assert_clean(what: &str, stats: &LoadStats, allowed: &[&str]) {
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
