//! Several hosts, one release (issue 12): one real Redis (Debian's redis-server), simulated hosts
//! on the one Docker engine — each a `pointsman run --store redis://… --host-id H --scope …`
//! with its own demo containers and its own real Traefik reading Redis — and CLIs on any host.
//!
//! Each test labels its containers with a label prefix of its own, so controllers of other tests
//! (and the file-provider tests) never see them, and each host's controller sees only the
//! containers scoped to it. Host 0 advertises 127.0.0.1 and published ports; the others use the
//! containers' own addresses (`--address container`).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::harness::{BIN, describe, output_text};
use support::redis::{RedisOptions, RedisServer};
use support::{Cleanup, DEMO_IMAGE, Docker, Load, RedisProvider, Traefik, TraefikOptions, temp_dir, wait_until};

const LEASE: Duration = Duration::from_secs(2);
const WEB: &str = "web.test";

struct Host {
    id: String,
    traefik: Traefik,
    controller: Option<Child>,
    log: PathBuf,
    /// Extra arguments of this host's controller (`--advertise-address` or `--address`).
    address: Vec<String>,
}

struct Cluster {
    redis: RedisServer,
    hosts: Vec<Host>,
    cleanup: Cleanup,
    prefix: String,
    scope_key: String,
    url: String,
    dir: PathBuf,
}

impl Cluster {
    fn start(test: &str, hosts: usize) -> Cluster {
        Self::start_with(test, hosts, RedisServer::start(), None)
    }

    fn start_with(test: &str, hosts: usize, redis: RedisServer, traefik_auth: Option<(&str, &str)>) -> Cluster {
        Docker::require_docker();
        Docker::require_image(DEMO_IMAGE);
        let cleanup = Cleanup::for_test(test);
        // Label keys are lowercase DNS-ish names: derive a prefix unique to this test.
        let prefix = format!("pm{}", cleanup.id().replace(|c: char| !c.is_ascii_alphanumeric(), "").to_lowercase());
        let dir = temp_dir(test);
        let hosts = (0..hosts)
            .map(|i| {
                let mut provider = RedisProvider::new(&redis.endpoint());
                if let Some((u, p)) = traefik_auth {
                    provider.username = Some(u.into());
                    provider.password = Some(p.into());
                }
                let traefik = Traefik::start_with(
                    &dir,
                    TraefikOptions {
                        redis: Some(provider),
                        ..Default::default()
                    },
                );
                Host {
                    id: format!("h{i}"),
                    traefik,
                    controller: None,
                    log: dir.join(format!("controller-h{i}.log")),
                    address: if i == 0 {
                        vec!["--advertise-address".into(), "127.0.0.1".into()]
                    } else {
                        vec!["--address".into(), "container".into()]
                    },
                }
            })
            .collect();
        let url = redis.url();
        Cluster {
            redis,
            hosts,
            scope_key: format!("{prefix}-host"),
            prefix,
            cleanup,
            url,
            dir,
        }
    }

    fn with_url(mut self, url: String) -> Cluster {
        self.url = url;
        self
    }

    fn start_controller(&mut self, i: usize) {
        let h = &self.hosts[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&h.log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--store", &self.url, "--host-id", &h.id, "--lease", "2s", "--listen", "off"])
            .args(["--label-prefix", &self.prefix])
            .args(["--scope", &format!("{}={}", self.scope_key, self.scope_value(i))])
            .args(&h.address)
            .env("RUST_LOG", "pointsman=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.hosts[i].controller = Some(cmd.spawn().expect("spawn pointsman run"));
    }

    fn kill_controller(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].controller.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.hosts[i].log).unwrap_or_default()
    }

