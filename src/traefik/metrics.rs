//! A canary step judged by Traefik's own numbers.
//!
//! Traefik counts every request per service on its Prometheus endpoint (with
//! `metrics.prometheus.addServicesLabels: true`): `traefik_service_requests_total` by status
//! code, method and protocol, and the histogram `traefik_service_request_duration_seconds`.
//! Leaf services only: a `weighted` or `mirroring` service has no series of its own.
//!
//! # What a step is judged on
//!
//! The candidate's *public* traffic: during a canary the weighted public service splits between
//! the stable slot's service and `APP.canary.SLOT` ([`crate::core::names::canary`]), a leaf
//! with the candidate's servers that nothing else references. Preview requests (the cookie or
//! header `candidate`, the preview entrypoint) go to the slot's own service `APP.slot.SLOT`
//! instead, so anyone able to send those (every visitor can set a cookie) cannot make a healthy
//! candidate fail, nor hide a failing one behind healthy preview requests.
//!
//! # Windows, several Traefiks, restarts
//!
//! The counters are cumulative since each Traefik started, so a step is judged on what they
//! gained over its window. With several Traefiks (`--traefik-metrics A,B`, one per host) the
//! gain is computed per Traefik and then summed ([`Window`]); summing the counters first would
//! hide one Traefik's restart behind the others' growth, or make the sum go down and judge the
//! others' whole history. Rules are pure, so each (resets, thresholds, the quantile) is tested
//! without Traefik.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::traefik::exposition::{self, ParseError, parse_float};
use crate::traefik::http::{HttpClient, REQUEST_TIMEOUT};

const REQUESTS: &str = "traefik_service_requests_total";
const DURATION_BUCKET: &str = "traefik_service_request_duration_seconds_bucket";
const ENTRYPOINT_REQUESTS: &str = "traefik_entrypoint_requests_total";
/// The process collector's gauge, which Traefik exports: a restart changes it.
const START_TIME: &str = "process_start_time_seconds";

/// Why a scrape failed. All are worth retrying at the next step except `Parse`, which means
/// the URL is not a Prometheus endpoint (wrong port or path).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("Traefik's metrics at {url} did not answer ({cause}); is --traefik-metrics Traefik's Prometheus endpoint?")]
    Unreachable { url: String, cause: String },
    #[error(
        "Traefik's metrics at {url} answered HTTP {status}: {body}; is --traefik-metrics Traefik's Prometheus endpoint (metrics.prometheus.entryPoint, path /metrics)?"
    )]
    Status { url: String, status: u16, body: String },
    #[error("{url} is not Prometheus text ({source}); is --traefik-metrics Traefik's Prometheus endpoint?")]
    Parse { url: String, source: ParseError },
}

/// One histogram bucket: observations at or below `le` seconds (cumulative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub le: f64,
    pub count: u64,
}

/// One Traefik service's counters, summed over status codes, methods and protocols.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceCounters {
    /// Requests answered (`traefik_service_requests_total`).
    pub requests: u64,
    /// Of those, answered with a 5xx status.
    pub errors: u64,
    /// `traefik_service_request_duration_seconds_bucket`, ascending by `le`, `+Inf` last.
    pub buckets: Vec<Bucket>,
}

impl ServiceCounters {
    /// Adds another Traefik's counters of the same service (several hosts, one release: the
    /// candidate's traffic is what every host's Traefik sent it). Buckets are matched by `le`.
    pub fn add(&mut self, other: &ServiceCounters) {
        self.requests += other.requests;
        self.errors += other.errors;
        for b in &other.buckets {
            match self.buckets.iter_mut().find(|mine| mine.le == b.le) {
                Some(mine) => mine.count += b.count,
                None => self.buckets.push(*b),
            }
        }
        self.buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    }

    /// What happened between `before` and `self`. A counter that went down means Traefik
    /// restarted in between (its counters start again from 0), so the window is `self` alone:
    /// what was counted since the restart.
    pub fn since(&self, before: &ServiceCounters) -> ServiceCounters {
        let before_at = |le: f64| before.buckets.iter().find(|b| b.le == le).map(|b| b.count);
        let reset = self.requests < before.requests
            || self.errors < before.errors
            || (!before.buckets.is_empty()
                && (self.buckets.len() != before.buckets.len()
                    || self.buckets.iter().any(|b| before_at(b.le).is_none_or(|c| b.count < c))));
        if reset {
            return self.clone();
        }
        ServiceCounters {
            requests: self.requests - before.requests,
            errors: self.errors - before.errors,
            buckets: self
                .buckets
                .iter()
                .map(|b| Bucket {
                    le: b.le,
                    count: b.count - before_at(b.le).unwrap_or(0),
                })
                .collect(),
        }
    }

