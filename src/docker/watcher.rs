//! Turns Docker into a stream of [`WatchEvent`]s for the controller.
//!
//! A state machine per connection: connect → subscribe to events → list everything
//! (`Resync`) → apply events one by one, inspecting only the container each one names
//! (`Upsert`/`Remove`), with a full `Resync` every `resync_every` as a safety net. Any error
//! drops the connection, waits a capped, jittered backoff and starts over; it never gives up.
//!
//! Subscribing before listing closes the gap Traefik's own Docker provider has (it lists,
//! then subscribes, and can miss a change in between). The events request is issued first,
//! by a task that polls it at once and forwards what comes (the listing waits for that first
//! poll), and carries `since` a moment before the listing, so an event that happens while
//! the listing runs is buffered, or replayed, rather than lost.
//!
//! Generic over [`DockerApi`]: the controller passes the real [`Engine`](super::Engine), the
//! tests below the in-memory [`FakeDocker`](super::fake::FakeDocker) under paused time.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::core::container::Container;
use crate::core::settings::Settings;
use crate::docker::api::{CONTAINER_ACTIONS, DockerApi, Event, EventKind, NETWORK_ACTIONS};
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
    /// Seeds the backoff's jitter (tests); `None` seeds it at random.
    pub backoff_seed: Option<u64>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            resync_every: Duration::from_secs(60),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
            backoff_seed: None,
        }
    }
}

/// Signals after which a container is on its way out. Others (`docker kill -s HUP`, often a
/// reload) leave it in the pool.
const TERMINATING_SIGNALS: &[&str] = &[
    "15", "9", "2", "3", "SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "TERM", "KILL", "INT", "QUIT",
];

/// Runs until the receiver is dropped.
pub async fn run<A: DockerApi>(api: Arc<A>, settings: Settings, opts: WatchOptions, tx: mpsc::Sender<WatchEvent>) {
    let mut backoff = match opts.backoff_seed {
        Some(seed) => Backoff::new(opts.backoff_base, opts.backoff_cap, seed),
        None => Backoff::from_entropy(opts.backoff_base, opts.backoff_cap),
    };
    loop {
        let started = tokio::time::Instant::now();
        let reason = match watch_once(&*api, &settings, &opts, &tx).await {
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
    api: &impl DockerApi,
    settings: &Settings,
    opts: &WatchOptions,
    tx: &mpsc::Sender<WatchEvent>,
) -> Result<(), DockerError> {
    api.connect().await?;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(2) as i64)
        .unwrap_or(0);
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let (subscribed, first_poll) = tokio::sync::oneshot::channel();
    let forwarder = tokio::spawn(forward_events(api.events(since), ev_tx, subscribed));
    let _abort = AbortOnDrop(forwarder);
    // List only once the events request is out, on any runtime.
    let _ = first_poll.await;

    let t0 = tokio::time::Instant::now();
    let all = docker::list(api, settings).await?;
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
                    Some(Relevant::Changed(id)) => match api.inspect(&id).await? {
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
                WatchEvent::Resync(docker::list(api, settings).await?)
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

fn relevant(event: &Event, settings: &Settings) -> Option<Relevant> {
    let action = event.base_action();
    match event.kind {
        EventKind::Container if CONTAINER_ACTIONS.contains(&action) => {
            // Container events carry the container's labels: skip foreign containers early.
            event.attributes.get(&settings.label("app"))?;
            let id = event.actor.clone();
            match action {
                "destroy" => Some(Relevant::Gone(id)),
                "kill" => {
                    let signal = event.attributes.get("signal").map(String::as_str).unwrap_or("");
                    TERMINATING_SIGNALS.contains(&signal).then_some(Relevant::Stopping(id))
                }
                _ => Some(Relevant::Changed(id)),
            }
        }
        EventKind::Network if NETWORK_ACTIONS.contains(&action) => {
            Some(Relevant::Changed(event.attributes.get("container")?.clone()))
        }
        _ => None,
    }
}

/// Polls the event stream at once (which issues the request), says so on `subscribed`, and
/// hands each event on until the first error.
async fn forward_events(
    mut stream: BoxStream<'static, Result<Event, DockerError>>,
    tx: mpsc::UnboundedSender<Result<Event, DockerError>>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) {
    let mut subscribed = Some(subscribed);
    loop {
        let item = std::future::poll_fn(|cx| {
            let polled = stream.poll_next_unpin(cx);
            if let Some(s) = subscribed.take() {
                let _ = s.send(());
            }
            polled
        })
        .await;
        let Some(item) = item else { return };
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

