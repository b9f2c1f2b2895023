//! The Redis backend: several hosts, one release. Every host's Traefik reads its configuration
//! with the Redis provider; roles, history and each host's containers live beside it.
//!
//! Keys (a `pointsman/` prefix for ours, Traefik's `rootKey` for the configuration):
//! - `pointsman/state`: the [`State`] as JSON (the same document as the directory backend's
//!   `state.json`), changed with WATCH/MULTI/EXEC ([`RedisStore`]): a writer that lost a race
//!   runs its pure change function again on the new state, so no update is lost.
//! - `pointsman/members/HOST`: the containers one host's controller sees, with a lease (PX):
//!   when the host dies they expire and the leader renders without them.
//! - `pointsman/leader`: which controller renders (a random token per term, with a lease), and
//!   `pointsman/epoch`, counted up at each new term. The leader's transactions WATCH it: one
//!   that lost the lease cannot commit (fencing).
//! - `pointsman/config/UNIT`: the keys and values last published for a unit, so a change
//!   writes only what differs and deletes what is gone in the same transaction.
//! - `ROOT/http/...`: Traefik's keys ([`flatten`]), plus one anchor key that is always there:
//!   Traefik's Redis provider never applies the deletion of *every* key under its root (it
//!   keeps serving the last configuration), so an empty fleet must still leave a key behind.

pub mod resp;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use self::resp::{Client, Cmd, RedisError, RedisUrl, Value, cmd};
use super::{BackendError, Changes, ConfigSink, StateStore, Updates};
use crate::core::container::Container;
use crate::core::state::{self, State};
use crate::core::traefik::Dynamic;

pub const STATE_KEY: &str = "pointsman/state";
pub const MEMBERS_PREFIX: &str = "pointsman/members/";
pub const LEADER_KEY: &str = "pointsman/leader";
pub const EPOCH_KEY: &str = "pointsman/epoch";
pub const CONFIG_PREFIX: &str = "pointsman/config/";
/// Most keys one SCAN may return: a unit or a host per key, far past any real fleet.
const MAX_SCANNED_KEYS: usize = 1_000_000;
/// Traefik's default `providers.redis.rootKey`.
pub const DEFAULT_ROOT_KEY: &str = "traefik";
/// Relative to the root key: an unused middleware that keeps the root from ever being empty.
pub const ANCHOR: &str = "http/middlewares/pointsman-anchor/headers/customRequestHeaders/X-Pointsman-Anchor";

/// How many times a transaction is run again after another writer got there first.
const ATTEMPTS: usize = 100;

impl From<RedisError> for BackendError {
    fn from(e: RedisError) -> BackendError {
        BackendError::Redis(e)
    }
}

/// Traefik's keys for one unit of configuration, relative to the root key: every scalar of
/// the file provider's document under its path (`http/routers/web/rule`), list items under
/// their index (`entryPoints/0`). An empty server list, which has no key of its own, is kept
/// as `loadBalancer/passHostHeader = true` (Traefik's default anyway), so the service exists
/// and answers 503 as it does from a file, instead of vanishing (404).
pub fn flatten(config: &Dynamic) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let value = serde_json::to_value(config).expect("the configuration model always serialises");
    walk(&value, String::new(), &mut out);
    out
}

fn walk(v: &serde_json::Value, path: String, out: &mut BTreeMap<String, String>) {
    use serde_json::Value as J;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}/{k}")
        }
    };
    match v {
        J::Object(map) => {
            for (k, v) in map {
                if k == "loadBalancer" && v.get("servers").and_then(J::as_array).is_some_and(Vec::is_empty) {
                    out.insert(format!("{}/passHostHeader", join(k)), "true".into());
                    continue;
                }
                walk(v, join(k), out);
            }
        }
        J::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, join(&i.to_string()), out);
            }
        }
        J::String(s) => {
            out.insert(path, s.clone());
        }
        J::Bool(b) => {
            out.insert(path, b.to_string());
        }
        J::Number(n) => {
            out.insert(path, n.to_string());
        }
        J::Null => {}
    }
}

