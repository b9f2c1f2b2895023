//! The read-only status the page and `/status.json` show: every app with its slots, roles,
//! weights, mirror, rollout progress, servers, label errors and recent history.
//!
//! Built by the controller after a reconcile from what it already holds (the fleet, the roles
//! it just read, the history tail), so serving it costs no Docker call, no lock and no disk.
//! Pure: [`build`] takes plain values and is tested without either.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::container::Condition;
use crate::core::model::Fleet;
use crate::core::state::{AppRoles, Transition};

/// History entries kept for the page, newest first.
pub const HISTORY_SHOWN: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// When the controller built it (RFC 3339).
    pub updated: String,
    pub apps: Vec<AppView>,
    /// Containers left out, with the reason.
    pub errors: Vec<ErrorView>,
    /// The latest transitions, newest first.
    pub history: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppView {
    pub name: String,
    /// The public route (Traefik rule) and its entrypoints; empty for an app with roles but no
    /// container.
    pub rule: String,
    pub entrypoints: Vec<String>,
    pub stable: Option<String>,
    pub candidate: Option<String>,
    pub previous: Option<String>,
    pub pinned: Option<String>,
    /// Share of new public visitors on the candidate, as configured (`canary APP P`).
    pub canary_percent: u8,
    /// Share of public requests copied to the candidate (`mirror APP P`).
    pub mirror_percent: u8,
    pub rollout: Option<RolloutView>,
    pub slots: Vec<SlotView>,
    /// Why Traefik gets no route for this app (a host another app keeps), if so.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutView {
    pub slot: String,
    pub steps: Vec<u8>,
    /// 1-based.
    pub step: usize,
    pub weight: u8,
    /// When the current step's window started, and when its pause is over.
    pub since: String,
    pub until: String,
    pub extended: u8,
    /// Judged by Traefik's metrics (else `--no-analysis`: time only).
    pub analysis: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotView {
    pub name: String,
    /// `stable`, `candidate` or `idle`.
    pub role: &'static str,
    /// Share of new public visitors this slot gets now (canary weights apply only while both
    /// slots have a routable server, as rendered).
    pub public_percent: u8,
    pub servers: Vec<String>,
    pub containers: Vec<ContainerView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerView {
    pub name: String,
    pub id: String,
    /// `ready`, `starting`, `unhealthy`, `paused` or `stopped`.
    pub condition: Condition,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorView {
    pub container: String,
    pub label: String,
    pub reason: String,
}

impl Status {
    /// Masks credentials in what came from outside: label errors (they quote label values)
    /// and history details (an aborted rollout quotes the metrics URL it could not read).
    pub fn redact(&mut self) {
        use crate::observe::redact::redact_in_place;
        for e in &mut self.errors {
            redact_in_place(&mut e.label);
            redact_in_place(&mut e.reason);
        }
        for t in &mut self.history {
            if let Some(detail) = &mut t.detail {
                redact_in_place(detail);
            }
        }
        for a in &mut self.apps {
            redact_in_place(&mut a.rule);
            if let Some(refused) = &mut a.refused {
                redact_in_place(refused);
            }
        }
    }
}

/// The status of every app the fleet or the roles know of.
pub fn build(fleet: &Fleet, roles: &BTreeMap<String, AppRoles>, history: &[Transition], updated: String) -> Status {
    let mut names: Vec<&String> = fleet.app_names().chain(roles.keys()).collect();
    names.sort();
    names.dedup();
    let none = AppRoles::default();
    let apps = names
        .into_iter()
        .map(|name| app_view(fleet, name, roles.get(name).unwrap_or(&none)))
        .collect();
    let errors = fleet
        .errors()
        .into_iter()
        .map(|e| ErrorView {
            container: e.container,
            label: e.label,
            reason: e.reason,
        })
        .collect();
    Status {
        updated,
        apps,
        errors,
        history: history.iter().rev().take(HISTORY_SHOWN).cloned().collect(),
    }
}

fn app_view(fleet: &Fleet, name: &str, roles: &AppRoles) -> AppView {
    let share = |s: &Option<crate::core::state::Share>| s.as_ref().map_or(0, |s| s.percent);
    let rollout = roles.rollout.as_ref().map(|r| {
        let until = r
            .since
            .checked_add(jiff::SignedDuration::from_millis(r.pause_ms as i64))
            .unwrap_or(r.since);
        RolloutView {
            slot: r.slot.clone(),
            steps: r.steps.clone(),
            step: r.step.saturating_add(1),
            weight: r.weight(),
            since: crate::core::state::format_time(r.since),
            until: crate::core::state::format_time(until),
            extended: r.extended,
            analysis: r.analysis.is_some(),
        }
    });
    let mut view = AppView {
        name: name.to_string(),
        rule: String::new(),
        entrypoints: Vec::new(),
        stable: roles.stable.clone(),
        candidate: None,
        previous: roles.previous.clone(),
        pinned: roles.pinned.clone(),
        canary_percent: share(&roles.canary),
        mirror_percent: share(&roles.mirror),
        rollout,
        slots: Vec::new(),
        refused: fleet
            .refusal(name)
            .map(|(host, owner)| format!("host {host} belongs to app {owner}")),
    };
    let Some(app) = fleet.app(name) else {
        return view;
    };
    let resolved = app.resolve(roles);
    let (rule, entrypoints) = app.route(&resolved);
    view.rule = rule.as_str().to_string();
    view.entrypoints = entrypoints.to_vec();
    view.candidate = resolved.candidate.clone();
    // As rendered: a weight applies only while its slot is the candidate and both slots route.
    let routable = |slot: &Option<String>| {
        slot.as_ref()
            .and_then(|s| app.slots.get(s))
            .is_some_and(|s| s.is_routable())
    };
    let weight = resolved
        .canary
        .as_ref()
        .filter(|s| resolved.candidate.as_ref() == Some(&s.slot))
        .filter(|_| routable(&resolved.stable) && routable(&resolved.candidate))
        .map_or(0, |s| s.percent.min(100));
    view.slots = app
        .slots
        .values()
        .map(|s| {
            let role = resolved.role_of(&s.name);
            SlotView {
                name: s.name.clone(),
                role,
                public_percent: match role {
                    "stable" => 100 - weight,
                    "candidate" => weight,
                    _ => 0,
                },
                servers: s.servers(),
                containers: s
                    .members
                    .iter()
                    .map(|m| ContainerView {
                        name: m.name.clone(),
                        id: m.id.chars().take(12).collect(),
                        condition: m.condition,
                        url: m.url.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    view
}
