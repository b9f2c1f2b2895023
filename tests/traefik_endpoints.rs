//! `pointsman::traefik` against a real Traefik 3.7: its Prometheus metrics (scrape and judge a
//! step) and its API (verified apply). Backends are the demo binary as local processes, so
//! these tests need Traefik (`scripts/install-traefik.sh`) but not Docker.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use pointsman::core::names;
use pointsman::core::traefik::{Cookie, Dynamic, Router, Service, Sticky, Weighted, WeightedChild};
use pointsman::traefik::api::{ApplyError, FROZEN_AFTER, wait_applied};
use pointsman::traefik::metrics::{
    Limits, Metric, MetricsError, ServiceCounters, Verdict, Window, judge, scrape, service_counters, service_sample,
};
use support::*;

const HOST: &str = "web.test";

fn router(rule: &str, service: &str) -> Router {
    Router {
        entry_points: vec!["web".into()],
        priority: None,
        rule: rule.into(),
        service: service.into(),
    }
}

/// The app `web` as pointsman renders it (names from [`names`]): the public router on the
/// stable slot (or on a weighted service during a canary, whose candidate child is its canary
/// service), the candidate router by cookie, one leaf per slot.
fn web(stable: &DemoProcess, candidate: Option<&DemoProcess>, canary_percent: u32) -> Dynamic {
    let mut d = Dynamic::default();
    let rule = format!("Host(`{HOST}`)");
    let (blue, green) = (names::slot("web", "blue"), names::slot("web", "green"));
    d.http
        .services
        .insert(blue.clone(), Service::load_balancer([stable.url()]));
    let public = match candidate {
        Some(candidate) => {
            d.http
                .services
                .insert(green.clone(), Service::load_balancer([candidate.url()]));
            d.http.routers.insert(
                names::candidate_router("web"),
                router(
                    &format!("({rule}) && HeaderRegexp(`Cookie`, `(^|;\\s*)pointsman-web=candidate(;|$)`)"),
                    &green,
                ),
            );
            if canary_percent > 0 {
                let canary = names::canary("web", "green");
                d.http
                    .services
                    .insert(canary.clone(), Service::load_balancer([candidate.url()]));
                d.http.services.insert(
                    names::public("web"),
                    Service::Weighted(Weighted {
                        services: vec![
                            WeightedChild {
                                name: blue.clone(),
                                weight: 100 - canary_percent,
                            },
                            WeightedChild {
                                name: canary,
                                weight: canary_percent,
                            },
                        ],
                        sticky: Some(Sticky {
                            cookie: Cookie {
                                domain: None,
                                http_only: true,
                                name: "pointsman-web-lb".into(),
                                same_site: "lax".into(),
                            },
                        }),
                    }),
                );
                names::public("web")
            } else {
                blue
            }
        }
        None => blue,
    };
    d.http.routers.insert(names::public("web"), router(&rule, &public));
    d
}

/// `web.slot.SLOT` and the like as Traefik's metrics label them.
fn at_file(name: String) -> String {
    format!("{name}@file")
}

/// Writes `unit` the way the directory sink does: JSON in `pointsman-UNIT.yml`, by a rename.
fn publish(dir: &Path, unit: &str, d: &Dynamic) -> BTreeMap<String, Dynamic> {
    write_atomic(
        &dir.join(format!("pointsman-{unit}.yml")),
        &serde_json::to_string_pretty(d).unwrap(),
    );
    BTreeMap::from([(unit.to_string(), d.clone())])
}

fn get_status(conn: &mut HttpConn) -> u16 {
    conn.get(HOST, "/", &[]).expect("request through Traefik").status
}