/// What one host publishes: the containers its controller sees (in its `--scope`), with the
/// addresses other hosts reach them at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub host: String,
    pub containers: Vec<Container>,
}

/// A connection shared by a [`RedisStore`] and its [`RedisSink`], so the state and the
/// configuration of one change go into one MULTI/EXEC, and commands the store queued for it.
struct Shared {
    client: Client,
    /// Commands the store's transaction wants in the sink's MULTI (the new state).
    queued: Vec<Cmd>,
}

/// One Redis, seen from one process.
#[derive(Clone)]
pub struct Redis {
    shared: Arc<Mutex<Shared>>,
    url: RedisUrl,
}

impl Redis {
    /// Nothing is dialled until the first command.
    pub fn new(url: RedisUrl) -> Redis {
        Redis {
            shared: Arc::new(Mutex::new(Shared {
                client: Client::new(url.clone()),
                queued: Vec::new(),
            })),
            url,
        }
    }

    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn call(&self, command: &Cmd) -> Result<Value, RedisError> {
        self.lock().client.call(command)
    }

    pub fn store(&self) -> RedisStore {
        RedisStore {
            redis: self.clone(),
            fence: None,
            memory: None,
        }
    }

    pub fn sink(&self, root_key: &str) -> RedisSink {
        RedisSink {
            redis: self.clone(),
            root: root_key.trim_end_matches('/').to_string(),
            published: None,
            anchored: false,
        }
    }

    /// Every host's published containers, by host.
    pub fn members(&self) -> Result<BTreeMap<String, Members>, RedisError> {
        let keys = self.scan(&format!("{MEMBERS_PREFIX}*"))?;
        let mut out = BTreeMap::new();
        if keys.is_empty() {
            return Ok(out);
        }
        let values = self.call(&cmd(std::iter::once("MGET".to_string()).chain(keys.iter().cloned())))?;
        for (key, value) in keys.iter().zip(values.into_array()) {
            // SCAN MATCH returns only such keys from a real Redis; anything else is skipped.
            let (Some(host), Some(bytes)) = (key.strip_prefix(MEMBERS_PREFIX), value.into_bytes()) else {
                continue;
            };
            match serde_json::from_slice::<Members>(&bytes) {
                Ok(m) => {
                    out.insert(host.to_string(), m);
                }
                Err(e) => tracing::warn!(key, "ignoring a members key pointsman cannot read: {e}"),
            }
        }
        Ok(out)
    }

    /// Every container of every host, each once.
    pub fn all_containers(&self) -> Result<Vec<Container>, RedisError> {
        let mut seen = BTreeSet::new();
        Ok(self
            .members()?
            .into_values()
            .flat_map(|m| m.containers)
            .filter(|c| seen.insert(c.id.clone()))
            .collect())
    }

    /// Publishes this host's containers, to expire after `lease` unless published again.
    pub fn publish_members(&self, members: &Members, lease: std::time::Duration) -> Result<(), RedisError> {
        let json = serde_json::to_vec(members).expect("containers always serialise");
        let key = format!("{MEMBERS_PREFIX}{}", members.host);
        let ms = lease.as_millis().to_string();
        self.call(&vec![
            b"SET".to_vec(),
            key.into_bytes(),
            json,
            b"PX".to_vec(),
            ms.into_bytes(),
        ])?;
        Ok(())
    }

