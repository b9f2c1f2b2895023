//! Live request rate and error ratio per service, from Traefik's Prometheus endpoint
//! (`--traefik-metrics`), for the status page.
//!
//! Traefik counts requests per service in `traefik_service_requests_total{service, code}`;
//! two samples a few seconds apart give each service's rate and 5xx share over that window.
//! Only that one counter is read, so the parser below reads only sample lines (name, labels,
//! value) and skips everything else.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// How often Traefik is sampled for the page.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Requests per service: total and 5xx, as Traefik counts them since it started.
pub type Counts = BTreeMap<String, (f64, f64)>;

/// One service's traffic over the last window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub requests_per_second: f64,
    /// 5xx answers / all answers; `None` with no request in the window.
    pub error_ratio: Option<f64>,
}

/// Sums `traefik_service_requests_total` by service: (all, 5xx).
pub fn parse_counts(text: &str) -> Counts {
    let mut out = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("traefik_service_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = split_labels(rest) else {
            continue;
        };
        let Some(value) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let (mut service, mut code) = (None, None);
        for (k, v) in labels {
            match k {
                "service" => service = Some(v),
                "code" => code = Some(v),
                _ => {}
            }
        }
        let Some(service) = service else { continue };
        let entry = out.entry(service).or_insert((0.0, 0.0));
        entry.0 += value;
        if code.is_some_and(|c| c.starts_with('5')) {
            entry.1 += value;
        }
    }
    out
}

/// `a="x",b="y\"z"} 12` → the labels and what follows the closing brace.
fn split_labels(s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name.trim(), value));
        rest = &after[end + 1..];
    }
}

/// Each service's rate between two samples `elapsed` apart. A counter that went down
/// (Traefik restarted) counts from zero.
pub fn rates(before: &Counts, after: &Counts, elapsed: Duration) -> BTreeMap<String, Rate> {
    let secs = elapsed.as_secs_f64().max(0.001);
    after
        .iter()
        .map(|(service, &(all, errors))| {
            let (all0, errors0) = before.get(service).copied().unwrap_or((0.0, 0.0));
            let (d_all, d_err) = if all < all0 {
                (all, errors)
            } else {
                (all - all0, errors - errors0)
            };
            let rate = Rate {
                requests_per_second: d_all / secs,
                error_ratio: (d_all > 0.0).then(|| d_err / d_all),
            };
            (service.clone(), rate)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_and_5xx_per_service_and_rates_between_two_samples() {
        let before = parse_counts(
            "# HELP traefik_service_requests_total How many HTTP requests processed, partitioned by status code, protocol, and method.\n\
             # TYPE traefik_service_requests_total counter\n\
             traefik_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"web-slot-green@file\"} 10\n\
             traefik_service_requests_total{code=\"502\",method=\"GET\",protocol=\"http\",service=\"web-slot-green@file\"} 0\n\
             traefik_service_request_duration_seconds_bucket{service=\"web@file\",le=\"0.1\"} 3\n",
        );
        assert_eq!(before["web-slot-green@file"], (10.0, 0.0));
        let after = parse_counts(
            "traefik_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"web-slot-green@file\"} 28\n\
             traefik_service_requests_total{code=\"502\",method=\"GET\",protocol=\"http\",service=\"web-slot-green@file\"} 2\n\
             traefik_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"we\\\"ird@file\"} 4\n",
        );
        assert_eq!(after["we\"ird@file"], (4.0, 0.0));
        let r = rates(&before, &after, Duration::from_secs(5));
        assert_eq!(r["web-slot-green@file"].requests_per_second, 4.0);
        assert_eq!(r["web-slot-green@file"].error_ratio, Some(0.1));
        assert_eq!(
            r["we\"ird@file"].requests_per_second, 0.8,
            "new service: counted from 0"
        );
    }
}
