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
//! A functional core inside a thin I/O shell.
//!
//! Core (pure, synchronous, no I/O):
//! - [`container`]: a container as Docker's inspect describes it (the fixture format).
//! - [`labels`]: one container's labels → a [`labels::Member`] or a [`labels::LabelError`].
//! - [`rule`]: Traefik v3 rule parsing, so no rule Traefik would reject is ever written.
//! - [`model`]: members grouped into apps and slots; roles resolved against what exists.
//! - [`state`]: the roles pointsman owns and their history.
//! - [`roles`]: seeding from labels, relabel, promote, rollback.
//! - [`render`]: fleet + roles → the bytes of each file.
//!
//! Shell:
//! - [`store`]: the directory, the state file, the lock, atomic writes.
//! - [`docker`]: Docker behind a narrow trait (bollard's engine, or an in-memory fake for
//!   tests) and the watcher, the event/resync state machine.
//! - [`controller`]: `pointsman run`, the single owner of the snapshot.
//! - [`cli`], [`commands`]: arguments → validated config; what each subcommand does.

pub mod backend;
pub mod cli;
pub mod controller;
pub mod core;
pub mod docker;
