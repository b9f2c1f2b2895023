//! `pointsman run --store redis://…`: one controller per host, one Redis, every host's Traefik
//! reading its configuration from Redis.
//!
//! Every controller watches its own Docker and publishes the containers in its `--scope` under
//! `pointsman/members/HOST`, with a lease it keeps renewing: a host that dies drops out when
//! the lease runs out. Exactly one controller, the one holding `pointsman/leader`, renders:
//! it feeds every host's containers to the same [`Controller`] the single-host sidecar runs,
//! over a fenced [`RedisStore`] (its transactions commit only while its term holds the lease)
//! and a [`RedisSink`]. The others wait to take the lease over when it lapses.
//!
//! The leader reacts to keyspace notifications on `pointsman/state` (a CLI changed roles) and
//! `pointsman/members/*` (a host's containers changed or its lease ran out), and looks again on
//! every tick in case a notification was lost.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use crate::backend::redis::resp::{Conn, RedisError, Value, cmd};
use crate::backend::redis::{MEMBERS_PREFIX, Members, Redis, RedisSink, RedisStore, STATE_KEY};
use crate::backend::{BackendError, StateStore};
use crate::controller::{Controller, Input, RunError};
use crate::core::container::Container;
use crate::core::settings::{Choices, Settings};
use crate::core::state::State;
use crate::docker::DockerApi;
use crate::docker::watcher::{self, WatchEvent, WatchOptions};
use crate::observe::Observer;

/// How one host takes part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOptions {
    /// `--host-id`: names this host's members key and its terms as leader.
    pub host_id: String,
    /// `--scope LABEL=VALUE`: only containers carrying it are this host's.
    pub scope: Option<(String, String)>,
    /// `--advertise-address`: other hosts reach this host's containers here, on the ports
    /// Docker published; `None` (`--address container`): at the container's own address.
    pub advertise: Option<String>,
    /// How long a host's members and the leader's term outlive their last renewal.
    pub lease: Duration,
    /// Traefik's `providers.redis.rootKey`.
    pub root_key: String,
}

/// What a shared store must offer before a controller starts on it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error(
        "{url} does not send keyspace notifications (notify-keyspace-events is {current}), so Traefik's Redis provider would never see a change; enable them: redis-cli CONFIG SET notify-keyspace-events KEA, and put `notify-keyspace-events KEA` in redis.conf so a restart keeps it"
    )]
    NoNotifications { url: String, current: String },
    #[error(
        "{url} refused pointsman's subscription to {pattern} ({message}); Redis ACLs compare a subscribed pattern literally, so grant the user that pattern: ACL SETUSER <user> &__keyspace@<db>__:pointsman/* '&{pattern}'"
    )]
    Channels {
        url: String,
        message: String,
        pattern: String,
    },
}

/// Checks that Redis sends the keyspace notifications Traefik's Redis provider needs (and the
/// leader listens to): subscribes, writes and deletes a probe key, and waits for both events.
/// This works for a user without CONFIG rights; the current setting is named when readable.
pub fn check_notifications(redis: &Redis, host_id: &str) -> Result<(), StartError> {
    let url = redis.url().clone();
    let probe = format!("pointsman/probe/{host_id}");
    let mut sub = Conn::open(&url)?;
    let channel = format!("__keyspace@{}__:{probe}", url.db);
    sub.call(&cmd(["SUBSCRIBE", &channel]))?;
    // The leader's subscription (see `spawn_notifications`): refused now rather than later.
    let pattern = members_pattern(url.db);
    sub.call(&cmd(["PSUBSCRIBE", &pattern])).map_err(|e| match e {
        RedisError::Refused { message, .. } => StartError::Channels {
            url: url.to_string(),
            message,
            pattern: pattern.clone(),
        },
        e => e.into(),
    })?;
    redis.call(&cmd(["SET", &probe, "1", "PX", "10000"]))?;
    redis.call(&cmd(["DEL", &probe]))?;
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    let both = |seen: &[String]| seen.iter().any(|e| e == "set") && seen.iter().any(|e| e == "del");
    while !both(&seen) && Instant::now() < deadline {
        match sub.read() {
            Ok(Value::Array(parts)) => {
                if parts.first() == Some(&Value::Data(b"message".to_vec()))
                    && let Some(event) = parts.into_iter().nth(2).and_then(Value::into_string)
                {
                    seen.push(event);
                }
            }
            Ok(_) => {}
            Err(e) if e.is_connection() => break,
            Err(e) => return Err(e.into()),
        }
    }
    if both(&seen) {
        return Ok(());
    }
    let current = match redis.call(&cmd(["CONFIG", "GET", "notify-keyspace-events"])) {
        Ok(v) => v
            .into_array()
            .into_iter()
            .nth(1)
            .and_then(Value::into_string)
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "unknown".into()),
        Err(_) => "not readable by this user".into(),
    };
    Err(StartError::NoNotifications {
        url: url.to_string(),
        current,
    })
}

