//! What `/healthz` answers: healthy only while the Docker event stream is connected and the
//! last reconcile succeeded. Pure: the controller feeds it, the HTTP server reads it.

use std::time::{Duration, Instant};

use serde::Serialize;

/// A reconcile running longer than this is stuck (waiting for the state lock a CLI call holds,
/// or for a disk that does not answer): the controller applies nothing meanwhile.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// The controller's link to Docker, as the watcher reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum DockerLink {
    /// Not listed yet: starting, or reconnecting after a loss.
    Connecting,
    /// Subscribed, listed, and answering pings.
    Connected { since: String },
    /// The stream broke or Docker stopped answering; the watcher is retrying.
    Lost { since: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub docker: DockerLink,
    /// The last reconcile: `None` before the first, else its error, if any.
    pub last_reconcile: Option<Result<(), String>>,
    /// When the reconcile under way started, if one is.
    #[serde(skip)]
    pub reconciling_since: Option<Instant>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            docker: DockerLink::Connecting,
            last_reconcile: None,
            reconciling_since: None,
        }
    }
}

/// `/healthz`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub healthy: bool,
    /// One line: what is wrong, or what is right.
    pub reason: String,
}

impl Health {
    pub fn verdict(&self, now: Instant) -> Verdict {
        let unhealthy = |reason: String| Verdict { healthy: false, reason };
        if let Some(since) = self.reconciling_since
            && now.saturating_duration_since(since) > STUCK_AFTER
        {
            return unhealthy(format!(
                "a reconcile has been running for {} s: waiting for the state lock (a CLI call holding it?) or the disk",
                now.saturating_duration_since(since).as_secs()
            ));
        }
        match (&self.docker, &self.last_reconcile) {
            (DockerLink::Lost { since, reason }, _) => {
                unhealthy(format!("Docker is unreachable since {since}: {reason}"))
            }
            (DockerLink::Connecting, _) => unhealthy("not connected to Docker yet (connecting and listing)".into()),
            (DockerLink::Connected { .. }, None) => {
                unhealthy("connected to Docker; the first reconcile has not run yet".into())
            }
            (DockerLink::Connected { .. }, Some(Err(e))) => unhealthy(format!("the last reconcile failed: {e}")),
            (DockerLink::Connected { since }, Some(Ok(()))) => Verdict {
                healthy: true,
                reason: format!("ok: Docker connected since {since}; the last reconcile succeeded"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_while_connected_and_the_last_reconcile_succeeded() {
        let mut h = Health::default();
        assert!(!h.verdict(Instant::now()).healthy, "{:?}", h.verdict(Instant::now()));
        h.docker = DockerLink::Connected { since: "t0".into() };
        assert!(!h.verdict(Instant::now()).healthy, "no reconcile yet");
        h.last_reconcile = Some(Ok(()));
        assert!(h.verdict(Instant::now()).healthy);
        h.last_reconcile = Some(Err("cannot write x: disk full".into()));
        let v = h.verdict(Instant::now());
        assert!(!v.healthy && v.reason.contains("disk full"), "{v:?}");
        h.last_reconcile = Some(Ok(()));
        h.docker = DockerLink::Lost {
            since: "t1".into(),
            reason: "ping: no answer".into(),
        };
        let v = h.verdict(Instant::now());
        assert!(
            !v.healthy && v.reason.contains("no answer") && v.reason.contains("t1"),
            "{v:?}"
        );
    }
}
