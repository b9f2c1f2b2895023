//! Progressive delivery against a real Docker Engine and a real Traefik 3.7: canary weights,
//! stickiness, mirroring and rollouts (issue 9).
//!
//! Every test starts from the blue (stable, v1) / green (candidate, v2) pair of the shared
//! harness and counts which version answers.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

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
        let service = h.traefik.api_json(&format!("/api/http/services/{APP}@file"))?;
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
