//! Operators can see pointsman: its own metrics, its health, and a read-only status page,
//! served by `pointsman run --listen ADDR` (default `127.0.0.1:9191`, `off` disables).
//!
//! The controller owns the model, so it is the one that tells: it holds an `Arc` of the
//! [`Observer`] and calls a few hooks — each Docker input ([`Observer::watched`]), the state
//! each reconcile reads ([`Observer::state_seen`]), each reconcile's outcome
//! ([`Observer::reconciled`]) and, after a successful one, the fleet
//! ([`Observer::publish`]). The HTTP server only reads what the hooks left: serving a request
//! never touches Docker, the state lock or the disk, so a scrape or a browser cannot slow
//! down a switch, and no CLI call ever competes with `/healthz` for the lock.
//!
//! - [`metrics`]: the Prometheus registry and pointsman's metric families.
//! - [`health`]: what `/healthz` answers (Docker connected and the last reconcile succeeded).
//! - [`status`]: the read-only status snapshot (apps, slots, roles, weights, rollouts, history).
//! - [`page`]: the status page, server-rendered HTML with every label-derived value escaped.
//! - [`http`]: the axum server: `/metrics`, `/healthz`, `/`, `/status.json`; GET only.
//! - [`traffic`]: request rate and error ratio per service from Traefik's metrics.
//! - [`hosts`]: the Host names the server answers (DNS rebinding).
//! - [`redact`]: credentials masked in every text the server shows and in the log; the
//!   observer masks what it is told (errors, reasons, history details) as it is told.

pub mod health;
pub mod hosts;
pub mod http;
pub mod metrics;
pub mod page;
pub mod redact;
pub mod status;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::core::container::Container;
use crate::core::labels::is_dns_label;
use crate::core::model::Fleet;
use crate::core::state::{AppRoles, State, Transition, format_time};
use crate::docker::watcher::WatchEvent;
use health::{DockerLink, Health, Verdict};
use metrics::{Labels, Metrics, set_family};
use status::Status;
use traffic::Rate;

/// What the controller observed, shared with the HTTP server.
///
/// A `std` mutex guards the plain data: it is held only to copy values in or out, never
/// across an `.await`; the metric families synchronise themselves.
pub struct Observer {
    pub metrics: Metrics,
    inner: Mutex<Inner>,
    /// Bumped at every change the page shows, so a poll can ask "anything new?" cheaply.
    generation: AtomicU64,
    /// History entries older than this were there before the controller started: not counted.
    started: String,
}

#[derive(Default)]
struct Inner {
    health: Health,
    status: Arc<Status>,
    /// Roles and history as of the last committed reconcile.
    roles: BTreeMap<String, AppRoles>,
    history: Vec<Transition>,
    /// The last history entry counted in the transitions metric.
    counted: Option<Transition>,
    /// What the reconcile under way read; committed when it succeeds.
    staged: Option<Staged>,
    /// The status needs rebuilding even if the fleet did not change.
    stale: bool,
    /// Series written to the per-app gauge families, to remove those of vanished apps.
    written: BTreeMap<&'static str, BTreeSet<Labels>>,
    /// Series of the transitions counter, by app, to remove those of apps that are gone.
    counted_series: BTreeMap<String, BTreeSet<Labels>>,
    traffic: Traffic,
}

struct Staged {
    roles: Option<BTreeMap<String, AppRoles>>,
    history: Option<Vec<Transition>>,
    new_transitions: Vec<Transition>,
}

/// The latest sample of Traefik's traffic, if `--traefik-metrics` is set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    pub enabled: bool,
    /// By Traefik service (`web.slot.green@file`).
    pub rates: BTreeMap<String, Rate>,
    /// When the window ended.
    pub at: Option<String>,
    /// Why the last sample failed, if it did.
    pub error: Option<String>,
}

/// Everything the page and `/status.json` show, taken at once.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub version: &'static str,
    pub generation: u64,
    pub health: Verdict,
    pub docker: DockerLink,
    pub status: Arc<Status>,
    pub traffic: Traffic,
}

