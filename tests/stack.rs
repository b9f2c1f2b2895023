//! Whole-stack releases against a real Docker Engine and a real Traefik 3.7 (issue 11): the
//! apps of one Compose project (a frontend and its API, each blue/green) are promoted, rolled
//! back and canaried together.
//!
//! Containers carry `com.docker.compose.project`, as Compose puts it on every container of a
//! project (`docker run --label` gives the same label without a Compose file per test).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::harness::{Harness, SETTLE, describe, output_text};
use support::{DEMO_IMAGE, Docker, HttpConn, http_get, wait_until};

const FRONT: &str = "front";
const API: &str = "api";
/// Past Traefik's default `providersThrottleDuration` (2 s): one change per window.
const THROTTLE: Duration = Duration::from_millis(2500);

/// The frontend on `stack.test`, the API below it on `api.stack.test`: the project's cookie
/// carries `Domain=stack.test`, so a browser sends it to both.
fn host(app: &str) -> String {
    match app {
        FRONT => "stack.test".into(),
        other => format!("{other}.stack.test"),
    }
}

/// A harness, its project name, and the four demo containers (front and api, blue v1 stable
/// and green v2 candidate), healthy and routed.
fn stack(test: &str) -> (Harness, String) {
    let h = Harness::builder(test)
        .controller_args(&["--resync-interval", "30"])
        .start();
    // Compose's project names are lowercase letters, digits, '-' and '_'.
    let project = format!("stack{}", h.prefix.trim_start_matches("pm").to_ascii_lowercase());
    let mut names = Vec::new();
    for app in [FRONT, API] {
        for (slot, version, stable) in [("blue", "v1", true), ("green", "v2", false)] {
            names.push(deploy(&h, &project, app, slot, version, stable));
        }
    }
    h.start_controller();
    for n in &names {
        h.wait_healthy(n);
    }
    for app in [FRONT, API] {
        wait_answer(&h, app, &[], "blue v1");
        wait_answer(&h, app, &[("X-Pointsman-Version", "candidate")], "green v2");
    }
    (h, project)
}

fn deploy(h: &Harness, project: &str, app: &str, slot: &str, version: &str, stable: bool) -> String {
    let name = h.name(&format!("{app}-{slot}"));
    let p = &h.prefix;
    let mut labels = vec![
        h.cleanup.label().to_string(),
        format!("com.docker.compose.project={project}"),
        format!("{p}.app={app}"),
        format!("{p}.slot={slot}"),
        format!("{p}.host={}", host(app)),
    ];
    if stable {
        labels.push(format!("{p}.version=stable"));
    }
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
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
    Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    name
}

fn answer(h: &Harness, app: &str, headers: &[(&str, &str)]) -> String {
    describe(h.traefik.get(&host(app), "/", headers))
}

fn wait_answer(h: &Harness, app: &str, headers: &[(&str, &str)], want: &str) {
    wait_until(&format!("{app} {headers:?} answers {want}"), SETTLE, || {
        (answer(h, app, headers) == want).then_some(())
    });
}

fn stable_of(h: &Harness, app: &str) -> Option<String> {
    h.state()["apps"][app]["stable"].as_str().map(String::from)
}

