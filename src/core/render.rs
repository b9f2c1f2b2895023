//! Fleet + roles → the exact bytes of each `pointsman-APP.yml`.
//!
//! Pure and deterministic: the same inputs give the same bytes, so the file edge can skip
//! writes that change nothing and Traefik reloads only on real changes. The files are JSON
//! (which is YAML) after one comment line; serde_json's maps are sorted, so key order is
//! stable.
//!
//! Per app, with RULE its rule:
//! - router `APP` → service `APP`: the stable slot's servers. With none routable the list is
//!   empty, which Traefik answers with 503; a missing service would be a 404.
//! - router `APP-candidate`: `(RULE) && (cookie pointsman-APP=candidate || header
//!   X-Pointsman-Version: candidate)` → the candidate's service, while it has a server.
//! - router `APP-preview` on the preview entrypoint, RULE → the candidate's service.
//! - router `APP-slot-SLOT`: the same with the slot's name as the value, for every slot with a
//!   server, so the previous version stays reachable for comparison while it runs.
//!
//! Traefik's default router priority is the rule's length, so the longer cookie/header rules
//! win over the public one without explicit priorities.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::core::model::{App, Fleet, Resolved};
use crate::core::settings::Settings;
use crate::core::state::State;

/// Header that selects a version, as an alternative to the cookie.
pub const VERSION_HEADER: &str = "X-Pointsman-Version";

/// Files are named `pointsman-APP.yml`; pointsman owns every file matching this.
pub const FILE_PREFIX: &str = "pointsman-";
pub const FILE_SUFFIX: &str = ".yml";

/// The preview cookie is `pointsman-APP`.
pub const COOKIE_PREFIX: &str = "pointsman-";

const HEADER_LINE: &str = "# Written by pointsman; edits are overwritten. Roles: `pointsman status`.\n";

pub fn file_name(app: &str) -> String {
    format!("{FILE_PREFIX}{app}{FILE_SUFFIX}")
}

/// The app a file name belongs to, if pointsman owns that name.
pub fn app_of_file(name: &str) -> Option<&str> {
    name.strip_prefix(FILE_PREFIX)?
        .strip_suffix(FILE_SUFFIX)
        .filter(|a| crate::core::labels::is_dns_label(a))
}

/// Every file pointsman wants in the directory, by file name.
pub fn render_all(fleet: &Fleet, state: &State, settings: &Settings) -> BTreeMap<String, Vec<u8>> {
    fleet
        .apps
        .values()
        .map(|app| {
            let resolved = app.resolve(&state.roles(&app.name));
            (file_name(&app.name), render_app(app, &resolved, settings))
        })
        .collect()
}

pub fn render_app(app: &App, roles: &Resolved, settings: &Settings) -> Vec<u8> {
    let name = &app.name;
    let (rule, entrypoints) = app.route(roles);
    let rule = rule.as_str();
    let mut routers = serde_json::Map::new();
    let mut services = serde_json::Map::new();

    let stable_servers = roles
        .stable
        .as_ref()
        .and_then(|s| app.slots.get(s))
        .map(|s| s.servers())
        .unwrap_or_default();
    routers.insert(
        name.clone(),
        json!({ "rule": rule, "entryPoints": entrypoints, "service": name }),
    );
    services.insert(name.clone(), load_balancer(&stable_servers));

    for slot in app.slots.values().filter(|s| s.is_routable()) {
        let service = slot_service(name, &slot.name);
        routers.insert(
            service.clone(),
            json!({
                "rule": selected_rule(rule, name, &slot.name),
                "entryPoints": entrypoints,
                "service": service,
            }),
        );
        services.insert(service, load_balancer(&slot.servers()));
    }

    if let Some(candidate) = roles
        .candidate
        .as_ref()
        .and_then(|c| app.slots.get(c))
        .filter(|s| s.is_routable())
    {
        let service = slot_service(name, &candidate.name);
        routers.insert(
            format!("{name}-candidate"),
            json!({
                "rule": selected_rule(rule, name, "candidate"),
                "entryPoints": entrypoints,
                "service": service,
            }),
        );
        if let Some(preview) = &settings.preview_entrypoint {
            routers.insert(
                format!("{name}-preview"),
                json!({ "rule": rule, "entryPoints": [preview], "service": service }),
            );
        }
    }

    let doc = json!({ "http": { "routers": routers, "services": services } });
    let mut out = HEADER_LINE.as_bytes().to_vec();
    serde_json::to_writer_pretty(&mut out, &doc).expect("a JSON value always serialises");
    out.push(b'\n');
    out
}

fn load_balancer(servers: &[String]) -> Value {
    let servers: Vec<Value> = servers.iter().map(|u| json!({ "url": u })).collect();
    json!({ "loadBalancer": { "servers": servers } })
}

/// Router and service name of a slot. Slot names allow `.` and `_`, which are kept: Traefik
/// accepts them in names, and rewriting them could make two slots collide.
fn slot_service(app: &str, slot: &str) -> String {
    format!("{app}-slot-{slot}")
}

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
