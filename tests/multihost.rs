//! Several hosts, one release (issue 12): one real Redis (Debian's redis-server), simulated hosts
//! on the one Docker engine — each a `pointsman run --store redis://… --host-id H --scope …`
//! with its own demo containers and its own real Traefik reading Redis — and CLIs on any host.
//!
//! Each test labels its containers with a label prefix of its own, so controllers of other tests
//! (and the file-provider tests) never see them, and each host's controller sees only the
//! containers scoped to it. Host 0 advertises 127.0.0.1 and published ports; the others use the
//! containers' own addresses (`--address container`).

mod support;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::cluster::{Cluster, LEASE, WEB, three_hosts};
use support::harness::{BIN, output_text};
use support::redis::{RedisOptions, RedisServer};
use support::{Load, wait_until};

#[test]
fn three_hosts_flip_together_from_any_hosts_cli_and_no_request_fails() {
    let c = three_hosts("mh-flip");
    // Host 0's servers are its published ports on the advertised address.
    let blue = c.servers(1, "web.slot.blue");
    assert_eq!(
        blue.iter().filter(|u| u.starts_with("http://127.0.0.1:")).count(),
        1,
        "{blue:?}"
    );
    let loads: Vec<Load> = c
        .hosts
        .iter()
        .map(|h| Load::start(h.traefik.web_addr(), WEB, "/", &[], 2))
        .collect();
    // Past Traefik's 2 s throttle of the last change, so each flip is measured alone.
    thread::sleep(Duration::from_millis(2200));
    let mut took = Vec::new();
    for k in 0..4 {
        let (args, slot): (&[&str], &str) = if k % 2 == 0 {
            (&["promote", "web"], "green")
        } else {
            (&["rollback", "web"], "blue")
        };
        // Each flip from another host's CLI (the CLI needs only the store), the last ones
        // with --wait on every host's Traefik API: it returns once all three show the change.
        let start = Instant::now();
        if k >= 2 {
            let apis: Vec<String> = c.hosts.iter().map(|h| h.traefik.api_url()).collect();
            let apis = apis.join(",");
            let mut full = vec!["--traefik-api", &apis];
            full.extend(args);
            full.push("--wait");
            let out = c.cli_ok(&full);
            assert!(out.contains("Traefik serves it"), "{out}");
            c.wait_all(WEB, slot, Duration::from_secs(1));
        } else {
            c.cli_ok(args);
            c.wait_all(WEB, slot, Duration::from_secs(10));
        }
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
    assert_eq!(
        relabels.len(),
        200,
        "{} transitions after the start",
        history.len() - before
    );
    eprintln!("200 relabels by 4 concurrent CLIs in {elapsed:?}");
    for n in 0..4 {
        let app = format!("a{n}");
        let mine: Vec<&str> = relabels
            .iter()
            .filter(|t| t["app"] == app.as_str())
            .map(|t| t["to"].as_str().unwrap_or(""))
            .collect();
        let want: Vec<&str> = (0..50).map(|j| if j % 2 == 0 { "green" } else { "blue" }).collect();
        assert_eq!(
            mine, want,
            "app {app}: the history must hold each CLI's relabels in its order"
        );
        assert_eq!(
            state["apps"][&app]["stable"], "blue",
            "app {app}: the last relabel wins"
        );
    }
    let mut times: Vec<&str> = relabels.iter().map(|t| t["at"].as_str().unwrap_or("")).collect();
    let serial = times.clone();
    times.sort();
    assert_eq!(
        times, serial,
        "one serial history: each transition after the one before"
    );
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
    let dead_servers: Vec<String> = c.servers(i, "web.slot.green").into_iter().collect();
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
        (0..3)
            .all(|t| c.servers(t, "web.slot.green").len() == 2)
            .then(|| killed.elapsed())
    });
    eprintln!(
        "leader {leader} killed: {new_leader} took over after {takeover:?}; the promote made meanwhile was served by all 3 after {served:?}; {leader}'s servers left all 3 Traefiks after {left:?} (lease {LEASE:?})"
    );
    assert!(
        takeover <= LEASE + Duration::from_millis(1500),
        "takeover took {takeover:?}"
    );
    assert!(
        left <= LEASE + Duration::from_millis(1500),
        "the dead host's servers stayed {left:?}"
    );
    assert!(c.log(i).contains("renders for every host"));
}

