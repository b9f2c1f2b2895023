//! What each subcommand does, in terms of the core and the edges.
//!
//! Every writing command follows the controller's recipe: list Docker, take the lock, read
//! state, seed roles, apply the change, save state, render, write, release. State is saved
//! before the files: if the process dies in between, the next render (by anyone) converges
//! the files to the new state instead of reverting the change.

use std::collections::BTreeMap;

use serde_json::json;

use crate::backend::dir::{Store, StoreError};
use crate::cli::{Action, Config};
use crate::core::container::Container;
use crate::core::labels::Role;
use crate::core::model::Fleet;
use crate::core::ops::{self, Refusal};
use crate::core::render;
use crate::core::state::{self, Actor, State};
use crate::core::timestamp::Instant;
use crate::docker::{self, DockerError};

/// How a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Understood and refused (exit 1).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `render --check` found files that differ from what would be rendered (exit 1).
    #[error("{0}")]
    Drift(String),
    /// Exit 2.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Exit 2.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) | Failure::Drift(_) => 1,
            Failure::Store(_) | Failure::Docker(_) => 2,
        }
    }
}

/// Runs every action but `run`.
pub async fn execute(config: &Config) -> Result<(), Failure> {
    let store = Store::open(&config.dir)?;
    match &config.action {
        Action::Run { .. } => unreachable!("run is the controller's"),
        Action::Relabel { target, role } => {
            let role = *role;
            change(config, &store, Scope::Target(target), |state, fleet, now| {
                let target = ops::find_target(fleet, target)?;
                let done = match role {
                    Role::Stable => ops::make_stable(state, &target, state::Action::Relabel, Actor::Cli, now),
                    Role::Candidate => ops::pin(state, &target, Actor::Cli, now)?,
                };
                Ok(match (done, role) {
                    (None, _) => format!(
                        "app {}: slot {} already is {role}; nothing to do",
                        target.app, target.slot
                    ),
                    (Some(t), Role::Stable) => switched(&t.app, &t.to, t.from.as_deref()),
                    (Some(t), Role::Candidate) => format!(
                        "app {}: slot {} is pinned as the candidate (cookie {}{}=candidate, header {}: candidate)",
                        t.app,
                        t.to,
                        render::COOKIE_PREFIX,
                        t.app,
                        render::VERSION_HEADER
                    ),
                })
            })
            .await
        }
        Action::Promote { app, force } => {
            let label = config.settings.label("app");
            change(config, &store, Scope::App(app), |state, fleet, now| {
                let t = ops::promote(state, fleet, app, &label, *force, Actor::Cli, now)?;
                Ok(switched(&t.app, &t.to, t.from.as_deref()))
            })
            .await
        }
        Action::Rollback { app } => {
            change(config, &store, Scope::App(app), |state, fleet, now| {
                let t = ops::rollback(state, fleet, app, Actor::Cli, now)?;
                Ok(switched(&t.app, &t.to, t.from.as_deref()))
            })
            .await
        }
        Action::Status { app, json } => status(config, &store, app.as_deref(), *json).await,
        Action::Render { check } => render_once(config, &store, *check).await,
        Action::History { app, json, limit } => {
            let state = {
                let lock = store.lock()?;
                store.load_state(&lock)?
            };
            history(&state, app.as_deref(), *json, *limit);
            Ok(())
        }
    }
}

fn switched(app: &str, to: &str, from: Option<&str>) -> String {
    match from {
        Some(from) => format!(
            "app {app}: slot {to} is now stable (was {from}); {from} stays reachable with cookie {}{app}={from} and `pointsman rollback {app}` returns to it",
            render::COOKIE_PREFIX
        ),
        None => format!("app {app}: slot {to} is now stable"),
    }
}

async fn containers(config: &Config) -> Result<Vec<Container>, Failure> {
    let docker = docker::Engine::connected().await?;
    Ok(docker::list(&docker, &config.settings).await?)
}

