//! `pointsman run`: one task owns the model; every source feeds it through one stream of
//! [`Input`]s (Docker's events and resyncs from the watcher, a clock tick; later metric samples
//! and commands).
//!
//! Each burst of inputs is applied synchronously and without I/O ([`Controller::apply`]), which
//! marks the apps it touched; then one [`Controller::reconcile`] renders the whole latest state
//! of just those apps — never a queue of diffs, never the whole fleet for one event. A resync
//! swaps the snapshot and re-checks every app against the sink, which writes only what differs.
//!
//! Every reconcile is a transaction of the state store, so it re-reads the state first: a CLI
//! change made meanwhile is never overwritten, and the apps it changed are re-rendered. Until
//! the first full listing arrives nothing is written, so a restart never removes a file for an
//! app it has not seen yet. On shutdown every file stays as it is; Traefik keeps routing while
//! pointsman is down or being upgraded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::backend::foreign::Scanner;
use crate::backend::{BackendError, ConfigSink, StateStore, Updates};
use crate::core::container::Container;
use crate::core::model::{Fleet, Touched};
use crate::core::names;
use crate::core::ops::{self, Judgement, Operation};
use crate::core::render;
use crate::core::settings::{self, Choices, Settings};
use crate::core::state::{Actor, AppRoles, Rollout};
use crate::docker::DockerApi;
use crate::docker::watcher::{self, WatchEvent, WatchOptions};
use crate::observe::Observer;
use crate::traefik::metrics::{self, Limits, Sample, Verdict, Window};

/// How often the controller looks at the clock: retries a failed write, picks up role and
/// settings changes made by the CLI, rescans foreign files.
pub const TICK: Duration = Duration::from_secs(1);

/// Everything the controller reacts to, in one stream.
#[derive(Debug)]
pub enum Input {
    Watch(WatchEvent),
    Tick,
    /// A scrape of Traefik's metrics for the candidate of a rollout step (the step is named by
    /// when it started, so a late sample of a finished step is ignored).
    Sample {
        app: String,
        step_since: jiff::Timestamp,
        counters: Result<Sample, String>,
    },
}

/// Why `run` stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Fatal: the state cannot be trusted, so routing must not change.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The recorded label prefix changed: labels must be read again from Docker under the new
    /// prefix, which a restart does.
    #[error(
        "the recorded label prefix changed from {from} to {to} (pointsman --reconfigure); restart the controller to read labels under the new prefix"
    )]
    PrefixChanged { from: String, to: String },
}

enum Failure {
    Backend(BackendError),
    /// Another writer recorded new settings (`--reconfigure`).
    Settings(Box<Settings>),
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Failure {
        Failure::Backend(e)
    }
}

/// Counters for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub reconciles: u64,
    pub apps_rendered: u64,
    pub writes: u64,
}

pub struct Controller<S, K> {
    /// What the controller renders with: the recorded settings.
    settings: Settings,
    /// The controller's own flags, recorded where nobody chose before.
    flags: Choices,
    store: S,
    sink: K,
    /// The directory to scan for foreign files Traefik cannot load (directory sink only).
    foreign: Option<(PathBuf, Scanner)>,
    snapshot: HashMap<String, Container>,
    fleet: Fleet,
    synced: bool,
    /// Apps to render at the next reconcile.
    dirty: Touched,
    /// A resync arrived: re-check every app against the sink and remove stale units.
    full: bool,
    /// Roles as of the last reconcile, to find apps another writer changed.
    roles_seen: BTreeMap<String, AppRoles>,
    /// App → the unit it was last published in (see `core::model::PROJECT_UNIT_PREFIX`), so
    /// an app that moves to another unit is taken out of the old one in the same publish.
    units: BTreeMap<String, String>,
    seen_errors: BTreeSet<String>,
    seen_notices: BTreeMap<String, Vec<String>>,
    /// `(app, slot)` → a one-line description, to log only what changed.
    seen_slots: BTreeMap<(String, String), String>,
    seen_broken: BTreeSet<String>,
    last_scan: Option<tokio::time::Instant>,
    /// Operations the controller decided on (rollout verdicts), applied at the next reconcile.
    pending: Vec<Operation>,
    /// Rollouts running, as of the last reconcile.
    rollouts: BTreeMap<String, Rollout>,
    /// Per app: the step (by start) a window belongs to, when the window started, and what it
    /// counted so far, Traefik by Traefik ([`Window`]).
    baselines: HashMap<String, (jiff::Timestamp, jiff::Timestamp, Window)>,
    /// Apps with a scrape in flight.
    scraping: BTreeSet<String>,
    /// Where scrapes report back (the controller's own input stream).
    samples: Option<mpsc::Sender<Input>>,
    /// What operators see (`run --listen`): told of each input, state and reconcile.
    observer: Arc<Observer>,
    /// Traefik's name for the provider the configuration goes through (`file`, `redis`).
    provider: &'static str,
    pub stats: Stats,
}

