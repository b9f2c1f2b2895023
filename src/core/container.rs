//! A container as Docker's inspect endpoint describes it, cut down to what pointsman reads.
//!
//! The field names are Docker's own, so a fixture is simply `docker inspect` output (trimmed
//! or not) and the Docker edge converts bollard's response by re-reading its JSON. One shape
//! for tests and production means the golden tests exercise exactly what the controller sees.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Container {
    pub id: String,
    /// Docker's name, with its leading `/`.
    pub name: String,
    pub created: String,
    pub state: ContainerState,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
    /// Set by a host's controller on a shared store (`--advertise-address`): other hosts reach
    /// this container at this address on the host port Docker published for it.
    #[serde(rename = "PointsmanAdvertise", skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    /// The `--host-id` of the controller that published this container (shared store).
    #[serde(rename = "PointsmanHost", skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub started_at: String,
    pub health: Option<Health>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub labels: Option<BTreeMap<String, String>>,
    /// Keys like `80/tcp`; Docker's values are empty objects.
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub networks: Option<BTreeMap<String, Endpoint>>,
    /// `80/tcp` → the host ports Docker published it on (`null` when not published).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
}

/// How a container stands for routing purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Running, not paused, and healthy or without a healthcheck: it gets traffic.
    Ready,
    /// Running with a healthcheck that has not passed yet.
    Starting,
    Unhealthy,
    Paused,
    /// Created, exited, dead, restarting or removing.
    Stopped,
}

impl Container {
    /// The name without Docker's leading slash.
    pub fn short_name(&self) -> &str {
        self.name.strip_prefix('/').unwrap_or(&self.name)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }

    pub fn created_at(&self) -> Timestamp {
        parse_time(&self.created)
    }

    pub fn started_at(&self) -> Timestamp {
        parse_time(&self.state.started_at)
    }

    pub fn condition(&self) -> Condition {
        let s = &self.state;
        if !s.running || s.restarting {
            return Condition::Stopped;
        }
        if s.paused {
            return Condition::Paused;
        }
        match s.health.as_ref().map(|h| h.status.as_str()) {
            None | Some("") | Some("none") | Some("healthy") => Condition::Ready,
            Some("starting") => Condition::Starting,
            Some(_) => Condition::Unhealthy,
        }
    }

    /// TCP ports the image or run command exposes, sorted.
    pub fn exposed_tcp_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .config
            .exposed_ports
            .iter()
            .flatten()
            .filter_map(|(key, _)| {
                let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
                (proto == "tcp").then(|| port.parse().ok()).flatten()
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The host port Docker published a TCP port of this container on.
    pub fn published_port(&self, port: u16) -> Option<u16> {
        self.network_settings
            .ports
            .as_ref()?
            .get(&format!("{port}/tcp"))?
            .as_ref()?
            .iter()
            .find_map(|b| b.host_port.parse().ok())
    }

    pub fn networks(&self) -> impl Iterator<Item = (&str, &Endpoint)> {
        self.network_settings
            .networks
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// Docker's RFC 3339 times (up to nine fractional digits, trailing zeros trimmed, so they do not
/// sort as text). Unparseable or empty is the Unix epoch: a container Docker never started sorts
/// before every container it did start (Docker's own zero time, year 1, sorts before that).
pub fn parse_time(text: &str) -> Timestamp {
    text.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_fraction_lengths_compare_as_instants_not_text() {
        assert!(parse_time("2026-11-26T05:02:52.1234Z") < parse_time("2026-11-26T05:02:52.12345Z"));
        assert_eq!(
            parse_time("2026-11-26T06:00:00+01:00"),
            parse_time("2026-11-26T05:00:00Z")
        );
    }

    #[test]
    fn garbage_is_the_epoch_and_dockers_zero_time_is_before_it() {
        assert_eq!(parse_time("not a time"), Timestamp::UNIX_EPOCH);
        assert!(parse_time("0001-01-01T00:00:00Z") < Timestamp::UNIX_EPOCH);
    }
}
