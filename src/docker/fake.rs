//! An in-memory Docker for tests: the watcher, the controller and the CLI's listings run
//! against it in-process, under `tokio::time::pause()`, with no daemon.
//!
//! It behaves like the engine where pointsman depends on it:
//! - Changing a container through a verb ([`run`](FakeDocker::run),
//!   [`stop`](FakeDocker::stop), [`health`](FakeDocker::health)…) updates what `inspect`
//!   answers and emits the events Docker would, in Docker's order, to every open event
//!   stream; container events carry the container's labels, network events name the
//!   container. [`insert`](FakeDocker::insert), [`update`](FakeDocker::update) and
//!   [`forget`](FakeDocker::forget) change it silently: a change whose event was missed.
//! - `list` filters by label like Docker and answers the listing's shape (no `StartedAt`);
//!   `inspect` resolves an id, a name or a unique id prefix.
//! - An event stream subscribes when it is first polled, as a real events request is made
//!   then, and sees only what happens from that moment (no replay of `since`).
//!
//! Knobs: [`set_reachable`](FakeDocker::set_reachable) (a daemon gone: every call fails and
//! open streams end with an error), [`cut_events`](FakeDocker::cut_events) (streams end,
//! calls still work), [`hold`](FakeDocker::hold)/[`release`](FakeDocker::release) (calls of
//! one kind wait: a slow or stalled daemon). Every call is logged in order
//! ([`calls`](FakeDocker::calls), [`until_called`](FakeDocker::until_called)) so a test can
//! assert what was asked and when.
//!
//! Answers are computed when a call arrives; a held call delivers that answer on release
//! (a listing Docker made, slow to arrive, while things keep changing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, watch};

use crate::core::container::{Container, ContainerConfig, ContainerState, Endpoint, Health, NetworkSettings};
use crate::docker::DockerError;
use crate::docker::api::{DockerApi, Event, EventKind};

/// One call made to the fake, in the order it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Connect,
    /// The event stream was polled for the first time: the request is made.
    Events {
        since: i64,
    },
    List {
        key: String,
        value: Option<String>,
    },
    Inspect(String),
}

impl Call {
    fn describe(&self) -> String {
        match self {
            Call::Connect => "connect".into(),
            Call::Events { .. } => "watch events".into(),
            Call::List { .. } => "list containers".into(),
            Call::Inspect(id) => format!("inspect {id}"),
        }
    }

    pub fn op(&self) -> Op {
        match self {
            Call::Connect => Op::Connect,
            Call::Events { .. } => Op::Events,
            Call::List { .. } => Op::List,
            Call::Inspect(_) => Op::Inspect,
        }
    }
}

/// The kinds of call, for [`FakeDocker::hold`] and [`FakeDocker::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Connect,
    Events,
    List,
    Inspect,
    /// The watcher's heartbeat. Pings are not in the call log (one every half second would
    /// drown it); [`FakeDocker::pings`] counts them, and holding them is a hung daemon.
    Ping,
}

type Subscriber = mpsc::UnboundedSender<Result<Event, DockerError>>;

/// An in-memory Docker Engine. A handle: clones share one Docker, so the code under test
/// gets one (`Arc::new(fake.clone())` for the watcher) and the test keeps another to change
/// containers and read the call log.
#[derive(Clone)]
pub struct FakeDocker {
    shared: Arc<Shared>,
}

struct Shared {
    /// A `std` mutex: held only for in-memory updates, never across an `.await`.
    inner: Mutex<Inner>,
    /// Every call, in order; a watch channel so a test can wait for one.
    calls: watch::Sender<Vec<Call>>,
    /// Kinds of call that wait until released.
    held: watch::Sender<BTreeSet<Op>>,
}

struct Inner {
    containers: BTreeMap<String, Container>,
    reachable: bool,
    subscribers: Vec<Subscriber>,
    pings: usize,
    /// Unix seconds stamped on events; starts at the real clock, moved by [`FakeDocker::set_time`].
    time: i64,
}

