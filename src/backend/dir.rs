//! The file edge: the Traefik dynamic directory, the state file and the lock.
//!
//! Layout of `DIR` (the directory Traefik's file provider watches):
//! - `pointsman-APP.yml`: one file per app, replaced atomically.
//! - `.pointsman/state.json`: the roles (see `state`), beside the config so one volume holds
//!   both.
//! - `.pointsman/lock`: every writer holds an exclusive lock on it while it reads state,
//!   renders and writes, so a CLI change and a controller render never interleave.
//! - `.pointsman/*.tmp`: temp files. They live in a subdirectory because Traefik watches only
//!   the top directory: a temp file created there would fire its own event and use up the
//!   leading edge of Traefik's 2 s `providersThrottleDuration`, delaying the switch by ~2 s.
//!   Traefik does *load* subdirectories, so temp names never end in `.yml`, `.yaml` or `.toml`.
//!
//! Every write is temp file → fsync → rename → fsync directory: Traefik never sees a
//! half-written file (writing in place cost 214 failed requests in 20 flips), and a crash
//! leaves either the old file or the new one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::core::render;
use crate::core::state::{self, State};

/// Failures of the file edge. None is retried here: the controller logs them and tries again
/// on its next change or resync, and the CLI exits 2. A failed write never touches the file
/// that is serving traffic.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot use {path} as the Traefik dynamic directory: {source}; check --dir / POINTSMAN_DIR and its permissions"
    )]
    Dir { path: PathBuf, source: io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "state file {path} is corrupt: {reason}. pointsman will not reset roles silently; restore it from a backup, or move it aside to re-seed roles from labels"
    )]
    CorruptState { path: PathBuf, reason: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}; the previous file is still in place")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

pub struct Store {
    dir: PathBuf,
    private: PathBuf,
}

/// Held while reading state, rendering and writing. Dropping it releases the lock.
pub struct Lock {
    _file: File,
}

/// What a sync did, by file name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

impl Store {
    /// Opens `dir`, creating `dir/.pointsman` if needed. `dir` itself must exist: creating
    /// it would hide a typo in `--dir` behind a directory Traefik never reads.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let meta = fs::metadata(dir).map_err(|source| StoreError::Dir {
            path: dir.into(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(StoreError::Dir {
                path: dir.into(),
                source: io::Error::other("not a directory"),
            });
        }
        let private = dir.join(".pointsman");
        fs::create_dir_all(&private).map_err(|source| StoreError::Dir {
            path: private.clone(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
            private,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.private.join("state.json")
    }

    /// Blocks until this process holds the exclusive lock, then sweeps away temp files that a
    /// killed writer left behind.
    pub fn lock(&self) -> Result<Lock, StoreError> {
        let path = self.private.join("lock");
        // flock works on a read-only descriptor too: on a read-only directory the lock is
        // still taken, so refusals and reads work and only the writes fail, with their path.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        file.lock().map_err(|source| StoreError::Lock { path, source })?;
        self.remove_stale_temps();
        Ok(Lock { _file: file })
    }

    /// Temp files are created only under the lock, so any found by the lock's new holder
    /// belongs to a writer that died between creating and renaming it (SIGKILL, power loss).
    /// Their names carry the dead writer's pid, so without this sweep every such crash would
    /// leave one more file for good. Traefik ignores them (not `*.yml`), so a file that cannot
    /// be removed (read-only directory) is left alone rather than failing the caller.
    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.private) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Reads the state; a missing file is an empty state, a corrupt one an error.
    pub fn load_state(&self, _lock: &Lock) -> Result<State, StoreError> {
        let path = self.state_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if state.format != state::FORMAT {
            return Err(StoreError::CorruptState {
                path,
                reason: format!(
                    "format {} is not {} (written by another pointsman version?)",
                    state.format,
                    state::FORMAT
                ),
            });
        }
        Ok(state)
    }

    /// Writes the state atomically, if it differs from what is on disk.
    pub fn save_state(&self, lock: &Lock, state: &State) -> Result<bool, StoreError> {
        let mut bytes = serde_json::to_vec_pretty(state).expect("state always serialises");
        bytes.push(b'\n');
        self.replace_if_changed(lock, &self.state_path(), &bytes)
    }

    /// Makes the directory hold exactly `files` among the names pointsman owns: writes the
    /// ones whose bytes differ, removes owned files that are no longer wanted. Foreign files
    /// are never touched.
    pub fn sync(&self, lock: &Lock, files: &BTreeMap<String, Vec<u8>>) -> Result<Changes, StoreError> {
        let mut changes = Changes::default();
        for (name, bytes) in files {
            if self.replace_if_changed(lock, &self.dir.join(name), bytes)? {
                changes.written.push(name.clone());
            }
        }
        for name in self.owned_files()? {
            if !files.contains_key(&name) {
                let path = self.dir.join(&name);
                fs::remove_file(&path).map_err(|source| StoreError::Remove { path, source })?;
                changes.removed.push(name);
            }
        }
        if !changes.removed.is_empty() {
            sync_dir(&self.dir).map_err(|source| StoreError::Write {
                path: self.dir.clone(),
                source,
            })?;
        }
        Ok(changes)
    }

    /// Like [`Store::sync`] for one app's file only: written if `bytes` is given and differs,
    /// removed if `bytes` is `None`. Other apps' files are left as they are.
    pub fn sync_app(&self, lock: &Lock, app: &str, bytes: Option<&[u8]>) -> Result<Changes, StoreError> {
        let name = render::file_name(app);
        let path = self.dir.join(&name);
        let mut changes = Changes::default();
        match bytes {
            Some(b) => {
                if self.replace_if_changed(lock, &path, b)? {
                    changes.written.push(name);
                }
            }
            None => match fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&self.dir).map_err(|source| StoreError::Write {
                        path: self.dir.clone(),
                        source,
                    })?;
                    changes.removed.push(name);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Remove { path, source }),
            },
        }
        Ok(changes)
    }

    /// Names of the files pointsman owns in the directory, sorted.
    pub fn owned_files(&self) -> Result<Vec<String>, StoreError> {
        let read_err = |source| StoreError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            if let Some(name) = entry.file_name().to_str()
                && render::app_of_file(name).is_some()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Current bytes of an owned file, if present.
    pub fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read { path, source }),
        }
    }

    fn replace_if_changed(&self, _lock: &Lock, path: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
        match fs::read(path) {
            Ok(current) if current == bytes => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.into(),
                    source,
                });
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = self.private.join(format!("{name}.{}.tmp", std::process::id()));
        let result = write_atomically(&tmp, path, bytes);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|source| StoreError::Write {
            path: path.into(),
            source,
        })?;
        Ok(true)
    }
}

