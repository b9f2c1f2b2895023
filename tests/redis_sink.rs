//! The Redis sink against a real Traefik (issue 12, point 1): same configuration, other sink.
//!
//! - [`every_golden_fixture_routes_the_same_from_redis_as_from_files`]: each golden fixture,
//!   rendered as `tests/golden.rs` renders it, is published with the directory sink (a Traefik
//!   on the file provider) and with the Redis sink (a Traefik on the Redis provider); both
//!   Traefiks must show what was rendered, and the same routers and services.
//! - [`deletions_are_one_transaction_and_traefik_applies_them`]: removing a server, an app, and
//!   every app: each publish is one MULTI/EXEC holding the DEL of the stale keys, and Traefik
//!   stops routing to what was removed (checked on its API and with real requests).
//!
//! Every publish is watched with `redis-cli MONITOR` ([`Monitor`]): the sink's writes must all
//! sit between one MULTI and its EXEC.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pointsman::backend::redis::resp::{RedisUrl, cmd};
use pointsman::backend::redis::{ANCHOR, DEFAULT_ROOT_KEY, Redis, flatten};
use pointsman::backend::{Changes, ConfigSink, Updates, dir};
use pointsman::core::render;
use pointsman::core::traefik::{Dynamic, Router, Service};
use serde_json::Value as J;

use support::fixtures;
use support::redis::RedisServer;
use support::{DemoProcess, RedisProvider, Traefik, TraefikOptions, temp_dir};

/// Throttle of both Traefiks: short, so that 26 fixtures converge in seconds.
const THROTTLE: &str = "100ms";
/// How long one change may take to show in a Traefik's API.
const CONVERGE: Duration = Duration::from_secs(10);

// ---- fixtures, rendered exactly as tests/golden.rs renders them --------------------------------

/// The units a fixture renders (`render::render_all` after seeding, as in tests/golden.rs).
fn render_fixture(case: &Path) -> BTreeMap<String, Dynamic> {
    let p = fixtures::prepare(&fixtures::load(case));
    render::render_all(&p.fleet, &p.state, &p.settings)
}

// ---- what a Traefik shows ----------------------------------------------------------------------

/// A Traefik's routers and services from `provider` (`file` or `redis`), by `routers/NAME` and
/// `services/NAME`, normalised so that two providers' views of the same configuration are equal.
/// Exactly this is normalised, nothing else:
/// - the `@file` / `@redis` suffix: of the name (the map key), and of every string value that
///   ends with it (the `name` field, a service's `usedBy`, and a router's `service`, weighted
///   children and mirrors wherever Traefik qualifies them);
/// - the top-level `provider` field (`file` / `redis`).
///
/// Internal routers and services (`api@internal`, …) belong to provider `internal` and are left
/// out; the anchor is a middleware, so it is in neither list.
fn view(traefik: &Traefik, provider: &str) -> Result<BTreeMap<String, J>, String> {
    let suffix = format!("@{provider}");
    let mut out = BTreeMap::new();
    for kind in ["routers", "services"] {
        let path = format!("/api/http/{kind}?per_page=1000");
        let Some(J::Array(items)) = traefik.api_json(&path) else {
            return Err(format!("{path} on the {provider} Traefik did not answer with a list"));
        };
        for mut item in items.into_iter().filter(|i| i["provider"] == provider) {
            let name = item["name"].as_str().unwrap_or_default().to_string();
            let name = name.strip_suffix(&suffix).unwrap_or(&name).to_string();
            item.as_object_mut()
                .expect("an API item is an object")
                .remove("provider");
            strip_suffix(&mut item, &suffix);
            out.insert(format!("{kind}/{name}"), item);
        }
    }
    Ok(out)
}

fn strip_suffix(v: &mut J, suffix: &str) {
    match v {
        J::String(s) => {
            if let Some(t) = s.strip_suffix(suffix) {
                *s = t.to_string();
            }
        }
        J::Array(items) => items.iter_mut().for_each(|i| strip_suffix(i, suffix)),
        J::Object(map) => map.values_mut().for_each(|i| strip_suffix(i, suffix)),
        _ => {}
    }
}

