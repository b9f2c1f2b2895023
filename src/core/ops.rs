//! Role changes as values: an [`Operation`] applied to (fleet, state, now) gives the new state
//! and its transitions, or a [`Refusal`] in the operator's words. The CLI and the controller
//! both go through [`apply`] (and [`seed`], the controller's own implicit operation), so they
//! agree on every rule, and there is one target resolver ([`find_target`]).
//!
//! Pure: no I/O, the clock comes in as `now`.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::core::admit::{Admit, Owner};
use crate::core::container::Condition;
use crate::core::labels::{LabelError, Role};
use crate::core::model::{App, Fleet};
use crate::core::render;
use crate::core::settings::Settings;
use crate::core::state::{
    Action, Actor, Analysis, AppRoles, GONE_APPS_KEPT, Rollout, Share, State, Transition, format_time,
};

/// A change of roles an operator (or the controller) asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// `relabel TARGET version=stable|candidate`: TARGET is `APP/SLOT`, a container name, or a
    /// container id prefix.
    Relabel { target: String, role: Role },
    /// Make the app's candidate stable; refused unless it is ready, or `force`.
    Promote { app: String, force: bool },
    /// Make the previous stable slot stable again.
    Rollback { app: String },
    /// Send `percent` of new public visitors to the candidate (sticky); 0 ends the canary.
    Canary { app: String, percent: u8 },
    /// Copy `percent` of public requests to the candidate; 0 ends the mirror.
    Mirror { app: String, percent: u8 },
    /// End a canary, mirror or rollout; roles stay as they are.
    Abort { app: String },
    /// Start a rollout of the candidate: weights `steps`, each held `pause_ms` and judged.
    Rollout {
        app: String,
        steps: Vec<u8>,
        pause_ms: u64,
        analysis: Option<Analysis>,
    },
    /// The controller's verdict on the current step of a rollout.
    Judge { app: String, judgement: Judgement },
    /// Promote the candidate of every app of a Compose project, all or nothing: refused unless
    /// every candidate is ready (or `force`). Apps without a candidate slot keep their stable one.
    ProjectPromote { project: String, force: bool },
    /// Return every app of the project's last project-wide promote or rollback to the slot it
    /// had before it.
    ProjectRollback { project: String },
    /// A canary over every app of the project with a candidate, sticky for the whole project.
    ProjectCanary { project: String, percent: u8 },
    /// End the canary, mirror or rollout of every app of the project.
    ProjectAbort { project: String },
}

/// What the controller concluded about a rollout step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The step's window passed (with its metrics, or `--no-analysis`): go on.
    Pass(String),
    /// A metric is over its threshold: abort at once.
    Breach(String),
    /// Too few requests to judge: extend the step (at most 3 times), then abort.
    NotEnough(String),
}

/// Pauses a step is extended by for lack of traffic before the rollout is aborted.
pub const MAX_EXTENSIONS: u8 = 3;

/// What an operation needs to see before it can be applied: the containers of one app, or
/// of whichever app a container belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    App(&'a str),
    /// Every app whose containers carry `com.docker.compose.project=PROJECT`.
    Project(&'a str),
    /// A container name or id prefix; the Docker edge finds its app.
    Container(&'a str),
}

impl Operation {
    pub fn scope(&self) -> Scope<'_> {
        match self {
            Operation::Relabel { target, .. } => match split_app_slot(target) {
                Some((app, _)) => Scope::App(app),
                None => Scope::Container(target.strip_prefix('/').unwrap_or(target)),
            },
            Operation::Promote { app, .. }
            | Operation::Rollback { app }
            | Operation::Canary { app, .. }
            | Operation::Mirror { app, .. }
            | Operation::Abort { app }
            | Operation::Rollout { app, .. }
            | Operation::Judge { app, .. } => Scope::App(app),
            Operation::ProjectPromote { project, .. }
            | Operation::ProjectRollback { project }
            | Operation::ProjectCanary { project, .. }
            | Operation::ProjectAbort { project } => Scope::Project(project),
        }
    }
}

/// Who asks and when.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub now: Timestamp,
    pub by: Actor,
    /// The app label's full key (`pointsman.app`), for messages.
    pub app_label: &'a str,
}

/// An operation carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Recorded in the state's history already.
    pub transitions: Vec<Transition>,
    /// Apps whose rendering changed.
    pub apps: BTreeSet<String>,
    /// What happened, in the operator's words.
    pub message: String,
}

/// An operation that was understood but not carried out. Exit code 1; the message names the
/// app, slot or container and the next step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown app {app}: no container carries its label{known}")]
    UnknownApp { app: String, known: String },
    #[error(
        "app {app} is refused: host {host} is already served by app {owner}, whose containers are older; give the host up in one of them"
    )]
    HostConflict { app: String, host: String, owner: String },
    #[error("app {app} has no slot {slot}{known}")]
    UnknownSlot { app: String, slot: String, known: String },
    #[error("no container named {target} (or with an id starting so) carries the app label; check `pointsman status`")]
    UnknownContainer { target: String },
    #[error("{target} matches several containers ({matches}); give more of the id or the full name")]
    AmbiguousContainer { target: String, matches: String },
    #[error("{0}")]
    BadContainer(LabelError),
    #[error(
        "app {app}: slot {slot} is the stable slot and cannot be made candidate; make another slot stable instead (`pointsman promote {app}` or `pointsman relabel {app}/SLOT version=stable`)"
    )]
    DemoteStable { app: String, slot: String },
    #[error("app {app} has no candidate slot; deploy one with label {label} first")]
    NoCandidate { app: String, label: String },
    #[error("app {app}: slot {slot} is not ready: {details}; wait for it, fix it, or pass --force")]
    NotReady { app: String, slot: String, details: String },
    #[error(
        "app {app}: there is no previous stable slot to roll back to; use `pointsman relabel {app}/SLOT version=stable`"
    )]
    NoPrevious { app: String },
    #[error(
        "app {app}: previous slot {slot} has no routable container; start it first or pick another slot with `pointsman relabel`"
    )]
    PreviousNotRoutable { app: String, slot: String },
    #[error(
        "app {app}: a rollout of slot {slot} is running and sets the weights; follow it with `pointsman status {app}` or `pointsman history {app}`, or end it with `pointsman abort {app}`"
    )]
    RolloutRunning { app: String, slot: String },
    #[error("app {app} has no rollout running; start one with `pointsman rollout {app} --steps …`")]
    NoRollout { app: String },
    #[error("unknown project {project}: no app's containers carry com.docker.compose.project={project}{known}")]
    UnknownProject { project: String, known: String },
    #[error(
        "project {project}: nothing changed, because not every candidate is ready: {details}; wait for them, fix them, or pass --force"
    )]
    ProjectNotReady { project: String, details: String },
    #[error("project {project}: no app has a candidate slot; deploy the new version of its apps first")]
    ProjectNoCandidate { project: String },
    #[error(
        "project {project}: no project-wide promote or rollback to return from; roll apps back one by one with `pointsman rollback APP`"
    )]
    NoProjectTransition { project: String },
    #[error(
        "project {project}: cannot return every app to its slot from before transition {id}: {details}; nothing changed. Roll the others back one by one (`pointsman rollback APP`) or relabel them"
    )]
    ProjectRollbackAmbiguous {
        project: String,
        id: String,
        details: String,
    },
}

/// Applies `op` to `state`. On a refusal the state is unchanged.
pub fn apply(op: &Operation, fleet: &Fleet, state: &mut State, ctx: Context<'_>) -> Result<Outcome, Refusal> {
    let (transition, message) = match op {
        Operation::ProjectPromote { project, force } => return project_promote(state, fleet, project, *force, ctx),
        Operation::ProjectRollback { project } => return project_rollback(state, fleet, project, ctx),
        Operation::ProjectCanary { project, percent } => return project_canary(state, fleet, project, *percent, ctx),
        Operation::ProjectAbort { project } => return project_abort(state, fleet, project, ctx),
        Operation::Relabel { target, role } => {
            let target = find_target(fleet, target)?;
            match role {
                Role::Stable => match make_stable(state, &target, Action::Relabel, ctx.by, ctx.now) {
                    Some(t) => {
                        let m = switched(&t);
                        (Some(t), m)
                    }
                    None => (None, already(&target, *role)),
                },
                Role::Candidate => match pin(state, &target, ctx.by, ctx.now)? {
                    Some(t) => {
                        let m = format!(
                            "app {}: slot {} is pinned as the candidate (cookie {}{}=candidate, header {}: candidate)",
                            t.app,
                            t.to,
                            render::COOKIE_PREFIX,
                            t.app,
                            render::VERSION_HEADER
                        );
                        (Some(t), m)
                    }
                    None => (None, already(&target, *role)),
                },
            }
        }
        Operation::Promote { app, force } => {
            let t = promote(state, fleet, app, ctx.app_label, *force, ctx.by, ctx.now)?;
            let m = switched(&t);
            (Some(t), m)
        }
        Operation::Rollback { app } => {
            let t = rollback(state, fleet, app, ctx.by, ctx.now)?;
            let m = switched(&t);
            (Some(t), m)
        }
        Operation::Canary { app, percent } => share(state, fleet, app, *percent, Traffic::Canary, ctx)?,
        Operation::Mirror { app, percent } => share(state, fleet, app, *percent, Traffic::Mirror, ctx)?,
        Operation::Abort { app } => {
            app_of(fleet, app)?;
            abort(state, app, "aborted by an operator", ctx)
        }
        Operation::Rollout {
            app,
            steps,
            pause_ms,
            analysis,
        } => start_rollout(state, fleet, app, steps, *pause_ms, analysis.clone(), ctx)?,
        Operation::Judge { app, judgement } => judge(state, fleet, app, judgement, ctx)?,
    };
    Ok(Outcome {
        apps: transition.iter().map(|t| t.app.clone()).collect(),
        transitions: transition.into_iter().collect(),
        message,
    })
}

