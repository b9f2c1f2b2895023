//! Fleet + roles → each app's typed Traefik configuration ([`Dynamic`]).
//!
//! Pure and deterministic: the same inputs give the same value, so a sink can skip writes that
//! change nothing and Traefik reloads only on real changes. How a value is stored (a file, keys)
//! is the sink's business.
//!
//! Per app, with RULE its rule (names from [`crate::core::names`], disjoint across apps by
//! construction):
//! - router `APP` → service `APP`: the stable slot's servers. With none routable the list is
//!   empty, which Traefik answers with 503; a missing service would be a 404.
//! - router `APP.candidate`: `(RULE) && (cookie pointsman-APP=candidate || header
//!   X-Pointsman-Version: candidate)` → the candidate's service, while it has a server.
//! - router `APP.preview` on the preview entrypoint, RULE → the candidate's service.
//! - router `APP.slot.SLOT`: the same with the slot's name as the value, for every slot with a
//!   server, so the previous version stays reachable for comparison while it runs.
//! - during a canary, service `APP.canary.SLOT`: the candidate's servers as the split's child,
//!   so Traefik counts public traffic to the candidate apart from preview requests.
//!
//! Every router carries an explicit priority by class ([`Priority`]), never Traefik's default
//! (the rule's length): a longer label must not buy precedence over another app.
//!
//! Configuration is published per *unit* ([`render_units`]): an app outside any Compose project
//! is its own unit; the apps of a project share one, so a project-wide change is one atomic
//! publish (one file rename, one Traefik reload). Routers and services are prefixed by their
//! app, so a unit is the union of its apps' configurations, plus, during a project canary, the
//! routers that keep every app of the project on the version the visitor first got
//! (`project_canary_routers`).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::core::model::{App, Fleet, Resolved, unit_project};
use crate::core::names;
use crate::core::settings::Settings;
use crate::core::state::Share;
use crate::core::state::State;
use crate::core::traefik::{Cookie, Dynamic, Mirror, Mirroring, Router, Service, Sticky, Weighted, WeightedChild};

/// Header that selects a version, as an alternative to the cookie.
pub const VERSION_HEADER: &str = "X-Pointsman-Version";

/// The preview cookie is `pointsman-APP`.
pub const COOKIE_PREFIX: &str = "pointsman-";

/// What each of `apps` should publish now: `None` for an app with no container (or refused for
/// a host conflict), whose configuration is removed.
pub fn render_apps<'a>(
    fleet: &Fleet,
    state: &State,
    settings: &Settings,
    apps: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Option<Dynamic>> {
    apps.into_iter()
        .map(|name| {
            let rendered = fleet
                .app(name)
                .map(|app| render_app(app, &app.resolve(&state.roles(name)), settings));
            (name.to_string(), rendered)
        })
        .collect()
}

/// Every unit of the fleet.
pub fn render_all(fleet: &Fleet, state: &State, settings: &Settings) -> BTreeMap<String, Dynamic> {
    let units: std::collections::BTreeSet<String> = fleet.apps().map(App::unit).collect();
    render_units(fleet, state, settings, units.iter().map(String::as_str))
        .into_iter()
        .filter_map(|(unit, d)| d.map(|d| (unit, d)))
        .collect()
}

/// What each of `units` should publish now: the union of its apps' configurations, or `None`
/// for a unit none of whose apps has a container any more (it is removed).
pub fn render_units<'a>(
    fleet: &Fleet,
    state: &State,
    settings: &Settings,
    units: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, Option<Dynamic>> {
    units
        .into_iter()
        .map(|unit| {
            let apps = fleet.unit_apps(unit);
            if apps.is_empty() {
                return (unit.to_string(), None);
            }
            let mut out = Dynamic::default();
            let mut canaries = Vec::new();
            for app in &apps {
                let resolved = app.resolve(&state.roles(&app.name));
                let d = render_app(app, &resolved, settings);
                if let Some(split) = canary_split(&d, &app.name) {
                    canaries.push((*app, resolved, split));
                }
                out.http.routers.extend(d.http.routers);
                out.http.services.extend(d.http.services);
            }
            if let Some(project) = unit_project(unit) {
                project_canary_routers(&mut out, project, &canaries);
                if let Some(domain) = cookie_domain(&apps) {
                    for (app, _, _) in &canaries {
                        set_cookie_domain(&mut out, &app.name, &domain);
                    }
                }
            }
            debug_assert!(out.dangling_references().is_empty(), "{:?}", out.dangling_references());
            (unit.to_string(), Some(out))
        })
        .collect()
}

