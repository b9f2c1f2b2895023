//! Turns Docker into a stream of [`WatchEvent`]s for the controller.
//!
//! A state machine per connection: connect → subscribe to events → list everything
//! (`Resync`) → apply events one by one, inspecting only the container each one names
//! (`Upsert`/`Remove`), with a full `Resync` every `resync_every` as a safety net. Any error
//! drops the connection, waits a capped, jittered backoff and starts over; it never gives up.
//!
//! Subscribing before listing closes the gap Traefik's own Docker provider has (it lists,
//! then subscribes, and can miss a change in between). The events request is issued first,
//! by a task that starts forwarding at once, and carries `since` a moment before the listing,
//! so an event that happens while the listing runs is replayed rather than lost.

use std::time::Duration;

use bollard::Docker;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::core::container::Container;
use crate::core::settings::Settings;
use crate::docker::backoff::Backoff;
use crate::docker::{self, DockerError};

#[derive(Debug)]
pub enum WatchEvent {
    /// Everything Docker has, replacing the whole snapshot at once.
    Resync(Vec<Container>),
    Upsert(Box<Container>),
    Remove(String),
    /// Docker sent the container a terminating signal (`docker stop`, `rm -f`, `compose up`
    /// recreating it): take it out of the pool now, while it drains, instead of at `die`.
    Stopping(String),
    /// The connection to Docker is lost; the controller keeps the files as they are.
    Lost(String),
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub resync_every: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A connection that lasted this long resets the backoff.
    pub healthy_after: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            resync_every: Duration::from_secs(60),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
        }
    }
}

const CONTAINER_ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "kill",
    "die",
    "stop",
    "destroy",
    "pause",
    "unpause",
    "health_status",
    "rename",
];

/// Signals after which a container is on its way out. Others (`docker kill -s HUP`, often a
/// reload) leave it in the pool.
const TERMINATING_SIGNALS: &[&str] = &[
    "15", "9", "2", "3", "SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "TERM", "KILL", "INT", "QUIT",
];
const NETWORK_ACTIONS: &[&str] = &["connect", "disconnect"];

/// Runs until the receiver is dropped.
pub async fn run(settings: Settings, opts: WatchOptions, tx: mpsc::Sender<WatchEvent>) {
    let mut backoff = Backoff::from_entropy(opts.backoff_base, opts.backoff_cap);
    loop {
        let started = tokio::time::Instant::now();
        let reason = match watch_once(&settings, &opts, &tx).await {
            Ok(()) => return, // receiver gone: the controller is shutting down
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= opts.healthy_after {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        warn!(error = %reason, retry_in_ms = delay.as_millis() as u64, "lost Docker; routing stays as written, retrying");
        if tx.send(WatchEvent::Lost(reason)).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// One connection's life. `Ok(())` only when the controller has gone away.
async fn watch_once(
    settings: &Settings,
    opts: &WatchOptions,
    tx: &mpsc::Sender<WatchEvent>,
) -> Result<(), DockerError> {
    let docker = docker::connect().await?;
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward_events(docker.clone(), ev_tx));
    let _abort = AbortOnDrop(forwarder);
    tokio::task::yield_now().await;

    let t0 = tokio::time::Instant::now();
    let all = docker::list(&docker, settings).await?;
    info!(
        containers = all.len(),
        ms = t0.elapsed().as_millis() as u64,
        "synced with Docker"
    );
    if tx.send(WatchEvent::Resync(all)).await.is_err() {
        return Ok(());
    }

    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + opts.resync_every, opts.resync_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let out = tokio::select! {
            msg = events.recv() => match msg {
                Some(Ok(msg)) => match relevant(&msg, settings) {
                    Some(Relevant::Gone(id)) => WatchEvent::Remove(id),
                    Some(Relevant::Stopping(id)) => WatchEvent::Stopping(id),
                    Some(Relevant::Changed(id)) => match docker::inspect(&docker, &id).await? {
                        Some(c) if c.label(&settings.label("app")).is_some() => WatchEvent::Upsert(Box::new(c)),
                        Some(_) => continue,
                        None => WatchEvent::Remove(id),
                    },
                    None => continue,
                },
                Some(Err(e)) => return Err(e),
                None => return Err(DockerError::Shape("the event stream ended".into())),
            },
            _ = tick.tick() => {
                debug!("periodic resync");
                WatchEvent::Resync(docker::list(&docker, settings).await?)
            }
        };
        if tx.send(out).await.is_err() {
            return Ok(());
        }
    }
}

enum Relevant {
    Changed(String),
    Stopping(String),
    Gone(String),
}

fn relevant(msg: &EventMessage, settings: &Settings) -> Option<Relevant> {
    let action = msg.action.as_deref()?;
    let actor = msg.actor.as_ref()?;
    let attrs = actor.attributes.as_ref();
    match msg.typ? {
        EventMessageTypeEnum::CONTAINER => {
            // Container events carry the container's labels: skip foreign containers early.
            attrs?.get(&settings.label("app"))?;
            let id = actor.id.clone()?;
            match action {
                "destroy" => Some(Relevant::Gone(id)),
                "kill" => {
                    let signal = attrs?.get("signal").map(String::as_str).unwrap_or("");
                    TERMINATING_SIGNALS.contains(&signal).then_some(Relevant::Stopping(id))
                }
                _ => Some(Relevant::Changed(id)),
            }
        }
        EventMessageTypeEnum::NETWORK => Some(Relevant::Changed(attrs?.get("container")?.clone())),
        _ => None,
    }
}

async fn forward_events(docker: Docker, tx: mpsc::UnboundedSender<Result<EventMessage, DockerError>>) {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(2))
        .unwrap_or(0);
    let mut actions: Vec<String> = CONTAINER_ACTIONS
        .iter()
        .chain(NETWORK_ACTIONS)
        .map(|s| s.to_string())
        .collect();
    actions.sort();
    let filters = std::collections::HashMap::from([
        ("type".to_string(), vec!["container".to_string(), "network".to_string()]),
        ("event".to_string(), actions),
    ]);
    let opts = EventsOptions {
        since: Some(since.to_string()),
        until: None,
        filters: Some(filters),
    };
    let mut stream = docker.events(Some(opts));
    while let Some(item) = stream.next().await {
        let item = item.map_err(|source| DockerError::Api {
            what: "watch events".into(),
            source,
        });
        let failed = item.is_err();
        if tx.send(item).is_err() || failed {
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