impl<S: StateStore, K: ConfigSink> Controller<S, K> {
    /// A controller rendering with `settings`, the result of resolving its `flags` against the
    /// recorded choices (`core::settings::resolve`).
    pub fn new(settings: Settings, flags: Choices, store: S, sink: K, foreign_dir: Option<PathBuf>) -> Self {
        Controller {
            settings,
            flags,
            store,
            sink,
            foreign: foreign_dir.map(|d| (d, Scanner::default())),
            snapshot: HashMap::new(),
            fleet: Fleet::default(),
            synced: false,
            dirty: Touched::new(),
            full: false,
            roles_seen: BTreeMap::new(),
            units: BTreeMap::new(),
            seen_errors: BTreeSet::new(),
            seen_notices: BTreeMap::new(),
            seen_slots: BTreeMap::new(),
            seen_broken: BTreeSet::new(),
            last_scan: None,
            pending: Vec::new(),
            rollouts: BTreeMap::new(),
            baselines: HashMap::new(),
            scraping: BTreeSet::new(),
            samples: None,
            observer: Arc::new(Observer::new()),
            provider: "file",
            stats: Stats::default(),
        }
    }

    /// Reports to `observer` (shared with the HTTP server) instead of a private one.
    pub fn with_observer(mut self, observer: Arc<Observer>) -> Self {
        self.observer = observer;
        self
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Applies one input to the model. Synchronous and free of I/O.
    pub fn apply(&mut self, input: Input) {
        if let Input::Watch(event) = &input {
            self.observer.watched(event);
        }
        let event = match input {
            Input::Watch(e) => e,
            Input::Tick => {
                self.drive_rollouts(jiff::Timestamp::now());
                return;
            }
            Input::Sample {
                app,
                step_since,
                counters,
            } => {
                self.scraping.remove(&app);
                self.judge_sample(&app, step_since, counters, jiff::Timestamp::now());
                return;
            }
        };
        match event {
            WatchEvent::Resync(all) => {
                self.replace(all);
                self.synced = true;
                self.full = true;
            }
            WatchEvent::Upsert(c) => self.upsert(*c),
            WatchEvent::Remove(id) => {
                if self.snapshot.remove(&id).is_some() {
                    self.dirty.extend(self.fleet.remove(&id));
                }
            }
            WatchEvent::Stopping(id) => {
                // Docker still reports it running until it exits; the next inspect of this
                // container (its `die`) or a resync replaces this guess with Docker's word.
                if let Some(mut c) = self.snapshot.get(&id).cloned() {
                    c.state.running = false;
                    c.state.status = "stopping".into();
                    self.upsert(c);
                }
            }
            WatchEvent::Implied { id, change } => {
                if let Some(mut c) = self.snapshot.get(&id).cloned() {
                    change.apply_to(&mut c);
                    self.upsert(c);
                }
            }
            WatchEvent::Lost(_) => {}
        }
    }

    /// Makes `all` the containers the controller knows: only those that changed touch the
    /// fleet. A resync calls it and then re-checks everything; a shared store's leader calls it
    /// with every host's containers whenever a host publishes a change.
    pub fn replace(&mut self, all: Vec<Container>) {
        let mut next: HashMap<String, Container> = all.into_iter().map(|c| (c.id.clone(), c)).collect();
        for id in self.snapshot.keys().filter(|id| !next.contains_key(*id)) {
            self.dirty.extend(self.fleet.remove(id));
        }
        for (id, c) in &next {
            if self.snapshot.get(id) != Some(c) {
                self.dirty.extend(self.fleet.upsert(c, &self.settings));
            }
        }
        std::mem::swap(&mut self.snapshot, &mut next);
    }

    /// Where rollout scrapes report back (the controller's own input stream).
    pub fn with_samples(mut self, samples: mpsc::Sender<Input>) -> Self {
        self.samples = Some(samples);
        self
    }

    /// The Traefik provider pointsman's configuration is published through (`file`, `redis`):
    /// Traefik names services `NAME@PROVIDER` in its metrics.
    pub fn with_provider(mut self, provider: &'static str) -> Self {
        self.provider = provider;
        self
    }

    fn upsert(&mut self, c: Container) {
        if self.snapshot.get(&c.id) == Some(&c) {
            return;
        }
        self.dirty.extend(self.fleet.upsert(&c, &self.settings));
        self.snapshot.insert(c.id.clone(), c);
    }

    /// Decides on rollouts whose step is due: without analysis a step passes when its pause is
    /// over; with analysis a scrape of Traefik's metrics is started, judged when it arrives.
    fn drive_rollouts(&mut self, now: jiff::Timestamp) {
        self.baselines.retain(|app, _| self.rollouts.contains_key(app));
        for (app, r) in &self.rollouts {
            if self.pending.iter().any(|op| op.scope() == ops::Scope::App(app)) {
                continue;
            }
            let Some(analysis) = &r.analysis else {
                if step_over(r, r.since, now) {
                    self.pending.push(Operation::Judge {
                        app: app.clone(),
                        judgement: Judgement::Pass(format!("held {} ms, not judged (--no-analysis)", r.pause_ms)),
                    });
                }
                continue;
            };
            let Some(tx) = self.samples.clone() else { continue };
            if !self.scraping.insert(app.clone()) {
                continue;
            }
            let (app, step_since) = (app.clone(), r.since);
            // Public (weighted) traffic to the candidate only: preview requests, which anyone
            // can send with the candidate's cookie or header, go to its slot service instead.
            let (url, service) = (analysis.metrics.clone(), judged_service(&app, &r.slot, self.provider));
            tokio::spawn(async move {
                let counters = metrics::service_sample(&url, &service).await.map_err(|e| e.to_string());
                let _ = tx
                    .send(Input::Sample {
                        app,
                        step_since,
                        counters,
                    })
                    .await;
            });
        }
    }

    /// Judges a rollout step from a sample of its candidate's counters: the first sample of a
    /// step is its baseline (the window starts then, so a controller restarted mid-step judges
    /// a whole pause of its own), each later one adds what every Traefik counted since its
    /// previous reading ([`Window`]: a Traefik restarting mid-step counts from its restart); a
    /// breach aborts at once; when the pause is over the step passes or, with too little
    /// traffic, is extended. A sample missing a Traefik is not judged.
    fn judge_sample(
        &mut self,
        app: &str,
        step_since: jiff::Timestamp,
        counters: Result<Sample, String>,
        now: jiff::Timestamp,
    ) {
        let Some(r) = self.rollouts.get(app) else { return };
        let Some(analysis) = &r.analysis else { return };
        if r.since != step_since || self.pending.iter().any(|op| op.scope() == ops::Scope::App(app)) {
            return;
        }
        let counters = match counters {
            Ok(c) => c,
            Err(e) => {
                warn!(app, "rollout step not judged: {e}");
                let window_start = self.baselines.get(app).map_or(r.since, |b| b.1);
                if step_over(r, window_start, now) {
                    self.pending.push(Operation::Judge {
                        app: app.to_string(),
                        judgement: Judgement::NotEnough(e),
                    });
                }
                return;
            }
        };
        let baseline = match self.baselines.get_mut(app) {
            Some(b) if b.0 == step_since => b,
            _ => {
                self.baselines
                    .insert(app.to_string(), (step_since, now, Window::new(counters)));
                return;
            }
        };
        baseline.2.advance(counters);
        let limits = Limits {
            max_error_ratio: analysis.max_error_ratio,
            max_p99: analysis.max_p99_ms.map(Duration::from_millis),
            min_requests: analysis.min_requests,
        };
        let verdict = metrics::judge_window(baseline.2.counted(), &limits);
        let over = step_over(r, baseline.1, now);
        let judgement = match verdict {
            Verdict::Breach { .. } => Judgement::Breach(verdict.to_string()),
            Verdict::Pass { .. } if over => Judgement::Pass(verdict.to_string()),
            Verdict::NotEnoughTraffic { .. } if over => Judgement::NotEnough(verdict.to_string()),
            _ => return,
        };
        self.pending.push(Operation::Judge {
            app: app.to_string(),
            judgement,
        });
    }

    /// Whether there is something to write or decide.
    pub fn has_work(&self) -> bool {
        !self.dirty.is_empty() || self.full || !self.pending.is_empty()
    }

    /// Whether a full listing has arrived; before it, nothing is written.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Re-reads the state in a transaction, seeds and renders the apps that changed (by an
    /// input, or by another writer's change of roles), and publishes what differs.
    pub fn reconcile(&mut self) -> Result<(), RunError> {
        loop {
            match self.try_reconcile() {
                Ok(()) => return Ok(()),
                Err(Failure::Settings(recorded)) => self.adopt(*recorded)?,
                Err(Failure::Backend(e)) => return Err(e.into()),
            }
        }
    }

    /// Another writer recorded new settings: read every container again under them.
    fn adopt(&mut self, recorded: Settings) -> Result<(), RunError> {
        if recorded.label_prefix != self.settings.label_prefix {
            return Err(RunError::PrefixChanged {
                from: self.settings.label_prefix.clone(),
                to: recorded.label_prefix,
            });
        }
        info!(settings = ?recorded, "settings changed in the state (--reconfigure); rendering every app with them");
        self.settings = recorded;
        self.fleet = Fleet::build(self.snapshot.values(), &self.settings);
        self.full = true;
        Ok(())
    }

    fn try_reconcile(&mut self) -> Result<(), Failure> {
        let started = std::time::Instant::now();
        let full = std::mem::take(&mut self.full);
        let mut apps = std::mem::take(&mut self.dirty);
        let restore = |this: &mut Self, apps: Touched| {
            this.dirty.extend(apps);
            this.full |= full;
        };
        let mut published = BTreeSet::new();
        if full {
            self.sink.forget();
            apps.extend(self.fleet.app_names().cloned());
            match self.sink.published() {
                Ok(units) => published = units,
                Err(e) => {
                    restore(self, apps);
                    return Err(e.into());
                }
            }
        }
        let pending = std::mem::take(&mut self.pending);
        let settings = &self.settings;
        let flags = &self.flags;
        let fleet = &mut self.fleet;
        let roles_seen = &self.roles_seen;
        let units_seen = &self.units;
        let observer = &self.observer;
        let app_label = settings.label("app");
        let result = self.store.transact(&mut self.sink, |state| {
            // Record the controller's choices where nobody chose; if another writer chose
            // differently (--reconfigure), the record wins and the controller adopts it.
            let effective = match settings::resolve(&state.settings, flags, false) {
                Ok((effective, record)) => {
                    state.settings = record;
                    effective
                }
                Err(_) => state.settings.effective(),
            };
            if effective != *settings {
                return Err(Failure::Settings(Box::new(effective)));
            }
            let mut apps = apps.clone();
            // Roles another writer changed since the last reconcile.
            for (name, roles) in &state.apps {
                if roles_seen.get(name) != Some(roles) {
                    apps.insert(name.clone());
                }
            }
            apps.extend(roles_seen.keys().filter(|n| !state.apps.contains_key(*n)).cloned());
            let now = jiff::Timestamp::now();
            apps.extend(fleet.held_apps());
            let (seeding, admitted) = ops::seed_admitted(
                state,
                fleet,
                settings,
                apps.clone().iter().map(String::as_str),
                now,
                Actor::Controller,
            );
            apps.extend(admitted);
            let fleet = &*fleet;
            ops::forget_gone(state, fleet, apps.iter().map(String::as_str), now);
            let ctx = ops::Context {
                now,
                by: Actor::Controller,
                app_label: &app_label,
            };
            let mut decided = Vec::new();
            for op in &pending {
                match ops::apply(op, fleet, state, ctx) {
                    Ok(outcome) => {
                        apps.extend(outcome.apps.iter().cloned());
                        if !outcome.transitions.is_empty() {
                            decided.push(outcome.message);
                        }
                    }
                    // Someone else ended the rollout meanwhile: nothing to decide any more.
                    Err(refusal) => debug!("{refusal}"),
                }
            }
            for app in &apps {
                match fleet.claim(app) {
                    Some(claim) => state.claims.insert(app.clone(), claim),
                    None => state.claims.remove(app),
                };
            }
            if full {
                state.claims.retain(|app, _| fleet.claim(app).is_some());
            }
            // Render by unit: each touched app's unit now and the one it was published in (at
            // first sight: its own, so a file an older layout left is removed), with every app
            // of those units; after a resync also every unit published before.
            let mut units = published.clone();
            for app in &apps {
                units.extend(fleet.unit_of(app));
                units.insert(units_seen.get(app).cloned().unwrap_or_else(|| app.clone()));
            }
            let updates: Updates = render::render_units(fleet, state, settings, units.iter().map(String::as_str));
            let mut rendered = apps;
            for unit in &units {
                rendered.extend(fleet.unit_apps(unit).into_iter().map(|a| a.name.clone()));
            }
            let roles = (&state.apps != roles_seen).then(|| state.apps.clone());
            observer.state_seen(state);
            Ok(((seeding, rendered, roles, decided), updates))
        });
        let ((seeding, rendered, roles, decided), changes) = match result {
            Ok(done) => done,
            Err(e) => {
                restore(self, apps);
                self.pending.extend(pending);
                return Err(e);
            }
        };
        for message in decided {
            info!("{message}");
        }
        for app in &rendered {
            match self.fleet.unit_of(app) {
                Some(unit) => self.units.insert(app.clone(), unit),
                None => self.units.remove(app),
            };
        }
        if let Some(roles) = roles {
            self.rollouts = roles
                .iter()
                .filter_map(|(app, r)| r.rollout.clone().map(|r| (app.clone(), r)))
                .collect();
            self.roles_seen = roles;
        }
        self.stats.reconciles += 1;
        self.stats.apps_rendered += rendered.len() as u64;
        self.stats.writes += (changes.written.len() + changes.removed.len()) as u64;
        if !changes.is_empty() {
            debug!(
                written = ?changes.written,
                removed = ?changes.removed,
                apps = rendered.len(),
                us = started.elapsed().as_micros() as u64,
                "files updated"
            );
        }
        for t in &seeding.transitions {
            info!(app = %t.app, slot = %t.to, "slot is stable: its labels say so and the app had no stable slot");
        }
        self.log_news(&rendered, seeding.notices);
        if rendered.len() > RELEASE_AFTER {
            crate::sys::release_free_memory();
        }
        Ok(())
    }

    fn log_news(&mut self, apps: &Touched, notices: Vec<String>) {
        let errors: BTreeSet<String> = self.fleet.errors().iter().map(ToString::to_string).collect();
        for e in errors.difference(&self.seen_errors) {
            warn!("{e}");
        }
        self.seen_errors = errors;
        let mut by_app: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in notices {
            let app = n.split(':').next().unwrap_or("").trim_start_matches("app ").to_string();
            by_app.entry(app).or_default().push(n);
        }
        for app in apps {
            let now = by_app.remove(app).unwrap_or_default();
            let before = self.seen_notices.remove(app).unwrap_or_default();
            for n in now.iter().filter(|n| !before.contains(n)) {
                warn!("{n}");
            }
            if !now.is_empty() {
                self.seen_notices.insert(app.clone(), now);
            }
        }

        let state_roles = &self.roles_seen;
        for name in apps {
            let mut now = BTreeMap::new();
            if let Some(app) = self.fleet.app(name) {
                let resolved = app.resolve(&state_roles.get(name).cloned().unwrap_or_default());
                for slot in app.slots.values() {
                    let role = resolved.role_of(&slot.name);
                    let servers = slot.servers();
                    let line = format!(
                        "{role} with {} of {} containers routable{}",
                        servers.len(),
                        slot.members.len(),
                        if servers.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", servers.join(" "))
                        }
                    );
                    now.insert((app.name.clone(), slot.name.clone()), line);
                }
            }
            let range = (name.clone(), String::new())..(format!("{name}\u{0}"), String::new());
            let gone: Vec<(String, String)> = self
                .seen_slots
                .range(range)
                .filter(|(k, _)| &k.0 == name && !now.contains_key(*k))
                .map(|(k, _)| k.clone())
                .collect();
            for key in gone {
                info!(app = %key.0, slot = %key.1, "slot has no container left");
                self.seen_slots.remove(&key);
            }
            for (key, line) in now {
                if self.seen_slots.get(&key) != Some(&line) {
                    info!(app = %key.0, slot = %key.1, "{line}");
                    self.seen_slots.insert(key, line);
                }
            }
        }
    }

