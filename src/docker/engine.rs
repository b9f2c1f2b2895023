//! The real Docker Engine, through bollard.
//!
//! Bollard's inspect response is converted to [`Container`] by re-reading its JSON: the
//! field names are Docker's, so this is the same shape the golden fixtures use.

use std::collections::HashMap;
use std::sync::Mutex;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::core::container::Container;
use crate::docker::api::{CONTAINER_ACTIONS, DockerApi, Event, EventKind, NETWORK_ACTIONS};
use crate::docker::{DockerError, host};

/// How long one request may take to get its answer from Docker. bollard's default is two
/// minutes: a Docker that accepts connections and never answers (a paused socket proxy, a
/// dropped route to a `tcp://` host) kept the controller silent, not even retrying, for that
/// long, and hung the CLI as long. Docker answers a healthy request in milliseconds and the
/// event stream's headers at once (the timeout ends with the headers, not the stream), so
/// ten seconds only ever cuts short a Docker that is not answering.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Docker through `DOCKER_HOST` (unix or tcp). Read-only, so pointsman runs behind a
/// docker-socket-proxy that allows only `CONTAINERS=1 EVENTS=1` (GET requests).
///
/// Holds the client of the latest [`connect`](DockerApi::connect); every other call needs
/// one, so connect first ([`Engine::connected`] does both).
#[derive(Default)]
pub struct Engine {
    /// A `std` mutex: it is held only to clone or swap the client (an `Arc` inside), never
    /// across an `.await`.
    client: Mutex<Option<Docker>>,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine already connected: what a one-shot CLI command wants.
    pub async fn connected() -> Result<Engine, DockerError> {
        let engine = Engine::new();
        engine.connect().await?;
        Ok(engine)
    }

    fn client(&self) -> Result<Docker, DockerError> {
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| DockerError::Connect {
                host: host(),
                cause: "not connected yet".into(),
            })
    }
}

impl DockerApi for Engine {
    async fn connect(&self) -> Result<(), DockerError> {
        let err = |e: bollard::errors::Error| DockerError::Connect {
            host: host(),
            cause: deepest_cause(&e),
        };
        let docker = Docker::connect_with_defaults()
            .map_err(err)?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = docker.negotiate_version().await.map_err(err)?;
        *self.client.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(docker);
        Ok(())
    }

    fn events(&self, since: i64) -> BoxStream<'static, Result<Event, DockerError>> {
        let docker = match self.client() {
            Ok(d) => d,
            Err(e) => return futures::stream::iter([Err(e)]).boxed(),
        };
        let mut actions: Vec<String> = CONTAINER_ACTIONS
            .iter()
            .chain(NETWORK_ACTIONS)
            .map(|s| s.to_string())
            .collect();
        actions.sort();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string(), "network".to_string()]),
            ("event".to_string(), actions),
        ]);
        let opts = EventsOptions {
            since: Some(since.to_string()),
            until: None,
            filters: Some(filters),
        };
        docker
            .events(Some(opts))
            .map(|item| {
                item.map(from_message).map_err(|source| DockerError::Api {
                    what: "watch events".into(),
                    source: source.into(),
                })
            })
            .boxed()
    }

    async fn list(&self, key: &str, value: Option<&str>) -> Result<Vec<Container>, DockerError> {
        let filter = match value {
            Some(v) => format!("{key}={v}"),
            None => key.to_string(),
        };
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), vec![filter])])),
            ..Default::default()
        };
        let summaries = self
            .client()?
            .list_containers(Some(opts))
            .await
            .map_err(|source| DockerError::Api {
                what: "list containers".into(),
                source: source.into(),
            })?;
        Ok(summaries.into_iter().map(from_summary).collect())
    }

    async fn ping(&self) -> Result<(), DockerError> {
        self.client()?
            .ping()
            .await
            .map(drop)
            .map_err(|source| DockerError::Api {
                what: "ping".into(),
                source: source.into(),
            })
    }

    async fn inspect(&self, id_or_name: &str) -> Result<Option<Container>, DockerError> {
        match self.client()?.inspect_container(id_or_name, None).await {
            Ok(resp) => convert(resp).map(Some),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(source) => Err(DockerError::Api {
                what: format!("inspect {id_or_name}"),
                source: source.into(),
            }),
        }
    }
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

fn from_message(msg: EventMessage) -> Event {
    let (actor, attributes) = msg
        .actor
        .map(|a| {
            (
                a.id.unwrap_or_default(),
                a.attributes.unwrap_or_default().into_iter().collect(),
            )
        })
        .unwrap_or_default();
    Event {
        kind: match msg.typ {
            Some(EventMessageTypeEnum::CONTAINER) => EventKind::Container,
            Some(EventMessageTypeEnum::NETWORK) => EventKind::Network,
            _ => EventKind::Other,
        },
        action: msg.action.unwrap_or_default(),
        actor,
        attributes,
        time: msg.time.unwrap_or_default(),
    }
}

fn convert(resp: ContainerInspectResponse) -> Result<Container, DockerError> {
    let value = serde_json::to_value(resp).map_err(|e| DockerError::Shape(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| DockerError::Shape(e.to_string()))
}

fn from_summary(s: bollard::models::ContainerSummary) -> Container {
    use crate::core::container::{ContainerConfig, ContainerState, Endpoint, Health, NetworkSettings, PortBinding};
    use bollard::models::ContainerSummaryStateEnum as S;
    use std::collections::BTreeMap;
    let state = s.state.unwrap_or(S::EMPTY);
    let status = s.status.unwrap_or_default();
    let health = ["(healthy)", "(unhealthy)", "(health: starting)"]
        .iter()
        .zip(["healthy", "unhealthy", "starting"])
        .find(|(marker, _)| status.contains(**marker))
        .map(|(_, h)| Health { status: h.into() });
    let mut published: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in s.ports.iter().flatten() {
        let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
        let bindings = published.entry(format!("{}/{proto}", p.private_port)).or_insert(None);
        if let Some(public) = p.public_port {
            bindings.get_or_insert_with(Vec::new).push(PortBinding {
                host_ip: p.ip.clone().unwrap_or_default(),
                host_port: public.to_string(),
            });
        }
    }
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
            ports: Some(published),
        },
        advertise: None,
        host: None,
    }
}