    /// The `q` quantile of the durations in seconds, None without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        histogram_quantile(q, &self.buckets)
    }
}

/// What one scrape of Traefik's metrics says about its services.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    services: BTreeMap<String, ServiceCounters>,
    entrypoint_requests: u64,
    started: Option<f64>,
}

/// One Traefik's counters of one service at one instant, and when that Traefik started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `process_start_time_seconds` (None if not exported): a different value is a restart
    /// even when the new counters already passed the old ones.
    pub started: Option<f64>,
    pub counters: ServiceCounters,
}

impl Reading {
    /// What this Traefik counted since `before` (Prometheus's `increase()` between two
    /// samples): the difference, or, if it restarted in between (another start time, or a
    /// counter that went down), everything it counted since the restart.
    pub fn since(&self, before: &Reading) -> ServiceCounters {
        match (self.started, before.started) {
            (Some(now), Some(then)) if now != then => self.counters.clone(),
            _ => self.counters.since(&before.counters),
        }
    }
}

/// One sample of a service: each Traefik's reading, by its metrics URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub readings: BTreeMap<String, Reading>,
}

impl Sample {
    /// Every Traefik's counters added up (what they say at this instant, not over a window).
    pub fn total(&self) -> ServiceCounters {
        let mut sum = ServiceCounters::default();
        for r in self.readings.values() {
            sum.add(&r.counters);
        }
        sum
    }
}

/// What a rollout step's window counted so far, Traefik by Traefik.
///
/// Each new sample adds, for every Traefik, what that Traefik counted since its previous
/// sample ([`Reading::since`]), and the sum is judged ([`judge_window`]). This is what makes a
/// restart of one Traefik mid-step harmless both ways:
///
/// - A failing candidate still aborts: the errors that Traefik counted before it restarted
///   were added by the samples before the restart (one a second), and its restarted counters
///   add what it counts afterwards. Comparing the window's first sample with its last instead
///   would lose them (the counter starts again from 0), and with several Traefiks their sum
///   might not even go down, so the restart would go unseen and the gains of the others be
///   offset by the loss.
/// - A healthy candidate is not aborted: every Traefik's gain is its own difference, so no
///   Traefik's history before the window (an earlier failed rollout of the same slot) is ever
///   counted, which is what "the sum went down, judge the sum since the restart" would do.
///
/// A restart loses only what the restarted Traefik counted between its last sample and the
/// restart. Not judging a sample with a restart in it was the other choice; it loses the whole
/// window's errors on that Traefik, so a failing candidate could pass. A sample in which a
/// Traefik could not be read is not judged at all (the caller's rule): the next one covers
/// the gap, since it is compared with the last reading that Traefik gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    last: BTreeMap<String, Reading>,
    counted: ServiceCounters,
}

impl Window {
    /// A window starting at `baseline`: nothing counted yet.
    pub fn new(baseline: Sample) -> Window {
        Window {
            last: baseline.readings,
            counted: ServiceCounters::default(),
        }
    }

    /// Adds what each Traefik counted since its previous reading. A Traefik the window had no
    /// reading of (the list of URLs changed) starts its part of the window at this sample.
    pub fn advance(&mut self, sample: Sample) {
        for (url, reading) in sample.readings {
            if let Some(before) = self.last.get(&url) {
                self.counted.add(&reading.since(before));
            }
            self.last.insert(url, reading);
        }
    }

    /// What the window counted, every Traefik's gains added up.
    pub fn counted(&self) -> &ServiceCounters {
        &self.counted
    }
}

/// A bucket bound as a map key (f64 is not `Ord`; bounds are never NaN).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Le(f64);
impl Eq for Le {}
impl PartialOrd for Le {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Le {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Scrape {
    /// Reads Prometheus exposition text (what Traefik's `/metrics` answers).
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut requests: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut buckets: BTreeMap<String, BTreeMap<Le, u64>> = BTreeMap::new();
        let mut entrypoint_requests = 0;
        let mut started = None;
        // Counters are integers that Prometheus carries as floats.
        let count = |v: f64| if v.is_finite() && v > 0.0 { v.round() as u64 } else { 0 };
        for sample in exposition::parse(text)? {
            match sample.name.as_str() {
                REQUESTS => {
                    let Some(service) = sample.label("service") else {
                        continue;
                    };
                    let entry = requests.entry(service.to_string()).or_default();
                    entry.0 += count(sample.value);
                    if sample.label("code").is_some_and(|c| c.starts_with('5')) {
                        entry.1 += count(sample.value);
                    }
                }
                DURATION_BUCKET => {
                    let (Some(service), Some(le)) = (sample.label("service"), sample.label("le").and_then(parse_float))
                    else {
                        continue;
                    };
                    if le.is_nan() {
                        continue;
                    }
                    *buckets
                        .entry(service.to_string())
                        .or_default()
                        .entry(Le(le))
                        .or_default() += count(sample.value);
                }
                ENTRYPOINT_REQUESTS => entrypoint_requests += count(sample.value),
                START_TIME if sample.value.is_finite() => started = Some(sample.value),
                _ => {}
            }
        }
        let mut services: BTreeMap<String, ServiceCounters> = requests
            .into_iter()
            .map(|(name, (requests, errors))| {
                let counters = ServiceCounters {
                    requests,
                    errors,
                    buckets: Vec::new(),
                };
                (name, counters)
            })
            .collect();
        for (name, by_le) in buckets {
            services.entry(name).or_default().buckets = by_le
                .into_iter()
                .map(|(le, count)| Bucket { le: le.0, count })
                .collect();
        }
        Ok(Scrape {
            services,
            entrypoint_requests,
            started,
        })
    }

