//! Members grouped into apps and slots: the view every decision and every rendering reads.
//!
//! A [`Fleet`] is built from containers in one step ([`Fleet::build`]) or kept up to date one
//! container at a time ([`Fleet::upsert`], [`Fleet::remove`]); both paths run the same code, so
//! the controller's incremental view is always the view a full build would give. Each change
//! returns the apps it touched, so the controller re-renders only those.
//!
//! Host claims are kept in an index (host pattern → apps claiming it). A claim is what the
//! app's rules can match as Traefik matches hosts ([`crate::core::rule::hosts`]: case, trailing
//! dot, `*.` wildcards, `HostRegexp`), not the strings they spell. Two apps whose claims
//! overlap would make Traefik pick between them, so the app whose oldest container is younger
//! is refused. The decision depends only on the apps connected to each other through
//! overlapping claims, so a change re-decides only that group — normally the one app — never
//! the fleet. Exact hosts are found by lookup; the rarer wildcard and regexp claims are
//! compared with each other and with every exact host.
//! Apps the fleet has no containers of can take part through claims from the state's index
//! ([`Fleet::set_outside_claims`]): the CLI inspects one app, the index stands for the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;

use crate::core::admit::Owner;
use crate::core::container::{Condition, Container};
use crate::core::labels::{self, LabelError, Member, Role};
use crate::core::rule::Rule;
use crate::core::rule::hosts::{self, HostPattern};
use crate::core::settings::Settings;
use crate::core::state::{AppRoles, Claim, Share};

/// Apps whose rendering may have changed.
pub type Touched = BTreeSet<String>;

#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Every app with containers, refused ones included.
    apps: BTreeMap<String, App>,
    /// Container id → where its member lives.
    placed: HashMap<String, (String, String)>,
    /// Containers left out for a bad label, by container id.
    label_errors: HashMap<String, LabelError>,
    /// Host pattern → apps claiming it (apps with members, and outside claims).
    hosts: BTreeMap<HostPattern, BTreeSet<String>>,
    /// Claims of apps this fleet has no containers of (from the state's index).
    outside: BTreeMap<String, Claim>,
    /// Refused apps → (the host, the app that keeps it).
    refused: BTreeMap<String, (String, String)>,
    /// Compose project → its apps with containers (refused ones included), and the reverse.
    projects: BTreeMap<String, BTreeSet<String>>,
    project_of: HashMap<String, String>,
    /// Admission (`--admit`): the recorded owner of each seeded app, and members held out of
    /// their app for not carrying its owner's mark, by container id (see [`Fleet::set_owner`]).
    owners: HashMap<String, Owner>,
    held: HashMap<String, (Member, LabelError)>,
}

/// Apps released together share one unit of configuration (one file, one rename): the apps of
/// a Compose project are the unit `project.NAME`; an app outside any project is its own unit,
/// named after it. A `.` never occurs in an app name (a DNS label), so the two never collide.
pub const PROJECT_UNIT_PREFIX: &str = "project.";

/// The unit of a Compose project's apps.
pub fn project_unit(project: &str) -> String {
    format!("{PROJECT_UNIT_PREFIX}{project}")
}

/// The project a unit name stands for, if it is a project's unit.
pub fn unit_project(unit: &str) -> Option<&str> {
    unit.strip_prefix(PROJECT_UNIT_PREFIX)
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub slots: BTreeMap<String, Slot>,
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    /// Sorted by container name.
    pub members: Vec<Member>,
}

/// Roles as they apply right now: state resolved against the slots that exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    pub stable: Option<String>,
    pub candidate: Option<String>,
    pub previous: Option<String>,
    /// The canary's share, if any (it applies only while its slot is the candidate).
    pub canary: Option<Share>,
    /// The mirror's share, if any (likewise).
    pub mirror: Option<Share>,
}

impl Resolved {
    /// The role a slot plays now: `stable`, `candidate`, or `idle` (neither).
    pub fn role_of(&self, slot: &str) -> &'static str {
        if self.stable.as_deref() == Some(slot) {
            "stable"
        } else if self.candidate.as_deref() == Some(slot) {
            "candidate"
        } else {
            "idle"
        }
    }
}