/// The channel pattern of the hosts' members keys.
fn members_pattern(db: u32) -> String {
    format!("__keyspace@{db}__:{MEMBERS_PREFIX}*")
}

/// Forwards keyspace notifications of roles and members to the controller, on a thread of its
/// own (a subscribed connection blocks). After a lost connection it dials again and reports a
/// notification, since changes may have been missed meanwhile.
fn spawn_notifications(redis: &Redis, tx: mpsc::Sender<()>) {
    let url = redis.url().clone();
    std::thread::spawn(move || {
        // SUBSCRIBE to the state's channel and PSUBSCRIBE to the members' pattern: Redis ACLs
        // compare a PSUBSCRIBE pattern literally, so a user granted
        // `&__keyspace@DB__:pointsman/*` can use these two (see README, "Least privilege").
        let state = format!("__keyspace@{}__:{STATE_KEY}", url.db);
        let members = members_pattern(url.db);
        loop {
            let result = (|| -> Result<(), RedisError> {
                let mut conn = Conn::open(&url)?;
                conn.send(&[cmd(["SUBSCRIBE", &state]), cmd(["PSUBSCRIBE", &members])])?;
                for _ in 0..2 {
                    if let Value::Error(e) = conn.read()? {
                        return Err(conn.refused(&cmd(["PSUBSCRIBE"]), e));
                    }
                }
                conn.wait_forever()?;
                if tx.blocking_send(()).is_err() {
                    return Ok(());
                }
                loop {
                    let Value::Array(parts) = conn.read()? else { continue };
                    // ["message", channel, event] or ["pmessage", pattern, channel, event]; a
                    // renewal (pexpire) changes nothing anyone renders.
                    let event = parts.last().cloned().and_then(Value::into_string);
                    let kind = parts.first().cloned().and_then(Value::into_string);
                    if !matches!(kind.as_deref(), Some("message" | "pmessage")) || event.as_deref() == Some("expire") {
                        continue;
                    }
                    if tx.blocking_send(()).is_err() {
                        return Ok(());
                    }
                }
            })();
            match result {
                Ok(()) => return,
                Err(e) => {
                    // Redis restarting: try again soon; refused (ACL): rarely, it will not change.
                    let pause = if e.is_connection() { 250 } else { 5000 };
                    warn!("keyspace notifications: {e}; subscribing again (meanwhile changes are seen on each tick)");
                    std::thread::sleep(Duration::from_millis(pause));
                }
            }
        }
    });
}

/// This host's containers as its watcher reports them, in scope.
#[derive(Default)]
struct Local {
    containers: HashMap<String, Container>,
    synced: bool,
}

