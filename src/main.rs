//! The binary edge: parse and validate arguments, run one command, map the outcome to an
//! exit code (0 done, 1 refused, 2 usage/config/Docker/I-O error) and print the error once.

use std::process::ExitCode;

use clap::Parser;
use pointsman::backend::StateStore;
use pointsman::backend::dir::{Dir, DirSink, FileStateStore};
use pointsman::cli::{Action, Args, Config, LogFormat};
use pointsman::controller;
use pointsman::core::settings;
use pointsman::docker::watcher::WatchOptions;
use pointsman::observe::Observer;
use pointsman::observe::redact::redact;
use std::sync::Arc;

fn main() -> ExitCode {
    let config = match Args::parse().validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pointsman: {}", redact(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    // One thread: pointsman waits on Docker and the disk, never on CPU, and every thread
    // would cost its own malloc arena (RSS measured with 1,000 containers).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pointsman: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        match &config.action {
            Action::Run { .. } => run(&config).await,
            Action::Healthcheck { url } => healthcheck(url).await,
            _ => match pointsman::cli::commands::execute(&config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let code = e.exit_code();
                    let kind = if code == 1 { "refused" } else { "error" };
                    eprintln!("pointsman: {kind}: {}", redact(&with_causes(&e)));
                    ExitCode::from(code)
                }
            },
        }
    })
}

async fn run(config: &Config) -> ExitCode {
    let Action::Run {
        resync_every,
        backoff_cap,
        listen,
        ref status,
        ref host,
    } = config.action
    else {
        unreachable!()
    };
    if let (Some(redis), Some(host)) = (&config.redis, host) {
        return run_on_redis(config, redis, host.clone(), resync_every, backoff_cap, (listen, status)).await;
    }
    // Refuse to start on a corrupt state file rather than discover it at the first event, and
    // on flags that contradict the recorded settings.
    let prepared = Dir::open(&config.dir).map_err(|e| e.to_string()).and_then(|dir| {
        let mut store = FileStateStore::new(&dir);
        let recorded = store.read().map_err(|e| e.to_string())?;
        let (settings, record) =
            settings::resolve(&recorded.settings, &config.proposed, config.reconfigure).map_err(|e| e.to_string())?;
        if config.reconfigure && recorded.settings != record {
            let mut sink = DirSink::new(&dir);
            store
                .transact(&mut sink, |state| {
                    state.settings = record.clone();
                    Ok::<_, pointsman::backend::BackendError>(((), Default::default()))
                })
                .map_err(|e| e.to_string())?;
        }
        Ok((dir, store, settings))
    });
    let (dir, store, settings) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let opts = WatchOptions {
        resync_every,
        backoff_cap,
        ..WatchOptions::default()
    };
    tracing::info!(dir = %config.dir.display(), docker = %pointsman::docker::host(), "pointsman controller starting");
    let observer = Arc::new(Observer::new());
    if let Err(code) = serve_status((listen, status), &observer, config) {
        return code;
    }
    let sink = DirSink::new(&dir);
    let docker = std::sync::Arc::new(pointsman::docker::Engine::new());
    match controller::run(
        docker,
        settings,
        config.proposed.clone(),
        store,
        sink,
        Some(dir.path().to_path_buf()),
        opts,
        observer,
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `pointsman run --store redis://…`: one host of several (see `pointsman::multihost`).
async fn run_on_redis(
    config: &Config,
    redis: &pointsman::cli::RedisStoreConfig,
    host: pointsman::multihost::HostOptions,
    resync_every: std::time::Duration,
    backoff_cap: std::time::Duration,
    listen: (Option<std::net::SocketAddr>, &pointsman::observe::http::Options),
) -> ExitCode {
    let shared = pointsman::backend::redis::Redis::new(redis.url.clone());
    // Refuse to start where Traefik would never see a change, on a corrupt state, and on flags
    // that contradict the recorded settings.
    if let Err(e) = pointsman::multihost::check_notifications(&shared, &host.host_id) {
        tracing::error!("{e}");
        return ExitCode::from(2);
    }
    let prepared = (|| {
        let mut store = shared.store();
        let recorded = store.read().map_err(|e| e.to_string())?;
        let (settings, record) =
            settings::resolve(&recorded.settings, &config.proposed, config.reconfigure).map_err(|e| e.to_string())?;
        if config.reconfigure && recorded.settings != record {
            store
                .transact(&mut pointsman::backend::redis::NoSink, |state| {
                    state.settings = record.clone();
                    Ok::<_, pointsman::backend::BackendError>(((), Default::default()))
                })
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(settings)
    })();
    let settings = match prepared {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let observer = Arc::new(Observer::new());
    if let Err(code) = serve_status(listen, &observer, config) {
        return code;
    }
    let opts = WatchOptions {
        resync_every,
        backoff_cap,
        ..WatchOptions::default()
    };
    let docker = Arc::new(pointsman::docker::Engine::new());
    match pointsman::multihost::run(
        docker,
        settings,
        config.proposed.clone(),
        shared,
        host,
        opts,
        observer,
        shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `run --listen`: serves /metrics, /healthz and the status page. Bound before the controller
/// starts, so a taken port is a clear error (exit 2) at once.
fn serve_status(
    (listen, options): (Option<std::net::SocketAddr>, &pointsman::observe::http::Options),
    observer: &Arc<Observer>,
    config: &Config,
) -> Result<(), ExitCode> {
    let Some(addr) = listen else { return Ok(()) };
    match pointsman::observe::http::spawn(addr, observer.clone(), config.traefik_metrics.clone(), options.clone()) {
        Ok(bound) => {
            tracing::info!("serving /metrics, /healthz and the status page on http://{bound}/");
            Ok(())
        }
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}; pass --listen with another address, or --listen off");
            Err(ExitCode::from(2))
        }
    }
}

/// `pointsman healthcheck`: the image's and Compose's HEALTHCHECK. It only asks the
/// controller's `/healthz` (no Docker, no lock), so it never competes with the controller.
async fn healthcheck(url: &str) -> ExitCode {
    match pointsman::observe::http::healthcheck(url).await {
        Ok(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("unhealthy{why}");
            ExitCode::from(1)
        }
    }
}

/// The error and each cause in its chain that its message does not already say (bollard's
/// "client error (Connect)" hides whether the name did not resolve or the port refused).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        cause = c.source();
    }
    text
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POINTSMAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Every line masked: an error may quote a URL with its password (see observe::redact).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| pointsman::observe::redact::Redacting(std::io::stderr()))
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
