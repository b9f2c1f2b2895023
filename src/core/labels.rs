//! Labels → [`Member`]: how one container declares which app, slot and route it serves.
//!
//! Pure: a container and the [`Settings`] in, a member or a [`LabelError`] out. A container
//! with a bad label is left out on its own; it never takes other containers, other apps or the
//! file already serving traffic down with it.

use std::fmt;

use crate::core::container::{Condition, Container};
use crate::core::rule::{self, Rule};
use crate::core::settings::Settings;
use jiff::Timestamp;

/// The role a slot's labels ask for. Labels only seed roles; see `roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Stable,
    Candidate,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Stable => "stable",
            Role::Candidate => "candidate",
        })
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "stable" => Ok(Role::Stable),
            "candidate" => Ok(Role::Candidate),
            other => Err(format!("`{other}` is not a role; use `stable` or `candidate`")),
        }
    }
}

/// A container that belongs to an app, with everything routing needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub app: String,
    pub slot: String,
    /// The role its `version` label asks for when its app has no stable slot yet.
    pub seed_role: Role,
    pub rule: Rule,
    /// The label the rule came from (`PREFIX.rule` or `PREFIX.host`), for error messages.
    pub rule_label_key: String,
    pub entrypoints: Vec<String>,
    /// `http://IP:PORT`, when Docker has given the container an address.
    pub url: Option<String>,
    pub condition: Condition,
    pub created: Timestamp,
    pub started: Timestamp,
    /// The Compose project it belongs to (`com.docker.compose.project`), if the label holds a
    /// valid project name; the apps of one project are released together.
    pub project: Option<String>,
    /// Its `PREFIX.owner` label, which `--admit label` compares with the app's owner.
    pub owner_mark: Option<String>,
}

/// The label Compose puts on every container of a project.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";

impl Member {
    /// Gets traffic: ready and addressable.
    pub fn routable(&self) -> bool {
        self.condition == Condition::Ready && self.url.is_some()
    }
}

/// Why a container carrying the app label was left out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
#[error("container {container}: label {label}: {reason}; fix the label and recreate the container")]
pub struct LabelError {
    pub container: String,
    pub label: String,
    pub reason: String,
}

/// Longest label value pointsman reads; anything longer is a mistake or an attack.
pub const MAX_VALUE: usize = 4096;

/// Labels pointsman reads that are not under its prefix: Compose's own.
const SERVICE_LABEL: &str = "com.docker.compose.service";

