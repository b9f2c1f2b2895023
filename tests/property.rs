//! Property test of the pure core: random containers with random (often hostile) labels go
//! through labels → model → roles → render. Whatever the input, nothing panics and every file
//! rendered is one Traefik can load: a comment line then JSON, no Go template action, every
//! rule valid, every router pointing at a service that exists; the same input renders the
//! same bytes.
//!
//! On proptest, so a failure shrinks to the smallest label set that still fails. Deterministic
//! by default (a fixed seed), so a failure reproduces; `PROPTEST_CASES` changes the number of
//! cases (default 2000), `PROPTEST_RNG_SEED` the seed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{RngAlgorithm, RngSeed, TestError, TestRunner};

// ---- the only calls into pointsman's library -------------------------------------------------
//
// Everything else in this file works on the plain description below ([`Case`]), so a change
// of the core's API is adapted here and nowhere else.

use pointsman::backend::dir;
use pointsman::backend::foreign;
use pointsman::core::container::{Container, ContainerConfig, ContainerState, Endpoint, Health, NetworkSettings};
use pointsman::core::model::Fleet;
use pointsman::core::ops;
use pointsman::core::ops::{Context, Operation};
use pointsman::core::render;
use pointsman::core::rule::Rule;
use pointsman::core::settings::Settings;
use pointsman::core::state::{Actor, State};

/// What the core made of one case: the files it rendered and how many containers it refused.
struct Rendered {
    files: BTreeMap<String, Vec<u8>>,
    refused: usize,
}

/// Runs one case through the whole core: containers and settings → fleet (label errors
/// counted), roles seeded from the labels, the case's role changes (per app, in order: a
/// promote, forced or not, then maybe a rollback; refusals are fine), then every file rendered.
fn render_through_core(case: &Case) -> Rendered {
    let settings = Settings {
        preview_entrypoint: case.settings.preview_entrypoint.map(String::from),
        network: case.settings.network.map(String::from),
        allow_catch_all: case.settings.allow_catch_all,
        allowed_hosts: case.settings.allowed_hosts.iter().map(|h| h.to_string()).collect(),
        ..Settings::default()
    };
    let containers: Vec<Container> = case.containers.iter().enumerate().map(to_container).collect();
    let fleet = Fleet::build(&containers, &settings);
    let mut state = State::default();
    ops::seed(&mut state, &fleet, jiff::Timestamp::UNIX_EPOCH, Actor::Controller);
    let ctx = Context {
        now: jiff::Timestamp::UNIX_EPOCH,
        by: Actor::Cli,
        app_label: "pointsman.app",
    };
    let apps: Vec<String> = fleet.app_names().cloned().collect();
    for (app, change) in apps.into_iter().zip(&case.role_changes) {
        let force = change.force_promote;
        let _ = ops::apply(
            &Operation::Promote {
                app: app.clone(),
                force,
            },
            &fleet,
            &mut state,
            ctx,
        );
        if change.rollback {
            let _ = ops::apply(&Operation::Rollback { app }, &fleet, &mut state, ctx);
        }
    }
    let configs = render::render_all(&fleet, &state, &settings);
    for (app, config) in &configs {
        assert!(
            config.dangling_references().is_empty(),
            "{app}: {:?}",
            config.dangling_references()
        );
    }
    Rendered {
        files: configs
            .iter()
            .map(|(app, config)| (dir::file_name(app), dir::encode(config)))
            .collect(),
        refused: fleet.errors().len(),
    }
}

fn to_container((i, spec): (usize, &ContainerSpec)) -> Container {
    Container {
        id: format!("{i:064x}"),
        name: format!("/c{i}"),
        created: spec.created.clone(),
        state: ContainerState {
            status: if spec.running {
                "running".into()
            } else {
                "exited".into()
            },
            running: spec.running,
            paused: spec.paused,
            restarting: false,
            started_at: spec.started_at.clone(),
            health: spec.health.map(|status| Health {
                status: status.to_string(),
            }),
        },
        config: ContainerConfig {
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(key, value)| (format!("pointsman.{key}"), value.clone()))
                    .collect(),
            ),
            exposed_ports: Some(
                spec.exposed_ports
                    .iter()
                    .map(|p| (p.to_string(), serde_json::json!({})))
                    .collect(),
            ),
        },
        network_settings: NetworkSettings {
            networks: Some(
                spec.networks
                    .iter()
                    .map(|(name, ip)| (name.to_string(), Endpoint { ip_address: ip.clone() }))
                    .collect(),
            ),
            ports: None,
        },
        advertise: None,
        host: None,
    }
}

