//! Where configuration and state live: the seams between the core and the outside world.

pub mod dir;
pub mod foreign;