/// Whether `shown` (an API object) shows everything `rendered` says: each field of `rendered`
/// is in `shown` with the same value (Traefik adds defaults and status around it); lists have
/// the same length. An empty rendered list matches a missing field (no servers).
fn shows(shown: Option<&J>, rendered: &J) -> bool {
    match (shown, rendered) {
        (None, J::Array(r)) => r.is_empty(),
        (Some(J::Object(s)), J::Object(r)) => r.iter().all(|(k, rv)| shows(s.get(k), rv)),
        (Some(J::Array(s)), J::Array(r)) => s.len() == r.len() && s.iter().zip(r).all(|(s, r)| shows(Some(s), r)),
        (Some(s), r) => s == r,
        (None, _) => false,
    }
}

/// Whether `view` is exactly the rendered `units`: the same routers and services, each showing
/// its rendered fields. This is what tells a converged Traefik from one still on the previous
/// fixture.
fn is_current(view: &BTreeMap<String, J>, units: &BTreeMap<String, Dynamic>) -> Result<(), String> {
    let mut want = BTreeMap::new();
    for config in units.values() {
        for (name, r) in &config.http.routers {
            want.insert(format!("routers/{name}"), serde_json::to_value(r).unwrap());
        }
        for (name, s) in &config.http.services {
            want.insert(format!("services/{name}"), serde_json::to_value(s).unwrap());
        }
    }
    let (have, expected): (BTreeSet<_>, BTreeSet<_>) = (view.keys().collect(), want.keys().collect());
    if have != expected {
        return Err(format!("shows {have:?}, rendered {expected:?}"));
    }
    for (name, rendered) in &want {
        if !shows(view.get(name), rendered) {
            return Err(format!("{name} shows {} but {rendered} was rendered", view[name]));
        }
    }
    Ok(())
}

fn pretty(view: &BTreeMap<String, J>) -> String {
    serde_json::to_string_pretty(view).unwrap() + "\n"
}

fn diff(file: &str, redis: &str) -> String {
    similar::TextDiff::from_lines(file, redis)
        .unified_diff()
        .context_radius(3)
        .header("file provider", "redis provider")
        .to_string()
}

fn routers_of(traefik: &Traefik, provider: &str) -> Vec<String> {
    traefik
        .routers()
        .into_iter()
        .filter(|r| r.ends_with(&format!("@{provider}")))
        .collect()
}

/// Polls `check` every 20 ms until it is `Ok`; on timeout panics with its last message (shown
/// as is, so diffs stay readable).
fn converge<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => {
                panic!(
                    "timed out after {:.1?} waiting for {what}; last observation:\n{last}",
                    start.elapsed()
                )
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

// ---- redis-cli MONITOR -------------------------------------------------------------------------

/// One command as MONITOR printed it.
#[derive(Debug, Clone)]
struct Logged {
    /// `IP:PORT` of the connection that sent it.
    client: String,
    args: Vec<String>,
}

/// `redis-cli -p PORT MONITOR`, read in the background. Killed on drop.
struct Monitor {
    child: Child,
    lines: Arc<Mutex<Vec<Logged>>>,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        let mut child = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "MONITOR"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-cli MONITOR");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready, started) = mpsc::channel();
        let sink = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "OK" {
                    let _ = ready.send(());
                } else if let Some(l) = parse_monitor_line(&line) {
                    sink.lock().unwrap().push(l);
                }
            }
        });
        started
            .recv_timeout(Duration::from_secs(5))
            .expect("redis-cli MONITOR did not start");
        Monitor { child, lines }
    }

    fn lines(&self) -> Vec<Logged> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `1700000000.123456 [0 127.0.0.1:5555] "SET" "k" "v\"x"`.
fn parse_monitor_line(line: &str) -> Option<Logged> {
    let (_, rest) = line.split_once(" [")?;
    let (db_client, rest) = rest.split_once("] ")?;
    let client = db_client.split_once(' ')?.1.to_string();
    let mut args = Vec::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = Vec::<u8>::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => arg.push(b'\n'),
                    'r' => arg.push(b'\r'),
                    't' => arg.push(b'\t'),
                    'a' => arg.push(7),
                    'b' => arg.push(8),
                    'x' => {
                        let hex: String = chars.by_ref().take(2).collect();
                        arg.push(u8::from_str_radix(&hex, 16).ok()?);
                    }
                    other => arg.extend(other.to_string().as_bytes()),
                },
                other => arg.extend(other.to_string().as_bytes()),
            }
        }
        args.push(String::from_utf8_lossy(&arg).into_owned());
    }
    Some(Logged { client, args })
}

