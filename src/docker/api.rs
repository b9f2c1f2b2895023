//! The narrow interface pointsman needs from Docker: five read-only calls.
//!
//! Everything that talks to Docker (the watcher, the CLI's listings) goes through
//! [`DockerApi`], so the engine is chosen at the edge: [`Engine`](super::Engine) is the real
//! daemon through bollard, [`FakeDocker`](super::fake::FakeDocker) an in-memory one whose
//! tests run in-process, under paused time, without a daemon.

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::BoxStream;

use crate::core::container::Container;
use crate::docker::DockerError;

/// What pointsman asks of Docker. All five calls only read.
///
/// The futures are `Send` so the watcher can run on any runtime thread.
pub trait DockerApi: Send + Sync + 'static {
    /// Connects (again) and agrees on an API version. The watcher calls it at the start of
    /// every connection, so a restarted or upgraded daemon is met afresh.
    fn connect(&self) -> impl Future<Output = Result<(), DockerError>> + Send;

    /// Container and network events from `since` (unix seconds) on, then live ones as they
    /// happen, until the connection fails (an `Err` item, then the end). An implementation
    /// may leave out actions outside [`CONTAINER_ACTIONS`] and [`NETWORK_ACTIONS`] (the
    /// engine filters them on the daemon's side). The request is made when the stream is
    /// first polled, not when this is called.
    fn events(&self, since: i64) -> BoxStream<'static, Result<Event, DockerError>>;

    /// Containers in any state that carry label `key` (with value `value` when given), as
    /// the listing describes them: no inspect, so no `State.StartedAt`, and health only as
    /// far as the status text says it.
    fn list(&self, key: &str, value: Option<&str>) -> impl Future<Output = Result<Vec<Container>, DockerError>> + Send;

    /// One container by id, unique id prefix or name (Docker resolves all three); `None` if
    /// there is no such container (any more).
    fn inspect(&self, id_or_name: &str) -> impl Future<Output = Result<Option<Container>, DockerError>> + Send;

    /// `GET /_ping`: the watcher's heartbeat. An idle event stream says nothing, so only an
    /// answer proves a connected Docker still answers.
    fn ping(&self) -> impl Future<Output = Result<(), DockerError>> + Send;
}

/// One Docker event, cut down to what the watcher reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// Docker's action: `start`, `die`, `kill`, `health_status: healthy`, `connect`…
    pub action: String,
    /// The container's id for a container event, the network's for a network event.
    pub actor: String,
    /// A container event carries the container's labels, its `name` and `image`, plus
    /// `signal` on `kill`; a network event carries the `container` it concerns and the
    /// network's `name` and `type`.
    pub attributes: BTreeMap<String, String>,
    /// Unix seconds.
    pub time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Container,
    Network,
    /// Images, volumes, daemons…: never asked for, ignored if they come.
    Other,
}

impl Event {
    /// The action without its detail: `health_status: healthy` → `health_status`.
    pub fn base_action(&self) -> &str {
        self.action
            .split_once(':')
            .map_or(self.action.as_str(), |(base, _)| base)
            .trim()
    }
}

/// Container actions that can change what pointsman routes.
pub const CONTAINER_ACTIONS: &[&str] = &[
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

/// Network actions that can change a container's address.
pub const NETWORK_ACTIONS: &[&str] = &["connect", "disconnect"];
