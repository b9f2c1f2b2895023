//! Turns Docker into a stream of [`WatchEvent`]s for the controller.
//!
//! A state machine per connection: connect → subscribe to events → list everything
//! (`Resync`) → apply events one by one, inspecting only the container each one names
//! (`Upsert`/`Remove`), with a full `Resync` every `resync_every` as a safety net. Any error
//! drops the connection, waits a capped, jittered backoff and starts over; it never gives up.
//!
//! An idle event stream is silent, so silence proves nothing: a Docker that stops answering
//! (a paused socket proxy, a hung daemon) would keep a dead stream "connected" until a request
//! timed out (10 s). A heartbeat pings Docker every `heartbeat_every` while connected; a ping
//! that fails or goes unanswered for `heartbeat_timeout` counts as a lost connection, so the
//! controller (and its `/healthz`) knows within 1.5 s by default, then reconnects and resyncs.
//! The timeout leaves a loaded daemon room (a healthy one answers a ping in about a millisecond;
//! one too busy to answer in 1.25 s answered nothing else either, in the runs measured).
//!
//! Subscribing before listing closes the gap Traefik's own Docker provider has (it lists,
//! then subscribes, and can miss a change in between). The events request is issued first,
//! by a task that polls it at once and forwards what comes (the listing waits for that first
//! poll), and carries `since` a moment before the listing, so an event that happens while
//! the listing runs is buffered, or replayed, rather than lost.
//!
//! Generic over [`DockerApi`]: the controller passes the real [`Engine`](super::Engine), the
//! tests below the in-memory [`FakeDocker`](super::fake::FakeDocker) under paused time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// What an event says about a container before it is inspected (paused, unpaused, exited,
    /// a new health status): applied at once so the route follows the event without waiting
    /// for the inspection, which comes right after as an `Upsert` and has the last word.
    Implied {
        id: String,
        change: Implied,
    },
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
    /// How often a connected watcher pings Docker.
    pub heartbeat_every: Duration,
    /// How long a ping may go unanswered before the connection counts as lost.
    pub heartbeat_timeout: Duration,
    /// Docker events buffered while the watcher is busy (inspecting, or waiting for the
    /// controller). Past this many the buffer is dropped and replaced by a full listing, which
    /// carries the latest state of everything: memory stays bounded and nothing is lost.
    pub event_buffer: usize,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            resync_every: Duration::from_secs(60),
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
            backoff_seed: None,
            heartbeat_every: Duration::from_millis(250),
            heartbeat_timeout: Duration::from_millis(1250),
            event_buffer: EVENT_BUFFER,
        }
    }
}

/// Default [`WatchOptions::event_buffer`].
pub const EVENT_BUFFER: usize = 4096;

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
    tokio::select! {
        followed = follow(api, settings, opts, tx) => followed,
        failed = heartbeat(api, opts) => Err(failed),
    }
}

/// Pings Docker every `heartbeat_every`; returns why the first ping failed.
async fn heartbeat(api: &impl DockerApi, opts: &WatchOptions) -> DockerError {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + opts.heartbeat_every, opts.heartbeat_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(opts.heartbeat_timeout, api.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e,
            Err(_) => {
                return DockerError::Api {
                    what: "ping".into(),
                    source: format!(
                        "Docker did not answer within {} ms; the event stream cannot be trusted",
                        opts.heartbeat_timeout.as_millis()
                    )
                    .into(),
                };
            }
        }
    }
}

