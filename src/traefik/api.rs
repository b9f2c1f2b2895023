//! Verified apply: wait until Traefik's API shows the configuration just written.
//!
//! A rename in the dynamic directory is picked up by Traefik's file provider on its own
//! schedule (its throttle, 2 s by default, measured ~50 ms for a lone rename), and not at all
//! while any file in the directory is invalid. [`wait_applied`] polls Traefik's API for every
//! router and service pointsman wrote until each one reads back as written, so `--wait` returns
//! when traffic really follows, or says why it does not.
//!
//! What Traefik 3.7 answers (`GET /api/http/routers/NAME@file`, `…/services/NAME@file`),
//! and what is compared:
//!
//! - Router: `{"entryPoints":["web"],"service":"web","rule":"Host(`a`)","priority":16,
//!   "status":"enabled","error":["…"],…}`. `service` is written as configured (`web`, without
//!   `@file`, for a service of the same provider). A router Traefik could not build has
//!   `"status":"disabled"` and its reasons in `error` (a missing service, an unknown
//!   entrypoint, a rule it cannot parse).
//! - Service: the configuration as written, with Traefik's defaults filled in, plus `status`,
//!   `error` and, once a router uses it, `serverStatus` (`{"http://…":"UP"}`).
//!   `loadBalancer.servers[].url` (the `servers` key is absent for an empty list);
//!   `weighted.services[]{name,weight}` and `weighted.sticky.cookie{name,httpOnly,sameSite}`
//!   (plus a default `path`); `mirroring{service,mirrors[]{name,percent},maxBodySize}`
//!   (`percent` is omitted when 0, `maxBodySize` is -1 when unset).
//! - Not found: HTTP 404 with `{"message":"router not found: NAME@file"}`. A 404 without that
//!   JSON is not Traefik's API (the URL points at an entrypoint without the API).
//!
//! A frozen file provider is invisible in the API: the routers are simply stale, and only
//! Traefik's log says why. So when the routing stays stale, the directory is checked for
//! foreign files Traefik cannot load ([`crate::backend::foreign::Scanner`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::backend::foreign::Scanner;
use crate::core::traefik::{Dynamic, Router, Service};
use crate::traefik::http::{HttpClient, REQUEST_TIMEOUT};

/// How often the API is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long the routing may stay stale, with a broken foreign file in the directory, before
/// [`wait_applied`] reports [`ApplyError::Frozen`] without waiting out its timeout. Longer than
/// Traefik's default throttle (2 s), so a file the checker wrongly calls broken (Traefik loaded
/// it after all) still shows up as applied in time.
pub const FROZEN_AFTER: Duration = Duration::from_secs(3);
/// How often the directory is checked for broken foreign files while the routing is stale.
const SCAN_INTERVAL: Duration = Duration::from_millis(250);

/// Why the routing was not seen applied. `Unreachable` and `Stale` may pass by themselves
/// (Traefik restarting, a long throttle); `RouterError`, `ServiceError` and `Frozen` need the
/// operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "Traefik's API at {api} did not answer ({cause}); is Traefik running, and is --traefik-api its API (entrypoint with api.insecure, or a router to api@internal)? The configuration is written: Traefik loads it when it is back"
    )]
    Unreachable { api: String, cause: String },
    #[error("Traefik loaded router {router} but disabled it: {}; fix that and run the command again", .errors.join("; "))]
    RouterError { router: String, errors: Vec<String> },
    #[error("Traefik loaded service {service} but disabled it: {}; fix that and run the command again", .errors.join("; "))]
    ServiceError { service: String, errors: Vec<String> },
    #[error(
        "Traefik ignores every change in the directory, this one included: {} is not a file Traefik can load ({reason}); fix or remove that file and Traefik loads the new routing by itself",
        .file.display()
    )]
    Frozen { file: PathBuf, reason: String },
    #[error(
        "Traefik still serves other routing after {}: {what}; check Traefik's log, and that its provider reads what pointsman writes (the file provider this directory; the Redis provider the store's root key)",
        fmt_wait(*.waited)
    )]
    Stale { what: String, waited: Duration },
}