/// Commands the sink may send outside its transaction: reads only.
const READS: [&str; 11] = [
    "SCAN", "MGET", "GET", "WATCH", "UNWATCH", "PING", "SELECT", "AUTH", "HELLO", "CLIENT", "INFO",
];

/// Publishes `updates` with `sink` while MONITOR watches, and checks that the sink wrote in
/// exactly one MULTI/EXEC (none if nothing changed) and sent nothing but reads outside it.
/// Returns what the sink did and the commands inside its transaction.
fn publish_watched(
    server: &RedisServer,
    observer: &Redis,
    sink: &mut dyn ConfigSink,
    updates: &Updates,
) -> (Changes, Vec<Vec<String>>) {
    let monitor = Monitor::start(server.port);
    let changes = sink.publish(updates).expect("the Redis sink publishes");
    // Redis runs commands in order: once MONITOR shows this ECHO (sent after the publish
    // returned), it has shown every command of the publish.
    let marker = format!("pointsman-test-marker-{}", support::unique_id("m"));
    observer.call(&cmd(["ECHO", &marker])).unwrap();
    let lines = converge("MONITOR to show the marker", Duration::from_secs(5), || {
        let lines = monitor.lines();
        match lines.iter().position(|l| l.args.last() == Some(&marker)) {
            Some(i) => Ok(lines[..i].to_vec()),
            None => Err(format!("{} lines so far", lines.len())),
        }
    });
    drop(monitor);
    let show = |ls: &[Logged]| {
        ls.iter()
            .map(|l| format!("[{}] {:?}", l.client, l.args))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let multis: Vec<&Logged> = lines
        .iter()
        .filter(|l| l.args[0].eq_ignore_ascii_case("MULTI"))
        .collect();
    if changes.is_empty() {
        assert!(
            multis.is_empty(),
            "a publish that changed nothing ran MULTI:\n{}",
            show(&lines)
        );
        return (changes, Vec::new());
    }
    assert_eq!(
        multis.len(),
        1,
        "one publish must be ONE MULTI/EXEC; MONITOR saw:\n{}",
        show(&lines)
    );
    let ours: Vec<&Logged> = lines.iter().filter(|l| l.client == multis[0].client).collect();
    let begin = ours
        .iter()
        .position(|l| l.args[0].eq_ignore_ascii_case("MULTI"))
        .unwrap();
    let end = ours
        .iter()
        .position(|l| l.args[0].eq_ignore_ascii_case("EXEC"))
        .unwrap_or_else(|| panic!("MULTI without EXEC:\n{}", show(&lines)));
    assert!(begin < end, "EXEC before MULTI:\n{}", show(&lines));
    for (i, l) in ours.iter().enumerate() {
        let outside = i < begin || i > end;
        assert!(
            !outside || READS.iter().any(|r| l.args[0].eq_ignore_ascii_case(r)),
            "the sink sent {:?} outside its MULTI/EXEC:\n{}",
            l.args,
            show(&lines)
        );
    }
    let inside = ours[begin + 1..end].iter().map(|l| l.args.clone()).collect();
    (changes, inside)
}

/// The keys under the root key, with their values (read on a connection of their own).
fn root_keys(observer: &Redis) -> BTreeMap<String, String> {
    let keys = observer.scan(&format!("{DEFAULT_ROOT_KEY}/*")).unwrap();
    if keys.is_empty() {
        return BTreeMap::new();
    }
    let values = observer
        .call(&cmd(std::iter::once("MGET".to_string()).chain(keys.iter().cloned())))
        .unwrap()
        .into_array();
    keys.into_iter()
        .zip(values)
        .map(|(k, v)| (k, v.into_string().unwrap_or_default()))
        .collect()
}

/// What the root key must hold when `units` are published: their flattened keys and the anchor.
fn expected_keys(units: &BTreeMap<String, Dynamic>) -> BTreeMap<String, String> {
    let mut want: BTreeMap<String, String> = units
        .values()
        .flat_map(flatten)
        .map(|(k, v)| (format!("{DEFAULT_ROOT_KEY}/{k}"), v))
        .collect();
    want.insert(format!("{DEFAULT_ROOT_KEY}/{ANCHOR}"), "pointsman".into());
    want
}

fn redis_url(server: &RedisServer) -> RedisUrl {
    server.url().parse().expect("the test's Redis URL parses")
}

fn options(redis: Option<&RedisServer>) -> TraefikOptions {
    TraefikOptions {
        providers_throttle: Some(THROTTLE.into()),
        redis: redis.map(|r| RedisProvider::new(&r.endpoint())),
        ..Default::default()
    }
}

// ---- 1. every golden fixture, two sinks, two Traefiks ----------------------------------------

#[test]
fn every_golden_fixture_routes_the_same_from_redis_as_from_files() {
    let server = RedisServer::start();
    let observer = Redis::new(redis_url(&server));
    let dynamic = temp_dir("sink-file");
    let (file_traefik, redis_traefik) = thread::scope(|s| {
        let f = s.spawn(|| Traefik::start_with(&dynamic, options(None)));
        let r = s.spawn(|| Traefik::start_with(&temp_dir("sink-unused"), options(Some(&server))));
        (f.join().unwrap(), r.join().unwrap())
    });
    let mut file_sink = dir::DirSink::new(&dir::Dir::open(&dynamic).unwrap());
    let mut redis_sink = Redis::new(redis_url(&server)).sink(DEFAULT_ROOT_KEY);

    let mut previous: BTreeSet<String> = BTreeSet::new();
    let (mut compared, mut skipped, mut transactions) = (Vec::new(), Vec::new(), 0);
    for case in fixtures::cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let units = render_fixture(&case);
        if units.is_empty() {
            skipped.push(name);
            continue;
        }
        // This fixture's units, and the previous fixture's removed: each is compared alone.
        let mut updates: Updates = units.iter().map(|(u, c)| (u.clone(), Some(c.clone()))).collect();
        for gone in previous.iter().filter(|u| !units.contains_key(*u)) {
            updates.insert(gone.clone(), None);
        }
        previous = units.keys().cloned().collect();
        let start = Instant::now();
        let keys_before = root_keys(&observer);
        file_sink.publish(&updates).expect("the directory sink publishes");
        let (changes, inside) = publish_watched(&server, &observer, &mut redis_sink, &updates);
        if !changes.is_empty() {
            transactions += 1;
        }
        // Stale keys deleted and new values written in that one transaction; the anchor stays.
        check_transaction(
            &name,
            &inside,
            &keys_before,
            &expected_keys(&units),
            &root_keys(&observer),
        );

        let (file_view, redis_view) = converge(&format!("{name}: both Traefiks to route the same"), CONVERGE, || {
            let f = view(&file_traefik, "file")?;
            let r = view(&redis_traefik, "redis")?;
            is_current(&f, &units).map_err(|e| format!("file provider: {e}"))?;
            is_current(&r, &units).map_err(|e| format!("redis provider: {e}"))?;
            if f != r {
                return Err(format!(
                    "the two providers differ (- file, + redis):\n{}",
                    diff(&pretty(&f), &pretty(&r))
                ));
            }
            Ok((f, r))
        });
        assert_eq!(file_view, redis_view);
        compared.push(format!(
            "{name}: {} unit(s), {} routers and services, {:.0?}",
            units.len(),
            file_view.len(),
            start.elapsed()
        ));
    }
    eprintln!(
        "compared {} fixtures ({} Redis transactions); skipped (no units): {skipped:?}\n{}",
        compared.len(),
        transactions,
        compared.join("\n")
    );
    assert!(compared.len() >= 10, "too few fixtures compared: {compared:?}");
}

