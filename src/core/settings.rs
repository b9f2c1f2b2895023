//! The operator's choices that shape how labels are read and what is rendered.
//!
//! They are recorded in the state, beside the roles, so every writer — the controller and each
//! CLI call, with or without flags — renders with the same settings. Before this, a CLI call
//! made without the controller's `--preview-entrypoint` rewrote the app's file without the
//! preview router. Flags only *propose* settings: [`resolve`] takes the recorded [`Choices`],
//! completes them with the flags' choices where nothing was recorded, and a flag that
//! contradicts a recorded choice is an error unless the operator asks to reconfigure.

use serde::{Deserialize, Serialize};

use crate::core::admit::Admit;

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
    /// Largest request body a mirror copies, in bytes (`--mirror-max-body`).
    #[serde(default = "default_mirror_max_body")]
    pub mirror_max_body: u64,
    /// Who may join a seeded app (`--admit`).
    #[serde(default)]
    pub admit: Admit,
}

/// 1 MiB.
pub const DEFAULT_MIRROR_MAX_BODY: u64 = 1 << 20;

fn default_mirror_max_body() -> u64 {
    DEFAULT_MIRROR_MAX_BODY
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
            mirror_max_body: DEFAULT_MIRROR_MAX_BODY,
            admit: Admit::Any,
        }
    }
}

impl Settings {
    pub fn label(&self, key: &str) -> String {
        format!("{}.{key}", self.label_prefix)
    }
}

/// Settings an operator chose explicitly: the flags of one command line (or environment), and
/// the record of them in the state. `None`: not chosen, the default applies and a later writer
/// may still choose. `preview_entrypoint` and `network` are `Some(None)` when chosen to be none
/// (an empty flag).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choices {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoints: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "chosen_none")]
    pub preview_entrypoint: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "chosen_none")]
    pub network: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_catch_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_max_body: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit: Option<Admit>,
}

/// `Option<Option<String>>` in JSON: a missing key is "not chosen", `null` "chosen: none".
mod chosen_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

impl Choices {
    pub fn is_empty(&self) -> bool {
        *self == Choices::default()
    }

    /// The settings these choices give, defaults where nothing was chosen.
    pub fn effective(&self) -> Settings {
        let d = Settings::default();
        Settings {
            label_prefix: self.label_prefix.clone().unwrap_or(d.label_prefix),
            entrypoints: self.entrypoints.clone().unwrap_or(d.entrypoints),
            preview_entrypoint: self.preview_entrypoint.clone().unwrap_or(d.preview_entrypoint),
            network: self.network.clone().unwrap_or(d.network),
            allow_catch_all: self.allow_catch_all.unwrap_or(d.allow_catch_all),
            allowed_hosts: self.allowed_hosts.clone().unwrap_or(d.allowed_hosts),
            mirror_max_body: self.mirror_max_body.unwrap_or(d.mirror_max_body),
            admit: self.admit.unwrap_or(d.admit),
        }
    }

    /// Each choice of `self`, else of `other`.
    fn or(&self, other: &Choices) -> Choices {
        Choices {
            label_prefix: self.label_prefix.clone().or_else(|| other.label_prefix.clone()),
            entrypoints: self.entrypoints.clone().or_else(|| other.entrypoints.clone()),
            preview_entrypoint: self
                .preview_entrypoint
                .clone()
                .or_else(|| other.preview_entrypoint.clone()),
            network: self.network.clone().or_else(|| other.network.clone()),
            allow_catch_all: self.allow_catch_all.or(other.allow_catch_all),
            allowed_hosts: self.allowed_hosts.clone().or_else(|| other.allowed_hosts.clone()),
            mirror_max_body: self.mirror_max_body.or(other.mirror_max_body),
            admit: self.admit.or(other.admit),
        }
    }
}

/// Flags that contradict the recorded choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}: every writer renders with the settings recorded in the state, so the controller and the CLI never disagree; drop the flag to use the recorded value, or pass --reconfigure to record the new one (a running controller adopts it)",
    conflicts.join("; ")
)]
pub struct Conflict {
    pub conflicts: Vec<String>,
}