/// Reads a container's labels. `Ok(None)`: not ours (no app label).
pub fn read(c: &Container, settings: &Settings) -> Result<Option<Member>, LabelError> {
    let key_app = settings.label("app");
    let Some(app) = c.label(&key_app) else { return Ok(None) };
    let fail = |key: &str, reason: String| LabelError {
        container: printable(c.short_name()),
        label: settings.label(key),
        reason: printable(&reason),
    };
    // Every label read goes through the size check, Compose's own included.
    let sized = |full_key: &str| -> Result<Option<&str>, LabelError> {
        match c.label(full_key) {
            Some(v) if v.len() > MAX_VALUE => Err(LabelError {
                container: printable(c.short_name()),
                label: printable(full_key),
                reason: format!(
                    "value is {} bytes, longer than the {MAX_VALUE} bytes pointsman reads",
                    v.len()
                ),
            }),
            other => Ok(other),
        }
    };
    let get = |key: &str| -> Result<Option<&str>, LabelError> {
        match sized(&settings.label(key))? {
            Some(v) if v.contains("{{") || v.contains("}}") => Err(fail(
                key,
                "contains `{{` or `}}`: Traefik evaluates its dynamic configuration as a Go template".into(),
            )),
            other => Ok(other),
        }
    };

    get("app")?;
    if !is_dns_label(app) {
        return Err(fail(
            "app",
            format!("{:?} is not a lowercase DNS label (a-z, 0-9, '-', at most 63)", app),
        ));
    }
    if app.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(
            "app",
            format!("{app:?} is only digits, which Traefik's Redis provider reads as a list index; add a letter"),
        ));
    }

    let seed_role = match get("version")? {
        None => Role::Candidate,
        Some(v) => v.trim().parse().map_err(|e| fail("version", e))?,
    };

    let slot = match get("slot")? {
        Some(s) => s.trim().to_string(),
        None => sized(SERVICE_LABEL)?
            .map(str::to_string)
            .unwrap_or_else(|| c.short_name().to_string()),
    };
    if !is_slot_name(&slot) {
        return Err(fail(
            "slot",
            format!(
                "slot name {slot:?} must start with a letter or digit and use only letters, digits, '-', '_' or '.' (at most 63)"
            ),
        ));
    }
    if slot == "candidate" || slot == "stable" {
        return Err(fail(
            "slot",
            format!("slot name {slot:?} is reserved for the preview cookie"),
        ));
    }

    let (rule, rule_key) = match (get("rule")?, get("host")?) {
        (Some(_), Some(_)) => return Err(fail("rule", "set either rule or host, not both".into())),
        (Some(r), None) => (Rule::parse(r).map_err(|e| fail("rule", e.to_string()))?, "rule"),
        (None, Some(h)) => (rule::from_hosts(h).map_err(|e| fail("host", e.to_string()))?, "host"),
        (None, None) => {
            return Err(fail(
                "host",
                format!(
                    "the container has no route; set {} (e.g. app.example.com) or {}",
                    settings.label("host"),
                    settings.label("rule")
                ),
            ));
        }
    };

    let footprint = rule.footprint();
    if !footprint.is_bounded() && !settings.allow_catch_all {
        return Err(fail(
            rule_key,
            format!(
                "rule `{}` is a catch-all: it can match hosts no Host bounds, so other apps' requests; bound every `||` branch with Host(`...`) or a HostRegexp anchored under a domain (`^[a-z]+\\.example\\.com$`), or start pointsman with --allow-catch-all",
                elide(rule.as_str(), 60)
            ),
        ));
    }
    if !settings.allowed_hosts.is_empty() {
        if !footprint.is_bounded() {
            return Err(fail(
                rule_key,
                "with --allow-host, every branch of a rule must be bounded by Host(`...`) or a HostRegexp anchored under an allowed domain".into(),
            ));
        }
        if let Some(p) = footprint.patterns().iter().find(|p| !p.within(&settings.allowed_hosts)) {
            return Err(fail(
                rule_key,
                format!(
                    "host {} is outside the allowed hosts ({})",
                    p.describe(),
                    settings.allowed_hosts.join(", ")
                ),
            ));
        }
    }

    let entrypoints = match get("entrypoints")? {
        None => settings.entrypoints.clone(),
        Some(list) => parse_entrypoints(list).map_err(|e| fail("entrypoints", e))?,
    };
    if let Some(preview) = &settings.preview_entrypoint
        && entrypoints.contains(preview)
    {
        return Err(fail(
            "entrypoints",
            format!("includes the preview entrypoint `{preview}`, which serves only candidates"),
        ));
    }

    let port = match get("port")? {
        Some(p) => match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(fail("port", format!("{p:?} is not a port number (1-65535)"))),
        },
        None => match c.exposed_tcp_ports().as_slice() {
            [only] => *only,
            [] => {
                return Err(fail(
                    "port",
                    format!(
                        "the container exposes no port, so {} must name one",
                        settings.label("port")
                    ),
                ));
            }
            many => {
                let list: Vec<String> = many.iter().map(u16::to_string).collect();
                return Err(fail(
                    "port",
                    format!(
                        "the container exposes ports {}, so {} must pick one",
                        list.join(", "),
                        settings.label("port")
                    ),
                ));
            }
        },
    };

    // Compose creates a container before it connects its networks, and a stopped container
    // has no address anyway: network problems only count once the container runs.
    let url = match address(c, settings, get("network")?, port) {
        Ok(url) => url,
        Err(_) if c.condition() == Condition::Stopped => None,
        Err(reason) => return Err(fail("network", reason)),
    };

    let project = sized(PROJECT_LABEL)?.filter(|p| is_project_name(p)).map(str::to_string);
    let owner_mark = match get("owner")?.map(str::trim) {
        Some(mark) if !is_slot_name(mark) => {
            return Err(fail(
                "owner",
                format!(
                    "owner mark {mark:?} must start with a letter or digit and use only letters, digits, '-', '_' or '.' (at most 63)"
                ),
            ));
        }
        mark => mark.map(str::to_string),
    };

    Ok(Some(Member {
        id: c.id.clone(),
        name: c.short_name().to_string(),
        app: app.to_string(),
        slot,
        seed_role,
        rule,
        rule_label_key: settings.label(rule_key),
        entrypoints,
        url,
        condition: c.condition(),
        created: c.created_at(),
        started: c.started_at(),
        project,
        owner_mark,
    }))
}