/// The (stable, candidate) children of an app's weighted public service, if it has one.
fn canary_split(d: &Dynamic, app: &str) -> Option<(String, String)> {
    let weighted = |name: &str| match d.http.services.get(name) {
        Some(Service::Weighted(w)) => Some(w),
        _ => None,
    };
    let w = match d.http.services.get(app) {
        Some(Service::Mirroring(m)) => weighted(&m.service),
        _ => weighted(app),
    }?;
    match w.services.as_slice() {
        [stable, candidate] => Some((stable.name.clone(), candidate.name.clone())),
        _ => None,
    }
}

/// The `Domain` of a project's canary cookie. A browser sends a cookie only to the host that set
/// it unless it names a domain; a frontend on `shop.example.com` and its API on
/// `api.shop.example.com` must share the project's cookie, so it gets `Domain=shop.example.com`:
/// the longest domain every app's hosts end with, and only when that is itself one of their hosts
/// (never a bare parent such as `example.com` or a public suffix, which browsers reject or which
/// would reach unrelated sites). `None`: the apps share one host, or nothing safe is common.
fn cookie_domain(apps: &[&App]) -> Option<String> {
    let mut hosts = std::collections::BTreeSet::new();
    for app in apps {
        let h = app.hosts();
        if h.is_empty() {
            return None;
        }
        hosts.extend(h);
    }
    if hosts.len() < 2 {
        return None;
    }
    let labels: Vec<Vec<&str>> = hosts.iter().map(|h| h.rsplit('.').collect()).collect();
    let common = (0..)
        .take_while(|&i| labels.iter().all(|l| l.get(i).is_some_and(|x| *x == labels[0][i])))
        .count();
    let domain: Vec<&str> = labels[0][..common].iter().rev().copied().collect();
    let domain = domain.join(".");
    hosts.contains(&domain).then_some(domain)
}

fn set_cookie_domain(out: &mut Dynamic, app: &str, domain: &str) {
    let primary = match out.http.services.get(app) {
        Some(Service::Mirroring(m)) => m.service.clone(),
        _ => app.to_string(),
    };
    if let Some(Service::Weighted(w)) = out.http.services.get_mut(&primary)
        && let Some(sticky) = &mut w.sticky
    {
        sticky.cookie.domain = Some(domain.to_string());
    }
}

/// The sticky cookie of an app's canary: one per project, so every app of a project reads the
/// same cookie (`pointsman-PROJECT-lb`); an app outside a project has its own.
pub fn canary_cookie(app: &App) -> String {
    match app.project() {
        Some(project) => format!("{COOKIE_PREFIX}{project}-lb"),
        None => format!("{COOKIE_PREFIX}{}-lb", app.name),
    }
}

