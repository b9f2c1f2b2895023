//! Who may join an app (`--admit`): labels belong to whoever starts a container, so on a shared
//! host anyone who can label a container could add it to another app's slots (a candidate that
//! gets previews, or a stable slot's servers). An admission policy binds an app, once seeded, to
//! the owner that seeded it; a container without the owner's mark is left out, as a label error
//! naming the owner and how to admit it.
//!
//! The owner is recorded in the state ([`Owner`], in the app's roles) when the app gets its
//! stable slot, so it outlives the containers that seeded it. The policy is one of the recorded
//! settings ([`crate::core::settings::Choices`]), so every writer admits the same containers.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::core::labels::{LabelError, Member, PROJECT_LABEL};

/// The admission policy. `Any` is the behaviour before policies existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Admit {
    /// Any container carrying the app label joins the app.
    #[default]
    Any,
    /// Containers of the Compose project (`com.docker.compose.project`) that seeded the app.
    ComposeProject,
    /// Containers whose `PREFIX.owner` label has the value of the container that seeded the app.
    Label,
}

/// The names `--admit` takes, for messages.
pub const ADMIT_VALUES: &str = "any, compose-project, label";

impl std::str::FromStr for Admit {
    type Err = String;
    fn from_str(s: &str) -> Result<Admit, String> {
        match s.trim() {
            "any" => Ok(Admit::Any),
            "compose-project" => Ok(Admit::ComposeProject),
            "label" => Ok(Admit::Label),
            other => Err(format!("--admit {other:?}: give one of {ADMIT_VALUES}")),
        }
    }
}

impl fmt::Display for Admit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Admit::Any => "any",
            Admit::ComposeProject => "compose-project",
            Admit::Label => "label",
        })
    }
}

/// Who seeded an app: what a container must carry to join it under a policy. Both are recorded
/// when known, so a policy switched later finds its key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// The Compose project of the seeding container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The `PREFIX.owner` label of the seeding container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<String>,
}

impl Owner {
    /// The owner a member would make of its app.
    pub fn of(m: &Member) -> Owner {
        Owner {
            project: m.project.clone(),
            mark: m.owner_mark.clone(),
        }
    }

    /// Whether this record holds what `policy` compares.
    pub fn knows(&self, policy: Admit) -> bool {
        match policy {
            Admit::Any => true,
            Admit::ComposeProject => self.project.is_some(),
            Admit::Label => self.mark.is_some(),
        }
    }
}

impl Admit {
    /// Why `m` may not join its app, whose recorded owner is `owner` (`None`: not seeded yet),
    /// as the label error to report; `None`: admitted. `owner_label` is `PREFIX.owner`.
    pub fn refusal(self, owner: Option<&Owner>, m: &Member, owner_label: &str) -> Option<LabelError> {
        let (label, theirs, ours) = match self {
            Admit::Any => return None,
            Admit::ComposeProject => (
                PROJECT_LABEL,
                m.project.as_deref(),
                owner.and_then(|o| o.project.as_deref()),
            ),
            Admit::Label => (
                owner_label,
                m.owner_mark.as_deref(),
                owner.and_then(|o| o.mark.as_deref()),
            ),
        };
        let what = match self {
            Admit::ComposeProject => "Compose project",
            _ => "owner mark",
        };
        let how = match self {
            Admit::ComposeProject => "deploy it from that Compose project",
            _ => "give it that owner label",
        };
        let reason = match (theirs, ours) {
            (Some(t), Some(o)) if t == o => return None,
            (Some(_), None) => return None,
            (None, None) => format!(
                "with --admit {self}, only containers with a {what} ({label}) join an app, and this one has none; {how}, or restart pointsman with --admit any --reconfigure to let any container join app {}",
                m.app
            ),
            (theirs, Some(o)) => format!(
                "app {app} belongs to {what} {o} (recorded when it was seeded) and this container's is {}; with --admit {self} only the owner's containers join app {app}: {how} ({label}={o}), or restart pointsman with --admit any --reconfigure to let any container join",
                theirs.map_or_else(|| "missing".to_string(), |t| format!("{t:?}")),
                app = m.app,
            ),
        };
        Some(LabelError {
            container: m.name.clone(),
            label: label.to_string(),
            reason,
        })
    }
}
