//! vecshard-model: the data model every layer shares, free of I/O — keys, values, points,
//! metrics, index parameters and their defaults, limits, validation, the JSON grammar of
//! points and filters, and (feature `proto`) the one conversion to and from the gRPC types.
//! Time is part of the model too: a [`Clock`] (the system one with feature `tokio`) that
//! timers take as a value.
//!
//! Every rule of the data model is written here once; the engine, the node, the router and
//! the CLI call it and map [`ValidationError`] to their own error once.
#![warn(missing_docs)]

pub mod clock;
pub mod deadline;
mod error;
pub mod filter;
mod filter_json;
mod index;
pub mod json;
mod key;
pub mod limits;
mod metric;
mod point;
#[cfg(feature = "proto")]
pub mod proto;
pub mod replication;
pub mod storage_url;
pub mod validate;
mod value;

pub use clock::{Clock, ManualClock};
pub use error::{MAX_MESSAGE_BYTES, ValidationError, ValidationKind, bounded_message};
pub use filter::{Filter, Range};
pub use index::IndexParams;
pub use key::Key;
pub use metric::Metric;
pub use point::Point;
pub use value::{Metadata, Value};