impl Default for FakeDocker {
    fn default() -> Self {
        FakeDocker::new()
    }
}

impl FakeDocker {
    pub fn new() -> FakeDocker {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        FakeDocker {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    containers: BTreeMap::new(),
                    reachable: true,
                    subscribers: Vec::new(),
                    pings: 0,
                    time,
                }),
                calls: watch::Sender::new(Vec::new()),
                held: watch::Sender::new(BTreeSet::new()),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ---- containers, silently ----

    /// Puts a container in place without any event: it was there before anyone watched, or
    /// its events were missed.
    pub fn insert(&self, c: Container) {
        self.inner().containers.insert(c.id.clone(), c);
    }

    /// Changes a container without any event. Panics if there is no such container.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Container)) {
        let mut inner = self.inner();
        let c = inner
            .containers
            .get_mut(id)
            .unwrap_or_else(|| panic!("no container {id}"));
        change(c);
    }

    /// Removes a container without any event.
    pub fn forget(&self, id: &str) {
        self.inner().containers.remove(id);
    }

    /// The container as `inspect` would answer, if it exists.
    pub fn get(&self, id: &str) -> Option<Container> {
        self.inner().containers.get(id).cloned()
    }

    // ---- containers, with Docker's events ----

    /// `docker run`: `create`, a network `connect` per network, `start`. The container ends
    /// up running; a healthcheck it declares starts at `starting`, as Docker's does.
    pub fn run(&self, mut c: Container) {
        let id = c.id.clone();
        let networks: Vec<String> = c
            .network_settings
            .networks
            .iter()
            .flatten()
            .map(|(n, _)| n.clone())
            .collect();
        let health = c.state.health.take();
        let started_at = match std::mem::take(&mut c.state.started_at) {
            at if at.is_empty() => "2026-01-01T00:00:00Z".to_string(),
            at => at,
        };
        c.state.status = "created".into();
        c.state.running = false;
        self.insert(c);
        self.emit_container(&id, "create", &[]);
        for net in networks {
            self.emit_network(&id, &net, "connect");
        }
        self.update(&id, |c| {
            c.state.status = "running".into();
            c.state.running = true;
            c.state.started_at = started_at;
            c.state.health = health.map(|_| Health {
                status: "starting".into(),
            });
        });
        self.emit_container(&id, "start", &[]);
    }

    /// `docker start`.
    pub fn start(&self, id: &str) {
        self.update(id, |c| {
            c.state.status = "running".into();
            c.state.running = true;
            c.state.paused = false;
        });
        self.emit_container(id, "start", &[]);
    }

    /// `docker stop`: `kill` (SIGTERM), `die`, `stop`.
    pub fn stop(&self, id: &str) {
        self.kill(id, "15");
        self.die(id);
        self.emit_container(id, "stop", &[]);
    }

    /// `docker kill -s SIGNAL`: the `kill` event only; follow with [`die`](Self::die) for a
    /// signal that ends the container.
    pub fn kill(&self, id: &str, signal: &str) {
        self.emit_container(id, "kill", &[("signal", signal)]);
    }

    /// The container's process exits: `die`.
    pub fn die(&self, id: &str) {
        self.update(id, |c| {
            c.state.status = "exited".into();
            c.state.running = false;
            c.state.paused = false;
        });
        self.emit_container(id, "die", &[("exitCode", "0")]);
    }

    pub fn pause(&self, id: &str) {
        self.update(id, |c| {
            c.state.status = "paused".into();
            c.state.paused = true;
        });
        self.emit_container(id, "pause", &[]);
    }

    pub fn unpause(&self, id: &str) {
        self.update(id, |c| {
            c.state.status = "running".into();
            c.state.paused = false;
        });
        self.emit_container(id, "unpause", &[]);
    }

    /// The healthcheck's verdict changes: `health_status: STATUS`.
    pub fn health(&self, id: &str, status: &str) {
        self.update(id, |c| {
            c.state.health = Some(Health { status: status.into() });
        });
        self.emit_container(id, &format!("health_status: {status}"), &[]);
    }

    /// `docker rename`.
    pub fn rename(&self, id: &str, name: &str) {
        let old = self.get(id).map(|c| c.name).unwrap_or_default();
        self.update(id, |c| c.name = format!("/{name}"));
        self.emit_container(id, "rename", &[("oldName", &old)]);
    }

    /// `docker network connect NETWORK`, giving the container `ip` there.
    pub fn connect(&self, id: &str, network: &str, ip: &str) {
        self.update(id, |c| {
            c.network_settings
                .networks
                .get_or_insert_default()
                .insert(network.into(), Endpoint { ip_address: ip.into() });
        });
        self.emit_network(id, network, "connect");
    }

    /// `docker network disconnect NETWORK`.
    pub fn disconnect(&self, id: &str, network: &str) {
        self.update(id, |c| {
            if let Some(nets) = c.network_settings.networks.as_mut() {
                nets.remove(network);
            }
        });
        self.emit_network(id, network, "disconnect");
    }

    /// `docker rm`: `destroy` (stop it first for `rm -f`'s `kill` and `die`).
    pub fn destroy(&self, id: &str) {
        let attributes = self.get(id).map(|c| container_attributes(&c, &[]));
        self.forget(id);
        self.emit(EventKind::Container, "destroy", id, attributes.unwrap_or_default());
    }

    /// A container event for `id` with its labels, name and image, plus `extra` attributes.
    pub fn emit_container(&self, id: &str, action: &str, extra: &[(&str, &str)]) {
        let c = self.get(id).unwrap_or_else(|| panic!("no container {id}"));
        self.emit(EventKind::Container, action, id, container_attributes(&c, extra));
    }

    /// A network event about container `id` on `network`.
    pub fn emit_network(&self, id: &str, network: &str, action: &str) {
        let attributes = BTreeMap::from([
            ("container".to_string(), id.to_string()),
            ("name".to_string(), network.to_string()),
            ("type".to_string(), "bridge".to_string()),
        ]);
        self.emit(EventKind::Network, action, &format!("net-{network}"), attributes);
    }

    /// Sends an event to every open event stream.
    pub fn emit(&self, kind: EventKind, action: &str, actor: &str, attributes: BTreeMap<String, String>) {
        let mut inner = self.inner();
        let event = Event {
            kind,
            action: action.into(),
            actor: actor.into(),
            attributes,
            time: inner.time,
        };
        inner.subscribers.retain(|s| s.send(Ok(event.clone())).is_ok());
    }

    /// Sets the unix time stamped on the events from now on.
    pub fn set_time(&self, unix_seconds: i64) {
        self.inner().time = unix_seconds;
    }

    // ---- knobs ----

    /// `false`: the daemon is gone. Open event streams end with an error, and `connect`,
    /// `events`, `list` and `inspect` fail until it is back.
    pub fn set_reachable(&self, reachable: bool) {
        self.inner().reachable = reachable;
        if !reachable {
            self.cut_events();
        }
    }

    /// Ends every open event stream with an error (a proxy restarted, a dropped
    /// connection); the daemon itself still answers.
    pub fn cut_events(&self) {
        let subscribers = std::mem::take(&mut self.inner().subscribers);
        for s in subscribers {
            let _ = s.send(Err(stream_cut()));
        }
    }

    /// Calls of this kind wait (after being logged) until [`release`](Self::release).
    pub fn hold(&self, op: Op) {
        self.shared.held.send_modify(|held| {
            held.insert(op);
        });
    }

    pub fn release(&self, op: Op) {
        self.shared.held.send_modify(|held| {
            held.remove(&op);
        });
    }

    // ---- what was asked ----

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.borrow().clone()
    }

    /// Every call so far, in order, and forgets them.
    pub fn take_calls(&self) -> Vec<Call> {
        let mut taken = Vec::new();
        self.shared.calls.send_modify(|calls| taken = std::mem::take(calls));
        taken
    }

    /// How many calls of this kind so far.
    pub fn count(&self, op: Op) -> usize {
        self.shared.calls.borrow().iter().filter(|c| c.op() == op).count()
    }

    /// The ids (or names) inspected so far, in order.
    pub fn inspected(&self) -> Vec<String> {
        self.shared
            .calls
            .borrow()
            .iter()
            .filter_map(|c| match c {
                Call::Inspect(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Waits until the call log satisfies `done` (e.g. a listing has been asked for).
    pub async fn until_called(&self, done: impl Fn(&[Call]) -> bool) {
        let mut rx = self.shared.calls.subscribe();
        rx.wait_for(|calls| done(calls))
            .await
            .expect("the fake owns the sender");
    }

    /// How many pings were asked for (answered or not).
    pub fn pings(&self) -> usize {
        self.inner().pings
    }

    /// How many event streams are open.
    pub fn subscribers(&self) -> usize {
        let mut inner = self.inner();
        inner.subscribers.retain(|s| !s.is_closed());
        inner.subscribers.len()
    }

    /// Logs the call, fails it if the daemon is unreachable, else computes its answer now and
    /// delivers it once the call's kind is not held.
    async fn call<T>(
        &self,
        call: Call,
        answer: impl FnOnce(&mut Inner) -> Result<T, DockerError>,
    ) -> Result<T, DockerError> {
        let op = call.op();
        let what = call.describe();
        self.shared.calls.send_modify(|calls| calls.push(call));
        let result = {
            let mut inner = self.inner();
            if inner.reachable {
                answer(&mut inner)
            } else if op == Op::Connect {
                Err(DockerError::Connect {
                    host: "fake".into(),
                    cause: "Connection refused".into(),
                })
            } else {
                Err(refused(&what))
            }
        };
        let mut held = self.shared.held.subscribe();
        let _ = held.wait_for(|held| !held.contains(&op)).await;
        result
    }
}

impl DockerApi for FakeDocker {
    async fn connect(&self) -> Result<(), DockerError> {
        self.call(Call::Connect, |_| Ok(())).await
    }

    fn events(&self, since: i64) -> BoxStream<'static, Result<Event, DockerError>> {
        let fake = self.clone();
        futures::stream::once(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let subscribed = fake
                .call(Call::Events { since }, |inner| {
                    inner.subscribers.push(tx);
                    Ok(())
                })
                .await;
            match subscribed {
                Ok(()) => tokio_stream_of(rx).boxed(),
                Err(e) => futures::stream::iter([Err(e)]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn list(&self, key: &str, value: Option<&str>) -> Result<Vec<Container>, DockerError> {
        let call = Call::List {
            key: key.into(),
            value: value.map(Into::into),
        };
        self.call(call, |inner| {
            Ok(inner
                .containers
                .values()
                .filter(|c| match (c.label(key), value) {
                    (Some(v), Some(want)) => v == want,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
                .map(|c| {
                    let mut summary = c.clone();
                    summary.state.started_at = String::new();
                    summary
                })
                .collect())
        })
        .await
    }

    async fn ping(&self) -> Result<(), DockerError> {
        let result = {
            let mut inner = self.inner();
            inner.pings += 1;
            if inner.reachable { Ok(()) } else { Err(refused("ping")) }
        };
        let mut held = self.shared.held.subscribe();
        let _ = held.wait_for(|held| !held.contains(&Op::Ping)).await;
        result
    }

    async fn inspect(&self, id_or_name: &str) -> Result<Option<Container>, DockerError> {
        self.call(Call::Inspect(id_or_name.into()), |inner| {
            resolve(&inner.containers, id_or_name)
        })
        .await
    }
}

/// Docker's order: a full id, then a name, then a unique id prefix.
fn resolve(containers: &BTreeMap<String, Container>, id_or_name: &str) -> Result<Option<Container>, DockerError> {
    if let Some(c) = containers.get(id_or_name) {
        return Ok(Some(c.clone()));
    }
    let name = id_or_name.strip_prefix('/').unwrap_or(id_or_name);
    if let Some(c) = containers.values().find(|c| c.short_name() == name) {
        return Ok(Some(c.clone()));
    }
    let mut by_prefix = containers.values().filter(|c| c.id.starts_with(id_or_name));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(c), None) => Ok(Some(c.clone())),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(DockerError::Api {
            what: format!("inspect {id_or_name}"),
            source: format!("multiple IDs found with provided prefix: {id_or_name}").into(),
        }),
    }
}

fn tokio_stream_of<T: Send + 'static>(mut rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn container_attributes(c: &Container, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut attributes = c.config.labels.clone().unwrap_or_default();
    attributes.insert("name".into(), c.short_name().into());
    attributes.insert("image".into(), "fake".into());
    for (k, v) in extra {
        attributes.insert((*k).into(), (*v).into());
    }
    attributes
}

fn refused(what: &str) -> DockerError {
    DockerError::Api {
        what: what.into(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (fake Docker)",
        )),
    }
}

fn stream_cut() -> DockerError {
    DockerError::Api {
        what: "watch events".into(),
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the event stream was cut (fake Docker)",
        )),
    }
}

/// A container to hand to the fake: `container("web-blue").app("web").slot("blue").build()`.
/// Its id is derived from its name (64 hex digits), so tests can name ids up front.
pub fn container(name: &str) -> ContainerBuilder {
    ContainerBuilder {
        c: Container {
            id: id_of(name),
            name: format!("/{name}"),
            created: "2026-01-01T00:00:00Z".into(),
            state: ContainerState {
                status: "created".into(),
                ..Default::default()
            },
            config: ContainerConfig {
                labels: Some(BTreeMap::new()),
                exposed_ports: None,
            },
            network_settings: NetworkSettings::default(),
            advertise: None,
            host: None,
        },
        prefix: "pointsman".into(),
    }
}

/// The id [`container`] gives a container of this name.
pub fn id_of(name: &str) -> String {
    // FNV-1a, spread over 64 hex digits: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..4)
        .map(|i| {
            format!(
                "{:016x}",
                h.rotate_left(i * 16) ^ u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect()
}

pub struct ContainerBuilder {
    c: Container,
    prefix: String,
}

impl ContainerBuilder {
    /// Reads `app`, `slot`… under this prefix instead of `pointsman`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.c
            .config
            .labels
            .get_or_insert_default()
            .insert(key.into(), value.into());
        self
    }

    /// `PREFIX.app`, and `PREFIX.host` = `APP.test` so the container routes.
    pub fn app(self, app: &str) -> Self {
        let (app_key, host_key) = (format!("{}.app", self.prefix), format!("{}.host", self.prefix));
        self.label(&app_key, app).label(&host_key, &format!("{app}.test"))
    }

    pub fn slot(self, slot: &str) -> Self {
        let key = format!("{}.slot", self.prefix);
        self.label(&key, slot)
    }

    pub fn version(self, role: &str) -> Self {
        let key = format!("{}.version", self.prefix);
        self.label(&key, role)
    }

    pub fn port(mut self, port: u16) -> Self {
        self.c
            .config
            .exposed_ports
            .get_or_insert_default()
            .insert(format!("{port}/tcp"), serde_json::json!({}));
        self
    }

    pub fn network(mut self, network: &str, ip: &str) -> Self {
        self.c
            .network_settings
            .networks
            .get_or_insert_default()
            .insert(network.into(), Endpoint { ip_address: ip.into() });
        self
    }

    /// Already running (for [`FakeDocker::insert`]; [`FakeDocker::run`] starts it anyway).
    pub fn running(mut self) -> Self {
        self.c.state.status = "running".into();
        self.c.state.running = true;
        self.c.state.started_at = "2026-01-01T00:00:00Z".into();
        self
    }

    /// With a healthcheck whose current verdict is `status` (`starting`, `healthy`…).
    pub fn health(mut self, status: &str) -> Self {
        self.c.state.health = Some(Health { status: status.into() });
        self
    }

    pub fn build(self) -> Container {
        self.c
    }
}
