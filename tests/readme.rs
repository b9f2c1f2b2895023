//! README's Compose walkthrough, run as written: the Quickstart's `scripts/stack.sh up`, then
//! every command of the `console` blocks of "Bring it up" in `traefik/`, each output compared
//! with the one README shows. The commands are read from README.md, not copied here, so README
//! and behaviour cannot drift apart.
//!
//! How a command runs: through `bash` in `traefik/`, under a pseudo-terminal (`script`), as a
//! person types it; `docker compose` becomes `docker-compose` where only Compose v1 exists, as
//! README says. What the test's environment adds, as README allows:
//! - the images built here (`TRAEFIK_IMAGE`, `POINTSMAN_IMAGE`, `DEMO_IMAGE`: README's "where
//!   nothing can be pulled"), and free ports (`WEB_PORT=0`, `PREVIEW_PORT=0`, `POINTSMAN_PORT=0`);
//! - a curl configuration (`CURL_HOME`) that connects `demo.localhost:80` and `:81` to those
//!   ports, so `curl http://demo.localhost/` stays as written;
//! - the project name from `traefik/.env` (`pointsman`): the very thing that made the
//!   walkthrough fail before. Only if a `pointsman` project already runs on this machine (a
//!   developer's stack) does the test name its own (`COMPOSE_PROJECT_NAME`, which Compose
//!   puts above `.env` for `stack.sh` and `docker compose` alike), so it never touches that.
//!
//! Output is compared line by line after normalising what README says varies: container
//! addresses, `_` and `-` in Compose's container names (v1 and v2), runs of spaces. A line `...`
//! ends the comparison, a line ending in `...` compares as a prefix. Exit code: 1 when README
//! shows a refusal (`pointsman: refused`), else 0. A command that only reads (`curl`, `status`)
//! is retried until its output matches or 30 s pass: README says routing changes need Docker's
//! healthcheck and Traefik's 2 s throttle.
//!
//! The status page of the running stack is also loaded in Chromium, before and after the
//! promote of step 4, and screenshotted (`POINTSMAN_SCREENSHOT=PATH` also writes it there:
//! that is how `docs/status-page.png` is made).

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::browser::Browser;
use support::harness::output_text;
use support::{Docker, wait_for};

const RETRY_FOR: Duration = Duration::from_secs(30);

struct Step {
    command: String,
    expected: Vec<String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lines between the heading `start` and the next heading of the same level.
fn section<'a>(readme: &'a str, start: &str) -> Vec<&'a str> {
    let level = start.split(' ').next().unwrap();
    let mut lines = readme.lines().skip_while(|l| *l != start);
    assert!(lines.next().is_some(), "README has no {start:?}");
    lines
        .take_while(|l| !(l.starts_with(level) && l.as_bytes().get(level.len()) == Some(&b' ')))
        .collect()
}

/// Commands (`$ ` lines) and the output shown under each, from every ```console block.
fn console_steps(lines: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    for line in lines {
        if line.starts_with("```") {
            in_block = !in_block && line.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.to_string());
        }
    }
    steps
}

