//! The directory backend: Traefik's file-provider directory holds the configuration, and a
//! private subdirectory the state and the lock.
//!
//! Layout of `DIR` (the directory Traefik's file provider watches):
//! - `pointsman-UNIT.yml`: one file per unit, replaced atomically ([`DirSink`]). A unit is an
//!   app (`pointsman-web.yml`), or every app of a Compose project (`pointsman-project.shop.yml`):
//!   Traefik applies one renamed file at once but a second one only a throttle (2 s) later, so
//!   apps released together must live in one file for a project-wide change to be one reload.
//! - `.pointsman/state.json`: the roles (see `core::state`), beside the config so one volume
//!   holds both ([`FileStateStore`]).
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

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{BackendError, Changes, ConfigSink, StateStore, Updates};
use crate::core::state::{self, State};
use crate::core::traefik::Dynamic;

/// Files are named `pointsman-UNIT.yml`; pointsman owns every file matching this whose UNIT is
/// an app name or `project.PROJECT`.
pub const FILE_PREFIX: &str = "pointsman-";
pub const FILE_SUFFIX: &str = ".yml";

const HEADER_LINE: &str = "# Written by pointsman; edits are overwritten. Roles: `pointsman status`.\n";

/// The file of a unit (an app's name, or `project.PROJECT`).
pub fn file_name(unit: &str) -> String {
    format!("{FILE_PREFIX}{unit}{FILE_SUFFIX}")
}

/// The unit a file name belongs to, if pointsman owns that name.
pub fn unit_of_file(name: &str) -> Option<&str> {
    name.strip_prefix(FILE_PREFIX)?
        .strip_suffix(FILE_SUFFIX)
        .filter(|unit| match crate::core::model::unit_project(unit) {
            Some(project) => crate::core::labels::is_project_name(project),
            None => crate::core::labels::is_dns_label(unit),
        })
}

/// The bytes of a unit's file: one comment line, then JSON (which is YAML; Traefik reads it).
/// serde_json is deterministic here (the model's maps are sorted), so identical configuration
/// gives identical bytes.
pub fn encode(config: &Dynamic) -> Vec<u8> {
    let mut out = HEADER_LINE.as_bytes().to_vec();
    serde_json::to_writer_pretty(&mut out, config).expect("the configuration model always serialises");
    out.push(b'\n');
    out
}

/// The directory and its private subdirectory.
#[derive(Debug, Clone)]
pub struct Dir {
    dir: PathBuf,
    private: PathBuf,
}

/// Held while reading state, rendering and writing. Dropping it releases the lock.
pub struct Lock {
    _file: File,
}

