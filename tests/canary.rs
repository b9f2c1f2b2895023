//! Progressive delivery against a real Docker Engine and a real Traefik 3.7: canary weights,
//! stickiness, mirroring and rollouts (issue 9).
//!
//! Every test starts from the blue (stable, v1) / green (candidate, v2) pair of the shared
//! harness and counts which version answers.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use pointsman::core::names;
use support::harness::{APP, HOST, Harness, SETTLE};
use support::{HttpConn, Load, wait_until};

/// Past Traefik's default `providersThrottleDuration` (2 s): one change per window.
const THROTTLE: Duration = Duration::from_millis(2100);

fn harness(test: &str) -> Harness {
    Harness::builder(test)
        .controller_args(&["--resync-interval", "30"])
        .start()
}

/// Blue stable, green candidate; `env` for green (e.g. a drain time).
fn blue_green(h: &Harness, green_env: &[(&str, &str)]) -> (String, String) {
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy_with("green", "green", None, "v2", green_env);
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    h.wait_public(&[("X-Pointsman-Version", "candidate")], "green v2");
    (blue, green)
}

/// Waits until Traefik serves the public service as a weighted split with this candidate weight
/// (or, with 0, as the stable slot's load balancer).
fn wait_weight(h: &Harness, percent: u32) {
    wait_until(&format!("Traefik serves weight {percent}"), SETTLE, || {
        let service = h
            .traefik
            .api_json(&format!("/api/http/services/{}@file", names::public(APP)))?;
        let weights: Vec<u64> = service["weighted"]["services"]
            .as_array()
            .map(|children| children.iter().filter_map(|c| c["weight"].as_u64()).collect())
            .unwrap_or_default();
        let ok = match percent {
            0 => service.get("loadBalancer").is_some(),
            p => weights == [u64::from(100 - p), u64::from(p)],
        };
        ok.then_some(())
    });
}

/// `n` requests without a cookie (each a new visitor): count per body.
fn new_visitors(h: &Harness, n: usize) -> BTreeMap<String, usize> {
    let mut conn = HttpConn::new(h.traefik.web_addr());
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let r = conn.get(HOST, "/", &[]).expect("request through Traefik");
        assert_eq!(r.status, 200, "{r:?}");
        *counts.entry(r.body.trim().to_string()).or_insert(0) += 1;
    }
    counts
}

/// The sticky cookie Traefik sets for the weighted service, as `name=value`.
fn sticky_cookie(h: &Harness) -> (String, String) {
    let r = support::http_get(h.traefik.web_addr(), HOST, "/", &[]).unwrap();
    let set = r
        .headers
        .iter()
        .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with(&format!("pointsman-{APP}-lb=")))
        .unwrap_or_else(|| panic!("no sticky cookie in {:?}", r.headers))
        .1
        .clone();
    let pair = set.split(';').next().unwrap().to_string();
    assert!(set.to_ascii_lowercase().contains("httponly"), "{set}");
    assert!(set.to_ascii_lowercase().contains("samesite=lax"), "{set}");
    (pair, r.body.trim().to_string())
}

#[test]
fn canary_weights_are_real_sticky_and_change_without_failures() {
    let h = harness("canary-weights");
    blue_green(&h, &[]);
    std::thread::sleep(THROTTLE);
    // Measured alone: Traefik's weighted round robin is shared by every client, so a load
    // running beside the count would take part of the candidate's turns.
    for percent in [10u32, 25, 50] {
        h.cli_ok(&["canary", APP, &percent.to_string()]);
        wait_weight(&h, percent);
        let counts = new_visitors(&h, 2000);
        let green = *counts.get("green v2").unwrap_or(&0) as f64 / 2000.0 * 100.0;
        eprintln!("canary {percent}: {counts:?} → {green:.1}% on the candidate");
        assert!(
            (green - f64::from(percent)).abs() <= 3.0,
            "weight {percent}: {green:.1}% of 2,000 new visitors reached the candidate: {counts:?}"
        );
        std::thread::sleep(THROTTLE);
    }
    // A visitor holding the sticky cookie stays on the version it got, across a weight change.
    let (cookie, first) = sticky_cookie(&h);
    let same = |h: &Harness| {
        let mut conn = HttpConn::new(h.traefik.web_addr());
        for i in 0..50 {
            let r = conn.get(HOST, "/", &[("Cookie", &cookie)]).unwrap();
            assert_eq!(r.body.trim(), first, "request {i} with {cookie} left {first}");
        }
    };
    same(&h);
    h.cli_ok(&["canary", APP, "25"]);
    wait_weight(&h, 25);
    same(&h);
    std::thread::sleep(THROTTLE);
    // Weight changes under load fail nothing; `canary 0` renders exactly the blue-green file.
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    wait_until("load flowing", SETTLE, || (load.sent() > 100).then_some(()));
    for percent in [10u32, 50, 25, 0] {
        h.cli_ok(&["canary", APP, &percent.to_string()]);
        wait_weight(&h, percent);
        std::thread::sleep(THROTTLE);
    }
    let stats = load.stop();
    assert_eq!(stats.failures(), 0, "weight changes under load: {stats:?}");
    assert!(
        stats.bodies.contains_key("green v2\n") && stats.bodies.contains_key("blue v1\n"),
        "{stats:?}"
    );
    let file = h.file();
    assert!(!file.contains("weighted") && !file.contains("-lb"), "{file}");
}

