//! The Docker edge: connect, list, inspect. Read-only, so pointsman runs behind a
//! docker-socket-proxy that allows only `CONTAINERS=1 EVENTS=1` (GET requests).
//!
//! Bollard's inspect response is converted to [`Container`] by re-reading its JSON: the
//! field names are Docker's, so this is the same shape the golden fixtures use.

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::ListContainersOptions;
use futures::{StreamExt, TryStreamExt};

use crate::container::Container;
use crate::settings::Settings;

/// Failures talking to Docker. All are transient from the controller's point of view (it
/// reconnects and resyncs); the CLI reports them with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach Docker at {host}: {source}; is the daemon running and DOCKER_HOST right?")]
    Connect { host: String, source: bollard::errors::Error },
    #[error("Docker request failed ({what}): {source}")]
    Api { what: String, source: bollard::errors::Error },
    #[error("Docker returned an inspect response pointsman cannot read: {0}")]
    Shape(String),
}

pub fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects through `DOCKER_HOST` (unix or tcp) and agrees on an API version with the daemon.
pub async fn connect() -> Result<Docker, DockerError> {
    let err = |source| DockerError::Connect { host: host(), source };
    let docker = Docker::connect_with_defaults().map_err(err)?;
    docker.negotiate_version().await.map_err(err)
}

/// Every container (running or not) that carries the app label, inspected.
pub async fn list(docker: &Docker, settings: &Settings) -> Result<Vec<Container>, DockerError> {
    let filters = std::collections::HashMap::from([("label".to_string(), vec![settings.label("app")])]);
    let opts = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let summaries = docker
        .list_containers(Some(opts))
        .await
        .map_err(|source| DockerError::Api { what: "list containers".into(), source })?;
    let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
    let inspections = ids.into_iter().map(|id| {
        let docker = docker.clone();
        async move { inspect(&docker, &id).await }
    });
    let inspected: Vec<Option<Container>> = futures::stream::iter(inspections).buffered(16).try_collect().await?;
    Ok(inspected.into_iter().flatten().collect())
}

/// One container, or `None` if it no longer exists.
pub async fn inspect(docker: &Docker, id: &str) -> Result<Option<Container>, DockerError> {
    match docker.inspect_container(id, None).await {
        Ok(resp) => convert(resp).map(Some),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(source) => Err(DockerError::Api { what: format!("inspect {id}"), source }),
    }
}

fn convert(resp: ContainerInspectResponse) -> Result<Container, DockerError> {
    let value = serde_json::to_value(resp).map_err(|e| DockerError::Shape(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| DockerError::Shape(e.to_string()))
}