/// The first `max` characters of `s`, and `…` when there were more: a long value quoted inside
/// a message must leave room for the advice after it.
fn elide(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Label values end up in error messages and logs: control characters are shown escaped so
/// a hostile value cannot forge log lines, and anything beyond 400 characters is elided.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i == 400 {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `http://IP:PORT` on the chosen network; `Ok(None)` while Docker has given it no address.
fn address(c: &Container, settings: &Settings, label: Option<&str>, port: u16) -> Result<Option<String>, String> {
    if let Some(host) = &c.advertise {
        let Some(published) = c.published_port(port) else {
            return Err(format!(
                "port {port} is not published on the host, so other hosts cannot reach it at {host}; publish it (docker run -p {port}, Compose ports: [\"{port}\"]) or run the host's controller with --address container"
            ));
        };
        return Ok(Some(if host.contains(':') {
            format!("http://[{host}]:{published}")
        } else {
            format!("http://{host}:{published}")
        }));
    }
    let attached: Vec<&str> = c.networks().map(|(n, _)| n).collect();
    let network = match (label, &settings.network) {
        (Some(n), _) => n.trim().to_string(),
        (None, Some(n)) => n.clone(),
        (None, None) => match attached.as_slice() {
            [only] => only.to_string(),
            [] => return Err("the container is attached to no network".into()),
            many => {
                return Err(format!(
                    "the container is on several networks ({}), so {} or --network must pick one",
                    many.join(", "),
                    settings.label("network")
                ));
            }
        },
    };
    let Some((_, endpoint)) = c.networks().find(|(n, _)| *n == network) else {
        return Err(format!(
            "the container is not attached to network {network:?} (attached: {})",
            attached.join(", ")
        ));
    };
    Ok(match endpoint.ip_address.as_str() {
        "" => None,
        ip if ip.contains(':') => Some(format!("http://[{ip}]:{port}")),
        ip => Some(format!("http://{ip}:{port}")),
    })
}

fn parse_entrypoints(list: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim) {
        if item.is_empty()
            || !item
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(format!(
                "{list:?} must be a comma list of entrypoint names (letters, digits, '-', '_')"
            ));
        }
        if !out.iter().any(|e| e == item) {
            out.push(item.to_string());
        }
    }
    Ok(out)
}

/// `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && b.len() <= 63 && ok(&b[0]) && ok(&b[b.len() - 1]) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// Compose project names, as Compose normalises them: `[a-z0-9][a-z0-9_-]*`, at most 63. A
/// project label that is not one (set by hand) is ignored: the app is released on its own.
pub fn is_project_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

/// Compose service and container names: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 63.
pub fn is_slot_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(extra: &[(&str, String)]) -> Container {
        let mut c = Container {
            id: "web-1-id".into(),
            name: "/web-1".into(),
            ..Default::default()
        };
        c.state.running = true;
        c.config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        let mut labels = std::collections::BTreeMap::from([
            ("pointsman.app".to_string(), "web".to_string()),
            ("pointsman.host".to_string(), "web.example.com".to_string()),
        ]);
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        c.config.labels = Some(labels);
        c.network_settings.networks = Some(
            [(
                "net".to_string(),
                crate::core::container::Endpoint {
                    ip_address: "10.0.0.2".into(),
                },
            )]
            .into(),
        );
        c
    }

    #[test]
    fn every_label_read_has_a_size_limit_named_in_the_error() {
        let s = Settings::default();
        let huge = "a".repeat(MAX_VALUE + 1);
        for key in [
            "pointsman.app",
            "pointsman.version",
            "pointsman.slot",
            "pointsman.host",
            "pointsman.entrypoints",
            "pointsman.port",
            "pointsman.network",
            "pointsman.owner",
            PROJECT_LABEL,
            SERVICE_LABEL,
        ] {
            let e = read(&web(&[(key, huge.clone())]), &s).unwrap_err();
            assert_eq!(e.label, key);
            let msg = e.to_string();
            assert!(
                msg.contains("container web-1")
                    && msg.contains(&format!("value is {} bytes", MAX_VALUE + 1))
                    && msg.contains("longer than the 4096 bytes pointsman reads")
                    && msg.ends_with("fix the label and recreate the container"),
                "{msg}"
            );
            assert!(msg.len() < 400, "the error does not echo the value: {msg}");
        }
        let at_limit = "a".repeat(MAX_VALUE);
        assert!(
            read(&web(&[(PROJECT_LABEL, at_limit)]), &s).is_ok(),
            "the limit itself is fine"
        );
    }

    #[test]
    fn the_owner_mark_is_read_and_checked() {
        let s = Settings::default();
        let m = read(&web(&[("pointsman.owner", "team-a".into())]), &s)
            .unwrap()
            .unwrap();
        assert_eq!(m.owner_mark.as_deref(), Some("team-a"));
        let e = read(&web(&[("pointsman.owner", "a\nb".into())]), &s).unwrap_err();
        assert_eq!(e.label, "pointsman.owner");
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}