// ---- 2. deletions --------------------------------------------------------------------------------

fn router(rule: &str, service: &str) -> Router {
    Router {
        entry_points: vec!["web".into()],
        priority: None,
        rule: rule.into(),
        service: service.into(),
    }
}

/// App `web`: slots blue (stable, `blue` servers) and green (one server); router `web` goes to
/// blue, router `web.slot.green` to green on a header.
fn web(blue: &[&DemoProcess], green: &DemoProcess) -> Dynamic {
    let mut d = Dynamic::default();
    d.http
        .routers
        .insert("web".into(), router("Host(`web.test`)", "web.slot.blue"));
    d.http.routers.insert(
        "web.slot.green".into(),
        router(
            "Host(`web.test`) && Header(`X-Pointsman-Version`, `green`)",
            "web.slot.green",
        ),
    );
    d.http.services.insert(
        "web.slot.blue".into(),
        Service::load_balancer(blue.iter().map(|b| b.url())),
    );
    d.http
        .services
        .insert("web.slot.green".into(), Service::load_balancer([green.url()]));
    d
}

fn api(server: &DemoProcess) -> Dynamic {
    let mut d = Dynamic::default();
    d.http.routers.insert("api".into(), router("Host(`api.test`)", "api"));
    d.http
        .services
        .insert("api".into(), Service::load_balancer([server.url()]));
    d
}

