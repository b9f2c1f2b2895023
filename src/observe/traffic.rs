//! Live request rate and error ratio per service, from Traefik's Prometheus endpoint
//! (`--traefik-metrics`), for the status page.
//!
//! Traefik counts requests per service in `traefik_service_requests_total{service, code}`;
//! two scrapes ([`crate::traefik::metrics`], the reader rollouts are judged by) a few seconds
//! apart give each service's rate and 5xx share over that window.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::traefik::metrics::Scrape;

/// How often Traefik is sampled for the page.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One service's traffic over the last window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub requests_per_second: f64,
    /// 5xx answers / all answers; `None` with no request in the window.
    pub error_ratio: Option<f64>,
}

/// Each service's rate between two scrapes `elapsed` apart (a counter that went down, Traefik
/// restarted, counts from zero: [`ServiceCounters::since`]).
pub fn rates(before: &Scrape, after: &Scrape, elapsed: Duration) -> BTreeMap<String, Rate> {
    let secs = elapsed.as_secs_f64().max(0.001);
    after
        .services()
        .map(|service| {
            let window = after.service(service).since(&before.service(service));
            let rate = Rate {
                requests_per_second: window.requests as f64 / secs,
                error_ratio: (window.requests > 0).then(|| window.errors as f64 / window.requests as f64),
            };
            (service.to_string(), rate)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names;

    #[test]
    fn rates_and_5xx_share_per_service_between_two_scrapes() {
        let line = |code: &str, service: &str, n: u64| {
            format!(
                "traefik_service_requests_total{{code=\"{code}\",method=\"GET\",protocol=\"http\",service=\"{service}\"}} {n}\n"
            )
        };
        let (green, public) = (
            format!("{}@file", names::slot("web", "green")),
            format!("{}@file", names::public("web")),
        );
        let before = Scrape::parse(&(line("200", &green, 10) + &line("502", &green, 0))).unwrap();
        let after =
            Scrape::parse(&(line("200", &green, 28) + &line("502", &green, 2) + &line("200", &public, 4))).unwrap();
        let r = rates(&before, &after, Duration::from_secs(5));
        assert_eq!(r[&green].requests_per_second, 4.0);
        assert_eq!(r[&green].error_ratio, Some(0.1));
        assert_eq!(r[&public].requests_per_second, 0.8, "new service: counted from 0");
    }
}
