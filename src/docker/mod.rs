//! The Docker edge: read-only access to Docker behind a narrow trait, and the watcher that
//! turns it into a stream of changes for the controller.
//!
//! - [`api`]: [`DockerApi`], the five calls pointsman makes (connect, events, list, inspect, ping),
//!   and Docker's [`Event`] as pointsman reads it.
//! - [`engine`]: [`Engine`], the real daemon through bollard (`DOCKER_HOST`, unix or tcp).
//! - [`fake`]: [`FakeDocker`](fake::FakeDocker), an in-memory Docker for tests (unit and
//!   integration): containers changed by the test emit Docker's events; knobs make it
//!   unreachable, cut its event stream or hold its answers; it logs every call in order.
//! - [`watcher`]: subscribe, list, apply events, resync, reconnect forever.
//! - [`backoff`]: the capped, jittered delays between reconnections.
//!
//! The free functions below ([`list`], [`list_app`], [`inspect_all`]…) are the listings the
//! watcher and the CLI share, written once over any [`DockerApi`].

pub mod api;
pub mod backoff;
pub mod engine;
pub mod fake;
pub mod watcher;

use futures::{StreamExt, TryStreamExt};

pub use api::{DockerApi, Event, EventKind};
pub use engine::{Engine, REQUEST_TIMEOUT};

use crate::core::container::Container;
use crate::core::settings::Settings;

/// Failures talking to Docker. All are transient from the controller's point of view (it
/// reconnects and resyncs); the CLI reports them with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach Docker at {host}: {cause}; is the daemon running and DOCKER_HOST right?")]
    Connect { host: String, cause: String },
    #[error("Docker request failed ({what}): {source}")]
    Api {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Docker returned an inspect response pointsman cannot read: {0}")]
    Shape(String),
}

/// Where Docker is: `DOCKER_HOST`, else the local socket.
pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Every container (running or not) that carries the app label, inspected.
pub async fn list(api: &impl DockerApi, settings: &Settings) -> Result<Vec<Container>, DockerError> {
    let ids = list_summaries(api, settings).await?.into_iter().map(|c| c.id).collect();
    inspect_all(api, ids).await
}

/// The containers of one app (label `PREFIX.app=APP`), inspected. Docker filters by the
/// label's value, so the cost follows the app's size, not the host's.
pub async fn list_app(api: &impl DockerApi, settings: &Settings, app: &str) -> Result<Vec<Container>, DockerError> {
    let ids = api
        .list(&settings.label("app"), Some(app))
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    inspect_all(api, ids).await
}

/// Every labelled container from one listing request, without inspecting any: good enough
/// to know which apps exist and which hosts they claim, not to route them (no `StartedAt`;
/// health parsed from Docker's status text). The CLI uses it for the apps it does not touch,
/// so a promote costs one listing plus the inspections of one app, however many apps there are.
pub async fn list_summaries(api: &impl DockerApi, settings: &Settings) -> Result<Vec<Container>, DockerError> {
    api.list(&settings.label("app"), None).await
}

/// Inspects the containers with these ids (16 at a time); vanished ones are skipped.
pub async fn inspect_all(api: &impl DockerApi, ids: Vec<String>) -> Result<Vec<Container>, DockerError> {
    let inspections = ids.into_iter().map(|id| async move { api.inspect(&id).await });
    let inspected: Vec<Option<Container>> = futures::stream::iter(inspections).buffered(16).try_collect().await?;
    Ok(inspected.into_iter().flatten().collect())
}
