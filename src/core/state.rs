//! The roles pointsman owns: which slot of each app is stable, which is pinned as candidate,
//! which was stable before, and the history of every change.
//!
//! Roles live here and not in Docker labels because labels cannot change on a running
//! container; labels only seed this state (see `roles`). The file sits beside the rendered
//! config (`DIR/.pointsman/state.json`) so that one volume carries both and they cannot drift
//! apart across hosts or restarts. Loading and saving is a state store's job (`backend`).
//!
//! Beside the roles it records the settings choices ([`Choices`]) every writer renders with, and the host claims
//! of every app ([`Claim`]): an index the controller keeps, so a CLI call that changes one app
//! can check that app's hosts against the others without listing every container.

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::admit::Owner;
use crate::core::settings::Choices;

/// The oldest history entries are dropped beyond this many.
pub const HISTORY_LIMIT: usize = 1000;

/// Roles of apps with no container left are kept for this many of them (the most recently
/// gone), so thousands of short-lived apps do not grow the state without bound.
pub const GONE_APPS_KEPT: usize = 1000;

/// Format version written into the file; a newer one is refused rather than misread. Format 1
/// (no settings, no claims) is read and upgraded on the next write.
pub const FORMAT: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: u32,
    /// The settings operators chose (flags), which every writer renders with.
    #[serde(default, skip_serializing_if = "Choices::is_empty")]
    pub settings: Choices,
    #[serde(default)]
    pub apps: BTreeMap<String, AppRoles>,
    /// Hosts each app with containers claims, and since when: the host-claim index.
    #[serde(default)]
    pub claims: BTreeMap<String, Claim>,
    #[serde(default)]
    pub history: VecDeque<Transition>,
}

impl Default for State {
    fn default() -> Self {
        State {
            format: FORMAT,
            settings: Choices::default(),
            apps: BTreeMap::new(),
            claims: BTreeMap::new(),
            history: VecDeque::new(),
        }
    }
}

/// The hosts an app's rules name, and the creation time of its oldest container: of two apps
/// claiming one host, the older keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub hosts: Vec<String>,
    pub since: Timestamp,
    /// The Compose project the app is released with: a writer that changes the app must also
    /// rewrite the unit it was published in when the app moves out of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoles {
    /// The slot that gets the public traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// A slot an operator pinned as the candidate; otherwise the most recently started
    /// non-stable slot is the candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    /// The slot that was stable before the current one: what `rollback` returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// A share of new public visitors sent to the candidate (`canary APP PERCENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Share>,
    /// A share of public requests copied to the candidate (`mirror APP PERCENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<Share>,
    /// A rollout plan the controller drives (`rollout APP --steps …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Who seeded the app, recorded under an admission policy (`--admit`): what a container
    /// must carry to join it, even once the seeding containers are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// Since when the app has no container at all (as the controller saw it). Its roles are
    /// kept, so a redeploy finds them, for the [`GONE_APPS_KEPT`] most recently gone apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone: Option<Timestamp>,
}

/// A share of traffic for one candidate slot. It applies only while that slot is the app's
/// candidate: a new deploy (another candidate) never inherits a weight it was not given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub slot: String,
    pub percent: u8,
}

/// A rollout: weights stepped up by the controller, each step judged before the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The candidate slot being rolled out.
    pub slot: String,
    /// Weights in percent, increasing; after the last one the slot is promoted.
    pub steps: Vec<u8>,
    /// How long each step runs before it is judged.
    pub pause_ms: u64,
    /// Index into `steps` of the step running now.
    pub step: usize,
    /// When the current step's window started.
    pub since: Timestamp,
    /// Pauses added to the current step for lack of traffic (at most 3).
    #[serde(default)]
    pub extended: u8,
    /// Thresholds the candidate's metrics are judged by; `None`: `--no-analysis`, time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// What a rollout step must show to pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Traefik's Prometheus endpoint, recorded so the controller judges with what the operator
    /// gave the `rollout` command.
    pub metrics: String,
    /// Largest share of 5xx answers (0.01 = 1 %).
    pub max_error_ratio: f64,
    /// Largest 99th-percentile latency, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p99_ms: Option<u64>,
    /// Fewest requests a step needs to be judged at all.
    pub min_requests: u64,
}

impl Rollout {
    pub fn pause(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.pause_ms)
    }

    pub fn weight(&self) -> u8 {
        self.steps[self.step.min(self.steps.len() - 1)]
    }

    pub fn is_last_step(&self) -> bool {
        self.step + 1 >= self.steps.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    Cli,
    Controller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A slot became stable because its labels asked for it and the app had no stable slot.
    Seed,
    /// `relabel … version=stable`.
    Relabel,
    Promote,
    Rollback,
    /// `relabel … version=candidate`: the slot is pinned as the app's candidate.
    Pin,
    /// `canary APP PERCENT`: the candidate's share of new visitors.
    Canary,
    /// `mirror APP PERCENT`: the share of requests copied to the candidate.
    Mirror,
    /// A canary, mirror or rollout ended without promoting (by an operator or a failed step).
    Abort,
    /// A rollout began (`rollout APP`).
    Rollout,
    /// The controller moved a rollout to its next step, or extended the step.
    Step,
}

/// One change of roles. `from`/`to` are the stable slot before and after (for `pin`: the
/// pinned slot before and after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: String,
    pub app: String,
    pub action: Action,
    #[serde(default)]
    pub from: Option<String>,
    pub to: String,
    pub by: Actor,
    /// What else changed, or why, in the operator's words (weights, an abort's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Ties together the entries of one project-wide operation (one per app):
    /// `PROJECT:UNIX_MS`. `rollback --project` reverts the last such group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Transition {
    /// The project of a project-wide operation's entry.
    pub fn project(&self) -> Option<&str> {
        self.id.as_deref().and_then(|id| id.rsplit_once(':')).map(|(p, _)| p)
    }
}

/// The form of [`Transition::at`]: RFC 3339 in UTC with milliseconds.
pub fn format_time(t: Timestamp) -> String {
    format!("{t:.3}")
}

impl State {
    pub fn roles(&self, app: &str) -> AppRoles {
        self.apps.get(app).cloned().unwrap_or_default()
    }

    pub fn record(&mut self, t: Transition) {
        self.history.push_back(t);
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }
}