/// Scrapes until `service` has counted `requests` (Traefik counts after it has answered, so
/// the last responses may be read before they are counted).
async fn scrape_until(url: &str, service: &str, requests: u64) -> ServiceCounters {
    let start = Instant::now();
    loop {
        let counters = scrape(url).await.expect("scrape").service(service);
        if counters.requests >= requests || start.elapsed() > Duration::from_secs(3) {
            return counters;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- metrics ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_request_and_judge_a_bad_candidate() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[("ERROR_PERCENT", "10")]);
    let dir = temp_dir("metrics-dyn");
    // Everyone on the candidate, so every request is one of its samples.
    let mut d = web(&blue, Some(&green), 0);
    d.http.routers.get_mut("web").unwrap().service = names::slot("web", "green");
    publish(&dir, "web", &d);
    let traefik = Traefik::start_with(
        &dir,
        TraefikOptions {
            metrics: true,
            ..Default::default()
        },
    );
    traefik.wait_router("web", Duration::from_secs(10));
    let url = traefik.metrics_url();
    let service = &at_file(names::slot("web", "green"));

    let before = scrape(&url).await.unwrap().service(service);
    assert_eq!(before, ServiceCounters::default(), "no request yet");
    let mut conn = HttpConn::new(traefik.web_addr());
    let mut failed = 0;
    for _ in 0..200 {
        if get_status(&mut conn) == 500 {
            failed += 1;
        }
    }
    assert_eq!(failed, 20, "the demo fails exactly every 10th request");
    let after = scrape_until(&url, service, 200).await;
    assert_eq!((after.requests, after.errors), (200, 20), "{after:?}");
    let bounds: Vec<f64> = after.buckets.iter().map(|b| b.le).collect();
    assert_eq!(bounds[..10], METRICS_BUCKETS, "{after:?}");
    assert_eq!(bounds[10], f64::INFINITY);
    assert_eq!(after.buckets[10].count, 200, "every request is in the histogram");
    let stats = green.stats();
    assert_eq!(
        (stats["requests"].as_u64(), stats["errors"].as_u64()),
        (Some(200), Some(20))
    );

    let verdict = judge(&before, &after, &Limits::default());
    assert_eq!(
        verdict,
        Verdict::Breach {
            metric: Metric::ErrorRatio,
            value: 0.1,
            threshold: 0.01,
            requests: 200
        }
    );
    eprintln!("verdict: {verdict}");

    // The same candidate made slow at runtime, without errors: judged on this window only.
    let out = green.command(&["mode", "error=0", "latency=60"]);
    assert!(out.status.success(), "{out:?}");
    for _ in 0..30 {
        assert_eq!(get_status(&mut conn), 200);
    }
    let slow = scrape_until(&url, service, 230).await;
    let limits = Limits {
        max_p99: Some(Duration::from_millis(50)),
        ..Limits::default()
    };
    let verdict = judge(&after, &slow, &limits);
    eprintln!("verdict: {verdict}");
    match verdict {
        Verdict::Breach {
            metric: Metric::P99,
            value,
            threshold,
            requests: 30,
        } => {
            // Every request took at least the injected 60 ms, so p99 lands in a bucket above
            // 0.05 s; how far above depends on the machine's load, not on pointsman.
            assert!(value >= 0.06, "p99 {value} s reflects the injected 60 ms");
            assert_eq!(threshold, 0.05);
        }
        other => panic!("expected a p99 breach, got {other:?}"),
    }
    // A limit above the histogram's largest finite bucket (5 s) always passes this window.
    let lenient = Limits {
        max_p99: Some(Duration::from_secs(5)),
        ..Limits::default()
    };
    assert!(judge(&after, &slow, &lenient).passed());
}

/// Several hosts, one release: a rollout step is judged on the candidate's traffic through every
/// host's Traefik (`--traefik-metrics A,B`), and one Traefik it cannot read fails the sample.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_of_several_traefiks_add_up() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[("ERROR_PERCENT", "10")]);
    let dir = temp_dir("metrics-two");
    let mut d = web(&blue, Some(&green), 0);
    d.http.routers.get_mut("web").unwrap().service = names::slot("web", "green");
    publish(&dir, "web", &d);
    let opts = TraefikOptions {
        metrics: true,
        ..Default::default()
    };
    let (a, b) = (Traefik::start_with(&dir, opts.clone()), Traefik::start_with(&dir, opts));
    a.wait_router("web", Duration::from_secs(10));
    b.wait_router("web", Duration::from_secs(10));
    let service = &at_file(names::slot("web", "green"));
    for (traefik, n) in [(&a, 30), (&b, 70)] {
        let mut conn = HttpConn::new(traefik.web_addr());
        for _ in 0..n {
            get_status(&mut conn);
        }
    }
    scrape_until(&a.metrics_url(), service, 30).await;
    scrape_until(&b.metrics_url(), service, 70).await;
    let urls = format!("{}, {}", a.metrics_url(), b.metrics_url());
    let sum = service_counters(&urls, service).await.unwrap();
    assert_eq!((sum.requests, sum.errors), (100, 10), "{sum:?}");
    assert_eq!(sum.buckets.last().map(|b| b.count), Some(100), "{sum:?}");
    // Per Traefik, with its start time, which is how a window tells a restart apart.
    let sample = service_sample(&urls, service).await.unwrap();
    for (traefik, n) in [(&a, 30), (&b, 70)] {
        let r = &sample.readings[&traefik.metrics_url()];
        assert_eq!((r.counters.requests, r.counters.errors), (n, n / 10), "{r:?}");
        assert!(
            r.started.is_some_and(|t| t > 1.7e9),
            "process_start_time_seconds: {r:?}"
        );
    }
    let mut window = Window::new(sample);
    let mut conn = HttpConn::new(a.web_addr());
    for _ in 0..20 {
        get_status(&mut conn);
    }
    scrape_until(&a.metrics_url(), service, 50).await;
    window.advance(service_sample(&urls, service).await.unwrap());
    assert_eq!((window.counted().requests, window.counted().errors), (20, 2));
    let down = format!("{},http://127.0.0.1:9/metrics", a.metrics_url());
    assert!(
        service_counters(&down, service).await.is_err(),
        "a Traefik that cannot be read fails the sample"
    );
}

