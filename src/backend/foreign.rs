//! Files in the dynamic directory that pointsman does not own, checked the way Traefik will
//! read them.
//!
//! Traefik loads every `*.yml`, `*.yaml` and `*.toml` in the directory and its subdirectories,
//! and one invalid file makes it ignore every later change in the directory — pointsman's
//! promotions included. pointsman cannot fix someone else's file, but it can say so loudly:
//! the controller logs each broken file once, and `status` lists them.
//!
//! Checked: the Go template pass (an action `{{` never closed), then YAML or TOML syntax for
//! files without template actions. Not checked: the output of templates, and whether the
//! content is valid Traefik configuration (unknown keys, bad values).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::backend::dir;

/// A foreign file Traefik will fail to load, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BrokenFile {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for BrokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not a file Traefik can load ({}); Traefik ignores every change in this directory, pointsman's included, until it is fixed or removed",
            self.path.display(),
            self.reason
        )
    }
}

/// What a file looked like when last checked, so unchanged files are not re-read.
type Seen = BTreeMap<PathBuf, (SystemTime, u64, Option<String>)>;

/// Remembers file metadata between scans; only new or changed files are read and parsed.
#[derive(Debug, Default)]
pub struct Scanner {
    seen: Seen,
}

impl Scanner {
    /// Every broken foreign file under `dir`, sorted.
    pub fn scan(&mut self, dir: &Path) -> Vec<BrokenFile> {
        let mut now = Seen::new();
        let mut files = Vec::new();
        collect(dir, dir, &mut files);
        for path in files {
            let Ok(meta) = fs::metadata(&path) else { continue };
            let stamp = (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len());
            let verdict = match self.seen.get(&path) {
                Some((m, l, v)) if (*m, *l) == stamp => v.clone(),
                _ => check_file(&path).err(),
            };
            now.insert(path, (stamp.0, stamp.1, verdict));
        }
        self.seen = now;
        self.seen
            .iter()
            .filter_map(|(p, (_, _, v))| {
                v.as_ref().map(|r| BrokenFile {
                    path: p.clone(),
                    reason: r.clone(),
                })
            })
            .collect()
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !(dir == root && name == ".pointsman") {
                collect(root, &path, out);
            }
        } else if is_config_name(&name) && !(dir == root && dir::unit_of_file(&name).is_some()) {
            out.push(path);
        }
    }
}

fn is_config_name(name: &str) -> bool {
    [".yml", ".yaml", ".toml"].iter().any(|ext| name.ends_with(ext))
}

/// Checks one file's text as Traefik would parse it.
pub fn check_file(path: &Path) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    check_text(&text, path.extension().and_then(|e| e.to_str()).unwrap_or(""))
}

pub fn check_text(text: &str, extension: &str) -> Result<(), String> {
    // In a Go template `{{` opens an action that must be closed by `}}`; a lone `}}` is text.
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            let line = text[..text.len() - rest.len() + open].lines().count().max(1);
            return Err(format!("Go template action `{{{{` on line {line} is never closed"));
        };
        rest = &rest[open + 2 + close + 2..];
    }
    if text.contains("{{") {
        // Traefik parses the template's output, which only Traefik can produce.
        return Ok(());
    }
    if extension == "toml" {
        text.parse::<toml::Table>()
            .map(|_| ())
            .map_err(|e| format!("invalid TOML: {}", e.to_string().trim()))
    } else {
        yaml_rust2::YamlLoader::load_from_str(text)
            .map(|_| ())
            .map_err(|e| format!("invalid YAML: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_yaml_toml_and_json_pass() {
        assert_eq!(check_text("http:\n  routers: {}\n", "yml"), Ok(()));
        assert_eq!(check_text("# c\n{\"http\": {\"routers\": {}}}\n", "yml"), Ok(()));
        assert_eq!(check_text("[http.routers.a]\nrule = \"Host(`a`)\"\n", "toml"), Ok(()));
        assert_eq!(check_text("http: {{ if true }}{}{{ end }}\n", "yml"), Ok(()));
    }

    #[test]
    fn broken_files_are_reported_with_a_reason() {
        assert!(
            check_text("http:\n  routers: [\n", "yml")
                .unwrap_err()
                .contains("invalid YAML")
        );
        assert!(check_text("[http\n", "toml").unwrap_err().contains("invalid TOML"));
        assert!(
            check_text("rule: {{ .Name \n", "yml")
                .unwrap_err()
                .contains("never closed")
        );
    }

    #[test]
    fn scanner_skips_owned_files_and_private_dir_and_sees_subdirectories() {
        let d = std::env::temp_dir().join(format!("pointsman-foreign-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join(".pointsman")).unwrap();
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("pointsman-web.yml"), "{{").unwrap();
        fs::write(d.join(".pointsman/x.yml"), "{{").unwrap();
        fs::write(d.join("ok.yml"), "http: {}\n").unwrap();
        fs::write(d.join("notes.txt"), "{{").unwrap();
        fs::write(d.join("sub/bad.yaml"), "a: [\n").unwrap();
        let mut s = Scanner::default();
        let broken = s.scan(&d);
        assert_eq!(broken.len(), 1, "{broken:?}");
        assert!(broken[0].path.ends_with("sub/bad.yaml"));
        assert!(broken[0].to_string().contains("ignores every change"));
        fs::write(d.join("sub/bad.yaml"), "a: []\n").unwrap();
        assert!(s.scan(&d).is_empty(), "a fixed file is no longer reported");
    }
}
