//! The functional core: pure, synchronous functions of their inputs, no I/O.
//!
//! Labels → model → operations → rendered Traefik configuration. Everything the shell does
//! to Docker, the disk or (later) Redis happens outside this module, so the core is tested
//! without either.

pub mod admit;
pub mod container;
pub mod labels;
pub mod model;
pub mod names;
pub mod ops;
pub mod render;
pub mod rule;
pub mod settings;
pub mod state;
pub mod traefik;
