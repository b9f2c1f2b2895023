//! `pointsman run --listen`: its metrics read by a real Prometheus parser, its `/healthz`
//! through Docker faults, and its status page in a real browser, on a real Docker Engine and a
//! real Traefik (the [`Harness`]).
//!
//! Needs Docker, Traefik, Chromium (`chromium`) and Python 3 (the `prometheus-client` package
//! goes into `target/test-venv` through `scripts/install-test-python.sh`); fails, never skips,
//! when one is missing.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser::Browser;
use support::harness::{APP, Harness, SETTLE, output_text};
use support::proxy::DockerProxy;
use support::{Docker, HttpResponse, http_get, wait_for, wait_until};

/// `/healthz` must say Docker is gone within this long.
const HEALTH_DEADLINE: Duration = Duration::from_secs(2);

fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_get(addr, "localhost", path, headers).unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"))
}

// ---- /metrics --------------------------------------------------------------------------------

/// Parses exposition text with the `prometheus-client` Python package (the Prometheus
/// project's own parsers): `openmetrics` picks its strict OpenMetrics parser, else the text
/// format parser. Returns `name{labels} → value` for every sample, and `family → type`.
fn parse_with_python(text: &str, openmetrics: bool) -> (BTreeMap<String, f64>, BTreeMap<String, String>) {
    let out = Command::new("scripts/install-test-python.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run scripts/install-test-python.sh");
    assert!(out.status.success(), "install-test-python.sh: {}", output_text(&out));
    let python = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let script = r#"
import json, sys
if sys.argv[1] == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families
samples, types = {}, {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        samples[s.name + "{" + labels + "}"] = s.value
print(json.dumps({"samples": samples, "types": types}))
"#;
    let mut child = Command::new(python)
        .args(["-c", script, if openmetrics { "openmetrics" } else { "text" }])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser rejected /metrics: {}\n{text}",
        output_text(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = v["samples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    let types = v["types"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (samples, types)
}

fn metrics(addr: &str) -> BTreeMap<String, f64> {
    let r = get(addr, "/metrics", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain; version=0.0.4")
    );
    parse_with_python(&r.body, false).0
}

#[test]
fn metrics_are_read_by_a_real_prometheus_parser_and_follow_transitions_weights_and_errors() {
    let h = Harness::new("observe-metrics");
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", None, "v2");
    // A container of the app with a bad label: left out, counted under its app.
    Docker::run(&[
        "run",
        "-d",
        "--name",
        &h.name("bad"),
        "--label",
        h.cleanup.label(),
        "--label",
        &format!("{}.app={APP}", h.prefix),
        "--label",
        &format!("{}.port=eighty", h.prefix),
        "--label",
        &format!("{}.host=web.test", h.prefix),
        support::DEMO_IMAGE,
    ]);
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    let addr = h.status_addr();
    let app = format!("app=\"{APP}\"");

    // Both formats, each through its own strict parser; names follow the conventions.
    let om = get(
        &addr,
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
    );
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let (om_samples, om_types) = parse_with_python(&om.body, true);
    let text = get(&addr, "/metrics", &[]);
    let (samples, types) = parse_with_python(&text.body, false);
    eprintln!("metric families (OpenMetrics): {om_types:?}");
    for (name, kind) in &types {
        assert!(name.starts_with("pointsman_"), "{name}");
        if kind == "histogram" {
            assert!(name.ends_with("_seconds"), "histogram {name}");
        }
    }
    // Counter samples end in `_total` (the parser names the family without it).
    for sample in samples.keys() {
        let family = sample.split('{').next().unwrap();
        if let Some(base) = family.strip_suffix("_total") {
            assert_eq!(types.get(base).map(String::as_str), Some("counter"), "{sample}");
        } else {
            assert_ne!(types.get(family).map(String::as_str), Some("counter"), "{sample}");
        }
    }
    for (family, kind) in [
        ("pointsman_transitions", "counter"),
        ("pointsman_reconciles", "counter"),
        ("pointsman_reconcile_duration_seconds", "histogram"),
        ("pointsman_docker_events", "counter"),
        ("pointsman_docker_connected", "gauge"),
        ("pointsman_label_errors", "gauge"),
        ("pointsman_canary_weight_percent", "gauge"),
        ("pointsman_rollout_step", "gauge"),
        ("pointsman_build", "info"),
    ] {
        assert_eq!(
            om_types.get(family).map(String::as_str),
            Some(kind),
            "{family}: {om_types:?}"
        );
    }
    assert_eq!(types["pointsman_transitions"], "counter");
    assert_eq!(
        om_samples[&format!("pointsman_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"))],
        1.0
    );
    let at = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied();
    assert_eq!(at(&samples, "pointsman_docker_connected{}"), Some(1.0));
    assert!(at(&samples, "pointsman_reconcile_duration_seconds_count{}").unwrap() >= 1.0);
    assert!(at(&samples, "pointsman_docker_events_total{kind=\"upsert\"}").is_some());
    assert_eq!(at(&samples, &format!("pointsman_label_errors{{{app}}}")), Some(1.0));
    assert_eq!(
        at(
            &samples,
            &format!("pointsman_transitions_total{{action=\"seed\",{app},by=\"controller\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        at(&samples, &format!("pointsman_routable_servers{{{app},slot=\"blue\"}}")),
        Some(1.0)
    );

    // The CLI changes roles and weights; the controller picks them up and counts them.
    h.cli_ok(&["canary", APP, "10"]);
    let m = wait_for("the canary weight in /metrics", SETTLE, || {
        let m = metrics(&addr);
        (at(&m, &format!("pointsman_canary_weight_percent{{{app}}}")) == Some(10.0))
            .then_some(m.clone())
            .ok_or(m)
    });
    assert_eq!(
        at(
            &m,
            &format!("pointsman_transitions_total{{action=\"canary\",{app},by=\"cli\"}}")
        ),
        Some(1.0)
    );
    h.cli_ok(&["rollout", APP, "--steps", "20,50,100", "--pause", "1h", "--no-analysis"]);
    wait_for("the rollout step in /metrics", SETTLE, || {
        let m = metrics(&addr);
        let step = at(&m, &format!("pointsman_rollout_step{{{app}}}"));
        let steps = at(&m, &format!("pointsman_rollout_steps{{{app}}}"));
        (step == Some(1.0) && steps == Some(3.0))
            .then_some(())
            .ok_or((step, steps))
    });
    h.cli_ok(&["promote", APP, "--force"]);
    let m = wait_for("the promote in /metrics", SETTLE, || {
        let m = metrics(&addr);
        let promotes = at(
            &m,
            &format!("pointsman_transitions_total{{action=\"promote\",{app},by=\"cli\"}}"),
        );
        (promotes == Some(1.0)).then_some(m.clone()).ok_or(m)
    });
    assert_eq!(at(&m, &format!("pointsman_canary_weight_percent{{{app}}}")), Some(0.0));
    assert_eq!(at(&m, &format!("pointsman_rollout_step{{{app}}}")), Some(0.0));
    h.wait_public(&[], "green v2");
}

// ---- /healthz --------------------------------------------------------------------------------

/// Polls `/healthz` until it answers `want`; how long that took, and the body.
fn wait_health(addr: &str, want: u16, timeout: Duration) -> (Duration, String) {
    let start = Instant::now();
    let body = wait_for(&format!("/healthz to answer {want}"), timeout, || {
        match http_get(addr, "localhost", "/healthz", &[]) {
            Ok(r) if r.status == want => Ok(r.body),
            Ok(r) => Err(format!("{} {}", r.status, r.body)),
            Err(e) => Err(e.to_string()),
        }
    });
    (start.elapsed(), body)
}

fn healthcheck(h: &Harness, addr: &str) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    let out = h.cli(&["healthcheck", "--listen", addr]);
    (out.status.code(), output_text(&out), start.elapsed())
}

#[test]
fn healthz_is_503_within_2_s_of_docker_becoming_unreachable_or_frozen_and_200_when_it_returns() {
    let proxy = DockerProxy::start();
    let h = Harness::builder("observe-health").docker_proxy(&proxy).start();
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    h.start_controller_with(&["--backoff-cap", "2"]);
    h.wait_healthy(&blue);
    h.wait_public(&[], "blue v1");
    let addr = h.status_addr();
    let (_, body) = wait_health(&addr, 200, SETTLE);
    assert!(body.starts_with("ok"), "{body}");
    let (code, out, _) = healthcheck(&h, &addr);
    assert_eq!(code, Some(0), "{out}");

    // The healthcheck never waits for the state lock (a CLI call or the controller may hold it).
    let lock = h.dir.join(".pointsman/lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .expect("flock(1)");
    thread::sleep(Duration::from_millis(300));
    let (code, out, took) = healthcheck(&h, &addr);
    holder.wait().unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        took < Duration::from_secs(2),
        "healthcheck took {took:?} with the lock held"
    );

    // 1. Docker unreachable: every connection cut, new ones refused.
    proxy.set_down(true);
    proxy.cut();
    let (down_after, body) = wait_health(&addr, 503, Duration::from_secs(10));
    assert!(body.contains("Docker is unreachable"), "{body}");
    let (code, out, _) = healthcheck(&h, &addr);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unhealthy (HTTP 503)") && out.contains("Docker"), "{out}");
    proxy.set_down(false);
    let (up_after, _) = wait_health(&addr, 200, Duration::from_secs(10));

    // 2. Docker frozen (a paused socket proxy): the event stream stays open and silent, no
    //    request is answered. Only the heartbeat can tell; the request timeout is 10 s.
    wait_health(&addr, 200, SETTLE);
    thread::sleep(Duration::from_secs(1));
    proxy.set_frozen(true);
    let (frozen_after, body) = wait_health(&addr, 503, Duration::from_secs(15));
    assert!(body.contains("did not answer"), "{body}");
    // It thaws (the held connections dropped, as when a paused proxy restarts).
    proxy.set_frozen(false);
    proxy.cut();
    let (thawed_after, _) = wait_health(&addr, 200, Duration::from_secs(10));

    // 3. A reconcile stuck on the state lock (a CLI call that never lets go) is unhealthy too.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "13"])
        .spawn()
        .expect("flock(1)");
    let (stuck_after, body) = wait_health(&addr, 503, Duration::from_secs(15));
    assert!(body.contains("state lock"), "{body}");
    holder.wait().unwrap();
    wait_health(&addr, 200, SETTLE);

    eprintln!(
        "healthz: 503 {stuck_after:?} after the lock was taken (threshold 10 s); 503 {down_after:?} after Docker went down, 200 {up_after:?} after it came back; \
         503 {frozen_after:?} after it froze, 200 {thawed_after:?} after it thawed"
    );
    assert!(
        down_after <= HEALTH_DEADLINE,
        "unreachable Docker noticed after {down_after:?}"
    );
    assert!(
        frozen_after <= HEALTH_DEADLINE,
        "frozen Docker noticed after {frozen_after:?}"
    );
    // Routing was never touched.
    h.wait_public(&[], "blue v1");
}

// ---- the page --------------------------------------------------------------------------------

/// Text of the page's `<main>` in the browser.
fn main_text(b: &mut Browser) -> String {
    b.eval("document.getElementById('status').innerText")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `stable`/`candidate`/`idle` of each slot row, as the browser's DOM has them.
fn roles_in_dom(b: &mut Browser) -> Value {
    b.eval(
        "Object.fromEntries([...document.querySelectorAll('section.app tr.slot')].map(\
           r => [r.querySelector('td.name').innerText, r.querySelector('td.role').innerText]))",
    )
}

#[test]
fn the_status_page_in_a_real_browser_shows_the_stack_and_follows_a_promote_without_a_reload() {
    let h = Harness::new("observe-page");
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", None, "v2");
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    let addr = h.status_addr();
    wait_for("green routable on the page", SETTLE, || {
        let body = get(&addr, "/", &[]).body;
        body.contains("http://").then_some(()).ok_or(body.len())
    });
    let r = get(&addr, "/", &[]);
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    let mut b = Browser::start();
    b.open(&format!("http://{addr}/"));
    assert_eq!(b.eval("document.title"), "pointsman");
    let text = main_text(&mut b);
    assert!(text.contains("healthy"), "{text}");
    assert!(text.contains(&format!("Host(`{}`)", support::harness::HOST)), "{text}");
    assert_eq!(
        roles_in_dom(&mut b),
        serde_json::json!({"blue": "stable", "green": "candidate"})
    );
    for ip in [Docker::ip(&blue), Docker::ip(&green)] {
        assert!(text.contains(&format!("http://{ip}:80")), "{ip} in {text}");
    }
    b.screenshot(&b.dir.join("before-promote.png"));

    // Promote with the CLI; the open page follows without a reload.
    b.eval("window.__sameDocument = true");
    h.cli_ok(&["promote", APP]);
    let promoted_at = Instant::now();
    wait_for("the page to show green stable", Duration::from_secs(15), || {
        let roles = roles_in_dom(&mut b);
        (roles == serde_json::json!({"blue": "candidate", "green": "stable"}))
            .then_some(())
            .ok_or(roles)
    });
    let shown_after = promoted_at.elapsed();
    assert_eq!(b.eval("window.__sameDocument === true"), true, "the page was reloaded");
    let text = main_text(&mut b);
    assert!(
        text.contains("promote") && text.contains("blue → green"),
        "history: {text}"
    );
    let shot = b.dir.join("after-promote.png");
    b.screenshot(&shot);
    eprintln!(
        "page: promote shown {shown_after:?} after the CLI returned; screenshots in {}",
        b.dir.display()
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a real screenshot");

    // Read-only: nothing but GET (and HEAD) is served.
    for method in ["POST", "PUT", "DELETE"] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
            .arg(format!("http://{addr}/"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "405", "{method} /");
    }
}

#[test]
fn hostile_label_values_are_shown_escaped_and_no_script_runs_in_the_browser() {
    let h = Harness::new("observe-hostile");
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let script = "<script>window.pwned=1;document.title='pwned'</script>";
    let img = "<img src=x onerror=\"window.pwned=2;document.title='pwned'\">";
    let big: String = script.repeat(100 * 1024 / script.len() + 1);
    let hostile = |name: &str, labels: &[(&str, &str)]| {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), h.name(name)];
        args.extend(["--label".into(), h.cleanup.label().to_string()]);
        for (k, v) in labels {
            args.extend(["--label".into(), format!("{}.{k}={v}", h.prefix)]);
        }
        args.push(support::DEMO_IMAGE.into());
        Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };
    // An app label that is a script; a port label with an image and a handler; a route that
    // Traefik accepts with markup in its path; a 100 kB value.
    hostile("app", &[("app", script), ("host", "x.test")]);
    hostile("port", &[("app", APP), ("host", "web.test"), ("port", img)]);
    let rule = format!("Host(`markup.test`) && PathPrefix(`/{img}`)");
    hostile("rule", &[("app", "markup"), ("rule", &rule)]);
    hostile("big", &[("app", APP), ("host", &big)]);
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_public(&[], "blue v1");
    let addr = h.status_addr();
    wait_for("every hostile container on the page", SETTLE, || {
        let body = get(&addr, "/", &[]).body;
        let ok = body.contains("value is") && body.contains("markup") && body.contains("&lt;script&gt;");
        ok.then_some(()).ok_or(body.len())
    });

    let mut b = Browser::start();
    b.open(&format!("http://{addr}/"));
    // Let page.js swap the live fragment in at least once.
    let generation = b.eval("document.getElementById('status').dataset.generation");
    h.deploy("green", "green", None, "v2");
    wait_until("a live update", Duration::from_secs(15), || {
        (b.eval("document.getElementById('status').dataset.generation") != generation).then_some(())
    });
    let text = main_text(&mut b);
    b.screenshot(&b.dir.join("hostile.png"));
    assert_eq!(b.eval("typeof window.pwned"), "undefined", "an injected script ran");
    assert_eq!(b.eval("document.title"), "pointsman", "an injected script ran");
    assert_eq!(
        b.eval("document.querySelectorAll('main script, main img, main [onerror]').length"),
        0,
        "markup from a label became an element"
    );
    // Shown as text, exactly as written.
    assert!(
        text.contains("<script>window.pwned=1;"),
        "{}",
        &text[..text.len().min(3000)]
    );
    assert!(
        text.contains("<img src=x onerror="),
        "{}",
        &text[..text.len().min(3000)]
    );
    assert!(
        text.contains("value is 102"),
        "the 100 kB value is reported, not pasted"
    );
    eprintln!("hostile page: {} characters of text, no script ran", text.len());
}

// ---- a good neighbour: Host names, connection limit, timeouts, no credential ----------------

/// `pointsman run` alone: Docker at an address nothing answers, no Traefik. The status server
/// serves whatever the controller is doing, so this is all these tests need.
struct Lone {
    child: std::process::Child,
    log: std::path::PathBuf,
    addr: String,
}

/// An address where nothing listens (Docker, Traefik's metrics, a store that is down).
const NOTHING: &str = "127.0.0.1:1";

impl Lone {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Lone {
        let dir = support::temp_dir("observe-lone");
        std::fs::create_dir_all(dir.join("dynamic")).unwrap();
        let log = dir.join("controller.log");
        let child = Command::new(support::harness::BIN)
            .arg("run")
            .args(args)
            .env("POINTSMAN_DIR", dir.join("dynamic"))
            .env("POINTSMAN_LABEL_PREFIX", support::unique_id("lone"))
            .env("POINTSMAN_LISTEN", "127.0.0.1:0")
            .env("DOCKER_HOST", format!("tcp://{NOTHING}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pointsman run");
        let mut lone = Lone {
            child,
            log,
            addr: String::new(),
        };
        lone.addr = wait_until("the controller to say where it serves", SETTLE, || {
            if let Ok(Some(status)) = lone.child.try_wait() {
                panic!("pointsman run exited ({status}):\n{}", lone.log());
            }
            let log = lone.log();
            let line = log.lines().find(|l| l.contains("the status page on http://"))?;
            Some(line.rsplit("http://").next()?.trim().trim_end_matches('/').to_string())
        });
        lone
    }

    fn log(&self) -> String {
        support::harness::strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Lone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as it is and reads until the server closes: (status, body).
fn raw(addr: &str, request: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{request:?}: {e} after {text:?}"));
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

fn get_as(addr: &str, host: &str, path: &str) -> HttpResponse {
    http_get(addr, host, path, &[]).unwrap_or_else(|e| panic!("GET {path} as {host}: {e}"))
}

/// This machine's address on its default route (no packet is sent), if it has one.
fn own_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[test]
fn only_the_configured_host_names_are_answered_and_a_wrong_or_missing_host_is_refused() {
    let lone = Lone::start(&[], &[]);
    let (addr, port) = (lone.addr.as_str(), lone.port());

    // Loopback names and the --listen address, with and without the port: answered as before
    // (`/healthz` keeps its meaning: 503, Docker is unreachable).
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
        format!("LocalHost:{}", port + 1),
    ] {
        assert_eq!(get_as(addr, &host, "/status.json").status, 200, "{host}");
        assert_eq!(get_as(addr, &host, "/metrics").status, 200, "{host}");
        let health = get_as(addr, &host, "/healthz");
        assert_eq!(health.status, 503, "{host}: {}", health.body);
        assert!(health.body.contains("Docker"), "{}", health.body);
    }

    // Any other name, on every route (and on no route): 421, saying which flag adds it.
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost.evil.example",
        "127.0.0.1.nip.example",
        &format!("10.1.2.3:{port}"),
    ] {
        for path in [
            "/",
            "/status.json",
            "/metrics",
            "/healthz",
            "/fragment?since=1",
            "/nothing",
        ] {
            let r = get_as(addr, host, path);
            assert_eq!(r.status, 421, "{host}{path}: {}", r.body);
            assert!(!r.body.contains("docker"), "{host}{path} shows nothing: {}", r.body);
            assert_eq!(r.header("x-frame-options"), Some("DENY"));
        }
        let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
        assert!(
            get_as(addr, host, "/").body.contains(&format!("--listen-host {name}")),
            "{host}"
        );
    }

    // No Host (HTTP/1.0), two of them, one that is no host, or another host in the target.
    for request in [
        "GET /status.json HTTP/1.0\r\n\r\n".to_string(),
        "GET /status.json HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n".into(),
        "GET /status.json HTTP/1.1\r\nHost: user@localhost\r\nConnection: close\r\n\r\n".into(),
    ] {
        let (status, body) = raw(addr, &request);
        assert_eq!(status, 400, "{request:?}: {body}");
        assert!(body.contains("Host"), "{body}");
    }
    let (status, _) = raw(
        addr,
        "GET http://evil.example/status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 421, "absolute-form target on another host");
    let (status, body) = raw(addr, "GET /status.json HTTP/1.0\r\nHost: localhost\r\n\r\n");
    assert_eq!(status, 200, "HTTP/1.0 with a Host: {body}");

    // Logged once per refused host, naming the flag.
    let log = lone.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("host evil.example ")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("--listen-host evil.example"), "{}", lines[0]);

    // The flag (and its variable) add names; anything else stays refused.
    let named = Lone::start(
        &[
            "--listen-host",
            "pointsman.internal,Metrics.Internal",
            "--listen-host",
            "10.1.2.3",
        ],
        &[],
    );
    for host in [
        "pointsman.internal",
        "metrics.internal:9191",
        "10.1.2.3:80",
        "localhost",
    ] {
        assert_eq!(get_as(&named.addr, host, "/status.json").status, 200, "{host}");
    }
    assert_eq!(get_as(&named.addr, "evil.example", "/status.json").status, 421);
    let by_env = Lone::start(&[], &[("POINTSMAN_LISTEN_HOST", "scraper.internal")]);
    assert_eq!(get_as(&by_env.addr, "scraper.internal", "/metrics").status, 200);
    assert_eq!(get_as(&by_env.addr, "pointsman.internal", "/metrics").status, 421);

    // On every address: the address a client dials is answered, names must be given (and
    // the log says so at the start).
    let everywhere = Lone::start(&["--listen", "0.0.0.0:0"], &[]);
    assert!(
        everywhere.log().contains("with --listen-host NAME"),
        "{}",
        everywhere.log()
    );
    let port = everywhere.port();
    let local = format!("127.0.0.1:{port}");
    assert_eq!(get_as(&local, "localhost", "/status.json").status, 200);
    assert_eq!(get_as(&local, "pointsman", "/status.json").status, 421);
    match own_address() {
        Some(ip) => {
            let dialled = std::net::SocketAddr::new(ip, port).to_string();
            assert_eq!(get_as(&dialled, &dialled, "/status.json").status, 200, "{dialled}");
            assert_eq!(get_as(&dialled, "pointsman", "/status.json").status, 421);
            assert_eq!(
                get_as(&local, &dialled, "/status.json").status,
                421,
                "dialled elsewhere"
            );
        }
        None => eprintln!("no address besides loopback: the dialled-address case is not run"),
    }

    // Usage errors: a port in the name, or names for a server that is off.
    for args in [
        &["--listen-host", "web.test:80"][..],
        &["--listen", "off", "--listen-host", "x.test"],
    ] {
        let out = Command::new(support::harness::BIN)
            .arg("run")
            .args(args)
            .env("POINTSMAN_DIR", support::temp_dir("observe-usage"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", output_text(&out));
        assert!(output_text(&out).contains("--listen-host"), "{}", output_text(&out));
    }
}

#[test]
fn a_page_on_a_rebound_name_reads_nothing_in_a_real_browser_until_listen_host_names_it() {
    // Chromium resolves `rebound.test` to 127.0.0.1, as a rebinding attacker's DNS would.
    let lone = Lone::start(&[], &[]);
    let named = Lone::start(&["--listen-host", "rebound.test"], &[]);
    let mut b = Browser::start_with(&["--host-resolver-rules=MAP rebound.test 127.0.0.1"]);
    // What the attacker's script does once its origin points at pointsman.
    let read = "(() => { const x = new XMLHttpRequest(); x.open('GET', '/status.json', false); \
                x.send(); return [x.status, x.responseText]; })()";

    b.open(&format!("http://rebound.test:{}/", lone.port()));
    let text = b.text();
    assert!(text.contains("--listen-host rebound.test"), "{text}");
    let answer = b.eval(read);
    assert_eq!(answer[0], 421, "{answer}");
    assert!(!answer[1].as_str().unwrap().contains("docker"), "{answer}");

    b.open(&format!("http://rebound.test:{}/", named.port()));
    assert_eq!(b.eval("document.title"), "pointsman");
    let answer = b.eval(read);
    assert_eq!(answer[0], 200, "{answer}");
    let view: Value = serde_json::from_str(answer[1].as_str().unwrap()).unwrap();
    assert_eq!(view["docker"]["state"], "lost", "{view}");

    // The operator's own loopback URL is answered by both.
    b.open(&format!("http://127.0.0.1:{}/", lone.port()));
    assert_eq!(b.eval("document.title"), "pointsman");
}

/// Reads from `s` until the server closes it (or `limit`): how long that took, and what came.
fn until_closed(s: &mut std::net::TcpStream, started: Instant, limit: Duration) -> (Duration, String) {
    use std::io::Read;
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "still open after {:?} ({e}); got {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn a_slowloris_client_and_an_idle_connection_are_cut_off_at_the_header_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    let lone = Lone::start(&["--listen-header-timeout", "1s"], &[]);
    let addr = lone.addr.as_str();
    let within = |what: &str, took: Duration| {
        assert!(
            took >= TIMEOUT - Duration::from_millis(50) && took < TIMEOUT * 2,
            "{what}: closed after {took:?}, the header timeout is {TIMEOUT:?}"
        );
        eprintln!("{what}: closed after {took:?} (header timeout {TIMEOUT:?})");
    };

    // A partial request line, then nothing.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    s.write_all(b"GET /status.json HT").unwrap();
    let (took, got) = until_closed(&mut s, started, Duration::from_secs(5));
    within("a partial request line", took);
    assert!(!got.contains("docker"), "{got}");

    // A head sent one byte every 100 ms: still cut off at the timeout, bytes do not reset it.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let started = Instant::now();
    let mut drip = s.try_clone().unwrap();
    let dripper = thread::spawn(move || {
        for b in b"GET /status.json HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if drip.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });
    let (took, got) = until_closed(&mut s, started, Duration::from_secs(5));
    within("a head dripped byte by byte", took);
    assert!(
        !got.contains("\"docker\""),
        "no answer to a head that never ended: {got}"
    );
    dripper.join().unwrap();

    // Keep-alive: a request answered at once, then the idle connection is closed.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut s, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 503");
    let started = Instant::now();
    let (took, _) = until_closed(&mut s, started, Duration::from_secs(5));
    within("an idle keep-alive connection", took);

    // A client that keeps within the timeout is served, on the same connection, every time.
    let mut conn = support::HttpConn::new(addr);
    for _ in 0..3 {
        assert_eq!(conn.get("localhost", "/status.json", &[]).unwrap().status, 200);
        thread::sleep(TIMEOUT / 2);
    }
}

#[test]
fn past_the_connection_limit_new_connections_wait_and_are_served_once_others_close() {
    const LIMIT: usize = 4;
    let lone = Lone::start(&["--listen-max-connections", "4", "--listen-header-timeout", "5s"], &[]);
    let addr = lone.addr.as_str();
    let request = b"GET /status.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    // LIMIT connections that send nothing, accepted first (the accept queue is in order).
    let held: Vec<std::net::TcpStream> = (0..LIMIT)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    // Three more, with a whole request each: connected (by the kernel), not served.
    let mut extra: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(request).unwrap();
            s
        })
        .collect();
    let waited = Instant::now();
    for s in &mut extra {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut b = [0u8; 1];
        match std::io::Read::read(s, &mut b) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            other => panic!("a connection past the limit was served: {other:?}"),
        }
    }
    let held_for = waited.elapsed();
    for s in &extra {
        s.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let peeked = s.peek(&mut b);
        assert!(
            matches!(&peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "answered past the limit: {peeked:?}"
        );
        s.set_nonblocking(false).unwrap();
    }

    // The held ones go: every waiting one is answered, in full.
    drop(held);
    let released = Instant::now();
    let mut served_after = Duration::ZERO;
    for s in &mut extra {
        let (took, got) = until_closed(s, released, Duration::from_secs(3));
        assert!(got.starts_with("HTTP/1.1 200"), "{got}");
        assert!(got.contains("\"docker\""), "{got}");
        served_after = took;
    }
    assert!(served_after < Duration::from_secs(1), "{served_after:?}");
    eprintln!(
        "limit {LIMIT}: 3 more connections unanswered for {held_for:?} while {LIMIT} were held; all served {served_after:?} after those closed"
    );
    assert_eq!(get_as(addr, "localhost", "/status.json").status, 200);
}

/// Every way an operator looks: the JSON, the page, the metrics, the log.
fn everything_shown(lone: &Lone) -> String {
    let mut all = lone.log();
    for path in ["/status.json", "/", "/metrics", "/healthz", "/fragment"] {
        all.push_str(&get_as(&lone.addr, "localhost", path).body);
    }
    all
}

#[test]
fn no_password_or_token_of_docker_traefik_or_the_store_is_shown_or_logged() {
    let metrics = format!("http://scraper:hunter2@{NOTHING}/metrics?token=t0k3n");
    let lone = Lone::start(
        &["--traefik-metrics", &metrics],
        &[("DOCKER_HOST", &format!("tcp://docker:dock3rpw@{NOTHING}"))],
    );
    let view: Value = wait_for("the view to say why Traefik and Docker fail", SETTLE, || {
        let body = get_as(&lone.addr, "localhost", "/status.json").body;
        let v: Value = serde_json::from_str(&body).unwrap();
        (v["traffic"]["error"].is_string() && v["docker"]["state"] == "lost")
            .then_some(v.clone())
            .ok_or(v)
    });
    // The URLs are quoted, so an operator sees where; their secrets are masked.
    let traffic = view["traffic"]["error"].as_str().unwrap();
    assert!(
        traffic.contains("http://scraper:***@127.0.0.1:1/metrics?token=***"),
        "{traffic}"
    );
    let docker = view["docker"]["reason"].as_str().unwrap();
    assert!(docker.contains("tcp://docker:***@127.0.0.1:1"), "{docker}");
    let all = everything_shown(&lone);
    for secret in ["hunter2", "t0k3n", "dock3rpw"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
    assert!(lone.log().contains("docker:***@"), "{}", lone.log());

    // A Redis store with a user and a password: served, and nothing shows the password.
    let redis = support::redis::RedisServer::start();
    redis.cli(&["ACL", "SETUSER", "pointsman", "on", ">st0re-pw", "~*", "&*", "+@all"]);
    redis.cli(&["ACL", "SETUSER", "default", "off"]);
    let store = redis.url_as("pointsman", "st0re-pw");
    let on_redis = Lone::start(
        &["--store", &store, "--host-id", "h1", "--advertise-address", "127.0.0.1"],
        &[],
    );
    let all = everything_shown(&on_redis);
    assert!(!all.contains("st0re-pw"), "the store's password shown:\n{all}");

    // A store that does not answer: the error names it, masked, in the log and on the CLI.
    let down = format!("redis://pointsman:st0re-pw@{NOTHING}/0");
    let out = Command::new(support::harness::BIN)
        .args(["--store", &down, "status"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("pointsman:***@127.0.0.1:1"), "{text}");
    assert!(!text.contains("st0re-pw"), "{text}");
    let out = Command::new(support::harness::BIN)
        .args([
            "run",
            "--store",
            &down,
            "--host-id",
            "h1",
            "--advertise-address",
            "127.0.0.1",
        ])
        .env("POINTSMAN_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(!text.contains("st0re-pw") && text.contains("127.0.0.1:1"), "{text}");
}