/// Is `name` a file name the core would recognise as one of its own?
fn is_app_file_name(name: &str) -> bool {
    dir::unit_of_file(name).is_some()
}

/// pointsman's check of a file the way Traefik's file provider reads it (Go template, then YAML).
fn traefik_would_load(text: &str) -> Result<(), String> {
    foreign::check_text(text, "yml")
}

/// Is `rule` one Traefik accepts? The oracle here is pointsman's own rule parser, so this only
/// shows that the renderer never writes a rule its parser refuses; a separate test checks
/// rules against a real Traefik.
fn rule_is_valid(rule: &str) -> Result<(), String> {
    Rule::parse(rule).map(drop).map_err(|e| e.to_string())
}

// ---- cases ------------------------------------------------------------------------------------

/// One generated input: settings, containers and the role changes to make.
#[derive(Debug, Clone)]
struct Case {
    settings: SettingsSpec,
    containers: Vec<ContainerSpec>,
    /// The first ones go to the fleet's apps, in order (there are never more apps than containers).
    role_changes: Vec<RoleChange>,
}

#[derive(Debug, Clone)]
struct SettingsSpec {
    preview_entrypoint: Option<&'static str>,
    network: Option<&'static str>,
    allow_catch_all: bool,
    allowed_hosts: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct ContainerSpec {
    /// Label key without the prefix (`app`, `rule`…) → value.
    labels: BTreeMap<&'static str, String>,
    /// Network name → IP address.
    networks: BTreeMap<&'static str, String>,
    exposed_ports: Vec<&'static str>,
    running: bool,
    paused: bool,
    health: Option<&'static str>,
    created: String,
    started_at: String,
}

#[derive(Debug, Clone)]
struct RoleChange {
    force_promote: bool,
    rollback: bool,
}

const MAX_CONTAINERS: usize = 12;

const APPS: &[&str] = &[
    "web", "api", "shop", "Web", "we_b", "wéb", "-x", "a-", "", "{{x}}", "web\n",
];
const SLOTS: &[&str] = &[
    "blue",
    "green",
    "v1.2",
    "a_b",
    "candidate",
    "",
    "{{.Name}}",
    "x y",
    "é",
    "blue\n",
];
const VERSIONS: &[&str] = &["stable", "candidate", "Stable", "", "prod"];
const HOSTS: &[&str] = &[
    "a.example.com",
    "b.example.com,c.example.com",
    "a.example.com, a.example.com",
    "",
    "a`b",
    "{{ env }}",
    "a.example.com\nb",
    "*.example.com",
    "xn--bcher-kva.example",
    "é.com",
];
const RULE_PARTS: &[&str] = &[
    "Host(`a.example.com`)",
    "Host(\"b.example.com\")",
    "PathPrefix(`/api`)",
    "Path(`x`)",
    "HeaderRegexp(`Cookie`, `(^|;\\s*)a=b(;|$)`)",
    "Header(`X`, `y`)",
    "Method(`GET`)",
    "ClientIP(`10.0.0.0/8`)",
    "Query(`a`)",
    "HostRegexp(`^.+\\.example\\.com$`)",
    "&&",
    "||",
    "!",
    "(",
    ")",
    " ",
    "`",
    "\"",
    "{{",
    "}}",
    "\n",
    "Hots(`a`)",
    ",",
];
const PORTS: &[&str] = &["80", "8080", "0", "-1", "65536", "http", " 80", "80 "];
const ENTRYPOINTS: &[&str] = &["web", "web,websecure", "preview", "", "web,,x", "w}}", "web web"];
const NETWORKS: &[&str] = &["front", "back", "nowhere", ""];
const HEALTH: &[&str] = &["healthy", "unhealthy", "starting", "none"];
const EXPOSED: &[&str] = &["80/tcp", "8080/tcp", "53/udp"];

/// Mostly (85 %) one of the first `good` values (the valid ones), sometimes any of them.
fn mostly(values: &'static [&'static str], good: usize) -> impl Strategy<Value = String> {
    prop_oneof![85 => select(&values[..good]), 15 => select(values)].prop_map(String::from)
}

