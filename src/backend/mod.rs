//! Where configuration and state live: the two seams between the core and the outside world.
//!
//! - [`ConfigSink`]: publishes each unit's rendered [`Dynamic`] configuration where Traefik reads
//!   it. Today: a directory for Traefik's file provider ([`dir::DirSink`]). A key/value sink
//!   (Redis, for Traefik's Redis provider) implements the same trait.
//! - [`StateStore`]: the one way to change roles: a transaction over the [`State`]. Today: a
//!   file beside the configuration, under an exclusive lock ([`dir::FileStateStore`]). The
//!   shape also fits an optimistic store (compare-and-set, WATCH/MULTI): the change function is
//!   pure, so a store may run it again on a fresh state when another writer got there first.
//!
//! Both are synchronous: the file edge blocks briefly and the controller runs on one thread;
//! a networked backend can block on its own connection the same way.

pub mod dir;
pub mod foreign;
pub mod redis;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::core::state::State;
use crate::core::traefik::Dynamic;

/// What to publish: unit name (an app outside any Compose project, or `project.NAME` for all
/// the apps of a project, see `core::model::PROJECT_UNIT_PREFIX`) → its configuration, or
/// `None` to remove it. One publish is as atomic as the sink can make it per unit.
pub type Updates = BTreeMap<String, Option<Dynamic>>;

/// What a publish did, by unit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }
}

/// Failures of a backend. None is retried here: the controller logs them and tries again on
/// its next change or tick, the CLI exits 2. A failed write never touches what is serving
/// traffic, and a failed transaction leaves the state as it was.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "cannot use {path} as the Traefik dynamic directory: {source}; check --dir / POINTSMAN_DIR and its permissions"
    )]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: std::io::Error },
    /// Fatal for the controller: routing must not change on a state it cannot read.
    #[error(
        "state file {path} is corrupt: {reason}. pointsman will not reset roles silently; restore it from a backup, or move it aside to re-seed roles from labels"
    )]
    CorruptState { path: PathBuf, reason: String },
    /// A state file that parsed but holds a value pointsman never writes; fatal like a corrupt one.
    #[error("state file {path}: {error}. pointsman will not reset roles silently")]
    InvalidState {
        path: PathBuf,
        error: crate::core::state::Invalid,
    },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}; the previous file is still in place")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot remove {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
    /// Redis could not be reached or refused a command; nothing was committed.
    #[error(transparent)]
    Redis(redis::resp::RedisError),
    /// Fatal for the controller, like a corrupt state file.
    #[error(
        "key {key} in {url} is corrupt: {reason}. pointsman will not reset roles silently; restore it (or delete the key to re-seed roles from labels)"
    )]
    CorruptKey { url: String, key: String, reason: String },
    /// The Redis form of [`BackendError::InvalidState`].
    #[error("key {key} in {url}: {error}. pointsman will not reset roles silently")]
    InvalidKey {
        url: String,
        key: String,
        error: crate::core::state::Invalid,
    },
    /// The leader's lease passed to another controller: this one must not render any more.
    #[error("this controller no longer holds the leader's lease ({}); it stops rendering", holder.as_deref().map_or("nobody holds it now".to_string(), |h| format!("host {h} holds it")))]
    Fenced { holder: Option<String> },
    /// Another writer committed between our read and our write (retried by the store).
    #[error("another writer changed the state at the same time")]
    Conflict,
    /// Too many writers at once: the transaction lost every race.
    #[error("the state changed under this command {attempts} times in a row; run it again")]
    Contended { attempts: usize },
}

/// Publishes rendered configuration where Traefik reads it.
pub trait ConfigSink {
    /// Makes each unit in `updates` publish exactly its configuration (`None`: nothing). A unit
    /// whose published form would not change is not rewritten. Called by a [`StateStore`]
    /// inside its transaction, so writers never interleave.
    fn publish(&mut self, updates: &Updates) -> Result<Changes, BackendError>;
    /// Units currently published, to find those no app renders any more.
    fn published(&mut self) -> Result<BTreeSet<String>, BackendError>;
    /// Forgets what the sink remembers of what it published, so the next publish compares with
    /// the backend itself (after a resync, to repair anything changed behind its back).
    fn forget(&mut self);
}

/// Holds the roles and history; every change goes through [`StateStore::transact`].
pub trait StateStore {
    /// The latest committed state, without taking part in a transaction.
    fn read(&mut self) -> Result<State, BackendError>;

    /// Runs `change` on the latest state and commits what it returns: the new state, and the
    /// configuration `sink` publishes with it (what the sink did is returned beside `T`). Either both happen or neither does (a failed
    /// publish restores the previous state); no other writer's transaction interleaves.
    /// `change` may run more than once (an optimistic store retries on conflict), so it must be
    /// a pure function of the state it is given. An `Err` from it commits nothing.
    fn transact<T, E>(
        &mut self,
        sink: &mut dyn ConfigSink,
        change: impl FnMut(&mut State) -> Result<(T, Updates), E>,
    ) -> Result<(T, Changes), E>
    where
        E: From<BackendError>;
}
