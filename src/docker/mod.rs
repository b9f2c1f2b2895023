//! The Docker edge: connect, list, inspect. Read-only, so pointsman runs behind a
//! docker-socket-proxy that allows only `CONTAINERS=1 EVENTS=1` (GET requests).
//!
//! Bollard's inspect response is converted to [`Container`] by re-reading its JSON: the
//! field names are Docker's, so this is the same shape the golden fixtures use.

pub mod backoff;
pub mod watcher;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::ListContainersOptions;
use futures::{StreamExt, TryStreamExt};

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
        source: bollard::errors::Error,
    },
    #[error("Docker returned an inspect response pointsman cannot read: {0}")]
    Shape(String),
}

/// How long one request may take to get its answer from Docker. bollard's default is two
/// minutes: a Docker that accepts connections and never answers (a paused socket proxy, a
/// dropped route to a `tcp://` host) kept the controller silent, not even retrying, for that
/// long, and hung the CLI as long. Docker answers a healthy request in milliseconds and the
/// event stream's headers at once (the timeout ends with the headers, not the stream), so
/// ten seconds only ever cuts short a Docker that is not answering.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects through `DOCKER_HOST` (unix or tcp) and agrees on an API version with the daemon.
pub async fn connect() -> Result<Docker, DockerError> {
    let err = |e: bollard::errors::Error| DockerError::Connect {
        host: host(),
        cause: deepest_cause(&e),
    };
    let docker = Docker::connect_with_defaults()
        .map_err(err)?
        .with_timeout(REQUEST_TIMEOUT);
    docker.negotiate_version().await.map_err(err)
}

/// The innermost error: what actually failed ("Connection refused", "dns error: …"), where
/// bollard's own message is only "client error (Connect)".
fn deepest_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Every container (running or not) that carries the app label, inspected.
pub async fn list(docker: &Docker, settings: &Settings) -> Result<Vec<Container>, DockerError> {
    let ids = list_summaries(docker, settings)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    inspect_all(docker, ids).await
}

/// The containers of one app (running or not), inspected: a listing filtered by Docker on
/// `PREFIX.app=APP`, so the cost follows the app, not the number of containers on the host.
pub async fn list_app(docker: &Docker, settings: &Settings, app: &str) -> Result<Vec<Container>, DockerError> {
    let filters =
        std::collections::HashMap::from([("label".to_string(), vec![format!("{}={app}", settings.label("app"))])]);
    let opts = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let ids = docker
        .list_containers(Some(opts))
        .await
        .map_err(|source| DockerError::Api {
            what: "list containers".into(),
            source,
        })?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    inspect_all(docker, ids).await
}

/// One container, or `None` if it no longer exists.
pub async fn inspect(docker: &Docker, id: &str) -> Result<Option<Container>, DockerError> {
    match docker.inspect_container(id, None).await {
        Ok(resp) => convert(resp).map(Some),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(source) => Err(DockerError::Api {
            what: format!("inspect {id}"),
            source,
        }),
    }
}

fn convert(resp: ContainerInspectResponse) -> Result<Container, DockerError> {
    let value = serde_json::to_value(resp).map_err(|e| DockerError::Shape(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| DockerError::Shape(e.to_string()))
}

/// Every labelled container from one listing request, without inspecting any: good enough
/// to know which apps exist and which hosts they claim, not to route them (no `StartedAt`;
/// health parsed from Docker's status text). The CLI uses it for the apps it does not touch,
/// so a promote costs one listing plus the inspections of one app, however many apps there are.
pub async fn list_summaries(docker: &Docker, settings: &Settings) -> Result<Vec<Container>, DockerError> {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![settings.label("app")])]);
    let opts = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..Default::default()
    };
    let summaries = docker
        .list_containers(Some(opts))
        .await
        .map_err(|source| DockerError::Api {
            what: "list containers".into(),
            source,
        })?;
    Ok(summaries.into_iter().map(from_summary).collect())
}

/// Inspects the containers with these ids (concurrently); vanished ones are skipped.
pub async fn inspect_all(docker: &Docker, ids: Vec<String>) -> Result<Vec<Container>, DockerError> {
    let inspections = ids.into_iter().map(|id| {
        let docker = docker.clone();
        async move { inspect(&docker, &id).await }
    });
    let inspected: Vec<Option<Container>> = futures::stream::iter(inspections).buffered(16).try_collect().await?;
    Ok(inspected.into_iter().flatten().collect())
}

fn from_summary(s: bollard::models::ContainerSummary) -> Container {
    use crate::core::container::{ContainerConfig, ContainerState, Endpoint, Health, NetworkSettings};
    use bollard::models::ContainerSummaryStateEnum as S;
    let state = s.state.unwrap_or(S::EMPTY);
    let status = s.status.unwrap_or_default();
    let health = ["(healthy)", "(unhealthy)", "(health: starting)"]
        .iter()
        .zip(["healthy", "unhealthy", "starting"])
        .find(|(marker, _)| status.contains(**marker))
        .map(|(_, h)| Health { status: h.into() });
    let created = s.created.map(|secs| {
        jiff::Timestamp::from_second(secs)
            .map(|t| t.to_string())
            .unwrap_or_default()
    });
    Container {
        id: s.id.unwrap_or_default(),
        name: s.names.and_then(|n| n.into_iter().next()).unwrap_or_default(),
        created: created.unwrap_or_default(),
        state: ContainerState {
            status: state.to_string(),
            running: matches!(state, S::RUNNING | S::PAUSED),
            paused: state == S::PAUSED,
            restarting: state == S::RESTARTING,
            started_at: String::new(),
            health,
        },
        config: ContainerConfig {
            labels: s.labels.map(|l| l.into_iter().collect()),
            exposed_ports: s.ports.map(|ports| {
                ports
                    .into_iter()
                    .map(|p| {
                        let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
                        (format!("{}/{proto}", p.private_port), serde_json::json!({}))
                    })
                    .collect()
            }),
        },
        network_settings: NetworkSettings {
            networks: s.network_settings.and_then(|n| n.networks).map(|nets| {
                nets.into_iter()
                    .map(|(name, e)| {
                        (
                            name,
                            Endpoint {
                                ip_address: e.ip_address.unwrap_or_default(),
                            },
                        )
                    })
                    .collect()
            }),
        },
    }
}