impl Fleet {
    pub fn build<'a>(containers: impl IntoIterator<Item = &'a Container>, settings: &Settings) -> Fleet {
        let mut fleet = Fleet::default();
        for c in containers {
            fleet.upsert(c, settings);
        }
        fleet
    }

    /// Adds or replaces one container. Returns the apps whose view changed.
    pub fn upsert(&mut self, c: &Container, settings: &Settings) -> Touched {
        let (mut touched, released) = self.take_out(&c.id);
        match labels::read(c, settings) {
            Ok(Some(m)) => {
                touched.insert(m.app.clone());
                self.admit_or_hold(m, settings);
            }
            Ok(None) => {}
            Err(e) => {
                self.label_errors.insert(c.id.clone(), e);
            }
        }
        self.settle(touched, released)
    }

    fn place(&mut self, m: Member) {
        self.placed.insert(m.id.clone(), (m.app.clone(), m.slot.clone()));
        let app = self.apps.entry(m.app.clone()).or_insert_with(|| App {
            name: m.app.clone(),
            slots: BTreeMap::new(),
        });
        let slot = app.slots.entry(m.slot.clone()).or_insert_with(|| Slot {
            name: m.slot.clone(),
            members: Vec::new(),
        });
        let at = slot.members.partition_point(|x| (&x.name, &x.id) < (&m.name, &m.id));
        slot.members.insert(at, m);
    }

    /// Places a member in its app, or holds it out when the admission policy refuses it.
    fn admit_or_hold(&mut self, m: Member, settings: &Settings) {
        match settings
            .admit
            .refusal(self.owners.get(&m.app), &m, &settings.label("owner"))
        {
            Some(e) => {
                self.held.insert(m.id.clone(), (m, e));
            }
            None => self.place(m),
        }
    }

    /// The recorded owner of `app` (`None`: not seeded, or no policy): members that do not
    /// carry its mark are held out of the app, held ones that do are let in. Returns the apps
    /// whose view changed.
    pub fn set_owner(&mut self, app: &str, owner: Option<Owner>, settings: &Settings) -> Touched {
        if self.owners.get(app) == owner.as_ref() {
            return Touched::new();
        }
        match owner {
            Some(o) => self.owners.insert(app.to_string(), o),
            None => self.owners.remove(app),
        };
        let mut ids: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (m, _))| m.app == app)
            .map(|(id, _)| id.clone())
            .collect();
        ids.extend(
            self.apps
                .get(app)
                .into_iter()
                .flat_map(|a| a.members().map(|m| m.id.clone())),
        );
        let (mut touched, mut released) = (Touched::from([app.to_string()]), BTreeSet::new());
        for id in ids {
            let m = match self.held.remove(&id) {
                Some((m, _)) => m,
                None => {
                    let Some(m) = self
                        .apps
                        .get(app)
                        .and_then(|a| a.members().find(|m| m.id == id))
                        .cloned()
                    else {
                        continue;
                    };
                    let (t, r) = self.take_out(&id);
                    touched.extend(t);
                    released.extend(r);
                    m
                }
            };
            self.admit_or_hold(m, settings);
        }
        self.settle(touched, released)
    }

    /// Apps with members held out by the admission policy.
    pub fn held_apps(&self) -> BTreeSet<String> {
        self.held.values().map(|(m, _)| m.app.clone()).collect()
    }

    /// Removes one container. Returns the apps whose view changed.
    pub fn remove(&mut self, id: &str) -> Touched {
        let (touched, released) = self.take_out(id);
        self.settle(touched, released)
    }

    /// Claims of apps the fleet has no containers of, standing in for them in host conflicts.
    pub fn set_outside_claims(&mut self, claims: BTreeMap<String, Claim>) -> Touched {
        let mut touched: Touched = self.outside.keys().cloned().collect();
        let mut released = BTreeSet::new();
        for (app, claim) in std::mem::take(&mut self.outside) {
            for h in claim.patterns() {
                self.unindex_host(&h, &app);
                released.insert(h);
            }
        }
        for (app, claim) in claims {
            if self.apps.contains_key(&app) {
                continue;
            }
            for h in claim.patterns() {
                self.hosts.entry(h).or_default().insert(app.clone());
            }
            touched.insert(app.clone());
            self.outside.insert(app, claim);
        }
        self.settle(touched, released)
    }

    /// The app with this name, if it has containers and is not refused.
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name).filter(|_| !self.refused.contains_key(name))
    }

    /// Why an app with containers is refused: the host it claims and the older app keeping it.
    pub fn refusal(&self, name: &str) -> Option<(&str, &str)> {
        self.refused.get(name).map(|(h, o)| (h.as_str(), o.as_str()))
    }

    /// Apps with containers that are not refused, by name.
    pub fn apps(&self) -> impl Iterator<Item = &App> {
        self.apps.values().filter(|a| !self.refused.contains_key(&a.name))
    }

    pub fn app_names(&self) -> impl Iterator<Item = &String> {
        self.apps().map(|a| &a.name)
    }

    pub fn is_empty(&self) -> bool {
        self.apps().next().is_none()
    }

    /// Every container left out, each with the reason, sorted (so logs can diff them).
    pub fn errors(&self) -> Vec<LabelError> {
        let mut out: Vec<LabelError> = self.label_errors.values().cloned().collect();
        out.extend(self.held.values().map(|(_, e)| e.clone()));
        for (name, (host, owner)) in &self.refused {
            out.extend(self.conflict_errors(name, host, owner));
        }
        out.sort();
        out
    }

    /// The label error of a container, by name.
    pub fn error_of(&self, container: &str) -> Option<LabelError> {
        self.errors().into_iter().find(|e| e.container == container)
    }

    /// The claim of each app with containers (refused ones included): the index the state keeps.
    pub fn claims(&self) -> BTreeMap<String, Claim> {
        self.apps.values().map(|a| (a.name.clone(), a.claim())).collect()
    }

    /// Claim of one app with containers.
    pub fn claim(&self, app: &str) -> Option<Claim> {
        self.apps.get(app).map(App::claim)
    }

    fn conflict_errors(&self, name: &str, host: &str, owner: &str) -> Vec<LabelError> {
        let Some(app) = self.apps.get(name) else { return vec![] };
        app.members()
            .map(|m| LabelError {
                container: m.name.clone(),
                label: m.rule_label_key.clone(),
                reason: format!(
                    "host {host} is already served by app {owner}, whose containers are older; app {name} is refused until one of them gives it up"
                ),
            })
            .collect()
    }

    /// Takes a container out wherever it is. Returns the app it left, if any, and the hosts
    /// that app claimed (other apps claiming them may be decided anew).
    fn take_out(&mut self, id: &str) -> (Touched, BTreeSet<HostPattern>) {
        let mut touched = Touched::new();
        self.label_errors.remove(id);
        if let Some((m, _)) = self.held.remove(id) {
            touched.insert(m.app);
        }
        let Some((app_name, slot_name)) = self.placed.remove(id) else {
            return (touched, BTreeSet::new());
        };
        let hosts_before = self.apps.get(&app_name).map(App::patterns).unwrap_or_default();
        if let Some(app) = self.apps.get_mut(&app_name) {
            if let Some(slot) = app.slots.get_mut(&slot_name) {
                slot.members.retain(|m| m.id != id);
                if slot.members.is_empty() {
                    app.slots.remove(&slot_name);
                }
            }
            if app.slots.is_empty() {
                self.apps.remove(&app_name);
            }
        }
        // Re-index the app's hosts from scratch below (in `settle`); drop the old ones here.
        for h in &hosts_before {
            self.unindex_host(h, &app_name);
        }
        touched.insert(app_name);
        (touched, hosts_before)
    }

    fn unindex_host(&mut self, host: &HostPattern, app: &str) {
        if let Some(apps) = self.hosts.get_mut(host) {
            apps.remove(app);
            if apps.is_empty() {
                self.hosts.remove(host);
            }
        }
    }

    /// Re-indexes the hosts of `touched` apps and re-decides host conflicts among the apps
    /// connected to them. Returns `touched` plus every app whose refusal changed.
    fn settle(&mut self, mut touched: Touched, released: BTreeSet<HostPattern>) -> Touched {
        for name in &touched {
            if let Some(app) = self.apps.get(name) {
                for h in app.patterns() {
                    self.hosts.entry(h).or_default().insert(name.clone());
                }
            } else if !self.outside.contains_key(name) {
                self.refused.remove(name);
            }
        }
        // The group: every app reachable from a touched app through overlapping claims.
        let mut group = BTreeSet::new();
        let mut queue: Vec<String> = touched.iter().cloned().collect();
        for h in &released {
            for (_, apps) in overlapping(&self.hosts, h) {
                queue.extend(apps.iter().cloned());
            }
        }
        while let Some(name) = queue.pop() {
            if !group.insert(name.clone()) {
                continue;
            }
            for h in self.hosts_of(&name) {
                for (_, apps) in overlapping(&self.hosts, &h) {
                    queue.extend(apps.iter().filter(|o| !group.contains(*o)).cloned());
                }
            }
        }
        // Oldest first; an app takes its hosts unless one overlaps a host taken already.
        let mut order: Vec<(Timestamp, String)> = group
            .iter()
            .filter_map(|name| self.since(name).map(|s| (s, name.clone())))
            .collect();
        order.sort();
        let mut taken: BTreeMap<HostPattern, String> = BTreeMap::new();
        for (_, name) in order {
            let hosts = self.hosts_of(&name);
            let verdict = hosts.iter().find_map(|h| {
                overlapping(&taken, h)
                    .next()
                    .map(|(theirs, owner)| (conflict_text(h, theirs), owner.clone()))
            });
            match verdict {
                Some(conflict) => {
                    if self.apps.contains_key(&name) && self.refused.get(&name) != Some(&conflict) {
                        self.refused.insert(name.clone(), conflict);
                        touched.insert(name.clone());
                    }
                }
                None => {
                    if self.refused.remove(&name).is_some() {
                        touched.insert(name.clone());
                    }
                    for h in hosts {
                        taken.insert(h, name.clone());
                    }
                }
            }
        }
        touched.retain(|n| !self.outside.contains_key(n) || self.apps.contains_key(n));
        self.index_projects(&touched);
        touched
    }

    /// Re-files the `touched` apps under the project their containers now name.
    fn index_projects(&mut self, touched: &Touched) {
        for name in touched {
            let now = self.apps.get(name).and_then(App::project).map(str::to_string);
            let before = self.project_of.get(name);
            if before == now.as_ref() {
                continue;
            }
            if let Some(before) = self.project_of.remove(name)
                && let Some(apps) = self.projects.get_mut(&before)
            {
                apps.remove(name);
                if apps.is_empty() {
                    self.projects.remove(&before);
                }
            }
            if let Some(now) = now {
                self.projects.entry(now.clone()).or_default().insert(name.clone());
                self.project_of.insert(name.clone(), now);
            }
        }
    }

    /// The apps of a Compose project that are not refused, by name.
    pub fn project_apps(&self, project: &str) -> Vec<&App> {
        self.projects
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|name| self.app(name))
            .collect()
    }

    /// Compose projects with at least one app that is not refused.
    pub fn projects(&self) -> Vec<&str> {
        self.projects
            .keys()
            .filter(|p| !self.project_apps(p).is_empty())
            .map(String::as_str)
            .collect()
    }

    /// The unit an app with containers is published in (see [`PROJECT_UNIT_PREFIX`]).
    pub fn unit_of(&self, app: &str) -> Option<String> {
        self.apps.get(app).map(App::unit)
    }

    /// The apps (not refused) a unit holds now.
    pub fn unit_apps(&self, unit: &str) -> Vec<&App> {
        match unit_project(unit) {
            Some(project) => self.project_apps(project),
            None => self.app(unit).filter(|a| a.project().is_none()).into_iter().collect(),
        }
    }

    fn hosts_of(&self, app: &str) -> BTreeSet<HostPattern> {
        match (self.apps.get(app), self.outside.get(app)) {
            (Some(a), _) => a.patterns(),
            (None, Some(c)) => c.patterns().into_iter().collect(),
            (None, None) => BTreeSet::new(),
        }
    }

    fn since(&self, app: &str) -> Option<Timestamp> {
        match (self.apps.get(app), self.outside.get(app)) {
            (Some(a), _) => Some(a.oldest_created()),
            (None, Some(c)) => Some(c.since),
            (None, None) => None,
        }
    }
}

