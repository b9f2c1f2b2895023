//! What each subcommand does, in terms of the core and the edges.
//!
//! Every writing command is one transaction of the state store: Docker is asked first (only
//! the containers of the app concerned), then, under the store's guarantee that no other
//! writer interleaves, the state is read, roles seeded, the [`Operation`] applied, the app
//! rendered and published. The settings that shape the files come from the state, so the CLI
//! renders exactly as the controller does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::backend::dir::{Dir, DirSink, FileStateStore};
use crate::backend::redis::{NoSink, Redis};
use crate::backend::{BackendError, ConfigSink, StateStore, Updates};
use crate::cli::{Action, Config};
use crate::core::container::Container;
use crate::core::labels::{PROJECT_LABEL, is_dns_label, is_project_name};
use crate::core::model::{self, Fleet};
use crate::core::ops::{self, Context, Operation, Refusal, Scope};
use crate::core::render;
use crate::core::settings::{self, Conflict, Settings};
use crate::core::state::{Actor, State};
use crate::core::traefik::Dynamic;
use crate::docker::{self, DockerApi, DockerError, Engine};

/// How a command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Understood and refused (exit 1).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `render --check` found files that differ from what would be rendered (exit 1).
    #[error("{0}")]
    Drift(String),
    /// `--wait`: Traefik's API did not show the change in time (exit 1).
    #[error(transparent)]
    NotApplied(crate::traefik::api::ApplyError),
    /// `rollout --wait`: the rollout was aborted (exit 1).
    #[error("{0}")]
    Aborted(String),
    /// A settings flag contradicts the recorded settings (exit 2).
    #[error(transparent)]
    Settings(#[from] Conflict),
    /// The recorded settings changed between reading them and writing (exit 2).
    #[error("the recorded settings changed while this command ran (another writer passed --reconfigure); run it again")]
    SettingsRaced,
    /// Exit 2.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A command the shared store has no use for (exit 2).
    #[error("{0}")]
    SharedStore(String),
    /// Exit 2.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) | Failure::Drift(_) | Failure::Aborted(_) | Failure::NotApplied(_) => 1,
            _ => 2,
        }
    }
}

/// The backend of a command: its state store and its sink, and where they live. On a shared
/// store (Redis) a command only records roles: the sink publishes nothing, and the leading
/// controller renders for every host.
struct Backend<S, K> {
    dir: Option<Dir>,
    redis: Option<Redis>,
    store: S,
    sink: K,
}

/// Runs every action but `run`.
pub async fn execute(config: &Config) -> Result<(), Failure> {
    match &config.redis {
        None => {
            let dir = Dir::open(&config.dir)?;
            let backend = Backend {
                store: FileStateStore::new(&dir),
                sink: DirSink::new(&dir),
                dir: Some(dir),
                redis: None,
            };
            execute_on(config, backend).await
        }
        Some(r) => {
            let redis = Redis::new(r.url.clone());
            let backend = Backend {
                store: redis.store(),
                sink: NoSink,
                dir: None,
                redis: Some(redis),
            };
            execute_on(config, backend).await
        }
    }
}