/// What a client alternating between the two apps saw: (app, body or failure), in order.
struct Alternating {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<(&'static str, String)>>,
}

impl Alternating {
    fn start(addr: &str) -> Alternating {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (stop, addr) = (stop.clone(), addr.to_string());
            move || {
                let mut conn = HttpConn::new(&addr);
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(180);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for app in [FRONT, API] {
                        let r = conn.get(&host(app), "/", &[]);
                        seen.push((app, describe(r)));
                    }
                }
                seen
            }
        });
        Alternating { stop, thread }
    }

    fn stop(self) -> Vec<(&'static str, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

#[test]
fn a_project_promote_is_all_or_nothing_and_switches_every_app_in_one_reload() {
    let (h, project) = stack("stack-one-reload");
    let units: Vec<String> = std::fs::read_dir(&h.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    assert_eq!(
        units,
        [format!("pointsman-project.{project}.yml")],
        "both apps live in the project's one file"
    );

    // All or nothing: one candidate not ready refuses the whole promote, naming it; nothing moves.
    let api_green = h.name("api-green");
    Docker::run(&["pause", &api_green]);
    let out = h.cli(&["promote", "--project", &project]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("app api: slot green") && text.contains("paused") && !text.contains("app front:"),
        "names each app and slot not ready, and only those: {text}"
    );
    assert_eq!(
        (stable_of(&h, FRONT), stable_of(&h, API)),
        (Some("blue".into()), Some("blue".into()))
    );
    Docker::run(&["unpause", &api_green]);
    wait_answer(&h, API, &[("X-Pointsman-Version", "candidate")], "green v2");
    thread::sleep(THROTTLE);

    // 20 flips under a client alternating front, api, front, api…
    let client = Alternating::start(h.traefik.web_addr());
    thread::sleep(Duration::from_millis(500));
    let mut switched = Vec::new();
    for flip in 0..20 {
        let (args, want) = if flip % 2 == 0 {
            (vec!["promote", "--project", &project], "green")
        } else {
            (vec!["rollback", "--project", &project], "blue")
        };
        let t0 = Instant::now();
        h.cli_ok(&args);
        let body = format!("{want} v{}", if want == "green" { 2 } else { 1 });
        wait_answer(&h, FRONT, &[], &body);
        wait_answer(&h, API, &[], &body);
        switched.push(t0.elapsed());
        thread::sleep(THROTTLE);
    }
    let seen = client.stop();

    let failed: Vec<_> = seen
        .iter()
        .filter(|(_, b)| !b.ends_with(" v1") && !b.ends_with(" v2"))
        .take(10)
        .collect();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
    // The versions the client saw, in order, with repeats collapsed: with both apps switching
    // in one reload it changes exactly once per flip. A new frontend followed by an old API (or
    // the reverse) would add changes.
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for (_, body) in &seen {
        let v = &body[body.len() - 2..];
        match runs.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => runs.push((v, 1)),
        }
    }
    let changes = runs.len() - 1;
    eprintln!(
        "{} requests, {changes} version changes over 20 flips; each flip served in {:?}",
        seen.len(),
        switched
    );
    let mixed: Vec<_> = runs.iter().filter(|(_, n)| *n < 4).take(10).collect();
    assert_eq!(changes, 20, "mixed versions seen (short runs: {mixed:?})");

    // One history entry per app per flip, tied together by one id.
    let history = h.state()["history"].as_array().unwrap().clone();
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &history {
        if let Some(id) = t["id"].as_str() {
            by_id
                .entry(id.into())
                .or_default()
                .push(t["app"].as_str().unwrap().into());
        }
    }
    assert_eq!(by_id.len(), 20, "{by_id:?}");
    assert!(by_id.values().all(|apps| apps.len() == 2), "{by_id:?}");
}

#[test]
fn a_project_canary_keeps_each_client_on_one_version_in_every_app() {
    let (h, project) = stack("stack-canary");
    thread::sleep(THROTTLE);
    let api = h.traefik.api_url();
    let out = h.cli_ok(&["--traefik-api", &api, "canary", "--project", &project, "20", "--wait"]);
    assert!(out.contains(&format!("pointsman-{project}-lb")), "{out}");
    assert!(
        out.contains("Traefik serves it"),
        "--wait verified the whole unit: {out}"
    );
    let status = h.cli_ok(&["status", "--project", &project]);
    assert!(status.contains("canary=20%"), "{status}");

    // 500 new clients; half reach the frontend first, half the API. Whichever answers first sets
    // the project's cookie; every later request of that client, to either app, follows it.
    let cookie_name = format!("pointsman-{project}-lb");
    let mut on_new = 0;
    let mut conn = HttpConn::new(h.traefik.web_addr());
    let mut checked_value = false;
    for client in 0..500 {
        let (first, other) = if client % 2 == 0 { (FRONT, API) } else { (API, FRONT) };
        let r = conn.get(&host(first), "/", &[]).expect("first request");
        assert_eq!(r.status, 200, "{r:?}");
        let version = r.body.trim().to_string();
        let set = r
            .headers
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case("set-cookie") && v.starts_with(&format!("{cookie_name}=")))
            .unwrap_or_else(|| panic!("no {cookie_name} cookie: {:?}", r.headers))
            .1
            .clone();
        let pair = set.split(';').next().unwrap().to_string();
        if !checked_value {
            // Traefik's sticky value: SHA-256 of the child service's name as the file names it
            // (no @file), first 16 hex digits. The project routers depend on it.
            let slot = version.split(' ').next().unwrap();
            // The stable slot's child is its slot service; the candidate's its canary service.
            let stable = h.state()["apps"][first]["stable"].as_str().map(str::to_string);
            let child = if stable.as_deref() == Some(slot) {
                pointsman::core::names::slot(first, slot)
            } else {
                pointsman::core::names::canary(first, slot)
            };
            let want = pointsman::core::render::sticky_value(&child);
            eprintln!("Set-Cookie: {set} (sha256({child:?})[..16] = {want})");
            assert_eq!(pair, format!("{cookie_name}={want}"), "{set}");
            assert!(set.contains("Domain=stack.test"), "one cookie for both hosts: {set}");
            checked_value = true;
        }
        for i in 0..3 {
            for app in [other, first] {
                let r = conn.get(&host(app), "/", &[("Cookie", &pair)]).unwrap();
                assert_eq!(
                    r.body.trim(),
                    version,
                    "client {client} (first {first}: {version}) request {i} to {app} with {pair}"
                );
            }
        }
        if version == "green v2" {
            on_new += 1;
        }
    }
    let share = on_new as f64 / 500.0 * 100.0;
    eprintln!("500 clients at 20%: {on_new} on the new version ({share:.1}%), every one consistent across both apps");
    assert!((10.0..=30.0).contains(&share), "{share:.1}% on the candidates");

    // abort --project ends it everywhere.
    thread::sleep(THROTTLE);
    h.cli_ok(&["--traefik-api", &api, "abort", "--project", &project, "--wait"]);
    for _ in 0..20 {
        for app in [FRONT, API] {
            assert_eq!(answer(&h, app, &[]), "blue v1");
        }
    }
    let r = http_get(h.traefik.web_addr(), &host(FRONT), "/", &[]).unwrap();
    assert!(r.header("set-cookie").is_none(), "no weighted service any more: {r:?}");
}