fn write_atomically(tmp: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, dest)?;
    sync_dir(dest.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pointsman-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn identical_bytes_are_not_rewritten_and_vanished_apps_are_removed() {
        let d = scratch("sync");
        fs::write(d.join("other.yml"), "http: {}\n").unwrap();
        let store = Store::open(&d).unwrap();
        let lock = store.lock().unwrap();
        let mut files = BTreeMap::from([
            ("pointsman-a.yml".to_string(), b"a\n".to_vec()),
            ("pointsman-b.yml".to_string(), b"b\n".to_vec()),
        ]);
        let first = store.sync(&lock, &files).unwrap();
        assert_eq!(first.written, ["pointsman-a.yml", "pointsman-b.yml"]);
        let before = fs::metadata(d.join("pointsman-a.yml")).unwrap().modified().unwrap();
        files.remove("pointsman-b.yml");
        let second = store.sync(&lock, &files).unwrap();
        assert_eq!(
            second,
            Changes {
                written: vec![],
                removed: vec!["pointsman-b.yml".into()]
            }
        );
        assert_eq!(
            fs::metadata(d.join("pointsman-a.yml")).unwrap().modified().unwrap(),
            before
        );
        assert!(d.join("other.yml").exists(), "foreign files are never touched");
        let leftovers: Vec<_> = fs::read_dir(d.join(".pointsman"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("lock")],
            "no temp file is left behind"
        );
    }

    #[test]
    fn temp_files_a_killed_writer_left_are_removed_by_the_next_lock_holder() {
        let d = scratch("stale-temps");
        let store = Store::open(&d).unwrap();
        let stale = d.join(".pointsman/pointsman-web.yml.4242.tmp");
        fs::write(&stale, "{\"http\": {").unwrap();
        fs::write(store.state_path(), "{\"format\": 1}").unwrap();
        let _lock = store.lock().unwrap();
        assert!(!stale.exists(), "a temp file found under the lock is stale");
        assert!(store.state_path().exists(), "only temp files are swept");
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let d = scratch("corrupt");
        let store = Store::open(&d).unwrap();
        fs::write(store.state_path(), "{\"format\": 1, \"apps\": {").unwrap();
        let lock = store.lock().unwrap();
        let err = store.load_state(&lock).unwrap_err();
        assert!(matches!(err, StoreError::CorruptState { .. }));
        assert!(err.to_string().contains(&store.state_path().display().to_string()));
    }

    #[test]
    fn missing_state_is_empty_and_saving_twice_writes_once() {
        let d = scratch("state");
        let store = Store::open(&d).unwrap();
        let lock = store.lock().unwrap();
        let mut s = store.load_state(&lock).unwrap();
        assert_eq!(s, State::default());
        s.apps.insert("web".into(), Default::default());
        assert!(store.save_state(&lock, &s).unwrap());
        assert!(!store.save_state(&lock, &s).unwrap());
        assert_eq!(store.load_state(&lock).unwrap(), s);
    }

    #[test]
    fn a_missing_directory_is_refused_not_created() {
        let d = scratch("missing").join("nope");
        assert!(matches!(Store::open(&d), Err(StoreError::Dir { .. })));
        assert!(!d.exists());
    }
}
