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
use crate::core::rule::hosts::HostPattern;
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
    /// Exact hosts, as Traefik compares them (lower case, no trailing dot).
    pub hosts: Vec<String>,
    /// Wildcard and `HostRegexp` claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<HostPattern>,
    pub since: Timestamp,
    /// The Compose project the app is released with: a writer that changes the app must also
    /// rewrite the unit it was published in when the app moves out of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl Claim {
    /// Every pattern of the claim, exact hosts included. Hosts recorded by an older version
    /// (spelled as in the rule) are normalised here.
    pub fn patterns(&self) -> Vec<HostPattern> {
        let mut out: Vec<HostPattern> = self
            .hosts
            .iter()
            .filter_map(|h| crate::core::rule::hosts::host_pattern(h))
            .collect();
        out.extend(self.patterns.iter().cloned());
        out
    }
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

    /// The weight of the step running now. Validated state has `step < steps.len()`; should a
    /// plan ever be out of range anyway, the last step (or 0 for no step) is used, never a panic.
    pub fn weight(&self) -> u8 {
        self.steps.get(self.step).or(self.steps.last()).copied().unwrap_or(0)
    }

    pub fn is_last_step(&self) -> bool {
        self.step.saturating_add(1) >= self.steps.len()
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

/// The longest `--pause` (and `--max-p99`) a rollout may record: 30 days. The flags refuse
/// more, so a state holding more was not written by pointsman.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Longest host name an `--allow-host` pattern may hold (DNS allows 253; a trailing dot, 254).
const MAX_HOST: usize = 254;

/// Longest host (or host pattern) a claim may hold: the size limit of a label value, which
/// the rule a claim comes from is read from.
const MAX_CLAIM: usize = 4096;

/// A state that parsed but cannot be what pointsman wrote: `field` is the path of the value
/// (`apps.web.rollout.steps`), `problem` what is wrong with it, `fix` the operator's next step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}; {fix}")]
pub struct Invalid {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl State {
    /// Checks every value pointsman relies on without checking again: names, rollout plans,
    /// shares, durations, bounds. Run by each state store right after parsing, so nothing read
    /// from a file or a Redis key reaches code that would panic on it or render it into
    /// Traefik's configuration. The first violation found is returned.
    pub fn validate(&self) -> Result<(), Invalid> {
        let fail = |field: String, problem: String, fix: String| Err(Invalid { field, problem, fix });
        let edit = "fix the value, or restore the state from a backup".to_string();
        validate_choices(&self.settings)?;
        for (app, roles) in &self.apps {
            let at = format!("apps.{}", key(app));
            if !crate::core::labels::is_dns_label(app) {
                return fail(
                    at,
                    "is not an app name (a lowercase DNS label)".into(),
                    "remove this entry (pointsman never writes one)".into(),
                );
            }
            for (name, slot) in [
                ("stable", &roles.stable),
                ("pinned", &roles.pinned),
                ("previous", &roles.previous),
            ] {
                if let Some(slot) = slot {
                    slot_ok(&format!("{at}.{name}"), slot, &edit)?;
                }
            }
            for (name, share) in [("canary", &roles.canary), ("mirror", &roles.mirror)] {
                if let Some(share) = share {
                    let field = format!("{at}.{name}");
                    slot_ok(&format!("{field}.slot"), &share.slot, &edit)?;
                    if share.percent > 100 {
                        return fail(
                            format!("{field}.percent"),
                            format!("is {}, more than 100", share.percent),
                            format!(
                                "give 0 to 100, or delete {field} from the state (what `pointsman abort {app}` does)"
                            ),
                        );
                    }
                }
            }
            if let Some(r) = &roles.rollout {
                validate_rollout(&format!("{at}.rollout"), app, r)?;
            }
        }
        for (app, claim) in &self.claims {
            let at = format!("claims.{}", key(app));
            let fix = "remove this claim: the controller records it again from the app's containers".to_string();
            if !crate::core::labels::is_dns_label(app) {
                return fail(at, "is not an app name (a lowercase DNS label)".into(), fix);
            }
            for (i, host) in claim.hosts.iter().enumerate() {
                if host.is_empty()
                    || host.len() > MAX_CLAIM
                    || host.chars().any(|c| c.is_control() || c.is_whitespace())
                {
                    return fail(
                        format!("{at}.hosts.{i}"),
                        format!("{} is not a host name", shown(host)),
                        fix,
                    );
                }
            }
            for (i, pattern) in claim.patterns.iter().enumerate() {
                use crate::core::rule::hosts::{self, HostPattern};
                // A recorded pattern is one the rule parser would produce: a normalised wildcard
                // domain, or a regexp bounded under a domain.
                let ok = match pattern {
                    HostPattern::Exact(h) | HostPattern::Wildcard(h) => {
                        !h.is_empty() && h.len() <= MAX_CLAIM && !h.chars().any(|c| c.is_control() || c.is_whitespace())
                    }
                    HostPattern::Regexp(re) => re.len() <= MAX_CLAIM && hosts::regexp_pattern(re).is_some(),
                };
                if !ok {
                    return fail(
                        format!("{at}.patterns.{i}"),
                        format!("{} is not a host pattern", shown(&pattern.describe())),
                        fix,
                    );
                }
            }
            if let Some(p) = &claim.project
                && !crate::core::labels::is_project_name(p)
            {
                return fail(
                    format!("{at}.project"),
                    format!("{} is not a Compose project name", shown(p)),
                    fix,
                );
            }
        }
        if self.history.len() > HISTORY_LIMIT {
            return fail(
                "history".into(),
                format!(
                    "has {} entries, more than the {HISTORY_LIMIT} pointsman keeps",
                    self.history.len()
                ),
                format!(
                    "remove the oldest entries (the first {})",
                    self.history.len() - HISTORY_LIMIT
                ),
            );
        }
        for (i, t) in self.history.iter().enumerate() {
            if !crate::core::labels::is_dns_label(&t.app) {
                return fail(
                    format!("history.{i}.app"),
                    format!("{} is not an app name (a lowercase DNS label)", shown(&t.app)),
                    "remove this entry".into(),
                );
            }
        }
        Ok(())
    }
}

/// A name as the operator would type it, quoted and cut short: a hostile name may be long.
fn shown(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// A map key in a field path: bare when it is a plain name, else quoted like [`shown`].
fn key(s: &str) -> String {
    let plain =
        !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if plain { s.to_string() } else { shown(s) }
}

fn slot_ok(field: &str, slot: &str, fix: &str) -> Result<(), Invalid> {
    if crate::core::labels::is_slot_name(slot) {
        return Ok(());
    }
    Err(Invalid {
        field: field.into(),
        problem: format!("{} is not a slot name (letters, digits, '_', '.', '-')", shown(slot)),
        fix: fix.into(),
    })
}

/// The rules `rollout APP --steps … --pause …` creates plans by, and the controller's own
/// bookkeeping (`step` within the plan, at most `MAX_EXTENSIONS` extensions).
fn validate_rollout(at: &str, app: &str, r: &Rollout) -> Result<(), Invalid> {
    let fix = format!(
        "fix the value, or delete {at} and apps.{app}.canary from the state (what `pointsman abort {app}` does; no command runs on this state)"
    );
    let fail = |field: &str, problem: String| {
        Err(Invalid {
            field: format!("{at}{field}"),
            problem,
            fix: fix.clone(),
        })
    };
    slot_ok(&format!("{at}.slot"), &r.slot, &fix)?;
    if r.steps.is_empty() {
        return fail(".steps", "is empty".into());
    }
    if r.steps.len() > 100 {
        return fail(
            ".steps",
            format!(
                "has {} steps; increasing weights 1 to 100 are at most 100",
                r.steps.len()
            ),
        );
    }
    if let Some((i, w)) = r.steps.iter().enumerate().find(|(_, w)| !(1..=100).contains(*w)) {
        return fail(&format!(".steps.{i}"), format!("is {w}; a weight is 1 to 100"));
    }
    if let Some(i) = r.steps.windows(2).position(|w| w[0] >= w[1]) {
        return fail(
            &format!(".steps.{}", i + 1),
            format!("is {} after {}; weights must increase", r.steps[i + 1], r.steps[i]),
        );
    }
    if r.step >= r.steps.len() {
        return fail(
            ".step",
            format!("is {}, but the plan has steps 0 to {}", r.step, r.steps.len() - 1),
        );
    }
    if !(1..=MAX_DURATION_MS).contains(&r.pause_ms) {
        return fail(
            ".pause_ms",
            format!("is {}; a pause is 1 ms to {MAX_DURATION_MS} ms (30 days)", r.pause_ms),
        );
    }
    if r.extended > crate::core::ops::MAX_EXTENSIONS {
        return fail(
            ".extended",
            format!(
                "is {}; a step is extended at most {} times",
                r.extended,
                crate::core::ops::MAX_EXTENSIONS
            ),
        );
    }
    if let Some(a) = &r.analysis {
        if !(0.0..=1.0).contains(&a.max_error_ratio) {
            return fail(
                ".analysis.max_error_ratio",
                format!("is {}; a share is 0 to 1 (0.01 = 1 %)", a.max_error_ratio),
            );
        }
        if let Some(p99) = a.max_p99_ms
            && p99 > MAX_DURATION_MS
        {
            return fail(
                ".analysis.max_p99_ms",
                format!("is {p99}; a latency limit is at most {MAX_DURATION_MS} ms (30 days)"),
            );
        }
        if !a.metrics.starts_with("http://") {
            return fail(
                ".analysis.metrics",
                format!("{} is not an http:// URL", shown(&a.metrics)),
            );
        }
    }
    Ok(())
}

/// The rules the flags check (`--label-prefix`, `--entrypoints`, `--preview-entrypoint`,
/// `--allow-host`), for choices read back from the state.
fn validate_choices(c: &Choices) -> Result<(), Invalid> {
    let fail = |field: &str, problem: String| {
        Err(Invalid {
            field: format!("settings.{field}"),
            problem,
            fix: "fix it, or record the setting again with its flag and --reconfigure".into(),
        })
    };
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if let Some(p) = &c.label_prefix
        && (p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return fail("label_prefix", format!("{} is not a label prefix", shown(p)));
    }
    if let Some(list) = &c.entrypoints {
        if list.is_empty() {
            return fail("entrypoints", "is empty".into());
        }
        if let Some((i, e)) = list.iter().enumerate().find(|(_, e)| !name_ok(e)) {
            return fail(
                &format!("entrypoints.{i}"),
                format!("{} is not an entrypoint name", shown(e)),
            );
        }
    }
    if let Some(Some(p)) = &c.preview_entrypoint
        && !name_ok(p)
    {
        return fail("preview_entrypoint", format!("{} is not an entrypoint name", shown(p)));
    }
    if let Some(list) = &c.allowed_hosts {
        for (i, pattern) in list.iter().enumerate() {
            let name = pattern.strip_prefix("*.").unwrap_or(pattern);
            let ok = !name.is_empty()
                && name.len() <= MAX_HOST
                && name.split('.').all(|l| {
                    !l.is_empty()
                        && l.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                });
            if !ok {
                return fail(
                    &format!("allowed_hosts.{i}"),
                    format!("{} is not a host name or *.domain", shown(pattern)),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with a running rollout, as `rollout web --steps 10,50,100` writes it.
    fn good() -> serde_json::Value {
        serde_json::json!({
            "format": 2,
            "settings": {"entrypoints": ["web"], "allowed_hosts": ["*.example.com"]},
            "apps": {"web": {
                "stable": "blue",
                "canary": {"slot": "green", "percent": 10},
                "rollout": {
                    "slot": "green", "steps": [10, 50, 100], "pause_ms": 60000, "step": 0,
                    "since": "2024-01-01T00:00:00Z", "extended": 0,
                    "analysis": {"metrics": "http://traefik:8080/metrics", "max_error_ratio": 0.01, "min_requests": 20}
                }
            }},
            "claims": {"web": {"hosts": ["web.example.com"], "since": "2024-01-01T00:00:00Z", "project": "shop"}},
            "history": [{"at": "2024-01-01T00:00:00.000Z", "app": "web", "action": "seed", "to": "blue", "by": "controller"}]
        })
    }

    /// The field and problem `validate` names once `edit` is applied to the good state.
    fn invalid(edit: impl FnOnce(&mut serde_json::Value)) -> Invalid {
        let mut v = good();
        edit(&mut v);
        let state: State = serde_json::from_value(v).expect("the edited state still parses");
        state.validate().expect_err("the edited state is invalid")
    }

    #[test]
    fn what_pointsman_writes_is_valid() {
        let state: State = serde_json::from_value(good()).unwrap();
        assert_eq!(state.validate(), Ok(()));
        assert_eq!(State::default().validate(), Ok(()));
    }

    #[test]
    fn a_rollout_without_steps_is_named_with_its_field_and_the_way_out() {
        let e = invalid(|v| v["apps"]["web"]["rollout"]["steps"] = serde_json::json!([]));
        assert_eq!(e.field, "apps.web.rollout.steps");
        assert_eq!(e.problem, "is empty");
        assert!(e.fix.contains("pointsman abort web"), "{e}");
    }

    #[test]
    fn rollout_plans_follow_the_rules_of_the_steps_flag() {
        let steps = |s: serde_json::Value| invalid(|v| v["apps"]["web"]["rollout"]["steps"] = s);
        assert_eq!(steps(serde_json::json!([0, 50])).field, "apps.web.rollout.steps.0");
        assert_eq!(steps(serde_json::json!([10, 101])).field, "apps.web.rollout.steps.1");
        let e = steps(serde_json::json!([10, 50, 50]));
        assert_eq!(
            (e.field.as_str(), e.problem.as_str()),
            ("apps.web.rollout.steps.2", "is 50 after 50; weights must increase")
        );
        assert_eq!(steps(serde_json::json!([50, 10])).field, "apps.web.rollout.steps.1");
        let r = |key: &str, value: serde_json::Value| invalid(|v| v["apps"]["web"]["rollout"][key] = value).field;
        assert_eq!(r("step", serde_json::json!(3)), "apps.web.rollout.step");
        assert_eq!(r("step", serde_json::json!(u64::MAX)), "apps.web.rollout.step");
        assert_eq!(r("pause_ms", serde_json::json!(0)), "apps.web.rollout.pause_ms");
        assert_eq!(r("pause_ms", serde_json::json!(u64::MAX)), "apps.web.rollout.pause_ms");
        assert_eq!(r("extended", serde_json::json!(4)), "apps.web.rollout.extended");
        assert_eq!(r("slot", serde_json::json!("../x")), "apps.web.rollout.slot");
        let a = |key: &str, value: serde_json::Value| {
            invalid(|v| v["apps"]["web"]["rollout"]["analysis"][key] = value).field
        };
        assert_eq!(
            a("max_error_ratio", serde_json::json!(1.5)),
            "apps.web.rollout.analysis.max_error_ratio"
        );
        assert_eq!(
            a("max_error_ratio", serde_json::json!(-0.1)),
            "apps.web.rollout.analysis.max_error_ratio"
        );
        assert_eq!(
            a("max_p99_ms", serde_json::json!(u64::MAX)),
            "apps.web.rollout.analysis.max_p99_ms"
        );
        assert_eq!(
            a("metrics", serde_json::json!("file:///etc")),
            "apps.web.rollout.analysis.metrics"
        );
    }

    #[test]
    fn shares_are_at_most_a_hundred_percent() {
        for kind in ["canary", "mirror"] {
            let e = invalid(|v| v["apps"]["web"][kind] = serde_json::json!({"slot": "green", "percent": 101}));
            assert_eq!(e.field, format!("apps.web.{kind}.percent"));
            assert!(e.problem.contains("101"), "{e}");
        }
    }

    #[test]
    fn names_are_checked_as_labels_are() {
        let e = invalid(|v| v["apps"]["Web Site"] = serde_json::json!({}));
        assert_eq!(e.field, "apps.\"Web Site\"");
        let e = invalid(|v| v["apps"]["web"]["stable"] = serde_json::json!("blue/../x"));
        assert_eq!(e.field, "apps.web.stable");
        assert_eq!(
            invalid(|v| v["apps"]["web"]["previous"] = serde_json::json!("")).field,
            "apps.web.previous"
        );
        assert_eq!(
            invalid(|v| v["claims"]["web"]["project"] = serde_json::json!("A B")).field,
            "claims.web.project"
        );
        assert_eq!(
            invalid(|v| v["claims"]["web"]["hosts"] = serde_json::json!(["a b"])).field,
            "claims.web.hosts.0"
        );
        assert_eq!(
            invalid(|v| v["history"][0]["app"] = serde_json::json!("-x")).field,
            "history.0.app"
        );
        assert_eq!(
            invalid(|v| v["settings"]["entrypoints"] = serde_json::json!([])).field,
            "settings.entrypoints"
        );
        assert_eq!(
            invalid(|v| v["settings"]["label_prefix"] = serde_json::json!("a b")).field,
            "settings.label_prefix"
        );
        assert_eq!(
            invalid(|v| v["settings"]["allowed_hosts"] = serde_json::json!(["*."])).field,
            "settings.allowed_hosts.0"
        );
        // A hostile name is shown cut short.
        let long = "x".repeat(10_000);
        let e = invalid(|v| v["apps"]["web"]["stable"] = serde_json::json!(long));
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn history_is_bounded() {
        let e = invalid(|v| {
            let entry = v["history"][0].clone();
            v["history"] = serde_json::Value::Array(vec![entry; HISTORY_LIMIT + 1]);
        });
        assert_eq!(e.field, "history");
        assert!(e.fix.contains("the first 1"), "{e}");
    }

    #[test]
    fn a_plan_out_of_range_never_panics() {
        let mut r: Rollout = serde_json::from_value(good()["apps"]["web"]["rollout"].clone()).unwrap();
        r.step = usize::MAX;
        assert_eq!(r.weight(), 100);
        assert!(r.is_last_step());
        r.steps.clear();
        assert_eq!(r.weight(), 0);
        assert!(r.is_last_step());
    }
}