    /// Logs each foreign file Traefik cannot load once, and once more when it is fixed. At most
    /// once per tick: a directory of 1,000 files is listed, not on every event.
    fn warn_about_foreign_files(&mut self) {
        let now = tokio::time::Instant::now();
        if self.last_scan.is_some_and(|t| now.duration_since(t) < TICK) {
            return;
        }
        self.last_scan = Some(now);
        let Some((dir, scanner)) = self.foreign.as_mut() else {
            return;
        };
        let broken: BTreeSet<String> = scanner.scan(dir).iter().map(ToString::to_string).collect();
        for b in broken.difference(&self.seen_broken) {
            error!("{b}");
        }
        if broken.is_empty() && !self.seen_broken.is_empty() {
            info!("no broken foreign file left in the directory; Traefik reads changes again");
        }
        self.seen_broken = broken;
    }

    /// Runs the controller over `inputs` until they end or `shutdown` resolves. Returns an
    /// error only for a fatal problem (a corrupt state file); transient ones are logged and
    /// retried on the next tick.
    pub async fn drive(
        &mut self,
        inputs: impl Stream<Item = Input>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), RunError> {
        let inputs = inputs.fuse();
        tokio::pin!(inputs);
        tokio::pin!(shutdown);
        let mut failing = false;
        loop {
            let tick = tokio::select! {
                _ = &mut shutdown => {
                    info!("shutting down; the files stay as they are and Traefik keeps routing");
                    return Ok(());
                }
                input = inputs.next() => {
                    let Some(input) = input else { return Ok(()) };
                    let tick = matches!(input, Input::Tick);
                    self.apply(input);
                    // Coalesce a burst: apply everything already queued, render once.
                    while let Some(Some(input)) = inputs.next().now_or_never() {
                        self.apply(input);
                    }
                    tick
                }
            };
            if !self.synced || (failing && !tick) || !(tick || self.has_work()) {
                continue;
            }
            match self.reconcile_and_report() {
                Ok(()) => {
                    if failing {
                        info!("writing works again");
                    }
                    failing = false;
                }
                Err(RunError::Backend(e @ (BackendError::CorruptState { .. } | BackendError::InvalidState { .. }))) => {
                    return Err(e.into());
                }
                Err(e @ RunError::PrefixChanged { .. }) => return Err(e),
                Err(e) => {
                    error!("{e}; retrying in {}s", TICK.as_secs());
                    failing = true;
                }
            }
            self.warn_about_foreign_files();
        }
    }
}

