//! `pointsman run`: one task owns the snapshot of containers; Docker events and signals feed
//! it. Each burst of events is applied synchronously (no I/O), then the whole latest state is
//! rendered once — never a queue of diffs.
//!
//! The controller holds the lock only while it re-reads state, renders and writes, so a CLI
//! call made meanwhile is never overwritten: its change is in the state the controller reads.
//! Until the first full listing arrives it writes nothing, so a restart never removes a file
//! for an app it simply has not seen yet. On shutdown it leaves every file as it is; Traefik
//! keeps routing while pointsman is down or being upgraded.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::backend::dir::{Store, StoreError};
use crate::core::container::Container;
use crate::core::model::Fleet;
use crate::core::ops;
use crate::core::render;
use crate::core::settings::Settings;
use crate::core::state::Actor;
use crate::core::timestamp::Instant;
use crate::docker::watcher::{self, WatchEvent, WatchOptions};

/// How long to wait before retrying a render whose write failed (disk full, read-only…).
const RETRY_WRITE: Duration = Duration::from_secs(1);

pub struct Controller {
    settings: Settings,
    store: Store,
    snapshot: BTreeMap<String, Container>,
    synced: bool,
    seen_errors: BTreeSet<String>,
    seen_notices: BTreeSet<String>,
    /// `(app, slot)` → a one-line description, to log only what changed.
    seen_slots: BTreeMap<(String, String), String>,
    foreign: crate::backend::foreign::Scanner,
    seen_broken: BTreeSet<String>,
}

impl Controller {
    pub fn new(settings: Settings, store: Store) -> Controller {
        Controller {
            settings,
            store,
            snapshot: BTreeMap::new(),
            synced: false,
            seen_errors: BTreeSet::new(),
            seen_notices: BTreeSet::new(),
            seen_slots: BTreeMap::new(),
            foreign: Default::default(),
            seen_broken: BTreeSet::new(),
        }
    }

    /// Applies one event to the snapshot. Synchronous and free of I/O.
    pub fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Resync(all) => {
                self.snapshot = all.into_iter().map(|c| (c.id.clone(), c)).collect();
                self.synced = true;
            }
            WatchEvent::Upsert(c) => {
                self.snapshot.insert(c.id.clone(), *c);
            }
            WatchEvent::Remove(id) => {
                self.snapshot.remove(&id);
            }
            WatchEvent::Stopping(id) => {
                // Docker still reports it running until it exits; the next inspect of this
                // container (its `die`) or a resync replaces this guess with Docker's word.
                if let Some(c) = self.snapshot.get_mut(&id) {
                    c.state.running = false;
                    c.state.status = "stopping".into();
                }
            }
            WatchEvent::Lost(_) => {}
        }
    }

    /// Whether a full listing has arrived; before it, nothing is written.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Re-reads state under the lock, seeds roles, renders and writes what changed.
    pub fn reconcile(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let fleet = Fleet::build(self.snapshot.values(), &self.settings);
        let lock = self.store.lock()?;
        let mut state = self.store.load_state(&lock)?;
        let seeding = ops::seed(&mut state, &fleet, Instant::now(), Actor::Controller);
        let files = render::render_all(&fleet, &state, &self.settings);
        let changes = self.store.sync(&lock, &files)?;
        self.store.save_state(&lock, &state)?;
        drop(lock);

        for t in &seeding.transitions {
            info!(app = %t.app, slot = %t.to, "slot is stable: its labels say so and the app had no stable slot");
        }
        self.log_news(&fleet, &state, seeding.notices);
        self.warn_about_foreign_files();
        if !changes.is_empty() {
            debug!(
                written = ?changes.written,
                removed = ?changes.removed,
                us = started.elapsed().as_micros() as u64,
                "files updated"
            );
        }
        Ok(())
    }

    /// Logs each foreign file Traefik cannot load once, and once more when it is fixed.
    fn warn_about_foreign_files(&mut self) {
        let broken: BTreeSet<String> = self
            .foreign
            .scan(self.store.dir())
            .iter()
            .map(ToString::to_string)
            .collect();
        for b in broken.difference(&self.seen_broken) {
            error!("{b}");
        }
        if broken.is_empty() && !self.seen_broken.is_empty() {
            info!("no broken foreign file left in the directory; Traefik reads changes again");
        }
        self.seen_broken = broken;
    }

    fn log_news(&mut self, fleet: &Fleet, state: &crate::core::state::State, notices: Vec<String>) {
        let errors: BTreeSet<String> = fleet.errors.iter().map(ToString::to_string).collect();
        for e in errors.difference(&self.seen_errors) {
            warn!("{e}");
        }
        self.seen_errors = errors;
        let notices: BTreeSet<String> = notices.into_iter().collect();
        for n in notices.difference(&self.seen_notices) {
            warn!("{n}");
        }
        self.seen_notices = notices;

        let mut now = BTreeMap::new();
        for app in fleet.apps.values() {
            let resolved = app.resolve(&state.roles(&app.name));
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
        for (key, line) in &now {
            if self.seen_slots.get(key) != Some(line) {
                info!(app = %key.0, slot = %key.1, "{line}");
            }
        }
        for key in self.seen_slots.keys().filter(|k| !now.contains_key(*k)) {
            info!(app = %key.0, slot = %key.1, "slot has no container left");
        }
        self.seen_slots = now;
    }
}

/// Why `run` stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Fatal: the state cannot be trusted, so routing must not change.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs the controller until `shutdown` resolves. Returns an error only for a fatal problem
/// (a corrupt state file); transient ones are logged and retried.
pub async fn run(
    settings: Settings,
    store: Store,
    opts: WatchOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (tx, mut rx) = mpsc::channel(1024);
    let docker = std::sync::Arc::new(crate::docker::Engine::new());
    let watcher = tokio::spawn(watcher::run(docker, settings.clone(), opts, tx));
    let mut ctl = Controller::new(settings, store);
    tokio::pin!(shutdown);
    let mut retry: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let result = loop {
        tokio::select! {
            _ = &mut shutdown => {
                info!("shutting down; the files stay as they are and Traefik keeps routing");
                break Ok(());
            }
            _ = async { retry.as_mut().unwrap().await }, if retry.is_some() => {
                retry = None;
            }
            event = rx.recv() => {
                let Some(event) = event else { break Ok(()) };
                ctl.apply(event);
                // Coalesce a burst: apply everything already queued, render once.
                while let Ok(event) = rx.try_recv() {
                    ctl.apply(event);
                }
            }
        }
        if !ctl.is_synced() || retry.is_some() {
            continue;
        }
        match ctl.reconcile() {
            Ok(()) => {}
            Err(e @ StoreError::CorruptState { .. }) => break Err(e.into()),
            Err(e) => {
                error!("{e}; retrying in {}s", RETRY_WRITE.as_secs());
                retry = Some(Box::pin(tokio::time::sleep(RETRY_WRITE)));
            }
        }
    };
    watcher.abort();
    result
}
