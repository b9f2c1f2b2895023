//! The command line: clap's raw arguments become one validated [`Config`] in one step, and
//! everything after works from that.

pub mod commands;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::core::labels::{Role, is_dns_label};
use crate::core::settings::Choices;

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
    },
    /// Set a slot's role: `relabel web-green-1 version=stable`, `relabel web/green version=candidate`.
    Relabel {
        /// A container name, a container id prefix, or APP/SLOT.
        target: String,
        /// `version=stable` or `version=candidate`.
        assignment: String,
    },
    /// Make the app's candidate stable, if every one of its containers is running and healthy.
    Promote {
        app: String,
        /// Promote even if the candidate is not ready.
        #[arg(long)]
        force: bool,
    },
    /// Make the previous stable slot stable again.
    Rollback { app: String },
    /// Show roles, slots and containers.
    Status {
        app: Option<String>,
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
    /// Settings flags as given; resolved against the recorded settings by each command.
    pub proposed: Choices,
    pub reconfigure: bool,
    pub log_format: LogFormat,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Run {
        resync_every: Duration,
        backoff_cap: Duration,
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
    Status {
        app: Option<String>,
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
        let dir = self.dir.ok_or_else(|| {
            UsageError(
                "no directory: pass --dir or set POINTSMAN_DIR to Traefik's dynamic configuration directory".into(),
            )
        })?;
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
        let app_ok = |app: String| -> Result<String, UsageError> {
            if is_dns_label(&app) {
                Ok(app)
            } else {
                Err(UsageError(format!(
                    "{app:?} is not an app name (a lowercase DNS label)"
                )))
            }
        };
        let action = match self.command {
            Command::Run {
                resync_interval,
                backoff_cap,
            } => {
                if resync_interval == 0 || backoff_cap == 0 {
                    return Err(UsageError(
                        "--resync-interval and --backoff-cap must be at least 1 second".into(),
                    ));
                }
                Action::Run {
                    resync_every: Duration::from_secs(resync_interval),
                    backoff_cap: Duration::from_secs(backoff_cap),
                }
            }
            Command::Relabel { target, assignment } => {
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
            Command::Promote { app, force } => Action::Promote {
                app: app_ok(app)?,
                force,
            },
            Command::Rollback { app } => Action::Rollback { app: app_ok(app)? },
            Command::Status { app, json } => Action::Status { app, json },
            Command::Render { check } => Action::Render { check },
            Command::History { app, json, limit } => Action::History { app, json, limit },
        };
        Ok(Config {
            dir,
            proposed,
            reconfigure: self.reconfigure,
            log_format: self.log_format,
            action,
        })
    }
}
