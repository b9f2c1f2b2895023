//! [`Harness`]: one test's pointsman world against a real Docker Engine and a real Traefik 3.7,
//! shared by `tests/integration.rs` and `tests/reliability.rs`.
//!
//! A harness owns a unique label prefix (so controllers of tests running in parallel never see
//! each other's containers), a dynamic directory, a Traefik watching it on free loopback ports,
//! at most one `pointsman run` at a time, and a [`Cleanup`] guard for the demo containers it
//! deploys. It drives pointsman only through its binary (arguments and environment), never
//! through the library, so it does not change when pointsman's internals do.
//!
//! ```ignore
//! let h = Harness::builder("faults").docker_proxy(&proxy).traefik(options).start();
//! let blue = h.deploy("blue-1", "blue", Some("stable"), "v1");
//! h.start_controller();
//! h.wait_healthy(&blue);
//! h.wait_public(&[], "blue v1");
//! h.cli_ok(&["promote", APP]);
//! ```
//!
//! Every method takes `&self`, so one thread may kill and restart the controller while others
//! run CLI commands. When a test panics, the harness prints the tail of the latest controller
//! log (the full logs stay beside the directory, in `target/tmp/`).

use std::fs;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::proxy::DockerProxy;
use super::{Cleanup, DEMO_IMAGE, Docker, HttpResponse, Traefik, TraefikOptions, temp_dir, wait_for, wait_until};

/// The pointsman binary Cargo built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_pointsman");
/// The app every demo container deployed by a harness belongs to.
pub const APP: &str = "web";
/// The host the app is routed on.
pub const HOST: &str = "web.test";
/// How long a harness waits for something to settle. Generous: Traefik's default 2 s throttle
/// plus Docker's 1 s healthcheck interval.
pub const SETTLE: Duration = Duration::from_secs(10);
/// Lines of the controller log printed when a test panics.
const LOG_TAIL: usize = 100;

/// How to set a [`Harness`] up; [`HarnessBuilder::start`] makes it.
pub struct HarnessBuilder {
    test: String,
    traefik: TraefikOptions,
    docker_host: Option<String>,
    env: Vec<(String, String)>,
    controller_args: Vec<String>,
}

impl HarnessBuilder {
    /// Options of the harness's Traefik (default: [`TraefikOptions::default`]).
    pub fn traefik(mut self, options: TraefikOptions) -> Self {
        self.traefik = options;
        self
    }

    /// The controller and the CLI reach Docker through `proxy` (`DOCKER_HOST`). Without it they
    /// use the test process's own `DOCKER_HOST`, as the `docker` CLI of the tests does.
    pub fn docker_proxy(mut self, proxy: &DockerProxy) -> Self {
        self.docker_host = Some(proxy.docker_host());
        self
    }

    /// An environment variable for every pointsman process (controller and CLI).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// pointsman also routes the candidate on Traefik's entrypoint `name` (`preview` exists).
    pub fn preview_entrypoint(self, name: &str) -> Self {
        self.env("POINTSMAN_PREVIEW_ENTRYPOINT", name)
    }

    /// Arguments every `pointsman run` of this harness gets after `run`.
    pub fn controller_args(mut self, args: &[&str]) -> Self {
        self.controller_args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Checks Docker and the demo image (panics with the fix when missing), then starts Traefik
    /// on a new dynamic directory `target/tmp/TEST-<unique>/dynamic`.
    pub fn start(self) -> Harness {
        Docker::require_docker();
        Docker::require_image(DEMO_IMAGE);
        let cleanup = Cleanup::for_test(&self.test);
        let prefix = format!("pm{}", cleanup.id().replace('-', ""));
        let dir = temp_dir(&self.test).join("dynamic");
        fs::create_dir_all(&dir).unwrap();
        let traefik = Traefik::start_with(&dir, self.traefik);
        Harness {
            prefix,
            dir,
            traefik,
            docker_host: self.docker_host,
            env: self.env,
            controller_args: self.controller_args,
            controller: Mutex::new(None),
            started: AtomicUsize::new(0),
            cleanup,
        }
    }
}

/// One test's world: label prefix, dynamic directory, Traefik, controller, demo containers.
pub struct Harness {
    /// The label prefix of this test (`pmUNIQUE`), passed as `POINTSMAN_LABEL_PREFIX`.
    pub prefix: String,
    /// The dynamic directory Traefik watches and pointsman writes (`POINTSMAN_DIR`). A test may
    /// point it elsewhere (and start a new [`Traefik`] on it); controller logs stay beside it.
    pub dir: PathBuf,
    pub traefik: Traefik,
    /// `DOCKER_HOST` for the controller and the CLI; None: the test process's own.
    docker_host: Option<String>,
    env: Vec<(String, String)>,
    controller_args: Vec<String>,
    controller: Mutex<Option<Child>>,
    /// Controllers started so far; the latest logs to `controller-N.log`.
    started: AtomicUsize,
    /// Removes the test's containers when dropped (after Traefik, declared above, is gone).
    pub cleanup: Cleanup,
}

impl Harness {
    /// A harness with the defaults: no proxy, default Traefik options, no extra environment.
    pub fn new(test: &str) -> Harness {
        Self::builder(test).start()
    }

