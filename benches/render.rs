//! Render + write of 1,000 apps through the library, timed with `std::time` (issue 4, target
//! ≤ 50 ms). Run: `cargo bench --bench render`; with `POINTSMAN_BENCH_OUT=FILE` the figures are
//! also written there as JSON for `bench/report.py`.
//!
//! The fleet: 1,000 apps, each with a `blue` (labelled stable) and a `green` (candidate) slot of
//! one running container: 2,000 containers, shaped as Docker's inspect describes them. Files go
//! to a directory under Cargo's target tmp dir, on the same disk as the repository, through
//! `Store::sync`: temp file in `.pointsman/`, fsync, rename, fsync directory, per file.
//!
//! Cases, each timed several times (median, min, max):
//! - `fleet`: `Fleet::build` of the 2,000 containers.
//! - `render`: `render_all` of the 1,000 apps.
//! - `first write`: `sync` into an empty directory (1,000 files written).
//! - `no change`: `sync` of identical bytes (1,000 files read and compared, none written).
//! - `one app flips`: what the controller does per change: lock, load state, seed, build,
//!   render, sync (one file written), save state.
//! - `all apps flip`: the same with every app's stable slot switched (1,000 files rewritten):
//!   the headline "render + write of 1,000 apps".
//! - `batched fsync`, `no fsync`: what-ifs outside the library, the same 1,000 rewrites with
//!   each temp file fsynced but one directory fsync at the end, and with no fsync at all, to
//!   show how much of `all apps flip` is durability work.
//! - `all apps flip, tmpfs`: the headline case with the directory in `/dev/shm`, without a disk.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pointsman::backend::dir::{self, Dir, DirSink, FileStateStore};
use pointsman::backend::{ConfigSink, StateStore, Updates};
use pointsman::controller::{Controller, Input};
use pointsman::core::container::{Container, ContainerConfig, ContainerState, Endpoint, NetworkSettings};
use pointsman::core::model::Fleet;
use pointsman::core::ops;
use pointsman::core::render;
use pointsman::core::settings::Settings;
use pointsman::core::state::{Actor, State};
use pointsman::docker::watcher::WatchEvent;

const APPS: usize = 1000;