async fn execute_on<S: StateStore, K: ConfigSink>(config: &Config, mut backend: Backend<S, K>) -> Result<(), Failure> {
    let recorded = backend.store.read()?;
    let (settings, _) = settings::resolve(&recorded.settings, &config.proposed, config.reconfigure)?;
    let operation = match &config.action {
        Action::Run { .. } | Action::Healthcheck { .. } => unreachable!("main runs these"),
        Action::Relabel { target, role } => Operation::Relabel {
            target: target.clone(),
            role: *role,
        },
        Action::Promote { app, force } => Operation::Promote {
            app: app.clone(),
            force: *force,
        },
        Action::Rollback { app } => Operation::Rollback { app: app.clone() },
        Action::Canary { app, percent } => Operation::Canary {
            app: app.clone(),
            percent: *percent,
        },
        Action::Mirror { app, percent } => Operation::Mirror {
            app: app.clone(),
            percent: *percent,
        },
        Action::Abort { app } => Operation::Abort { app: app.clone() },
        Action::ProjectPromote { project, force } => Operation::ProjectPromote {
            project: project.clone(),
            force: *force,
        },
        Action::ProjectRollback { project } => Operation::ProjectRollback {
            project: project.clone(),
        },
        Action::ProjectCanary { project, percent } => Operation::ProjectCanary {
            project: project.clone(),
            percent: *percent,
        },
        Action::ProjectAbort { project } => Operation::ProjectAbort {
            project: project.clone(),
        },
        Action::Rollout {
            app,
            steps,
            pause,
            analysis,
            follow,
        } => {
            let op = Operation::Rollout {
                app: app.clone(),
                steps: steps.clone(),
                pause_ms: pause.as_millis() as u64,
                analysis: analysis.clone(),
            };
            change(config, &settings, &mut backend, &op).await?;
            if *follow {
                return follow_rollout(&mut backend, app).await;
            }
            return Ok(());
        }
        Action::Status { app, project, json } => {
            let only = match project {
                Some(p) => Only::Project(p),
                None => app.as_deref().map_or(Only::All, Only::App),
            };
            return status(config, &settings, &recorded, &backend, only, *json).await;
        }
        Action::Render { check } => {
            let Some(dir) = backend.dir.clone() else {
                return Err(Failure::SharedStore(
                    "render writes the directory store's files; on a redis:// store the leading controller renders for every host (see `pointsman status`)".into(),
                ));
            };
            return render_all(config, &settings, &dir, &mut backend.store, *check).await;
        }
        Action::History { app, json, limit } => {
            history(&recorded, app.as_deref(), *json, *limit);
            return Ok(());
        }
    };
    change(config, &settings, &mut backend, &operation).await
}

/// Records this command's settings choices in `state` where nothing was chosen before (or all
/// of them with `--reconfigure`), and checks that the settings it resolved at its start are
/// still those the state gives (another writer may have reconfigured meanwhile).
fn record_settings(state: &mut State, settings: &Settings, config: &Config) -> Result<(), Failure> {
    let (now, record) = settings::resolve(&state.settings, &config.proposed, config.reconfigure)?;
    if now != *settings {
        return Err(Failure::SettingsRaced);
    }
    state.settings = record;
    Ok(())
}