impl Dir {
    /// Opens `dir`, creating `dir/.pointsman` if needed. `dir` itself must exist: creating
    /// it would hide a typo in `--dir` behind a directory Traefik never reads.
    pub fn open(dir: &Path) -> Result<Dir, BackendError> {
        let meta = fs::metadata(dir).map_err(|source| BackendError::Dir {
            path: dir.into(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(BackendError::Dir {
                path: dir.into(),
                source: io::Error::other("not a directory"),
            });
        }
        let private = dir.join(".pointsman");
        fs::create_dir_all(&private).map_err(|source| BackendError::Dir {
            path: private.clone(),
            source,
        })?;
        Ok(Dir {
            dir: dir.to_path_buf(),
            private,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.private.join("state.json")
    }

    /// Blocks until this process holds the exclusive lock, then sweeps away temp files that a
    /// killed writer left behind.
    pub fn lock(&self) -> Result<Lock, BackendError> {
        let path = self.private.join("lock");
        // flock works on a read-only descriptor too: on a read-only directory the lock is
        // still taken, so refusals and reads work and only the writes fail, with their path.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(|source| BackendError::Lock {
                path: path.clone(),
                source,
            })?;
        file.lock().map_err(|source| BackendError::Lock { path, source })?;
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

    /// Names of the files pointsman owns in the directory, sorted.
    pub fn owned_files(&self) -> Result<Vec<String>, BackendError> {
        let read_err = |source| BackendError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            if let Some(name) = entry.file_name().to_str()
                && unit_of_file(name).is_some()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Current bytes of a file in the directory, if present.
    pub fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(BackendError::Read { path, source }),
        }
    }

    /// Replaces `path` atomically with `bytes` unless it already holds them. `Ok(false)`:
    /// nothing to do.
    fn replace_if_changed(&self, path: &Path, bytes: &[u8]) -> Result<bool, BackendError> {
        match fs::read(path) {
            Ok(current) if current == bytes => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BackendError::Read {
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
        result.map_err(|source| BackendError::Write {
            path: path.into(),
            source,
        })?;
        Ok(true)
    }

    fn remove(&self, name: &str) -> Result<bool, BackendError> {
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(BackendError::Remove { path, source }),
        }
    }
}

/// Publishes each unit as `DIR/pointsman-UNIT.yml`.
///
/// Remembers a hash of what it last wrote per app, so the controller's publish of an unchanged
/// app costs no disk read. When the hash differs it still compares with the file on disk
/// before writing (another writer, the CLI, may already have written those bytes), so Traefik
/// sees a rename only for a real change. [`ConfigSink::forget`] drops the hashes.
#[derive(Debug)]
pub struct DirSink {
    dir: Dir,
    written: HashMap<String, u64>,
}

impl DirSink {
    pub fn new(dir: &Dir) -> DirSink {
        DirSink {
            dir: dir.clone(),
            written: HashMap::new(),
        }
    }
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl ConfigSink for DirSink {
    fn publish(&mut self, updates: &Updates) -> Result<Changes, BackendError> {
        let mut changes = Changes::default();
        // Writes before removals: an app moving into another unit (into its project's) is
        // never missing from every file in between.
        for (unit, config) in updates {
            let Some(config) = config else { continue };
            let name = file_name(unit);
            let bytes = encode(config);
            let d = digest(&bytes);
            if self.written.get(unit) == Some(&d) {
                continue;
            }
            if self.dir.replace_if_changed(&self.dir.dir.join(&name), &bytes)? {
                changes.written.push(name);
            }
            self.written.insert(unit.clone(), d);
        }
        for unit in updates.iter().filter(|(_, c)| c.is_none()).map(|(u, _)| u) {
            self.written.remove(unit);
            let name = file_name(unit);
            if self.dir.remove(&name)? {
                changes.removed.push(name);
            }
        }
        if !changes.removed.is_empty() {
            sync_dir(&self.dir.dir).map_err(|source| BackendError::Write {
                path: self.dir.dir.clone(),
                source,
            })?;
        }
        Ok(changes)
    }

    fn published(&mut self) -> Result<BTreeSet<String>, BackendError> {
        Ok(self
            .dir
            .owned_files()?
            .iter()
            .filter_map(|n| unit_of_file(n).map(str::to_string))
            .collect())
    }

    fn forget(&mut self) {
        self.written.clear();
    }
}

/// The state in `DIR/.pointsman/state.json`, changed under `DIR/.pointsman/lock`.
///
/// It keeps the bytes it last read and their parse, so a transaction on an unchanged file
/// (the controller's, on every event) reads the file but parses nothing.
#[derive(Debug)]
pub struct FileStateStore {
    dir: Dir,
    cache: Option<(Vec<u8>, State)>,
}

impl FileStateStore {
    pub fn new(dir: &Dir) -> FileStateStore {
        FileStateStore {
            dir: dir.clone(),
            cache: None,
        }
    }

    /// Reads the state; a missing file is an empty state, a corrupt one an error.
    fn load(&mut self) -> Result<State, BackendError> {
        let path = self.dir.state_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(BackendError::Read { path, source }),
        };
        if let Some((cached, state)) = &self.cache
            && *cached == bytes
        {
            return Ok(state.clone());
        }
        let state = parse_state(&path, &bytes)?;
        self.cache = Some((bytes, state.clone()));
        Ok(state)
    }

    /// Writes the state atomically. The cache follows what is on disk.
    fn save(&mut self, state: &State) -> Result<(), BackendError> {
        let mut bytes = serde_json::to_vec_pretty(state).expect("state always serialises");
        bytes.push(b'\n');
        self.dir.replace_if_changed(&self.dir.state_path(), &bytes)?;
        self.cache = Some((bytes, state.clone()));
        Ok(())
    }
}

/// Parses and validates a state file's bytes (`path` names it in errors); empty bytes are an
/// empty state. Public for the fuzz target (`fuzz/`).
pub fn parse_state(path: &Path, bytes: &[u8]) -> Result<State, BackendError> {
    if bytes.is_empty() {
        return Ok(State::default());
    }
    let mut state: State = serde_json::from_slice(bytes).map_err(|e| BackendError::CorruptState {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if !(1..=state::FORMAT).contains(&state.format) {
        return Err(BackendError::CorruptState {
            path: path.into(),
            reason: format!(
                "format {} is not one this pointsman reads (1 to {}); was it written by a newer pointsman?",
                state.format,
                state::FORMAT
            ),
        });
    }
    state.validate().map_err(|error| BackendError::InvalidState {
        path: path.into(),
        error,
    })?;
    state.format = state::FORMAT;
    Ok(state)
}

impl StateStore for FileStateStore {
    fn read(&mut self) -> Result<State, BackendError> {
        // Writes are atomic renames, so reading without the lock sees one whole version.
        self.load()
    }

    fn transact<T, E>(
        &mut self,
        sink: &mut dyn ConfigSink,
        mut change: impl FnMut(&mut State) -> Result<(T, Updates), E>,
    ) -> Result<(T, Changes), E>
    where
        E: From<BackendError>,
    {
        let _lock = self.dir.lock()?;
        let before = self.load()?;
        let mut state = before.clone();
        let (out, updates) = change(&mut state)?;
        let changed = state != before;
        // State first: if the process dies before the files are written, the next render (by
        // anyone) converges the files to the new state instead of reverting the change.
        if changed {
            self.save(&state)?;
        }
        match sink.publish(&updates) {
            Ok(changes) => Ok((out, changes)),
            Err(e) => {
                // Undo the role change so the error means "nothing happened"; if even that
                // fails, the next render applies the saved state.
                if changed {
                    let _ = self.save(&before);
                }
                Err(e.into())
            }
        }
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
    use crate::core::traefik::Service;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pointsman-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn config(url: &str) -> Option<Dynamic> {
        let mut d = Dynamic::default();
        d.http
            .services
            .insert("x".into(), Service::load_balancer([url.to_string()]));
        Some(d)
    }

    #[test]
    fn identical_bytes_are_not_rewritten_and_vanished_apps_are_removed() {
        let d = scratch("sync");
        fs::write(d.join("other.yml"), "http: {}\n").unwrap();
        let dir = Dir::open(&d).unwrap();
        let mut sink = DirSink::new(&dir);
        let _lock = dir.lock().unwrap();
        let first = sink
            .publish(&Updates::from([
                ("a".into(), config("http://a")),
                ("b".into(), config("http://b")),
            ]))
            .unwrap();
        assert_eq!(first.written, ["pointsman-a.yml", "pointsman-b.yml"]);
        assert_eq!(sink.published().unwrap(), BTreeSet::from(["a".into(), "b".into()]));
        let before = fs::metadata(d.join("pointsman-a.yml")).unwrap().modified().unwrap();
        let second = sink
            .publish(&Updates::from([("a".into(), config("http://a")), ("b".into(), None)]))
            .unwrap();
        assert_eq!(
            second,
            Changes {
                written: vec![],
                removed: vec!["pointsman-b.yml".into()]
            }
        );
        sink.forget();
        assert!(
            sink.publish(&Updates::from([("a".into(), config("http://a"))]))
                .unwrap()
                .is_empty()
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
    fn project_units_are_owned_and_other_dotted_names_are_not() {
        assert_eq!(unit_of_file("pointsman-web.yml"), Some("web"));
        assert_eq!(unit_of_file("pointsman-project.shop_1.yml"), Some("project.shop_1"));
        assert_eq!(file_name("project.shop"), "pointsman-project.shop.yml");
        for foreign in [
            "pointsman-web.v2.yml",
            "pointsman-project..yml",
            "pointsman-Project.x.yml",
            "pointsman-.yml",
        ] {
            assert_eq!(unit_of_file(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_file_changed_behind_the_sinks_back_is_repaired_after_forget() {
        let d = scratch("repair");
        let dir = Dir::open(&d).unwrap();
        let mut sink = DirSink::new(&dir);
        let want = Updates::from([("a".into(), config("http://a"))]);
        sink.publish(&want).unwrap();
        fs::write(d.join("pointsman-a.yml"), "tampered").unwrap();
        assert!(
            sink.publish(&want).unwrap().is_empty(),
            "the remembered hash skips the disk"
        );
        sink.forget();
        assert_eq!(sink.publish(&want).unwrap().written, ["pointsman-a.yml"]);
    }

    #[test]
    fn temp_files_a_killed_writer_left_are_removed_by_the_next_lock_holder() {
        let d = scratch("stale-temps");
        let dir = Dir::open(&d).unwrap();
        let stale = d.join(".pointsman/pointsman-web.yml.4242.tmp");
        fs::write(&stale, "{\"http\": {").unwrap();
        fs::write(dir.state_path(), "{\"format\": 1}").unwrap();
        let _lock = dir.lock().unwrap();
        assert!(!stale.exists(), "a temp file found under the lock is stale");
        assert!(dir.state_path().exists(), "only temp files are swept");
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file_and_nothing_is_written() {
        let d = scratch("corrupt");
        let dir = Dir::open(&d).unwrap();
        fs::write(dir.state_path(), "{\"format\": 1, \"apps\": {").unwrap();
        let mut store = FileStateStore::new(&dir);
        let err = store.read().unwrap_err();
        assert!(matches!(err, BackendError::CorruptState { .. }));
        assert!(err.to_string().contains(&dir.state_path().display().to_string()));
        let mut sink = DirSink::new(&dir);
        let r: Result<((), Changes), BackendError> = store.transact(&mut sink, |_| {
            Ok(((), Updates::from([("a".into(), config("http://a"))])))
        });
        assert!(matches!(r, Err(BackendError::CorruptState { .. })));
        assert!(!d.join("pointsman-a.yml").exists());
    }

    #[test]
    fn a_transaction_commits_state_and_files_together_or_not_at_all() {
        let d = scratch("transact");
        let dir = Dir::open(&d).unwrap();
        let mut store = FileStateStore::new(&dir);
        let mut sink = DirSink::new(&dir);
        assert_eq!(store.read().unwrap(), State::default());
        store
            .transact(&mut sink, |s| {
                s.apps.insert("web".into(), Default::default());
                Ok::<_, BackendError>(((), Updates::from([("web".into(), config("http://a"))])))
            })
            .unwrap();
        let committed = store.read().unwrap();
        assert!(committed.apps.contains_key("web"));
        // A refusal (an Err from the change) commits nothing.
        let r: Result<((), Changes), String> = store.transact(&mut sink, |s| {
            s.apps.clear();
            Err("refused".to_string())
        });
        assert!(r.is_err());
        assert_eq!(FileStateStore::new(&dir).read().unwrap(), committed);
        // A failed publish restores the state.
        struct Broken;
        impl ConfigSink for Broken {
            fn publish(&mut self, _: &Updates) -> Result<Changes, BackendError> {
                Err(BackendError::Write {
                    path: "x".into(),
                    source: io::Error::other("disk full"),
                })
            }
            fn published(&mut self) -> Result<BTreeSet<String>, BackendError> {
                Ok(BTreeSet::new())
            }
            fn forget(&mut self) {}
        }
        let r: Result<((), Changes), BackendError> = store.transact(&mut Broken, |s| {
            s.apps.clear();
            Ok(((), Updates::new()))
        });
        assert!(r.is_err());
        assert_eq!(FileStateStore::new(&dir).read().unwrap(), committed);
    }

    impl From<BackendError> for String {
        fn from(e: BackendError) -> String {
            e.to_string()
        }
    }

    #[test]
    fn a_version_one_state_file_is_read_and_upgraded() {
        let d = scratch("v1");
        let dir = Dir::open(&d).unwrap();
        fs::write(
            dir.state_path(),
            r#"{"format": 1, "apps": {"web": {"stable": "blue"}}, "history": []}"#,
        )
        .unwrap();
        let s = FileStateStore::new(&dir).read().unwrap();
        assert_eq!(s.format, state::FORMAT);
        assert_eq!(s.roles("web").stable.as_deref(), Some("blue"));
        fs::write(dir.state_path(), r#"{"format": 99}"#).unwrap();
        let err = FileStateStore::new(&dir).read().unwrap_err().to_string();
        assert!(err.contains("format 99"), "{err}");
    }

    #[test]
    fn a_missing_directory_is_refused_not_created() {
        let d = scratch("missing").join("nope");
        assert!(matches!(Dir::open(&d), Err(BackendError::Dir { .. })));
        assert!(!d.exists());
    }
}
