//! The operator's choices that shape how labels are read and what is rendered.
//!
//! They are recorded in the state, beside the roles, so every writer — the controller and each
//! CLI call, with or without flags — renders with the same settings. Before this, a CLI call
//! made without the controller's `--preview-entrypoint` rewrote the app's file without the
//! preview router. Flags only *propose* settings: [`resolve`] takes the recorded ones, and a flag
//! that disagrees with them is an error unless the operator asks to reconfigure.

use serde::{Deserialize, Serialize};

/// Defaults for labels a container leaves out, and the names pointsman reads labels under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Labels are read as `PREFIX.app`, `PREFIX.version`, …
    pub label_prefix: String,
    /// Entrypoints of the public router when a container has no `entrypoints` label.
    pub entrypoints: Vec<String>,
    /// Entrypoint that serves the candidate on the app's own rule (the port-separation scheme).
    #[serde(default)]
    pub preview_entrypoint: Option<String>,
    /// Network to take a container's address from when it has no `network` label.
    #[serde(default)]
    pub network: Option<String>,
    /// Accept rules without a `Host` matcher, which would catch every host on the entrypoint.
    #[serde(default)]
    pub allow_catch_all: bool,
    /// When not empty, every host a rule names must match one of these (`a.com` exactly,
    /// `*.a.com` any name under it); an app claiming another host is refused.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            label_prefix: "pointsman".into(),
            entrypoints: vec!["web".into()],
            preview_entrypoint: None,
            network: None,
            allow_catch_all: false,
            allowed_hosts: Vec::new(),
        }
    }
}

impl Settings {
    pub fn label(&self, key: &str) -> String {
        format!("{}.{key}", self.label_prefix)
    }

    /// Whether `--allow-host` lets an app claim `host` (lowercase).
    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self
                .allowed_hosts
                .iter()
                .any(|pattern| match pattern.strip_prefix("*.") {
                    Some(domain) => {
                        host.len() > domain.len() + 1
                            && host.ends_with(domain)
                            && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                    }
                    None => host == pattern,
                })
    }
}

/// The settings flags given on one command line (or in the environment); `None`: not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proposed {
    pub label_prefix: Option<String>,
    pub entrypoints: Option<Vec<String>>,
    /// `Some(None)`: explicitly none (`--preview-entrypoint ''`).
    pub preview_entrypoint: Option<Option<String>>,
    pub network: Option<Option<String>>,
    pub allow_catch_all: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
}

/// Flags that contradict the recorded settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: every writer renders with the settings recorded in the state, so the controller and the CLI never disagree; drop the flag to use the recorded value, or pass --reconfigure to record the new one (a running controller adopts it)",
    conflicts.join("; ")
)]
pub struct Conflict {
    pub conflicts: Vec<String>,
}

/// What a writer renders with: the recorded settings, with no flag contradicting them. With no
/// recorded settings (a new directory) the flags over the defaults; with `reconfigure`, the
/// flags over the recorded settings.
pub fn resolve(recorded: Option<&Settings>, flags: &Proposed, reconfigure: bool) -> Result<Settings, Conflict> {
    let base = recorded.cloned().unwrap_or_default();
    let merged = Settings {
        label_prefix: flags.label_prefix.clone().unwrap_or_else(|| base.label_prefix.clone()),
        entrypoints: flags.entrypoints.clone().unwrap_or_else(|| base.entrypoints.clone()),
        preview_entrypoint: flags
            .preview_entrypoint
            .clone()
            .unwrap_or_else(|| base.preview_entrypoint.clone()),
        network: flags.network.clone().unwrap_or_else(|| base.network.clone()),
        allow_catch_all: flags.allow_catch_all.unwrap_or(base.allow_catch_all),
        allowed_hosts: flags
            .allowed_hosts
            .clone()
            .unwrap_or_else(|| base.allowed_hosts.clone()),
    };
    let Some(recorded) = recorded else { return Ok(merged) };
    if reconfigure {
        return Ok(merged);
    }
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    let mut conflicts = Vec::new();
    let mut check = |flag: &str, given: String, kept: String, differs: bool| {
        if differs {
            conflicts.push(format!("{flag} {given} contradicts the recorded {kept}"));
        }
    };
    check(
        "--label-prefix",
        merged.label_prefix.clone(),
        recorded.label_prefix.clone(),
        merged.label_prefix != recorded.label_prefix,
    );
    check(
        "--entrypoints",
        merged.entrypoints.join(","),
        recorded.entrypoints.join(","),
        merged.entrypoints != recorded.entrypoints,
    );
    check(
        "--preview-entrypoint",
        show(&merged.preview_entrypoint),
        show(&recorded.preview_entrypoint),
        merged.preview_entrypoint != recorded.preview_entrypoint,
    );
    check(
        "--network",
        show(&merged.network),
        show(&recorded.network),
        merged.network != recorded.network,
    );
    check(
        "--allow-catch-all",
        merged.allow_catch_all.to_string(),
        recorded.allow_catch_all.to_string(),
        merged.allow_catch_all != recorded.allow_catch_all,
    );
    check(
        "--allow-host",
        merged.allowed_hosts.join(","),
        recorded.allowed_hosts.join(","),
        merged.allowed_hosts != recorded.allowed_hosts,
    );
    if conflicts.is_empty() {
        Ok(merged)
    } else {
        Err(Conflict { conflicts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(p: &str) -> Proposed {
        Proposed {
            preview_entrypoint: Some(Some(p.into())),
            ..Default::default()
        }
    }

    #[test]
    fn without_recorded_settings_flags_apply_over_the_defaults() {
        let s = resolve(None, &preview("preview"), false).unwrap();
        assert_eq!(s.preview_entrypoint.as_deref(), Some("preview"));
        assert_eq!(s.entrypoints, ["web"]);
    }

    #[test]
    fn a_writer_without_flags_renders_with_the_recorded_settings() {
        let recorded = resolve(None, &preview("preview"), false).unwrap();
        let s = resolve(Some(&recorded), &Proposed::default(), false).unwrap();
        assert_eq!(
            s, recorded,
            "a bare `pointsman promote web` keeps the controller's preview router"
        );
    }

    #[test]
    fn a_contradicting_flag_is_an_error_naming_it_unless_reconfiguring() {
        let recorded = resolve(None, &preview("preview"), false).unwrap();
        let err = resolve(Some(&recorded), &preview("other"), false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--preview-entrypoint other contradicts the recorded preview")
                && msg.contains("--reconfigure"),
            "{msg}"
        );
        let s = resolve(Some(&recorded), &preview("other"), true).unwrap();
        assert_eq!(s.preview_entrypoint.as_deref(), Some("other"));
        assert!(
            resolve(Some(&recorded), &preview("preview"), false).is_ok(),
            "agreeing flags are fine"
        );
    }
}