/// Subscribes, lists and follows the events of one connection.
async fn follow(
    api: &impl DockerApi,
    settings: &Settings,
    opts: &WatchOptions,
    tx: &mpsc::Sender<WatchEvent>,
) -> Result<(), DockerError> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(2) as i64)
        .unwrap_or(0);
    let (ev_tx, mut events) = mpsc::channel(opts.event_buffer.max(1));
    let overflow = Arc::new(AtomicBool::new(false));
    let (subscribed, first_poll) = tokio::sync::oneshot::channel();
    let forwarder = tokio::spawn(forward_events(api.events(since), ev_tx, overflow.clone(), subscribed));
    let _abort = AbortOnDrop(forwarder);
    // List only once the events request is out, on any runtime.
    let _ = first_poll.await;

    let t0 = tokio::time::Instant::now();
    let all = docker::list(api, settings).await?;
    let mut known = Known::default();
    known.resync(&all);
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
        let first = tokio::select! {
            msg = events.recv() => msg,
            _ = tick.tick() => {
                debug!("periodic resync");
                if !resync(api, settings, &mut known, tx).await? {
                    return Ok(());
                }
                continue;
            }
        };
        // Everything queued now is one burst: coalesced by container, one inspect each.
        let mut burst = Burst::default();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Some(Ok(msg)) => {
                    if let Some(relevant) = known.relevant(&msg, settings) {
                        burst.add(relevant, Implied::of(&msg));
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err(DockerError::Shape("the event stream ended".into())),
            }
            next = events.try_recv().ok().map(Some);
        }
        if overflow.swap(false, Ordering::SeqCst) {
            // Events were dropped: whatever is queued is older than a listing made now.
            while events.try_recv().is_ok() {}
            warn!(
                buffer = opts.event_buffer,
                "more Docker events than the buffer holds; listing everything instead"
            );
            if !resync(api, settings, &mut known, tx).await? {
                return Ok(());
            }
            continue;
        }
        for (id, pending) in burst.drain() {
            if !pending.emit(id, api, settings, &mut known, tx).await? {
                return Ok(());
            }
        }
    }
}

/// Lists everything and sends it as one `Resync`. `Ok(false)`: the controller has gone.
async fn resync(
    api: &impl DockerApi,
    settings: &Settings,
    known: &mut Known,
    tx: &mpsc::Sender<WatchEvent>,
) -> Result<bool, DockerError> {
    let all = docker::list(api, settings).await?;
    known.resync(&all);
    Ok(tx.send(WatchEvent::Resync(all)).await.is_ok())
}

/// The events of one burst, by container, in the order containers first appeared.
#[derive(Default)]
struct Burst {
    order: Vec<String>,
    by_id: HashMap<String, Pending>,
}

/// What a burst of events says about one container.
#[derive(Default)]
struct Pending {
    /// Destroyed: nothing else matters.
    gone: bool,
    /// Sent a terminating signal; `stopping_last`: after its last other event.
    stopping: bool,
    stopping_last: bool,
    /// Needs an inspection (one, however many events named it).
    changed: bool,
    /// The latest state each kind of event implied, applied before the inspection.
    implied: Vec<Implied>,
}

impl Burst {
    fn add(&mut self, relevant: Relevant, implied: Option<Implied>) {
        let id = match &relevant {
            Relevant::Changed(id) | Relevant::Stopping(id) | Relevant::Gone(id) => id.clone(),
        };
        let p = match self.by_id.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                self.order.push(e.key().clone());
                e.insert(Pending::default())
            }
        };
        match relevant {
            Relevant::Gone(_) => p.gone = true,
            Relevant::Stopping(_) => {
                p.stopping = true;
                p.stopping_last = true;
            }
            Relevant::Changed(_) => {
                p.changed = true;
                p.stopping_last = false;
                if let Some(change) = implied {
                    p.implied
                        .retain(|c| std::mem::discriminant(c) != std::mem::discriminant(&change));
                    p.implied.push(change);
                }
            }
        }
    }

    fn drain(mut self) -> impl Iterator<Item = (String, Pending)> {
        let mut by_id = std::mem::take(&mut self.by_id);
        self.order
            .into_iter()
            .filter_map(move |id| by_id.remove(&id).map(|p| (id, p)))
    }
}