fn already(target: &Target, role: Role) -> String {
    format!(
        "app {}: slot {} already is {role}; nothing to do",
        target.app, target.slot
    )
}

fn switched(t: &Transition) -> String {
    let (app, to) = (&t.app, &t.to);
    match &t.from {
        Some(from) => format!(
            "app {app}: slot {to} is now stable (was {from}); {from} stays reachable with cookie {}{app}={from} and `pointsman rollback {app}` returns to it",
            render::COOKIE_PREFIX
        ),
        None => format!("app {app}: slot {to} is now stable"),
    }
}

/// What the labels of a fleet do to the state: slots seeded as stable, and notices about
/// labels that were overruled (a second `stable`, a `stable` label on a joining slot).
#[derive(Debug, Default)]
pub struct Seeding {
    pub transitions: Vec<Transition>,
    pub notices: Vec<String>,
}

/// Seeds every app of the fleet; see [`seed_apps`].
pub fn seed(state: &mut State, fleet: &Fleet, now: Timestamp, by: Actor) -> Seeding {
    let apps: Vec<String> = fleet.app_names().cloned().collect();
    seed_apps(state, fleet, apps.iter().map(String::as_str), now, by)
}

/// While an app has no stable slot, the first slot labelled `stable` becomes stable; with
/// several in one listing, the one with the oldest container. Once an app has a stable slot,
/// labels change nothing: a redeployed idle colour never steals the public route. Only `apps`
/// are looked at, so the controller's cost follows what changed.
pub fn seed_apps<'a>(
    state: &mut State,
    fleet: &Fleet,
    apps: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
    by: Actor,
) -> Seeding {
    let mut out = Seeding::default();
    for app in apps.into_iter().filter_map(|a| fleet.app(a)) {
        let roles = state.apps.entry(app.name.clone()).or_default();
        if roles.stable.is_none() {
            let first = app
                .slots
                .values()
                .filter(|s| s.labelled_stable())
                .min_by_key(|s| (s.oldest_created(), &s.name));
            if let Some(slot) = first {
                roles.stable = Some(slot.name.clone());
                if roles.pinned.as_ref() == Some(&slot.name) {
                    roles.pinned = None;
                }
                out.transitions
                    .push(transition(now, &app.name, Action::Seed, None, &slot.name, by));
            }
        }
        if let Some(stable) = roles.stable.clone() {
            for slot in app.slots.values().filter(|s| s.labelled_stable() && s.name != stable) {
                out.notices.push(format!(
                    "app {}: slot {} is labelled stable but {} is the stable slot; {} serves as candidate (promote it with `pointsman promote {}`)",
                    app.name, slot.name, stable, slot.name, app.name
                ));
            }
        }
        if state.apps.get(&app.name) == Some(&AppRoles::default()) {
            state.apps.remove(&app.name);
        }
    }
    for t in &out.transitions {
        state.record(t.clone());
    }
    out
}

/// [`seed`] under the admission policy: every app of the fleet; see [`seed_admitted`].
pub fn seed_all_admitted(
    state: &mut State,
    fleet: &mut Fleet,
    settings: &Settings,
    now: Timestamp,
    by: Actor,
) -> Seeding {
    let mut apps: BTreeSet<String> = fleet.app_names().cloned().collect();
    apps.extend(fleet.held_apps());
    seed_admitted(state, fleet, settings, apps.iter().map(String::as_str), now, by).0
}

/// [`seed_apps`] under the admission policy (`--admit`): members of `apps` that do not carry
/// their app's recorded owner are held out of the fleet first, then labels seed roles, then
/// every app that has a stable slot and no owner on record gets one (from its stable slot's
/// oldest container) and the fleet is held to it. Every writer goes through this, so the
/// controller and the CLI admit the same containers. Returns the seeding and the apps whose
/// view of the fleet changed.
pub fn seed_admitted<'a>(
    state: &mut State,
    fleet: &mut Fleet,
    settings: &Settings,
    apps: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
    by: Actor,
) -> (Seeding, BTreeSet<String>) {
    let apps: Vec<&str> = apps.into_iter().collect();
    let mut touched = admit_apps(state, fleet, settings, &apps);
    let seeding = seed_apps(state, fleet, apps.iter().copied(), now, by);
    touched.extend(admit_apps(state, fleet, settings, &apps));
    (seeding, touched)
}

/// Records the owner of each seeded app of `apps` that has none the policy can compare, and
/// holds the fleet to the recorded owners.
fn admit_apps(state: &mut State, fleet: &mut Fleet, settings: &Settings, apps: &[&str]) -> BTreeSet<String> {
    let mut touched = BTreeSet::new();
    if settings.admit == Admit::Any {
        return touched;
    }
    for &app in apps {
        let owner = match state.apps.get_mut(app) {
            Some(roles) if roles.stable.is_some() => {
                if !roles.owner.as_ref().is_some_and(|o| o.knows(settings.admit)) {
                    let seeder = roles
                        .stable
                        .as_ref()
                        .and_then(|s| fleet.app(app)?.slots.get(s))
                        .and_then(|slot| {
                            slot.members
                                .iter()
                                .filter(|m| m.condition != Condition::Stopped)
                                .min_by_key(|m| (m.created, &m.name))
                        })
                        .map(Owner::of);
                    if let Some(seeder) = seeder {
                        let mut owner = roles.owner.take().unwrap_or_default();
                        owner.project = owner.project.or(seeder.project);
                        owner.mark = owner.mark.or(seeder.mark);
                        roles.owner = Some(owner);
                    }
                }
                roles.owner.clone()
            }
            _ => None,
        };
        touched.extend(fleet.set_owner(app, owner, settings));
    }
    touched
}

/// Marks the apps of `apps` that have no container left in `fleet` (a full view: the
/// controller's) as gone since `now`, unmarks those that have containers again, and forgets
/// the roles of the oldest gone apps beyond [`GONE_APPS_KEPT`]. Returns the apps forgotten.
pub fn forget_gone<'a>(
    state: &mut State,
    fleet: &Fleet,
    apps: impl IntoIterator<Item = &'a str>,
    now: Timestamp,
) -> Vec<String> {
    let mut marked = false;
    let held = fleet.held_apps();
    for app in apps {
        let present = fleet.claim(app).is_some() || held.contains(app);
        if let Some(roles) = state.apps.get_mut(app) {
            match (present, roles.gone.is_some()) {
                (true, true) => roles.gone = None,
                (false, false) => {
                    roles.gone = Some(now);
                    marked = true;
                }
                _ => {}
            }
        }
    }
    if !marked {
        return Vec::new();
    }
    let mut gone: Vec<(Timestamp, String)> = state
        .apps
        .iter()
        .filter_map(|(name, r)| r.gone.map(|t| (t, name.clone())))
        .collect();
    if gone.len() <= GONE_APPS_KEPT {
        return Vec::new();
    }
    gone.sort();
    let excess = gone.len() - GONE_APPS_KEPT;
    let forgotten: Vec<String> = gone.into_iter().take(excess).map(|(_, name)| name).collect();
    for name in &forgotten {
        state.apps.remove(name);
    }
    forgotten
}

/// What a relabel or promote names: an app and one of its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub app: String,
    pub slot: String,
}

fn split_app_slot(target: &str) -> Option<(&str, &str)> {
    target.split_once('/').filter(|_| !target.starts_with('/'))
}

