//! Bounds under churn (issue 16, point 8): 10,000 short-lived apps, each created and then
//! removed, driven through the real watcher and controller against the in-memory Docker
//! (`docker::fake`), under paused time, with the real directory backend. Prints the resident
//! size (VmRSS, and the peak VmHWM, from `/proc/self/status`) before, during and after, and
//! the state file's size; fails (panics, non-zero exit) if it cannot measure, or if anything
//! the state or the metrics keep per app is left growing. Run: `cargo bench --bench churn`.
//!
//! Apps come in waves of 100 (start 100, let the controller settle, remove them, settle), so
//! the run does 200 waves of real renders and state writes. Each app is one container labelled
//! `version=stable`, so every app is seeded (a history entry, roles in the state, a claim, a
//! transition counter) and then leaves no container. The directory is on tmpfs (`/dev/shm`)
//! when there is one, so the figure is about memory, not the disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pointsman::backend::StateStore;
use pointsman::backend::dir::{Dir, DirSink, FileStateStore};
use pointsman::controller;
use pointsman::core::settings::{Choices, Settings};
use pointsman::core::state::{GONE_APPS_KEPT, HISTORY_LIMIT};
use pointsman::docker::fake::{FakeDocker, container, id_of};
use pointsman::docker::watcher::WatchOptions;
use pointsman::observe::Observer;

const APPS: usize = 10_000;
const WAVE: usize = 100;

/// `VmRSS` and `VmHWM` in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status for VmRSS");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("/proc/self/status has no {name} line"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    };
    let root = base.join(format!("pointsman-churn-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    let dir = Dir::open(&root).expect("bench directory");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let (figures, state_bytes, state, metrics_bytes, files) = runtime.block_on(async {
        let docker = FakeDocker::new();
        let observer = Arc::new(Observer::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let (docker, dir, observer) = (docker.clone(), dir.clone(), observer.clone());
            async move {
                let opts = WatchOptions {
                    backoff_seed: Some(1),
                    ..WatchOptions::default()
                };
                controller::run(
                    Arc::new(docker),
                    Settings::default(),
                    Choices::default(),
                    FileStateStore::new(&dir),
                    DirSink::new(&dir),
                    None,
                    opts,
                    observer,
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
            }
        });
        let settle = || tokio::time::sleep(Duration::from_millis(200));
        settle().await;
        let mut figures = vec![("before", memory(), 0usize)];
        for wave in 0..APPS / WAVE {
            let names: Vec<String> = (0..WAVE).map(|i| format!("app{}", wave * WAVE + i)).collect();
            for (i, name) in names.iter().enumerate() {
                docker.run(
                    container(name)
                        .app(name)
                        .version("stable")
                        .port(80)
                        .network("edge", &format!("10.{}.{}.{}", wave / 250, wave % 250, i + 1))
                        .build(),
                );
            }
            settle().await;
            if wave == 0 {
                let file = dir.read_file("pointsman-app0.yml").expect("reading a rendered file");
                assert!(file.is_some(), "the controller renders the apps it is driven with");
            }
            for name in &names {
                docker.stop(&id_of(name));
                docker.destroy(&id_of(name));
            }
            settle().await;
            let done = (wave + 1) * WAVE;
            if done == 1_000 || done == 5_000 || done == APPS {
                figures.push(("after", memory(), done));
            }
        }
        stop.send(()).expect("the controller runs");
        task.await
            .expect("the controller task")
            .expect("the controller ran without error");
        let state_bytes = std::fs::metadata(dir.state_path()).expect("the state file").len();
        let state = FileStateStore::new(&dir).read().expect("reading the state");
        let text = observer.metrics.encode();
        assert!(
            !text.contains("app=\"app"),
            "no per-app metric series is left for apps that are gone"
        );
        let metrics_bytes = text.len();
        let files = dir.owned_files().expect("listing the directory").len();
        (figures, state_bytes, state, metrics_bytes, files)
    });

    println!(
        "churn: {APPS} apps created then removed, in waves of {WAVE} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for (when, (rss, hwm), apps) in &figures {
        println!(
            "  {when:<6} {apps:>6} apps: VmRSS {:>10}  VmHWM {:>10}",
            mib(*rss),
            mib(*hwm)
        );
    }
    println!(
        "  state file: {state_bytes} bytes ({:.1} KiB): {} apps with roles (all gone), {} claims, {} history entries",
        state_bytes as f64 / 1024.0,
        state.apps.len(),
        state.claims.len(),
        state.history.len()
    );
    println!("  /metrics: {metrics_bytes} bytes; files left in the directory: {files}");
    let _ = std::fs::remove_dir_all(&root);

    assert!(state.claims.is_empty(), "claims of apps with no container are dropped");
    assert!(state.history.len() <= HISTORY_LIMIT, "history is bounded");
    assert!(state.apps.len() <= GONE_APPS_KEPT, "roles of gone apps are bounded");
    assert_eq!(files, 0, "every file of a gone app is removed");
    let after_1k = figures.iter().find(|f| f.2 == 1_000).expect("a figure at 1,000").1.0;
    let after_10k = figures.last().expect("a last figure").1.0;
    assert!(
        after_10k < after_1k + 16 * 1024,
        "resident size keeps growing with apps that are gone: {} after 1,000, {} after 10,000",
        mib(after_1k),
        mib(after_10k)
    );
}