fn fmt_wait(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Polls Traefik's API (`api`, e.g. `http://127.0.0.1:8080`) every [`POLL_INTERVAL`] until
/// every router and service of every unit in `expected` reads back as written and enabled,
/// and every name in `removed` is gone (HTTP 404 as a router and as a service, except as the
/// kind `expected` still defines under that name). Returns how long that took.
///
/// Fails at once when Traefik shows a router or service as written but disabled (its errors
/// quoted); with `dir`, fails after [`FROZEN_AFTER`] of stale routing when a foreign file
/// there is broken; otherwise fails at `timeout`, naming what was last seen.
pub async fn wait_applied(
    api: &str,
    expected: &BTreeMap<String, Dynamic>,
    removed: &[String],
    timeout: Duration,
    dir: Option<&Path>,
) -> Result<Duration, ApplyError> {
    wait_applied_via(api, "file", expected, removed, timeout, dir).await
}

/// [`wait_applied`] for configuration published through another of Traefik's providers
/// (`redis`): Traefik names it `NAME@PROVIDER`.
pub async fn wait_applied_via(
    api: &str,
    provider: &str,
    expected: &BTreeMap<String, Dynamic>,
    removed: &[String],
    timeout: Duration,
    dir: Option<&Path>,
) -> Result<Duration, ApplyError> {
    let api = api.trim_end_matches('/');
    let checks = checks(expected, removed);
    let client = HttpClient::new(REQUEST_TIMEOUT.min(timeout.max(POLL_INTERVAL)));
    let start = Instant::now();
    let deadline = start + timeout;
    let mut scanner = Scanner::default();
    let mut last_scan: Option<Instant> = None;
    let mut broken = Vec::new();
    let mut last: Option<Vec<Seen>> = None;
    loop {
        let Ok(seen) = tokio::time::timeout_at(deadline, observe(&client, api, provider, &checks)).await else {
            // The deadline cut a poll short: judge by the last complete one.
            let seen =
                last.unwrap_or_else(|| vec![Seen::Unreachable(format!("no answer within {}", fmt_wait(timeout)))]);
            return Err(timed_out(api, &seen, start.elapsed()));
        };
        let now = Instant::now();
        match verdict(&seen) {
            Progress::Applied => return Ok(now - start),
            Progress::Failed(e) => return Err(e),
            Progress::Pending => {}
        }
        if let Some(dir) = dir
            && last_scan.is_none_or(|t| now - t >= SCAN_INTERVAL)
        {
            last_scan = Some(now);
            broken = scanner.scan(dir);
        }
        let stale = !seen.iter().any(|s| matches!(s, Seen::Unreachable(_)));
        if let Some(file) = broken.first()
            && stale
            && (now - start >= FROZEN_AFTER || now >= deadline)
        {
            return Err(ApplyError::Frozen {
                file: file.path.clone(),
                reason: file.reason.clone(),
            });
        }
        if now >= deadline {
            return Err(timed_out(api, &seen, now - start));
        }
        last = Some(seen);
        tokio::time::sleep_until((now + POLL_INTERVAL).min(deadline)).await;
    }
}

// ---- what is checked -------------------------------------------------------------------------

enum Check<'a> {
    Router {
        unit: &'a str,
        name: &'a str,
        expected: &'a Router,
    },
    Service {
        unit: &'a str,
        name: &'a str,
        expected: &'a Service,
    },
    Gone {
        kind: Kind,
        name: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Router,
    Service,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Router => "routers",
            Kind::Service => "services",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Router => "router",
            Kind::Service => "service",
        })
    }
}

fn checks<'a>(expected: &'a BTreeMap<String, Dynamic>, removed: &'a [String]) -> Vec<Check<'a>> {
    let mut checks = Vec::new();
    for (unit, dynamic) in expected {
        for (name, router) in &dynamic.http.routers {
            checks.push(Check::Router {
                unit,
                name,
                expected: router,
            });
        }
        for (name, service) in &dynamic.http.services {
            checks.push(Check::Service {
                unit,
                name,
                expected: service,
            });
        }
    }
    let defines = |kind: Kind, name: &str| {
        expected.values().any(|d| match kind {
            Kind::Router => d.http.routers.contains_key(name),
            Kind::Service => d.http.services.contains_key(name),
        })
    };
    for name in removed {
        for kind in [Kind::Router, Kind::Service] {
            if !defines(kind, name) {
                checks.push(Check::Gone { kind, name });
            }
        }
    }
    checks
}

