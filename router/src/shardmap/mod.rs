//! The shard map (the Raft state machine's contents), the commands that change it, and the
//! placement rules the leader follows.

mod apply;
pub mod placement;
pub mod replication;
mod types;

pub use types::*;

#[cfg(test)]
mod replication_model;
#[cfg(test)]
mod tests;