impl Pending {
    /// Sends what the container's burst means, inspecting it at most once. `Ok(false)`: the
    /// controller has gone.
    async fn emit(
        self,
        id: String,
        api: &impl DockerApi,
        settings: &Settings,
        known: &mut Known,
        tx: &mpsc::Sender<WatchEvent>,
    ) -> Result<bool, DockerError> {
        if self.gone {
            return Ok(tx.send(WatchEvent::Remove(id)).await.is_ok());
        }
        let mut out = Vec::new();
        if self.stopping && !self.stopping_last {
            out.push(WatchEvent::Stopping(id.clone()));
        }
        if self.changed {
            out.extend(
                self.implied
                    .into_iter()
                    .map(|change| WatchEvent::Implied { id: id.clone(), change }),
            );
            // What the events imply goes out before the inspection, which may be slow.
            for event in out.drain(..) {
                if tx.send(event).await.is_err() {
                    return Ok(false);
                }
            }
            match api.inspect(&id).await? {
                Some(c) if c.label(&settings.label("app")).is_some() => out.push(WatchEvent::Upsert(Box::new(c))),
                Some(_) => {}
                None => {
                    known.forget(&id);
                    out.push(WatchEvent::Remove(id.clone()));
                }
            }
        }
        if self.stopping && self.stopping_last {
            out.push(WatchEvent::Stopping(id));
        }
        for event in out {
            if tx.send(event).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

enum Relevant {
    Changed(String),
    Stopping(String),
    Gone(String),
}

/// The labelled containers this connection knows of: listed, or named by a labelled
/// container event since. Docker's network events name the container but carry none of its
/// labels, so this is how a foreign container's `connect`/`disconnect` costs no inspect. A
/// labelled container is always known before its first network event: one that predates the
/// listing is in it, and a newer one's `create` (labels included) comes before its `connect`.
#[derive(Default)]
struct Known(HashSet<String>);

impl Known {
    fn resync(&mut self, all: &[Container]) {
        self.0 = all.iter().map(|c| c.id.clone()).collect();
    }

    fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }

    /// What `event` means for pointsman, if anything; learns and forgets ids on the way.
    fn relevant(&mut self, event: &Event, settings: &Settings) -> Option<Relevant> {
        let action = event.base_action();
        match event.kind {
            EventKind::Container if CONTAINER_ACTIONS.contains(&action) => {
                // Container events carry the container's labels: skip foreign containers early.
                event.attributes.get(&settings.label("app"))?;
                let id = event.actor.clone();
                if action == "destroy" {
                    self.forget(&id);
                    return Some(Relevant::Gone(id));
                }
                self.0.insert(id.clone());
                if action == "kill" {
                    let signal = event.attributes.get("signal").map(String::as_str).unwrap_or("");
                    return TERMINATING_SIGNALS.contains(&signal).then_some(Relevant::Stopping(id));
                }
                Some(Relevant::Changed(id))
            }
            EventKind::Network if NETWORK_ACTIONS.contains(&action) => {
                let id = event.attributes.get("container")?;
                self.0.contains(id).then(|| Relevant::Changed(id.clone()))
            }
            _ => None,
        }
    }
}

/// A container's state as an event states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implied {
    Paused(bool),
    Exited,
    Health(String),
}

impl Implied {
    fn of(event: &Event) -> Option<Implied> {
        if event.kind != EventKind::Container {
            return None;
        }
        match event.base_action() {
            "pause" => Some(Implied::Paused(true)),
            "unpause" => Some(Implied::Paused(false)),
            "die" => Some(Implied::Exited),
            "health_status" => {
                let status = event.action.split_once(':')?.1.trim();
                matches!(status, "healthy" | "unhealthy" | "starting").then(|| Implied::Health(status.to_string()))
            }
            _ => None,
        }
    }

    /// The container as the event says it is now.
    pub fn apply_to(&self, c: &mut crate::core::container::Container) {
        match self {
            Implied::Paused(paused) => {
                c.state.paused = *paused;
                c.state.status = if *paused { "paused" } else { "running" }.into();
            }
            Implied::Exited => {
                c.state.running = false;
                c.state.paused = false;
                c.state.status = "exited".into();
            }
            Implied::Health(status) => {
                c.state.health = Some(crate::core::container::Health { status: status.clone() });
            }
        }
    }
}

/// Polls the event stream at once (which issues the request), says so on `subscribed`, and
/// hands each event on until the first error. It never waits for the watcher, so Docker's
/// stream is always read: when the bounded buffer is full an event is dropped and `overflow`
/// set, and the watcher lists everything instead.
async fn forward_events(
    mut stream: BoxStream<'static, Result<Event, DockerError>>,
    tx: mpsc::Sender<Result<Event, DockerError>>,
    overflow: Arc<AtomicBool>,
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
        if item.is_err() {
            // The last word of this stream: worth waiting for room.
            let _ = tx.send(item).await;
            return;
        }
        match tx.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => overflow.store(true, Ordering::SeqCst),
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The watcher against the in-memory Docker, under paused time: delays and resync periods
    //! are exact, and a whole minute of reconnecting takes no real time.

    use super::*;
    use crate::docker::fake::{Call, FakeDocker, Op, container};
    use tokio::time::Instant;

    const BASE: Duration = Duration::from_millis(200);
    const CAP: Duration = Duration::from_secs(5);
    const SEED: u64 = 42;
    /// tokio's timer counts whole milliseconds, so a sleep may end up to 1 ms late.
    const TICK: Duration = Duration::from_millis(1);

    fn opts() -> WatchOptions {
        WatchOptions {
            resync_every: Duration::from_secs(3600),
            backoff_base: BASE,
            backoff_cap: CAP,
            healthy_after: Duration::from_secs(30),
            backoff_seed: Some(SEED),
            ..WatchOptions::default()
        }
    }

    fn start(fake: &FakeDocker, opts: WatchOptions) -> mpsc::Receiver<WatchEvent> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(run(Arc::new(fake.clone()), Settings::default(), opts, tx));
        rx
    }