/// What a writer renders with, and the record to keep: the recorded choices, completed by the
/// flags' choices where nothing was recorded. A flag contradicting a recorded choice is a
/// [`Conflict`], unless `reconfigure`, where the flags win.
pub fn resolve(recorded: &Choices, flags: &Choices, reconfigure: bool) -> Result<(Settings, Choices), Conflict> {
    if reconfigure {
        let record = flags.or(recorded);
        return Ok((record.effective(), record));
    }
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    let mut conflicts = Vec::new();
    let mut check = |flag: &str, given: Option<String>, kept: Option<String>| {
        if let (Some(given), Some(kept)) = (given, kept)
            && given != kept
        {
            conflicts.push(format!("{flag} {given} contradicts the recorded {kept}"));
        }
    };
    check(
        "--label-prefix",
        flags.label_prefix.clone(),
        recorded.label_prefix.clone(),
    );
    check(
        "--entrypoints",
        flags.entrypoints.as_ref().map(|e| e.join(",")),
        recorded.entrypoints.as_ref().map(|e| e.join(",")),
    );
    check(
        "--preview-entrypoint",
        flags.preview_entrypoint.as_ref().map(show),
        recorded.preview_entrypoint.as_ref().map(show),
    );
    check(
        "--network",
        flags.network.as_ref().map(show),
        recorded.network.as_ref().map(show),
    );
    check(
        "--allow-catch-all",
        flags.allow_catch_all.map(|b| b.to_string()),
        recorded.allow_catch_all.map(|b| b.to_string()),
    );
    check(
        "--allow-host",
        flags.allowed_hosts.as_ref().map(|h| h.join(",")),
        recorded.allowed_hosts.as_ref().map(|h| h.join(",")),
    );
    check(
        "--mirror-max-body",
        flags.mirror_max_body.map(|b| b.to_string()),
        recorded.mirror_max_body.map(|b| b.to_string()),
    );
    check(
        "--admit",
        flags.admit.map(|a| a.to_string()),
        recorded.admit.map(|a| a.to_string()),
    );
    if !conflicts.is_empty() {
        return Err(Conflict { conflicts });
    }
    let record = recorded.or(flags);
    Ok((record.effective(), record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(p: &str) -> Choices {
        Choices {
            preview_entrypoint: Some(Some(p.into())),
            ..Default::default()
        }
    }

    #[test]
    fn without_recorded_choices_flags_apply_over_the_defaults_and_are_recorded() {
        let (s, record) = resolve(&Choices::default(), &preview("preview"), false).unwrap();
        assert_eq!(s.preview_entrypoint.as_deref(), Some("preview"));
        assert_eq!(s.entrypoints, ["web"]);
        assert_eq!(record, preview("preview"));
    }

    #[test]
    fn a_writer_without_flags_renders_with_the_recorded_settings() {
        let (recorded_settings, record) = resolve(&Choices::default(), &preview("preview"), false).unwrap();
        let (s, again) = resolve(&record, &Choices::default(), false).unwrap();
        assert_eq!(
            s, recorded_settings,
            "a bare `pointsman promote web` keeps the controller's preview router"
        );
        assert_eq!(again, record);
    }

    #[test]
    fn a_flag_for_a_setting_nobody_chose_is_added_to_the_record() {
        let network = Choices {
            network: Some(Some("front".into())),
            ..Default::default()
        };
        let (s, record) = resolve(&preview("preview"), &network, false).unwrap();
        assert_eq!(
            (s.preview_entrypoint.as_deref(), s.network.as_deref()),
            (Some("preview"), Some("front"))
        );
        assert_eq!(record.network, Some(Some("front".into())));
    }

    #[test]
    fn a_contradicting_flag_is_an_error_naming_it_unless_reconfiguring() {
        let msg = resolve(&preview("preview"), &preview("other"), false)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--preview-entrypoint other contradicts the recorded preview")
                && msg.contains("--reconfigure"),
            "{msg}"
        );
        let none = Choices {
            preview_entrypoint: Some(None),
            ..Default::default()
        };
        assert!(
            resolve(&preview("preview"), &none, false).is_err(),
            "an explicit none contradicts too"
        );
        let (s, record) = resolve(&preview("preview"), &preview("other"), true).unwrap();
        assert_eq!(s.preview_entrypoint.as_deref(), Some("other"));
        assert_eq!(record, preview("other"));
        assert!(
            resolve(&preview("preview"), &preview("preview"), false).is_ok(),
            "agreeing flags are fine"
        );
    }

    #[test]
    fn the_record_keeps_an_explicit_none_apart_from_not_chosen() {
        let none = Choices {
            preview_entrypoint: Some(None),
            ..Default::default()
        };
        let json = serde_json::to_string(&none).unwrap();
        assert_eq!(json, r#"{"preview_entrypoint":null}"#);
        assert_eq!(serde_json::from_str::<Choices>(&json).unwrap(), none);
        assert_eq!(serde_json::from_str::<Choices>("{}").unwrap(), Choices::default());
    }
}