impl Local {
    fn apply(&mut self, event: WatchEvent, scope: &Option<(String, String)>) {
        let in_scope = |c: &Container| scope.as_ref().is_none_or(|(k, v)| c.label(k) == Some(v.as_str()));
        match event {
            WatchEvent::Resync(all) => {
                self.containers = all.into_iter().filter(in_scope).map(|c| (c.id.clone(), c)).collect();
                self.synced = true;
            }
            WatchEvent::Upsert(c) => {
                if in_scope(&c) {
                    self.containers.insert(c.id.clone(), *c);
                } else {
                    self.containers.remove(&c.id);
                }
            }
            WatchEvent::Remove(id) => {
                self.containers.remove(&id);
            }
            WatchEvent::Stopping(id) => {
                if let Some(c) = self.containers.get_mut(&id) {
                    c.state.running = false;
                    c.state.status = "stopping".into();
                }
            }
            WatchEvent::Implied { id, change } => {
                if let Some(c) = self.containers.get_mut(&id) {
                    change.apply_to(c);
                }
            }
            WatchEvent::Lost(_) => {}
        }
    }

    fn members(&self, opts: &HostOptions) -> Members {
        let mut containers: Vec<Container> = self
            .containers
            .values()
            .cloned()
            .map(|mut c| {
                c.advertise = opts.advertise.clone();
                c.host = Some(opts.host_id.clone());
                c
            })
            .collect();
        containers.sort_by(|a, b| a.id.cmp(&b.id));
        Members {
            host: opts.host_id.clone(),
            containers,
        }
    }
}

/// The leader's term.
struct Term {
    token: String,
    epoch: i64,
    renewed: Instant,
    controller: Controller<RedisStore, RedisSink>,
    /// Every host's containers as last fed to the controller.
    fed: Option<Vec<Container>>,
}