    /// Keys matching `pattern` (SCAN, so a large keyspace is not blocked).
    pub fn scan(&self, pattern: &str) -> Result<Vec<String>, RedisError> {
        let mut keys = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = self.call(&cmd(["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]))?;
            let mut parts = reply.into_array().into_iter();
            cursor = parts.next().and_then(Value::into_string).unwrap_or_else(|| "0".into());
            keys.extend(
                parts
                    .next()
                    .map(Value::into_array)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(Value::into_string),
            );
            if cursor == "0" {
                break;
            }
            // A server whose cursor never returns to 0 (or a keyspace far past anything
            // pointsman writes) is an error, not an endless loop that grows the list.
            if keys.len() > MAX_SCANNED_KEYS {
                return Err(RedisError::Protocol {
                    url: self.url().to_string(),
                    what: format!("SCAN {pattern} returned more than {MAX_SCANNED_KEYS} keys without finishing"),
                });
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The controller holding the lease: `(host, token)`.
    pub fn leader(&self) -> Result<Option<String>, RedisError> {
        Ok(self.call(&cmd(["GET", LEADER_KEY]))?.into_string())
    }

    /// Takes the lease if nobody holds it: `Some(epoch)` of the new term.
    pub fn try_lead(&self, token: &str, lease: std::time::Duration) -> Result<Option<i64>, RedisError> {
        let ms = lease.as_millis().to_string();
        self.lock().client.with(|c| {
            c.call(&cmd(["WATCH", LEADER_KEY]))?;
            if c.call(&cmd(["GET", LEADER_KEY]))? != Value::Nil {
                c.call(&cmd(["UNWATCH"]))?;
                return Ok(None);
            }
            let replies = c.pipeline(&[
                cmd(["MULTI"]),
                cmd(["SET", LEADER_KEY, token, "PX", &ms]),
                cmd(["INCR", EPOCH_KEY]),
                cmd(["EXEC"]),
            ])?;
            match replies.into_iter().last() {
                Some(Value::Array(done)) => Ok(done.into_iter().nth(1).and_then(|e| match e {
                    Value::Int(n) => Some(n),
                    _ => None,
                })),
                Some(Value::Error(e)) => Err(c.refused(&cmd(["EXEC"]), e)),
                _ => Ok(None),
            }
        })
    }

    /// Extends the lease if `token` still holds it; `false`: it was lost.
    pub fn renew(&self, token: &str, lease: std::time::Duration) -> Result<bool, RedisError> {
        let ms = lease.as_millis().to_string();
        self.lock().client.with(|c| {
            c.call(&cmd(["WATCH", LEADER_KEY]))?;
            if c.call(&cmd(["GET", LEADER_KEY]))?.into_string().as_deref() != Some(token) {
                c.call(&cmd(["UNWATCH"]))?;
                return Ok(false);
            }
            let replies = c.pipeline(&[cmd(["MULTI"]), cmd(["PEXPIRE", LEADER_KEY, &ms]), cmd(["EXEC"])])?;
            Ok(matches!(replies.last(), Some(Value::Array(_))))
        })
    }

    /// Gives the lease up (on shutdown), if `token` still holds it.
    pub fn resign(&self, token: &str) -> Result<(), RedisError> {
        self.lock().client.with(|c| {
            c.call(&cmd(["WATCH", LEADER_KEY]))?;
            if c.call(&cmd(["GET", LEADER_KEY]))?.into_string().as_deref() != Some(token) {
                c.call(&cmd(["UNWATCH"]))?;
                return Ok(());
            }
            c.pipeline(&[cmd(["MULTI"]), cmd(["DEL", LEADER_KEY]), cmd(["EXEC"])])?;
            Ok(())
        })
    }
}

/// Roles and history in `pointsman/state`, changed optimistically (WATCH/MULTI/EXEC).
pub struct RedisStore {
    redis: Redis,
    /// The leader's term: its transactions commit only while `pointsman/leader` holds it.
    fence: Option<String>,
    /// The last state this store saw, shared across terms: if Redis comes back empty (restarted
    /// without persistence), the roles and history are restored from it instead of re-seeded.
    memory: Option<Arc<Mutex<Option<State>>>>,
}

impl RedisStore {
    /// Commits only while `token` holds the leader's lease.
    pub fn fenced(mut self, token: &str) -> RedisStore {
        self.fence = Some(token.to_string());
        self
    }

    /// Remembers the state in `memory` (kept by the caller across terms).
    pub fn remembering(mut self, memory: Arc<Mutex<Option<State>>>) -> RedisStore {
        self.memory = Some(memory);
        self
    }

    fn parse(&self, bytes: Option<Vec<u8>>) -> Result<State, BackendError> {
        let Some(bytes) = bytes else {
            if let Some(memory) = &self.memory
                && let Some(state) = memory.lock().unwrap_or_else(|p| p.into_inner()).clone()
            {
                tracing::warn!(
                    "{} has no {STATE_KEY} (Redis restarted without persistence?); restoring the roles and history this controller last saw",
                    self.redis.url
                );
                return Ok(state);
            }
            return Ok(State::default());
        };
        let corrupt = |reason: String| BackendError::CorruptKey {
            url: self.redis.url.to_string(),
            key: STATE_KEY.into(),
            reason,
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if !(1..=state::FORMAT).contains(&state.format) {
            return Err(corrupt(format!(
                "format {} is not one this pointsman reads (1 to {}); was it written by a newer pointsman?",
                state.format,
                state::FORMAT
            )));
        }
        state.validate().map_err(|error| BackendError::InvalidKey {
            url: self.redis.url.to_string(),
            key: STATE_KEY.into(),
            error,
        })?;
        Ok(state)
    }

    fn remember(&self, state: &State) {
        if let Some(memory) = &self.memory {
            *memory.lock().unwrap_or_else(|p| p.into_inner()) = Some(state.clone());
        }
    }
}

impl StateStore for RedisStore {
    fn read(&mut self) -> Result<State, BackendError> {
        let bytes = self.redis.call(&cmd(["GET", STATE_KEY]))?.into_bytes();
        self.parse(bytes)
    }

    fn transact<T, E>(
        &mut self,
        sink: &mut dyn ConfigSink,
        mut change: impl FnMut(&mut State) -> Result<(T, Updates), E>,
    ) -> Result<(T, Changes), E>
    where
        E: From<BackendError>,
    {
        for attempt in 0..ATTEMPTS {
            // WATCH, then read: a commit by anyone else between here and EXEC aborts ours.
            let (bytes, held) = {
                let mut shared = self.redis.lock();
                let fence = self.fence.clone();
                shared
                    .client
                    .with(|c| {
                        let mut watch = cmd(["WATCH", STATE_KEY]);
                        if fence.is_some() {
                            watch.push(LEADER_KEY.into());
                        }
                        c.call(&watch)?;
                        let bytes = c.call(&cmd(["GET", STATE_KEY]))?.into_bytes();
                        let held = match &fence {
                            Some(_) => c.call(&cmd(["GET", LEADER_KEY]))?.into_string(),
                            None => None,
                        };
                        Ok((bytes, held))
                    })
                    .map_err(BackendError::from)?
            };
            if let Some(token) = &self.fence
                && held.as_deref() != Some(token.as_str())
            {
                let _ = self.redis.call(&cmd(["UNWATCH"]));
                return Err(BackendError::Fenced {
                    holder: held.and_then(|t| t.split_once('/').map(|(h, _)| h.to_string())),
                }
                .into());
            }
            let existed = bytes.is_some();
            let before = match self.parse(bytes) {
                Ok(s) => s,
                Err(e) => {
                    let _ = self.redis.call(&cmd(["UNWATCH"]));
                    return Err(e.into());
                }
            };
            let mut state = before.clone();
            let (out, updates) = match change(&mut state) {
                Ok(done) => done,
                Err(e) => {
                    let _ = self.redis.call(&cmd(["UNWATCH"]));
                    return Err(e);
                }
            };
            {
                let mut shared = self.redis.lock();
                if state != before || !existed {
                    let json = serde_json::to_vec(&state).expect("state always serialises");
                    shared
                        .queued
                        .push(vec![b"SET".to_vec(), STATE_KEY.as_bytes().to_vec(), json]);
                }
            }
            // A Redis sink flushes the queue in its MULTI; any other sink leaves it to us.
            let published = sink.publish(&updates);
            let flushed = {
                let mut shared = self.redis.lock();
                let queued = std::mem::take(&mut shared.queued);
                match &published {
                    Err(BackendError::Conflict) => Ok(false),
                    Err(_) => {
                        let _ = shared.client.call(&cmd(["UNWATCH"]));
                        Ok(true)
                    }
                    Ok(_) if queued.is_empty() => {
                        let _ = shared.client.call(&cmd(["UNWATCH"]));
                        Ok(true)
                    }
                    Ok(_) => exec(&mut shared.client, queued),
                }
            };
            match (published, flushed) {
                (Err(BackendError::Conflict), _) | (Ok(_), Ok(false)) => {
                    tracing::debug!(
                        attempt,
                        "another writer changed the state first; running the change again"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(
                        1..=(5 + attempt as u64 * 2),
                    )));
                    continue;
                }
                (Err(e), _) => return Err(e.into()),
                (Ok(_), Err(e)) => return Err(BackendError::from(e).into()),
                (Ok(changes), Ok(true)) => {
                    self.remember(&state);
                    return Ok((out, changes));
                }
            }
        }
        Err(BackendError::Contended { attempts: ATTEMPTS }.into())
    }
}

/// Runs `commands` in MULTI/EXEC on a connection that WATCHes; `Ok(false)`: a watched key
/// changed, nothing was applied.
fn exec(client: &mut Client, commands: Vec<Cmd>) -> Result<bool, RedisError> {
    client.with(|c| {
        let mut all = Vec::with_capacity(commands.len() + 2);
        all.push(cmd(["MULTI"]));
        all.extend(commands);
        all.push(cmd(["EXEC"]));
        let replies = c.pipeline(&all)?;
        // A command refused when queued (ACL, wrong arity) fails the whole EXEC.
        for (reply, sent) in replies.iter().zip(&all) {
            if let Value::Error(e) = reply {
                return Err(c.refused(sent, e.clone()));
            }
        }
        match replies.into_iter().last() {
            Some(Value::Array(results)) => {
                for (reply, sent) in results.into_iter().zip(all.iter().skip(1)) {
                    if let Value::Error(e) = reply {
                        return Err(c.refused(sent, e));
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    })
}

/// Publishes each unit's configuration as Traefik's keys under the root key, one MULTI/EXEC
/// per publish, with the state the store queued for the same transaction.
pub struct RedisSink {
    redis: Redis,
    root: String,
    /// Unit → its keys and values as last published (`None`: not read yet).
    published: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// The anchor key was written by this sink since it last forgot: not written again, since
    /// every key written is one more keyspace notification, one more re-read by every Traefik,
    /// and one more of Traefik's throttle windows before the next change is applied.
    anchored: bool,
}

impl RedisSink {
    fn load_published(&mut self) -> Result<&mut BTreeMap<String, BTreeMap<String, String>>, BackendError> {
        if self.published.is_none() {
            let keys = self.redis.scan(&format!("{CONFIG_PREFIX}*"))?;
            let mut map = BTreeMap::new();
            if !keys.is_empty() {
                let values = self
                    .redis
                    .call(&cmd(std::iter::once("MGET".to_string()).chain(keys.iter().cloned())))?;
                for (key, value) in keys.iter().zip(values.into_array()) {
                    let (Some(unit), Some(bytes)) = (key.strip_prefix(CONFIG_PREFIX), value.into_bytes()) else {
                        continue;
                    };
                    let kv: BTreeMap<String, String> = serde_json::from_slice(&bytes).unwrap_or_default();
                    map.insert(unit.to_string(), kv);
                }
            }
            self.published = Some(map);
        }
        Ok(self.published.as_mut().expect("just loaded"))
    }
}

impl ConfigSink for RedisSink {
    fn publish(&mut self, updates: &Updates) -> Result<Changes, BackendError> {
        let root = self.root.clone();
        let published = match self.load_published() {
            Ok(p) => p.clone(),
            Err(e) => return Err(e),
        };
        let mut changes = Changes::default();
        let (mut old, mut new) = (BTreeMap::new(), BTreeMap::new());
        let mut records: Vec<Cmd> = Vec::new();
        for (unit, config) in updates {
            let before = published.get(unit).cloned().unwrap_or_default();
            let after = config.as_ref().map(flatten).unwrap_or_default();
            if config.is_some() && published.get(unit) == Some(&after) {
                continue;
            }
            if config.is_none() && !published.contains_key(unit) {
                continue;
            }
            match config {
                Some(_) => {
                    changes.written.push(unit.clone());
                    records.push(cmd([
                        "SET".as_bytes(),
                        format!("{CONFIG_PREFIX}{unit}").as_bytes(),
                        &serde_json::to_vec(&after).expect("strings serialise"),
                    ]));
                }
                None => {
                    changes.removed.push(unit.clone());
                    records.push(cmd(["DEL".to_string(), format!("{CONFIG_PREFIX}{unit}")]));
                }
            }
            old.extend(before);
            new.extend(after);
        }
        let mut commands: Vec<Cmd> = Vec::new();
        if !changes.is_empty() {
            // Deletions first, then writes; an app moving between units keeps its keys.
            let gone: Vec<String> = old
                .keys()
                .filter(|k| !new.contains_key(*k))
                .map(|k| format!("{root}/{k}"))
                .collect();
            if !gone.is_empty() {
                commands.push(cmd(std::iter::once("DEL".to_string()).chain(gone)));
            }
            let mut set: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
            for (k, v) in &new {
                if old.get(k) != Some(v) {
                    set.push(format!("{root}/{k}").into_bytes());
                    set.push(v.clone().into_bytes());
                }
            }
            if !self.anchored {
                set.push(format!("{root}/{ANCHOR}").into_bytes());
                set.push(b"pointsman".to_vec());
            }
            if set.len() > 1 {
                commands.push(set);
            }
            commands.extend(records);
        }
        let mut shared = self.redis.lock();
        let mut all = std::mem::take(&mut shared.queued);
        all.extend(commands);
        if all.is_empty() {
            return Ok(changes);
        }
        let applied = exec(&mut shared.client, all);
        drop(shared);
        match applied {
            Ok(true) => {
                self.anchored |= !changes.is_empty();
                let p = self.published.get_or_insert_with(BTreeMap::new);
                for (unit, config) in updates {
                    match config {
                        Some(c) => p.insert(unit.clone(), flatten(c)),
                        None => p.remove(unit),
                    };
                }
                Ok(changes)
            }
            Ok(false) => {
                // Someone else committed first: what they published is unknown to us now.
                self.published = None;
                Err(BackendError::Conflict)
            }
            Err(e) => {
                self.published = None;
                Err(e.into())
            }
        }
    }

    fn published(&mut self) -> Result<BTreeSet<String>, BackendError> {
        Ok(self.load_published()?.keys().cloned().collect())
    }

    fn forget(&mut self) {
        self.published = None;
        self.anchored = false;
    }
}

/// A sink that publishes nothing: CLI commands on a shared store only record roles, and the
/// leading controller renders them (one renderer, fenced).
#[derive(Debug, Default)]
pub struct NoSink;

impl ConfigSink for NoSink {
    fn publish(&mut self, _: &Updates) -> Result<Changes, BackendError> {
        Ok(Changes::default())
    }
    fn published(&mut self) -> Result<BTreeSet<String>, BackendError> {
        Ok(BTreeSet::new())
    }
    fn forget(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::traefik::{Http, LoadBalancer, Router, Server, Service};

    #[test]
    fn configuration_flattens_to_traefiks_keys() {
        let mut http = Http::default();
        http.routers.insert(
            "web".into(),
            Router {
                entry_points: vec!["web".into(), "websecure".into()],
                priority: Some(7),
                rule: "Host(`a`)".into(),
                service: "web".into(),
            },
        );
        http.services.insert(
            "web".into(),
            Service::LoadBalancer(LoadBalancer {
                servers: vec![Server {
                    url: "http://10.0.0.2:80".into(),
                }],
            }),
        );
        http.services
            .insert("none".into(), Service::LoadBalancer(LoadBalancer { servers: vec![] }));
        let kv = flatten(&Dynamic { http });
        let want: BTreeMap<String, String> = [
            ("http/routers/web/entryPoints/0", "web"),
            ("http/routers/web/entryPoints/1", "websecure"),
            ("http/routers/web/priority", "7"),
            ("http/routers/web/rule", "Host(`a`)"),
            ("http/routers/web/service", "web"),
            ("http/services/none/loadBalancer/passHostHeader", "true"),
            ("http/services/web/loadBalancer/servers/0/url", "http://10.0.0.2:80"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(kv, want);
    }
}