/// The entries of `index` whose pattern can match a host `p` can match. Exact hosts are looked
/// up; wildcard and regexp entries (ordered after every exact one) are compared one by one; a
/// wildcard or regexp `p` is compared with every entry.
fn overlapping<'a, V>(
    index: &'a BTreeMap<HostPattern, V>,
    p: &'a HostPattern,
) -> Box<dyn Iterator<Item = (&'a HostPattern, &'a V)> + 'a> {
    match p {
        HostPattern::Exact(_) => Box::new(
            index.get_key_value(p).into_iter().chain(
                index
                    .range(HostPattern::Wildcard(String::new())..)
                    .filter(move |(q, _)| hosts::overlap(p, q)),
            ),
        ),
        _ => Box::new(index.iter().filter(move |(q, _)| hosts::overlap(p, q))),
    }
}

/// How a refusal names the host: the exact host when either side has one.
fn conflict_text(ours: &HostPattern, theirs: &HostPattern) -> String {
    match (ours, theirs) {
        (HostPattern::Exact(h), _) => h.clone(),
        (_, HostPattern::Exact(h)) => format!("{h} (matched by {})", ours.describe()),
        _ => format!("{} (overlapping {})", ours.describe(), theirs.describe()),
    }
}

impl App {
    /// The route of the app: taken from the stable slot when it has containers, else from the
    /// oldest container, so a candidate with a changed rule cannot move the public route.
    pub fn route(&self, roles: &Resolved) -> (&Rule, &[String]) {
        let from_stable = roles
            .stable
            .as_ref()
            .and_then(|s| self.slots.get(s))
            .and_then(|s| s.members.first());
        let m = from_stable.unwrap_or_else(|| {
            self.members()
                .min_by_key(|m| (m.created, &m.name))
                .expect("an app has at least one member")
        });
        (&m.rule, &m.entrypoints)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.slots.values().flat_map(|s| s.members.iter())
    }