/// The value Traefik's weighted service writes into its sticky cookie for a child service:
/// the first 16 hex digits of SHA-256 of the child's name as written in the file (Traefik's
/// `sha256Hash` in `pkg/server/service/loadbalancer`; checked against a real Set-Cookie in
/// `tests/stack.rs`).
pub fn sticky_value(child: &str) -> String {
    let digest = Sha256::digest(child.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One sticky cookie for a whole project's canary. Each app's weighted service sets the
/// project's cookie to the hash of the child it chose, which the other apps' weighted services
/// do not know (their children have other names) and would overwrite. So each app in the
/// canary gets two routers that read the *other* apps' values: `APP-project-candidate` sends a
/// visitor holding another app's candidate value to this app's candidate, `APP-project-stable`
/// one holding another app's stable value to this app's stable slot. Whichever app a new
/// visitor reaches first decides; every other app of the project follows.
///
/// Their priority is [`Priority::Project`]: above the app's public router, below the explicit
/// preview cookie and header routers.
fn project_canary_routers(out: &mut Dynamic, project: &str, canaries: &[(&App, Resolved, (String, String))]) {
    let cookie = format!("{COOKIE_PREFIX}{project}-lb");
    for (app, resolved, (stable, candidate)) in canaries {
        let others = canaries.iter().filter(|(a, _, _)| a.name != app.name);
        let (stables, candidates): (Vec<String>, Vec<String>) =
            others.map(|(_, _, (s, c))| (sticky_value(s), sticky_value(c))).unzip();
        if stables.is_empty() {
            continue;
        }
        let (parsed, entrypoints) = app.route(resolved);
        let rule = parsed.as_str();
        for (suffix, values, service) in [("candidate", candidates, candidate), ("stable", stables, stable)] {
            out.http.routers.insert(
                names::project_router(&app.name, suffix == "candidate"),
                Router {
                    entry_points: entrypoints.to_vec(),
                    priority: Some(Priority::Project.of(parsed)),
                    rule: format!(
                        "({rule}) && HeaderRegexp(`Cookie`, `(^|;\\s*){cookie}=({})(;|$)`)",
                        values.join("|")
                    ),
                    service: service.clone(),
                },
            );
        }
    }
}

pub fn render_app(app: &App, roles: &Resolved, settings: &Settings) -> Dynamic {
    let name = &app.name;
    let (rule, entrypoints) = app.route(roles);
    let rule = rule.as_str();
    let mut out = Dynamic::default();
    let route_rule = app.route(roles).0;
    let router = |class: Priority, rule: String, entry_points: &[String], service: &str| Router {
        entry_points: entry_points.to_vec(),
        priority: Some(class.of(route_rule)),
        rule,
        service: service.to_string(),
    };

    let stable = roles.stable.as_ref().and_then(|s| app.slots.get(s));
    let stable_servers = stable.map(|s| s.servers()).unwrap_or_default();
    out.http.routers.insert(
        names::public(name),
        router(Priority::Public, rule.to_string(), entrypoints, name),
    );
    // The public service: the stable slot's servers, or with a canary a weighted split between
    // the stable and the candidate slot's services. A weighted service whose child is missing
    // fails as a whole in Traefik (404, even at weight 0), so it is rendered only while both
    // slots have servers; otherwise the stable slot serves alone.
    let candidate = roles
        .candidate
        .as_ref()
        .and_then(|c| app.slots.get(c))
        .filter(|s| s.is_routable());
    let share_of = |share: &Option<Share>| {
        share
            .as_ref()
            .filter(|s| s.percent > 0 && candidate.is_some_and(|c| c.name == s.slot))
            .map(|s| s.percent.min(100))
    };
    let primary = match (share_of(&roles.canary), stable.filter(|s| s.is_routable()), candidate) {
        (Some(weight), Some(stable), Some(candidate)) => Service::Weighted(Weighted {
            services: vec![
                WeightedChild {
                    name: slot_service(name, &stable.name),
                    weight: u32::from(100 - weight),
                },
                WeightedChild {
                    name: names::canary(name, &candidate.name),
                    weight: u32::from(weight),
                },
            ],
            sticky: Some(Sticky {
                cookie: Cookie {
                    domain: None,
                    http_only: true,
                    name: canary_cookie(app),
                    same_site: "lax".into(),
                },
            }),
        }),
        _ => Service::load_balancer(stable_servers),
    };
    if let Service::Weighted(w) = &primary {
        // The candidate's own child: the same servers as its slot service, under a name only
        // the split uses, so the judge sees public traffic alone (`names::Kind::Canary`).
        out.http.services.insert(
            w.services[1].name.clone(),
            Service::load_balancer(candidate.map(|c| c.servers()).unwrap_or_default()),
        );
    }
    // With a mirror, the public service copies a share of requests to the candidate and
    // serves every answer from the primary one.
    match (share_of(&roles.mirror), candidate) {
        (Some(percent), Some(candidate)) => {
            let primary_name = names::primary(name);
            out.http.services.insert(primary_name.clone(), primary);
            out.http.services.insert(
                name.clone(),
                Service::Mirroring(Mirroring {
                    max_body_size: Some(settings.mirror_max_body),
                    mirrors: vec![Mirror {
                        name: slot_service(name, &candidate.name),
                        percent: u32::from(percent),
                    }],
                    service: primary_name,
                }),
            );
        }
        _ => {
            out.http.services.insert(name.clone(), primary);
        }
    }

    for slot in app.slots.values().filter(|s| s.is_routable()) {
        let service = slot_service(name, &slot.name);
        out.http.routers.insert(
            service.clone(),
            router(
                Priority::Selected,
                selected_rule(rule, name, &slot.name),
                entrypoints,
                &service,
            ),
        );
        out.http
            .services
            .insert(service, Service::load_balancer(slot.servers()));
    }

    if let Some(candidate) = roles
        .candidate
        .as_ref()
        .and_then(|c| app.slots.get(c))
        .filter(|s| s.is_routable())
    {
        let service = slot_service(name, &candidate.name);
        out.http.routers.insert(
            names::candidate_router(name),
            router(
                Priority::Selected,
                selected_rule(rule, name, "candidate"),
                entrypoints,
                &service,
            ),
        );
        if let Some(preview) = &settings.preview_entrypoint {
            out.http.routers.insert(
                names::preview_router(name),
                router(
                    Priority::Selected,
                    rule.to_string(),
                    std::slice::from_ref(preview),
                    &service,
                ),
            );
        }
    }
    debug_assert!(out.dangling_references().is_empty(), "{:?}", out.dangling_references());
    out
}

/// Router and service name of a slot. Slot names allow `.` and `_`, which are kept: Traefik
/// accepts them in names, and rewriting them could make two slots collide.
fn slot_service(app: &str, slot: &str) -> String {
    names::slot(app, slot)
}

/// The class of a router, which fixes its priority. Traefik's default priority is the rule's
/// length, which would let any app outrank another by padding its rule; explicit priorities
/// make precedence a matter of class alone.
///
/// Host-bound rules never overlap across apps (the host-claim index refuses the younger app),
/// so within the host-bound tier one priority per class is enough: `Public` < `Project` (a
/// project canary's cookie routers) < `Selected` (candidate, slot and preview routers: an
/// explicit cookie or header wins). Catch-alls (only with `--allow-catch-all`) sit in a tier
/// below every host-bound router, so a catch-all can never take a host another app serves;
/// among themselves they keep Traefik's rule-length order (`PathPrefix(`/api`)` before
/// `PathPrefix(`/`)`), which the operator chose by allowing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Public,
    Project,
    Selected,
}

impl Priority {
    /// The priority of a router of this class for an app whose public rule is `rule`.
    pub fn of(self, rule: &crate::core::rule::Rule) -> u32 {
        let class = match self {
            Priority::Public => 0,
            Priority::Project => 1,
            Priority::Selected => 2,
        };
        if rule.is_catch_all() {
            // Rule lengths are at most MAX_RULE_LEN (4,096), so the tiers never meet.
            class * CATCH_ALL_CLASS_STEP + rule.as_str().len() as u32
        } else {
            HOST_BOUND_BASE + class * HOST_BOUND_CLASS_STEP
        }
    }
}

const CATCH_ALL_CLASS_STEP: u32 = 5_000;
/// Above every catch-all priority (at most 2 × 5,000 + 4,096).
pub const HOST_BOUND_BASE: u32 = 100_000;
const HOST_BOUND_CLASS_STEP: u32 = 10_000;

/// `(RULE) && (cookie pointsman-APP=VALUE || header X-Pointsman-Version: VALUE)`.
///
/// Traefik v3 has no cookie matcher; a regexp on the `Cookie` header does the job. The value
/// is anchored between `;` separators so `pointsman-web=green2` does not select `green`.
pub fn selected_rule(rule: &str, app: &str, value: &str) -> String {
    let escaped = regex_escape(value);
    format!(
        "({rule}) && (HeaderRegexp(`Cookie`, `(^|;\\s*){COOKIE_PREFIX}{app}={escaped}(;|$)`) || Header(`{VERSION_HEADER}`, `{value}`))"
    )
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::container::{Container, Endpoint};

    fn app_on(fleet: &mut Fleet, app: &str, host: &str) {
        let mut c = Container {
            id: format!("{app}-id"),
            name: format!("/{app}"),
            ..Default::default()
        };
        c.state.running = true;
        c.config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        c.config.labels = Some(
            [
                ("pointsman.app".to_string(), app.to_string()),
                ("pointsman.host".to_string(), host.to_string()),
                ("com.docker.compose.project".to_string(), "p".to_string()),
            ]
            .into(),
        );
        c.network_settings.networks = Some(
            [(
                "n".to_string(),
                Endpoint {
                    ip_address: "10.0.0.2".into(),
                },
            )]
            .into(),
        );
        fleet.upsert(&c, &Settings::default());
    }

    #[test]
    fn a_project_cookie_names_a_domain_only_when_one_host_holds_the_others() {
        let domain = |hosts: &[&str]| {
            let mut f = Fleet::default();
            for (i, h) in hosts.iter().enumerate() {
                app_on(&mut f, &format!("a{i}"), h);
            }
            cookie_domain(&f.project_apps("p"))
        };
        assert_eq!(
            domain(&["shop.example.com", "api.shop.example.com"]).as_deref(),
            Some("shop.example.com")
        );
        assert_eq!(domain(&["a.example.com", "b.example.com"]), None, "never a bare parent");
        assert_eq!(domain(&["shop.co.uk", "api.co.uk"]), None, "never a public suffix");
        assert_eq!(domain(&["a.com", "b.org"]), None);
        assert_eq!(domain(&["shop.localhost"]), None, "one host: no Domain needed");
    }
}
