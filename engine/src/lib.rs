//! vecshard-engine: an embedded vector database for one shard — durable (WAL with group
//! commit), exact about what it acknowledges, searchable while it ingests, on local disk
//! or (feature `object-store`) on S3-compatible storage with fenced commits.
//!
//! Start with [`Shard`].
#![warn(missing_docs)]

mod chunked;
pub mod commit;
mod deletions;
pub mod distance;
mod error;
pub mod failpoints;
pub mod filter;
pub mod index;
pub mod malloc;
pub mod manifest;
mod memtable;
mod meta_index;
mod options;
pub mod paths;
mod pk_index;
mod segment;
mod shard;
pub mod storage;
mod types;
mod wal;

pub use error::{Error, ErrorKind, Result};
pub use filter::Filter;
pub use index::ReadAhead;
pub use options::{Durability, Options, Prefetch, SegmentFormat, ShardSpec};
pub use shard::{
    CheckpointSummary, Replicated, RestoreSummary, Shard, Stats, WalLoss, WalRepair,
    restore_checkpoint,
};
pub use types::*;
/// The data model the engine is built on (keys, values, points, filters, limits, rules).
pub use vecshard_model as model;
