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
    /// Accept rules without a `Host` matcher, which would catch every host on the entrypoint.
    pub allow_catch_all: bool,
    /// When not empty, every host a rule names must match one of these (`a.com` exactly,
    /// `*.a.com` any name under it); an app claiming another host is refused.
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