    fn logs(&self) -> String {
        (0..self.hosts.len())
            .map(|i| format!("--- controller {}:\n{}", self.hosts[i].id, self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn scope_value(&self, i: usize) -> String {
        format!("{}-{}", self.cleanup.id(), self.hosts[i].id)
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--store", &self.url, "--label-prefix", &self.prefix])
            .args(args)
            .output()
            .expect("run pointsman")
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(out.status.success(), "pointsman {args:?} failed:\n{}\n{}", output_text(&out), self.logs());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A demo container of `app` in `slot` on host `i`, answering `SLOT HOST`.
    fn deploy(&self, i: usize, app: &str, slot: &str, stable: bool) -> String {
        let name = format!("{}-{app}-{slot}-{}", self.cleanup.id(), self.hosts[i].id);
        let p = &self.prefix;
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
        let mut labels = vec![
            self.cleanup.label().to_string(),
            format!("{p}.app={app}"),
            format!("{p}.slot={slot}"),
            format!("{p}.host={app}.test"),
            format!("{}={}", self.scope_key, self.scope_value(i)),
        ];
        if stable {
            labels.push(format!("{p}.version=stable"));
        }
        for l in labels {
            args.extend(["--label".into(), l]);
        }
        if i == 0 {
            args.extend(["-p".into(), "127.0.0.1::80".into()]);
        }
        args.extend(["-e".into(), format!("SLOT={slot}"), "-e".into(), format!("VERSION={}", self.hosts[i].id)]);
        args.push(DEMO_IMAGE.into());
        Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        name
    }

    fn serves(&self, i: usize, host: &str) -> String {
        describe(self.hosts[i].traefik.get(host, "/", &[]))
    }

    /// Waits until every Traefik answers `host` from `slot`; returns how long that took.
    fn wait_all(&self, host: &str, slot: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let seen: Vec<String> = (0..self.hosts.len()).map(|i| self.serves(i, host)).collect();
            if seen.iter().all(|b| b.split_whitespace().next() == Some(slot)) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!("after {timeout:?} the Traefiks answer {seen:?}, not {slot}\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The servers Traefik `i` has for service `name` (of the Redis provider).
    fn servers(&self, i: usize, service: &str) -> Vec<String> {
        let v = self.hosts[i]
            .traefik
            .api_json(&format!("/api/http/services/{service}@redis"))
            .unwrap_or_default();
        let mut urls: Vec<String> = v["loadBalancer"]["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["url"].as_str().map(str::to_string))
            .collect();
        urls.sort();
        urls
    }

    /// Waits until every Traefik has `n` servers in `service` (healthy containers only).
    fn wait_servers(&self, service: &str, n: usize) {
        wait_until(&format!("every Traefik has {n} servers in {service}"), Duration::from_secs(20), || {
            (0..self.hosts.len()).all(|i| self.servers(i, service).len() == n).then_some(())
        });
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.redis.cli(&["GET", "pointsman/state"])).unwrap_or_default()
    }

    fn leader(&self) -> Option<String> {
        let v = self.redis.cli(&["GET", "pointsman/leader"]);
        v.split_once('/').map(|(h, _)| h.to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.hosts.len() {
            self.kill_controller(i);
        }
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every host runs web on blue (stable) and green, and its own controller.
fn three_hosts(test: &str) -> Cluster {
    let mut c = Cluster::start(test, 3);
    for i in 0..3 {
        c.deploy(i, "web", "blue", true);
        c.deploy(i, "web", "green", false);
    }
    for i in 0..3 {
        c.start_controller(i);
    }
    c.wait_all(WEB, "blue", Duration::from_secs(20));
    c.wait_servers("web-slot-blue", 3);
    c.wait_servers("web-slot-green", 3);
    c
}

#[test]
fn three_hosts_flip_together_from_any_hosts_cli_and_no_request_fails() {
    let c = three_hosts("mh-flip");
    // Host 0's servers are its published ports on the advertised address.
    let blue = c.servers(1, "web-slot-blue");
    assert_eq!(blue.iter().filter(|u| u.starts_with("http://127.0.0.1:")).count(), 1, "{blue:?}");
    let loads: Vec<Load> = c.hosts.iter().map(|h| Load::start(h.traefik.web_addr(), WEB, "/", &[], 2)).collect();
    // Past Traefik's 2 s throttle of the last change, so each flip is measured alone.
    thread::sleep(Duration::from_millis(2200));
    let mut took = Vec::new();
    for k in 0..4 {
        let (args, slot): (&[&str], &str) = if k % 2 == 0 {
            (&["promote", "web"], "green")
        } else {
            (&["rollback", "web"], "blue")
        };
        // Each flip from another host's CLI: the CLI needs only the store.
        let start = Instant::now();
        c.cli_ok(args);
        c.wait_all(WEB, slot, Duration::from_secs(10));
        took.push(start.elapsed());
        thread::sleep(Duration::from_millis(2200));
    }
    for (i, load) in loads.into_iter().enumerate() {
        let stats = load.stop();
        assert!(stats.requests > 50, "host {i}: only {} requests", stats.requests);
        assert_eq!(stats.failures(), 0, "host {i}: {stats:?}");
    }
    took.sort();
    eprintln!("command → all 3 Traefiks serve the new slot: {took:?}");
    let history = c.state()["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.iter().filter(|t| t["by"] == "cli").count(), 4, "{history:?}");
}

#[test]
fn four_clis_on_different_hosts_lose_no_update() {
    let mut c = Cluster::start("mh-race", 1);
    for app in ["a0", "a1", "a2", "a3"] {
        c.deploy(0, app, "blue", true);
        c.deploy(0, app, "green", false);
    }
    c.start_controller(0);
    wait_until("the controller seeded 4 apps", Duration::from_secs(20), || {
        (c.state()["apps"].as_object().map_or(0, |a| a.len()) == 4).then_some(())
    });
    let before = c.state()["history"].as_array().map_or(0, Vec::len);
    let start = Instant::now();
    thread::scope(|s| {
        for n in 0..4 {
            let c = &c;
            s.spawn(move || {
                let app = format!("a{n}");
                for j in 0..50 {
                    let slot = if j % 2 == 0 { "green" } else { "blue" };
                    let out = c.cli(&["relabel", &format!("{app}/{slot}"), "version=stable"]);
                    assert!(out.status.success(), "relabel {app}/{slot} #{j}: {}", output_text(&out));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let state = c.state();
    let history = state["history"].as_array().cloned().unwrap_or_default();
    let relabels: Vec<&serde_json::Value> = history[before..].iter().filter(|t| t["by"] == "cli").collect();
    assert_eq!(relabels.len(), 200, "{} transitions after the start", history.len() - before);
    eprintln!("200 relabels by 4 concurrent CLIs in {elapsed:?}");
    for n in 0..4 {
        let app = format!("a{n}");
        let mine: Vec<&str> = relabels
            .iter()
            .filter(|t| t["app"] == app.as_str())
            .map(|t| t["to"].as_str().unwrap_or(""))
            .collect();
        let want: Vec<&str> = (0..50).map(|j| if j % 2 == 0 { "green" } else { "blue" }).collect();
        assert_eq!(mine, want, "app {app}: the history must hold each CLI's relabels in its order");
        assert_eq!(state["apps"][&app]["stable"], "blue", "app {app}: the last relabel wins");
    }
    let mut times: Vec<&str> = relabels.iter().map(|t| t["at"].as_str().unwrap_or("")).collect();
    let serial = times.clone();
    times.sort();
    assert_eq!(times, serial, "one serial history: each transition after the one before");
    // And the leader rendered the final roles.
    for n in 0..4 {
        c.wait_all(&format!("a{n}.test"), "blue", Duration::from_secs(10));
    }
}

#[test]
fn a_dead_leader_is_replaced_within_the_lease_and_a_dead_hosts_servers_leave_every_traefik() {
    let mut c = three_hosts("mh-fault");
    let leader = c.leader().expect("a leader");
    let i = c.hosts.iter().position(|h| h.id == leader).unwrap();
    let dead_servers: Vec<String> = c.servers(i, "web-slot-green").into_iter().collect();
    assert_eq!(dead_servers.len(), 3);
    thread::sleep(Duration::from_millis(2200));
    let killed = Instant::now();
    c.kill_controller(i);
    // A change made while nobody holds the lease is recorded and rendered by the next leader.
    c.cli_ok(&["promote", "web"]);
    let new_leader = wait_until("another controller takes the lease", LEASE * 3, || {
        c.leader().filter(|l| *l != leader)
    });
    let takeover = killed.elapsed();
    c.wait_all(WEB, "green", LEASE * 4);
    let served = killed.elapsed();
    // The dead host's containers expire with its lease and leave every Traefik.
    let left = wait_until("the dead host's servers leave every Traefik", LEASE * 4, || {
        (0..3).all(|t| c.servers(t, "web-slot-green").len() == 2).then(|| killed.elapsed())
    });
    eprintln!(
        "leader {leader} killed: {new_leader} took over after {takeover:?}; the promote made meanwhile was served by all 3 after {served:?}; {leader}'s servers left all 3 Traefiks after {left:?} (lease {LEASE:?})"
    );
    assert!(takeover <= LEASE + Duration::from_millis(1500), "takeover took {takeover:?}");
    assert!(left <= LEASE + Duration::from_millis(1500), "the dead host's servers stayed {left:?}");
    assert!(c.log(i).contains("renders for every host"));
}

#[test]
fn traefiks_keep_serving_while_redis_restarts_and_controllers_resync_losing_nothing() {
    let mut c = three_hosts("mh-restart");
    c.cli_ok(&["promote", "web"]);
    c.wait_all(WEB, "green", Duration::from_secs(10));
    let history = c.state()["history"].as_array().map_or(0, Vec::len);
    let loads: Vec<Load> = c.hosts.iter().map(|h| Load::start(h.traefik.web_addr(), WEB, "/", &[], 2)).collect();
    c.redis.stop();
    // Down for longer than the lease: every controller loses the leader's term and its members.
    thread::sleep(LEASE + Duration::from_millis(500));
    let during: Vec<String> = (0..3).map(|i| c.serves(i, WEB)).collect();
    c.redis.restart();
    wait_until("a controller leads again", Duration::from_secs(10), || c.leader());
    c.cli_ok(&["rollback", "web"]);
    c.wait_all(WEB, "blue", Duration::from_secs(10));
    for (i, load) in loads.into_iter().enumerate() {
        let stats = load.stop();
        assert_eq!(stats.failures(), 0, "host {i} while Redis restarted: {stats:?}");
    }
    assert!(during.iter().all(|b| b.starts_with("green")), "while Redis was down: {during:?}");
    let after = c.state()["history"].as_array().map_or(0, Vec::len);
    assert_eq!(after, history + 1, "the restart kept the history and the rollback added one");
    wait_until("every host published its containers again", Duration::from_secs(10), || {
        (c.redis.keys("pointsman/members/*").len() == 3).then_some(())
    });
}

#[test]
fn redis_without_keyspace_notifications_is_refused_at_start() {
    let redis = RedisServer::start_with(RedisOptions {
        notify: String::new(),
        appendonly: false,
    });
    let out = Command::new(BIN)
        .args(["run", "--store", &redis.url(), "--host-id", "h0", "--address", "container", "--listen", "off"])
        .args(["--label-prefix", "pmnonotify"])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("does not send keyspace notifications") && text.contains("CONFIG SET notify-keyspace-events KEA"),
        "{text}"
    );
    assert!(redis.keys("traefik/*").is_empty(), "nothing may be published");
}

#[test]
fn an_acl_user_limited_to_pointsmans_keys_works_and_its_password_never_shows() {
    const SECRET: &str = "pm-s3cret-Zq9";
    let redis = RedisServer::start();
    // The users README documents: pointsman's own keys, Traefik's root key and the keyspace
    // channels pointsman subscribes to; Traefik only reads its root key.
    redis.cli(&[
        "ACL", "SETUSER", "pointsman", "on", &format!(">{SECRET}"), "resetkeys", "~pointsman/*", "~traefik/*",
        "resetchannels", "&__keyspace@0__:pointsman/*", "&__keyspace@0__:pointsman/members/*", "-@all", "+@read",
        "+@write", "+@transaction", "+@pubsub", "+@connection", "-@dangerous", "+scan",
    ]);
    redis.cli(&[
        "ACL", "SETUSER", "traefik", "on", ">tr4efik-pw", "resetkeys", "~traefik/*", "resetchannels",
        "&__keyspace*:traefik*", "-@all", "+get", "+mget", "+scan", "+exists", "+psubscribe", "+punsubscribe", "+ping",
        "+@connection",
    ]);
    redis.cli(&["ACL", "SETUSER", "default", "on", "nopass", "+@all", "~*", "&*"]);
    let url = redis.url_as("pointsman", SECRET);
    let mut c = Cluster::start_with("mh-acl", 1, redis, Some(("traefik", "tr4efik-pw"))).with_url(url);
    c.deploy(0, "web", "blue", true);
    c.deploy(0, "web", "green", false);
    c.start_controller(0);
    c.wait_all(WEB, "blue", Duration::from_secs(20));
    c.wait_servers("web-slot-green", 1);
    let promote = c.cli(&["promote", "web"]);
    assert!(promote.status.success(), "{}", output_text(&promote));
    c.wait_all(WEB, "green", Duration::from_secs(10));
    // The user really is limited: another key is refused.
    let denied = Command::new("redis-cli")
        .args(["-p", &c.redis.port.to_string(), "--user", "pointsman", "--pass", SECRET, "--no-auth-warning"])
        .args(["SET", "other/key", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&denied.stdout).contains("NOPERM"), "{}", output_text(&denied));
    let status = c.cli(&["status"]);
    let status_json = c.cli(&["status", "--json"]);
    let history = c.cli(&["history"]);
    let log = c.log(0);
    for (what, text) in [
        ("status", output_text(&status)),
        ("status --json", output_text(&status_json)),
        ("history", output_text(&history)),
        ("promote", output_text(&promote)),
        ("controller log", log.clone()),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the password:\n{text}");
    }
    assert!(output_text(&status).contains("redis://pointsman:***@127.0.0.1"), "{}", output_text(&status));
    assert!(log.contains("pointsman:***@"), "{log}");
}