// ---- what is seen ----------------------------------------------------------------------------

/// One check's outcome in one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Matches,
    /// As written, but Traefik disabled it.
    Disabled {
        kind: Kind,
        name: String,
        errors: Vec<String>,
    },
    /// Not (yet) as written; `errors`: what Traefik says about the version it has.
    Differs {
        what: String,
        errors: Vec<String>,
    },
    Unreachable(String),
}

async fn observe(client: &HttpClient, api: &str, provider: &str, checks: &[Check<'_>]) -> Vec<Seen> {
    futures::future::join_all(checks.iter().map(|check| observe_one(client, api, provider, check))).await
}

async fn observe_one(client: &HttpClient, api: &str, provider: &str, check: &Check<'_>) -> Seen {
    let (kind, name) = match check {
        Check::Router { name, .. } => (Kind::Router, *name),
        Check::Service { name, .. } => (Kind::Service, *name),
        Check::Gone { kind, name } => (*kind, *name),
    };
    let url = format!("{api}/api/http/{}/{name}@{provider}", kind.path());
    let body = match client.get(&url).await {
        Err(cause) => return Seen::Unreachable(cause),
        Ok(r) if r.status == 404 => {
            if serde_json::from_slice::<NotFound>(&r.body).is_err() {
                return Seen::Unreachable(format!(
                    "{url} answered 404 {:?}, not Traefik's API",
                    r.text().trim().chars().take(80).collect::<String>()
                ));
            }
            return match check {
                Check::Gone { .. } => Seen::Matches,
                Check::Router { unit, .. } | Check::Service { unit, .. } => Seen::Differs {
                    what: format!("{unit}: {kind} {name} is not loaded"),
                    errors: vec![],
                },
            };
        }
        Ok(r) if r.status != 200 => {
            return Seen::Unreachable(format!(
                "{url} answered HTTP {}: {}",
                r.status,
                r.text().trim().chars().take(200).collect::<String>()
            ));
        }
        Ok(r) => r.body,
    };
    let not_api = |e: serde_json::Error| Seen::Unreachable(format!("{url} did not answer Traefik's JSON ({e})"));
    match check {
        Check::Gone { .. } => Seen::Differs {
            what: format!("{kind} {name} is still loaded"),
            errors: vec![],
        },
        Check::Router { unit, expected, .. } => match serde_json::from_slice::<ApiRouter>(&body) {
            Err(e) => not_api(e),
            Ok(seen) => judge_seen(
                unit,
                Kind::Router,
                name,
                router_diff(expected, &seen),
                seen.status,
                seen.error,
            ),
        },
        Check::Service { unit, expected, .. } => match serde_json::from_slice::<ApiService>(&body) {
            Err(e) => not_api(e),
            Ok(seen) => {
                let diff = service_diff(expected, &seen);
                judge_seen(unit, Kind::Service, name, diff, seen.status, seen.error)
            }
        },
    }
}

fn judge_seen(unit: &str, kind: Kind, name: &str, diff: Vec<String>, status: String, errors: Vec<String>) -> Seen {
    if !diff.is_empty() {
        return Seen::Differs {
            what: format!("{unit}: {kind} {name}: {}", diff.join(", ")),
            errors,
        };
    }
    // "warning" still serves (Traefik uses it for partial problems); "disabled" does not.
    if status == "disabled" {
        let errors = if errors.is_empty() {
            vec!["status disabled".to_string()]
        } else {
            errors
        };
        return Seen::Disabled {
            kind,
            name: name.to_string(),
            errors,
        };
    }
    Seen::Matches
}

enum Progress {
    Applied,
    Pending,
    Failed(ApplyError),
}

fn verdict(seen: &[Seen]) -> Progress {
    for s in seen {
        if let Seen::Disabled { kind, name, errors } = s {
            return Progress::Failed(disabled(*kind, name, errors));
        }
    }
    if seen.iter().all(|s| *s == Seen::Matches) {
        Progress::Applied
    } else {
        Progress::Pending
    }
}

fn disabled(kind: Kind, name: &str, errors: &[String]) -> ApplyError {
    match kind {
        Kind::Router => ApplyError::RouterError {
            router: name.to_string(),
            errors: errors.to_vec(),
        },
        Kind::Service => ApplyError::ServiceError {
            service: name.to_string(),
            errors: errors.to_vec(),
        },
    }
}

/// The error for a wait that ran out, from the last poll.
fn timed_out(api: &str, seen: &[Seen], waited: Duration) -> ApplyError {
    if let Some(cause) = seen.iter().find_map(|s| match s {
        Seen::Unreachable(cause) => Some(cause),
        _ => None,
    }) {
        return ApplyError::Unreachable {
            api: api.to_string(),
            cause: cause.clone(),
        };
    }
    let differs: Vec<&str> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Differs { what, .. } => Some(what.as_str()),
            _ => None,
        })
        .collect();
    let mut what = differs.iter().take(3).copied().collect::<Vec<_>>().join("; ");
    if differs.len() > 3 {
        what.push_str(&format!("; and {} more", differs.len() - 3));
    }
    // What Traefik says about the stale version, if anything: it may be why nothing changes.
    if let Some(errors) = seen.iter().find_map(|s| match s {
        Seen::Differs { errors, .. } if !errors.is_empty() => Some(errors),
        _ => None,
    }) {
        what.push_str(&format!(" (Traefik reports: {})", errors.join("; ")));
    }
    ApplyError::Stale { what, waited }
}