/// Resolves `APP/SLOT`, a container name, or a container id prefix (at least 4 characters).
pub fn find_target(fleet: &Fleet, target: &str) -> Result<Target, Refusal> {
    if let Some((app, slot)) = split_app_slot(target) {
        let a = app_of(fleet, app)?;
        if !a.slots.contains_key(slot) {
            return Err(Refusal::UnknownSlot {
                app: app.into(),
                slot: slot.into(),
                known: known_slots(a),
            });
        }
        return Ok(Target {
            app: app.into(),
            slot: slot.into(),
        });
    }
    let name = target.strip_prefix('/').unwrap_or(target);
    let members = || fleet.apps().flat_map(|a| a.members());
    if let Some(m) = members().find(|m| m.name == name) {
        return Ok(Target {
            app: m.app.clone(),
            slot: m.slot.clone(),
        });
    }
    if let Some(e) = fleet.error_of(name) {
        return Err(Refusal::BadContainer(e));
    }
    let by_id: Vec<_> = if name.len() >= 4 {
        members().filter(|m| m.id.starts_with(name)).collect()
    } else {
        vec![]
    };
    match by_id.as_slice() {
        [m] => Ok(Target {
            app: m.app.clone(),
            slot: m.slot.clone(),
        }),
        [] => Err(Refusal::UnknownContainer { target: target.into() }),
        many => Err(Refusal::AmbiguousContainer {
            target: target.into(),
            matches: many.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Makes `target` the stable slot; the former stable slot is remembered as `previous`.
/// `None`: it already was.
fn make_stable(state: &mut State, target: &Target, action: Action, by: Actor, now: Timestamp) -> Option<Transition> {
    let roles = state.apps.entry(target.app.clone()).or_default();
    if roles.stable.as_ref() == Some(&target.slot) {
        return None;
    }
    let former = roles.stable.replace(target.slot.clone());
    if former.is_some() {
        roles.previous = former.clone();
    }
    if roles.pinned.as_ref() == Some(&target.slot) {
        roles.pinned = None;
    }
    // A role change ends any canary, mirror or rollout: they were about the old candidate.
    roles.canary = None;
    roles.mirror = None;
    roles.rollout = None;
    let t = transition(now, &target.app, action, former, &target.slot, by);
    state.record(t.clone());
    Some(t)
}

/// Pins `target` as its app's candidate. Refused for the stable slot.
fn pin(state: &mut State, target: &Target, by: Actor, now: Timestamp) -> Result<Option<Transition>, Refusal> {
    let roles = state.apps.entry(target.app.clone()).or_default();
    if roles.stable.as_ref() == Some(&target.slot) {
        return Err(Refusal::DemoteStable {
            app: target.app.clone(),
            slot: target.slot.clone(),
        });
    }
    if roles.pinned.as_ref() == Some(&target.slot) {
        return Ok(None);
    }
    let former = roles.pinned.replace(target.slot.clone());
    let t = transition(now, &target.app, Action::Pin, former, &target.slot, by);
    state.record(t.clone());
    Ok(Some(t))
}

/// Makes the app's candidate stable, if every one of its containers is running and healthy
/// (and it has at least one), or `force` is set.
fn promote(
    state: &mut State,
    fleet: &Fleet,
    app: &str,
    label_hint: &str,
    force: bool,
    by: Actor,
    now: Timestamp,
) -> Result<Transition, Refusal> {
    let a = app_of(fleet, app)?;
    let resolved = a.resolve(&state.roles(app));
    let Some(slot_name) = resolved.candidate else {
        return Err(Refusal::NoCandidate {
            app: app.into(),
            label: format!("{label_hint}={app}"),
        });
    };
    if !force && let Some(details) = unready(&a.slots[&slot_name]) {
        return Err(Refusal::NotReady {
            app: app.into(),
            slot: slot_name,
            details,
        });
    }
    let target = Target {
        app: app.into(),
        slot: slot_name,
    };
    Ok(make_stable(state, &target, Action::Promote, by, now).expect("the candidate is never the stable slot"))
}

/// Why a slot may not be promoted (a member not ready, or no member at all); `None`: ready.
fn unready(slot: &crate::core::model::Slot) -> Option<String> {
    if slot.members.is_empty() {
        return Some("it has no container".to_string());
    }
    let blockers = slot.not_ready();
    (!blockers.is_empty()).then(|| {
        blockers
            .iter()
            .map(|m| format!("{} is {}", m.name, describe(m.condition, m.url.is_some())))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// Makes the previous stable slot stable again, if it has a routable container.
fn rollback(state: &mut State, fleet: &Fleet, app: &str, by: Actor, now: Timestamp) -> Result<Transition, Refusal> {
    let a = app_of(fleet, app)?;
    let roles = state.roles(app);
    let Some(previous) = roles.previous.filter(|p| Some(p) != roles.stable.as_ref()) else {
        return Err(Refusal::NoPrevious { app: app.into() });
    };
    if !a.slots.get(&previous).is_some_and(|s| s.is_routable()) {
        return Err(Refusal::PreviousNotRoutable {
            app: app.into(),
            slot: previous,
        });
    }
    let target = Target {
        app: app.into(),
        slot: previous,
    };
    Ok(make_stable(state, &target, Action::Rollback, by, now).expect("previous is not the stable slot"))
}

fn describe(c: Condition, addressed: bool) -> &'static str {
    match c {
        Condition::Ready if !addressed => "without an address on its network",
        Condition::Ready => "ready",
        Condition::Starting => "still starting (healthcheck not passed yet)",
        Condition::Unhealthy => "unhealthy",
        Condition::Paused => "paused",
        Condition::Stopped => "not running",
    }
}

fn app_of<'f>(fleet: &'f Fleet, app: &str) -> Result<&'f App, Refusal> {
    if let Some((host, owner)) = fleet.refusal(app) {
        return Err(Refusal::HostConflict {
            app: app.into(),
            host: host.into(),
            owner: owner.into(),
        });
    }
    fleet.app(app).ok_or_else(|| unknown_app(fleet, app))
}

/// The refusal for an app no container carries, listing the apps that exist.
pub fn unknown_app(fleet: &Fleet, app: &str) -> Refusal {
    let known: Vec<&str> = fleet.app_names().map(String::as_str).collect();
    Refusal::UnknownApp {
        app: app.into(),
        known: if known.is_empty() {
            String::new()
        } else {
            format!(" (known apps: {})", known.join(", "))
        },
    }
}

fn known_slots(a: &App) -> String {
    format!(
        " (its slots: {})",
        a.slots.keys().cloned().collect::<Vec<_>>().join(", ")
    )
}

fn transition(now: Timestamp, app: &str, action: Action, from: Option<String>, to: &str, by: Actor) -> Transition {
    Transition {
        at: format_time(now),
        app: app.into(),
        action,
        from,
        to: to.into(),
        by,
        detail: None,
        id: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Traffic {
    Canary,
    Mirror,
}

/// The candidate an app's canary, mirror or rollout is about.
fn candidate_of(state: &State, fleet: &Fleet, app: &str, label_hint: &str) -> Result<String, Refusal> {
    let a = app_of(fleet, app)?;
    a.resolve(&state.roles(app))
        .candidate
        .ok_or_else(|| Refusal::NoCandidate {
            app: app.into(),
            label: format!("{label_hint}={app}"),
        })
}

/// `canary` and `mirror`: set (or with 0, end) a share of traffic for the candidate.
fn share(
    state: &mut State,
    fleet: &Fleet,
    app: &str,
    percent: u8,
    kind: Traffic,
    ctx: Context<'_>,
) -> Result<(Option<Transition>, String), Refusal> {
    let slot = candidate_of(state, fleet, app, ctx.app_label)?;
    let roles = state.apps.entry(app.to_string()).or_default();
    if let Some(r) = &roles.rollout
        && kind == Traffic::Canary
    {
        return Err(Refusal::RolloutRunning {
            app: app.into(),
            slot: r.slot.clone(),
        });
    }
    let (noun, current) = match kind {
        Traffic::Canary => ("canary weight", &mut roles.canary),
        Traffic::Mirror => ("mirror", &mut roles.mirror),
    };
    let before = current.as_ref().filter(|s| s.slot == slot).map_or(0, |s| s.percent);
    let next = (percent > 0).then(|| Share {
        slot: slot.clone(),
        percent,
    });
    if *current == next {
        return Ok((
            None,
            format!("app {app}: {noun} of slot {slot} already is {percent}%; nothing to do"),
        ));
    }
    *current = next;
    let stable = roles.stable.clone();
    let mut t = transition(
        ctx.now,
        app,
        if kind == Traffic::Canary {
            Action::Canary
        } else {
            Action::Mirror
        },
        stable.clone(),
        &slot,
        ctx.by,
    );
    t.detail = Some(format!("{noun} {before}% → {percent}%"));
    state.record(t.clone());
    let message = match (kind, percent) {
        (Traffic::Canary, 0) => format!("app {app}: canary ended; every visitor is served by the stable slot"),
        (Traffic::Canary, p) => format!(
            "app {app}: {p}% of new visitors go to slot {slot} (sticky: cookie {} keeps each on the version it got); `pointsman abort {app}` ends it",
            fleet
                .app(app)
                .map_or_else(|| format!("{}{app}-lb", render::COOKIE_PREFIX), render::canary_cookie)
        ),
        (Traffic::Mirror, 0) => format!("app {app}: mirroring ended"),
        (Traffic::Mirror, p) => format!(
            "app {app}: a copy of {p}% of public requests goes to slot {slot}; its answers are discarded, visitors are served by {}",
            stable.as_deref().unwrap_or("the stable slot")
        ),
    };
    Ok((Some(t), message))
}

/// Ends a canary, mirror and rollout; roles stay.
fn abort(state: &mut State, app: &str, reason: &str, ctx: Context<'_>) -> (Option<Transition>, String) {
    let roles = state.apps.entry(app.to_string()).or_default();
    if roles.canary.is_none() && roles.mirror.is_none() && roles.rollout.is_none() {
        return (
            None,
            format!("app {app}: no canary, mirror or rollout to abort; nothing to do"),
        );
    }
    let slot = roles
        .rollout
        .as_ref()
        .map(|r| r.slot.clone())
        .or_else(|| roles.canary.as_ref().map(|s| s.slot.clone()))
        .or_else(|| roles.mirror.as_ref().map(|s| s.slot.clone()))
        .unwrap_or_default();
    roles.canary = None;
    roles.mirror = None;
    roles.rollout = None;
    let stable = roles.stable.clone();
    let mut t = transition(ctx.now, app, Action::Abort, stable.clone(), &slot, ctx.by);
    t.detail = Some(reason.to_string());
    state.record(t.clone());
    let message = format!(
        "app {app}: {reason}; every visitor is served by {} again (weight 0, no mirror)",
        stable.as_deref().unwrap_or("the stable slot")
    );
    (Some(t), message)
}

fn start_rollout(
    state: &mut State,
    fleet: &Fleet,
    app: &str,
    steps: &[u8],
    pause_ms: u64,
    analysis: Option<Analysis>,
    ctx: Context<'_>,
) -> Result<(Option<Transition>, String), Refusal> {
    let slot = candidate_of(state, fleet, app, ctx.app_label)?;
    let roles = state.apps.entry(app.to_string()).or_default();
    if let Some(r) = &roles.rollout {
        return Err(Refusal::RolloutRunning {
            app: app.into(),
            slot: r.slot.clone(),
        });
    }
    let rollout = Rollout {
        slot: slot.clone(),
        steps: steps.to_vec(),
        pause_ms,
        step: 0,
        since: ctx.now,
        extended: 0,
        analysis,
    };
    let plan = describe_plan(&rollout);
    roles.canary = Some(Share {
        slot: slot.clone(),
        percent: rollout.weight(),
    });
    roles.rollout = Some(rollout);
    let mut t = transition(ctx.now, app, Action::Rollout, roles.stable.clone(), &slot, ctx.by);
    t.detail = Some(plan.clone());
    state.record(t.clone());
    Ok((Some(t), format!("app {app}: rollout of slot {slot} started: {plan}")))
}

fn describe_plan(r: &Rollout) -> String {
    let steps: Vec<String> = r.steps.iter().map(u8::to_string).collect();
    format!(
        "steps {}% each held {} ms{}; step 1 of {} at {}%",
        steps.join(","),
        r.pause_ms,
        if r.analysis.is_some() {
            " and judged by Traefik's metrics"
        } else {
            ", not judged (--no-analysis)"
        },
        r.steps.len(),
        r.weight()
    )
}

/// The controller's verdict on a rollout step: go on, extend, abort, or promote after the last.
fn judge(
    state: &mut State,
    fleet: &Fleet,
    app: &str,
    judgement: &Judgement,
    ctx: Context<'_>,
) -> Result<(Option<Transition>, String), Refusal> {
    let Some(rollout) = state.roles(app).rollout else {
        return Err(Refusal::NoRollout { app: app.into() });
    };
    let n = rollout.step.saturating_add(1);
    let of = rollout.steps.len();
    let still_candidate = app_of(fleet, app)
        .ok()
        .and_then(|a| a.resolve(&state.roles(app)).candidate)
        .is_some_and(|c| c == rollout.slot);
    if !still_candidate {
        let reason = format!(
            "rollout aborted at step {n} of {of}: slot {} is no longer the candidate",
            rollout.slot
        );
        return Ok(abort(state, app, &reason, ctx));
    }
    match judgement {
        Judgement::Breach(why) => {
            let reason = format!("rollout aborted at step {n} of {of} ({}%): {why}", rollout.weight());
            Ok(abort(state, app, &reason, ctx))
        }
        Judgement::NotEnough(why) if rollout.extended >= MAX_EXTENSIONS => {
            let reason = format!(
                "rollout aborted at step {n} of {of} ({}%): not enough traffic to judge ({why}) after {MAX_EXTENSIONS} extra pauses",
                rollout.weight()
            );
            Ok(abort(state, app, &reason, ctx))
        }
        Judgement::NotEnough(why) => {
            let roles = state.apps.get_mut(app).expect("a rollout has roles");
            let r = roles.rollout.as_mut().expect("checked above");
            r.extended = r.extended.saturating_add(1);
            r.since = ctx.now;
            let detail = format!(
                "step {n} of {of} ({}%) extended ({} of {MAX_EXTENSIONS}): {why}",
                r.weight(),
                r.extended
            );
            let mut t = transition(ctx.now, app, Action::Step, roles.stable.clone(), &rollout.slot, ctx.by);
            t.detail = Some(detail.clone());
            state.record(t.clone());
            Ok((Some(t), format!("app {app}: {detail}")))
        }
        Judgement::Pass(summary) if rollout.is_last_step() => {
            match promote(state, fleet, app, ctx.app_label, false, ctx.by, ctx.now) {
                Ok(mut t) => {
                    t.detail = Some(format!("rollout completed ({summary})"));
                    if let Some(last) = state.history.back_mut() {
                        last.detail = t.detail.clone();
                    }
                    let m = format!("app {app}: rollout completed ({summary}); {}", switched(&t));
                    Ok((Some(t), m))
                }
                Err(refusal) => {
                    let reason = format!("rollout aborted after its last step: the promotion was refused: {refusal}");
                    Ok(abort(state, app, &reason, ctx))
                }
            }
        }
        Judgement::Pass(summary) => {
            let roles = state.apps.get_mut(app).expect("a rollout has roles");
            let r = roles.rollout.as_mut().expect("checked above");
            r.step = r.step.saturating_add(1);
            r.since = ctx.now;
            r.extended = 0;
            let weight = r.weight();
            roles.canary = Some(Share {
                slot: rollout.slot.clone(),
                percent: weight,
            });
            let detail = format!(
                "step {n} of {of} passed ({summary}); step {} of {of}: {weight}%",
                n.saturating_add(1)
            );
            let mut t = transition(ctx.now, app, Action::Step, roles.stable.clone(), &rollout.slot, ctx.by);
            t.detail = Some(detail.clone());
            state.record(t.clone());
            Ok((Some(t), format!("app {app}: {detail}")))
        }
    }
}

/// The apps of a project, or the refusal naming the projects that exist.
fn project_apps<'f>(fleet: &'f Fleet, project: &str) -> Result<Vec<&'f App>, Refusal> {
    let apps = fleet.project_apps(project);
    if !apps.is_empty() {
        return Ok(apps);
    }
    let known = fleet.projects();
    Err(Refusal::UnknownProject {
        project: project.into(),
        known: if known.is_empty() {
            String::new()
        } else {
            format!(" (known projects: {})", known.join(", "))
        },
    })
}

/// A new id for a project-wide operation: `PROJECT:UNIX_MS`, unique in the history.
fn transition_id(state: &State, project: &str, now: Timestamp) -> String {
    let mut ms = now.as_millisecond();
    loop {
        let id = format!("{project}:{ms}");
        if !state.history.iter().any(|t| t.id.as_deref() == Some(id.as_str())) {
            return id;
        }
        ms += 1;
    }
}

/// Ties a transition just recorded (the history's last entry) to a project-wide operation.
fn tag(state: &mut State, mut t: Transition, id: &str) -> Transition {
    t.id = Some(id.to_string());
    if let Some(last) = state.history.back_mut() {
        last.id = t.id.clone();
    }
    t
}

fn project_outcome(transitions: Vec<Transition>, message: String) -> Outcome {
    Outcome {
        apps: transitions.iter().map(|t| t.app.clone()).collect(),
        transitions,
        message,
    }
}

/// Every app's gate is checked before anything changes; then every candidate becomes stable,
/// each with its own history entry, tied together by one id.
fn project_promote(
    state: &mut State,
    fleet: &Fleet,
    project: &str,
    force: bool,
    ctx: Context<'_>,
) -> Result<Outcome, Refusal> {
    let apps = project_apps(fleet, project)?;
    let (mut plan, mut blocked, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for a in &apps {
        match a.resolve(&state.roles(&a.name)).candidate {
            None => idle.push(a.name.clone()),
            Some(slot) => {
                if let Some(details) = unready(&a.slots[&slot]) {
                    blocked.push(format!("app {}: slot {slot}: {details}", a.name));
                }
                plan.push(Target {
                    app: a.name.clone(),
                    slot,
                });
            }
        }
    }
    if !force && !blocked.is_empty() {
        return Err(Refusal::ProjectNotReady {
            project: project.into(),
            details: blocked.join("; "),
        });
    }
    if plan.is_empty() {
        return Err(Refusal::ProjectNoCandidate {
            project: project.into(),
        });
    }
    let id = transition_id(state, project, ctx.now);
    let mut done = Vec::new();
    for target in &plan {
        let t = make_stable(state, target, Action::Promote, ctx.by, ctx.now)
            .expect("the candidate is never the stable slot");
        done.push(tag(state, t, &id));
    }
    let mut message = format!(
        "project {project}: {} app(s) switched in one change ({id}):",
        done.len()
    );
    for t in &done {
        message += &format!(
            "\n  app {}: slot {} is now stable (was {})",
            t.app,
            t.to,
            t.from.as_deref().unwrap_or("none")
        );
    }
    for app in idle {
        message += &format!("\n  app {app}: no candidate slot; it keeps its stable slot");
    }
    message += &format!("\n`pointsman rollback --project {project}` returns every one of them");
    Ok(project_outcome(done, message))
}

/// Returns every app of the project's last project-wide promote or rollback to the slot it had
/// before, even an app promoted on its own since. Refused, changing nothing, when that cannot
/// be done for every app of it.
fn project_rollback(state: &mut State, fleet: &Fleet, project: &str, ctx: Context<'_>) -> Result<Outcome, Refusal> {
    project_apps(fleet, project)?;
    let Some(id) = state
        .history
        .iter()
        .rev()
        .find(|t| t.project() == Some(project) && matches!(t.action, Action::Promote | Action::Rollback))
        .and_then(|t| t.id.clone())
    else {
        return Err(Refusal::NoProjectTransition {
            project: project.into(),
        });
    };
    let group: Vec<Transition> = state
        .history
        .iter()
        .filter(|t| t.id.as_deref() == Some(id.as_str()))
        .cloned()
        .collect();
    let (mut plan, mut problems) = (Vec::new(), Vec::new());
    for t in &group {
        let Some(from) = &t.from else {
            problems.push(format!("app {} had no stable slot before it", t.app));
            continue;
        };
        let Some(a) = fleet.app(&t.app) else {
            problems.push(format!("app {} has no container any more", t.app));
            continue;
        };
        if a.project() != Some(project) {
            problems.push(format!("app {} is no longer in project {project}", t.app));
            continue;
        }
        if !a.slots.get(from).is_some_and(|s| s.is_routable()) {
            problems.push(format!("app {}: slot {from} has no routable container", t.app));
            continue;
        }
        if state.roles(&t.app).stable.as_ref() != Some(from) {
            plan.push(Target {
                app: t.app.clone(),
                slot: from.clone(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(Refusal::ProjectRollbackAmbiguous {
            project: project.into(),
            id,
            details: problems.join("; "),
        });
    }
    if plan.is_empty() {
        return Ok(project_outcome(
            vec![],
            format!("project {project}: every app of {id} already is on its slot from before it; nothing to do"),
        ));
    }
    let new_id = transition_id(state, project, ctx.now);
    let mut done = Vec::new();
    for target in &plan {
        let t = make_stable(state, target, Action::Rollback, ctx.by, ctx.now).expect("checked: not the stable slot");
        done.push(tag(state, t, &new_id));
    }
    let mut message = format!(
        "project {project}: {} app(s) returned to their slots from before {id} in one change ({new_id}):",
        done.len()
    );
    for t in &done {
        message += &format!(
            "\n  app {}: slot {} is now stable (was {})",
            t.app,
            t.to,
            t.from.as_deref().unwrap_or("none")
        );
    }
    Ok(project_outcome(done, message))
}

/// A canary on every app of the project that has a candidate, all or nothing; one sticky
/// cookie for the project (see `render::canary_cookie`).
fn project_canary(
    state: &mut State,
    fleet: &Fleet,
    project: &str,
    percent: u8,
    ctx: Context<'_>,
) -> Result<Outcome, Refusal> {
    let apps = project_apps(fleet, project)?;
    let mut next = state.clone();
    let id = transition_id(state, project, ctx.now);
    let (mut done, mut lines, mut idle) = (Vec::new(), Vec::new(), Vec::new());
    for a in &apps {
        if a.resolve(&next.roles(&a.name)).candidate.is_none() {
            idle.push(a.name.clone());
            continue;
        }
        match share(&mut next, fleet, &a.name, percent, Traffic::Canary, ctx)? {
            (Some(t), _) => {
                lines.push(format!(
                    "app {}: {} of slot {}",
                    a.name,
                    t.detail.as_deref().unwrap_or(""),
                    t.to
                ));
                done.push(tag(&mut next, t, &id));
            }
            (None, m) => lines.push(m),
        }
    }
    if idle.len() == apps.len() {
        return Err(Refusal::ProjectNoCandidate {
            project: project.into(),
        });
    }
    *state = next;
    let cookie = format!("{}{project}-lb", render::COOKIE_PREFIX);
    let mut message = if percent == 0 {
        format!("project {project}: canary ended; every visitor is served by the stable slots")
    } else {
        format!(
            "project {project}: {percent}% of new visitors go to the candidates, the same visitors in every app (one sticky cookie, {cookie}); `pointsman abort --project {project}` ends it"
        )
    };
    for l in lines {
        message += &format!("\n  {l}");
    }
    for app in idle {
        message += &format!("\n  app {app}: no candidate slot; every visitor stays on its stable slot");
    }
    Ok(project_outcome(done, message))
}

/// Ends the canary, mirror or rollout of every app of the project.
fn project_abort(state: &mut State, fleet: &Fleet, project: &str, ctx: Context<'_>) -> Result<Outcome, Refusal> {
    let apps = project_apps(fleet, project)?;
    let id = transition_id(state, project, ctx.now);
    let mut done = Vec::new();
    for a in &apps {
        if let (Some(t), _) = abort(state, &a.name, "aborted by an operator (whole project)", ctx) {
            done.push(tag(state, t, &id));
        }
    }
    let message = if done.is_empty() {
        format!("project {project}: no canary, mirror or rollout to abort; nothing to do")
    } else {
        let apps: Vec<&str> = done.iter().map(|t| t.app.as_str()).collect();
        format!(
            "project {project}: aborted ({}); every visitor is served by the stable slots again",
            apps.join(", ")
        )
    };
    Ok(project_outcome(done, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::container::{Container, Endpoint, Health};
    use crate::core::settings::Settings;
    use crate::core::state::Share;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    /// `container("web-green-1").slot("green").healthy()`
    struct Builder(Container);

    fn container(name: &str) -> Builder {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        let mut c = Container {
            id: format!("{hex:f<64}"),
            name: format!("/{name}"),
            ..Default::default()
        };
        c.created = "2026-11-26T05:00:00Z".into();
        c.state.running = true;
        c.state.status = "running".into();
        c.state.started_at = "2026-11-26T05:00:01Z".into();
        c.config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        c.network_settings.networks = Some(
            [(
                "net".to_string(),
                Endpoint {
                    ip_address: format!("10.0.0.{}", name.len()),
                },
            )]
            .into(),
        );
        let mut b = Builder(c);
        b = b.label("app", "web").label("host", "web.example.com");
        b
    }

    impl Builder {
        fn label(mut self, key: &str, value: &str) -> Builder {
            self.0
                .config
                .labels
                .get_or_insert_default()
                .insert(format!("pointsman.{key}"), value.into());
            self
        }
        fn slot(self, slot: &str) -> Builder {
            self.label("slot", slot)
        }
        fn stable(self) -> Builder {
            self.label("version", "stable")
        }
        fn health(mut self, status: &str) -> Builder {
            self.0.state.health = Some(Health { status: status.into() });
            self
        }
        fn healthy(self) -> Builder {
            self.health("healthy")
        }
        fn created(mut self, at: &str) -> Builder {
            self.0.created = at.into();
            self
        }
        fn started(mut self, at: &str) -> Builder {
            self.0.state.started_at = at.into();
            self
        }
        fn stopped(mut self) -> Builder {
            self.0.state.running = false;
            self
        }
        /// A member of app `app` of Compose project `project`, on its own host.
        fn of(mut self, project: &str, app: &str) -> Builder {
            let labels = self.0.config.labels.get_or_insert_default();
            labels.insert("com.docker.compose.project".into(), project.into());
            labels.insert("pointsman.app".into(), app.into());
            labels.insert("pointsman.host".into(), format!("{app}.example.com"));
            self
        }
    }

    /// Project shop: front and api, each blue (stable) and green.
    fn shop(api_green: Builder) -> Vec<Builder> {
        vec![
            container("front-blue-1").of("shop", "front").slot("blue").stable(),
            container("front-green-1").of("shop", "front").slot("green").healthy(),
            container("api-blue-1").of("shop", "api").slot("blue").stable(),
            api_green.of("shop", "api").slot("green"),
        ]
    }

    fn stables(s: &State) -> (Option<String>, Option<String>) {
        (s.roles("front").stable, s.roles("api").stable)
    }

    #[test]
    fn a_project_promote_is_all_or_nothing_and_ties_its_entries_by_one_id() {
        let (mut s, f) = seeded(shop(container("api-green-1").health("starting")));
        let promote = Operation::ProjectPromote {
            project: "shop".into(),
            force: false,
        };
        assert_eq!(promote.scope(), Scope::Project("shop"));
        let before = s.clone();
        let err = apply(&promote, &f, &mut s, ctx()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("app api: slot green: api-green-1 is still starting") && msg.contains("nothing changed"),
            "{msg}"
        );
        assert!(!msg.contains("app front"), "only the apps not ready are named: {msg}");
        assert_eq!(s, before, "one unready candidate: nothing moves");

        let (mut s, f) = seeded(shop(container("api-green-1").healthy()));
        let out = apply(&promote, &f, &mut s, ctx()).unwrap();
        assert_eq!(stables(&s), (Some("green".into()), Some("green".into())));
        assert_eq!(out.apps, BTreeSet::from(["api".to_string(), "front".to_string()]));
        let ids: BTreeSet<_> = out.transitions.iter().map(|t| t.id.clone().unwrap()).collect();
        assert_eq!(ids.len(), 1, "one id for the whole project: {ids:?}");
        let id = ids.into_iter().next().unwrap();
        assert!(id.starts_with("shop:"), "{id}");
        let tagged: Vec<_> = s
            .history
            .iter()
            .filter(|t| t.id.as_deref() == Some(id.as_str()))
            .collect();
        assert_eq!(tagged.len(), 2, "one history entry per app");
        assert!(matches!(
            apply(&Operation::ProjectPromote { project: "nope".into(), force: false }, &f, &mut s, ctx()),
            Err(Refusal::UnknownProject { known, .. }) if known.contains("shop")
        ));
    }

    #[test]
    fn a_project_rollback_returns_every_app_to_its_slot_from_before_even_after_a_separate_promote() {
        let mut cs = shop(container("api-green-1").healthy());
        cs.push(
            container("api-purple-1")
                .of("shop", "api")
                .slot("purple")
                .started("2026-11-26T06:00:00Z"),
        );
        let (mut s, f) = seeded(cs);
        // api's latest-started candidate is purple: the project promote takes it.
        apply(
            &Operation::ProjectPromote {
                project: "shop".into(),
                force: true,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        assert_eq!(stables(&s), (Some("green".into()), Some("purple".into())));
        // api promoted on its own since: green.
        apply(
            &Operation::Relabel {
                target: "api/green".into(),
                role: Role::Stable,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        let back = Operation::ProjectRollback { project: "shop".into() };
        let out = apply(&back, &f, &mut s, ctx()).unwrap();
        assert_eq!(
            stables(&s),
            (Some("blue".into()), Some("blue".into())),
            "{}",
            out.message
        );
        assert_eq!(out.transitions.len(), 2);
        // A second project rollback reverts the rollback (like `rollback APP`).
        apply(&back, &f, &mut s, ctx()).unwrap();
        assert_eq!(stables(&s), (Some("green".into()), Some("green".into())));

        // Ambiguous: a slot to return to has no routable container: refused, nothing moves.
        let (mut s, f) = seeded(shop(container("api-green-1").healthy()));
        apply(
            &Operation::ProjectPromote {
                project: "shop".into(),
                force: false,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        let down = fleet(vec![
            container("front-blue-1").of("shop", "front").slot("blue").stable(),
            container("front-green-1").of("shop", "front").slot("green").healthy(),
            container("api-blue-1")
                .of("shop", "api")
                .slot("blue")
                .stable()
                .stopped(),
            container("api-green-1").of("shop", "api").slot("green").healthy(),
        ]);
        let before = s.clone();
        let err = apply(&back, &down, &mut s, ctx()).unwrap_err().to_string();
        assert!(
            err.contains("app api: slot blue has no routable container") && err.contains("nothing changed"),
            "{err}"
        );
        assert_eq!(s, before);
        let gone = fleet(shop(container("api-green-1").healthy()).into_iter().take(2).collect());
        let err = apply(&back, &gone, &mut s, ctx()).unwrap_err().to_string();
        assert!(err.contains("app api has no container any more"), "{err}");
    }

    #[test]
    fn a_project_canary_weighs_every_app_and_abort_ends_them_all() {
        let (mut s, f) = seeded(shop(container("api-green-1").healthy()));
        let out = apply(
            &Operation::ProjectCanary {
                project: "shop".into(),
                percent: 20,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        assert!(out.message.contains("pointsman-shop-lb"), "{}", out.message);
        for app in ["front", "api"] {
            assert_eq!(s.roles(app).canary.map(|c| c.percent), Some(20), "{app}");
        }
        // One app's rollout owns its weight: the whole project canary is refused.
        apply(
            &rollout(&[10, 100]),
            &fleet(vec![
                container("web-blue-1").slot("blue").stable(),
                container("web-green-1").slot("green"),
            ]),
            &mut s,
            ctx(),
        )
        .unwrap();
        let out = apply(&Operation::ProjectAbort { project: "shop".into() }, &f, &mut s, ctx()).unwrap();
        assert_eq!(out.transitions.len(), 2, "{}", out.message);
        assert!(s.roles("front").canary.is_none() && s.roles("api").canary.is_none());
        assert!(s.roles("web").rollout.is_some(), "another app is not touched");
    }

    fn fleet(containers: Vec<Builder>) -> Fleet {
        let cs: Vec<Container> = containers.into_iter().map(|b| b.0).collect();
        Fleet::build(&cs, &Settings::default())
    }

    fn seeded(containers: Vec<Builder>) -> (State, Fleet) {
        let f = fleet(containers);
        let mut s = State::default();
        seed(&mut s, &f, at(0), Actor::Controller);
        (s, f)
    }

    #[test]
    fn seeding_gives_the_same_roles_whichever_container_comes_first() {
        let blue = || container("web-blue-1").slot("blue").stable();
        let green = || container("web-green-1").slot("green");
        // Green seen alone first (no stable yet), then both.
        let mut s = State::default();
        seed(&mut s, &fleet(vec![green()]), at(0), Actor::Controller);
        assert_eq!(s.roles("web").stable, None);
        seed(&mut s, &fleet(vec![green(), blue()]), at(0), Actor::Controller);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        // Blue first.
        let (s2, _) = seeded(vec![blue()]);
        assert_eq!(s2.roles("web").stable.as_deref(), Some("blue"));
    }

    #[test]
    fn once_an_app_has_a_stable_slot_labels_change_nothing() {
        let (mut s, _) = seeded(vec![container("web-blue-1").slot("blue").stable()]);
        let f = fleet(vec![
            container("web-blue-1").slot("blue").stable(),
            container("web-green-1").slot("green").stable(),
        ]);
        let out = seed(&mut s, &f, at(0), Actor::Controller);
        assert!(out.transitions.is_empty());
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        assert_eq!(out.notices.len(), 1, "the overruled label is reported");
    }

    #[test]
    fn of_two_slots_labelled_stable_in_one_listing_the_oldest_container_wins() {
        let (s, _) = seeded(vec![
            container("web-a-1").slot("a").stable().created("2026-11-26T05:00:09Z"),
            container("web-b-1").slot("b").stable().created("2026-11-26T05:00:01Z"),
        ]);
        assert_eq!(s.roles("web").stable.as_deref(), Some("b"));
    }

    #[test]
    fn promote_requires_every_container_of_the_candidate_ready() {
        let (mut s, f) = seeded(vec![
            container("web-blue-1").slot("blue").stable(),
            container("web-green-1").slot("green").healthy(),
            container("web-green-2").slot("green").health("starting"),
        ]);
        let err = promote(&mut s, &f, "web", "pointsman.app", false, Actor::Cli, at(1)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("slot green") && msg.contains("web-green-2 is still starting") && msg.contains("--force"),
            "{msg}"
        );
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        let t = promote(&mut s, &f, "web", "pointsman.app", true, Actor::Cli, at(1)).unwrap();
        assert_eq!((t.from.as_deref(), t.to.as_str()), (Some("blue"), "green"));
        assert_eq!(s.roles("web").previous.as_deref(), Some("blue"));
    }

    #[test]
    fn promote_takes_the_pinned_candidate_else_the_latest_started() {
        let cs = || {
            vec![
                container("web-blue-1").slot("blue").stable(),
                container("web-old-1").slot("old").started("2026-11-26T05:01:00Z"),
                container("web-new-1").slot("new").started("2026-11-26T05:09:00Z"),
            ]
        };
        let (mut s, f) = seeded(cs());
        assert_eq!(
            promote(&mut s, &f, "web", "", false, Actor::Cli, at(1)).unwrap().to,
            "new"
        );
        let (mut s, f) = seeded(cs());
        pin(
            &mut s,
            &Target {
                app: "web".into(),
                slot: "old".into(),
            },
            Actor::Cli,
            at(1),
        )
        .unwrap();
        assert_eq!(
            promote(&mut s, &f, "web", "", false, Actor::Cli, at(1)).unwrap().to,
            "old"
        );
    }

    #[test]
    fn the_stable_slot_cannot_be_pinned_as_candidate() {
        let (mut s, _) = seeded(vec![container("web-blue-1").slot("blue").stable()]);
        let err = pin(
            &mut s,
            &Target {
                app: "web".into(),
                slot: "blue".into(),
            },
            Actor::Cli,
            at(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("promote web"), "names the next step: {err}");
    }

    #[test]
    fn rollback_needs_a_previous_slot_with_a_routable_container() {
        let (mut s, f) = seeded(vec![
            container("web-blue-1").slot("blue").stable(),
            container("web-green-1").slot("green"),
        ]);
        assert!(matches!(
            rollback(&mut s, &f, "web", Actor::Cli, at(1)),
            Err(Refusal::NoPrevious { .. })
        ));
        promote(&mut s, &f, "web", "", false, Actor::Cli, at(1)).unwrap();
        let down = fleet(vec![
            container("web-blue-1").slot("blue").stable().stopped(),
            container("web-green-1").slot("green"),
        ]);
        assert!(matches!(
            rollback(&mut s, &down, "web", Actor::Cli, at(2)),
            Err(Refusal::PreviousNotRoutable { .. })
        ));
        assert_eq!(rollback(&mut s, &f, "web", Actor::Cli, at(2)).unwrap().to, "blue");
    }

    #[test]
    fn targets_resolve_by_name_id_prefix_or_app_slot() {
        let f = fleet(vec![
            container("web-blue-1").slot("blue"),
            container("web-green-1").slot("green"),
        ]);
        let want = Target {
            app: "web".into(),
            slot: "green".into(),
        };
        assert_eq!(find_target(&f, "web-green-1").unwrap(), want);
        assert_eq!(find_target(&f, "/web-green-1").unwrap(), want);
        assert_eq!(find_target(&f, "web/green").unwrap(), want);
        let id = f.app("web").unwrap().slots["green"].members[0].id.clone();
        assert_eq!(find_target(&f, &id[..20]).unwrap(), want);
        assert!(
            matches!(find_target(&f, &id[..8]), Err(Refusal::AmbiguousContainer { .. })),
            "web- is shared"
        );
        assert!(matches!(
            find_target(&f, "web/purple"),
            Err(Refusal::UnknownSlot { .. })
        ));
        assert!(matches!(find_target(&f, "nope"), Err(Refusal::UnknownContainer { .. })));
        assert!(matches!(find_target(&f, "shop/blue"), Err(Refusal::UnknownApp { .. })));
    }

    #[test]
    fn the_cli_and_the_controller_apply_the_same_operation_values() {
        let (mut s, f) = seeded(vec![
            container("web-blue-1").slot("blue").stable(),
            container("web-green-1").slot("green"),
        ]);
        let ctx = Context {
            now: at(5),
            by: Actor::Cli,
            app_label: "pointsman.app",
        };
        let op = Operation::Relabel {
            target: "web-green-1".into(),
            role: Role::Stable,
        };
        assert_eq!(op.scope(), Scope::Container("web-green-1"));
        let out = apply(&op, &f, &mut s, ctx).unwrap();
        assert_eq!(out.apps, BTreeSet::from(["web".to_string()]));
        assert!(
            out.message.contains("slot green is now stable (was blue)"),
            "{}",
            out.message
        );
        let again = apply(&op, &f, &mut s, ctx).unwrap();
        assert!(again.transitions.is_empty() && again.message.contains("nothing to do"));
        let before = s.clone();
        let refused = apply(&Operation::Rollback { app: "shop".into() }, &f, &mut s, ctx);
        assert!(matches!(refused, Err(Refusal::UnknownApp { .. })));
        assert_eq!(s, before, "a refusal changes nothing");
        let back = apply(&Operation::Rollback { app: "web".into() }, &f, &mut s, ctx).unwrap();
        assert_eq!(back.transitions[0].to, "blue");
        assert_eq!(
            Operation::Promote {
                app: "web".into(),
                force: false
            }
            .scope(),
            Scope::App("web")
        );
    }

    fn ctx() -> Context<'static> {
        Context {
            now: at(10),
            by: Actor::Cli,
            app_label: "pointsman.app",
        }
    }

    fn blue_green() -> (State, Fleet) {
        seeded(vec![
            container("web-blue-1").slot("blue").stable(),
            container("web-green-1").slot("green"),
        ])
    }

    #[test]
    fn canary_and_mirror_set_a_share_for_the_candidate_and_a_role_change_resets_them() {
        let (mut s, f) = blue_green();
        let out = apply(
            &Operation::Canary {
                app: "web".into(),
                percent: 10,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        assert!(
            out.message.contains("10% of new visitors go to slot green"),
            "{}",
            out.message
        );
        assert_eq!(
            s.roles("web").canary,
            Some(Share {
                slot: "green".into(),
                percent: 10
            })
        );
        assert_eq!(
            s.history.back().unwrap().detail.as_deref(),
            Some("canary weight 0% → 10%")
        );
        apply(
            &Operation::Mirror {
                app: "web".into(),
                percent: 20,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        apply(
            &Operation::Promote {
                app: "web".into(),
                force: false,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        let roles = s.roles("web");
        assert_eq!(
            (roles.canary, roles.mirror),
            (None, None),
            "promote resets weight and mirror"
        );
        let (mut s, f) = blue_green();
        apply(
            &Operation::Canary {
                app: "web".into(),
                percent: 30,
            },
            &f,
            &mut s,
            ctx(),
        )
        .unwrap();
        let out = apply(&Operation::Abort { app: "web".into() }, &f, &mut s, ctx()).unwrap();
        assert!(out.message.contains("served by blue again"), "{}", out.message);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"), "abort keeps roles");
        assert!(s.roles("web").canary.is_none());
    }

    fn rollout(steps: &[u8]) -> Operation {
        Operation::Rollout {
            app: "web".into(),
            steps: steps.to_vec(),
            pause_ms: 5000,
            analysis: None,
        }
    }

    fn judge_with(s: &mut State, f: &Fleet, j: Judgement) -> Outcome {
        apply(
            &Operation::Judge {
                app: "web".into(),
                judgement: j,
            },
            f,
            s,
            ctx(),
        )
        .unwrap()
    }

    #[test]
    fn a_rollout_steps_through_its_weights_and_promotes_after_the_last() {
        let (mut s, f) = blue_green();
        apply(&rollout(&[10, 50, 100]), &f, &mut s, ctx()).unwrap();
        assert_eq!(s.roles("web").canary.unwrap().percent, 10);
        let refused = apply(
            &Operation::Canary {
                app: "web".into(),
                percent: 40,
            },
            &f,
            &mut s,
            ctx(),
        );
        assert!(
            matches!(refused, Err(Refusal::RolloutRunning { .. })),
            "the plan owns the weight"
        );
        // The next steps it names work while the rollout runs (`rollout web --wait` would be
        // refused the same way, so it must not be offered).
        let hint = refused.unwrap_err().to_string();
        assert!(
            hint.contains("`pointsman status web`") && hint.contains("`pointsman abort web`"),
            "{hint}"
        );
        assert!(!hint.contains("rollout web"), "{hint}");
        judge_with(&mut s, &f, Judgement::Pass("ok".into()));
        assert_eq!(s.roles("web").canary.unwrap().percent, 50);
        judge_with(&mut s, &f, Judgement::Pass("ok".into()));
        assert_eq!(s.roles("web").canary.unwrap().percent, 100);
        let done = judge_with(&mut s, &f, Judgement::Pass("ok".into()));
        assert!(done.message.contains("rollout completed"), "{}", done.message);
        let roles = s.roles("web");
        assert_eq!(roles.stable.as_deref(), Some("green"));
        assert!(roles.rollout.is_none() && roles.canary.is_none());
        let actions: Vec<Action> = s.history.iter().map(|t| t.action).collect();
        assert_eq!(
            actions[1..],
            [Action::Rollout, Action::Step, Action::Step, Action::Promote],
            "every step is in the history"
        );
    }

    #[test]
    fn a_breach_aborts_at_once_and_too_little_traffic_extends_three_times_then_aborts() {
        let (mut s, f) = blue_green();
        apply(&rollout(&[10, 100]), &f, &mut s, ctx()).unwrap();
        let out = judge_with(&mut s, &f, Judgement::Breach("error ratio 0.05 is above 0.01".into()));
        assert!(
            out.message
                .contains("rollout aborted at step 1 of 2 (10%): error ratio 0.05"),
            "{}",
            out.message
        );
        assert!(s.roles("web").canary.is_none() && s.roles("web").rollout.is_none());

        apply(&rollout(&[10, 100]), &f, &mut s, ctx()).unwrap();
        for n in 1..=MAX_EXTENSIONS {
            let out = judge_with(&mut s, &f, Judgement::NotEnough("3 of 20 requests".into()));
            assert!(out.message.contains(&format!("extended ({n} of 3)")), "{}", out.message);
        }
        let out = judge_with(&mut s, &f, Judgement::NotEnough("3 of 20 requests".into()));
        assert!(out.message.contains("not enough traffic to judge"), "{}", out.message);
        assert!(s.roles("web").rollout.is_none());
    }

    #[test]
    fn history_keeps_the_last_thousand_transitions() {
        let mut s = State::default();
        for i in 0..1500 {
            let slot = if i % 2 == 0 { "a" } else { "b" };
            make_stable(
                &mut s,
                &Target {
                    app: "web".into(),
                    slot: slot.into(),
                },
                Action::Relabel,
                Actor::Cli,
                at(i),
            );
        }
        assert_eq!(s.history.len(), crate::core::state::HISTORY_LIMIT);
        assert_eq!(s.history.back().unwrap().to, "b");
    }

    fn admit(policy: Admit) -> Settings {
        Settings {
            admit: policy,
            ..Settings::default()
        }
    }

    /// The containers of `fleet` left out, by name, with the label each is refused on.
    fn refused(f: &Fleet) -> Vec<(String, String)> {
        f.errors().into_iter().map(|e| (e.container, e.label)).collect()
    }

    fn admitted(s: &mut State, containers: Vec<Builder>, settings: &Settings) -> (Fleet, Seeding) {
        let cs: Vec<Container> = containers.into_iter().map(|b| b.0).collect();
        let mut f = Fleet::build(&cs, settings);
        let seeding = seed_all_admitted(s, &mut f, settings, at(0), Actor::Controller);
        (f, seeding)
    }

    #[test]
    fn with_admit_compose_project_only_the_owners_project_joins_a_seeded_app() {
        let settings = admit(Admit::ComposeProject);
        let owner = || container("web-blue-1").slot("blue").stable().of("shop", "web");
        let mut s = State::default();
        let (f, _) = admitted(&mut s, vec![owner()], &settings);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        assert_eq!(
            s.roles("web").owner.and_then(|o| o.project).as_deref(),
            Some("shop"),
            "the owner project is recorded when the app is seeded"
        );
        assert!(f.errors().is_empty());

        // An intruder of another project, and one with no project at all, both labelled stable
        // and older than the owner: left out, named, with the way to admit them.
        let intruder = container("evil-1")
            .slot("green")
            .stable()
            .created("2020-01-01T00:00:00Z")
            .of("evil", "web");
        let mut bare = container("bare-1").slot("red").stable().created("2020-01-01T00:00:00Z");
        bare.0
            .config
            .labels
            .as_mut()
            .unwrap()
            .remove("com.docker.compose.project");
        let teammate = container("web-green-2").slot("green2").of("shop", "web");
        let (f, seeding) = admitted(&mut s, vec![owner(), intruder, bare, teammate], &settings);
        let slots: Vec<&String> = f.app("web").unwrap().slots.keys().collect();
        assert_eq!(slots, ["blue", "green2"], "the owner's project joins, nobody else");
        assert_eq!(
            refused(&f),
            [
                ("bare-1".to_string(), "com.docker.compose.project".to_string()),
                ("evil-1".to_string(), "com.docker.compose.project".to_string()),
            ]
        );
        let evil = f.error_of("evil-1").unwrap().to_string();
        for part in [
            "container evil-1",
            "app web belongs to Compose project shop",
            "is \"evil\"",
            "deploy it from that Compose project",
            "--admit any",
        ] {
            assert!(evil.contains(part), "{part:?} in {evil}");
        }
        assert!(
            seeding.notices.is_empty(),
            "a held container is no slot of the app: {:?}",
            seeding.notices
        );
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        assert!(matches!(
            find_target(&f, "evil-1"),
            Err(Refusal::BadContainer(e)) if e.container == "evil-1"
        ));
    }

    #[test]
    fn the_recorded_owner_outlives_the_seeding_containers() {
        let settings = admit(Admit::ComposeProject);
        let mut s = State::default();
        admitted(
            &mut s,
            vec![container("web-blue-1").slot("blue").stable().of("shop", "web")],
            &settings,
        );
        // Every container of shop is gone; an intruder labelled stable comes alone.
        let (f, seeding) = admitted(
            &mut s,
            vec![container("evil-1").slot("green").stable().of("evil", "web")],
            &settings,
        );
        assert!(f.app("web").is_none(), "the intruder is no member of web");
        assert!(seeding.transitions.is_empty());
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        assert_eq!(
            refused(&f),
            [("evil-1".to_string(), "com.docker.compose.project".to_string())]
        );
        // The owner's project redeploys: it joins again.
        let (f, _) = admitted(
            &mut s,
            vec![
                container("evil-1").slot("green").stable().of("evil", "web"),
                container("web-blue-2").slot("blue").of("shop", "web"),
            ],
            &settings,
        );
        assert_eq!(f.app("web").unwrap().slots.keys().collect::<Vec<_>>(), ["blue"]);
    }

    #[test]
    fn an_app_seeded_before_the_policy_gets_the_owner_of_its_stable_slot() {
        let mut s = State::default();
        let shop = || container("web-blue-1").slot("blue").stable().of("shop", "web");
        let evil = || container("evil-1").slot("green").of("evil", "web");
        let (f, _) = admitted(&mut s, vec![shop(), evil()], &Settings::default());
        assert_eq!(f.app("web").unwrap().slots.len(), 2, "--admit any: today's behaviour");
        assert_eq!(s.roles("web").owner, None, "and nothing new in the state");
        let (f, _) = admitted(&mut s, vec![shop(), evil()], &admit(Admit::ComposeProject));
        assert_eq!(s.roles("web").owner.and_then(|o| o.project).as_deref(), Some("shop"));
        assert_eq!(f.app("web").unwrap().slots.keys().collect::<Vec<_>>(), ["blue"]);
    }

    #[test]
    fn with_admit_label_only_the_owner_mark_joins() {
        let settings = admit(Admit::Label);
        let mut s = State::default();
        let owner = || container("web-blue-1").slot("blue").stable().label("owner", "team-a");
        admitted(&mut s, vec![owner()], &settings);
        assert_eq!(s.roles("web").owner.and_then(|o| o.mark).as_deref(), Some("team-a"));
        let (f, _) = admitted(
            &mut s,
            vec![
                owner(),
                container("web-green-1").slot("green").label("owner", "team-a"),
                container("evil-1").slot("evil").label("owner", "team-b"),
                container("bare-1").slot("bare"),
            ],
            &settings,
        );
        assert_eq!(
            f.app("web").unwrap().slots.keys().collect::<Vec<_>>(),
            ["blue", "green"]
        );
        assert_eq!(
            refused(&f),
            [
                ("bare-1".to_string(), "pointsman.owner".to_string()),
                ("evil-1".to_string(), "pointsman.owner".to_string()),
            ]
        );
        assert!(f.error_of("evil-1").unwrap().reason.contains("owner mark team-a"));
    }

    #[test]
    fn incremental_admission_gives_the_fleet_a_full_build_gives() {
        let settings = admit(Admit::ComposeProject);
        let mut s = State::default();
        let cs = [
            container("web-blue-1").slot("blue").stable().of("shop", "web").0,
            container("evil-1").slot("green").of("evil", "web").0,
        ];
        let mut f = Fleet::build(&cs[..1], &settings);
        seed_all_admitted(&mut s, &mut f, &settings, at(0), Actor::Controller);
        // The intruder arrives as an event after the owner is known: held at once.
        let touched = f.upsert(&cs[1], &settings);
        assert!(touched.contains("web"));
        assert_eq!(f.app("web").unwrap().slots.len(), 1);
        assert_eq!(refused(&f).len(), 1);
        // It goes away: nothing left of it.
        f.remove(&cs[1].id);
        assert!(f.errors().is_empty());
        // The owner record dropped (an operator's --reconfigure --admit any rebuilds): it joins.
        f.upsert(&cs[1], &settings);
        f.set_owner("web", None, &Settings::default());
        assert_eq!(f.app("web").unwrap().slots.len(), 2);
    }

    #[test]
    fn a_stopped_container_never_seeds_a_stable_slot() {
        // Created (or exited) with version=stable: no role from it.
        let (s, _) = seeded(vec![
            container("web-blue-1").slot("blue").stable().stopped(),
            container("web-green-1").slot("green"),
        ]);
        assert_eq!(
            s.roles("web").stable,
            None,
            "a container that never ran holds no public route"
        );
        assert!(s.history.is_empty());
        // Once it runs, its label seeds as usual.
        let (s, _) = seeded(vec![container("web-blue-1").slot("blue").stable()]);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
    }

    #[test]
    fn roles_of_gone_apps_are_kept_for_the_most_recently_gone_thousand() {
        let mut s = State::default();
        let n = GONE_APPS_KEPT + 5;
        for i in 0..n {
            s.apps.insert(
                format!("app{i:05}"),
                AppRoles {
                    stable: Some("blue".into()),
                    ..AppRoles::default()
                },
            );
        }
        let (_, mut f) = seeded(vec![container("web-blue-1").slot("blue").stable()]);
        s.apps.insert("web".into(), s.apps["app00000"].clone());
        for i in 0..n {
            let forgotten = forget_gone(&mut s, &f, [format!("app{i:05}").as_str(), "web"], at(i as i64));
            assert_eq!(forgotten.len(), usize::from(i >= GONE_APPS_KEPT), "at {i}");
        }
        assert_eq!(
            s.apps.len(),
            GONE_APPS_KEPT + 1,
            "the thousand most recently gone, and web"
        );
        assert!(!s.apps.contains_key("app00000") && s.apps.contains_key("app00005"));
        assert_eq!(s.roles("web").gone, None, "an app with containers is not gone");
        // web goes, then comes back before it is forgotten: unmarked, roles intact.
        let web = f.app("web").unwrap().members().next().unwrap().id.clone();
        f.remove(&web);
        forget_gone(&mut s, &f, ["web"], at(10_000));
        assert_eq!(s.roles("web").gone, Some(at(10_000)));
        let (_, back) = seeded(vec![container("web-blue-1").slot("blue").stable()]);
        forget_gone(&mut s, &back, ["web"], at(10_001));
        assert_eq!(s.roles("web").gone, None);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
    }
}