/// A reconcile that rendered more apps than this (a resync) hands freed memory back.
const RELEASE_AFTER: usize = 16;

impl<S: StateStore, K: ConfigSink> Controller<S, K> {
    /// [`Controller::reconcile`], told to the observer (`run --listen`).
    pub fn reconcile_and_report(&mut self) -> Result<(), RunError> {
        let (started, fleet_changed) = (std::time::Instant::now(), self.has_work());
        self.observer.reconcile_started();
        let result = self.reconcile();
        self.observed(&result, started.elapsed(), fleet_changed);
        result
    }

    /// Tells the observer how a reconcile went and, after a successful one, what the fleet is.
    fn observed(&mut self, result: &Result<(), RunError>, took: Duration, fleet_changed: bool) {
        self.observer
            .reconciled(result.as_ref().map(drop).map_err(ToString::to_string), took);
        if result.is_ok() {
            let app_label = self.settings.label("app");
            self.observer
                .publish(&self.fleet, self.snapshot.values(), &app_label, fleet_changed);
        }
    }
}

/// Whether a rollout step that started at `since` (or whose window restarted then) has run
/// its pause by `now`.
fn step_over(r: &Rollout, since: jiff::Timestamp, now: jiff::Timestamp) -> bool {
    now.duration_since(since) >= jiff::SignedDuration::from_millis(r.pause_ms as i64)
}