    pub fn builder(test: &str) -> HarnessBuilder {
        HarnessBuilder {
            test: test.to_string(),
            traefik: TraefikOptions::default(),
            docker_host: None,
            env: Vec::new(),
            controller_args: Vec::new(),
        }
    }

    // ---- the CLI ----------------------------------------------------------------------------

    /// `pointsman ARGS` with this harness's directory, label prefix, environment and Docker.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("POINTSMAN_DIR", &self.dir)
            .env("POINTSMAN_LABEL_PREFIX", &self.prefix)
            .env("POINTSMAN_LOG", "pointsman=debug")
            // Tests run controllers in parallel: each serves its page on a port of its own
            // (`status_addr` reads it from the log). A builder `env` may override.
            .env("POINTSMAN_LISTEN", "127.0.0.1:0")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if let Some(host) = &self.docker_host {
            c.env("DOCKER_HOST", host);
        }
        c
    }

    /// Runs the CLI to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run pointsman")
    }

    /// Runs the CLI, panics with its output unless it exits 0; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pointsman {args:?} failed ({}): {}",
            out.status,
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    // ---- the controller ---------------------------------------------------------------------

    /// `pointsman run` with the builder's controller arguments, logging to `controller-N.log`.
    pub fn start_controller(&self) {
        self.start_controller_with(&[]);
    }

    /// `pointsman run` with the builder's controller arguments and then `args`.
    pub fn start_controller_with(&self, args: &[&str]) {
        let mut slot = self.controller.lock().unwrap();
        assert!(slot.is_none(), "a controller is already running");
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let log = fs::File::create(self.log_path(n)).unwrap();
        let mut all = vec!["run"];
        all.extend(self.controller_args.iter().map(String::as_str));
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pointsman run");
        *slot = Some(child);
    }

    /// SIGKILL; panics if the controller had already exited on its own.
    pub fn kill_controller(&self) {
        let mut child = self.take_controller();
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the controller exited on its own ({status}); log:\n{}",
                self.controller_log()
            );
        }
        child.kill().expect("SIGKILL the controller");
        let status: ExitStatus = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`…) with `kill -SIGNAL` and waits for the exit.
    pub fn signal_controller(&self, signal: &str) -> ExitStatus {
        let mut child = self.take_controller();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait().unwrap()
    }

    fn take_controller(&self) -> Child {
        self.controller.lock().unwrap().take().expect("controller running")
    }

    pub fn controller_pid(&self) -> u32 {
        self.controller
            .lock()
            .unwrap()
            .as_ref()
            .expect("controller running")
            .id()
    }

    /// `controller-N.log` beside the directory: the log of the `n`-th controller started.
    pub fn log_path(&self, n: usize) -> PathBuf {
        self.dir.parent().unwrap().join(format!("controller-{n}.log"))
    }

    /// `127.0.0.1:PORT` the running controller serves /metrics, /healthz and its page on, as
    /// its log says (waits for the line).
    pub fn status_addr(&self) -> String {
        wait_until("the controller to say where it serves its page", SETTLE, || {
            let log = self.controller_log();
            let line = log.lines().find(|l| l.contains("the status page on http://"))?;
            let addr = line.rsplit("http://").next()?.trim().trim_end_matches('/');
            Some(addr.to_string())
        })
    }

    /// The log of the latest controller, without terminal colour codes.
    pub fn controller_log(&self) -> String {
        let log = fs::read_to_string(self.log_path(self.started.load(Ordering::SeqCst))).unwrap_or_default();
        strip_ansi(&log)
    }

    /// Adds an environment variable for every later CLI call and controller (for values known
    /// only once Traefik runs, like its metrics URL).
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    // ---- demo containers --------------------------------------------------------------------

    /// The Docker name of this test's container `name` (`<test id>-NAME`).
    pub fn name(&self, name: &str) -> String {
        format!("{}-{name}", self.cleanup.id())
    }

    /// `docker run` arguments for a demo container `name` in `slot` of [`APP`] on [`HOST`],
    /// labelled for this test (and for [`Cleanup`]); it answers `SLOT VERSION`.
    pub fn demo_args(&self, name: &str, slot: &str, version_label: Option<&str>, version: &str) -> Vec<String> {
        let mut labels = vec![
            self.cleanup.label().to_string(),
            format!("{}.app={APP}", self.prefix),
            format!("{}.slot={slot}", self.prefix),
            format!("{}.host={HOST}", self.prefix),
        ];
        if let Some(v) = version_label {
            labels.push(format!("{}.version={v}", self.prefix));
        }
        self.run_args(name, labels, slot, version)
    }

    /// `docker run -d --name NAME --label … -e SLOT -e VERSION IMAGE` for a demo container.
    fn run_args(&self, name: &str, labels: Vec<String>, slot: &str, version: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), self.name(name)];
        for l in labels {
            args.extend(["--label".into(), l]);
        }
        args.extend([
            "-e".into(),
            format!("SLOT={slot}"),
            "-e".into(),
            format!("VERSION={version}"),
        ]);
        args.push(DEMO_IMAGE.into());
        args
    }

    /// A demo container labelled with `labels` under this test's prefix (`("app", "x")`,
    /// `("rule", "...")`, …) and nothing else of [`APP`]'s: a neighbour for integrity tests. It
    /// answers `SLOT VERSION`; returns its Docker name.
    pub fn deploy_labels(&self, name: &str, labels: &[(&str, &str)], slot: &str, version: &str) -> String {
        let mut all = vec![self.cleanup.label().to_string()];
        all.extend(labels.iter().map(|(k, v)| format!("{}.{k}={v}", self.prefix)));
        let args = self.run_args(name, all, slot, version);
        Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.name(name)
    }

    /// Starts a demo container (see [`Harness::demo_args`]); returns its Docker name.
    pub fn deploy(&self, name: &str, slot: &str, version_label: Option<&str>, version: &str) -> String {
        self.deploy_with(name, slot, version_label, version, &[])
    }

    /// [`Harness::deploy`] with more environment for the demo backend (`DRAIN_MS`, …).
    pub fn deploy_with(
        &self,
        name: &str,
        slot: &str,
        version_label: Option<&str>,
        version: &str,
        env: &[(&str, &str)],
    ) -> String {
        let mut args = self.demo_args(name, slot, version_label, version);
        let image = args.pop().expect("the image is last");
        for (k, v) in env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push(image);
        Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.name(name)
    }

    pub fn wait_healthy(&self, container: &str) {
        wait_until(&format!("{container} healthy"), SETTLE, || {
            (Docker::health(container).as_deref() == Some("healthy")).then_some(())
        });
    }

    // ---- what Traefik serves ----------------------------------------------------------------

    /// The body of a request to [`HOST`] on entrypoint `web` (`SLOT VERSION`), or the status
    /// when it is not 200 (see [`describe`]).
    pub fn public(&self, headers: &[(&str, &str)]) -> String {
        describe(self.traefik.get(HOST, "/", headers))
    }

    /// Like [`Harness::public`], on entrypoint `preview`.
    pub fn preview(&self) -> String {
        describe(self.traefik.get_preview(HOST, "/", &[]))
    }

    pub fn wait_public(&self, headers: &[(&str, &str)], expected: &str) {
        wait_until(&format!("public {headers:?} answers {expected:?}"), SETTLE, || {
            (self.public(headers) == expected).then_some(())
        });
    }

    // ---- what pointsman wrote ---------------------------------------------------------------

    /// `DIR/.pointsman/state.json`, parsed.
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.dir.join(".pointsman/state.json")).expect("state.json")).unwrap()
    }

    /// The stable slot of [`APP`] in the state.
    pub fn stable(&self) -> Option<String> {
        self.state()["apps"][APP]["stable"].as_str().map(String::from)
    }

    /// `DIR/pointsman-web.yml`, empty when missing.
    /// The published file of another app outside any Compose project, if there is one.
    pub fn file_of(&self, app: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(format!("pointsman-{app}.yml"))).ok()
    }

    pub fn file(&self) -> String {
        fs::read_to_string(self.dir.join(format!("pointsman-{APP}.yml"))).unwrap_or_default()
    }

    /// Waits until the app's file lists exactly what `want` says about each address (`true`:
    /// `http://IP:80` is a server); returns when it did.
    pub fn wait_servers(&self, what: &str, want: &[(&str, bool)]) -> Instant {
        wait_for(what, SETTLE, || {
            let file = self.file();
            let seen: Vec<(&str, bool)> = want
                .iter()
                .map(|(ip, _)| (*ip, file.contains(&format!("http://{ip}:80"))))
                .collect();
            if seen == want { Ok(Instant::now()) } else { Err(seen) }
        })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut c) = self.controller.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            let n = self.started.load(Ordering::SeqCst);
            let log = self.controller_log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            eprintln!(
                "--- controller log {} (last {} of {} lines) ---",
                self.log_path(n).display(),
                tail.len(),
                lines.len()
            );
            for l in tail {
                eprintln!("{l}");
            }
            eprintln!("--- traefik log: {} ---", self.traefik.log_path.display());
        }
    }
}

/// `SLOT VERSION` (the trimmed body) for a 200, `HTTP STATUS` for another status, `error: …`.
pub fn describe(r: io::Result<HttpResponse>) -> String {
    match r {
        Ok(r) if r.status == 200 => r.body.trim().to_string(),
        Ok(r) => format!("HTTP {}", r.status),
        Err(e) => format!("error: {e}"),
    }
}

/// A process's stdout then stderr, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Drops `ESC [ … letter` sequences (a log's colours, if any).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
