//! The data path: writes, reads and searches routed to the shards' nodes.

pub mod call;
pub mod merge;
pub mod nodes;
pub mod read;
mod search;
mod write;
