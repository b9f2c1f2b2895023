//! Traefik's own endpoints, read back: what Traefik did with the configuration pointsman wrote.
//!
//! pointsman writes files and Traefik loads them on its own schedule, so "written" is not
//! "applied", and a canary's health is only visible in Traefik's numbers. Both are plain HTTP
//! GETs against Traefik:
//!
//! - [`metrics`]: Traefik's Prometheus endpoint → per-service request, 5xx and latency
//!   counters ([`metrics::scrape`]), and the pure judgement of one canary step from two scrapes
//!   ([`metrics::judge`]). [`exposition`] is the text-format parser underneath.
//! - [`api`]: Traefik's API (`/api/http/routers/NAME@file`, `/api/http/services/NAME@file`) →
//!   [`api::wait_applied`], which returns once Traefik serves exactly the configuration just
//!   written, or says why it does not (unreachable, a router's own error, a foreign file that
//!   froze the file provider, or simply stale).
//! - `http` (crate-private): the GET both use (hyper's pooled client, one timeout per
//!   request); `pointsman healthcheck` asks the controller's `/healthz` with it too.

pub mod api;
pub mod exposition;
pub(crate) mod http;
pub mod metrics;