/// Runs one host's controller on a shared Redis until `shutdown` resolves.
#[allow(clippy::too_many_arguments)]
pub async fn run<A: DockerApi>(
    docker: Arc<A>,
    settings: Settings,
    flags: Choices,
    redis: Redis,
    opts: HostOptions,
    watch: WatchOptions,
    observer: Arc<Observer>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (tx, mut events) = mpsc::channel(1024);
    let watcher = tokio::spawn(watcher::run(docker, settings.clone(), watch, tx));
    let (note_tx, mut notes) = mpsc::channel(64);
    spawn_notifications(&redis, note_tx);
    let (sample_tx, mut samples) = mpsc::channel(64);
    // A quarter of the lease between renewals: a term survives two missed ticks.
    let tick_every = (opts.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let memory: Arc<Mutex<Option<State>>> = Arc::default();
    let mut local = Local::default();
    let mut published: Option<(Members, Instant)> = None;
    let mut term: Option<Term> = None;
    let mut rollout_tick = Instant::now();
    let mut last_read = Instant::now();
    tokio::pin!(shutdown);
    info!(host = %opts.host_id, store = %redis.url(), "pointsman controller starting on a shared store");
    let result = loop {
        let mut input = None;
        let mut noticed = false;
        let mut ticked = false;
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            event = events.recv() => match event {
                Some(e) => {
                    observer.watched(&e);
                    local.apply(e, &opts.scope);
                    while let Ok(e) = events.try_recv() {
                        observer.watched(&e);
                        local.apply(e, &opts.scope);
                    }
                }
                None => break Ok(()),
            },
            Some(()) = notes.recv() => {
                noticed = true;
                while notes.try_recv().is_ok() {}
            }
            Some(sample) = samples.recv() => input = Some(sample),
            _ = tick.tick() => ticked = true,
        }

        // This host's containers: published when they change, renewed before the lease ends.
        if local.synced {
            let now = Instant::now();
            let members = local.members(&opts);
            let fresh = published
                .as_ref()
                .is_some_and(|(m, at)| *m == members && now - *at < opts.lease / 3);
            if !fresh {
                let same = published.as_ref().is_some_and(|(m, _)| *m == members);
                let renewed = same
                    && matches!(
                        redis.call(&cmd([
                            "PEXPIRE".to_string(),
                            format!("{MEMBERS_PREFIX}{}", opts.host_id),
                            opts.lease.as_millis().to_string()
                        ])),
                        Ok(Value::Int(1))
                    );
                let done = renewed || redis.publish_members(&members, opts.lease).is_ok();
                if done {
                    if !same {
                        debug!(
                            containers = members.containers.len(),
                            "published this host's containers"
                        );
                    }
                    published = Some((members, now));
                } else {
                    published = None;
                }
            }
        }

        // The leader's term: taken when free, renewed each tick, given up when lost.
        if ticked {
            term = match term.take() {
                Some(mut t) => match redis.renew(&t.token, opts.lease) {
                    Ok(true) => {
                        t.renewed = Instant::now();
                        Some(t)
                    }
                    Ok(false) => {
                        warn!(
                            epoch = t.epoch,
                            "lost the leader's lease; another controller renders now"
                        );
                        None
                    }
                    Err(e) if t.renewed.elapsed() < opts.lease => {
                        warn!("cannot renew the leader's lease: {e}");
                        Some(t)
                    }
                    Err(e) => {
                        warn!("the leader's lease ran out while Redis was unreachable ({e}); no longer rendering");
                        None
                    }
                },
                None => {
                    let token = format!("{}/{:016x}", opts.host_id, fastrand::u64(..));
                    match redis.try_lead(&token, opts.lease) {
                        Ok(Some(epoch)) => {
                            info!(
                                epoch,
                                "this controller holds the leader's lease and renders for every host"
                            );
                            let store = redis.store().fenced(&token).remembering(memory.clone());
                            let controller = Controller::new(
                                settings.clone(),
                                flags.clone(),
                                store,
                                redis.sink(&opts.root_key),
                                None,
                            )
                            .with_observer(observer.clone())
                            .with_samples(sample_tx.clone())
                            .with_provider("redis");
                            Some(Term {
                                token,
                                epoch,
                                renewed: Instant::now(),
                                controller,
                                fed: None,
                            })
                        }
                        Ok(None) => None,
                        Err(e) => {
                            debug!("cannot try for the leader's lease: {e}");
                            None
                        }
                    }
                }
            };
        }

        let Some(t) = term.as_mut() else {
            // A follower keeps the roles in mind too: should Redis come back empty (restarted
            // without persistence), whichever controller leads next restores them.
            if noticed || last_read.elapsed() >= opts.lease {
                last_read = Instant::now();
                if let Ok(state) = redis.store().read()
                    && state != State::default()
                {
                    *memory.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
                }
            }
            continue;
        };
        if let Some(sample) = input {
            t.controller.apply(sample);
        }
        // Every host's containers, when anything may have changed.
        if noticed || ticked || t.fed.is_none() {
            match redis.all_containers() {
                Ok(mut all) => {
                    all.sort_by(|a, b| a.id.cmp(&b.id));
                    if t.fed.is_none() {
                        t.controller.apply(Input::Watch(WatchEvent::Resync(all.clone())));
                        t.fed = Some(all);
                    } else if t.fed.as_ref() != Some(&all) {
                        t.controller.replace(all.clone());
                        t.fed = Some(all);
                    }
                }
                Err(e) => warn!("cannot read the hosts' containers: {e}"),
            }
        }
        let rollouts_due = rollout_tick.elapsed() >= crate::controller::TICK;
        if rollouts_due {
            rollout_tick = Instant::now();
            t.controller.apply(Input::Tick);
        }
        if t.fed.is_none() || !(noticed || rollouts_due || t.controller.has_work()) {
            continue;
        }
        match t.controller.reconcile_and_report() {
            Ok(()) => {}
            Err(RunError::Backend(BackendError::Fenced { holder })) => {
                warn!(
                    ?holder,
                    "lost the leader's lease during a render; nothing of it was committed"
                );
                term = None;
            }
            Err(RunError::Backend(e @ (BackendError::CorruptKey { .. } | BackendError::InvalidKey { .. }))) => {
                break Err(e.into());
            }
            Err(e @ RunError::PrefixChanged { .. }) => break Err(e),
            Err(e) => error!("{e}; retrying"),
        }
    };
    if let Some(t) = term {
        // Let another controller take over at once instead of after the lease.
        let _ = redis.resign(&t.token);
    }
    watcher.abort();
    if result.is_ok() {
        info!("shutting down; Traefik keeps routing by the configuration in Redis");
    }
    result
}
