//! Cluster backups: a checkpoint of every shard of a collection plus a manifest written
//! last, listed, described, restored as a new collection and deleted. See
//! `docs/design/013-cluster-backups.md`.

mod allowed;
mod catalog;
mod create;
mod jobs;
pub mod manifest;
mod restore;
mod start;
pub mod store;

pub use catalog::read_complete;
pub use create::shard_location;
pub use jobs::{Job, Jobs};
pub use restore::RestoreRequest;
pub use start::Started;
