//! Several simulated hosts on one Docker engine sharing one real Redis (tests/multihost.rs,
//! benches/multihost.rs): each host has its own Traefik reading Redis, its own controller
//! (`run --store … --host-id hN --scope …`) and its own demo containers. Host 0 advertises
//! 127.0.0.1 and published ports; the others use the containers' own addresses.
//!
//! Containers carry a label prefix unique to the cluster, so controllers of other tests (and the
//! file-provider tests) never see them.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::harness::{BIN, describe, output_text};
use super::redis::RedisServer;
use super::{Cleanup, DEMO_IMAGE, Docker, RedisProvider, Traefik, TraefikOptions, temp_dir, wait_until};

pub const LEASE: Duration = Duration::from_secs(2);
pub const WEB: &str = "web.test";

pub struct Host {
    pub id: String,
    pub traefik: Traefik,
    controller: Option<Child>,
    log: PathBuf,
    /// Extra arguments of this host's controller (`--advertise-address` or `--address`).
    address: Vec<String>,
}

pub struct Cluster {
    pub redis: RedisServer,
    pub hosts: Vec<Host>,
    cleanup: Cleanup,
    prefix: String,
    scope_key: String,
    url: String,
    dir: PathBuf,
}

impl Cluster {
    pub fn start(test: &str, hosts: usize) -> Cluster {
        Self::start_with(test, hosts, RedisServer::start(), None)
    }

    pub fn start_with(test: &str, hosts: usize, redis: RedisServer, traefik_auth: Option<(&str, &str)>) -> Cluster {
        Docker::require_docker();
        Docker::require_image(DEMO_IMAGE);
        let cleanup = Cleanup::for_test(test);
        // Label keys are lowercase DNS-ish names: derive a prefix unique to this test.
        let prefix = format!(
            "pm{}",
            cleanup
                .id()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                .to_lowercase()
        );
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

    pub fn with_url(mut self, url: String) -> Cluster {
        self.url = url;
        self
    }

    pub fn start_controller(&mut self, i: usize) {
        let h = &self.hosts[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&h.log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args([
            "run",
            "--store",
            &self.url,
            "--host-id",
            &h.id,
            "--lease",
            "2s",
            "--listen",
            "off",
        ])
        .args(["--label-prefix", &self.prefix])
        .args(["--scope", &format!("{}={}", self.scope_key, self.scope_value(i))])
        .args(&h.address)
        .env("RUST_LOG", "pointsman=debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        self.hosts[i].controller = Some(cmd.spawn().expect("spawn pointsman run"));
    }

    pub fn kill_controller(&mut self, i: usize) {
        if let Some(mut c) = self.hosts[i].controller.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.hosts[i].log).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        (0..self.hosts.len())
            .map(|i| format!("--- controller {}:\n{}", self.hosts[i].id, self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn scope_value(&self, i: usize) -> String {
        format!("{}-{}", self.cleanup.id(), self.hosts[i].id)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(["--store", &self.url, "--label-prefix", &self.prefix])
            .args(args)
            .output()
            .expect("run pointsman")
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pointsman {args:?} failed:\n{}\n{}",
            output_text(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A demo container of `app` in `slot` on host `i`, answering `SLOT HOST`.
    pub fn deploy(&self, i: usize, app: &str, slot: &str, stable: bool) -> String {
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
        args.extend([
            "-e".into(),
            format!("SLOT={slot}"),
            "-e".into(),
            format!("VERSION={}", self.hosts[i].id),
        ]);
        args.push(DEMO_IMAGE.into());
        Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        name
    }

    pub fn serves(&self, i: usize, host: &str) -> String {
        describe(self.hosts[i].traefik.get(host, "/", &[]))
    }

    /// Waits until every Traefik answers `host` from `slot`; returns how long that took.
    pub fn wait_all(&self, host: &str, slot: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let seen: Vec<String> = (0..self.hosts.len()).map(|i| self.serves(i, host)).collect();
            if seen.iter().all(|b| b.split_whitespace().next() == Some(slot)) {
                return start.elapsed();
            }
            if start.elapsed() > timeout {
                panic!(
                    "after {timeout:?} the Traefiks answer {seen:?}, not {slot}\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The servers Traefik `i` has for service `name` (of the Redis provider).
    pub fn servers(&self, i: usize, service: &str) -> Vec<String> {
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
    pub fn wait_servers(&self, service: &str, n: usize) {
        wait_until(
            &format!("every Traefik has {n} servers in {service}"),
            Duration::from_secs(20),
            || {
                (0..self.hosts.len())
                    .all(|i| self.servers(i, service).len() == n)
                    .then_some(())
            },
        );
    }

    pub fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.redis.cli(&["GET", "pointsman/state"])).unwrap_or_default()
    }

    pub fn leader(&self) -> Option<String> {
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
pub fn three_hosts(test: &str) -> Cluster {
    let mut c = Cluster::start(test, 3);
    for i in 0..3 {
        c.deploy(i, "web", "blue", true);
        c.deploy(i, "web", "green", false);
    }
    for i in 0..3 {
        c.start_controller(i);
    }
    c.wait_all(WEB, "blue", Duration::from_secs(20));
    c.wait_servers("web.slot.blue", 3);
    c.wait_servers("web.slot.green", 3);
    c
}