#[tokio::test]
async fn scrape_errors_say_what_is_wrong() {
    let dir = temp_dir("metrics-errors-dyn");
    let traefik = Traefik::start(&dir); // no metrics
    let e = scrape(&traefik.metrics_url()).await.unwrap_err();
    assert!(matches!(e, MetricsError::Status { status: 404, .. }), "{e}");
    let e = scrape(&format!("{}/api/overview", traefik.api_url()))
        .await
        .unwrap_err();
    assert!(matches!(e, MetricsError::Parse { .. }), "{e}");
    eprintln!("{e}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let e = scrape(&format!("http://{closed}/metrics")).await.unwrap_err();
    assert!(matches!(e, MetricsError::Unreachable { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("http://{closed}/metrics did not answer")),
        "{e}"
    );
    eprintln!("{e}");
}

// ---- verified apply --------------------------------------------------------------------------

/// A canary walked through its steps and promoted, one rename each, at Traefik's default
/// throttle: each step is seen applied in the API well under a second after its rename
/// (~50 ms on an idle machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rename_is_seen_applied_quickly() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[]);
    let dir = temp_dir("apply-dyn");
    let expected = publish(&dir, "web", &web(&blue, Some(&green), 0));
    let traefik = Traefik::start(&dir);
    let api = traefik.api_url();
    wait_applied(&api, &expected, &[], Duration::from_secs(10), Some(&dir))
        .await
        .expect("initial configuration");

    // Promoted: green is the only slot left (blue's containers gone), no candidate router.
    let mut promoted = web(&blue, Some(&green), 0);
    promoted.http.routers.get_mut("web").unwrap().service = names::slot("web", "green");
    promoted.http.routers.remove(&names::candidate_router("web"));
    promoted.http.services.remove(&names::slot("web", "blue"));
    let mut last_change = Instant::now();
    let mut times = Vec::new();
    for (step, (d, removed)) in [
        (web(&blue, Some(&green), 10), vec![]),
        (web(&blue, Some(&green), 50), vec![]),
        (
            web(&blue, Some(&green), 0),
            vec!["web".to_string(), names::canary("web", "green")],
        ),
        (
            promoted,
            vec![names::candidate_router("web"), names::slot("web", "blue")],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // Past Traefik's 2 s throttle (counted from its last reload), so the rename is applied
        // at once. After the first rename, twice that: Traefik also watches each file that
        // existed when it started, so the first rename over one reaches it twice (directory
        // event, then the replaced file's), and the identical second configuration, held back
        // by the throttle, is passed on 2 s later and starts another 2 s of throttle. A change
        // in that window waited for its end (measured: 1.6-1.7 s instead of ~50 ms).
        let gap = if step == 1 { 4200 } else { 2300 };
        tokio::time::sleep(Duration::from_millis(gap).saturating_sub(last_change.elapsed())).await;
        let expected = publish(&dir, "web", &d);
        let took = wait_applied(&api, &expected, &removed, Duration::from_secs(5), Some(&dir))
            .await
            .unwrap_or_else(|e| panic!("step {step}: {e}\nlog:\n{}", traefik.log()));
        last_change = Instant::now();
        eprintln!("step {step}: applied {took:?} after the rename");
        times.push(took);
    }
    // Traffic follows what the API shows: the promoted slot answers.
    assert_eq!(traefik.get(HOST, "/", &[]).unwrap().body, "green v1\n");
    times.sort();
    eprintln!(
        "apply after rename: p50 {:?}, max {:?} over {} renames",
        times[times.len() / 2],
        times.last().unwrap(),
        times.len()
    );
    assert!(*times.last().unwrap() < Duration::from_secs(1), "{times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_foreign_file_is_named_within_the_timeout() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[]);
    let dir = temp_dir("frozen-dyn");
    publish(&dir, "web", &web(&blue, Some(&green), 0));
    let traefik = Traefik::start(&dir);
    let api = traefik.api_url();
    write_atomic(&dir.join("broken.yml"), "http:\n  routers: [\n");
    let expected = publish(&dir, "web", &web(&blue, Some(&green), 30));

    // Without the directory, all that can be said is "stale".
    let e = wait_applied(&api, &expected, &[], Duration::from_millis(500), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ApplyError::Stale { what, .. } if what.contains(&format!("web: router web: service is {}, expected web", names::slot("web", "blue")))),
        "{e}"
    );
    eprintln!("{e}");

    let timeout = Duration::from_secs(10);
    let start = Instant::now();
    let e = wait_applied(&api, &expected, &[], timeout, Some(&dir))
        .await
        .unwrap_err();
    let took = start.elapsed();
    eprintln!("after {took:?}: {e}");
    let ApplyError::Frozen { file, .. } = &e else {
        panic!("expected Frozen, got {e}");
    };
    assert_eq!(file, &dir.join("broken.yml"));
    assert!(
        e.to_string()
            .contains(&format!("{} is not a file Traefik can load", file.display())),
        "{e}"
    );
    assert!(took >= FROZEN_AFTER && took < timeout, "{took:?}");
    assert!(traefik.log().contains("broken.yml"), "Traefik's log says why too");

    // Removing the file unfreezes Traefik, which then loads the latest routing by itself.
    std::fs::remove_file(dir.join("broken.yml")).unwrap();
    let took = wait_applied(&api, &expected, &[], timeout, Some(&dir))
        .await
        .expect("applied once the broken file is gone");
    eprintln!("applied {took:?} after the broken file was removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_their_cause() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[]);
    let dir = temp_dir("apply-errors-dyn");
    let mut d = web(&blue, Some(&green), 0);
    d.http
        .routers
        .get_mut(&names::candidate_router("web"))
        .unwrap()
        .entry_points = vec!["nope".into()];
    let expected = publish(&dir, "web", &d);
    let traefik = Traefik::start(&dir);
    let api = traefik.api_url();

    // A router Traefik loaded as written but disabled: its own words, at once.
    let start = Instant::now();
    let e = wait_applied(&api, &expected, &[], Duration::from_secs(10), Some(&dir))
        .await
        .unwrap_err();
    eprintln!("after {:?}: {e}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(2));
    match &e {
        ApplyError::RouterError { router, errors } => {
            assert_eq!(router, &names::candidate_router("web"));
            assert!(
                errors.contains(&"entryPoint \"nope\" doesn't exist".to_string()),
                "{errors:?}"
            );
        }
        other => panic!("expected RouterError, got {other}"),
    }

    // Expecting what was not written: stale, naming the difference.
    let mut other = d.clone();
    other
        .http
        .routers
        .get_mut(&names::candidate_router("web"))
        .unwrap()
        .entry_points = vec!["web".into()];
    other.http.services.insert(
        names::slot("web", "green"),
        Service::load_balancer(["http://127.0.0.1:9".to_string()]),
    );
    other.http.services.remove(&names::slot("web", "blue"));
    other.http.routers.get_mut("web").unwrap().service = names::slot("web", "green");
    let expected_other = BTreeMap::from([("web".to_string(), other)]);
    let e = wait_applied(
        &api,
        &expected_other,
        &[names::slot("web", "blue")],
        Duration::from_millis(300),
        None,
    )
    .await
    .unwrap_err();
    eprintln!("{e}");
    let ApplyError::Stale { what, .. } = &e else {
        panic!("expected Stale, got {e}");
    };
    assert!(
        what.contains(&format!(
            "router {}: entrypoints are [\"nope\"], expected [\"web\"]",
            names::candidate_router("web")
        )),
        "{what}"
    );
    assert!(
        what.contains(&format!("service {}: servers are", names::slot("web", "green"))),
        "{what}"
    );
    assert!(
        what.contains("; and 1 more"),
        "service {} is still loaded: {what}",
        names::slot("web", "blue")
    );

    // A URL that is not Traefik's API.
    let e = wait_applied(&blue.url(), &expected, &[], Duration::from_millis(300), None)
        .await
        .unwrap_err();
    eprintln!("{e}");
    assert!(
        matches!(&e, ApplyError::Unreachable { cause, .. } if cause.contains("did not answer Traefik's JSON")),
        "{e}"
    );

    // Traefik stopped.
    drop(traefik);
    let start = Instant::now();
    let e = wait_applied(&api, &expected, &[], Duration::from_secs(1), Some(&dir))
        .await
        .unwrap_err();
    let took = start.elapsed();
    eprintln!("after {took:?}: {e}");
    assert!(matches!(&e, ApplyError::Unreachable { api: a, .. } if *a == api), "{e}");
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}
