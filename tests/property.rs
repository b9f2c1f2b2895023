//! Property test of the pure core: random containers with random (often hostile) labels go
//! through labels → model → roles → render. Whatever the input, nothing panics and every file
//! rendered is one Traefik can load: a comment line then JSON, no Go template action, every
//! rule valid, every router pointing at a service that exists.
//!
//! Deterministic (a fixed xorshift seed), so a failure reproduces; `POINTSMAN_PROPERTY_CASES`
//! raises the number of cases.

use std::collections::BTreeMap;

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

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    /// Mostly one of the first `good` items (valid values), sometimes any of them.
    fn mostly<'a>(&mut self, items: &[&'a str], good: usize) -> &'a str {
        if self.chance(85) {
            self.pick(&items[..good])
        } else {
            self.pick(items)
        }
    }
}

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

fn random_rule(rng: &mut Rng) -> String {
    if rng.chance(75) {
        let a = rng.pick(&RULE_PARTS[..2]);
        let b = rng.pick(&RULE_PARTS[..10]);
        return format!("{a} {} {b}", rng.pick(&["&&", "||"]));
    }
    (0..1 + rng.below(8)).map(|_| rng.pick(RULE_PARTS)).collect()
}

fn random_container(rng: &mut Rng, i: usize) -> Container {
    let mut labels = BTreeMap::new();
    let mut put = |rng: &mut Rng, key: &str, percent: usize, value: &mut dyn FnMut(&mut Rng) -> String| {
        if rng.chance(percent) {
            labels.insert(format!("pointsman.{key}"), value(rng));
        }
    };
    put(rng, "app", 95, &mut |r| r.mostly(APPS, 3).to_string());
    put(rng, "slot", 80, &mut |r| r.mostly(SLOTS, 4).to_string());
    put(rng, "version", 60, &mut |r| r.mostly(VERSIONS, 2).to_string());
    let use_rule = rng.chance(40);
    put(rng, "rule", if use_rule { 100 } else { 5 }, &mut random_rule);
    put(rng, "host", if use_rule { 5 } else { 95 }, &mut |r| {
        r.mostly(HOSTS, 3).to_string()
    });
    put(rng, "port", 30, &mut |r| r.mostly(PORTS, 2).to_string());
    put(rng, "entrypoints", 20, &mut |r| r.mostly(ENTRYPOINTS, 2).to_string());
    put(rng, "network", 20, &mut |r| r.mostly(NETWORKS, 2).to_string());
    if rng.chance(3) {
        labels.insert("pointsman.rule".into(), format!("Host(`{}`)", "a".repeat(5000)));
    }
    let mut networks = BTreeMap::new();
    for n in ["front", "back"] {
        if networks.is_empty() || rng.chance(15) {
            networks.insert(
                n.to_string(),
                Endpoint {
                    ip_address: format!("10.{}.0.{}", rng.below(3), 1 + rng.below(250)),
                },
            );
        }
    }
    let count = if rng.chance(80) { 1 } else { rng.below(3) };
    let ports: Vec<&str> = (0..count)
        .map(|_| rng.pick(&["80/tcp", "8080/tcp", "53/udp"]))
        .collect();
    let running = rng.chance(85);
    Container {
        id: format!("{i:064x}"),
        name: format!("/c{i}"),
        created: format!("2026-11-26T05:{:02}:{:02}Z", rng.below(60), rng.below(60)),
        state: ContainerState {
            status: if running { "running".into() } else { "exited".into() },
            running,
            paused: rng.chance(5),
            restarting: false,
            started_at: format!(
                "2026-11-26T06:{:02}:{:02}.{}Z",
                rng.below(60),
                rng.below(60),
                rng.below(1000)
            ),
            health: rng.chance(50).then(|| Health {
                status: rng.pick(HEALTH).to_string(),
            }),
        },
        config: ContainerConfig {
            labels: Some(labels),
            exposed_ports: Some(
                ports
                    .into_iter()
                    .map(|p| (p.to_string(), serde_json::json!({})))
                    .collect(),
            ),
        },
        network_settings: NetworkSettings {
            networks: Some(networks),
        },
    }
}

/// Checks one rendered file the way Traefik would read it.
fn assert_loadable(name: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    foreign::check_text(text, "yml").unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
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
        Rule::parse(rule).unwrap_or_else(|e| panic!("{name}: router {r} has a rule Traefik rejects: {e}: {rule}"));
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
    let cases: usize = std::env::var("POINTSMAN_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut rendered, mut refused) = (0usize, 0usize);
    for case in 0..cases {
        let settings = Settings {
            preview_entrypoint: rng.chance(50).then(|| "preview".to_string()),
            network: rng.chance(20).then(|| "front".to_string()),
            allow_catch_all: rng.chance(30),
            allowed_hosts: if rng.chance(20) {
                vec!["*.example.com".into()]
            } else {
                vec![]
            },
            ..Settings::default()
        };
        let containers: Vec<Container> = (0..1 + rng.below(12)).map(|i| random_container(&mut rng, i)).collect();
        let fleet = Fleet::build(&containers, &settings);
        refused += fleet.errors().len();
        let mut state = State::default();
        ops::seed(&mut state, &fleet, jiff::Timestamp::UNIX_EPOCH, Actor::Controller);
        // Random role changes too: promote (forced or not), rollback, pins.
        let ctx = Context {
            now: jiff::Timestamp::UNIX_EPOCH,
            by: Actor::Cli,
            app_label: "pointsman.app",
        };
        let apps: Vec<String> = fleet.app_names().cloned().collect();
        for app in apps {
            let force = rng.chance(50);
            let _ = ops::apply(
                &Operation::Promote {
                    app: app.clone(),
                    force,
                },
                &fleet,
                &mut state,
                ctx,
            );
            if rng.chance(30) {
                let _ = ops::apply(&Operation::Rollback { app }, &fleet, &mut state, ctx);
            }
        }
        let files = render::render_all(&fleet, &state, &settings);
        for (app, config) in &files {
            let name = dir::file_name(app);
            assert!(dir::app_of_file(&name).is_some(), "case {case}: file name {name}");
            assert!(config.dangling_references().is_empty(), "case {case}: {name}");
            assert_loadable(&format!("case {case}: {name}"), &dir::encode(config));
            rendered += 1;
        }
        // Deterministic: the same input renders the same bytes.
        assert_eq!(
            files,
            render::render_all(&Fleet::build(&containers, &settings), &state, &settings)
        );
    }
    eprintln!("{cases} cases: {rendered} files rendered and checked, {refused} containers refused");
    assert!(
        rendered > cases / 4 && refused > cases,
        "the generator exercises both paths"
    );
}