    /// The counters of service `name` as the `service` label spells it (`web.canary.green@file`);
    /// all zero if Traefik has not counted a request for it yet.
    pub fn service(&self, name: &str) -> ServiceCounters {
        self.services.get(name).cloned().unwrap_or_default()
    }

    /// Service `name`'s counters with this Traefik's start time.
    pub fn reading(&self, name: &str) -> Reading {
        Reading {
            started: self.started,
            counters: self.service(name),
        }
    }

    /// When this Traefik started (`process_start_time_seconds`), if it says.
    pub fn started(&self) -> Option<f64> {
        self.started
    }

    /// Every service Traefik has counted requests for.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// True when Traefik counted requests on its entrypoints but no service series at all:
    /// the sign of `addServicesLabels` being off, in which case every step would look like
    /// "not enough traffic".
    pub fn lacks_service_labels(&self) -> bool {
        self.entrypoint_requests > 0 && self.services.is_empty()
    }
}

/// One service's reading from every Traefik of `urls` (a comma list, one per host); any
/// Traefik that cannot be read fails the whole sample, so a step is never judged on part of
/// its traffic.
pub async fn service_sample(urls: &str, service: &str) -> Result<Sample, MetricsError> {
    let urls: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
    let scrapes = futures::future::join_all(urls.iter().map(|u| scrape(u))).await;
    let mut readings = BTreeMap::new();
    for (url, scrape) in urls.into_iter().zip(scrapes) {
        readings.insert(url.to_string(), scrape?.reading(service));
    }
    Ok(Sample { readings })
}

/// One service's counters summed over every Traefik of `urls` (at this instant; a window is
/// judged per Traefik, see [`Window`]).
pub async fn service_counters(urls: &str, service: &str) -> Result<ServiceCounters, MetricsError> {
    Ok(service_sample(urls, service).await?.total())
}

/// GETs Traefik's Prometheus endpoint (e.g. `http://traefik:8080/metrics`), 2 s timeout.
pub async fn scrape(url: &str) -> Result<Scrape, MetricsError> {
    let response = HttpClient::new(REQUEST_TIMEOUT)
        .get(url)
        .await
        .map_err(|cause| MetricsError::Unreachable {
            url: url.to_string(),
            cause,
        })?;
    let text = response.text();
    if response.status != 200 {
        return Err(MetricsError::Status {
            url: url.to_string(),
            status: response.status,
            body: text.trim().chars().take(200).collect(),
        });
    }
    Scrape::parse(&text).map_err(|source| MetricsError::Parse {
        url: url.to_string(),
        source,
    })
}

/// Like Prometheus's `histogram_quantile`: find the bucket holding the `q`-th observation and
/// interpolate linearly inside it (from 0 for the first bucket). In the `+Inf` bucket the
/// answer is the highest finite bound, as Prometheus does: nothing better is known.
pub fn histogram_quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    let total = buckets.last()?.count;
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Cumulative counts never go down; a scrape taken mid-update might, so even it out.
    let mut counts = Vec::with_capacity(buckets.len());
    let mut running = 0;
    for b in buckets {
        running = running.max(b.count);
        counts.push(running as f64);
    }
    let rank = q * total as f64;
    let i = counts.iter().position(|&c| c >= rank)?;
    let upper = buckets[i].le;
    if upper.is_infinite() {
        return Some(
            buckets[..i]
                .iter()
                .rev()
                .map(|b| b.le)
                .find(|le| le.is_finite())
                .unwrap_or(0.0),
        );
    }
    let (lower, below) = if i == 0 {
        (0.0_f64.min(upper), 0.0)
    } else {
        (buckets[i - 1].le, counts[i - 1])
    };
    let inside = counts[i] - below;
    if inside <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}