/// Present `percent` % of the time.
fn sometimes<S: Strategy>(percent: u32, s: S) -> impl Strategy<Value = Option<S::Value>> {
    proptest::option::weighted(f64::from(percent) / 100.0, s)
}

fn chance(percent: u32) -> impl Strategy<Value = bool> {
    proptest::bool::weighted(f64::from(percent) / 100.0)
}

/// Mostly a well-formed `Host(…) && MATCHER`, sometimes up to 8 random pieces of rule syntax.
fn rule() -> impl Strategy<Value = String> {
    let well_formed = (
        select(&RULE_PARTS[..2]),
        select(&["&&", "||"][..]),
        select(&RULE_PARTS[..10]),
    )
        .prop_map(|(a, op, b)| format!("{a} {op} {b}"));
    let pieces = proptest::collection::vec(select(RULE_PARTS), 1..=8).prop_map(|p| p.concat());
    prop_oneof![75 => well_formed, 25 => pieces]
}

fn labels() -> impl Strategy<Value = BTreeMap<&'static str, String>> {
    // The routing label: mostly `host` alone or `rule` alone, now and then both or neither.
    let routing = (chance(40), chance(5), chance(95), rule(), mostly(HOSTS, 3)).prop_map(
        |(use_rule, other_too, host_present, rule, host)| {
            if use_rule {
                (Some(rule), other_too.then_some(host))
            } else {
                (other_too.then_some(rule), host_present.then_some(host))
            }
        },
    );
    (
        (
            sometimes(95, mostly(APPS, 3)),
            sometimes(80, mostly(SLOTS, 4)),
            sometimes(60, mostly(VERSIONS, 2)),
            routing,
        ),
        (
            sometimes(30, mostly(PORTS, 2)),
            sometimes(20, mostly(ENTRYPOINTS, 2)),
            sometimes(20, mostly(NETWORKS, 2)),
            // A 5 kB rule now and then.
            chance(3),
        ),
    )
        .prop_map(
            |((app, slot, version, (rule, host)), (port, entrypoints, network, huge_rule))| {
                let huge_rule = huge_rule.then(|| format!("Host(`{}`)", "a".repeat(5000)));
                [
                    ("app", app),
                    ("slot", slot),
                    ("version", version),
                    ("rule", huge_rule.or(rule)),
                    ("host", host),
                    ("port", port),
                    ("entrypoints", entrypoints),
                    ("network", network),
                ]
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?)))
                .collect()
            },
        )
}

fn ip() -> impl Strategy<Value = String> {
    (0..3u32, 1..=250u32).prop_map(|(b, d)| format!("10.{b}.0.{d}"))
}

fn container() -> impl Strategy<Value = ContainerSpec> {
    let networks = (ip(), sometimes(15, ip())).prop_map(|(front, back)| {
        let mut networks = BTreeMap::from([("front", front)]);
        if let Some(back) = back {
            networks.insert("back", back);
        }
        networks
    });
    // Mostly one exposed port, sometimes none or two.
    let exposed = prop_oneof![
        80 => proptest::collection::vec(select(EXPOSED), 1),
        20 => proptest::collection::vec(select(EXPOSED), 0..3),
    ];
    let created = (0..60u32, 0..60u32).prop_map(|(m, s)| format!("2026-11-26T05:{m:02}:{s:02}Z"));
    let started_at =
        (0..60u32, 0..60u32, 0..1000u32).prop_map(|(m, s, ms)| format!("2026-11-26T06:{m:02}:{s:02}.{ms}Z"));
    (
        labels(),
        networks,
        exposed,
        (chance(85), chance(5), sometimes(50, select(HEALTH))),
        created,
        started_at,
    )
        .prop_map(
            |(labels, networks, exposed_ports, (running, paused, health), created, started_at)| ContainerSpec {
                labels,
                networks,
                exposed_ports,
                running,
                paused,
                health,
                created,
                started_at,
            },
        )
}

fn settings() -> impl Strategy<Value = SettingsSpec> {
    (chance(50), chance(20), chance(30), chance(20)).prop_map(|(preview, network, catch_all, allowed)| SettingsSpec {
        preview_entrypoint: preview.then_some("preview"),
        network: network.then_some("front"),
        allow_catch_all: catch_all,
        allowed_hosts: if allowed { vec!["*.example.com"] } else { vec![] },
    })
}