#[test]
fn recreating_the_candidate_during_a_canary_fails_no_request() {
    let h = harness("canary-recreate");
    // The candidate keeps serving 3 s after SIGTERM, as an app behind a load balancer should:
    // pointsman drains it at the kill event, and Traefik applies that within its 2 s throttle.
    let (_, green) = blue_green(&h, &[("DRAIN_MS", "3000")]);
    h.cli_ok(&["canary", APP, "50"]);
    wait_weight(&h, 50);
    std::thread::sleep(THROTTLE);
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    wait_until("load flowing", SETTLE, || (load.sent() > 100).then_some(()));
    support::Docker::run(&["stop", &green]);
    support::Docker::run(&["rm", &green]);
    wait_until("the public route is the stable slot alone", SETTLE, || {
        (!h.file().contains("weighted")).then_some(())
    });
    let green = h.deploy_with("green", "green", None, "v3", &[("DRAIN_MS", "3000")]);
    h.wait_healthy(&green);
    wait_weight(&h, 50);
    std::thread::sleep(Duration::from_secs(1));
    let stats = load.stop();
    assert_eq!(stats.failures(), 0, "{stats:?}");
    assert!(
        stats.bodies.contains_key("green v3\n"),
        "the new candidate took its share again: {stats:?}"
    );
}

#[test]
fn a_rollout_without_analysis_steps_and_promotes_and_wait_follows_it() {
    let h = harness("rollout-time");
    blue_green(&h, &[]);
    let out = h.cli(&[
        "rollout",
        APP,
        "--steps",
        "10,50,100",
        "--pause",
        "2s",
        "--no-analysis",
        "--wait",
    ]);
    let text = support::harness::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("step 1 of 3 passed") && text.contains("step 2 of 3 passed"),
        "{text}"
    );
    assert!(text.contains("slot green is stable: rollout completed"), "{text}");
    h.wait_public(&[], "green v2");
    let history = h.cli_ok(&["history", APP]);
    for word in ["rollout", "step", "promote"] {
        assert!(history.contains(word), "{word} in history: {history}");
    }
    let status = h.cli_ok(&["status", APP, "--json"]);
    assert!(status.contains("\"stable\": \"green\""), "{status}");
}

// ---- rollouts judged by Traefik's metrics -----------------------------------------------------

/// A harness whose Traefik exports metrics, and whose CLI and controller are told where.
fn metered(test: &str) -> Harness {
    let probe = Harness::builder(test)
        .traefik(support::TraefikOptions {
            metrics: true,
            ..Default::default()
        })
        .controller_args(&["--resync-interval", "30"]);
    // The metrics URL is known only once Traefik runs: start, then point the env at it.
    let h = probe.start();
    let url = h.traefik.metrics_url();
    h.with_env("POINTSMAN_TRAEFIK_METRICS", &url)
}

