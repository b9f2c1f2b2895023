//! The operator's choices that shape how labels are read and what is rendered.
//!
//! Built once from flags and environment (see `cli`), then passed by reference to the pure
//! core; nothing in the core reads the environment.

/// Defaults for labels a container leaves out, and the names pointsman reads labels under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Labels are read as `PREFIX.app`, `PREFIX.version`, …
    pub label_prefix: String,
    /// Entrypoints of the public router when a container has no `entrypoints` label.
    pub entrypoints: Vec<String>,
    /// Entrypoint that serves the candidate on the app's own rule (the port-separation scheme).
    pub preview_entrypoint: Option<String>,
    /// Network to take a container's address from when it has no `network` label.
    pub network: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            label_prefix: "pointsman".into(),
            entrypoints: vec!["web".into()],
            preview_entrypoint: None,
            network: None,
        }
    }
}

impl Settings {
    pub fn label(&self, key: &str) -> String {
        format!("{}.{key}", self.label_prefix)
    }
}