/// What a step must stay within.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// 5xx / all above this aborts (`--max-error-ratio`, default 0.01).
    pub max_error_ratio: f64,
    /// p99 latency above this aborts (`--max-p99`; default: not judged).
    pub max_p99: Option<Duration>,
    /// Fewer requests than this in the window: no judgement (`--min-requests`, default 20).
    pub min_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_error_ratio: 0.01,
            max_p99: None,
            min_requests: 20,
        }
    }
}

/// Which limit a step broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    ErrorRatio,
    P99,
}

impl Metric {
    /// The flag that sets the limit, as the operator typed it.
    pub fn flag(self) -> &'static str {
        match self {
            Metric::ErrorRatio => "--max-error-ratio",
            Metric::P99 => "--max-p99",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::ErrorRatio => "error ratio",
            Metric::P99 => "p99 latency",
        })
    }
}

/// The judgement of one step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass {
        requests: u64,
        error_ratio: f64,
        /// None when Traefik recorded no durations (histogram absent).
        p99: Option<Duration>,
    },
    /// `value` and `threshold` are a ratio for [`Metric::ErrorRatio`], seconds for
    /// [`Metric::P99`].
    Breach {
        metric: Metric,
        value: f64,
        threshold: f64,
        requests: u64,
    },
    NotEnoughTraffic {
        requests: u64,
        needed: u64,
    },
}

/// Judges the window between two scrapes of one Traefik's counters of the candidate's
/// service ([`judge_window`] of [`ServiceCounters::since`]). Pure.
pub fn judge(before: &ServiceCounters, after: &ServiceCounters, limits: &Limits) -> Verdict {
    judge_window(&after.since(before), limits)
}

/// Judges what a window counted (see [`Window`]). Pure.
///
/// Checked in this order: enough requests (else [`Verdict::NotEnoughTraffic`]), the error
/// ratio, then p99 if a limit is set. A ratio or p99 equal to its limit passes.
pub fn judge_window(window: &ServiceCounters, limits: &Limits) -> Verdict {
    let requests = window.requests;
    if requests < limits.min_requests.max(1) {
        return Verdict::NotEnoughTraffic {
            requests,
            needed: limits.min_requests.max(1),
        };
    }
    let error_ratio = window.errors as f64 / requests as f64;
    if error_ratio > limits.max_error_ratio {
        return Verdict::Breach {
            metric: Metric::ErrorRatio,
            value: error_ratio,
            threshold: limits.max_error_ratio,
            requests,
        };
    }
    let p99 = window.quantile(0.99);
    if let (Some(p99), Some(max)) = (p99, limits.max_p99)
        && p99 > max.as_secs_f64()
    {
        return Verdict::Breach {
            metric: Metric::P99,
            value: p99,
            threshold: max.as_secs_f64(),
            requests,
        };
    }
    Verdict::Pass {
        requests,
        error_ratio,
        p99: p99.map(Duration::from_secs_f64),
    }
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Verdict::Pass {
                requests,
                error_ratio,
                p99,
            } => {
                let errors = (error_ratio * requests as f64).round();
                write!(
                    f,
                    "{requests} requests, error ratio {} ({errors} answered 5xx)",
                    ratio(error_ratio)
                )?;
                match p99 {
                    Some(p99) => write!(f, ", p99 latency {}", seconds(p99.as_secs_f64())),
                    None => Ok(()),
                }
            }
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                value,
                threshold,
                requests,
            } => write!(
                f,
                "error ratio {} ({} of {requests} requests answered 5xx) is above --max-error-ratio {}",
                ratio(value),
                (value * requests as f64).round(),
                ratio(threshold)
            ),
            Verdict::Breach {
                metric: Metric::P99,
                value,
                threshold,
                requests,
            } => write!(
                f,
                "p99 latency {} (over {requests} requests) is above --max-p99 {}",
                seconds(value),
                seconds(threshold)
            ),
            Verdict::NotEnoughTraffic { requests, needed } => write!(
                f,
                "not enough traffic to judge: {requests} request{} reached the candidate, --min-requests is {needed}",
                if requests == 1 { "" } else { "s" }
            ),
        }
    }
}