/// Docker's events (through the watcher) and the clock, as one stream. Events come first when
/// both are ready; the stream ends when the watcher does.
pub fn inputs(watch: mpsc::Receiver<WatchEvent>, tick: Duration) -> impl Stream<Item = Input> {
    let (_, samples) = mpsc::channel(1);
    inputs_with(watch, samples, tick)
}

/// [`inputs`] with a third source: inputs the controller's own tasks send back (metric samples).
pub fn inputs_with(
    watch: mpsc::Receiver<WatchEvent>,
    own: mpsc::Receiver<Input>,
    tick: Duration,
) -> impl Stream<Item = Input> {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures::stream::unfold((watch, own, interval), |(mut rx, mut own, mut interval)| async move {
        tokio::select! {
            biased;
            event = rx.recv() => event.map(|e| (Input::Watch(e), (rx, own, interval))),
            Some(input) = own.recv() => Some((input, (rx, own, interval))),
            _ = interval.tick() => Some((Input::Tick, (rx, own, interval))),
        }
    })
}

/// Runs the controller on `docker` until `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub async fn run<A: DockerApi, S: StateStore, K: ConfigSink>(
    docker: Arc<A>,
    settings: Settings,
    flags: Choices,
    store: S,
    sink: K,
    foreign_dir: Option<PathBuf>,
    opts: WatchOptions,
    observer: Arc<Observer>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (tx, rx) = mpsc::channel(1024);
    let watcher = tokio::spawn(watcher::run(docker, settings.clone(), opts, tx));
    let mut ctl = Controller::new(settings, flags, store, sink, foreign_dir).with_observer(observer);
    let (own_tx, own_rx) = mpsc::channel(64);
    ctl.samples = Some(own_tx);
    let result = ctl.drive(inputs_with(rx, own_rx, TICK), shutdown).await;
    watcher.abort();
    result
}