fn main() {
    let settings = Settings::default();
    let containers = fleet_of(APPS);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("render-bench");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).expect("bench directory");

    let mut state = State::default();
    let fleet = Fleet::build(&containers, &settings);
    ops::seed(&mut state, &fleet, jiff::Timestamp::now(), Actor::Controller);
    let files = encoded(&render::render_all(&fleet, &state, &settings));
    let updates = as_updates(&render::render_all(&fleet, &state, &settings));
    assert_eq!(files.len(), APPS, "every app renders a file");
    assert!(
        fleet.errors().is_empty(),
        "fixture containers are valid: {:?}",
        fleet.errors().first()
    );
    let bytes: usize = files.values().map(Vec::len).sum();

    let mut results = Vec::new();
    let mut case = |name: &str, about: &str, runs: usize, f: &mut dyn FnMut() -> Duration| {
        results.push(run_case(name, about, runs, f));
    };

    case("fleet", "Fleet::build of 2,000 containers", 50, &mut || {
        time(|| drop(Fleet::build(&containers, &settings)))
    });
    case("render", "render_all of 1,000 apps", 50, &mut || {
        time(|| drop(render::render_all(&fleet, &state, &settings)))
    });

    let mut n = 0;
    case(
        "first write",
        "sync into an empty directory: 1,000 files written",
        10,
        &mut || {
            n += 1;
            let dir = root.join(format!("empty-{n}"));
            fs::create_dir_all(&dir).unwrap();
            let elapsed = time(|| {
                let d = Dir::open(&dir).unwrap();
                let _lock = d.lock().unwrap();
                let changes = DirSink::new(&d).publish(&updates).unwrap();
                assert_eq!(changes.written.len(), APPS);
            });
            fs::remove_dir_all(&dir).unwrap();
            elapsed
        },
    );

    let dir = root.join("steady");
    fs::create_dir_all(&dir).unwrap();
    let steady = Dir::open(&dir).unwrap();
    let mut store = FileStateStore::new(&steady);
    let mut sink = DirSink::new(&steady);
    let seeded = state.clone();
    store
        .transact(&mut sink, |s| {
            *s = seeded.clone();
            Ok::<_, pointsman::backend::BackendError>(((), updates.clone()))
        })
        .unwrap();
    case(
        "no change",
        "publish of identical bytes, nothing remembered: 1,000 files compared, none written",
        50,
        &mut || {
            time(|| {
                let _lock = steady.lock().unwrap();
                let mut fresh = DirSink::new(&steady);
                assert!(fresh.publish(&updates).unwrap().is_empty());
            })
        },
    );
    // The controller's path since the incremental reconcile: one container changes (a Docker
    // event, inspected), one app is rendered and its file written, under the state transaction.
    let mut ctl = Controller::new(
        settings.clone(),
        Default::default(),
        FileStateStore::new(&steady),
        DirSink::new(&steady),
        None,
    );
    ctl.apply(Input::Watch(WatchEvent::Resync(containers.clone())));
    ctl.reconcile().unwrap();
    let mut events = 0usize;
    case(
        "one event",
        "controller: one container stops or starts, its app re-rendered, 1 file written",
        200,
        &mut || {
            events += 1;
            let original = containers[(events * 7919) % containers.len()].clone();
            let mut stopped = original.clone();
            stopped.state.running = false;
            let elapsed = time(|| {
                ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(stopped))));
                ctl.reconcile().unwrap();
            });
            // Start it again (untimed) so the next event changes something again.
            ctl.apply(Input::Watch(WatchEvent::Upsert(Box::new(original))));
            ctl.reconcile().unwrap();
            elapsed
        },
    );

    let mut flips = 0;
    case(
        "one app flips",
        "lock, load state, seed, build, render, sync (1 file written), save state",
        50,
        &mut || {
            flips += 1;
            let app = format!("a{:04}", flips % APPS);
            time(|| {
                let written = reconcile(&mut store, &mut sink, &containers, &settings, |state| flip(state, &app));
                assert_eq!(written, 1);
            })
        },
    );
    case(
        "all apps flip",
        "the same with every app switched: 1,000 files rewritten",
        10,
        &mut || {
            time(|| {
                let written = reconcile(&mut store, &mut sink, &containers, &settings, |state| {
                    let apps: Vec<String> = state.apps.keys().cloned().collect();
                    apps.iter().for_each(|app| flip(state, app));
                });
                assert_eq!(written, APPS);
            })
        },
    );

    // What-ifs, not the library's code path: the same 1,000 rewrites with the durability work
    // arranged differently, to show where the time of `all apps flip` goes.
    let rendered: Vec<BTreeMap<String, Vec<u8>>> = ["green", "blue"]
        .iter()
        .map(|stable| {
            let mut s = state.clone();
            s.apps.values_mut().for_each(|r| r.stable = Some(stable.to_string()));
            encoded(&render::render_all(&fleet, &s, &settings))
        })
        .collect();
    let mut turn = 0;
    for (name, about, durability) in [
        (
            "batched fsync",
            "what-if: 1,000 temp files written, each fsynced, renamed, one directory fsync",
            Durability::Batched,
        ),
        (
            "no fsync",
            "what-if: 1,000 temp files written and renamed, no fsync at all",
            Durability::None,
        ),
    ] {
        case(name, about, 10, &mut || {
            turn += 1;
            time(|| write_all(&dir, &rendered[turn % 2], durability))
        });
    }

    // The same headline case with the directory on tmpfs: no disk under the writes, so what is
    // left is pointsman's CPU time and the syscalls.
    let shm = PathBuf::from("/dev/shm").join(format!("pointsman-render-bench-{}", std::process::id()));
    if fs::create_dir_all(&shm).is_ok() {
        let shm_dir = Dir::open(&shm).unwrap();
        let mut store = FileStateStore::new(&shm_dir);
        let mut sink = DirSink::new(&shm_dir);
        let seeded = state.clone();
        store
            .transact(&mut sink, |s| {
                *s = seeded.clone();
                Ok::<_, pointsman::backend::BackendError>(((), updates.clone()))
            })
            .unwrap();
        case(
            "all apps flip, tmpfs",
            "`all apps flip` with the directory on tmpfs (/dev/shm)",
            10,
            &mut || {
                time(|| {
                    let written = reconcile(&mut store, &mut sink, &containers, &settings, |state| {
                        let apps: Vec<String> = state.apps.keys().cloned().collect();
                        apps.iter().for_each(|app| flip(state, app));
                    });
                    assert_eq!(written, APPS);
                })
            },
        );
        let _ = fs::remove_dir_all(&shm);
    }
    let _ = fs::remove_dir_all(&root);

    println!(
        "render-bench: {APPS} apps, {} containers, {} KiB of config",
        containers.len(),
        bytes / 1024
    );
    if let Ok(path) = std::env::var("POINTSMAN_BENCH_OUT") {
        fs::write(&path, json(&results, containers.len(), bytes)).expect("write POINTSMAN_BENCH_OUT");
    }
}

/// A full render in one transaction (what every event cost before the incremental reconcile),
/// with `change` standing in for a role change. Returns how many files were written.
fn reconcile(
    store: &mut FileStateStore,
    sink: &mut DirSink,
    containers: &[Container],
    settings: &Settings,
    change: impl Fn(&mut State),
) -> usize {
    let fleet = Fleet::build(containers, settings);
    let ((), changes) = store
        .transact(sink, |state| {
            ops::seed(state, &fleet, jiff::Timestamp::now(), Actor::Controller);
            change(state);
            Ok::<_, pointsman::backend::BackendError>(((), as_updates(&render::render_all(&fleet, state, settings))))
        })
        .unwrap();
    changes.written.len()
}

