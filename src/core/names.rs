//! Every name pointsman derives for Traefik, in one place: routers, services, and what reads
//! them back (the judge's metrics, the page, verified apply).
//!
//! # Why names are disjoint by construction
//!
//! Apps share one Traefik, and Traefik keeps the *first* definition of a router or service name
//! and skips any other: an app able to produce another app's name takes that app's traffic. So
//! names are not made "unlikely" to collide, they are made unable to:
//!
//! - an app name is a lowercase DNS label (`[a-z0-9-]`, see [`crate::core::labels`]): it never
//!   holds a `.`;
//! - every name of app `APP` is `APP` itself, or `APP.KIND`, or `APP.KIND.SLOT`, with `KIND`
//!   from the fixed list [`Kind`] and `SLOT` only after a kind that takes one.
//!
//! The text before the first `.` is therefore always the app, and the text after it names the
//! kind (and slot) unambiguously: [`parse`] inverts every name, which is what the tests check.
//! Two apps can never share a name, whatever their names and slots; nor can two kinds of one
//! app. The same names are the keys under Traefik's Redis root key, so the Redis keys of two
//! apps are disjoint too.
//!
//! An app name made only of digits is refused by the label parser: Traefik's Redis provider
//! reads a key segment of digits as a list index, so the router `123` could not be stored.

use std::fmt;

/// The kinds of name an app has besides its public router and service (which are `APP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Router: the preview cookie or header `candidate` → the candidate's slot service.
    Candidate,
    /// Router on the preview entrypoint → the candidate's slot service.
    Preview,
    /// Router and service of one slot (`APP.slot.SLOT`): reached by the slot's cookie or header.
    Slot,
    /// Service: the candidate's servers as a child of the canary split (`APP.canary.SLOT`), so
    /// its metrics count public (weighted) traffic only, never preview requests.
    Canary,
    /// Service: what a mirror copies from (the stable slot, or the canary split).
    Primary,
    /// Router of a project canary: a visitor holding another app's candidate value.
    ProjectCandidate,
    /// Router of a project canary: a visitor holding another app's stable value.
    ProjectStable,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Candidate,
        Kind::Preview,
        Kind::Slot,
        Kind::Canary,
        Kind::Primary,
        Kind::ProjectCandidate,
        Kind::ProjectStable,
    ];

    fn word(self) -> &'static str {
        match self {
            Kind::Candidate => "candidate",
            Kind::Preview => "preview",
            Kind::Slot => "slot",
            Kind::Canary => "canary",
            Kind::Primary => "primary",
            Kind::ProjectCandidate => "project-candidate",
            Kind::ProjectStable => "project-stable",
        }
    }

    /// Whether the kind is followed by a slot name.
    pub fn takes_slot(self) -> bool {
        matches!(self, Kind::Slot | Kind::Canary)
    }
}

/// A name taken apart: which app, and which of its names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name<'a> {
    pub app: &'a str,
    /// `None`: the public router or service.
    pub kind: Option<Kind>,
    pub slot: Option<&'a str>,
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.app)?;
        if let Some(kind) = self.kind {
            write!(f, ".{}", kind.word())?;
        }
        if let Some(slot) = self.slot {
            write!(f, ".{slot}")?;
        }
        Ok(())
    }
}

/// The separator no app name holds.
pub const SEP: char = '.';

/// The public router and service of an app: `APP`.
pub fn public(app: &str) -> String {
    app.to_string()
}

/// `APP.candidate`: the router of the preview cookie and header value `candidate`.
pub fn candidate_router(app: &str) -> String {
    of(app, Kind::Candidate)
}

/// `APP.preview`: the router on the preview entrypoint.
pub fn preview_router(app: &str) -> String {
    of(app, Kind::Preview)
}

/// `APP.slot.SLOT`: the router and the service of one slot.
pub fn slot(app: &str, slot: &str) -> String {
    of_slot(app, Kind::Slot, slot)
}

/// `APP.canary.SLOT`: the candidate's service inside the canary split, counting public traffic
/// only (what a rollout is judged on).
pub fn canary(app: &str, slot: &str) -> String {
    of_slot(app, Kind::Canary, slot)
}

/// `APP.primary`: the service a mirror copies from.
pub fn primary(app: &str) -> String {
    of(app, Kind::Primary)
}

/// `APP.project-candidate` / `APP.project-stable`: a project canary's routers.
pub fn project_router(app: &str, candidate: bool) -> String {
    of(
        app,
        if candidate {
            Kind::ProjectCandidate
        } else {
            Kind::ProjectStable
        },
    )
}

fn of(app: &str, kind: Kind) -> String {
    debug_assert!(!kind.takes_slot());
    Name {
        app,
        kind: Some(kind),
        slot: None,
    }
    .to_string()
}

fn of_slot(app: &str, kind: Kind, slot: &str) -> String {
    Name {
        app,
        kind: Some(kind),
        slot: Some(slot),
    }
    .to_string()
}

/// Takes a name apart (a provider suffix such as `@file` or `@redis` is ignored). `None`: not a
/// name pointsman derives.
pub fn parse(name: &str) -> Option<Name<'_>> {
    let name = name.split_once('@').map_or(name, |(n, _)| n);
    let Some((app, rest)) = name.split_once(SEP) else {
        return (!name.is_empty()).then_some(Name {
            app: name,
            kind: None,
            slot: None,
        });
    };
    if app.is_empty() {
        return None;
    }
    let (word, slot) = match rest.split_once(SEP) {
        Some((w, s)) => (w, Some(s)),
        None => (rest, None),
    };
    let kind = Kind::ALL.into_iter().find(|k| k.word() == word)?;
    match (kind.takes_slot(), slot) {
        (true, Some(s)) if !s.is_empty() => Some(Name {
            app,
            kind: Some(kind),
            slot: Some(s),
        }),
        (false, None) => Some(Name {
            app,
            kind: Some(kind),
            slot: None,
        }),
        _ => None,
    }
}

/// The app a derived name belongs to.
pub fn app_of(name: &str) -> Option<&str> {
    parse(name).map(|n| n.app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_what_made_it() {
        for app in ["web", "web-slot-blue", "web-primary", "a", "0a", "x-candidate"] {
            assert_eq!(
                parse(&public(app)).unwrap(),
                Name {
                    app,
                    kind: None,
                    slot: None
                }
            );
            for kind in Kind::ALL {
                let name = if kind.takes_slot() {
                    of_slot(app, kind, "blue.v2_x")
                } else {
                    of(app, kind)
                };
                let parsed = parse(&name).unwrap();
                assert_eq!(parsed.app, app, "{name}");
                assert_eq!(parsed.kind, Some(kind), "{name}");
                assert_eq!(parsed.to_string(), name);
            }
        }
    }

    #[test]
    fn a_provider_suffix_is_ignored() {
        assert_eq!(app_of("web.slot.blue@file"), Some("web"));
        assert_eq!(app_of("web@redis"), Some("web"));
        assert_eq!(parse("web.nonsense"), None);
        assert_eq!(parse("web.slot"), None);
        assert_eq!(parse("web.primary.x"), None);
    }
}