/// The Traefik service (as its metrics label it) a rollout step of `slot` is judged on: the
/// canary split's candidate child, which only public (weighted) traffic reaches.
fn judged_service(app: &str, slot: &str, provider: &str) -> String {
    format!("{}@{provider}", names::canary(app, slot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::dir::{Dir, DirSink, FileStateStore};
    use crate::core::container::Endpoint;
    use std::fs;

    fn scratch(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pointsman-ctl-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir::open(&d).unwrap()
    }

    fn container(app: &str, slot: &str, n: u8, stable: bool) -> Container {
        let mut c = Container {
            id: format!("{app}-{slot}-{n}-id"),
            name: format!("/{app}-{slot}-{n}"),
            created: "2026-11-26T05:00:00Z".into(),
            ..Default::default()
        };
        c.state.running = true;
        c.state.started_at = format!("2026-11-26T05:00:0{n}Z");
        c.config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        let mut labels = std::collections::BTreeMap::from([
            ("pointsman.app".to_string(), app.to_string()),
            ("pointsman.slot".to_string(), slot.to_string()),
            ("pointsman.host".to_string(), format!("{app}.example.com")),
        ]);
        if stable {
            labels.insert("pointsman.version".into(), "stable".into());
        }
        c.config.labels = Some(labels);
        c.network_settings.networks = Some(
            [(
                "net".to_string(),
                Endpoint {
                    ip_address: format!("10.0.{}.{n}", app.len()),
                },
            )]
            .into(),
        );
        c
    }

    fn controller(dir: &Dir) -> Controller<FileStateStore, DirSink> {
        Controller::new(
            Settings::default(),
            Choices::default(),
            FileStateStore::new(dir),
            DirSink::new(dir),
            Some(dir.path().to_path_buf()),
        )
    }

    fn fleet_of(apps: usize) -> Vec<Container> {
        (0..apps)
            .flat_map(|a| {
                let app = format!("app{a}");
                [container(&app, "blue", 1, true), container(&app, "green", 2, false)]
            })
            .collect()
    }

    fn mtimes(dir: &Dir) -> Vec<(String, std::time::SystemTime)> {
        dir.owned_files()
            .unwrap()
            .into_iter()
            .map(|n| {
                let m = fs::metadata(dir.path().join(&n)).unwrap().modified().unwrap();
                (n, m)
            })
            .collect()
    }

    #[test]
    fn a_step_is_judged_on_the_canary_child_under_the_provider_it_came_through() {
        for provider in ["file", "redis"] {
            let service = judged_service("web", "green.v2", provider);
            assert_eq!(service, format!("web.canary.green.v2@{provider}"));
            let name = names::parse(&service).unwrap();
            assert_eq!(
                (name.app, name.kind, name.slot),
                ("web", Some(names::Kind::Canary), Some("green.v2"))
            );
            assert_ne!(service, format!("{}@{provider}", names::slot("web", "green.v2")));
        }
    }

    #[test]
    fn an_event_renders_only_the_apps_it_touches_and_an_unchanged_resync_writes_nothing() {
        let dir = scratch("incremental");
        let mut ctl = controller(&dir);
        let all = fleet_of(20);
        ctl.apply(Input::Watch(WatchEvent::Resync(all.clone())));
        ctl.reconcile().unwrap();
        assert_eq!(dir.owned_files().unwrap().len(), 20);
        let before = ctl.stats;

        let mut stopped = all[7].clone();
        stopped.state.running = false;
        ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(stopped))));
        ctl.reconcile().unwrap();
        assert_eq!(ctl.stats.apps_rendered - before.apps_rendered, 1, "one event, one app");
        assert_eq!(ctl.stats.writes - before.writes, 1);

        let files_before = mtimes(&dir);
        let state_before = fs::read(dir.state_path()).unwrap();
        let mut now = all.clone();
        now[7].state.running = false;
        ctl.apply(Input::Watch(WatchEvent::Resync(now)));
        let writes = ctl.stats.writes;
        ctl.reconcile().unwrap();
        assert_eq!(ctl.stats.writes, writes, "an unchanged resync writes nothing");
        assert_eq!(mtimes(&dir), files_before);
        assert_eq!(fs::read(dir.state_path()).unwrap(), state_before);
    }

    #[test]
    fn a_role_change_made_by_another_writer_is_rendered_not_overwritten() {
        let dir = scratch("cli-change");
        let mut ctl = controller(&dir);
        ctl.apply(Input::Watch(WatchEvent::Resync(fleet_of(3))));
        ctl.reconcile().unwrap();
        // Another writer (the CLI) promotes app1's green in the state only.
        let mut store = FileStateStore::new(&dir);
        let mut nothing = DirSink::new(&dir);
        store
            .transact(&mut nothing, |s| {
                s.apps.get_mut("app1").unwrap().stable = Some("green".into());
                Ok::<_, BackendError>(((), Updates::new()))
            })
            .unwrap();
        ctl.apply(Input::Tick);
        ctl.reconcile().unwrap();
        let file = String::from_utf8(dir.read_file("pointsman-app1.yml").unwrap().unwrap()).unwrap();
        let public = serde_json::from_str::<serde_json::Value>(file.split_once('\n').unwrap().1).unwrap();
        assert_eq!(
            public["http"]["services"]["app1"]["loadBalancer"]["servers"][0]["url"], "http://10.0.4.2:80",
            "the public service follows the stable slot another writer chose"
        );
        assert_eq!(store.read().unwrap().roles("app1").stable.as_deref(), Some("green"));
    }

    fn in_project(mut c: Container, project: &str) -> Container {
        c.config
            .labels
            .get_or_insert_default()
            .insert("com.docker.compose.project".into(), project.into());
        c
    }

    #[test]
    fn the_apps_of_a_compose_project_share_one_file_and_an_app_moving_in_leaves_its_own() {
        let dir = scratch("project-units");
        // A file of the older per-app layout, for an app that is now in a project.
        fs::write(dir.path().join("pointsman-app1.yml"), "http: {}\n").unwrap();
        let mut ctl = controller(&dir);
        let mut all = fleet_of(3);
        for c in all.iter_mut().take(4) {
            *c = in_project(c.clone(), "shop");
        }
        ctl.apply(Input::Watch(WatchEvent::Resync(all.clone())));
        ctl.reconcile().unwrap();
        assert_eq!(
            dir.owned_files().unwrap(),
            ["pointsman-app2.yml", "pointsman-project.shop.yml"],
            "app0 and app1 in one unit; the old per-app file is gone"
        );
        let unit = String::from_utf8(dir.read_file("pointsman-project.shop.yml").unwrap().unwrap()).unwrap();
        assert!(unit.contains("\"app0\"") && unit.contains("\"app1\""), "{unit}");
        // One event in one app of the project: one unit rewritten, whole.
        let writes = ctl.stats.writes;
        let mut stopped = all[1].clone();
        stopped.state.running = false;
        ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(stopped))));
        ctl.reconcile().unwrap();
        assert_eq!(ctl.stats.writes - writes, 1);
        // app1 leaves the project (recreated without the label): it gets its own file again,
        // and the project's file no longer holds it.
        for c in &all[2..4] {
            let mut plain = c.clone();
            plain
                .config
                .labels
                .as_mut()
                .unwrap()
                .remove("com.docker.compose.project");
            ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(plain))));
        }
        ctl.reconcile().unwrap();
        assert_eq!(
            dir.owned_files().unwrap(),
            ["pointsman-app1.yml", "pointsman-app2.yml", "pointsman-project.shop.yml"]
        );
        let unit = String::from_utf8(dir.read_file("pointsman-project.shop.yml").unwrap().unwrap()).unwrap();
        assert!(!unit.contains("\"app1\""), "{unit}");
    }

    #[test]
    fn apps_that_come_and_go_leave_no_claim_file_or_cache_entry_behind() {
        let dir = scratch("churn");
        let mut ctl = controller(&dir);
        ctl.apply(Input::Watch(WatchEvent::Resync(vec![])));
        ctl.reconcile().unwrap();
        for wave in 0..30 {
            let cs: Vec<Container> = (0..50)
                .map(|i| container(&format!("w{wave}a{i}"), "blue", 1, true))
                .collect();
            for c in &cs {
                ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(c.clone()))));
            }
            ctl.reconcile().unwrap();
            assert_eq!(dir.owned_files().unwrap().len(), 50);
            for c in &cs {
                ctl.apply(Input::Watch(WatchEvent::Remove(c.id.clone())));
            }
            ctl.reconcile().unwrap();
        }
        let state = FileStateStore::new(&dir).read().unwrap();
        assert!(state.claims.is_empty(), "{:?}", state.claims.keys().next());
        assert!(dir.owned_files().unwrap().is_empty());
        assert!(state.history.len() <= crate::core::state::HISTORY_LIMIT);
        assert_eq!(
            state.apps.len(),
            crate::core::state::GONE_APPS_KEPT,
            "1,500 apps seeded and gone: the roles of the last 1,000 are kept"
        );
        assert!(state.apps.values().all(|r| r.gone.is_some()));
        assert!(ctl.units.is_empty() && ctl.seen_slots.is_empty() && ctl.seen_notices.is_empty());
        assert!(ctl.snapshot.is_empty() && ctl.fleet.is_empty() && ctl.seen_errors.is_empty());
        assert_eq!(ctl.roles_seen.len(), crate::core::state::GONE_APPS_KEPT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_is_coalesced_into_one_reconcile() {
        let dir = scratch("burst");
        let mut ctl = controller(&dir);
        let all = fleet_of(5);
        let (tx, rx) = mpsc::channel(1024);
        tx.send(WatchEvent::Resync(all.clone())).await.unwrap();
        for c in &all {
            let mut c = c.clone();
            c.state.running = false;
            tx.send(WatchEvent::Upsert(Box::new(c))).await.unwrap();
        }
        drop(tx);
        ctl.drive(inputs(rx, Duration::from_secs(3600)), std::future::pending())
            .await
            .unwrap();
        assert_eq!(ctl.stats.reconciles, 1, "11 queued inputs, one render: {:?}", ctl.stats);
        assert_eq!(ctl.stats.apps_rendered, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_corrupt_state_file_stops_the_controller_and_nothing_is_written() {
        let dir = scratch("corrupt");
        fs::write(dir.state_path(), "{\"format\": 2, \"apps\": {").unwrap();
        let mut ctl = controller(&dir);
        let (tx, rx) = mpsc::channel(16);
        tx.send(WatchEvent::Resync(fleet_of(2))).await.unwrap();
        let err = ctl
            .drive(inputs(rx, Duration::from_secs(1)), std::future::pending())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(dir.owned_files().unwrap().is_empty());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_written_before_the_first_full_listing() {
        let dir = scratch("unsynced");
        let mut ctl = controller(&dir);
        let (tx, rx) = mpsc::channel(16);
        tx.send(WatchEvent::Upsert(Box::new(fleet_of(1).remove(0))))
            .await
            .unwrap();
        drop(tx);
        ctl.drive(inputs(rx, Duration::from_secs(1)), std::future::pending())
            .await
            .unwrap();
        assert_eq!(ctl.stats.reconciles, 0);
        assert!(dir.owned_files().unwrap().is_empty());
    }

    /// The whole shell in-process: a fake Docker, the real watcher and controller, the real
    /// directory backend, under paused time.
    #[tokio::test(start_paused = true)]
    async fn fake_docker_to_files_through_the_watcher_and_the_controller() {
        use crate::docker::fake::{FakeDocker, container as fake_container, id_of};
        let dir = scratch("e2e");
        let docker = FakeDocker::new();
        let web = |slot: &str, ip: &str| {
            fake_container(&format!("web-{slot}"))
                .app("web")
                .slot(slot)
                .label("host", "web.example.com")
                .port(80)
                .network("edge", ip)
                .running()
        };
        docker.run(web("blue", "10.0.0.2").version("stable").build());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let (docker, dir) = (docker.clone(), dir.clone());
            async move {
                let opts = WatchOptions {
                    backoff_seed: Some(7),
                    ..WatchOptions::default()
                };
                run(
                    Arc::new(docker),
                    Settings::default(),
                    Choices::default(),
                    FileStateStore::new(&dir),
                    DirSink::new(&dir),
                    None,
                    opts,
                    Arc::new(Observer::new()),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
            }
        });
        let file = || {
            dir.read_file("pointsman-web.yml")
                .unwrap()
                .map(|b| String::from_utf8(b).unwrap())
        };
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert!(file().unwrap().contains("http://10.0.0.2:80"), "{:?}", file());

        docker.run(web("green", "10.0.0.3").build());
        settle().await;
        assert!(
            file()
                .unwrap()
                .contains(&format!("\"{}\"", names::candidate_router("web"))),
            "green joins as the candidate"
        );

        // A stop drains the container at its kill, before it exits.
        docker.stop(&id_of("web-blue"));
        settle().await;
        assert!(!file().unwrap().contains("http://10.0.0.2:80"));

        // Docker goes away: nothing is written; it comes back changed: the resync repairs.
        docker.set_reachable(false);
        settle().await;
        let before = file();
        docker.update(&id_of("web-blue"), |c| c.state.running = true);
        settle().await;
        assert_eq!(file(), before, "routing stays as written while Docker is away");
        docker.set_reachable(true);
        tokio::time::sleep(Duration::from_secs(6)).await; // past the backoff cap
        assert!(
            file().unwrap().contains("http://10.0.0.2:80"),
            "the resync after reconnecting saw blue again"
        );

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(file().is_some(), "files stay on shutdown");
    }
}
