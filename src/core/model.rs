//! Members grouped into apps and slots: the view every decision and every rendering reads.
//!
//! Pure and cheap to rebuild, so the controller rebuilds it from its snapshot on every change
//! instead of patching it; nothing here is ever out of date with the containers it came from.

use std::collections::BTreeMap;

use crate::core::container::{Condition, Container};
use crate::core::labels::{self, LabelError, Member, Role};
use crate::core::rule::Rule;
use crate::core::settings::Settings;
use crate::core::state::AppRoles;
use crate::core::timestamp::Instant;

#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub apps: BTreeMap<String, App>,
    /// Containers left out, each with the reason. Sorted, so logs can diff them.
    pub errors: Vec<LabelError>,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    pub stable: Option<String>,
    pub candidate: Option<String>,
    pub previous: Option<String>,
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
            match labels::read(c, settings) {
                Ok(Some(m)) => {
                    let app = fleet.apps.entry(m.app.clone()).or_insert_with(|| App {
                        name: m.app.clone(),
                        slots: BTreeMap::new(),
                    });
                    app.slots
                        .entry(m.slot.clone())
                        .or_insert_with(|| Slot {
                            name: m.slot.clone(),
                            members: Vec::new(),
                        })
                        .members
                        .push(m);
                }
                Ok(None) => {}
                Err(e) => fleet.errors.push(e),
            }
        }
        for app in fleet.apps.values_mut() {
            for slot in app.slots.values_mut() {
                slot.members.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            }
        }
        fleet.refuse_host_conflicts(settings);
        fleet.errors.sort();
        fleet
    }

    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    /// The part of the fleet that is one app (empty if it has no container), without errors.
    pub fn only(&self, app: &str) -> Fleet {
        Fleet {
            apps: self
                .apps
                .get_key_value(app)
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
            errors: vec![],
        }
    }

    /// Two apps claiming one host would make Traefik pick between them by rule length: the
    /// app whose oldest container is younger is refused as a whole, the earlier one keeps
    /// serving. Each of the refused app's containers gets an error naming the other app.
    fn refuse_host_conflicts(&mut self, settings: &Settings) {
        let mut order: Vec<(Instant, String)> = self
            .apps
            .values()
            .map(|a| (a.members().map(|m| m.created).min().unwrap_or_default(), a.name.clone()))
            .collect();
        order.sort();
        let mut claimed: BTreeMap<String, String> = BTreeMap::new();
        for (_, name) in order {
            let app = &self.apps[&name];
            let hosts: std::collections::BTreeSet<String> = app.members().flat_map(|m| m.rule.hosts()).collect();
            if let Some((host, owner)) = hosts
                .iter()
                .find_map(|h| claimed.get(h).map(|o| (h.clone(), o.clone())))
            {
                let app = self.apps.remove(&name).expect("listed above");
                for m in app.members() {
                    self.errors.push(LabelError {
                        container: m.name.clone(),
                        label: settings.label(m.rule_label),
                        reason: format!(
                            "host {host} is already served by app {owner}, whose containers are older; app {name} is refused until one of them gives it up"
                        ),
                    });
                }
                continue;
            }
            for h in hosts {
                claimed.insert(h, name.clone());
            }
        }
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

    pub fn last_started(&self) -> Instant {
        self.members.iter().map(|m| m.started).max().unwrap_or_default()
    }

    pub fn oldest_created(&self) -> Instant {
        self.members.iter().map(|m| m.created).min().unwrap_or_default()
    }

    /// Whether any member's labels ask for this slot to be stable.
    pub fn labelled_stable(&self) -> bool {
        self.members.iter().any(|m| m.seed_role == Role::Stable)
    }
}