/// Runs `rollout APP ARGS… --wait`, returning (exit code, output, seconds it took).
fn rollout(h: &Harness, args: &[&str]) -> (Option<i32>, String, f64) {
    let mut all = vec!["rollout", APP];
    all.extend_from_slice(args);
    all.push("--wait");
    let started = std::time::Instant::now();
    let out = h.cli(&all);
    (
        out.status.code(),
        support::harness::output_text(&out),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn a_healthy_candidate_is_promoted_after_its_judged_steps() {
    let h = metered("rollout-healthy");
    blue_green(&h, &[]);
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    let (code, text, secs) = rollout(&h, &["--steps", "10,50,100", "--pause", "3s"]);
    let stats = load.stop();
    eprintln!("healthy rollout: {secs:.1} s\n{text}");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("step 1 of 3 passed") && text.contains("error ratio 0"),
        "{text}"
    );
    assert!(text.contains("slot green is stable: rollout completed"), "{text}");
    assert_eq!(stats.failures(), 0, "{stats:?}");
    h.wait_public(&[], "green v2");
    let status = h.cli_ok(&["status", APP, "--json"]);
    assert!(!status.contains("\"rollout\""), "{status}");
}

#[test]
fn a_candidate_answering_5xx_is_aborted_at_its_first_step() {
    let h = metered("rollout-errors");
    blue_green(&h, &[("ERROR_PERCENT", "5")]);
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    let pause = 4.0;
    let (code, text, secs) = rollout(&h, &["--steps", "10,50,100", "--pause", "4s"]);
    eprintln!("5% 5xx: aborted after {secs:.1} s\n{text}");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("rollout aborted at step 1 of 3 (10%): error ratio")
            && text.contains("above --max-error-ratio 0.01"),
        "names the metric, its value and the threshold: {text}"
    );
    // The candidate fails from its first request: the abort comes within one pause + 1 s.
    assert!(secs <= pause + 1.0, "aborted after {secs:.1} s");
    wait_weight(&h, 0);
    load.stop();
    let history = h.cli_ok(&["history", APP]);
    assert!(
        history.contains("abort") && history.contains("error ratio"),
        "{history}"
    );
    assert_eq!(h.stable().as_deref(), Some("blue"));
}

/// What the metrics of the Traefik whose API is at `api` say about one of the app's services
/// (`APP.slot.SLOT`, …).
fn counted_at(api: &str, service: &str) -> pointsman::traefik::metrics::ServiceCounters {
    let r = support::http_get(api.trim_start_matches("http://"), "traefik", "/metrics", &[]).unwrap();
    pointsman::traefik::metrics::Scrape::parse(&r.body)
        .unwrap()
        .service(&format!("{service}@file"))
}

/// Anyone can send the candidate's cookie or header: requests that fail that way (here a path
/// the demo answers with 500) reach the candidate's slot service, not the canary split's
/// child, so they do not abort a candidate whose public traffic is healthy. The converse,
/// public traffic answered 5xx, aborts: `a_candidate_answering_5xx_is_aborted_at_its_first_step`.
#[test]
fn failing_preview_requests_do_not_abort_a_candidate_whose_public_traffic_is_healthy() {
    let h = metered("rollout-preview");
    blue_green(&h, &[]);
    let cookie = format!("pointsman-{APP}=candidate");
    let r = support::http_get(h.traefik.web_addr(), HOST, "/status/500", &[("Cookie", &cookie)]).unwrap();
    assert_eq!(
        (r.status, r.body.trim()),
        (500, "green v2"),
        "the demo answers /status/500 with a 500 (an older demo image? scripts/build-images.sh)"
    );
    let public = Load::start(h.traefik.web_addr(), HOST, "/", &[], 3);
    let by_cookie = Load::start(h.traefik.web_addr(), HOST, "/status/500", &[("Cookie", &cookie)], 1);
    let by_header = Load::start(
        h.traefik.web_addr(),
        HOST,
        "/status/503",
        &[("X-Pointsman-Version", "candidate")],
        1,
    );
    // The canary child exists only while the split does (Traefik drops its series once the
    // promotion removes it), so its counters are read during the rollout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = std::thread::spawn({
        let (stop, api) = (stop.clone(), h.traefik.api_url());
        move || {
            let mut last = Default::default();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let seen = counted_at(&api, &names::canary(APP, "green"));
                if seen.requests > 0 {
                    last = seen;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            last
        }
    });
    let (code, text, secs) = rollout(&h, &["--steps", "20,100", "--pause", "3s"]);
    let (public, by_cookie, by_header) = (public.stop(), by_cookie.stop(), by_header.stop());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let canary: pointsman::traefik::metrics::ServiceCounters = watch.join().unwrap();
    let preview_5xx =
        by_cookie.statuses.get(&500).copied().unwrap_or(0) + by_header.statuses.get(&503).copied().unwrap_or(0);
    // Traefik counts a request once it has answered it: the last ones may take a moment. Those
    // sent between the promotion and the end of the load reached blue, the new candidate, so
    // both slot services together hold every preview request.
    let slot = wait_until("Traefik counted the preview requests", SETTLE, || {
        let green = counted_at(&h.traefik.api_url(), &names::slot(APP, "green"));
        let blue = counted_at(&h.traefik.api_url(), &names::slot(APP, "blue"));
        let both = pointsman::traefik::metrics::ServiceCounters {
            requests: green.requests + blue.requests,
            errors: green.errors + blue.errors,
            ..green
        };
        (both.errors >= preview_5xx).then_some(both)
    });
    eprintln!(
        "preview 5xx during a rollout: {secs:.1} s; preview {:?} + {:?}; public {:?}\n\
         Traefik: {} and {} {}/{} 5xx, {} {}/{} 5xx\n{text}",
        by_cookie.statuses,
        by_header.statuses,
        public.statuses,
        names::slot(APP, "green"),
        names::slot(APP, "blue"),
        slot.errors,
        slot.requests,
        names::canary(APP, "green"),
        canary.errors,
        canary.requests,
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("step 1 of 2 passed") && text.contains("error ratio 0 (0 answered 5xx)"),
        "{text}"
    );
    assert!(text.contains("slot green is stable: rollout completed"), "{text}");
    assert_eq!(public.failures(), 0, "{public:?}");
    // The preview requests really failed (Traefik counted them on the slot service), while the
    // canary child saw public requests only, none failed.
    assert!(preview_5xx >= 100, "{by_cookie:?} {by_header:?}");
    assert_eq!(by_cookie.failures() + by_header.failures(), preview_5xx);
    assert!(slot.errors >= preview_5xx, "{slot:?}");
    assert!(canary.requests >= 20 && canary.errors == 0, "{canary:?}");
}