    /// The Compose project the app is released with: the project of its oldest container that
    /// has one. Normally every container of an app names the same project; when they differ
    /// (colours deployed as separate projects), the oldest decides, so a new deploy does not
    /// move the app into another unit.
    pub fn project(&self) -> Option<&str> {
        self.members()
            .filter(|m| m.project.is_some())
            .min_by_key(|m| (m.created, &m.name))
            .and_then(|m| m.project.as_deref())
    }

    /// The unit the app is published in: its project's, or its own.
    pub fn unit(&self) -> String {
        self.project().map_or_else(|| self.name.clone(), project_unit)
    }

    /// What the app's rules can match, as Traefik matches hosts: its claim.
    pub fn patterns(&self) -> BTreeSet<HostPattern> {
        self.members()
            .flat_map(|m| m.rule.footprint().patterns().to_vec())
            .collect()
    }

    /// The exact hosts it claims (lower case, without a trailing dot).
    pub fn hosts(&self) -> BTreeSet<String> {
        self.patterns()
            .into_iter()
            .filter_map(|p| match p {
                HostPattern::Exact(h) => Some(h),
                _ => None,
            })
            .collect()
    }

    pub fn oldest_created(&self) -> Timestamp {
        self.members().map(|m| m.created).min().unwrap_or_default()
    }