fn compose_v2_missing() -> bool {
    !Command::new("docker")
        .args(["compose", "version"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A token as README's comparison sees it.
fn normalise(line: &str, project: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|t| {
            let t = t.replacen(&format!("{project}_"), "pointsman_", 1);
            let t = t.replacen(&format!("{project}-"), "pointsman-", 1);
            if t.starts_with("pointsman-") || t.starts_with("pointsman_") {
                return t.replace('-', "_");
            }
            if let Some(rest) = t.strip_prefix("http://")
                && let Some((host, port)) = rest.split_once(':')
                && host.split('.').count() == 4
                && host.split('.').all(|p| p.parse::<u8>().is_ok())
            {
                return format!("http://IP:{port}");
            }
            t
        })
        .collect()
}

/// Whether `actual` is what README shows; else why not.
fn matches(expected: &[String], actual: &str, project: &str) -> Result<(), String> {
    let actual: Vec<&str> = actual
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .collect();
    for (i, want) in expected.iter().enumerate() {
        if want.trim() == "..." {
            return Ok(());
        }
        let Some(got) = actual.get(i) else {
            return Err(format!("line {}: missing, README shows {want:?}", i + 1));
        };
        let (w, g) = (normalise(want, project), normalise(got, project));
        let ok = match want.trim_end().strip_suffix("...") {
            Some(prefix) => {
                let p = normalise(prefix, project).join(" ");
                g.join(" ").starts_with(p.trim_end())
            }
            None => w == g,
        };
        if !ok {
            return Err(format!("line {}: README shows {want:?}, got {got:?}", i + 1));
        }
    }
    if actual.len() > expected.len() {
        return Err(format!(
            "more output than README shows: {:?}",
            &actual[expected.len()..]
        ));
    }
    Ok(())
}

/// Only reads: may be run again until its output matches.
fn reads_only(command: &str) -> bool {
    command.starts_with("curl ") || command.contains("pointsman status") || command.contains("pointsman history")
}

struct Walkthrough {
    env: Vec<(String, String)>,
    compose: String,
}

impl Walkthrough {
    fn command(&self, dir: &Path, line: &str) -> Command {
        // `script` gives the command a terminal, as when a person types it.
        let mut c = Command::new("script");
        c.args(["-qefc", line, "/dev/null"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn run(&self, dir: &Path, line: &str) -> Output {
        self.command(dir, line)
            .output()
            .unwrap_or_else(|e| panic!("run {line}: {e}"))
    }

    fn compose(&self, args: &str) -> Output {
        self.run(&root().join("traefik"), &format!("{} {args}", self.compose))
    }

    fn published(&self, service: &str, port: u16) -> String {
        let out = self.compose(&format!("port {service} {port}"));
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && text.contains(':'),
            "port {service} {port}: {}",
            output_text(&out)
        );
        text
    }
}

impl Drop for Walkthrough {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.compose("logs --no-color --tail 100");
            eprintln!("---- stack logs ----\n{}", output_text(&out));
        }
        let out = self.compose("down -v --remove-orphans -t 2");
        if !out.status.success() {
            eprintln!("down -v failed: {}", output_text(&out));
        }
    }
}

#[test]
fn readme_compose_walkthrough_runs_verbatim() {
    Docker::require_docker();
    for image in ["pointsman-traefik:dev", "pointsman:dev", support::DEMO_IMAGE] {
        Docker::require_image(image);
    }
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let quickstart = section(&readme, "## Quickstart (Docker Compose)");
    let up = quickstart
        .iter()
        .find_map(|l| l.trim().strip_prefix("scripts/stack.sh up"))
        .map(|_| "scripts/stack.sh up")
        .expect("the Quickstart starts the stack with scripts/stack.sh up");
    let steps = console_steps(&section(&readme, "### Bring it up"));
    assert!(steps.len() >= 15, "the walkthrough's commands: {}", steps.len());

    let compose = if compose_v2_missing() {
        "docker-compose"
    } else {
        "docker compose"
    };
    // A developer's own `pointsman` stack is never touched: then, and only then, another name.
    let theirs = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=com.docker.compose.project=pointsman"])
        .output()
        .unwrap();
    let project = if theirs.stdout.is_empty() {
        "pointsman".to_string()
    } else {
        let p = support::unique_id("pmreadme").replace('-', "");
        eprintln!("a `pointsman` Compose project runs here: the walkthrough uses {p} instead");
        p
    };
    let curl_home = support::temp_dir("readme-curl");
    let mut env: Vec<(String, String)> = [
        ("TRAEFIK_IMAGE", "pointsman-traefik:dev"),
        ("POINTSMAN_IMAGE", "pointsman:dev"),
        ("DEMO_IMAGE", support::DEMO_IMAGE),
        ("WEB_PORT", "0"),
        ("PREVIEW_PORT", "0"),
        ("POINTSMAN_PORT", "0"),
        ("BLUE_VERSION", "v1"),
        ("GREEN_VERSION", "v2"),
        ("CURL_HOME", curl_home.to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if project != "pointsman" {
        env.push(("COMPOSE_PROJECT_NAME".into(), project.clone()));
    }
    let w = Walkthrough {
        env,
        compose: compose.to_string(),
    };

    let start = Instant::now();
    let out = w.run(&root(), up);
    assert!(out.status.success(), "{up}: {}", output_text(&out));
    eprintln!("{up}: {:.1?}", start.elapsed());
    let web = w.published("traefik", 80);
    let preview = w.published("traefik", 81);
    let page = w.published("pointsman", 9191);
    assert!(
        page.starts_with("127.0.0.1:"),
        "the page is published on loopback only: {page}"
    );
    fs::write(
        curl_home.join(".curlrc"),
        format!("connect-to = demo.localhost:80:{web}\nconnect-to = demo.localhost:81:{preview}\n"),
    )
    .unwrap();
    // The plain `docker compose` in traefik/ finds the stack stack.sh started (issue: it used to
    // look for project `traefik` and find nothing).
    let ps = w.compose("ps -q pointsman");
    assert!(
        !String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "{}",
        output_text(&ps)
    );

    let mut browser = Browser::start();
    browser.open(&format!("http://{page}/"));
    let traefik = root().join("traefik");
    for (n, step) in steps.iter().enumerate() {
        let line = step.command.replace("docker compose", compose);
        let refused = step
            .expected
            .first()
            .is_some_and(|l| l.starts_with("pointsman: refused"));
        let want_code = if refused { 1 } else { 0 };
        let began = Instant::now();
        let check = |out: &Output| -> Result<(), String> {
            let text = terminal_text(out);
            if out.status.code() != Some(want_code) {
                return Err(format!(
                    "exit {:?}, README implies {want_code}: {text}",
                    out.status.code()
                ));
            }
            if step.expected.is_empty() {
                return Ok(());
            }
            matches(&step.expected, &text, &project)
        };
        if reads_only(&step.command) {
            wait_for(
                &format!("step {}: `{line}` to show what README shows", n + 1),
                RETRY_FOR,
                || check(&w.run(&traefik, &line)),
            );
        } else {
            let out = w.run(&traefik, &line);
            if let Err(e) = check(&out) {
                panic!("step {}: `{line}`: {e}", n + 1);
            }
        }
        eprintln!("ok {:>6.1?}  $ {line}", began.elapsed());

        // The page of the running stack, in the browser, before and after the first promote.
        if n == 1 {
            let roles = roles_in_dom(&mut browser);
            assert_eq!(
                roles,
                serde_json::json!({"blue": "stable", "green": "candidate"}),
                "page before promote"
            );
        }
        if step.command.ends_with("pointsman promote demo") && !refused && n < 12 {
            wait_for("the page to show the promote", RETRY_FOR, || {
                let roles = roles_in_dom(&mut browser);
                (roles == serde_json::json!({"blue": "candidate", "green": "stable"}))
                    .then_some(())
                    .ok_or(roles)
            });
        }
    }
    // The page at the end of the walkthrough (README's picture): green promoted again, and a
    // window of Traefik's traffic in.
    wait_for("the page to show the end of the walkthrough", RETRY_FOR, || {
        let text = browser.eval("document.body.innerText");
        let text = text.as_str().unwrap_or_default().to_string();
        let roles = roles_in_dom(&mut browser);
        let done = roles == serde_json::json!({"blue": "candidate", "green": "stable"})
            && text.contains("last window ended")
            && !text.contains("failed");
        done.then_some(()).ok_or(roles)
    });
    let shot = support::temp_dir("readme-page").join("status-page.png");
    browser.screenshot(&shot);
    if let Some(to) = std::env::var_os("POINTSMAN_SCREENSHOT") {
        fs::copy(&shot, &to).unwrap();
    }
    eprintln!("status page at the end: {}", shot.display());
    eprintln!(
        "README walkthrough: {} commands as written, {:.1?}",
        steps.len(),
        start.elapsed()
    );
}

/// What the terminal showed: `script` echoes the end of its (empty) input as `^@`/`^D`, and
/// Compose may colour its messages.
fn terminal_text(out: &Output) -> String {
    let raw = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    support::harness::strip_ansi(&raw.replace("^@", "").replace("^D", "").replace('\r', ""))
}

fn roles_in_dom(b: &mut Browser) -> serde_json::Value {
    b.eval(
        "Object.fromEntries([...document.querySelectorAll('section.app[data-app=demo] tr.slot')].map(\
           r => [r.querySelector('td.name').innerText, r.querySelector('td.role').innerText]))",
    )
}

#[test]
fn console_blocks_are_read_as_commands_and_their_output() {
    let text = "## A\n```console\n$ one\nout 1\n\n$ two # c\n```\n```sh\n$ not this\n```\n## B\n";
    let steps = console_steps(&section(text, "## A"));
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].command, "one");
    assert_eq!(steps[0].expected, ["out 1", ""]);
    assert_eq!(steps[1].command, "two # c");
    assert!(
        matches(
            &["  x_1   ready  http://172.29.0.3:80".into()],
            "x_1 ready http://10.0.0.9:80\r\n",
            "p"
        )
        .is_ok()
    );
    assert!(matches(&["pointsman_blue_1".into()], "myproj-blue-1", "myproj").is_ok());
    assert!(matches(&["a b ...".into()], "a b c d", "p").is_ok());
    assert!(matches(&["a".into()], "a\nb", "p").is_err());
}
