//! A typed model of the part of Traefik's dynamic configuration pointsman writes.
//!
//! The core renders these values; each sink serialises them its own way (the directory sink as
//! JSON in a `.yml` file, a key/value sink as Traefik's flattened keys). Field names and shapes
//! are Traefik's own (`http.routers`, `http.services.NAME.loadBalancer.servers[].url`, …), so
//! serde's output *is* the file-provider format. Fields are declared in alphabetical order of
//! their serialised names: struct fields serialise in declaration order, and the files were
//! written with sorted keys before this model existed, so the bytes did not change.
//!
//! Maps are `BTreeMap`s: output is deterministic, which lets the sinks skip identical writes.

use std::collections::BTreeMap;

use serde::Serialize;

/// One unit of dynamic configuration (one file, one set of keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dynamic {
    pub http: Http,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Http {
    pub routers: BTreeMap<String, Router>,
    pub services: BTreeMap<String, Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Router {
    #[serde(rename = "entryPoints")]
    pub entry_points: Vec<String>,
    /// Unset: Traefik uses the rule's length, so longer (more specific) rules win.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    pub rule: String,
    pub service: String,
}

/// A service: one of Traefik's service kinds, serialised as `{"loadBalancer": {...}}` etc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Service {
    LoadBalancer(LoadBalancer),
    /// Splits requests between other services by weight. Traefik fails the whole weighted
    /// service (404) if any child is missing, even one of weight 0: the renderer never refers
    /// to a child that has no servers.
    Weighted(Weighted),
    /// Sends every request to `service` and a copy of `percent` % to each mirror, discarding
    /// the mirrors' answers.
    Mirroring(Mirroring),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadBalancer {
    /// An empty list makes Traefik answer 503 (a missing service would be a 404).
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Weighted {
    pub services: Vec<WeightedChild>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<Sticky>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedChild {
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sticky {
    pub cookie: Cookie,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cookie {
    /// The cookie's `Domain`: set for a project whose apps sit on one host and hosts below it,
    /// so the browser sends one project cookie to all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(rename = "httpOnly")]
    pub http_only: bool,
    pub name: String,
    #[serde(rename = "sameSite")]
    pub same_site: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirroring {
    #[serde(rename = "maxBodySize", skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<u64>,
    pub mirrors: Vec<Mirror>,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mirror {
    pub name: String,
    pub percent: u32,
}

impl Service {
    pub fn load_balancer(urls: impl IntoIterator<Item = String>) -> Service {
        Service::LoadBalancer(LoadBalancer {
            servers: urls.into_iter().map(|url| Server { url }).collect(),
        })
    }
}

impl Dynamic {
    /// Every service this configuration's routers and services refer to exists in it: the
    /// invariant that keeps Traefik from failing a router or a weighted service with a 404.
    pub fn dangling_references(&self) -> Vec<String> {
        let has = |name: &str| self.http.services.contains_key(name);
        let mut missing = Vec::new();
        for (name, r) in &self.http.routers {
            if !has(&r.service) {
                missing.push(format!("router {name} → service {}", r.service));
            }
        }
        for (name, s) in &self.http.services {
            let children: Vec<&str> = match s {
                Service::LoadBalancer(_) => vec![],
                Service::Weighted(w) => w.services.iter().map(|c| c.name.as_str()).collect(),
                Service::Mirroring(m) => std::iter::once(m.service.as_str())
                    .chain(m.mirrors.iter().map(|c| c.name.as_str()))
                    .collect(),
            };
            for child in children.into_iter().filter(|c| !has(c)) {
                missing.push(format!("service {name} → service {child}"));
            }
        }
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_serialise_in_traefiks_shape() {
        let weighted = Service::Weighted(Weighted {
            services: vec![WeightedChild {
                name: "web-slot-blue".into(),
                weight: 90,
            }],
            sticky: Some(Sticky {
                cookie: Cookie {
                    domain: None,
                    http_only: true,
                    name: "pointsman-web-lb".into(),
                    same_site: "lax".into(),
                },
            }),
        });
        assert_eq!(
            serde_json::to_string(&weighted).unwrap(),
            r#"{"weighted":{"services":[{"name":"web-slot-blue","weight":90}],"sticky":{"cookie":{"httpOnly":true,"name":"pointsman-web-lb","sameSite":"lax"}}}}"#
        );
        assert_eq!(
            serde_json::to_string(&Service::load_balancer(["http://10.0.0.2:80".to_string()])).unwrap(),
            r#"{"loadBalancer":{"servers":[{"url":"http://10.0.0.2:80"}]}}"#
        );
    }

    #[test]
    fn dangling_references_are_found() {
        let mut d = Dynamic::default();
        d.http.routers.insert(
            "web".into(),
            Router {
                entry_points: vec!["web".into()],
                priority: None,
                rule: "Host(`a`)".into(),
                service: "web".into(),
            },
        );
        assert_eq!(d.dangling_references(), ["router web → service web"]);
        d.http.services.insert("web".into(), Service::load_balancer([]));
        assert!(d.dangling_references().is_empty());
    }
}