    pub fn claim(&self) -> Claim {
        let (exact, patterns): (Vec<HostPattern>, Vec<HostPattern>) = self
            .patterns()
            .into_iter()
            .partition(|p| matches!(p, HostPattern::Exact(_)));
        Claim {
            hosts: exact
                .into_iter()
                .filter_map(|p| match p {
                    HostPattern::Exact(h) => Some(h),
                    _ => None,
                })
                .collect(),
            patterns,
            since: self.oldest_created(),
            project: self.project().map(str::to_string),
        }
    }

    /// Resolves stored roles against the slots that exist now.
    ///
    /// The stable slot is kept even when it has no container (a recreate in progress must
    /// not hand the public route to anyone else); the candidate is the pinned slot if it
    /// exists and is not stable, else the most recently started other slot.
    pub fn resolve(&self, roles: &AppRoles) -> Resolved {
        let stable = roles.stable.clone();
        let is_other = |s: &&Slot| Some(&s.name) != stable.as_ref();
        let pinned = roles.pinned.as_ref().and_then(|p| self.slots.get(p)).filter(is_other);
        let candidate = pinned
            .or_else(|| {
                self.slots
                    .values()
                    .filter(is_other)
                    .max_by_key(|s| (s.last_started(), s.oldest_created(), &s.name))
            })
            .map(|s| s.name.clone());
        Resolved {
            stable,
            candidate,
            previous: roles.previous.clone(),
            canary: roles.canary.clone(),
            mirror: roles.mirror.clone(),
        }
    }
}

