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
