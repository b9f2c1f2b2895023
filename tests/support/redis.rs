//! A real `redis-server` (Debian's package; `.ci/run` installs it) on a free loopback port, in a
//! directory of its own, killed on drop; and `redis-cli` against it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{temp_dir, wait_until};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    args: Vec<String>,
}

/// How a test's Redis is configured.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `notify-keyspace-events` (Traefik's Redis provider needs `KEA` or similar; `""`: none).
    pub notify: String,
    /// Append-only persistence, so a restart keeps every key.
    pub appendonly: bool,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            notify: "KEA".into(),
            appendonly: true,
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(opts: RedisOptions) -> RedisServer {
        let dir = temp_dir("redis");
        let port = free_port();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir.display().to_string(),
            "--save",
            "",
            "--appendonly",
            if opts.appendonly { "yes" } else { "no" },
            "--appendfsync",
            "always",
            "--notify-keyspace-events",
            &opts.notify,
            "--logfile",
            &dir.join("redis.log").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut r = RedisServer {
            child: None,
            port,
            dir,
            args,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let child = Command::new(redis_server_bin())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server: {e} (install Debian's redis-server)"));
        self.child = Some(child);
        wait_until("redis-server answers PING", Duration::from_secs(10), || {
            self.cli_output(&["PING"])
                .filter(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
                .map(|_| ())
        });
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The `--store` URL, optionally as a user.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}/0", self.port)
    }

    fn cli_output(&self, args: &[&str]) -> Option<Output> {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
    }

    /// `redis-cli ARGS` (as the default user); its trimmed stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .cli_output(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Keys matching `pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["--scan", "--pattern", pattern])
            .lines()
            .map(str::to_string)
            .filter(|k| !k.is_empty())
            .collect();
        keys.sort();
        keys
    }

    /// Stops the server (SIGTERM: with append-only persistence nothing is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis_server_bin() -> &'static Path {
    for p in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] {
        if Path::new(p).is_file() {
            return Path::new(p);
        }
    }
    panic!("redis-server not found: install Debian's redis-server (apt-get install redis-server); .ci/run does");
}