/// Which app a writing command is about, before Docker is asked.
enum Scope<'a> {
    App(&'a str),
    /// A relabel target: `APP/SLOT`, a container name or an id prefix.
    Target(&'a str),
}

/// Lists Docker, then under the lock: read state, seed, apply `op`, save, render, write.
///
/// Scoped to one app: only that app's containers are inspected and only its file is written,
/// so the cost does not grow with the number of apps. The other apps come from one listing
/// (enough to see their host claims); their files are the controller's business.
async fn change(
    config: &Config,
    store: &Store,
    scope: Scope<'_>,
    op: impl FnOnce(&mut State, &Fleet, Instant) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let docker = docker::Engine::connected().await?;
    let summaries = docker::list_summaries(&docker, &config.settings).await?;
    let key = config.settings.label("app");
    let app = match scope {
        Scope::App(app) => Some(app.to_string()),
        Scope::Target(target) => app_of_target(&summaries, &key, target),
    };
    let (mine, mut all): (Vec<Container>, Vec<Container>) = summaries
        .into_iter()
        .partition(|c| app.is_some() && c.label(&key) == app.as_deref());
    all.extend(docker::inspect_all(&docker, mine.into_iter().map(|c| c.id).collect()).await?);
    let fleet = Fleet::build(&all, &config.settings);
    let scoped = app.as_deref().map(|a| fleet.only(a)).unwrap_or_default();

    let lock = store.lock()?;
    let mut state = store.load_state(&lock)?;
    let now = Instant::now();
    ops::seed(&mut state, &scoped, now, Actor::Cli);
    let before = state.clone();
    let message = op(&mut state, &fleet, now)?;
    store.save_state(&lock, &state)?;
    if let Some(app) = &app {
        let files = render::render_all(&scoped, &state, &config.settings);
        if let Err(e) = store.sync_app(&lock, app, files.get(&render::file_name(app)).map(Vec::as_slice)) {
            // Undo the role change so the error means "nothing happened"; if even that fails,
            // the next render (controller or CLI) applies the saved state.
            let _ = store.save_state(&lock, &before);
            return Err(e.into());
        }
    }
    drop(lock);
    println!("{message}");
    Ok(())
}

/// The app a relabel target belongs to, from the listing: `APP/SLOT`, a container name, or a
/// unique id prefix. `None` when nothing matches; `ops::find_target` then says why.
fn app_of_target(containers: &[Container], key: &str, target: &str) -> Option<String> {
    if let Some((app, _)) = target.split_once('/').filter(|_| !target.starts_with('/')) {
        return Some(app.to_string());
    }
    let name = target.strip_prefix('/').unwrap_or(target);
    let by_name = containers.iter().find(|c| c.short_name() == name);
    let by_id = || {
        let mut matches = containers.iter().filter(|c| name.len() >= 4 && c.id.starts_with(name));
        matches.next().filter(|_| matches.next().is_none())
    };
    by_name.or_else(by_id).and_then(|c| c.label(key)).map(str::to_string)
}

async fn render_once(config: &Config, store: &Store, check: bool) -> Result<(), Failure> {
    let all = containers(config).await?;
    let fleet = Fleet::build(&all, &config.settings);
    for e in &fleet.errors {
        eprintln!("warning: {e}");
    }
    let lock = store.lock()?;
    let mut state = store.load_state(&lock)?;
    let seeding = ops::seed(&mut state, &fleet, Instant::now(), Actor::Cli);
    let files = render::render_all(&fleet, &state, &config.settings);
    if check {
        let mut drift = Vec::new();
        for (name, bytes) in &files {
            match store.read_file(name)? {
                None => drift.push(format!("{name} is missing")),
                Some(current) if &current != bytes => drift.push(format!("{name} differs")),
                Some(_) => {}
            }
        }
        for name in store.owned_files()? {
            if !files.contains_key(&name) {
                drift.push(format!("{name} belongs to no app with containers"));
            }
        }
        if !seeding.transitions.is_empty() {
            drift.push("state.json would change (labels seed a role)".into());
        }
        drop(lock);
        if drift.is_empty() {
            println!("no drift: {} file(s) match", files.len());
            return Ok(());
        }
        return Err(Failure::Drift(format!(
            "drift in {}: {}; run `pointsman render` (or start the controller) to rewrite",
            config.dir.display(),
            drift.join(", ")
        )));
    }
    store.save_state(&lock, &state)?;
    let changes = store.sync(&lock, &files)?;
    drop(lock);
    println!(
        "{} file(s) rendered; written: {}; removed: {}",
        files.len(),
        list_or_none(&changes.written),
        list_or_none(&changes.removed)
    );
    Ok(())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

async fn status(config: &Config, store: &Store, only: Option<&str>, as_json: bool) -> Result<(), Failure> {
    let all = containers(config).await?;
    let fleet = Fleet::build(&all, &config.settings);
    let mut state = {
        let lock = store.lock()?;
        store.load_state(&lock)?
    };
    // Show what the next render would do, without writing it.
    ops::seed(&mut state, &fleet, Instant::now(), Actor::Cli);
    if let Some(app) = only
        && !fleet.apps.contains_key(app)
        && !state.apps.contains_key(app)
    {
        return Err(ops::unknown_app(&fleet, app).into());
    }
    let mut names: Vec<&String> = fleet.apps.keys().chain(state.apps.keys()).collect();
    names.sort();
    names.dedup();
    let mut apps = BTreeMap::new();
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == n.as_str())) {
        let roles = state.roles(name);
        let (resolved, slots) = match fleet.app(name) {
            Some(app) => {
                let resolved = app.resolve(&roles);
                let slots: BTreeMap<_, _> = app
                    .slots
                    .values()
                    .map(|s| {
                        let role = resolved.role_of(&s.name);
                        let members: Vec<_> = s
                            .members
                            .iter()
                            .map(|m| json!({ "name": m.name, "id": &m.id[..m.id.len().min(12)], "condition": m.condition, "url": m.url }))
                            .collect();
                        (s.name.clone(), json!({ "role": role, "servers": s.servers(), "containers": members }))
                    })
                    .collect();
                (resolved, slots)
            }
            None => (Default::default(), BTreeMap::new()),
        };
        apps.insert(
            name.clone(),
            json!({
                "stable": resolved.stable.or(roles.stable),
                "candidate": resolved.candidate,
                "previous": roles.previous,
                "pinned": roles.pinned,
                "slots": slots,
            }),
        );
    }
    let mut errors: Vec<String> = fleet.errors.iter().map(ToString::to_string).collect();
    errors.extend(
        crate::backend::foreign::Scanner::default()
            .scan(store.dir())
            .iter()
            .map(ToString::to_string),
    );
    if as_json {
        let doc = json!({ "dir": config.dir, "apps": apps, "errors": errors });
        println!("{}", serde_json::to_string_pretty(&doc).expect("serialises"));
        return Ok(());
    }
    if apps.is_empty() {
        println!(
            "no apps: no container carries the label {}",
            config.settings.label("app")
        );
    }
    for (name, app) in &apps {
        let show = |k: &str| app[k].as_str().unwrap_or("-").to_string();
        println!(
            "{name}: stable={} candidate={} previous={}",
            show("stable"),
            show("candidate"),
            show("previous")
        );
        for (slot, s) in app["slots"].as_object().into_iter().flatten() {
            let servers = s["servers"].as_array().map_or(0, Vec::len);
            let total = s["containers"].as_array().map_or(0, Vec::len);
            println!(
                "  {slot:<16} {:<9} {servers}/{total} routable",
                s["role"].as_str().unwrap_or("")
            );
            for c in s["containers"].as_array().into_iter().flatten() {
                println!(
                    "    {:<28} {:<9} {}",
                    c["name"].as_str().unwrap_or(""),
                    c["condition"].as_str().unwrap_or(""),
                    c["url"].as_str().unwrap_or("-")
                );
            }
        }
        if app["slots"].as_object().is_none_or(|s| s.is_empty()) {
            println!("  (no containers; its file is removed and its roles are kept)");
        }
    }
    for e in &errors {
        println!("error: {e}");
    }
    Ok(())
}

fn history(state: &State, app: Option<&str>, as_json: bool, limit: usize) {
    let entries: Vec<_> = state
        .history
        .iter()
        .filter(|t| app.is_none_or(|a| a == t.app))
        .collect();
    let entries = &entries[entries.len().saturating_sub(limit)..];
    if as_json {
        println!("{}", serde_json::to_string_pretty(&entries).expect("serialises"));
        return;
    }
    for t in entries {
        let action = serde_json::to_value(t.action)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let by = serde_json::to_value(t.by)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        println!(
            "{}  {:<12} {:<9} {} -> {}  by {}",
            t.at,
            t.app,
            action,
            t.from.as_deref().unwrap_or("-"),
            t.to,
            by
        );
    }
}
