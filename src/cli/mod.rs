//! The command line: clap's raw arguments become one validated [`Config`] in one step, and
//! everything after works from that.

pub mod commands;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::redis::resp::RedisUrl;
use crate::core::labels::{Role, is_dns_label, is_project_name};
use crate::core::settings::Choices;
use crate::multihost::HostOptions;

/// Blue-green and canary releases of Docker containers behind Traefik.
///
/// pointsman tracks each app's stable and candidate slots and writes Traefik file-provider
/// configuration, so promoting a candidate is a file rename Traefik hot-reloads: no container
/// restarts, no request dropped.
#[derive(Debug, Parser)]
#[command(name = "pointsman", version, about, long_about = None, max_term_width = 100)]
pub struct Args {
    /// Traefik's dynamic configuration directory (the file provider's `directory`).
    #[arg(long, env = "POINTSMAN_DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// Where roles and Traefik's configuration live: `dir` (the --dir directory, for Traefik's
    /// file provider) or `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`, shared by several hosts
    /// whose Traefiks read it with their Redis provider. [default: dir]
    #[arg(long, env = "POINTSMAN_STORE", global = true, value_name = "STORE")]
    pub store: Option<String>,
    /// Traefik's providers.redis.rootKey. [default: traefik]
    #[arg(long, env = "POINTSMAN_ROOT_KEY", global = true)]
    pub root_key: Option<String>,
    /// Labels are read as PREFIX.app, PREFIX.version, … [default: pointsman]
    #[arg(long, env = "POINTSMAN_LABEL_PREFIX", global = true)]
    pub label_prefix: Option<String>,
    /// Entrypoints of the public router, when a container has no entrypoints label. [default: web]
    #[arg(long, env = "POINTSMAN_ENTRYPOINTS", global = true)]
    pub entrypoints: Option<String>,
    /// Entrypoint that serves each app's candidate on the app's own rule (e.g. a second port);
    /// an empty value: none.
    #[arg(long, env = "POINTSMAN_PREVIEW_ENTRYPOINT", global = true)]
    pub preview_entrypoint: Option<String>,
    /// Network to take container addresses from, when a container has no network label; an
    /// empty value: none.
    #[arg(long, env = "POINTSMAN_NETWORK", global = true)]
    pub network: Option<String>,
    /// Accept rules without a Host matcher (catch-alls for every host on their entrypoints).
    #[arg(long, env = "POINTSMAN_ALLOW_CATCH_ALL", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub allow_catch_all: Option<bool>,
    /// Only let apps claim these hosts: a comma list of names (`a.com`) and wildcards
    /// (`*.a.com`, any name under a.com). Default: any host; an empty value: any host.
    #[arg(long, env = "POINTSMAN_ALLOW_HOST", global = true)]
    pub allow_host: Option<String>,
    /// Who may join an app once it is seeded: `any` container with its label; only containers
    /// of the Compose project that seeded it (`compose-project`); or only containers whose
    /// PREFIX.owner label equals the seeding container's (`label`). [default: any]
    #[arg(long, env = "POINTSMAN_ADMIT", global = true, value_name = "POLICY")]
    pub admit: Option<String>,
    /// Largest request body a mirror copies, in bytes (or with a unit: 64KiB, 1MiB). [default: 1MiB]
    #[arg(long, env = "POINTSMAN_MIRROR_MAX_BODY", global = true)]
    pub mirror_max_body: Option<String>,
    /// Traefik's Prometheus endpoint (e.g. http://traefik:8080/metrics): rollouts are judged by
    /// its `traefik_service_*` metrics of the candidate's service. Several hosts: a comma list
    /// of every host's Traefik, whose counters are added up.
    #[arg(long, env = "POINTSMAN_TRAEFIK_METRICS", global = true)]
    pub traefik_metrics: Option<String>,
    /// Traefik's API (e.g. http://traefik:8080): `--wait` checks there that the change is served.
    #[arg(long, env = "POINTSMAN_TRAEFIK_API", global = true)]
    pub traefik_api: Option<String>,
    /// The settings above shape every file, so they are recorded in the state at the first
    /// write and every writer uses the recorded ones; a flag that contradicts them is an
    /// error. With --reconfigure, this command records its flags instead (a running
    /// controller adopts them).
    #[arg(long, env = "POINTSMAN_RECONFIGURE", global = true)]
    pub reconfigure: bool,
    /// Log format (logs go to stderr).
    #[arg(long, env = "POINTSMAN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--wait[=DURATION]`: return only once Traefik's API shows the change (needs --traefik-api).
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArg {
    /// Return only when Traefik's API shows the new routing (default timeout 10s); needs
    /// --traefik-api.
    #[arg(long, num_args = 0..=1, default_missing_value = "10s", value_name = "TIMEOUT")]
    pub wait: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch Docker and keep Traefik's configuration in step (the sidecar).
    Run {
        /// Seconds between full resyncs with Docker, a safety net behind the event stream.
        #[arg(long, env = "POINTSMAN_RESYNC_INTERVAL", default_value_t = 60)]
        resync_interval: u64,
        /// Longest wait, in seconds, between attempts to reconnect to Docker.
        #[arg(long, env = "POINTSMAN_BACKOFF_CAP", default_value_t = 5)]
        backoff_cap: u64,
        /// Address to serve /metrics, /healthz and the status page on; `off`: none.
        #[arg(long, env = "POINTSMAN_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// A host name (or address) the status server also answers to, besides localhost,
        /// loopback and the --listen address (a DNS rebinding guard); repeat or comma-separate.
        #[arg(long, env = "POINTSMAN_LISTEN_HOST", value_name = "NAME", value_delimiter = ',')]
        listen_host: Vec<String>,
        /// Connections the status server serves at once (the next ones wait).
        #[arg(long, env = "POINTSMAN_LISTEN_MAX_CONNECTIONS", hide = true, default_value_t = crate::observe::http::MAX_CONNECTIONS)]
        listen_max_connections: usize,
        /// How long the status server waits for a request's head (and on an idle connection).
        #[arg(long, env = "POINTSMAN_LISTEN_HEADER_TIMEOUT", hide = true, default_value = "10s")]
        listen_header_timeout: String,
        /// With a redis:// store: this host's name among the hosts. [default: the host name]
        #[arg(long, env = "POINTSMAN_HOST_ID")]
        host_id: Option<String>,
        /// With a redis:// store: only containers carrying this label are this host's.
        #[arg(long, env = "POINTSMAN_SCOPE", value_name = "LABEL=VALUE")]
        scope: Option<String>,
        /// With a redis:// store: the address other hosts' Traefiks reach this host's
        /// containers at, on the ports Docker published for them.
        #[arg(long, env = "POINTSMAN_ADVERTISE_ADDRESS", value_name = "IP")]
        advertise_address: Option<String>,
        /// With a redis:// store: `published` (--advertise-address and the published port) or
        /// `container` (the container's own address, for overlay networks).
        #[arg(long, env = "POINTSMAN_ADDRESS", value_name = "HOW", default_value = "published")]
        address: String,
        /// With a redis:// store: how long a dead host's containers and a dead leader's term
        /// last before they are dropped and taken over.
        #[arg(long, env = "POINTSMAN_LEASE", default_value = "5s")]
        lease: String,
    },
    /// Exit 0 if the controller's /healthz answers 200, else 1 (for HEALTHCHECK: no curl needed).
    Healthcheck {
        /// The controller's --listen address (0.0.0.0 and :: are asked on the loopback address).
        #[arg(long, env = "POINTSMAN_LISTEN", default_value = DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// Ask this URL instead (e.g. http://127.0.0.1:9191/healthz).
        #[arg(long)]
        url: Option<String>,
    },
    /// Set a slot's role: `relabel web-green-1 version=stable`, `relabel web/green version=candidate`.
    Relabel {
        /// A container name, a container id prefix, or APP/SLOT.
        target: String,
        /// `version=stable` or `version=candidate`.
        assignment: String,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Make the app's candidate stable, if every one of its containers is running and healthy.
    /// With --project: every app of a Compose project, all or nothing, in one Traefik reload.
    Promote {
        #[arg(required_unless_present = "project", conflicts_with = "project")]
        app: Option<String>,
        /// Every app whose containers carry com.docker.compose.project=PROJECT.
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        /// Promote even if the candidate is not ready.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Make the previous stable slot stable again. With --project: return every app of the
    /// project's last project-wide promote or rollback to the slot it had before it.
    Rollback {
        #[arg(required_unless_present = "project", conflicts_with = "project")]
        app: Option<String>,
        /// Every app of this Compose project.
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Send PERCENT of new visitors to the candidate, each kept on the version it got (0 ends it).
    /// With --project: every app of the project, one sticky cookie for all of them.
    #[command(
        override_usage = "pointsman canary <APP> <PERCENT>\n       pointsman canary --project <PROJECT> <PERCENT>"
    )]
    Canary {
        /// APP PERCENT, or with --project only PERCENT.
        #[arg(num_args = 1..=2, value_name = "APP> <PERCENT", required = true)]
        args: Vec<String>,
        /// Every app of this Compose project.
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Copy PERCENT of public requests to the candidate; its answers are discarded (0 ends it).
    Mirror {
        app: String,
        #[arg(value_parser = clap::value_parser!(u8).range(0..=100))]
        percent: u8,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// End the app's canary, mirror or rollout; roles stay as they are.
    Abort {
        #[arg(required_unless_present = "project", conflicts_with = "project")]
        app: Option<String>,
        /// Every app of this Compose project.
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        #[command(flatten)]
        wait: WaitArg,
    },
    /// Roll the candidate out in steps the controller drives and judges, then promote it.
    Rollout {
        app: String,
        /// Weights in percent, increasing, e.g. 5,25,50,100.
        #[arg(long, default_value = "5,25,50,100")]
        steps: String,
        /// How long each step runs before it is judged (e.g. 60s, 5m).
        #[arg(long, default_value = "60s")]
        pause: String,
        /// Do not judge the steps by metrics; only wait out each pause.
        #[arg(long)]
        no_analysis: bool,
        /// Abort when the candidate's share of 5xx answers in a step is above this.
        #[arg(long, default_value_t = 0.01)]
        max_error_ratio: f64,
        /// Abort when the candidate's 99th-percentile latency in a step is above this (e.g. 300ms).
        #[arg(long)]
        max_p99: Option<String>,
        /// A step with fewer requests than this is extended (up to 3 pauses), then aborted.
        #[arg(long, default_value_t = 20)]
        min_requests: u64,
        /// Follow the rollout: exit 0 when it promoted the candidate, 1 when it was aborted.
        #[arg(long)]
        wait: bool,
    },
    /// Show roles, slots and containers.
    Status {
        #[arg(conflicts_with = "project")]
        app: Option<String>,
        /// Only the apps of this Compose project.
        #[arg(long, value_name = "PROJECT")]
        project: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Render every app's file once; with --check, only compare and report drift.
    Render {
        #[arg(long)]
        check: bool,
    },
    /// Show the history of role changes, oldest first.
    History {
        app: Option<String>,
        #[arg(long)]
        json: bool,
        /// Show at most this many of the latest entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// The validated configuration every command runs from.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// `--store redis://…`: the shared store (and Traefik's root key); `None`: the directory.
    pub redis: Option<RedisStoreConfig>,
    /// Settings flags as given; resolved against the recorded settings by each command.
    pub proposed: Choices,
    pub reconfigure: bool,
    pub log_format: LogFormat,
    pub traefik_metrics: Option<String>,
    pub traefik_api: Option<String>,
    /// `--wait`: verify the change through Traefik's API within this long.
    pub wait: Option<Duration>,
    pub action: Action,
}

/// A shared store in Redis.
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub url: RedisUrl,
    pub root_key: String,
}

/// Where `run` serves /metrics, /healthz and the page unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9191";

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Run {
        resync_every: Duration,
        backoff_cap: Duration,
        /// `None`: `--listen off`.
        listen: Option<SocketAddr>,
        /// The status server's Host names, connection limit and header timeout.
        status: crate::observe::http::Options,
        /// With a shared store: how this host takes part.
        host: Option<HostOptions>,
    },
    /// GET `url`; exit 0 on 200.
    Healthcheck {
        url: String,
    },
    Relabel {
        target: String,
        role: Role,
    },
    Promote {
        app: String,
        force: bool,
    },
    Rollback {
        app: String,
    },
    Canary {
        app: String,
        percent: u8,
    },
    Mirror {
        app: String,
        percent: u8,
    },
    Abort {
        app: String,
    },
    ProjectPromote {
        project: String,
        force: bool,
    },
    ProjectRollback {
        project: String,
    },
    ProjectCanary {
        project: String,
        percent: u8,
    },
    ProjectAbort {
        project: String,
    },
    Rollout {
        app: String,
        steps: Vec<u8>,
        pause: Duration,
        analysis: Option<crate::core::state::Analysis>,
        follow: bool,
    },
    Status {
        app: Option<String>,
        project: Option<String>,
        json: bool,
    },
    Render {
        check: bool,
    },
    History {
        app: Option<String>,
        json: bool,
        limit: usize,
    },
}

/// A usage or configuration mistake: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Args {
    pub fn validate(self) -> Result<Config, UsageError> {
        // The health check only asks the controller: no directory, no settings.
        if let Command::Healthcheck { listen, url } = &self.command {
            return Ok(Config {
                dir: self.dir.clone().unwrap_or_default(),
                redis: None,
                proposed: Choices::default(),
                reconfigure: false,
                log_format: self.log_format,
                traefik_metrics: None,
                traefik_api: None,
                wait: None,
                action: Action::Healthcheck {
                    url: health_url(listen, url.as_deref())?,
                },
            });
        }
        let redis = match self.store.as_deref().map(str::trim) {
            None | Some("") | Some("dir") => None,
            Some(url) => Some(RedisStoreConfig {
                url: url.parse().map_err(|e| UsageError(format!("--store: {e}")))?,
                root_key: self
                    .root_key
                    .clone()
                    .map(|k| k.trim().trim_matches('/').to_string())
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| crate::backend::redis::DEFAULT_ROOT_KEY.into()),
            }),
        };
        let dir = match (self.dir, &redis) {
            (Some(dir), None) => dir,
            (dir, Some(_)) => dir.unwrap_or_default(),
            (None, None) => {
                return Err(UsageError(
                    "no directory: pass --dir or set POINTSMAN_DIR to Traefik's dynamic configuration directory (or --store redis://… for several hosts)".into(),
                ));
            }
        };
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        let mut proposed = Choices::default();
        if let Some(prefix) = self.label_prefix.map(|p| p.trim().to_string()) {
            if prefix.is_empty()
                || !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            {
                return Err(UsageError(format!(
                    "--label-prefix {prefix:?}: use letters, digits, '.', '-' or '_' (e.g. pointsman)"
                )));
            }
            proposed.label_prefix = Some(prefix);
        }
        if let Some(list) = &self.entrypoints {
            let entrypoints: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
            if entrypoints.iter().any(|e| !name_ok(e)) {
                return Err(UsageError(format!(
                    "--entrypoints {list:?}: give a comma list of entrypoint names"
                )));
            }
            proposed.entrypoints = Some(entrypoints);
        }
        if let Some(p) = self.preview_entrypoint.map(|p| p.trim().to_string()) {
            if !p.is_empty() && !name_ok(&p) {
                return Err(UsageError(format!(
                    "--preview-entrypoint {p:?} is not an entrypoint name"
                )));
            }
            proposed.preview_entrypoint = Some(Some(p).filter(|p| !p.is_empty()));
        }
        if let (Some(Some(p)), Some(entrypoints)) = (&proposed.preview_entrypoint, &proposed.entrypoints)
            && entrypoints.contains(p)
        {
            return Err(UsageError(format!(
                "--preview-entrypoint {p} is also in --entrypoints; the preview entrypoint must serve only candidates"
            )));
        }
        if let Some(list) = &self.allow_host {
            let mut allowed_hosts = Vec::new();
            for pattern in list
                .split(',')
                .map(|p| p.trim().to_ascii_lowercase())
                .filter(|p| !p.is_empty())
            {
                let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
                let ok = !name.is_empty()
                    && name
                        .split('.')
                        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if !ok {
                    return Err(UsageError(format!(
                        "--allow-host {pattern:?}: give host names (app.example.com) or wildcards (*.example.com), comma-separated"
                    )));
                }
                allowed_hosts.push(pattern);
            }
            proposed.allowed_hosts = Some(allowed_hosts);
        }
        proposed.network = self
            .network
            .map(|n| Some(n.trim().to_string()).filter(|n| !n.is_empty()));
        proposed.allow_catch_all = self.allow_catch_all;
        if let Some(policy) = &self.admit {
            proposed.admit = Some(policy.parse().map_err(UsageError)?);
        }
        let app_ok = |app: String| -> Result<String, UsageError> {
            if is_dns_label(&app) {
                Ok(app)
            } else {
                Err(UsageError(format!(
                    "{app:?} is not an app name (a lowercase DNS label)"
                )))
            }
        };
        let project_ok = |project: String| -> Result<String, UsageError> {
            if is_project_name(&project) {
                Ok(project)
            } else {
                Err(UsageError(format!(
                    "--project {project:?} is not a Compose project name (lowercase letters, digits, '-' and '_')"
                )))
            }
        };
        if let Some(text) = &self.mirror_max_body {
            proposed.mirror_max_body = Some(parse_bytes(text).ok_or_else(|| {
                UsageError(format!(
                    "--mirror-max-body {text:?}: give a size in bytes, or with a unit (64KiB, 1MiB)"
                ))
            })?);
        }
        let url_ok = |flag: &str, url: Option<String>| -> Result<Option<String>, UsageError> {
            match url
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
            {
                Some(u) if !u.starts_with("http://") => Err(UsageError(format!(
                    "{flag} {u:?}: give an http:// URL (e.g. http://traefik:8080{})",
                    if flag == "--traefik-metrics" { "/metrics" } else { "" }
                ))),
                other => Ok(other),
            }
        };
        let traefik_metrics = url_ok("--traefik-metrics", self.traefik_metrics)?;
        let traefik_api = url_ok("--traefik-api", self.traefik_api)?;
        let mut wait = None;
        let mut wants_wait = |w: WaitArg| -> Result<(), UsageError> {
            if let Some(text) = w.wait {
                wait = Some(parse_duration("--wait", &text)?);
            }
            Ok(())
        };
        let action = match self.command {
            Command::Run {
                resync_interval,
                backoff_cap,
                listen,
                listen_host,
                listen_max_connections,
                listen_header_timeout,
                host_id,
                scope,
                advertise_address,
                address,
                lease,
            } => {
                if resync_interval == 0 || backoff_cap == 0 {
                    return Err(UsageError(
                        "--resync-interval and --backoff-cap must be at least 1 second".into(),
                    ));
                }
                let host = match &redis {
                    None => {
                        if host_id.is_some() || scope.is_some() || advertise_address.is_some() {
                            return Err(UsageError(
                                "--host-id, --scope and --advertise-address need a shared store: --store redis://…"
                                    .into(),
                            ));
                        }
                        None
                    }
                    Some(r) => Some(host_options(r, host_id, scope, advertise_address, &address, &lease)?),
                };
                let listen = parse_listen(&listen)?;
                let status = status_server(listen, &listen_host, listen_max_connections, &listen_header_timeout)?;
                Action::Run {
                    resync_every: Duration::from_secs(resync_interval),
                    backoff_cap: Duration::from_secs(backoff_cap),
                    listen,
                    status,
                    host,
                }
            }
            Command::Healthcheck { .. } => unreachable!("handled above"),
            Command::Relabel {
                target,
                assignment,
                wait,
            } => {
                wants_wait(wait)?;
                let role = match assignment.split_once('=') {
                    Some((k, v)) if k == "version" || k.ends_with(".version") => v
                        .parse::<Role>()
                        .map_err(|e| UsageError(format!("{assignment}: {e}")))?,
                    _ => {
                        return Err(UsageError(format!(
                            "{assignment:?}: expected version=stable or version=candidate"
                        )));
                    }
                };
                Action::Relabel { target, role }
            }
            Command::Promote {
                app,
                project,
                force,
                wait,
            } => {
                wants_wait(wait)?;
                match (app, project) {
                    (_, Some(project)) => Action::ProjectPromote {
                        project: project_ok(project)?,
                        force,
                    },
                    (app, None) => Action::Promote {
                        app: app_ok(app.unwrap_or_default())?,
                        force,
                    },
                }
            }
            Command::Rollback { app, project, wait } => {
                wants_wait(wait)?;
                match (app, project) {
                    (_, Some(project)) => Action::ProjectRollback {
                        project: project_ok(project)?,
                    },
                    (app, None) => Action::Rollback {
                        app: app_ok(app.unwrap_or_default())?,
                    },
                }
            }
            Command::Canary { args, project, wait } => {
                wants_wait(wait)?;
                let percent_ok = |p: &str| -> Result<u8, UsageError> {
                    p.parse::<u8>()
                        .ok()
                        .filter(|p| *p <= 100)
                        .ok_or_else(|| UsageError(format!("{p:?} is not a percentage (0 to 100)")))
                };
                match (args.as_slice(), project) {
                    ([percent], Some(project)) => Action::ProjectCanary {
                        project: project_ok(project)?,
                        percent: percent_ok(percent)?,
                    },
                    ([app, percent], None) => Action::Canary {
                        app: app_ok(app.clone())?,
                        percent: percent_ok(percent)?,
                    },
                    _ => {
                        return Err(UsageError(
                            "canary takes APP PERCENT, or --project PROJECT PERCENT (not both an app and a project)"
                                .into(),
                        ));
                    }
                }
            }
            Command::Mirror { app, percent, wait } => {
                wants_wait(wait)?;
                Action::Mirror {
                    app: app_ok(app)?,
                    percent,
                }
            }
            Command::Abort { app, project, wait } => {
                wants_wait(wait)?;
                match (app, project) {
                    (_, Some(project)) => Action::ProjectAbort {
                        project: project_ok(project)?,
                    },
                    (app, None) => Action::Abort {
                        app: app_ok(app.unwrap_or_default())?,
                    },
                }
            }
            Command::Rollout {
                app,
                steps,
                pause,
                no_analysis,
                max_error_ratio,
                max_p99,
                min_requests,
                wait,
            } => {
                let steps = parse_steps(&steps)?;
                let pause = rollout_duration("--pause", &pause)?;
                if !(0.0..=1.0).contains(&max_error_ratio) {
                    return Err(UsageError(format!(
                        "--max-error-ratio {max_error_ratio}: give a share between 0 and 1 (0.01 = 1 %)"
                    )));
                }
                let analysis = if no_analysis {
                    None
                } else {
                    let Some(url) = &traefik_metrics else {
                        return Err(UsageError(format!(
                            "rollout {app}: no --traefik-metrics to judge the steps by; pass Traefik's Prometheus URL (POINTSMAN_TRAEFIK_METRICS), or --no-analysis to only wait out each pause"
                        )));
                    };
                    Some(crate::core::state::Analysis {
                        metrics: url.clone(),
                        max_error_ratio,
                        max_p99_ms: max_p99
                            .map(|t| rollout_duration("--max-p99", &t).map(|d| d.as_millis() as u64))
                            .transpose()?,
                        min_requests,
                    })
                };
                Action::Rollout {
                    app: app_ok(app)?,
                    steps,
                    pause,
                    analysis,
                    follow: wait,
                }
            }
            Command::Status { app, project, json } => Action::Status {
                app,
                project: project.map(project_ok).transpose()?,
                json,
            },
            Command::Render { check } => Action::Render { check },
            Command::History { app, json, limit } => Action::History { app, json, limit },
        };
        if wait.is_some() && traefik_api.is_none() {
            return Err(UsageError(
                "--wait checks the change in Traefik's API: pass --traefik-api (e.g. http://traefik:8080) or set POINTSMAN_TRAEFIK_API".into(),
            ));
        }
        Ok(Config {
            dir,
            redis,
            proposed,
            reconfigure: self.reconfigure,
            log_format: self.log_format,
            traefik_metrics,
            traefik_api,
            wait,
            action,
        })
    }
}

/// `--listen ADDR`: `IP:PORT`, or `off`.
fn parse_listen(text: &str) -> Result<Option<SocketAddr>, UsageError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        UsageError(format!(
            "--listen {text:?}: give IP:PORT (e.g. {DEFAULT_LISTEN}, or 0.0.0.0:9191 inside a container) or `off`"
        ))
    })
}

