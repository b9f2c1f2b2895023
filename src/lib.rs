//! pointsman: blue-green and canary releases of Docker containers behind Traefik.
//!
//! Docker labels cannot change on a running container, so "relabel to promote" with
//! Traefik's Docker provider means recreating containers: requests drop and the container
//! you verified is restarted. pointsman keeps roles in its own state file and writes Traefik
//! file-provider configuration instead, so a promotion is an atomic file rename that Traefik
//! hot-reloads.
//!
//! # Layout
//!
//! A functional core inside a thin I/O shell; the shell's backends sit behind two seams.
//!
//! [`core`] — pure, synchronous, no I/O; most tests need neither Docker nor a disk:
//! - [`core::container`]: a container as Docker's inspect describes it (the fixture format).
//! - [`core::labels`]: one container's labels → a member of an app, or a label error.
//! - [`core::rule`]: Traefik v3 rule grammar; [`core::rule`]'s `regexp` submodule checks Go
//!   regexp (RE2) syntax, so no rule Traefik would reject is ever written.
//! - [`core::settings`]: the operator's choices that shape the files, recorded in the state.
//! - [`core::model`]: the [`core::model::Fleet`]: members grouped into apps and slots, kept up
//!   to date one container at a time, with a host-claim index; each change names the apps it
//!   touched.
//! - [`core::state`]: roles, settings, host claims and history: what pointsman owns.
//! - [`core::ops`]: [`core::ops::Operation`] values (relabel, promote, rollback, canary…, and
//!   their project-wide forms) and seeding,
//!   applied to (fleet, state, now) → transitions, or a refusal in the operator's words.
//! - [`core::traefik`]: a typed model of Traefik's dynamic configuration.
//! - [`core::render`]: fleet + state → each unit's configuration: an app's, or all the apps
//!   of a Compose project's together (one file, so a project-wide change is one reload).
//!
//! [`backend`] — where configuration and state live:
//! - [`backend::ConfigSink`] and [`backend::StateStore`]: the seams the controller and the CLI
//!   write through (a state transaction that publishes configuration with it).
//! - [`backend::dir`]: the directory implementation (atomic renames, flock, `state.json`).
//! - [`backend::foreign`]: files in the directory pointsman does not own, checked as Traefik
//!   will read them.
//! - [`backend::redis`]: the shared store of several hosts: roles in `pointsman/state` (WATCH/
//!   MULTI), Traefik's keys for its Redis provider, each host's containers, the leader's lease;
//!   [`backend::redis::resp`] is its small blocking client.
//!
//! [`docker`] — the Docker edge behind a narrow trait, [`docker::DockerApi`]: bollard's
//! engine ([`docker::engine`]) or an in-memory fake for tests ([`docker::fake`]);
//! [`docker::watcher`] turns Docker into a stream of events and resyncs; [`docker::backoff`]
//! spaces reconnects.
//!
//! [`traefik`] — reading Traefik back: [`traefik::metrics`] scrapes its Prometheus endpoint
//! and judges a canary step (pure); [`traefik::api`] waits until its API shows the routing
//! just written (verified apply), or names why not.
//!
//! [`controller`] — `pointsman run`: one owner of the model, fed by one stream of inputs.
//!
//! [`multihost`] — `pointsman run --store redis://…`: each host publishes its containers to
//! Redis ([`backend::redis`]) under a lease, and the one controller holding the leader's lease
//! runs the same [`controller::Controller`] over every host's containers, fenced.
//!
//! [`observe`] — what operators see of a running controller (`run --listen`): the
//! [`observe::Observer`] the controller reports to (Docker connection, each reconcile, roles,
//! history, fleet), and an axum server that only reads it: `/metrics`
//! ([`observe::metrics`]), `/healthz` ([`observe::health`]), the status page
//! ([`observe::status`], [`observe::page`]); [`observe::traffic`] adds Traefik's per-service
//! rates to the page.
//!
//! [`cli`] — arguments → one validated config; [`cli::commands`] runs each subcommand as one
//! state transaction.

pub mod backend;
pub mod cli;
pub mod controller;
pub mod core;
pub mod docker;
pub mod multihost;
pub mod observe;
pub mod sys;
pub mod traefik;