fn encoded(configs: &BTreeMap<String, pointsman::core::traefik::Dynamic>) -> BTreeMap<String, Vec<u8>> {
    configs
        .iter()
        .map(|(app, c)| (dir::file_name(app), dir::encode(c)))
        .collect()
}

fn as_updates(configs: &BTreeMap<String, pointsman::core::traefik::Dynamic>) -> Updates {
    configs.iter().map(|(app, c)| (app.clone(), Some(c.clone()))).collect()
}

#[derive(Clone, Copy)]
enum Durability {
    Batched,
    None,
}

/// Writes every file through a temp file in `.pointsman/` and a rename, like `Store::sync`, but
/// with the fsyncs arranged as `durability` says.
fn write_all(dir: &Path, files: &BTreeMap<String, Vec<u8>>, durability: Durability) {
    use std::io::Write;
    let tmp_dir = dir.join(".pointsman");
    let mut renames = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let tmp = tmp_dir.join(format!("{name}.bench.tmp"));
        let mut f = fs::File::create(&tmp).unwrap();
        f.write_all(bytes).unwrap();
        if let Durability::Batched = durability {
            f.sync_all().unwrap();
        }
        renames.push((tmp, dir.join(name)));
    }
    for (tmp, dest) in renames {
        fs::rename(tmp, dest).unwrap();
    }
    if let Durability::Batched = durability {
        fs::File::open(dir).unwrap().sync_all().unwrap();
    }
}

/// Switches an app's stable slot between blue and green (as a promote or rollback would).
fn flip(state: &mut State, app: &str) {
    let roles = state.apps.get_mut(app).expect("seeded app");
    let next = if roles.stable.as_deref() == Some("blue") {
        "green"
    } else {
        "blue"
    };
    roles.previous = roles.stable.replace(next.to_string());
}

fn fleet_of(apps: usize) -> Vec<Container> {
    let mut out = Vec::with_capacity(apps * 2);
    for a in 0..apps {
        for (s, (slot, role)) in [("blue", "stable"), ("green", "candidate")].into_iter().enumerate() {
            let n = a * 2 + s;
            let app = format!("a{a:04}");
            let labels = BTreeMap::from([
                ("pointsman.app".to_string(), app.clone()),
                ("pointsman.slot".to_string(), slot.to_string()),
                ("pointsman.version".to_string(), role.to_string()),
                ("pointsman.host".to_string(), format!("{app}.example.com")),
            ]);
            out.push(Container {
                id: format!("{n:064x}"),
                name: format!("/{app}-{slot}-1"),
                created: format!("2026-11-26T04:{:02}:{:02}.{n:06}Z", n / 60 % 60, n % 60),
                state: ContainerState {
                    status: "running".into(),
                    running: true,
                    started_at: format!("2026-11-26T05:{:02}:{:02}.{n:06}Z", n / 60 % 60, n % 60),
                    ..Default::default()
                },
                config: ContainerConfig {
                    labels: Some(labels),
                    exposed_ports: Some(BTreeMap::from([("80/tcp".to_string(), serde_json::json!({}))])),
                },
                network_settings: NetworkSettings {
                    networks: Some(BTreeMap::from([(
                        "bench".to_string(),
                        Endpoint {
                            ip_address: format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255),
                        },
                    )])),
                    ports: None,
                },
                advertise: None,
                host: None,
            });
        }
    }
    out
}

/// Runs `f` once to warm up, then `runs` times; prints and returns the sorted times.
fn run_case(name: &str, about: &str, runs: usize, f: &mut dyn FnMut() -> Duration) -> CaseResult {
    f();
    let mut times: Vec<Duration> = (0..runs).map(|_| f()).collect();
    times.sort();
    let r = CaseResult {
        name: name.into(),
        about: about.into(),
        runs,
        times,
    };
    println!(
        "render-bench: {:<14} median {:>8.2} ms  min {:>8.2}  max {:>8.2}  ({runs} runs; {about})",
        r.name,
        ms(r.median()),
        ms(r.times[0]),
        ms(*r.times.last().unwrap())
    );
    r
}

struct CaseResult {
    name: String,
    about: String,
    runs: usize,
    /// Sorted.
    times: Vec<Duration>,
}

impl CaseResult {
    fn median(&self) -> Duration {
        self.times[(self.times.len() - 1) / 2]
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn json(results: &[CaseResult], containers: usize, bytes: usize) -> String {
    let cases: Vec<String> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "about": r.about,
                "runs": r.runs,
                "median_ms": ms(r.median()),
                "min_ms": ms(r.times[0]),
                "max_ms": ms(*r.times.last().unwrap()),
            })
            .to_string()
        })
        .collect();
    format!(
        "{{\"apps\": {APPS}, \"containers\": {containers}, \"bytes\": {bytes}, \"dir\": {:?}, \"cases\": [\n  {}\n]}}\n",
        Path::new(env!("CARGO_TARGET_TMPDIR")).display().to_string(),
        cases.join(",\n  ")
    )
}