#[test]
fn a_latency_breach_aborts_and_too_little_traffic_extends_then_aborts() {
    let h = metered("rollout-latency");
    blue_green(&h, &[("LATENCY_MS", "150")]);
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    let (code, text, _) = rollout(&h, &["--steps", "20,100", "--pause", "3s", "--max-p99", "100ms"]);
    load.stop();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("p99 latency") && text.contains("above --max-p99 100ms"),
        "{text}"
    );
    std::thread::sleep(THROTTLE);

    // No traffic at all: each step is extended 3 times, then the rollout gives up, saying why.
    support::Docker::run(&["exec", &h.name("green"), "/pointsman-demo", "mode", "latency=0"]);
    let (code, text, secs) = rollout(&h, &["--steps", "20,100", "--pause", "1s"]);
    eprintln!("no traffic: aborted after {secs:.1} s\n{text}");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.matches("extended").count(), 3, "{text}");
    assert!(text.contains("not enough traffic to judge"), "{text}");
}

#[test]
fn a_controller_killed_mid_rollout_resumes_at_the_same_step() {
    let h = harness("rollout-resume");
    blue_green(&h, &[]);
    h.cli_ok(&[
        "rollout",
        APP,
        "--steps",
        "10,30,60,100",
        "--pause",
        "3s",
        "--no-analysis",
    ]);
    wait_until("the rollout reaches step 2", SETTLE, || {
        (h.state()["apps"][APP]["rollout"]["step"] == 1).then_some(())
    });
    h.kill_controller();
    // `status` shows the running plan, and a command the plan refuses names next steps that work.
    let status = h.cli_ok(&["status", APP]);
    assert!(
        status.contains("canary=30% rollout=step 2 of 4 (10,30,60,100%, each held 3000 ms)"),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&h.cli_ok(&["status", APP, "--json"])).unwrap();
    assert_eq!(json["apps"][APP]["rollout"]["step"], 2, "{json}");
    assert_eq!(json["apps"][APP]["rollout"]["weight"], 30, "{json}");
    let refused = h.cli(&["canary", APP, "50"]);
    let hint = support::harness::output_text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{hint}");
    assert!(
        hint.contains(&format!("`pointsman status {APP}`")) && !hint.contains("--wait"),
        "{hint}"
    );
    let step = h.state()["apps"][APP]["rollout"]["step"].as_u64();
    assert_eq!(step, Some(1), "the plan is in the state");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        h.state()["apps"][APP]["rollout"]["step"].as_u64(),
        Some(1),
        "nobody drives it meanwhile"
    );
    h.start_controller();
    wait_until("the rollout completes", Duration::from_secs(30), || {
        (h.stable().as_deref() == Some("green")).then_some(())
    });
    let history = h.cli_ok(&["history", APP, "--json"]);
    let steps: Vec<String> = serde_json::from_str::<serde_json::Value>(&history)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["action"] == "step")
        .map(|t| t["detail"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(steps.len(), 3, "steps 2, 3 and 4 each once: {steps:?}");
    assert!(
        steps[0].contains("step 2 of 4: 30%") && steps[2].contains("step 4 of 4: 100%"),
        "{steps:?}"
    );
}

// ---- mirroring -------------------------------------------------------------------------------

fn stats_of(container: &str) -> serde_json::Value {
    let ip = support::Docker::ip(container);
    let r = support::http_get(&format!("{ip}:80"), "stats", "/stats", &[]).unwrap();
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[test]
fn a_mirror_copies_its_share_to_the_candidate_and_never_a_body_above_the_limit() {
    let h = Harness::builder("mirror")
        .env("POINTSMAN_MIRROR_MAX_BODY", "1KiB")
        .controller_args(&["--resync-interval", "30"])
        .start();
    let (_, green) = blue_green(&h, &[]);
    // The candidate fails every request: visitors must never see it.
    support::Docker::run(&["exec", &green, "/pointsman-demo", "mode", "error=100"]);
    std::thread::sleep(THROTTLE);
    h.cli_ok(&["mirror", APP, "20"]);
    wait_until("Traefik mirrors", SETTLE, || {
        let s = h
            .traefik
            .api_json(&format!("/api/http/services/{}@file", names::public(APP)))?;
        (s["mirroring"]["mirrors"][0]["percent"] == 20).then_some(())
    });
    let before = stats_of(&green)["requests"].as_u64().unwrap();
    let counts = new_visitors(&h, 2000);
    assert_eq!(
        counts.get("blue v1"),
        Some(&2000),
        "visitors only get the stable answers: {counts:?}"
    );
    let copies = wait_until("the copies arrive", SETTLE, || {
        let n = stats_of(&green)["requests"].as_u64().unwrap() - before;
        (n >= 340).then_some(n)
    });
    std::thread::sleep(Duration::from_millis(300));
    let copies = copies.max(stats_of(&green)["requests"].as_u64().unwrap() - before);
    let share = copies as f64 / 2000.0 * 100.0;
    eprintln!("mirror 20: {copies} copies of 2,000 requests = {share:.1}%");
    assert!((share - 20.0).abs() <= 3.0, "{copies} copies of 2,000: {share:.1}%");

    // Bodies: up to the limit they are mirrored with the request, above it not at all.
    let bodies_before = stats_of(&green)["bodies"].as_u64().unwrap();
    for _ in 0..50 {
        let r = support::http_send(h.traefik.web_addr(), "POST", HOST, "/", &[b'x'; 2000]).unwrap();
        assert_eq!((r.status, r.body.trim()), (200, "blue v1"), "the client is unaffected");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        stats_of(&green)["bodies"].as_u64().unwrap(),
        bodies_before,
        "no body above 1 KiB is mirrored"
    );
    h.cli_ok(&["mirror", APP, "0"]);
}

// ---- verified apply ---------------------------------------------------------------------------

#[test]
fn wait_returns_when_traefik_serves_the_change_and_says_why_when_it_cannot() {
    let h = harness("wait");
    blue_green(&h, &[]);
    let api = h.traefik.api_url();
    let mut waits = Vec::new();
    for percent in [10, 20, 30, 40, 50, 0] {
        std::thread::sleep(THROTTLE);
        let out = h.cli_ok(&["--traefik-api", &api, "canary", APP, &percent.to_string(), "--wait"]);
        let ms: u64 = out
            .split("Traefik serves it (")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        waits.push(ms);
    }
    waits.sort();
    eprintln!("--wait, canary weight changes spaced past the throttle: {waits:?} ms");
    std::thread::sleep(THROTTLE);

    // A foreign file Traefik cannot load freezes the file provider: exit 1 naming it.
    std::fs::write(h.dir.join("middlewares.yml"), "http:\n  middlewares: [\n").unwrap();
    let out = h.cli(&["--traefik-api", &api, "canary", APP, "30", "--wait=8s"]);
    let text = support::harness::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("middlewares.yml"), "names the file: {text}");
    std::fs::remove_file(h.dir.join("middlewares.yml")).unwrap();

    // Traefik down: exit 1 saying so.
    let out = h.cli(&["--traefik-api", "http://127.0.0.1:9", "canary", APP, "0", "--wait=2s"]);
    let text = support::harness::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.to_lowercase().contains("unreachable") || text.contains("did not answer"),
        "{text}"
    );
}