/// One operation on one app (or one Compose project): Docker is asked for the containers of
/// that app only, plus, when the app belongs to a project (now, or as the state's index last
/// saw it), those of the other apps of that project: they share its unit (one file), which is
/// rendered whole. Then the state store runs the transaction. Other apps' host claims come from
/// the state's index.
async fn change<S: StateStore, K: ConfigSink>(
    config: &Config,
    settings: &Settings,
    backend: &mut Backend<S, K>,
    op: &Operation,
) -> Result<(), Failure> {
    let recorded = backend.store.read()?;
    let app_label = settings.label("app");
    let (containers, listed) = match &backend.redis {
        Some(redis) => {
            // Every host's containers, as their controllers published them: one read.
            let all = redis.all_containers().map_err(BackendError::from)?;
            let mut listed: BTreeSet<String> = all
                .iter()
                .filter_map(|c| c.label(&app_label).map(str::to_string))
                .collect();
            if let Scope::App(app) = op.scope() {
                listed.insert(app.to_string());
            }
            (all, listed)
        }
        None => from_docker(settings, &recorded, op).await?,
    };
    let ((message, expected, removed), _) = backend.store.transact(&mut backend.sink, |state| {
        record_settings(state, settings, config)?;
        let mut fleet = Fleet::build(&containers, settings);
        let mut others = state.claims.clone();
        others.retain(|a, _| !listed.contains(a));
        fleet.set_outside_claims(others);
        let now = jiff::Timestamp::now();
        let mut apps: BTreeSet<String> = listed.clone();
        apps.extend(fleet.app_names().cloned());
        // The unit each app was published in (by the index), and the one it belongs to now.
        let mut units: BTreeSet<String> = BTreeSet::new();
        for a in &apps {
            units.insert(match state.claims.get(a).and_then(|c| c.project.as_deref()) {
                Some(p) => model::project_unit(p),
                None => a.clone(),
            });
            units.extend(fleet.unit_of(a));
        }
        apps.extend(fleet.held_apps());
        let (_, admitted) = ops::seed_admitted(
            state,
            &mut fleet,
            settings,
            apps.clone().iter().map(String::as_str),
            now,
            Actor::Cli,
        );
        apps.extend(admitted);
        for a in &apps {
            match fleet.claim(a) {
                Some(claim) => state.claims.insert(a.clone(), claim),
                None => state.claims.remove(a),
            };
        }
        let ctx = Context {
            now,
            by: Actor::Cli,
            app_label: &app_label,
        };
        let before = render::render_units(&fleet, state, settings, units.iter().map(String::as_str));
        let outcome = match ops::apply(op, &fleet, state, ctx) {
            Err(Refusal::UnknownProject { project, known }) if known.is_empty() => {
                let mut names: Vec<&str> = state.claims.values().filter_map(|c| c.project.as_deref()).collect();
                names.sort();
                names.dedup();
                return Err(Refusal::UnknownProject {
                    project,
                    known: if names.is_empty() {
                        String::new()
                    } else {
                        format!(" (known projects: {})", names.join(", "))
                    },
                }
                .into());
            }
            other => other?,
        };
        let updates = render::render_units(&fleet, state, settings, units.iter().map(String::as_str));
        // What Traefik must show afterwards (for --wait), and the names it must no longer have.
        let expected: BTreeMap<String, Dynamic> = updates
            .iter()
            .filter_map(|(unit, d)| d.clone().map(|d| (unit.clone(), d)))
            .collect();
        let names =
            |d: &Dynamic| -> Vec<String> { d.http.routers.keys().chain(d.http.services.keys()).cloned().collect() };
        let still: BTreeSet<String> = expected.values().flat_map(names).collect();
        let removed: Vec<String> = before
            .values()
            .flatten()
            .flat_map(names)
            .filter(|n| !still.contains(n))
            .collect();
        Ok::<_, Failure>(((outcome.message, expected, removed), updates))
    })?;
    println!("{message}");
    if let Some(redis) = &backend.redis
        && redis.leader().ok().flatten().is_none()
    {
        eprintln!(
            "pointsman: warning: no controller holds the leader's lease on {}; the change is recorded and reaches Traefik when one runs (pointsman run --store …)",
            redis.url()
        );
    }
    if let (Some(timeout), Some(apis)) = (config.wait, &config.traefik_api) {
        // Several Traefiks (one per host, a comma list): the change is served when all show it.
        let provider = if backend.redis.is_some() { "redis" } else { "file" };
        let dir = backend.dir.as_ref().map(Dir::path);
        let waits = apis
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|api| crate::traefik::api::wait_applied_via(api, provider, &expected, &removed, timeout, dir));
        let mut slowest = std::time::Duration::ZERO;
        for waited in futures::future::join_all(waits).await {
            slowest = slowest.max(waited.map_err(Failure::NotApplied)?);
        }
        println!("Traefik serves it ({} ms after the write)", slowest.as_millis());
    }
    Ok(())
}