// ---- Traefik's API, as much of it as is compared ---------------------------------------------

#[derive(Debug, Deserialize)]
struct NotFound {
    #[allow(dead_code)]
    message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiRouter {
    entry_points: Vec<String>,
    service: String,
    rule: String,
    priority: Option<i64>,
    status: String,
    error: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiService {
    load_balancer: Option<ApiLoadBalancer>,
    weighted: Option<ApiWeighted>,
    mirroring: Option<ApiMirroring>,
    status: String,
    error: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiLoadBalancer {
    servers: Vec<ApiServer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiServer {
    url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiWeighted {
    services: Vec<ApiChild>,
    sticky: Option<ApiSticky>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiChild {
    name: String,
    /// Weighted children: absent means Traefik's default, 1. Mirrors: absent means 0.
    weight: Option<u64>,
    percent: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiSticky {
    cookie: Option<ApiCookie>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiCookie {
    name: String,
    domain: Option<String>,
    http_only: bool,
    same_site: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ApiMirroring {
    service: String,
    mirrors: Vec<ApiChild>,
    max_body_size: Option<i64>,
}

/// `web@file` and `web` name the same service from a router or service of the file provider
/// (`web@redis` of the Redis provider's).
fn bare(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

fn router_diff(expected: &Router, seen: &ApiRouter) -> Vec<String> {
    let mut diff = Vec::new();
    if bare(&seen.service) != bare(&expected.service) {
        diff.push(format!("service is {}, expected {}", seen.service, expected.service));
    }
    if seen.rule != expected.rule {
        diff.push(format!("rule is {}, expected {}", seen.rule, expected.rule));
    }
    let mut want = expected.entry_points.clone();
    let mut have = seen.entry_points.clone();
    want.sort();
    have.sort();
    if want != have {
        diff.push(format!("entrypoints are {have:?}, expected {want:?}"));
    }
    if let Some(p) = expected.priority
        && seen.priority != Some(i64::from(p))
    {
        diff.push(format!("priority is {:?}, expected {p}", seen.priority));
    }
    diff
}

fn service_diff(expected: &Service, seen: &ApiService) -> Vec<String> {
    let kind = match (
        seen.load_balancer.is_some(),
        seen.weighted.is_some(),
        seen.mirroring.is_some(),
    ) {
        (true, _, _) => "loadBalancer",
        (_, true, _) => "weighted",
        (_, _, true) => "mirroring",
        _ => "of another kind",
    };
    let mut diff = Vec::new();
    match expected {
        Service::LoadBalancer(lb) => {
            let Some(seen) = &seen.load_balancer else {
                return vec![format!("is {kind}, expected loadBalancer")];
            };
            let mut want: Vec<&str> = lb.servers.iter().map(|s| s.url.as_str()).collect();
            let mut have: Vec<&str> = seen.servers.iter().map(|s| s.url.as_str()).collect();
            want.sort();
            have.sort();
            if want != have {
                diff.push(format!("servers are {have:?}, expected {want:?}"));
            }
        }
        Service::Weighted(w) => {
            let Some(seen) = &seen.weighted else {
                return vec![format!("is {kind}, expected weighted")];
            };
            let mut want: Vec<(&str, u64)> = w
                .services
                .iter()
                .map(|c| (bare(&c.name), u64::from(c.weight)))
                .collect();
            let mut have: Vec<(&str, u64)> = seen
                .services
                .iter()
                .map(|c| (bare(&c.name), c.weight.unwrap_or(1)))
                .collect();
            want.sort();
            have.sort();
            if want != have {
                diff.push(format!("weights are {}, expected {}", weights(&have), weights(&want)));
            }
            let have_cookie = seen.sticky.as_ref().and_then(|s| s.cookie.as_ref());
            match (&w.sticky, have_cookie) {
                (None, None) => {}
                (Some(want), Some(have))
                    if have.name == want.cookie.name
                        && have.domain == want.cookie.domain
                        && have.http_only == want.cookie.http_only
                        && have.same_site.eq_ignore_ascii_case(&want.cookie.same_site) => {}
                (Some(want), _) => diff.push(format!("sticky cookie is not {}", want.cookie.name)),
                (None, Some(have)) => diff.push(format!("sticky cookie {} is still set", have.name)),
            }
        }
        Service::Mirroring(m) => {
            let Some(seen) = &seen.mirroring else {
                return vec![format!("is {kind}, expected mirroring")];
            };
            if bare(&seen.service) != bare(&m.service) {
                diff.push(format!("mirrors service {}, expected {}", seen.service, m.service));
            }
            let mut want: Vec<(&str, u64)> = m
                .mirrors
                .iter()
                .map(|c| (bare(&c.name), u64::from(c.percent)))
                .collect();
            let mut have: Vec<(&str, u64)> = seen
                .mirrors
                .iter()
                .map(|c| (bare(&c.name), c.percent.unwrap_or(0)))
                .collect();
            want.sort();
            have.sort();
            if want != have {
                diff.push(format!("mirrors are {}, expected {}", weights(&have), weights(&want)));
            }
            // Traefik shows -1 for "no limit".
            let have_max = seen.max_body_size.filter(|&n| n >= 0);
            if have_max != m.max_body_size.map(|n| n as i64) {
                diff.push(format!(
                    "maxBodySize is {}, expected {}",
                    have_max.map_or("unlimited".into(), |n| n.to_string()),
                    m.max_body_size.map_or("unlimited".into(), |n| n.to_string())
                ));
            }
        }
    }
    diff
}

fn weights(children: &[(&str, u64)]) -> String {
    let parts: Vec<String> = children.iter().map(|(n, w)| format!("{n}={w}")).collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names;
    use crate::core::traefik::{Cookie, LoadBalancer, Mirror, Mirroring, Server, Sticky, Weighted, WeightedChild};

    fn router(rule: &str, service: &str) -> Router {
        Router {
            entry_points: vec!["web".into()],
            priority: None,
            rule: rule.into(),
            service: service.into(),
        }
    }

    // Answers captured from Traefik 3.7.15.
    const ROUTER: &str = r#"{"entryPoints":["web"],"service":"web","rule":"Host(`web.test`)","priority":16,"observability":{"accessLogs":true,"metrics":true,"tracing":true,"traceVerbosity":"minimal"},"status":"enabled","using":["web"],"name":"web@file","provider":"file","priorityStr":"16"}"#;
    const ROUTER_DISABLED: &str = r#"{"entryPoints":["web"],"service":"badw","rule":"Host(`bad2.test`)","priority":17,"observability":{"accessLogs":true,"metrics":true,"tracing":true,"traceVerbosity":"minimal"},"error":["building HTTP service \"gone\": the service \"gone@file\" does not exist"],"status":"disabled","using":["web"],"name":"bad2@file","provider":"file","priorityStr":"17"}"#;
    const WEIGHTED: &str = r#"{"weighted":{"services":[{"name":"web.slot.blue","weight":90},{"name":"web.canary.green","weight":10}],"sticky":{"cookie":{"name":"pointsman-web-lb","httpOnly":true,"sameSite":"lax","path":"/"}}},"status":"enabled","usedBy":["web@file"],"name":"web@file","provider":"file","type":"weighted"}"#;
    const LOAD_BALANCER: &str = r#"{"loadBalancer":{"servers":[{"url":"http://127.0.0.1:18091"}],"strategy":"wrr","passHostHeader":true,"responseForwarding":{"flushInterval":"100ms"}},"status":"enabled","name":"web.slot.blue@file","provider":"file","type":"loadbalancer","serverStatus":{"http://127.0.0.1:18091":"UP"}}"#;
    const EMPTY: &str = r#"{"loadBalancer":{"strategy":"wrr","passHostHeader":true,"responseForwarding":{"flushInterval":"100ms"}},"status":"enabled","usedBy":["e@file"],"name":"empty@file","provider":"file","type":"loadbalancer"}"#;
    const MIRRORING: &str = r#"{"mirroring":{"service":"web.primary","mirrorBody":true,"maxBodySize":1024,"mirrors":[{"name":"web.slot.green","percent":20}]},"status":"enabled","usedBy":["web-m@file"],"name":"web-mirror@file","provider":"file","type":"mirroring"}"#;
    const MIRRORING_DEFAULTS: &str = r#"{"mirroring":{"service":"web.primary","mirrorBody":true,"maxBodySize":-1,"mirrors":[{"name":"web.slot.green"}]},"status":"enabled","name":"zm@file","provider":"file","type":"mirroring"}"#;

    fn api_router(json: &str) -> ApiRouter {
        serde_json::from_str(json).unwrap()
    }
    fn api_service(json: &str) -> ApiService {
        serde_json::from_str(json).unwrap()
    }

    fn weighted(blue: u32, green: u32, sticky: bool) -> Service {
        Service::Weighted(Weighted {
            services: vec![
                WeightedChild {
                    name: names::slot("web", "blue"),
                    weight: blue,
                },
                WeightedChild {
                    name: names::canary("web", "green"),
                    weight: green,
                },
            ],
            sticky: sticky.then(|| Sticky {
                cookie: Cookie {
                    domain: None,
                    http_only: true,
                    name: "pointsman-web-lb".into(),
                    same_site: "lax".into(),
                },
            }),
        })
    }

    fn mirroring(percent: u32, max_body_size: Option<u64>) -> Service {
        Service::Mirroring(Mirroring {
            max_body_size,
            mirrors: vec![Mirror {
                name: names::slot("web", "green"),
                percent,
            }],
            service: names::primary("web"),
        })
    }

    #[test]
    fn routers_compare_rule_service_and_entrypoints() {
        let seen = api_router(ROUTER);
        assert_eq!(
            router_diff(&router("Host(`web.test`)", "web"), &seen),
            Vec::<String>::new()
        );
        assert_eq!(
            router_diff(&router("Host(`web.test`)", "web@file"), &seen),
            Vec::<String>::new()
        );
        let green = names::slot("web", "green");
        assert_eq!(
            router_diff(&router("Host(`web.test`)", &green), &seen),
            [format!("service is web, expected {green}")]
        );
        let mut r = router("Host(`other.test`)", "web");
        r.entry_points = vec!["web".into(), "preview".into()];
        r.priority = Some(16);
        assert_eq!(
            router_diff(&r, &seen),
            [
                "rule is Host(`web.test`), expected Host(`other.test`)",
                r#"entrypoints are ["web"], expected ["preview", "web"]"#
            ]
        );
        r.priority = Some(5);
        assert!(
            router_diff(&r, &seen)
                .last()
                .unwrap()
                .contains("priority is Some(16), expected 5")
        );
    }

    #[test]
    fn a_router_as_written_but_disabled_quotes_traefiks_error() {
        let seen = api_router(ROUTER_DISABLED);
        let diff = router_diff(&router("Host(`bad2.test`)", "badw"), &seen);
        let outcome = judge_seen("web", Kind::Router, "bad2", diff, seen.status, seen.error);
        let Progress::Failed(e) = verdict(&[Seen::Matches, outcome]) else {
            panic!("not failed")
        };
        assert_eq!(
            e.to_string(),
            "Traefik loaded router bad2 but disabled it: building HTTP service \"gone\": the service \"gone@file\" does not exist; fix that and run the command again"
        );
    }

    #[test]
    fn weighted_services_compare_children_weights_and_cookie() {
        let seen = api_service(WEIGHTED);
        assert!(service_diff(&weighted(90, 10, true), &seen).is_empty());
        assert_eq!(
            service_diff(&weighted(75, 25, true), &seen),
            [format!(
                "weights are {g}=10,{b}=90, expected {g}=25,{b}=75",
                b = names::slot("web", "blue"),
                g = names::canary("web", "green")
            )]
        );
        assert_eq!(
            service_diff(&weighted(90, 10, false), &seen),
            ["sticky cookie pointsman-web-lb is still set"]
        );
        assert_eq!(
            service_diff(&Service::load_balancer(["http://x".to_string()]), &seen),
            ["is weighted, expected loadBalancer"]
        );
    }

    #[test]
    fn load_balancers_compare_server_urls_and_an_empty_list_has_no_key() {
        let seen = api_service(LOAD_BALANCER);
        assert!(service_diff(&Service::load_balancer(["http://127.0.0.1:18091".to_string()]), &seen).is_empty());
        assert_eq!(
            service_diff(&Service::load_balancer(["http://127.0.0.1:18092".to_string()]), &seen),
            [r#"servers are ["http://127.0.0.1:18091"], expected ["http://127.0.0.1:18092"]"#]
        );
        let empty = Service::LoadBalancer(LoadBalancer { servers: vec![] });
        assert!(service_diff(&empty, &api_service(EMPTY)).is_empty());
        assert!(!service_diff(&empty, &seen).is_empty());
        let two = Service::LoadBalancer(LoadBalancer {
            servers: vec![
                Server {
                    url: "http://127.0.0.1:18091".into(),
                },
                Server {
                    url: "http://127.0.0.1:18092".into(),
                },
            ],
        });
        assert!(!service_diff(&two, &seen).is_empty());
    }

    #[test]
    fn mirroring_compares_service_mirrors_and_body_limit_with_traefiks_defaults() {
        assert!(service_diff(&mirroring(20, Some(1024)), &api_service(MIRRORING)).is_empty());
        assert_eq!(
            service_diff(&mirroring(20, None), &api_service(MIRRORING)),
            ["maxBodySize is 1024, expected unlimited"]
        );
        // Percent 0 is omitted and an unset limit reads -1.
        assert!(service_diff(&mirroring(0, None), &api_service(MIRRORING_DEFAULTS)).is_empty());
        assert_eq!(
            service_diff(&mirroring(10, None), &api_service(MIRRORING_DEFAULTS)),
            [format!(
                "mirrors are {g}=0, expected {g}=10",
                g = names::slot("web", "green")
            )]
        );
    }

    #[test]
    fn removed_names_are_checked_as_the_kinds_no_longer_written() {
        let mut d = Dynamic::default();
        d.http.routers.insert("web".into(), router("Host(`a`)", "web"));
        d.http
            .services
            .insert("web".into(), Service::load_balancer(["http://x".to_string()]));
        let expected = BTreeMap::from([("web".to_string(), d)]);
        let candidate = names::candidate_router("web");
        let removed = ["web".to_string(), candidate.clone()];
        let gone: Vec<String> = checks(&expected, &removed)
            .iter()
            .filter_map(|c| match c {
                Check::Gone { kind, name } => Some(format!("{kind} {name}")),
                _ => None,
            })
            .collect();
        assert_eq!(gone, [format!("router {candidate}"), format!("service {candidate}")]);
    }

    #[test]
    fn a_timeout_names_what_differs_and_what_traefik_says() {
        let seen = vec![
            Seen::Matches,
            Seen::Differs {
                what: "web: router web: service is web.slot.blue, expected web".into(),
                errors: vec![],
            },
            Seen::Differs {
                what: "web: router web.candidate is not loaded".into(),
                errors: vec![],
            },
        ];
        assert_eq!(
            timed_out("http://t", &seen, Duration::from_millis(2500)).to_string(),
            "Traefik still serves other routing after 2.5s: web: router web: service is web.slot.blue, expected web; web: router web.candidate is not loaded; check Traefik's log, and that its provider reads what pointsman writes (the file provider this directory; the Redis provider the store's root key)"
        );
        let mut down = seen.clone();
        down.push(Seen::Unreachable(
            "client error (Connect): tcp connect error: Connection refused".into(),
        ));
        assert!(matches!(
            timed_out("http://t", &down, Duration::ZERO),
            ApplyError::Unreachable { .. }
        ));
    }
}