/// A ratio with three significant digits (at least three decimals), trailing zeros dropped:
/// `0.052`, `0.333`, `0.0004`.
fn ratio(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3.0_f64).max(2.0 - x.abs().log10().floor()) as usize;
    let s = format!("{x:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Seconds as an operator reads a latency: `412ms`, `2.5s`.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        let ms = s * 1000.0;
        if ms >= 10.0 {
            format!("{ms:.0}ms")
        } else {
            format!("{}ms", ratio(ms))
        }
    } else {
        format!("{}s", ratio(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names;

    const FIXTURE: &str = include_str!("../../fixtures/metrics/traefik-3.7.txt");
    const BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, f64::INFINITY];

    #[test]
    fn several_traefiks_counters_add_up_bucket_by_bucket() {
        let mut a = counters(100, 2, [10, 20, 30, 40, 0, 0, 0, 0, 0, 0, 0]);
        let b = counters(50, 5, [0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 10]);
        a.add(&b);
        assert_eq!(a, counters(150, 7, [10, 20, 30, 40, 40, 0, 0, 0, 0, 0, 10]));
        // A Traefik that has not served the service yet adds nothing; one with buckets the
        // first lacks contributes them in order.
        let mut empty = ServiceCounters::default();
        empty.add(&b);
        assert_eq!(empty, b);
        let limits = Limits {
            max_error_ratio: 0.01,
            max_p99: None,
            min_requests: 20,
        };
        let before = counters(0, 0, [0; 11]);
        assert!(
            matches!(judge(&before, &a, &limits), Verdict::Breach { .. }),
            "7 of 150 is 4.7 % 5xx"
        );
    }

    /// Traefik `a`'s and `b`'s readings, as [`service_sample`] gives them.
    fn two(a: Reading, b: Reading) -> Sample {
        Sample {
            readings: BTreeMap::from([("http://a:8082/metrics".into(), a), ("http://b:8082/metrics".into(), b)]),
        }
    }

    /// A reading of a Traefik started at `started` (seconds since the epoch).
    fn at(started: f64, counters: ServiceCounters) -> Reading {
        Reading {
            started: Some(started),
            counters,
        }
    }

    /// The window from the first sample through the others.
    fn window(samples: impl IntoIterator<Item = Sample>) -> Window {
        let mut samples = samples.into_iter();
        let mut w = Window::new(samples.next().unwrap());
        for s in samples {
            w.advance(s);
        }
        w
    }

    /// What judging the sums of the first and last samples gave (the rule before windows were
    /// per Traefik): each test shows it getting the case wrong.
    fn judged_on_sums(first: &Sample, last: &Sample, limits: &Limits) -> Verdict {
        judge(&first.total(), &last.total(), limits)
    }

    #[test]
    fn a_failing_candidate_whose_errors_were_on_a_traefik_that_then_restarted_still_aborts() {
        // Traefik a sees the candidate fail 15 of 15 requests, too few to judge yet; then it
        // restarts (a new start time, counters from 0) and keeps seeing it fail: 3 of 6.
        let samples = [
            two(
                at(100.0, counters(10_000, 0, fast(10_000))),
                at(100.0, counters(5_000, 0, fast(5_000))),
            ),
            two(
                at(100.0, counters(10_015, 15, fast(10_015))),
                at(100.0, counters(5_004, 0, fast(5_004))),
            ),
            two(
                at(200.0, counters(6, 3, fast(6))),
                at(100.0, counters(5_008, 0, fast(5_008))),
            ),
        ];
        let limits = Limits::default();
        let w = window(samples[..2].iter().cloned());
        assert_eq!(
            judge_window(w.counted(), &limits),
            Verdict::NotEnoughTraffic {
                requests: 19,
                needed: 20
            }
        );
        let w = window(samples.iter().cloned());
        // 15 + 6 on a, 8 on b; 15 + 3 errors, all on a.
        assert_eq!((w.counted().requests, w.counted().errors), (29, 18));
        assert_eq!(
            judge_window(w.counted(), &limits),
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                value: 18.0 / 29.0,
                threshold: 0.01,
                requests: 29
            }
        );
        // On sums, the restart makes the total go down (15,000 → 5,014), so the window became
        // the total since "the restart": b's whole history, where 3 errors of 5,014 pass.
        assert!(judged_on_sums(&samples[0], &samples[2], &limits).passed());
    }

    #[test]
    fn a_healthy_candidate_across_one_traefiks_restart_is_not_aborted() {
        // Both Traefiks counted an earlier, failed rollout of the same slot before this step
        // (300 and 100 errors). In the step the candidate answers everything; a restarts.
        let samples = [
            two(
                at(100.0, counters(1_000, 300, fast(1_000))),
                at(100.0, counters(200, 100, fast(200))),
            ),
            two(
                at(100.0, counters(1_100, 300, fast(1_100))),
                at(100.0, counters(250, 100, fast(250))),
            ),
            two(
                at(200.0, counters(40, 0, fast(40))),
                at(100.0, counters(300, 100, fast(300))),
            ),
        ];
        let limits = Limits::default();
        let w = window(samples.iter().cloned());
        assert_eq!((w.counted().requests, w.counted().errors), (100 + 40 + 100, 0));
        assert!(judge_window(w.counted(), &limits).passed());
        // On sums: 1,200 → 340 went down, so the window was all 340 with b's 100 old errors.
        assert_eq!(
            judged_on_sums(&samples[0], &samples[2], &limits),
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                value: 100.0 / 340.0,
                threshold: 0.01,
                requests: 340
            }
        );
        // Without start times a restart is still seen when a counter goes down.
        let blind = |s: &Sample| Sample {
            readings: s
                .readings
                .iter()
                .map(|(u, r)| {
                    let r = Reading {
                        started: None,
                        ..r.clone()
                    };
                    (u.clone(), r)
                })
                .collect(),
        };
        let w = window(samples.iter().map(blind));
        assert_eq!((w.counted().requests, w.counted().errors), (240, 0));
    }

    #[test]
    fn a_new_start_time_is_a_restart_even_when_the_counters_grew_past_the_old_ones() {
        let before = at(100.0, counters(12, 7, fast(12)));
        let after = at(200.0, counters(20, 10, fast(20)));
        assert_eq!(after.since(&before), after.counters, "all 20 since the restart");
        let same = at(100.0, counters(20, 10, fast(20)));
        assert_eq!(same.since(&before), counters(8, 3, fast(8)));
    }

    #[test]
    fn p99_is_computed_on_every_traefiks_own_buckets_across_a_restart() {
        // a restarts and its next 10 requests are slow, in (0.25, 0.5]; b stays fast.
        let slow_10 = [0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0];
        let samples = [
            two(
                at(1.0, counters(1_000, 0, fast(1_000))),
                at(1.0, counters(1_000, 0, fast(1_000))),
            ),
            two(
                at(1.0, counters(1_100, 0, fast(1_100))),
                at(1.0, counters(1_050, 0, fast(1_050))),
            ),
            two(
                at(2.0, counters(10, 0, slow_10)),
                at(1.0, counters(1_100, 0, fast(1_100))),
            ),
        ];
        let limits = Limits {
            max_p99: Some(Duration::from_millis(250)),
            ..Limits::default()
        };
        let w = window(samples.iter().cloned());
        // 200 fast + 10 slow: the 207.9th is the 7.9th slow one, 0.25 + 0.25 × 7.9/10.
        assert_eq!(w.counted(), &counters(210, 0, [200, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0]));
        let Verdict::Breach {
            metric: Metric::P99,
            value,
            requests: 210,
            ..
        } = judge_window(w.counted(), &limits)
        else {
            panic!("{:?}", judge_window(w.counted(), &limits));
        };
        assert!((value - 0.4475).abs() < 1e-9, "{value}");
        // On sums the first bucket went down (2,000 → 1,110), and the window became all of
        // b's history, where the 10 slow requests are below the 1st percentile.
        assert!(judged_on_sums(&samples[0], &samples[2], &limits).passed());
    }

    #[test]
    fn preview_requests_failing_do_not_fail_a_healthy_public_candidate() {
        // What Traefik counts during a canary of green: the public split's child
        // web.canary.green is healthy; the slot service web.slot.green, reached by the preview
        // cookie, header and entrypoint, answered 5xx to every one of its 200 requests.
        let line = |service: String, code: u16, n: u64| {
            format!(
                "traefik_service_requests_total{{code=\"{code}\",method=\"GET\",protocol=\"http\",service=\"{service}@file\"}} {n}\n"
            )
        };
        let text = |public: u64, preview: u64| {
            line(names::canary("web", "green"), 200, public)
                + &line(names::slot("web", "green"), 500, preview)
                + &line(names::slot("web", "blue"), 200, 9 * public)
        };
        let judged = format!("{}@file", names::canary("web", "green"));
        let sample = |text: String| Sample {
            readings: BTreeMap::from([("t".into(), Scrape::parse(&text).unwrap().reading(&judged))]),
        };
        let mut w = Window::new(sample(text(1_000, 0)));
        w.advance(sample(text(1_100, 200)));
        assert_eq!(
            judge_window(w.counted(), &Limits::default()),
            Verdict::Pass {
                requests: 100,
                error_ratio: 0.0,
                p99: None
            }
        );
        // The slot service is what a step was judged on before: 200 of 200 failed.
        let slot = format!("{}@file", names::slot("web", "green"));
        let (before, after) = (
            Scrape::parse(&text(1_000, 0)).unwrap(),
            Scrape::parse(&text(1_100, 200)).unwrap(),
        );
        assert!(!judge(&before.service(&slot), &after.service(&slot), &Limits::default()).passed());
    }

    #[test]
    fn the_start_time_is_read_and_a_traefik_new_in_a_window_starts_there() {
        let s = Scrape::parse("process_start_time_seconds 1.79631795797e+09\n").unwrap();
        assert_eq!(s.started(), Some(1_796_317_957.97));
        assert_eq!(Scrape::parse(FIXTURE).unwrap().started(), None);
        let one = |c| Sample {
            readings: BTreeMap::from([("http://a:8082/metrics".into(), at(1.0, c))]),
        };
        let mut w = Window::new(one(counters(100, 0, fast(100))));
        w.advance(two(
            at(1.0, counters(150, 0, fast(150))),
            at(1.0, counters(900, 900, fast(900))),
        ));
        assert_eq!(w.counted(), &counters(50, 0, fast(50)), "b's 900 are before its window");
        w.advance(two(
            at(1.0, counters(160, 0, fast(160))),
            at(1.0, counters(910, 910, fast(910))),
        ));
        assert_eq!(w.counted(), &counters(70, 10, fast(70)));
    }

    /// Counters built from per-bucket (not cumulative) counts over [`BOUNDS`].
    fn counters(requests: u64, errors: u64, per_bucket: [u64; 11]) -> ServiceCounters {
        let mut running = 0;
        let buckets = BOUNDS
            .iter()
            .zip(per_bucket)
            .map(|(&le, n)| {
                running += n;
                Bucket { le, count: running }
            })
            .collect();
        ServiceCounters {
            requests,
            errors,
            buckets,
        }
    }

    fn fast(n: u64) -> [u64; 11] {
        [n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    #[test]
    fn real_traefik_text_sums_codes_methods_and_protocols() {
        let scrape = Scrape::parse(FIXTURE).unwrap();
        let (blue, green) = (
            format!("{}@file", names::slot("web", "blue")),
            format!("{}@file", names::slot("web", "green")),
        );
        assert_eq!(scrape.services().collect::<Vec<_>>(), [&blue, &green]);
        let green = scrape.service(&green);
        // 200 GET 55 + 200 POST 43 + 400 POST 10 + 500 GET 8.
        assert_eq!((green.requests, green.errors), (116, 8));
        let blue = scrape.service(&blue);
        // 128 + 477 + 97 + 3, of which the three 502s are 5xx.
        assert_eq!((blue.requests, blue.errors), (705, 3));
        // Buckets summed over the four label sets, cumulative per le, +Inf last.
        let les: Vec<f64> = green.buckets.iter().map(|b| b.le).collect();
        assert_eq!(les, BOUNDS);
        assert_eq!(green.buckets[0].count, 20 + 38 + 8);
        assert_eq!(green.buckets[3].count, 55 + 41 + 10 + 8);
        assert_eq!(green.buckets.last().unwrap().count, green.requests);
        assert_eq!(
            scrape.service(&names::slot("web", "green")),
            ServiceCounters::default(),
            "no @file: no series"
        );
        assert!(!scrape.lacks_service_labels());
    }

    #[test]
    fn service_labels_missing_is_told_apart_from_no_traffic() {
        let no_labels =
            "traefik_entrypoint_requests_total{code=\"200\",entrypoint=\"web\",method=\"GET\",protocol=\"http\"} 42\n";
        assert!(Scrape::parse(no_labels).unwrap().lacks_service_labels());
        assert!(
            !Scrape::parse("traefik_config_reloads_total 1\n")
                .unwrap()
                .lacks_service_labels()
        );
    }

    #[test]
    fn p99_interpolates_inside_its_bucket_like_histogram_quantile() {
        // 100 observations: 90 under 5 ms, 10 between 50 and 100 ms. The 99th is the 9th of
        // the 10 in (0.05, 0.1]: 0.05 + 0.05 × 9/10.
        let c = counters(100, 0, [90, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0]);
        assert!((c.quantile(0.99).unwrap() - 0.095).abs() < 1e-9);
        // Median in the first bucket: interpolated from 0.
        assert!((c.quantile(0.5).unwrap() - 0.005 * 50.0 / 90.0).abs() < 1e-9);
        // Landing in +Inf: the highest finite bound.
        let slow = counters(100, 0, [50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
        assert_eq!(slow.quantile(0.99), Some(5.0));
        // No observations, or no histogram: no quantile.
        assert_eq!(counters(0, 0, [0; 11]).quantile(0.99), None);
        assert_eq!(ServiceCounters::default().quantile(0.99), None);
        // Exactly on a bucket's count: that bucket's upper bound.
        let c = counters(100, 0, [99, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!((c.quantile(0.99).unwrap() - 0.005).abs() < 1e-12);
    }

    #[test]
    fn judge_uses_the_window_between_scrapes() {
        let limits = Limits::default();
        // Before: a bad history that must not count against this step.
        let before = counters(1000, 500, fast(1000));
        let after = counters(1500, 501, fast(1500));
        assert_eq!(
            judge(&before, &after, &limits),
            Verdict::Pass {
                requests: 500,
                error_ratio: 0.002,
                p99: Some(Duration::from_secs_f64(0.005 * 495.0 / 500.0)),
            }
        );
        let after = counters(1500, 526, fast(1500));
        let v = judge(&before, &after, &limits);
        assert_eq!(
            v,
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                value: 0.052,
                threshold: 0.01,
                requests: 500
            }
        );
        assert_eq!(
            v.to_string(),
            "error ratio 0.052 (26 of 500 requests answered 5xx) is above --max-error-ratio 0.01"
        );
    }

    #[test]
    fn a_ratio_equal_to_the_limit_passes() {
        let before = ServiceCounters::default();
        assert!(judge(&before, &counters(100, 1, fast(100)), &Limits::default()).passed());
        assert!(!judge(&before, &counters(100, 2, fast(100)), &Limits::default()).passed());
    }

    #[test]
    fn too_few_requests_are_not_judged_even_if_all_failed() {
        let before = counters(100, 0, fast(100));
        let after = counters(119, 19, fast(119));
        let v = judge(&before, &after, &Limits::default());
        assert_eq!(
            v,
            Verdict::NotEnoughTraffic {
                requests: 19,
                needed: 20
            }
        );
        assert_eq!(
            v.to_string(),
            "not enough traffic to judge: 19 requests reached the candidate, --min-requests is 20"
        );
        let none = judge(
            &after,
            &after,
            &Limits {
                min_requests: 0,
                ..Limits::default()
            },
        );
        assert_eq!(
            none,
            Verdict::NotEnoughTraffic { requests: 0, needed: 1 },
            "0 requests never pass"
        );
    }

    #[test]
    fn a_counter_going_down_is_a_restart_and_the_window_is_after_alone() {
        let before = counters(10_000, 0, fast(10_000));
        let after = counters(300, 30, fast(300));
        assert_eq!(
            judge(&before, &after, &Limits::default()),
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                value: 0.1,
                threshold: 0.01,
                requests: 300
            }
        );
        // Errors alone going down is a reset too.
        let before = counters(100, 50, fast(100));
        let after = counters(200, 0, fast(200));
        assert_eq!(after.since(&before), after);
        // So is a histogram whose buckets changed (Traefik restarted with other buckets).
        let mut after = counters(200, 50, fast(200));
        after.buckets.remove(3);
        assert_eq!(after.since(&before), after);
        // A histogram that appeared in the window: everything in it is new.
        let before = ServiceCounters {
            requests: 10,
            ..Default::default()
        };
        let after = counters(30, 0, fast(30));
        assert_eq!(after.since(&before).buckets, after.buckets);
        assert_eq!(after.since(&before).requests, 20);
    }

    #[test]
    fn p99_above_the_limit_is_a_breach_and_only_when_a_limit_is_set() {
        let before = counters(0, 0, [0; 11]);
        // 200 requests, 10 of them in (0.25, 0.5]: p99 = 0.25 + 0.25 × 8/10 = 0.45 s.
        let after = counters(200, 0, [190, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0]);
        let limits = Limits {
            max_p99: Some(Duration::from_millis(250)),
            ..Limits::default()
        };
        let v = judge(&before, &after, &limits);
        let Verdict::Breach {
            metric: Metric::P99,
            value,
            threshold,
            requests: 200,
        } = v
        else {
            panic!("{v:?}");
        };
        assert!((value - 0.45).abs() < 1e-9);
        assert_eq!(threshold, 0.25);
        assert_eq!(
            v.to_string(),
            "p99 latency 450ms (over 200 requests) is above --max-p99 250ms"
        );
        let pass = judge(&before, &after, &Limits::default());
        assert!(pass.passed(), "{pass:?}");
        assert_eq!(
            pass.to_string(),
            "200 requests, error ratio 0 (0 answered 5xx), p99 latency 450ms"
        );
        // Errors are judged first.
        let bad = counters(200, 100, [190, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0]);
        assert!(matches!(
            judge(&before, &bad, &limits),
            Verdict::Breach {
                metric: Metric::ErrorRatio,
                ..
            }
        ));
        // In +Inf: reported as the highest bound, 5 s, which is above 250 ms.
        let very_slow = counters(200, 0, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200]);
        assert_eq!(
            judge(&before, &very_slow, &limits).to_string(),
            "p99 latency 5s (over 200 requests) is above --max-p99 250ms"
        );
    }

    #[test]
    fn numbers_read_the_way_an_operator_writes_them() {
        assert_eq!(ratio(0.052), "0.052");
        assert_eq!(ratio(0.01), "0.01");
        assert_eq!(ratio(1.0 / 3.0), "0.333");
        assert_eq!(ratio(0.0004), "0.0004");
        assert_eq!(ratio(0.000123), "0.000123");
        assert_eq!(ratio(1.0), "1");
        assert_eq!(seconds(0.095), "95ms");
        assert_eq!(seconds(0.0025), "2.5ms");
        assert_eq!(seconds(2.5), "2.5s");
    }
}