/// The containers a change on the directory store needs, from Docker: those of the app
/// concerned, and of every app of its Compose project.
async fn from_docker(
    settings: &Settings,
    recorded: &State,
    op: &Operation,
) -> Result<(Vec<Container>, BTreeSet<String>), Failure> {
    let docker = Engine::connected().await?;
    let app_label = settings.label("app");
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut projects: Vec<String> = Vec::new();
    match op.scope() {
        Scope::App(app) => {
            wanted.insert(app.to_string());
        }
        // Docker resolves names and unique id prefixes; the target itself is resolved by
        // `ops::find_target` against the app's containers, like every other target.
        Scope::Container(name) => {
            if let Some(app) = docker
                .inspect(name)
                .await?
                .and_then(|c| c.label(&app_label).map(str::to_string))
            {
                wanted.insert(app);
            }
        }
        Scope::Project(project) => projects.push(project.to_string()),
    }
    let mut containers: Vec<Container> = Vec::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    let mut seen_projects: BTreeSet<String> = BTreeSet::new();
    // Apps lead to their projects, projects to their apps, until nothing new turns up (one
    // round for a normal stack).
    loop {
        for app in wanted
            .iter()
            .filter(|a| !listed.contains(*a))
            .cloned()
            .collect::<Vec<_>>()
        {
            let of_app = docker::list_app(&docker, settings, &app).await?;
            projects.extend(
                of_app
                    .iter()
                    .filter_map(|c| c.label(PROJECT_LABEL))
                    .filter(|p| is_project_name(p))
                    .map(str::to_string),
            );
            projects.extend(recorded.claims.get(&app).and_then(|c| c.project.clone()));
            containers.extend(of_app);
            listed.insert(app);
        }
        let new: Vec<String> = projects.drain(..).filter(|p| seen_projects.insert(p.clone())).collect();
        if new.is_empty() {
            break;
        }
        for project in new {
            let members = docker.list(PROJECT_LABEL, Some(&project)).await?;
            wanted.extend(
                members
                    .iter()
                    .filter_map(|c| c.label(&app_label))
                    .filter(|a| is_dns_label(a))
                    .map(str::to_string),
            );
            wanted.extend(
                recorded
                    .claims
                    .iter()
                    .filter(|(_, c)| c.project.as_deref() == Some(project.as_str()))
                    .map(|(a, _)| a.clone()),
            );
        }
    }
    Ok((containers, listed))
}

async fn containers(settings: &Settings) -> Result<Vec<Container>, Failure> {
    let docker = Engine::connected().await?;
    Ok(docker::list(&docker, settings).await?)
}