/// `--listen-host` and the status server's limits.
fn status_server(
    listen: Option<SocketAddr>,
    names: &[String],
    max_connections: usize,
    header_timeout: &str,
) -> Result<crate::observe::http::Options, UsageError> {
    let names: Vec<_> = names.iter().filter(|n| !n.trim().is_empty()).collect();
    if listen.is_none() && !names.is_empty() {
        return Err(UsageError(
            "--listen-host names a host the status server answers to, but --listen is off".into(),
        ));
    }
    let hosts = names
        .into_iter()
        .map(|n| crate::observe::hosts::parse_flag(n).map_err(UsageError))
        .collect::<Result<_, _>>()?;
    if max_connections == 0 {
        return Err(UsageError("--listen-max-connections must be at least 1".into()));
    }
    let header_timeout = parse_duration("--listen-header-timeout", header_timeout)?;
    Ok(crate::observe::http::Options {
        hosts,
        max_connections,
        header_timeout,
    })
}

/// The URL `healthcheck` asks: `--url`, else `/healthz` at the `--listen` address, asked on
/// the loopback address when the controller listens on every address.
fn health_url(listen: &str, url: Option<&str>) -> Result<String, UsageError> {
    if let Some(url) = url {
        if !url.starts_with("http://") {
            return Err(UsageError(format!("--url {url:?}: give an http:// URL")));
        }
        return Ok(url.to_string());
    }
    let Some(mut addr) = parse_listen(listen)? else {
        return Err(UsageError(
            "healthcheck: --listen is off, so the controller serves no /healthz; pass --url".into(),
        ));
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{addr}/healthz"))
}

/// `60s`, `500ms`, `1m30s` (jiff's friendly duration format).
/// How a host's controller takes part in a shared store.
fn host_options(
    redis: &RedisStoreConfig,
    host_id: Option<String>,
    scope: Option<String>,
    advertise: Option<String>,
    address: &str,
    lease: &str,
) -> Result<HostOptions, UsageError> {
    let host_id = match host_id.map(|h| h.trim().to_string()).filter(|h| !h.is_empty()) {
        Some(h) => h,
        None => std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| UsageError("--host-id: this host has no name to default to; pass one".into()))?,
    };
    if !host_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(UsageError(format!(
            "--host-id {host_id:?}: use letters, digits, '-', '_' and '.'"
        )));
    }
    let scope = match scope.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Some((k.to_string(), v.to_string())),
            _ => return Err(UsageError(format!("--scope {s:?}: expected LABEL=VALUE"))),
        },
    };
    let advertise = advertise.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
    let advertise = match (address.trim(), advertise) {
        ("container", None) => None,
        ("container", Some(_)) => {
            return Err(UsageError(
                "--advertise-address has no use with --address container (servers are the containers' own addresses)"
                    .into(),
            ));
        }
        ("published", Some(a)) => Some(a),
        ("published", None) => {
            return Err(UsageError(
                "a host on a shared store needs --advertise-address (the address other hosts reach its published ports at), or --address container on a network every host's Traefik reaches".into(),
            ));
        }
        (other, _) => {
            return Err(UsageError(format!(
                "--address {other:?}: expected published or container"
            )));
        }
    };
    let lease = parse_duration("--lease", lease)?;
    if lease < Duration::from_millis(500) {
        return Err(UsageError("--lease must be at least 500ms".into()));
    }
    Ok(HostOptions {
        host_id,
        scope,
        advertise,
        lease,
        root_key: redis.root_key.clone(),
    })
}

