//! pointsman's own metrics, in the Prometheus exposition format (OpenMetrics text, which
//! Prometheus scrapes natively).
//!
//! Names follow Prometheus conventions: the `pointsman_` prefix, `_total` on counters (the
//! encoder adds it), `_seconds` on durations. Label values come from app names (DNS labels),
//! fixed action names and fixed kinds, so the number of series follows the number of apps.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// A label set: `[("app", "web"), ("action", "promote")]`.
pub type Labels = Vec<(&'static str, String)>;

/// The metric families. Each is internally synchronised, so the controller updates them and
/// the HTTP server encodes them without a lock of ours.
pub struct Metrics {
    registry: Registry,
    pub transitions: Family<Labels, Counter>,
    pub reconciles: Family<Labels, Counter>,
    pub reconcile_duration: Histogram,
    pub docker_events: Family<Labels, Counter>,
    pub docker_connected: Gauge,
    pub docker_resyncs: Counter,
    pub docker_losses: Counter,
    pub label_errors: Family<Labels, Gauge>,
    pub canary_weight: Family<Labels, Gauge>,
    pub mirror_percent: Family<Labels, Gauge>,
    pub rollout_step: Family<Labels, Gauge>,
    pub rollout_steps: Family<Labels, Gauge>,
    pub servers: Family<Labels, Gauge>,
    pub last_success: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pointsman");
        let m = Metrics {
            registry: Registry::default(),
            transitions: Family::default(),
            reconciles: Family::default(),
            // 100 µs to ~6.5 s: a one-app reconcile takes a few ms, a full one on disk up to ~1 s.
            reconcile_duration: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 17,
            )),
            docker_events: Family::default(),
            docker_connected: Gauge::default(),
            docker_resyncs: Counter::default(),
            docker_losses: Counter::default(),
            label_errors: Family::default(),
            canary_weight: Family::default(),
            mirror_percent: Family::default(),
            rollout_step: Family::default(),
            rollout_steps: Family::default(),
            servers: Family::default(),
            last_success: Gauge::default(),
        };
        registry.register(
            "build",
            "pointsman's version (always 1)",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "transitions",
            "Role and traffic changes recorded in the history (by the controller or the CLI), by app, action and actor",
            m.transitions.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles (state read, apps rendered, files published), by result",
            m.reconciles.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile took, lock and writes included",
            Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        registry.register(
            "docker_events",
            "Docker events about labelled containers the controller received from the watcher, by kind",
            m.docker_events.clone(),
        );
        registry.register(
            "docker_connected",
            "1 while the Docker event stream is connected and Docker answers pings, else 0",
            m.docker_connected.clone(),
        );
        registry.register(
            "docker_resyncs",
            "Full listings of Docker (at each connection and periodically)",
            m.docker_resyncs.clone(),
        );
        registry.register(
            "docker_connection_losses",
            "Times the connection to Docker was lost (stream cut, error, unanswered ping)",
            m.docker_losses.clone(),
        );
        registry.register(
            "label_errors",
            "Containers left out for a bad label, by the app their app label names (empty when that label itself is bad)",
            m.label_errors.clone(),
        );
        registry.register(
            "canary_weight_percent",
            "Share of new public visitors sent to the candidate (0: none)",
            m.canary_weight.clone(),
        );
        registry.register(
            "mirror_percent",
            "Share of public requests copied to the candidate (0: none)",
            m.mirror_percent.clone(),
        );
        registry.register(
            "rollout_step",
            "Step of the running rollout, from 1 (0: no rollout)",
            m.rollout_step.clone(),
        );
        registry.register(
            "rollout_steps",
            "Steps of the running rollout (0: no rollout)",
            m.rollout_steps.clone(),
        );
        registry.register(
            "routable_servers",
            "Routable servers per app and slot",
            m.servers.clone(),
        );
        registry.register_with_unit(
            "last_successful_reconcile_timestamp",
            "Unix time of the last successful reconcile",
            Unit::Seconds,
            m.last_success.clone(),
        );
        // Series known in advance start at 0, so rates and alerts work from the first scrape.
        for kind in ["upsert", "remove", "stopping", "implied"] {
            let _ = m.docker_events.get_or_create(&vec![("kind", kind.to_string())]);
        }
        for result in ["ok", "error"] {
            let _ = m.reconciles.get_or_create(&vec![("result", result.to_string())]);
        }
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text (`application/openmetrics-text`), ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// The Prometheus text format 0.0.4 (`text/plain`), for scrapers that do not ask for
    /// OpenMetrics. See [`classic`].
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }

    pub fn observe_reconcile(&self, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_success.set(now.as_secs_f64());
        }
    }
}

/// OpenMetrics text → Prometheus text 0.0.4. The samples are the same; only the metadata
/// differs: a counter family `x` is described as `x_total` (its samples' name), an info family
/// `x` becomes the gauge `x_info`, and `# UNIT` and `# EOF` go. The help texts here contain no
/// character the two formats escape differently (`"`).
pub fn classic(openmetrics: &str) -> String {
    let mut renamed: std::collections::HashMap<&str, (&str, &str)> = std::collections::HashMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            match kind {
                "counter" => renamed.insert(name, ("_total", "counter")),
                "info" => renamed.insert(name, ("_info", "gauge")),
                _ => None,
            };
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find(|p| line.starts_with(p));
        if let Some(prefix) = meta {
            let rest = &line[prefix.len()..];
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((suffix, kind)) = renamed.get(name) {
                let tail = if prefix == "# TYPE " { *kind } else { tail };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Sets a gauge family to exactly `values`: series written last time (`written`) and absent
/// now are removed, the others set in place (never cleared first, so a scrape never sees a
/// gap). prometheus-client does not list a family's series, so the caller keeps `written`.
pub fn set_family(family: &Family<Labels, Gauge>, written: &mut BTreeSet<Labels>, values: Vec<(Labels, i64)>) {
    let now: BTreeSet<Labels> = values.iter().map(|(l, _)| l.clone()).collect();
    for stale in written.difference(&now) {
        family.remove(stale);
    }
    for (labels, value) in &values {
        family.get_or_create(labels).set(*value);
    }
    *written = now;
}