/// Every app, from a full listing: render and write (removing files of apps that are gone),
/// or with `check` only compare.
async fn render_all(
    config: &Config,
    settings: &Settings,
    dir: &Dir,
    store: &mut impl StateStore,
    check: bool,
) -> Result<(), Failure> {
    let mut sink = DirSink::new(dir);
    let all = containers(settings).await?;
    let mut fleet = Fleet::build(&all, settings);
    if check {
        let mut state = store.read()?;
        let seeding = ops::seed_all_admitted(&mut state, &mut fleet, settings, jiff::Timestamp::now(), Actor::Cli);
        for e in &fleet.errors() {
            eprintln!("warning: {e}");
        }
        let files = render::render_all(&fleet, &state, settings);
        let mut drift = Vec::new();
        for (app, config) in &files {
            let name = crate::backend::dir::file_name(app);
            match dir.read_file(&name)? {
                None => drift.push(format!("{name} is missing")),
                Some(current) if current != crate::backend::dir::encode(config) => {
                    drift.push(format!("{name} differs"))
                }
                Some(_) => {}
            }
        }
        for name in dir.owned_files()? {
            if crate::backend::dir::unit_of_file(&name).is_some_and(|a| !files.contains_key(a)) {
                drift.push(format!("{name} belongs to no app with containers"));
            }
        }
        if !seeding.transitions.is_empty() {
            drift.push("state.json would change (labels seed a role)".into());
        }
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
    let published = sink.published()?;
    sink.forget();
    let (count, changes) = store.transact(&mut sink, |state| {
        record_settings(state, settings, config)?;
        ops::seed_all_admitted(state, &mut fleet, settings, jiff::Timestamp::now(), Actor::Cli);
        state.claims = fleet.claims();
        let mut updates: Updates = render::render_all(&fleet, state, settings)
            .into_iter()
            .map(|(app, c)| (app, Some(c)))
            .collect();
        for stale in &published {
            updates.entry(stale.clone()).or_insert(None);
        }
        Ok::<_, Failure>((fleet.app_names().count(), updates))
    })?;
    for e in &fleet.errors() {
        eprintln!("warning: {e}");
    }
    println!(
        "{count} file(s) rendered; written: {}; removed: {}",
        list_or_none(&changes.written),
        list_or_none(&changes.removed)
    );
    Ok(())
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}

/// What `status` shows.
#[derive(Clone, Copy)]
enum Only<'a> {
    All,
    App(&'a str),
    Project(&'a str),
}

async fn status<S, K>(
    config: &Config,
    settings: &Settings,
    state: &State,
    backend: &Backend<S, K>,
    only: Only<'_>,
    as_json: bool,
) -> Result<(), Failure> {
    let all = match &backend.redis {
        Some(redis) => redis.all_containers().map_err(BackendError::from)?,
        None => containers(settings).await?,
    };
    let mut fleet = Fleet::build(&all, settings);
    let mut state = state.clone();
    // Show what the next render would do, without writing it.
    ops::seed_all_admitted(&mut state, &mut fleet, settings, jiff::Timestamp::now(), Actor::Cli);
    if let Only::App(app) = only
        && fleet.app(app).is_none()
        && !state.apps.contains_key(app)
    {
        return Err(ops::unknown_app(&fleet, app).into());
    }
    if let Only::Project(project) = only
        && fleet.project_apps(project).is_empty()
    {
        let known = fleet.projects();
        return Err(Refusal::UnknownProject {
            project: project.into(),
            known: if known.is_empty() {
                String::new()
            } else {
                format!(" (known projects: {})", known.join(", "))
            },
        }
        .into());
    }
    let mut names: Vec<&String> = fleet.app_names().chain(state.apps.keys()).collect();
    names.sort();
    names.dedup();
    let shown = |name: &str| match only {
        Only::All => true,
        Only::App(app) => app == name,
        Only::Project(project) => fleet.app(name).is_some_and(|a| a.project() == Some(project)),
    };
    let mut apps = BTreeMap::new();
    for name in names.into_iter().filter(|n| shown(n)) {
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
                            .map(|m| json!({ "name": m.name, "id": m.id.get(..12).unwrap_or(&m.id), "condition": m.condition, "url": m.url }))
                            .collect();
                        (s.name.clone(), json!({ "role": role, "servers": s.servers(), "containers": members }))
                    })
                    .collect();
                (resolved, slots)
            }
            None => (Default::default(), BTreeMap::new()),
        };
        let fleet_app = fleet.app(name);
        let of_candidate = |s: &Option<crate::core::state::Share>| {
            s.as_ref()
                .filter(|c| resolved.candidate.as_ref() == Some(&c.slot))
                .map(|c| c.percent)
        };
        let mut entry = json!({
            "project": fleet_app.and_then(|a| a.project()),
            "unit": fleet_app.map(|a| match backend.redis {
                    // On a shared store a unit is a set of Traefik keys, named by the unit.
                    Some(_) => a.unit(),
                    None => crate::backend::dir::file_name(&a.unit()),
                }),
            "canary": of_candidate(&roles.canary),
            "mirror": of_candidate(&roles.mirror),
            "stable": resolved.stable.clone().or(roles.stable.clone()),
            "candidate": resolved.candidate,
            "previous": roles.previous,
            "pinned": roles.pinned,
            "slots": slots,
        });
        // Only while one runs: the plan, and the step it is at (from 1).
        if let Some(r) = &roles.rollout {
            entry["rollout"] = json!({
                "slot": r.slot,
                "step": r.step.saturating_add(1),
                "steps": r.steps,
                "weight": r.weight(),
                "pause_ms": r.pause_ms,
                "since": r.since,
                "extended": r.extended,
                "judged": r.analysis.is_some(),
            });
        }
        apps.insert(name.clone(), entry);
    }
    let mut errors: Vec<String> = fleet.errors().iter().map(ToString::to_string).collect();
    if let Some(dir) = &backend.dir {
        errors.extend(
            crate::backend::foreign::Scanner::default()
                .scan(dir.path())
                .iter()
                .map(ToString::to_string),
        );
    }
    // On a shared store: which hosts publish containers, and which controller renders.
    let shared = match &backend.redis {
        Some(redis) => {
            let hosts: BTreeMap<String, usize> = redis
                .members()
                .map_err(BackendError::from)?
                .into_iter()
                .map(|(h, m)| (h, m.containers.len()))
                .collect();
            let leader = redis
                .leader()
                .map_err(BackendError::from)?
                .map(|t| t.split_once('/').map_or(t.clone(), |(h, _)| h.to_string()));
            Some(json!({ "store": redis.url().to_string(), "leader": leader, "hosts": hosts }))
        }
        None => None,
    };
    if as_json {
        let doc = match &shared {
            Some(shared) => {
                json!({ "store": shared["store"], "leader": shared["leader"], "hosts": shared["hosts"], "apps": apps, "errors": errors })
            }
            None => json!({ "dir": config.dir, "apps": apps, "errors": errors }),
        };
        println!("{}", serde_json::to_string_pretty(&doc).expect("serialises"));
        return Ok(());
    }
    if let Some(shared) = &shared {
        let hosts: Vec<String> = shared["hosts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(h, n)| format!("{h} ({n} containers)"))
            .collect();
        println!(
            "store {}: leader {}; hosts: {}",
            shared["store"].as_str().unwrap_or(""),
            shared["leader"]
                .as_str()
                .unwrap_or("none (no controller holds the lease)"),
            list_or_none(&hosts)
        );
    }
    if apps.is_empty() {
        println!("no apps: no container carries the label {}", settings.label("app"));
    }
    if let Only::Project(project) = only {
        println!(
            "project {project}: {} app(s), published together in {}",
            apps.len(),
            crate::backend::dir::file_name(&model::project_unit(project))
        );
    }
    for (name, app) in &apps {
        let show = |k: &str| app[k].as_str().unwrap_or("-").to_string();
        let mut canary = app["canary"]
            .as_u64()
            .map(|p| format!(" canary={p}%"))
            .unwrap_or_default();
        if let Some(p) = app["mirror"].as_u64() {
            canary.push_str(&format!(" mirror={p}%"));
        }
        if let Some(r) = app["rollout"].as_object() {
            let steps: Vec<String> = r["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s.to_string())
                .collect();
            canary.push_str(&format!(
                " rollout=step {} of {} ({}%, each held {} ms)",
                r["step"],
                steps.len(),
                steps.join(","),
                r["pause_ms"]
            ));
        }
        println!(
            "{name}: stable={} candidate={} previous={}{canary}",
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
    // A detail may quote a URL the operator gave (a rollout's metrics URL): never its password.
    if as_json {
        let mut value = serde_json::to_value(entries).expect("serialises");
        crate::observe::redact::redact_json(&mut value);
        println!("{}", serde_json::to_string_pretty(&value).expect("serialises"));
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
            "{}  {:<12} {:<9} {} -> {}  by {}{}{}",
            t.at,
            t.app,
            action,
            t.from.as_deref().unwrap_or("-"),
            t.to,
            by,
            t.detail
                .as_deref()
                .map(|d| format!(": {}", crate::observe::redact::redact(d)))
                .unwrap_or_default(),
            t.id.as_deref().map(|id| format!("  [{id}]")).unwrap_or_default()
        );
    }
}

/// `rollout APP --wait`: follows the rollout the controller drives, printing each step, until
/// the candidate is promoted (Ok) or the rollout is aborted (exit 1, naming why).
async fn follow_rollout<S: StateStore, K>(backend: &mut Backend<S, K>, app: &str) -> Result<(), Failure> {
    use crate::core::state::Action as Done;
    let mut printed = 0;
    loop {
        let state = backend.store.read()?;
        // Everything recorded for the app since the rollout this command started.
        let since_start: Vec<_> = state
            .history
            .iter()
            .rev()
            .filter(|t| t.app == app)
            .take_while(|t| t.action != Done::Rollout)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        for t in since_start.iter().skip(printed) {
            let detail = t.detail.as_deref().unwrap_or("");
            match t.action {
                Done::Step => println!("{}  {detail}", t.at),
                Done::Promote | Done::Relabel | Done::Rollback => {
                    println!("{}  slot {} is stable: {detail}", t.at, t.to);
                    return Ok(());
                }
                Done::Abort => return Err(Failure::Aborted(format!("app {app}: {detail}"))),
                _ => {}
            }
        }
        printed = since_start.len();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
