//! The roles pointsman owns: which slot of each app is stable, which is pinned as candidate,
//! which was stable before, and the history of every change.
//!
//! Roles live here and not in Docker labels because labels cannot change on a running
//! container; labels only seed this state (see `roles`). The file sits beside the rendered
//! config (`DIR/.pointsman/state.json`) so that one volume carries both and they cannot drift
//! apart across hosts or restarts. Loading and saving is the `store` module's job.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The oldest history entries are dropped beyond this many.
pub const HISTORY_LIMIT: usize = 1000;

/// Format version written into the file; a newer one is refused rather than misread.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub format: u32,
    #[serde(default)]
    pub apps: BTreeMap<String, AppRoles>,
    #[serde(default)]
    pub history: VecDeque<Transition>,
}

impl Default for State {
    fn default() -> Self {
        State {
            format: FORMAT,
            apps: BTreeMap::new(),
            history: VecDeque::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