fn case() -> impl Strategy<Value = Case> {
    let role_change = (chance(50), chance(30)).prop_map(|(force_promote, rollback)| RoleChange {
        force_promote,
        rollback,
    });
    // One role change per container: never fewer than the apps, and they shrink together.
    (
        settings(),
        proptest::collection::vec((container(), role_change), 1..=MAX_CONTAINERS),
    )
        .prop_map(|(settings, containers)| {
            let (containers, role_changes) = containers.into_iter().unzip();
            Case {
                settings,
                containers,
                role_changes,
            }
        })
}

// ---- the property -----------------------------------------------------------------------------

/// Checks one rendered file the way Traefik would read it.
fn assert_loadable(name: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    traefik_would_load(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    assert!(
        !text.contains("{{"),
        "{name}: a Go template action would be evaluated:\n{text}"
    );
    let (comment, json) = text.split_once('\n').expect("comment line");
    assert!(comment.starts_with('#'));
    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let routers = doc["http"]["routers"].as_object().expect("routers");
    let services = doc["http"]["services"].as_object().expect("services");
    assert!(!routers.is_empty());
    for (r, router) in routers {
        let rule = router["rule"].as_str().expect("rule");
        rule_is_valid(rule).unwrap_or_else(|e| panic!("{name}: router {r} has a rule Traefik rejects: {e}: {rule}"));
        let service = router["service"].as_str().expect("service");
        assert!(
            services.contains_key(service),
            "{name}: router {r} points at missing service {service}"
        );
        assert!(!router["entryPoints"].as_array().expect("entryPoints").is_empty());
    }
    for (s, service) in services {
        for server in service["loadBalancer"]["servers"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {s}"))
        {
            assert!(
                server["url"].as_str().is_some_and(|u| u.starts_with("http://")),
                "{name}: {s}"
            );
        }
    }
}

#[test]
fn random_labels_never_panic_and_always_render_loadable_files() {
    // ProptestConfig::default() reads PROPTEST_CASES, PROPTEST_RNG_SEED, PROPTEST_RNG_ALGORITHM.
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2000;
    }
    if matches!(config.rng_seed, RngSeed::Random) {
        config.rng_seed = RngSeed::Fixed(0x9e37_79b9_7f4a_7c15);
    }
    if std::env::var_os("PROPTEST_RNG_ALGORITHM").is_none() {
        // The default, ChaCha, takes a third of this test's time in a debug build.
        config.rng_algorithm = RngAlgorithm::XorShift;
    }
    // Deterministic: a failure reproduces from the seed, and is printed shrunk.
    config.failure_persistence = None;
    let cases = config.cases;
    let mut runner = TestRunner::new(config);

    let (rendered, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let result = runner.run(&case(), |case| {
        // A panic anywhere in here (the core's or an assertion's) fails the case and is shrunk.
        let out = render_through_core(&case);
        for (name, bytes) in &out.files {
            assert!(is_app_file_name(name), "file name {name}");
            assert_loadable(name, bytes);
        }
        // Deterministic: the same input renders the same bytes.
        assert_eq!(out.files, render_through_core(&case).files);
        rendered.fetch_add(out.files.len(), Ordering::Relaxed);
        refused.fetch_add(out.refused, Ordering::Relaxed);
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!("{reason}\nsmallest failing case: {case:#?}"),
        Err(e) => panic!("{e}"),
    }
    let (rendered, refused) = (rendered.into_inner(), refused.into_inner());
    eprintln!("{cases} cases: {rendered} files rendered and checked, {refused} containers refused");
    assert!(
        rendered > cases as usize / 4 && refused > cases as usize,
        "the generator exercises both paths"
    );
}

// ---- names by construction (issue 16.1) -------------------------------------------------------

/// App and slot names as close to each other's derived names as they can be, under the old
/// scheme (`APP-slot-SLOT`, `APP-primary`, …) and the new one (`APP.slot.SLOT`, …).
const CLOSE_APPS: &[&str] = &[
    "web",
    "web-slot",
    "web-slot-blue",
    "web-slot-green",
    "web-primary",
    "web-candidate",
    "web-preview",
    "web-canary",
    "web-canary-green",
    "web-project-candidate",
    "web-project-stable",
    "slot",
    "primary",
    "w",
    "web-web",
];

fn member(i: usize, app: &str, slot: &str, project: Option<&str>, version: &str) -> Container {
    let mut labels = BTreeMap::from([
        ("app", app.to_string()),
        ("slot", slot.to_string()),
        ("host", format!("{app}.test")),
        ("version", version.to_string()),
    ]);
    labels.retain(|_, v| !v.is_empty());
    let spec = ContainerSpec {
        labels,
        // The address depends on the app and slot only, so an app renders the same alone.
        networks: BTreeMap::from([("n", {
            let h = pointsman::core::render::sticky_value(&format!("{app}/{slot}"));
            let b = u32::from_str_radix(&h[..6], 16).unwrap();
            format!("10.{}.{}.{}", b >> 16, (b >> 8) & 255, b & 255)
        })]),
        exposed_ports: vec!["80/tcp"],
        running: true,
        paused: false,
        health: None,
        created: format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60),
        started_at: format!("2026-01-01T01:{:02}:{:02}Z", i / 60, i % 60),
    };
    let mut c = to_container((i, &spec));
    if let Some(p) = project {
        c.config
            .labels
            .as_mut()
            .unwrap()
            .insert("com.docker.compose.project".into(), p.into());
    }
    c
}

/// Every mode a pair of apps can be rendered in: roles only, canary, mirror, both, a rollout at
/// its first step, and a project canary.
const MODES: &[&str] = &[
    "blue-green",
    "canary",
    "mirror",
    "canary+mirror",
    "rollout",
    "project-canary",
];

/// The names each app renders and the Redis keys of each unit, for two apps `a` and `b`, each
/// with a stable and a candidate slot, in `mode`; the two apps share a Compose project when
/// `shared` (one unit, one file), otherwise each is its own unit.
fn names_of(apps: &[&str], slots: [&str; 2], mode: &str, shared: bool) -> Vec<(String, BTreeMap<String, String>)> {
    let project = |_: &str| -> Option<&str> { (shared || mode == "project-canary").then_some("shop") };
    let containers: Vec<Container> = apps
        .iter()
        .enumerate()
        .flat_map(|(i, app)| {
            [
                member(2 * i, app, slots[0], project(app), "stable"),
                member(2 * i + 1, app, slots[1], project(app), "candidate"),
            ]
        })
        .collect();
    let settings = Settings {
        preview_entrypoint: Some("preview".into()),
        ..Settings::default()
    };
    let fleet = Fleet::build(&containers, &settings);
    assert_eq!(fleet.errors(), vec![], "{apps:?} are valid apps");
    let mut state = State::default();
    ops::seed(&mut state, &fleet, jiff::Timestamp::UNIX_EPOCH, Actor::Controller);
    let ctx = Context {
        now: jiff::Timestamp::UNIX_EPOCH,
        by: Actor::Cli,
        app_label: "pointsman.app",
    };
    let ops_for = |app: &str| -> Vec<Operation> {
        let app = app.to_string();
        match mode {
            "canary" => vec![Operation::Canary { app, percent: 20 }],
            "mirror" => vec![Operation::Mirror { app, percent: 20 }],
            "canary+mirror" => vec![
                Operation::Canary {
                    app: app.clone(),
                    percent: 20,
                },
                Operation::Mirror { app, percent: 20 },
            ],
            "rollout" => vec![Operation::Rollout {
                app,
                steps: vec![10, 50, 100],
                pause_ms: 60_000,
                analysis: None,
            }],
            _ => vec![],
        }
    };
    for app in apps {
        for op in ops_for(app) {
            ops::apply(&op, &fleet, &mut state, ctx).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
    }
    if mode == "project-canary" {
        let op = Operation::ProjectCanary {
            project: "shop".into(),
            percent: 20,
        };
        ops::apply(&op, &fleet, &mut state, ctx).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    render::render_all(&fleet, &state, &settings)
        .into_iter()
        .map(|(unit, d)| (unit, pointsman::backend::redis::flatten(&d)))
        .collect()
}

/// Which of `a`'s and `b`'s rendered names (routers and services, taken from the flattened
/// keys `http/routers/NAME/...`) belong to whom, checked two ways: every name parses back to
/// one app, and no key is written twice (by two units, or twice in one unit).
fn assert_disjoint(a: &str, b: &str, slots: [&str; 2], mode: &str, shared: bool) {
    let units = names_of(&[a, b], slots, mode, shared);
    let combined: BTreeMap<&String, &String> = units.iter().flat_map(|(_, flat)| flat.iter()).collect();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    let mut keys = std::collections::BTreeSet::new();
    let mut per_app: BTreeMap<&str, usize> = BTreeMap::new();
    for (unit, flat) in &units {
        for key in flat.keys() {
            assert!(
                keys.insert(key.clone()),
                "{a}/{b} {mode}: key {key} written by two units (second: {unit})"
            );
            let mut parts = key.split('/');
            let (Some("http"), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("{key}")
            };
            let app = pointsman::core::names::app_of(name).unwrap_or_else(|| panic!("{name} is not a derived name"));
            assert!(app == a || app == b, "{a}/{b} {mode}: {name} names a third app {app}");
            // Routers and services of one name may share it (kind differs), never across apps.
            if let Some(prev) = owner.insert(format!("{kind}/{name}"), app) {
                assert_eq!(prev, app, "{a}/{b} {mode}: {kind} {name} claimed by both");
            }
            *per_app.entry(app).or_default() += 1;
        }
    }
    // Rendered alone, each app writes keys that are all there, unchanged, beside the other:
    // nothing of one app was overwritten by the other's. (Beside another app of its project it
    // may write more: a project canary's routers, which are its own.)
    for app in [a, b] {
        for (_, flat) in alone(app, slots, mode, shared) {
            for (k, v) in &flat {
                assert_eq!(
                    combined.get(k).copied(),
                    Some(v),
                    "{a}/{b} {mode} shared={shared}: {app}'s {k}"
                );
            }
            assert!(per_app[app] >= flat.len());
        }
    }
}

/// [`names_of`] one app alone, memoised (the pair test renders each app alone many times).
fn alone(app: &str, slots: [&str; 2], mode: &str, shared: bool) -> Vec<(String, BTreeMap<String, String>)> {
    type Key = (String, [String; 2], String, bool);
    thread_local! {
        static CACHE: std::cell::RefCell<BTreeMap<Key, Vec<(String, BTreeMap<String, String>)>>> = Default::default();
    }
    let key = (app.to_string(), slots.map(String::from), mode.to_string(), shared);
    CACHE.with(|c| {
        c.borrow_mut()
            .entry(key)
            .or_insert_with(|| names_of(&[app], slots, mode, shared))
            .clone()
    })
}

#[test]
fn no_app_slot_or_project_name_produces_another_apps_names_in_any_mode() {
    let mut pairs = 0;
    for (i, a) in CLOSE_APPS.iter().enumerate() {
        for b in &CLOSE_APPS[i + 1..] {
            for (k, slots) in [["blue", "green"], ["slot", "primary"], ["web.slot.blue", "canary"]]
                .into_iter()
                .enumerate()
            {
                // Every mode once; then the modes that write every kind of name.
                let modes = if k == 0 {
                    MODES
                } else {
                    &["canary+mirror", "project-canary"][..]
                };
                for mode in modes {
                    for shared in [false, true] {
                        assert_disjoint(a, b, slots, mode, shared);
                        pairs += 1;
                    }
                }
            }
        }
    }
    eprintln!("{pairs} close pairs rendered: names and Redis keys disjoint");
}

/// Generated names: any two valid app names (`[a-z0-9-]`, often sharing a prefix) and any
/// valid slot names.
#[test]
fn generated_names_are_disjoint_too() {
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 300,
        rng_seed: RngSeed::Fixed(0x5eed_0016),
        failure_persistence: None,
        ..Default::default()
    });
    let app = "[a-z][a-z0-9-]{0,6}[a-z0-9]";
    let slot = "[a-z0-9][a-z0-9._-]{0,8}";
    let strategy = (app, app, slot, slot, select(MODES), any::<bool>())
        .prop_filter("two distinct apps and slots", |(a, b, s1, s2, _, _)| a != b && s1 != s2)
        .prop_filter("valid slot names", |(_, _, s1, s2, _, _)| {
            ![s1, s2].iter().any(|s| *s == "stable" || *s == "candidate")
        });
    let result = runner.run(&strategy, |(a, b, s1, s2, mode, shared)| {
        let suffix = |x: &str| format!("{x}{}", if x.ends_with('-') { "0" } else { "" });
        let (a, b) = (suffix(&a), suffix(&b));
        assert_disjoint(&a, &b, [&s1, &s2], mode, shared);
        // The prefix cases: b made of a and one of a's derived suffixes.
        assert_disjoint(
            &a,
            &format!("{a}-slot-{}", s1.replace(['.', '_'], "-").trim_end_matches('-')),
            [&s1, &s2],
            mode,
            shared,
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