#[test]
fn traefiks_keep_serving_while_redis_restarts_and_controllers_resync_losing_nothing() {
    let mut c = three_hosts("mh-restart");
    c.cli_ok(&["promote", "web"]);
    c.wait_all(WEB, "green", Duration::from_secs(10));
    let history = c.state()["history"].as_array().map_or(0, Vec::len);
    let loads: Vec<Load> = c
        .hosts
        .iter()
        .map(|h| Load::start(h.traefik.web_addr(), WEB, "/", &[], 2))
        .collect();
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
    assert!(
        during.iter().all(|b| b.starts_with("green")),
        "while Redis was down: {during:?}"
    );
    let after = c.state()["history"].as_array().map_or(0, Vec::len);
    assert_eq!(
        after,
        history + 1,
        "the restart kept the history and the rollback added one"
    );
    wait_until(
        "every host published its containers again",
        Duration::from_secs(10),
        || (c.redis.keys("pointsman/members/*").len() == 3).then_some(()),
    );
}

#[test]
fn redis_without_keyspace_notifications_is_refused_at_start() {
    let redis = RedisServer::start_with(RedisOptions {
        notify: String::new(),
        appendonly: false,
    });
    let out = Command::new(BIN)
        .args([
            "run",
            "--store",
            &redis.url(),
            "--host-id",
            "h0",
            "--address",
            "container",
            "--listen",
            "off",
        ])
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
    // Exactly the lines of README's "ACL users" (passwords filled in).
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (user, password) in [("pointsman", SECRET), ("traefik", "tr4efik-pw")] {
        let line = readme
            .lines()
            .find(|l| l.starts_with(&format!("ACL SETUSER {user} on ")))
            .unwrap_or_else(|| panic!("README has no ACL SETUSER line for {user}"));
        let line = line.replace(&format!(">{}_PASSWORD", user.to_uppercase()), &format!(">{password}"));
        let args: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(redis.cli(&args), "OK", "{line}");
    }
    redis.cli(&["ACL", "SETUSER", "default", "on", "nopass", "+@all", "~*", "&*"]);
    let url = redis.url_as("pointsman", SECRET);
    let mut c = Cluster::start_with("mh-acl", 1, redis, Some(("traefik", "tr4efik-pw"))).with_url(url);
    c.deploy(0, "web", "blue", true);
    c.deploy(0, "web", "green", false);
    c.start_controller(0);
    c.wait_all(WEB, "blue", Duration::from_secs(20));
    c.wait_servers("web.slot.green", 1);
    let promote = c.cli(&["promote", "web"]);
    assert!(promote.status.success(), "{}", output_text(&promote));
    c.wait_all(WEB, "green", Duration::from_secs(10));
    // The user really is limited: another key is refused.
    let denied = Command::new("redis-cli")
        .args([
            "-p",
            &c.redis.port.to_string(),
            "--user",
            "pointsman",
            "--pass",
            SECRET,
            "--no-auth-warning",
        ])
        .args(["SET", "other/key", "1"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&denied.stdout).contains("NOPERM"),
        "{}",
        output_text(&denied)
    );
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
    assert!(
        output_text(&status).contains("redis://pointsman:***@127.0.0.1"),
        "{}",
        output_text(&status)
    );
    assert!(log.contains("pointsman:***@"), "{log}");
}

#[test]
fn redis_back_empty_gets_the_roles_and_history_back_from_the_controllers() {
    // No persistence: a restart empties Redis, as a lost volume or a fresh replacement would.
    let redis = RedisServer::start_with(RedisOptions {
        appendonly: false,
        ..RedisOptions::default()
    });
    let mut c = Cluster::start_with("mh-empty", 2, redis, None);
    for i in 0..2 {
        c.deploy(i, "web", "blue", true);
        c.deploy(i, "web", "green", false);
    }
    for i in 0..2 {
        c.start_controller(i);
    }
    c.wait_servers("web.slot.green", 2);
    c.cli_ok(&["promote", "web"]);
    c.wait_all(WEB, "green", Duration::from_secs(10));
    let history = c.state()["history"].as_array().map_or(0, Vec::len);
    // Give the follower a notification's worth of time to read the promote.
    thread::sleep(Duration::from_millis(500));
    c.redis.restart();
    assert!(
        c.redis.keys("*").len() <= 1,
        "Redis came back with keys: {:?}",
        c.redis.keys("*")
    );
    wait_until("the roles are back in Redis", Duration::from_secs(10), || {
        (c.state()["apps"]["web"]["stable"] == "green").then_some(())
    });
    assert_eq!(
        c.state()["history"].as_array().map_or(0, Vec::len),
        history,
        "history restored"
    );
    // Labels say blue is stable: had the roles been seeded again, blue would be served.
    wait_until(
        "every host published its containers again",
        Duration::from_secs(10),
        || (c.redis.keys("pointsman/members/*").len() == 2).then_some(()),
    );
    c.wait_all(WEB, "green", Duration::from_secs(5));
    c.cli_ok(&["rollback", "web"]);
    c.wait_all(WEB, "blue", Duration::from_secs(10));
    let logs = c.logs();
    assert!(logs.contains("restoring the roles and history"), "{logs}");
}