impl Default for Observer {
    fn default() -> Self {
        Observer::new()
    }
}

impl Observer {
    pub fn new() -> Observer {
        Observer {
            metrics: Metrics::new(),
            inner: Mutex::new(Inner {
                stale: true,
                ..Inner::default()
            }),
            generation: AtomicU64::new(1),
            started: format_time(jiff::Timestamp::now()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// One input from the watcher: events are counted; `Resync` means connected, `Lost` not.
    pub fn watched(&self, event: &WatchEvent) {
        let m = &self.metrics;
        let kind = match event {
            WatchEvent::Upsert(_) => "upsert",
            WatchEvent::Remove(_) => "remove",
            WatchEvent::Stopping(_) => "stopping",
            WatchEvent::Implied { .. } => "implied",
            WatchEvent::Resync(_) => {
                m.docker_resyncs.inc();
                m.docker_connected.set(1);
                let mut inner = self.inner();
                if !matches!(inner.health.docker, DockerLink::Connected { .. }) {
                    inner.health.docker = DockerLink::Connected {
                        since: format_time(jiff::Timestamp::now()),
                    };
                    drop(inner);
                    self.changed();
                }
                return;
            }
            WatchEvent::Lost(reason) => {
                m.docker_losses.inc();
                m.docker_connected.set(0);
                self.inner().health.docker = DockerLink::Lost {
                    since: format_time(jiff::Timestamp::now()),
                    reason: redact::redact(reason).into_owned(),
                };
                self.changed();
                return;
            }
        };
        m.docker_events.get_or_create(&vec![("kind", kind.to_string())]).inc();
    }

    /// The state a reconcile is about to commit (roles and history), called inside its
    /// transaction. Cheap when nothing changed: it compares, and clones only what differs.
    pub fn state_seen(&self, state: &State) {
        let mut inner = self.inner();
        let roles = (state.apps != inner.roles).then(|| state.apps.clone());
        let history_changed = state.history.back() != inner.history.last();
        let history = history_changed.then(|| {
            let skip = state.history.len().saturating_sub(status::HISTORY_SHOWN);
            state.history.iter().skip(skip).cloned().collect()
        });
        // Entries after the last one counted; at the first look, those since the start.
        let new_transitions = if !history_changed {
            Vec::new()
        } else {
            let after = inner
                .counted
                .as_ref()
                .and_then(|last| state.history.iter().rposition(|t| t == last));
            match after {
                Some(i) => state.history.iter().skip(i + 1).cloned().collect(),
                None => state.history.iter().filter(|t| t.at >= self.started).cloned().collect(),
            }
        };
        inner.staged = Some(Staged {
            roles,
            history,
            new_transitions,
        });
    }

    /// A reconcile starts (one that never ends makes `/healthz` say so).
    pub fn reconcile_started(&self) {
        self.inner().health.reconciling_since = Some(std::time::Instant::now());
    }

    /// A reconcile ended: metrics, health, and (when it succeeded) what it read is committed.
    pub fn reconciled(&self, mut outcome: Result<(), String>, took: Duration) {
        self.metrics.observe_reconcile(outcome.is_ok(), took);
        if let Err(e) = &mut outcome {
            redact::redact_in_place(e);
        }
        let mut inner = self.inner();
        inner.health.reconciling_since = None;
        let staged = inner.staged.take();
        if let (Ok(()), Some(staged)) = (&outcome, staged) {
            for t in &staged.new_transitions {
                let action = serde_json::to_value(t.action).ok();
                let by = serde_json::to_value(t.by).ok();
                let text =
                    |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                let labels = vec![("app", t.app.clone()), ("action", text(action)), ("by", text(by))];
                self.metrics.transitions.get_or_create(&labels).inc();
                inner.counted_series.entry(t.app.clone()).or_default().insert(labels);
            }
            if let Some(last) = staged.new_transitions.last() {
                inner.counted = Some(last.clone());
            }
            if let Some(roles) = staged.roles {
                inner.roles = roles;
                inner.stale = true;
            }
            if let Some(history) = staged.history {
                inner.history = history;
                inner.stale = true;
            }
        }
        if inner.health.last_reconcile.as_ref() != Some(&outcome) {
            inner.health.last_reconcile = Some(outcome);
            drop(inner);
            self.changed();
        }
    }

    /// After a successful reconcile: rebuilds the status and the per-app gauges when the
    /// fleet changed (`fleet_changed`) or the roles or history did. `containers` are the
    /// controller's snapshot, to name the app of each container with a label error.
    pub fn publish<'a>(
        &self,
        fleet: &Fleet,
        containers: impl IntoIterator<Item = &'a Container>,
        app_label: &str,
        fleet_changed: bool,
    ) {
        let mut inner = self.inner();
        if !fleet_changed && !inner.stale {
            return;
        }
        inner.stale = false;
        let mut status = status::build(fleet, &inner.roles, &inner.history, format_time(jiff::Timestamp::now()));
        status.redact();

        // Label errors by the app their container names (its app label, when that is valid).
        let errors = fleet.errors();
        let mut app_of: HashMap<&str, String> = errors.iter().map(|e| (e.container.as_str(), String::new())).collect();
        for c in containers {
            if let Some(slot) = app_of.get_mut(c.short_name())
                && let Some(app) = c.label(app_label).filter(|a| is_dns_label(a))
            {
                *slot = app.to_string();
            }
        }
        let mut by_app: BTreeMap<String, i64> = BTreeMap::new();
        for e in &errors {
            *by_app.entry(app_of[e.container.as_str()].clone()).or_default() += 1;
        }
        let app = |name: &str| vec![("app", name.to_string())];
        let per_app = |f: &dyn Fn(&status::AppView) -> i64| -> Vec<(Labels, i64)> {
            // Only apps with containers: the roles of gone apps stay in the status, not in
            // the metrics.
            status
                .apps
                .iter()
                .filter(|a| fleet.claim(&a.name).is_some())
                .map(|a| (app(&a.name), f(a)))
                .collect()
        };
        let m = &self.metrics;
        let written = &mut inner.written;
        set_family(
            &m.label_errors,
            written.entry("label_errors").or_default(),
            by_app.iter().map(|(a, n)| (app(a), *n)).collect(),
        );
        set_family(
            &m.canary_weight,
            written.entry("canary").or_default(),
            per_app(&|a| i64::from(a.canary_percent)),
        );
        set_family(
            &m.mirror_percent,
            written.entry("mirror").or_default(),
            per_app(&|a| i64::from(a.mirror_percent)),
        );
        set_family(
            &m.rollout_step,
            written.entry("rollout_step").or_default(),
            per_app(&|a| a.rollout.as_ref().map_or(0, |r| r.step as i64)),
        );
        set_family(
            &m.rollout_steps,
            written.entry("rollout_steps").or_default(),
            per_app(&|a| a.rollout.as_ref().map_or(0, |r| r.steps.len() as i64)),
        );
        let servers = status
            .apps
            .iter()
            .flat_map(|a| {
                a.slots.iter().map(|s| {
                    (
                        vec![("app", a.name.clone()), ("slot", s.name.clone())],
                        s.servers.len() as i64,
                    )
                })
            })
            .collect();
        set_family(&m.servers, written.entry("servers").or_default(), servers);
        // Transition counters of apps with no container left go with them: thousands of apps
        // coming and going leave no series behind.
        let gone: Vec<String> = inner
            .counted_series
            .keys()
            .filter(|a| fleet.app(a).is_none() && !by_app.contains_key(*a))
            .cloned()
            .collect();
        for app in gone {
            for labels in inner.counted_series.remove(&app).unwrap_or_default() {
                m.transitions.remove(&labels);
            }
        }
        inner.status = Arc::new(status);
        drop(inner);
        self.changed();
    }

    /// A new sample of Traefik's traffic: the rates over the window it ended (`None`: the
    /// first sample, no window yet), or why there is none.
    pub fn traffic_sampled(&self, sample: Result<Option<BTreeMap<String, Rate>>, String>) {
        let mut inner = self.inner();
        inner.traffic.enabled = true;
        match sample {
            Ok(Some(rates)) => {
                inner.traffic.rates = rates;
                inner.traffic.at = Some(format_time(jiff::Timestamp::now()));
                inner.traffic.error = None;
            }
            Ok(None) => inner.traffic.error = None,
            Err(e) => inner.traffic.error = Some(redact::redact(&e).into_owned()),
        }
        drop(inner);
        self.changed();
    }

    /// What `/healthz` answers.
    pub fn health(&self) -> Verdict {
        self.inner().health.verdict(std::time::Instant::now())
    }

    /// Everything the page shows, at once.
    pub fn view(&self) -> View {
        let generation = self.generation();
        let inner = self.inner();
        View {
            version: env!("CARGO_PKG_VERSION"),
            generation,
            health: inner.health.verdict(std::time::Instant::now()),
            docker: inner.health.docker.clone(),
            status: inner.status.clone(),
            traffic: inner.traffic.clone(),
        }
    }
}

/// Samples Traefik's metrics every [`traffic::SAMPLE_EVERY`] for the page, forever.
pub async fn sample_traffic(observer: Arc<Observer>, url: String) {
    let mut before: Option<(tokio::time::Instant, crate::traefik::metrics::Scrape)> = None;
    let mut tick = tokio::time::interval(traffic::SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sample = crate::traefik::metrics::scrape(&url).await.map_err(|e| e.to_string());
        let now = tokio::time::Instant::now();
        match sample {
            Ok(scrape) => {
                let window = before
                    .as_ref()
                    .map(|(then, previous)| traffic::rates(previous, &scrape, now - *then));
                observer.traffic_sampled(Ok(window));
                before = Some((now, scrape));
            }
            Err(e) => {
                before = None;
                observer.traffic_sampled(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The observer as the controller feeds it: fake Docker inputs, the real directory backend.

    use super::*;
    use crate::backend::StateStore;
    use crate::backend::dir::{Dir, DirSink, FileStateStore};
    use crate::controller::{Controller, Input};
    use crate::core::settings::{Choices, Settings};
    use crate::docker::fake::container;

    fn scratch(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pointsman-observe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir::open(&d).unwrap()
    }

    fn web(slot: &str, ip: &str) -> Container {
        container(&format!("web-{slot}"))
            .app("web")
            .slot(slot)
            .label("host", "web.example.com")
            .port(80)
            .network("edge", ip)
            .running()
            .build()
    }

    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn the_controller_reports_connection_reconciles_transitions_and_the_status() {
        let dir = scratch("hooks");
        let observer = Arc::new(Observer::new());
        let mut ctl = Controller::new(
            Settings::default(),
            Choices::default(),
            FileStateStore::new(&dir),
            DirSink::new(&dir),
            None,
        )
        .with_observer(observer.clone());
        let reconcile = |ctl: &mut Controller<FileStateStore, DirSink>| {
            let r = ctl.reconcile();
            observer.reconciled(
                r.as_ref().map(drop).map_err(ToString::to_string),
                Duration::from_millis(3),
            );
            observer.publish(ctl.fleet(), [], "pointsman.app", true);
        };
        assert!(!observer.health().healthy);

        let mut blue = web("blue", "10.0.0.2");
        blue.config
            .labels
            .as_mut()
            .unwrap()
            .insert("pointsman.version".into(), "stable".into());
        let mut bad = web("bad", "10.0.0.9");
        bad.config
            .labels
            .as_mut()
            .unwrap()
            .insert("pointsman.port".into(), "<b>".into());
        ctl.apply(Input::Watch(WatchEvent::Resync(vec![
            blue,
            web("green", "10.0.0.3"),
            bad,
        ])));
        reconcile(&mut ctl);
        assert!(observer.health().healthy, "{:?}", observer.health());
        let view = observer.view();
        let app = &view.status.apps[0];
        assert_eq!((app.name.as_str(), app.stable.as_deref()), ("web", Some("blue")));
        assert_eq!(app.candidate.as_deref(), Some("green"));
        assert_eq!(view.status.errors.len(), 1, "{:?}", view.status.errors);
        assert_eq!(view.status.history.len(), 1, "the seed is in the history");

        // A CLI-like writer promotes green; the next reconcile counts and shows it.
        let mut store = FileStateStore::new(&dir);
        store
            .transact(&mut DirSink::new(&dir), |s| {
                let roles = s.apps.get_mut("web").unwrap();
                roles.previous = roles.stable.replace("green".into());
                s.record(crate::core::state::Transition {
                    at: format_time(jiff::Timestamp::now()),
                    app: "web".into(),
                    action: crate::core::state::Action::Promote,
                    from: Some("blue".into()),
                    to: "green".into(),
                    by: crate::core::state::Actor::Cli,
                    detail: None,
                    id: None,
                });
                Ok::<_, crate::backend::BackendError>(((), Default::default()))
            })
            .unwrap();
        ctl.apply(Input::Tick);
        reconcile(&mut ctl);
        let view = observer.view();
        assert_eq!(view.status.apps[0].stable.as_deref(), Some("green"));
        assert_eq!(view.status.history[0].to, "green", "newest first");
        let text = observer.metrics.encode_classic();
        for (name, want) in [
            (
                "pointsman_transitions_total{app=\"web\",action=\"seed\",by=\"controller\"}",
                1.0,
            ),
            (
                "pointsman_transitions_total{app=\"web\",action=\"promote\",by=\"cli\"}",
                1.0,
            ),
            ("pointsman_reconciles_total{result=\"ok\"}", 2.0),
            ("pointsman_docker_connected", 1.0),
            ("pointsman_label_errors{app=\"\"}", 1.0),
            ("pointsman_routable_servers{app=\"web\",slot=\"green\"}", 1.0),
            ("pointsman_canary_weight_percent{app=\"web\"}", 0.0),
        ] {
            assert_eq!(sample(&text, name), Some(want), "{name} in\n{text}");
        }

        // Docker lost: unhealthy at once, with the reason; back: healthy again.
        ctl.apply(Input::Watch(WatchEvent::Lost("ping: no answer".into())));
        let v = observer.health();
        assert!(!v.healthy && v.reason.contains("ping: no answer"), "{v:?}");
        assert_eq!(
            sample(&observer.metrics.encode(), "pointsman_docker_connected"),
            Some(0.0)
        );
        ctl.apply(Input::Watch(WatchEvent::Resync(vec![web("green", "10.0.0.3")])));
        reconcile(&mut ctl);
        assert!(observer.health().healthy);
    }

    #[test]
    fn apps_that_come_and_go_leave_no_metric_series_behind() {
        let dir = scratch("bounded-series");
        let observer = Arc::new(Observer::new());
        let mut ctl = Controller::new(
            Settings::default(),
            Choices::default(),
            FileStateStore::new(&dir),
            DirSink::new(&dir),
            None,
        )
        .with_observer(observer.clone());
        let app = |i: usize| {
            container(&format!("tmp{i}"))
                .app(&format!("tmp{i}"))
                .version("stable")
                .port(80)
                .network("edge", "10.0.0.2")
                .running()
                .build()
        };
        ctl.apply(Input::Watch(WatchEvent::Resync(vec![])));
        ctl.reconcile_and_report().unwrap();
        let baseline = observer.metrics.encode().lines().count();
        for i in 0..200 {
            ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(app(i)))));
            ctl.reconcile_and_report().unwrap();
            if i == 0 {
                let text = observer.metrics.encode();
                assert!(
                    text.contains("app=\"tmp0\"") && text.contains("action=\"seed\""),
                    "a live app has its series: {text}"
                );
            }
            ctl.apply(Input::Watch(WatchEvent::Remove(app(i).id)));
            ctl.reconcile_and_report().unwrap();
        }
        let text = observer.metrics.encode();
        assert!(!text.contains("app=\"tmp"), "{text}");
        assert_eq!(text.lines().count(), baseline, "{text}");
    }
}