impl Slot {
    /// Server URLs of routable members, sorted.
    pub fn servers(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.routable())
            .filter_map(|m| m.url.clone())
            .collect();
        urls.sort();
        urls.dedup();
        urls
    }

    pub fn is_routable(&self) -> bool {
        self.members.iter().any(Member::routable)
    }

    /// Members that keep the slot from being promoted: anything not ready.
    pub fn not_ready(&self) -> Vec<&Member> {
        self.members
            .iter()
            .filter(|m| m.condition != Condition::Ready || m.url.is_none())
            .collect()
    }

    pub fn last_started(&self) -> Timestamp {
        self.members.iter().map(|m| m.started).max().unwrap_or_default()
    }

    pub fn oldest_created(&self) -> Timestamp {
        self.members.iter().map(|m| m.created).min().unwrap_or_default()
    }

    /// Whether the labels of a member that runs (or ran and is paused) ask for this slot to be
    /// stable. A stopped container (created and never started, or exited) seeds nothing: the
    /// role would outlive it, and the slot would keep the public route without ever serving.
    pub fn labelled_stable(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.seed_role == Role::Stable && m.condition != Condition::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::container::Endpoint;

    fn container(name: &str, app: &str, host: &str, created: &str) -> Container {
        let mut c = Container {
            id: format!("{name}-id"),
            name: format!("/{name}"),
            created: created.into(),
            ..Default::default()
        };
        c.state.running = true;
        c.config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        c.config.labels = Some(
            [
                ("pointsman.app".to_string(), app.to_string()),
                ("pointsman.host".to_string(), host.to_string()),
            ]
            .into(),
        );
        c.network_settings.networks = Some(
            [(
                "net".to_string(),
                Endpoint {
                    ip_address: "10.0.0.2".into(),
                },
            )]
            .into(),
        );
        c
    }

    fn accepted(f: &Fleet) -> Vec<&str> {
        f.app_names().map(String::as_str).collect()
    }

    #[test]
    fn the_younger_app_claiming_a_host_is_refused_and_takes_over_when_the_older_leaves() {
        let s = Settings::default();
        let old = container("shop-1", "shop", "a.com", "2026-01-01T00:00:00Z");
        let young = container("docs-1", "docs", "a.com,b.com", "2026-02-01T00:00:00Z");
        let mut f = Fleet::build([&old, &young], &s);
        assert_eq!(accepted(&f), ["shop"]);
        assert!(f.errors()[0].reason.contains("already served by app shop"));
        let touched = f.remove(&old.id);
        assert_eq!(touched, Touched::from(["docs".to_string(), "shop".to_string()]));
        assert_eq!(accepted(&f), ["docs"]);
        assert!(f.errors().is_empty());
    }

    #[test]
    fn a_change_touches_only_the_apps_connected_through_hosts() {
        let s = Settings::default();
        let cs: Vec<Container> = (0..50)
            .map(|i| {
                container(
                    &format!("c{i}"),
                    &format!("app{i}"),
                    &format!("h{i}.com"),
                    "2026-01-01T00:00:00Z",
                )
            })
            .collect();
        let mut f = Fleet::build(&cs, &s);
        let mut moved = cs[7].clone();
        moved.state.running = false;
        assert_eq!(f.upsert(&moved, &s), Touched::from(["app7".to_string()]));
        let mut relabelled = cs[7].clone();
        relabelled
            .config
            .labels
            .as_mut()
            .unwrap()
            .insert("pointsman.app".into(), "app8".into());
        assert_eq!(
            f.upsert(&relabelled, &s),
            Touched::from(["app7".to_string(), "app8".to_string()])
        );
    }

    #[test]
    fn incremental_changes_give_the_same_fleet_as_a_full_build() {
        let s = Settings::default();
        let mut cs = vec![
            container("a-1", "a", "x.com", "2026-01-03T00:00:00Z"),
            container("b-1", "b", "x.com,y.com", "2026-01-02T00:00:00Z"),
            container("c-1", "c", "y.com", "2026-01-01T00:00:00Z"),
            container("d-1", "d", "z.com", "2026-01-04T00:00:00Z"),
        ];
        let mut f = Fleet::default();
        for c in cs.iter().rev() {
            f.upsert(c, &s);
        }
        let full = Fleet::build(&cs, &s);
        assert_eq!(accepted(&f), accepted(&full));
        assert_eq!(f.errors(), full.errors());
        // c (oldest) takes y.com, so b is refused, so a keeps x.com.
        assert_eq!(accepted(&f), ["a", "c", "d"]);
        f.remove("c-1-id");
        cs.remove(2);
        let full = Fleet::build(&cs, &s);
        assert_eq!(accepted(&f), accepted(&full));
        assert_eq!(accepted(&f), ["b", "d"]);
    }

    #[test]
    fn outside_claims_refuse_a_younger_app_without_its_containers() {
        let s = Settings::default();
        let mut f = Fleet::build([&container("docs-1", "docs", "a.com", "2026-02-01T00:00:00Z")], &s);
        f.set_outside_claims(BTreeMap::from([(
            "shop".to_string(),
            Claim {
                hosts: vec!["a.com".into()],
                patterns: vec![],
                since: "2026-01-01T00:00:00Z".parse().unwrap(),
                project: None,
            },
        )]));
        assert!(f.app("docs").is_none());
        assert!(f.app("shop").is_none(), "an outside claim is not an app");
        assert!(f.claims().contains_key("docs") && !f.claims().contains_key("shop"));
    }

    fn with_rule(name: &str, app: &str, rule: &str, created: &str) -> Container {
        let mut c = container(name, app, "unused.test", created);
        let labels = c.config.labels.as_mut().unwrap();
        labels.remove("pointsman.host");
        labels.insert("pointsman.rule".into(), rule.into());
        c
    }

    #[test]
    fn claims_overlap_as_traefik_matches_hosts_whatever_the_spelling() {
        let s = Settings::default();
        let web = container("web-1", "web", "web.test", "2026-01-01T00:00:00Z");
        for (i, rule) in [
            "Host(`web.test.`)",
            "Host(`WEB.test`)",
            "Host(`web.test:443`)",
            "Host(`*.test`)",
            "HostRegexp(`^w[a-z]b\\.test$`)",
            "HostRegexp(`^.+\\.test$`) && Path(`/x`)",
            "Host(`other.test`) || Host(`web.test`)",
        ]
        .into_iter()
        .enumerate()
        {
            let young = with_rule(&format!("n{i}"), "neighbour", rule, "2026-02-01T00:00:00Z");
            let f = Fleet::build([&web, &young], &s);
            assert_eq!(accepted(&f), ["web"], "{rule}");
            let reason = &f.errors()[0].reason;
            assert!(
                reason.contains("web.test") && reason.contains("already served by app web"),
                "{rule}: {reason}"
            );
            // The same with the neighbour known only by its recorded claim (the CLI's view).
            let mut f = Fleet::build([&web], &s);
            let claim = Fleet::build([&young], &s).claim("neighbour").unwrap();
            assert!(
                claim.patterns().iter().any(|p| p.matches("web.test")),
                "{rule}: {claim:?}"
            );
            let mut older = claim.clone();
            older.since = "2025-01-01T00:00:00Z".parse().unwrap();
            f.set_outside_claims(BTreeMap::from([("neighbour".to_string(), older)]));
            assert!(f.app("web").is_none(), "{rule}: an older recorded claim keeps the host");
        }
        // Near misses are not conflicts.
        for rule in [
            "Host(`web.test2`)",
            "Host(`*.web.test`)",
            "HostRegexp(`^web\\.test\\.evil$`)",
            "Host(`a.web.test`)",
        ] {
            let young = with_rule("n", "neighbour", rule, "2026-02-01T00:00:00Z");
            let f = Fleet::build([&web, &young], &s);
            assert_eq!(accepted(&f), ["neighbour", "web"], "{rule}: {:?}", f.errors());
        }
    }
}