/// The server URLs Traefik shows for service `name@redis` (empty if it has no such service).
fn servers(traefik: &Traefik, name: &str) -> Vec<String> {
    traefik
        .api_json(&format!("/api/http/services/{name}@redis"))
        .map(|s| {
            s["loadBalancer"]["servers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["url"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Response bodies of `n` requests for `host` through Traefik's `web` entrypoint, counted.
fn bodies(traefik: &Traefik, host: &str, n: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let body = match traefik.get(host, "/", &[]) {
            Ok(r) => format!("{} {}", r.status, r.body.trim()),
            Err(e) => format!("error {e}"),
        };
        *out.entry(body).or_default() += 1;
    }
    out
}

fn deleted_keys(inside: &[Vec<String>]) -> BTreeSet<String> {
    inside
        .iter()
        .filter(|c| c[0].eq_ignore_ascii_case("DEL"))
        .flat_map(|c| c[1..].iter().cloned())
        .collect()
}

/// Checks the transaction of a publish that went from `before` to `after`: every key that is
/// gone was deleted in it, every new or changed value written in it, and the keyspace is now
/// exactly `after`'s.
fn check_transaction(
    what: &str,
    inside: &[Vec<String>],
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) {
    let gone: BTreeSet<String> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    let deleted = deleted_keys(inside);
    assert!(
        gone.is_subset(&deleted),
        "{what}: stale keys not deleted in the transaction: {:?}\ntransaction: {inside:#?}",
        gone.difference(&deleted).collect::<Vec<_>>()
    );
    let mut written = BTreeMap::new();
    for c in inside.iter().filter(|c| c[0].eq_ignore_ascii_case("MSET")) {
        for kv in c[1..].chunks(2) {
            written.insert(kv[0].clone(), kv[1].clone());
        }
    }
    for (k, v) in after.iter().filter(|(k, v)| before.get(*k) != Some(v)) {
        assert_eq!(
            written.get(k),
            Some(v),
            "{what}: {k} not written in the transaction: {inside:#?}"
        );
    }
    assert_eq!(
        now, after,
        "{what}: the keys under the root are not exactly the new ones"
    );
}

#[test]
fn deletions_are_one_transaction_and_traefik_applies_them() {
    let server = RedisServer::start();
    let observer = Redis::new(redis_url(&server));
    let traefik = Traefik::start_with(&temp_dir("sink-unused"), options(Some(&server)));
    let (a, b) = (
        DemoProcess::start("blue", &[("VERSION", "a")]),
        DemoProcess::start("blue", &[("VERSION", "b")]),
    );
    let (green, api_server) = (
        DemoProcess::start("green", &[("VERSION", "g")]),
        DemoProcess::start("api", &[("VERSION", "1")]),
    );
    let mut sink = Redis::new(redis_url(&server)).sink(DEFAULT_ROOT_KEY);
    let some = |units: &[(&str, Option<Dynamic>)]| -> Updates {
        units.iter().map(|(u, c)| (u.to_string(), c.clone())).collect()
    };
    let published = |units: &[(&str, &Dynamic)]| -> BTreeMap<String, String> {
        expected_keys(&units.iter().map(|(u, c)| (u.to_string(), (*c).clone())).collect())
    };

    // Both apps: web's stable slot has servers a and b.
    let (web_ab, api_1) = (web(&[&a, &b], &green), api(&api_server));
    let (_, inside) = publish_watched(
        &server,
        &observer,
        &mut sink,
        &some(&[("web", Some(web_ab.clone())), ("api", Some(api_1.clone()))]),
    );
    let mut before = BTreeMap::new();
    let after = published(&[("web", &web_ab), ("api", &api_1)]);
    check_transaction("first publish", &inside, &before, &after, &root_keys(&observer));
    converge("web and api to be routed", CONVERGE, || {
        let r = routers_of(&traefik, "redis");
        let want = ["api@redis", "web.slot.green@redis", "web@redis"];
        (r == want).then_some(()).ok_or(format!("routers {r:?}"))
    });
    converge("requests to reach both of web's stable servers", CONVERGE, || {
        let seen = bodies(&traefik, "web.test", 10);
        (seen.keys().collect::<Vec<_>>() == ["200 blue a", "200 blue b"])
            .then_some(())
            .ok_or(format!("{seen:?}"))
    });
    before = after;

    // 1. Server a leaves web's stable slot: its key shifts (servers/1 is deleted, servers/0
    //    becomes b) in one transaction, and Traefik stops sending requests to a (still up).
    let web_b = web(&[&b], &green);
    let (_, inside) = publish_watched(&server, &observer, &mut sink, &some(&[("web", Some(web_b.clone()))]));
    let after = published(&[("web", &web_b), ("api", &api_1)]);
    check_transaction("one server removed", &inside, &before, &after, &root_keys(&observer));
    assert_eq!(
        deleted_keys(&inside),
        BTreeSet::from([format!(
            "{DEFAULT_ROOT_KEY}/http/services/web.slot.blue/loadBalancer/servers/1/url"
        )]),
        "{inside:#?}"
    );
    converge("Traefik to drop server a", CONVERGE, || {
        let s = servers(&traefik, "web.slot.blue");
        (s == [b.url()]).then_some(()).ok_or(format!("servers {s:?}"))
    });
    let seen = bodies(&traefik, "web.test", 20);
    assert_eq!(
        seen,
        BTreeMap::from([("200 blue b".to_string(), 20)]),
        "requests still reach a"
    );
    let green_seen = traefik
        .get("web.test", "/", &[("X-Pointsman-Version", "green")])
        .unwrap();
    assert_eq!((green_seen.status, green_seen.body.trim()), (200, "green g"));
    before = after;

    // 2. App api goes while web stays: all of api's keys are deleted in one transaction, and
    //    Traefik forgets its router and service.
    let (_, inside) = publish_watched(&server, &observer, &mut sink, &some(&[("api", None)]));
    let after = published(&[("web", &web_b)]);
    check_transaction("app api removed", &inside, &before, &after, &root_keys(&observer));
    converge("Traefik to forget api", CONVERGE, || {
        let v = view(&traefik, "redis")?;
        let names: Vec<&str> = v.keys().map(String::as_str).collect();
        let want = [
            "routers/web",
            "routers/web.slot.green",
            "services/web.slot.blue",
            "services/web.slot.green",
        ];
        (names == want).then_some(()).ok_or(format!("{names:?}"))
    });
    assert_eq!(traefik.get("api.test", "/", &[]).unwrap().status, 404);
    assert_eq!(
        bodies(&traefik, "web.test", 5),
        BTreeMap::from([("200 blue b".to_string(), 5)])
    );
    before = after;

    // 3. Everything goes: every app key is deleted, the anchor stays (Traefik never applies the
    //    deletion of every key under its root), and Traefik has no pointsman router left.
    let (_, inside) = publish_watched(&server, &observer, &mut sink, &some(&[("web", None)]));
    let after = published(&[]);
    check_transaction("every app removed", &inside, &before, &after, &root_keys(&observer));
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        [&format!("{DEFAULT_ROOT_KEY}/{ANCHOR}")]
    );
    converge("Traefik to have no pointsman router or service", CONVERGE, || {
        let v = view(&traefik, "redis")?;
        v.is_empty()
            .then_some(())
            .ok_or(format!("{:?}", v.keys().collect::<Vec<_>>()))
    });
    let middlewares = traefik.api_json("/api/http/middlewares").unwrap_or_default();
    assert!(
        middlewares
            .as_array()
            .into_iter()
            .flatten()
            .any(|m| m["name"] == "pointsman-anchor@redis"),
        "the anchor middleware is not loaded: {middlewares}"
    );
    assert_eq!(traefik.get("web.test", "/", &[]).unwrap().status, 404);
    assert!(server.keys("pointsman/config/*").is_empty(), "unit records left behind");
}