    /// The next event; fails (in virtual time) rather than hang if none comes.
    async fn next(rx: &mut mpsc::Receiver<WatchEvent>) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(24 * 3600), rx.recv())
            .await
            .expect("an event within a (virtual) day")
            .expect("the watcher runs")
    }

    async fn resync(rx: &mut mpsc::Receiver<WatchEvent>) -> Vec<Container> {
        match next(rx).await {
            WatchEvent::Resync(all) => all,
            other => panic!("expected a resync, got {other:?}"),
        }
    }

    /// The next inspection, past the state its event implied (see `implied_state_comes_first`).
    async fn upsert(rx: &mut mpsc::Receiver<WatchEvent>) -> Container {
        loop {
            match next(rx).await {
                WatchEvent::Implied { .. } => continue,
                WatchEvent::Upsert(c) => return *c,
                other => panic!("expected an upsert, got {other:?}"),
            }
        }
    }

    async fn lost(rx: &mut mpsc::Receiver<WatchEvent>) -> String {
        match next(rx).await {
            WatchEvent::Lost(reason) => reason,
            other => panic!("expected Lost, got {other:?}"),
        }
    }

    fn names(all: &[Container]) -> Vec<&str> {
        let mut names: Vec<&str> = all.iter().map(Container::short_name).collect();
        names.sort();
        names
    }

    fn web(name: &str) -> Container {
        container(name)
            .app("web")
            .slot(name)
            .port(80)
            .network("edge", "10.0.0.2")
            .build()
    }

    fn ops(calls: &[Call]) -> Vec<Op> {
        calls.iter().map(Call::op).collect()
    }

    fn within(d: Duration, want: Duration) -> bool {
        d >= want && d <= want + TICK
    }

    #[tokio::test(start_paused = true)]
    async fn subscribes_before_listing_and_keeps_an_event_from_during_the_listing() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        fake.hold(Op::List);
        let mut rx = start(&fake, opts());

        // The listing is under way (its answer made, not yet delivered) when green starts.
        fake.until_called(|calls| calls.iter().any(|c| c.op() == Op::List))
            .await;
        let green = web("green");
        fake.run(green.clone());
        fake.release(Op::List);

        assert_eq!(names(&resync(&mut rx).await), ["blue"], "the listing predates green");
        let c = upsert(&mut rx).await;
        assert_eq!(c.id, green.id, "green's events were not lost");
        assert!(c.state.running);

        let calls = fake.calls();
        assert_eq!(ops(&calls)[..3], [Op::Connect, Op::Events, Op::List], "{calls:?}");
        let Call::Events { since } = calls[1] else {
            unreachable!()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(
            since <= now - 2,
            "events asked from a moment before the listing: {since} vs {now}"
        );
    }

    /// Regression: a Docker that stopped answering left the silent event stream "connected"
    /// until a request timed out, so the controller and its /healthz noticed nothing.
    #[tokio::test(start_paused = true)]
    async fn a_connected_docker_that_stops_answering_is_lost_within_a_heartbeat_and_its_timeout() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        let mut rx = start(&fake, opts());
        assert_eq!(names(&resync(&mut rx).await), ["blue"]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            fake.pings() >= 19,
            "a ping every 250 ms while connected: {}",
            fake.pings()
        );

        // The daemon hangs: the stream stays open and silent, nothing answers.
        fake.hold(Op::Ping);
        let hung = Instant::now();
        let reason = lost(&mut rx).await;
        let after = hung.elapsed();
        let d = WatchOptions::default();
        assert!(after <= d.heartbeat_every + d.heartbeat_timeout + TICK, "{after:?}");
        assert!(reason.contains("ping") && reason.contains("did not answer"), "{reason}");

        // It answers again: reconnected and resynced.
        fake.release(Op::Ping);
        assert_eq!(names(&resync(&mut rx).await), ["blue"]);
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_forever_with_capped_jittered_growing_delays_then_resyncs_in_full() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        let mut rx = start(&fake, opts());
        assert_eq!(names(&resync(&mut rx).await), ["blue"]);

        fake.set_reachable(false);
        let mut at = vec![];
        for _ in 0..40 {
            let reason = lost(&mut rx).await;
            assert!(
                reason.contains("Connection refused") || reason.contains("cut"),
                "{reason}"
            );
            at.push(Instant::now());
        }
        // Each gap between two `Lost` is one backoff delay: the seeded sequence, exactly.
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        let mut expected = crate::docker::backoff::Backoff::new(BASE, CAP, SEED);
        for (i, gap) in gaps.iter().enumerate() {
            let want = expected.next_delay();
            assert!(within(*gap, want), "delay {i}: {gap:?}, seeded backoff says {want:?}");
            let ceiling = BASE.saturating_mul(1 << i.min(20)).min(CAP);
            assert!(*gap >= ceiling / 2 && *gap <= ceiling + TICK, "delay {i}: {gap:?}");
        }
        assert!(gaps[4] > gaps[0] * 4, "delays grow: {gaps:?}");
        let capped: std::collections::BTreeSet<_> = gaps[6..].iter().collect();
        assert!(capped.len() > 1, "capped delays are jittered: {gaps:?}");
        assert!(fake.count(Op::Connect) >= 40, "it never gave up");

        // While Docker was away, blue became unhealthy (its event lost with the stream) and
        // green appeared: the reconnection lists everything again.
        fake.update(&web("blue").id, |c| {
            c.state.health = Some(crate::core::container::Health {
                status: "unhealthy".into(),
            })
        });
        fake.insert(container("green").app("web").running().build());
        fake.take_calls();
        fake.set_reachable(true);
        let all = resync(&mut rx).await;
        assert_eq!(names(&all), ["blue", "green"]);
        let blue = all.iter().find(|c| c.short_name() == "blue").unwrap();
        assert_eq!(blue.state.health.as_ref().unwrap().status, "unhealthy");
        assert_eq!(ops(&fake.calls())[..3], [Op::Connect, Op::Events, Op::List]);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_starts_over_only_after_a_healthy_period() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;

        // Three quick failures: the delays grow.
        let mut expected = crate::docker::backoff::Backoff::new(BASE, CAP, SEED);
        for _ in 0..3 {
            fake.cut_events();
            lost(&mut rx).await;
            let t = Instant::now();
            resync(&mut rx).await;
            assert!(within(t.elapsed(), expected.next_delay()));
        }
        // Connected for longer than `healthy_after`: the next delay is a first one again.
        tokio::time::sleep(Duration::from_secs(31)).await;
        fake.cut_events();
        lost(&mut rx).await;
        let t = Instant::now();
        resync(&mut rx).await;
        assert!(t.elapsed() <= BASE + TICK, "reset: {:?}", t.elapsed());
        // And a short connection after it does not reset: the second delay, [BASE, 2·BASE].
        fake.cut_events();
        lost(&mut rx).await;
        let t = Instant::now();
        resync(&mut rx).await;
        assert!(
            t.elapsed() >= BASE && t.elapsed() <= 2 * BASE + TICK,
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_periodic_resync_carries_the_whole_snapshot() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        fake.run(web("green"));
        let every = Duration::from_secs(60);
        let mut rx = start(
            &fake,
            WatchOptions {
                resync_every: every,
                ..opts()
            },
        );
        assert_eq!(names(&resync(&mut rx).await), ["blue", "green"]);
        let t0 = Instant::now();

        // Changes whose events were missed: only a resync can bring them.
        fake.forget(&web("blue").id);
        fake.insert(container("red").app("web").running().build());
        fake.update(&web("green").id, |c| c.state.paused = true);

        let all = resync(&mut rx).await;
        assert!(within(t0.elapsed(), every), "{:?}", t0.elapsed());
        assert_eq!(names(&all), ["green", "red"], "the whole snapshot, blue gone");
        assert!(all.iter().find(|c| c.short_name() == "green").unwrap().state.paused);

        assert_eq!(names(&resync(&mut rx).await), ["green", "red"]);
        assert!(within(t0.elapsed(), 2 * every), "{:?}", t0.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_inspects_only_the_container_it_names() {
        let fake = FakeDocker::new();
        let fleet: Vec<Container> = (1..=5).map(|i| web(&format!("web-{i}"))).collect();
        for c in &fleet {
            fake.run(c.clone());
        }
        let mut rx = start(&fake, opts());
        assert_eq!(resync(&mut rx).await.len(), 5);
        assert_eq!(fake.count(Op::Inspect), 5, "the listing inspects each container once");
        fake.take_calls();

        let third = &fleet[2].id;
        fake.health(third, "unhealthy");
        let c = upsert(&mut rx).await;
        assert_eq!((&c.id, c.state.health.unwrap().status.as_str()), (third, "unhealthy"));
        assert_eq!(fake.take_calls(), [Call::Inspect(third.clone())]);

        let fourth = &fleet[3].id;
        fake.disconnect(fourth, "edge");
        let c = upsert(&mut rx).await;
        assert_eq!(c.id, *fourth);
        assert_eq!(c.network_settings.networks, Some(Default::default()));
        assert_eq!(fake.take_calls(), [Call::Inspect(fourth.clone())]);
    }

    #[tokio::test(start_paused = true)]
    async fn implied_state_comes_first_then_the_inspection() {
        let fake = FakeDocker::new();
        let blue = web("blue");
        fake.run(blue.clone());
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;
        fake.hold(Op::Inspect);
        fake.pause(&blue.id);
        // The hint arrives while the inspection is still held.
        match next(&mut rx).await {
            WatchEvent::Implied { id, change } => assert_eq!((id, change), (blue.id.clone(), Implied::Paused(true))),
            other => panic!("expected the implied state first, got {other:?}"),
        }
        fake.release(Op::Inspect);
        assert!(upsert(&mut rx).await.state.paused, "then Docker's word");
        fake.health(&blue.id, "unhealthy");
        match next(&mut rx).await {
            WatchEvent::Implied { change, .. } => assert_eq!(change, Implied::Health("unhealthy".into())),
            other => panic!("expected the implied health, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stop_kill_and_destroy() {
        let fake = FakeDocker::new();
        let blue = web("blue");
        fake.run(blue.clone());
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;
        fake.take_calls();

        // A reload signal leaves it in the pool; nothing happens until the next real change.
        fake.kill(&blue.id, "SIGHUP");
        fake.pause(&blue.id);
        assert!(upsert(&mut rx).await.state.paused);
        fake.unpause(&blue.id);
        assert!(!upsert(&mut rx).await.state.paused);

        // `docker stop`: out of the pool at `kill`, before the container even exits; its
        // `kill`, `die` and `stop`, queued together, cost one inspection.
        fake.take_calls();
        fake.stop(&blue.id);
        assert!(matches!(next(&mut rx).await, WatchEvent::Stopping(id) if id == blue.id));
        assert!(!upsert(&mut rx).await.state.running, "die, stop");
        assert_eq!(fake.take_calls(), [Call::Inspect(blue.id.clone())]);

        fake.destroy(&blue.id);
        assert!(matches!(next(&mut rx).await, WatchEvent::Remove(id) if id == blue.id));
        assert_eq!(fake.take_calls(), [], "destroy needs no inspect");
    }

    #[tokio::test(start_paused = true)]
    async fn network_events_of_our_containers_are_inspected() {
        let fake = FakeDocker::new();
        let blue = web("blue");
        fake.run(blue.clone());
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;
        fake.take_calls();

        // Listed: known.
        fake.connect(&blue.id, "backend", "10.1.0.2");
        let c = upsert(&mut rx).await;
        assert!(c.network_settings.networks.unwrap().contains_key("backend"));
        assert_eq!(fake.take_calls(), [Call::Inspect(blue.id.clone())]);

        // New: known from its `create`, which comes before its network `connect`; the three
        // events of `docker run`, queued together, cost one inspection of the running container.
        let green = web("green");
        fake.run(green.clone());
        let c = upsert(&mut rx).await;
        assert_eq!(c.id, green.id);
        assert!(c.state.running && c.network_settings.networks.unwrap().contains_key("edge"));
        assert_eq!(fake.inspected(), std::slice::from_ref(&green.id));
    }

    #[tokio::test(start_paused = true)]
    async fn foreign_containers_cost_no_inspect() {
        let fake = FakeDocker::new();
        fake.run(web("blue"));
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;
        fake.take_calls();

        let foreign = container("postgres")
            .label("com.example.db", "yes")
            .network("edge", "10.0.0.9")
            .build();
        fake.run(foreign.clone());
        fake.health(&foreign.id, "healthy");
        fake.disconnect(&foreign.id, "edge");
        fake.connect(&foreign.id, "backend", "10.1.0.9");
        fake.stop(&foreign.id);
        fake.destroy(&foreign.id);
        // A labelled change after them: once it arrives, the foreign events were handled.
        fake.health(&web("blue").id, "healthy");
        assert_eq!(upsert(&mut rx).await.id, web("blue").id);
        assert_eq!(fake.inspected(), [web("blue").id]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_for_one_container_is_one_inspection_of_its_latest_state() {
        let fake = FakeDocker::new();
        let blue = web("blue");
        fake.run(blue.clone());
        let mut rx = start(&fake, opts());
        resync(&mut rx).await;
        fake.take_calls();
        // Forty events while the watcher is busy inspecting a first one.
        fake.hold(Op::Inspect);
        fake.health(&blue.id, "starting");
        fake.until_called(|calls| calls.iter().any(|c| c.op() == Op::Inspect))
            .await;
        for i in 0..20 {
            fake.health(&blue.id, if i % 2 == 0 { "unhealthy" } else { "healthy" });
            fake.pause(&blue.id);
            fake.unpause(&blue.id);
        }
        fake.health(&blue.id, "unhealthy");
        fake.release(Op::Inspect);
        upsert(&mut rx).await; // the first event's own inspection
        let mut implied = Vec::new();
        let last = loop {
            match next(&mut rx).await {
                WatchEvent::Implied { change, .. } => implied.push(change),
                WatchEvent::Upsert(c) => break *c,
                other => panic!("expected the burst's inspection, got {other:?}"),
            }
        };
        assert_eq!(last.state.health.unwrap().status, "unhealthy", "the latest state");
        assert!(!last.state.paused);
        assert_eq!(
            implied,
            [Implied::Paused(false), Implied::Health("unhealthy".into())],
            "one hint per kind, the latest"
        );
        assert_eq!(
            fake.inspected(),
            [blue.id.clone(), blue.id.clone()],
            "61 events, 2 inspections"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_event_buffer_is_replaced_by_a_full_listing_that_loses_no_change() {
        let fake = FakeDocker::new();
        let blue = web("blue");
        fake.run(blue.clone());
        // The controller reads nothing for a while: the watcher blocks on its channel.
        let (tx, mut rx) = mpsc::channel(1);
        let options = WatchOptions {
            event_buffer: 8,
            ..opts()
        };
        tokio::spawn(run(Arc::new(fake.clone()), Settings::default(), options, tx));
        resync(&mut rx).await;
        fake.health(&blue.id, "starting"); // inspected, then stuck sending
        fake.health(&blue.id, "healthy"); // inspected, then stuck: the channel holds one
        tokio::time::sleep(Duration::from_millis(10)).await;
        // 300 apps come and go, then one more stays; far more events than the buffer holds.
        for i in 0..300 {
            let c = web(&format!("tmp-{i}"));
            fake.run(c.clone());
            fake.destroy(&c.id);
        }
        let stays = web("stays");
        fake.run(stays.clone());
        fake.health(&blue.id, "unhealthy");
        tokio::time::sleep(Duration::from_millis(10)).await;
        fake.take_calls();
        // The controller reads again: what it gets ends with the latest state of everything.
        let mut last_resync = None;
        while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            if let WatchEvent::Resync(all) = event {
                last_resync = Some(all);
            }
        }
        let all = last_resync.expect("the overflow is answered with a full listing");
        assert_eq!(names(&all), ["blue", "stays"]);
        let blue_now = all.iter().find(|c| c.id == blue.id).unwrap();
        assert_eq!(blue_now.state.health.as_ref().unwrap().status, "unhealthy");
        assert!(
            fake.count(Op::Inspect) <= 8,
            "the dropped events cost no inspection: {} inspections",
            fake.count(Op::Inspect)
        );
    }
}
