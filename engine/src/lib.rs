//! vecshard-engine: an embedded vector database for one shard.
#![warn(missing_docs)]

pub mod commit;
#[cfg(feature = "dynamodb")]
pub mod commit_dynamo;
pub mod distance;
mod error;
pub mod filter;
pub mod index;
pub mod paths;
pub mod storage;
mod types;

pub use error::{Error, ErrorKind, Result};
pub use filter::Filter;
pub use types::*;