fn parse_duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    text.trim()
        .parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| UsageError(format!("{flag} {text:?}: give a duration such as 500ms, 60s or 5m")))
}

/// A duration a rollout records in the state: 1 ms to 30 days (what the state's validation
/// accepts back).
fn rollout_duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    let d = parse_duration(flag, text)?;
    if !(1..=u128::from(crate::core::state::MAX_DURATION_MS)).contains(&d.as_millis()) {
        return Err(UsageError(format!(
            "{flag} {text:?}: give a duration from 1ms to 30 days"
        )));
    }
    Ok(d)
}

/// `5,25,50,100`: increasing weights in percent, each 1 to 100.
fn parse_steps(text: &str) -> Result<Vec<u8>, UsageError> {
    let bad = || {
        UsageError(format!(
            "--steps {text:?}: give increasing weights in percent, 1 to 100, e.g. 5,25,50,100"
        ))
    };
    let steps: Vec<u8> = text
        .split(',')
        .map(|s| s.trim().parse::<u8>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    if steps.is_empty() || steps.iter().any(|s| !(1..=100).contains(s)) || steps.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad());
    }
    Ok(steps)
}

/// `1048576`, `64KiB`, `1MiB`, `1MB`.
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, UsageError> {
        let mut all = vec!["pointsman", "--dir", "/tmp/x"];
        all.extend_from_slice(args);
        Args::try_parse_from(all).expect("parses").validate()
    }

    #[test]
    fn run_listens_on_loopback_9191_by_default_and_off_disables() {
        let listen = |args: &[&str]| match config(args).map(|c| c.action) {
            Ok(Action::Run { listen, .. }) => Ok(listen),
            other => Err(format!("{other:?}")),
        };
        if std::env::var_os("POINTSMAN_LISTEN").is_none() {
            assert_eq!(listen(&["run"]), Ok(Some("127.0.0.1:9191".parse().unwrap())));
        }
        assert_eq!(listen(&["run", "--listen", "off"]), Ok(None));
        assert_eq!(
            listen(&["run", "--listen", "0.0.0.0:80"]),
            Ok(Some("0.0.0.0:80".parse().unwrap()))
        );
        assert!(config(&["run", "--listen", "localhost"]).is_err());
    }

    #[test]
    fn the_status_server_takes_listen_host_names_and_serves_64_connections_with_10_s_per_head() {
        let status = |args: &[&str]| match config(args).map(|c| c.action) {
            Ok(Action::Run { status, .. }) => Ok(status),
            other => Err(format!("{other:?}")),
        };
        let names = |o: crate::observe::http::Options| o.hosts.iter().map(ToString::to_string).collect::<Vec<_>>();
        if std::env::var_os("POINTSMAN_LISTEN_HOST").is_none() {
            let d = status(&["run"]).unwrap();
            assert_eq!(
                (d.hosts.len(), d.max_connections, d.header_timeout),
                (0, 64, Duration::from_secs(10))
            );
        }
        let s = status(&["run", "--listen-host", "a.test,B.Test", "--listen-host", "::1"]).unwrap();
        assert_eq!(names(s), ["a.test", "b.test", "[::1]"]);
        for bad in [
            &["run", "--listen-host", "a.test:80"][..],
            &["run", "--listen", "off", "--listen-host", "a.test"],
            &["run", "--listen-max-connections", "0"],
            &["run", "--listen-header-timeout", "0s"],
        ] {
            assert!(status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn healthcheck_asks_the_listen_address_on_loopback_and_needs_no_directory() {
        let url = |args: &[&str]| {
            let mut all = vec!["pointsman"];
            all.extend_from_slice(args);
            match Args::try_parse_from(all).unwrap().validate().map(|c| c.action) {
                Ok(Action::Healthcheck { url }) => Ok(url),
                other => Err(format!("{other:?}")),
            }
        };
        assert_eq!(
            url(&["healthcheck", "--listen", "0.0.0.0:9191"]).unwrap(),
            "http://127.0.0.1:9191/healthz"
        );
        assert_eq!(
            url(&["healthcheck", "--listen", "[::]:9"]).unwrap(),
            "http://[::1]:9/healthz"
        );
        assert_eq!(
            url(&["healthcheck", "--url", "http://h:1/healthz"]).unwrap(),
            "http://h:1/healthz"
        );
        assert!(url(&["healthcheck", "--listen", "off"]).is_err());
    }
}
