//! Moving points in and out of vecshard.
//!
//! - [`read`]: points from files — `.fvecs`, JSON lines (the model's point grammar),
//!   Parquet and `.npy` — streamed, every error naming the file and the line or row.
//! - [`import`]: a file into one shard ([`import::local`]) or through a router
//!   ([`import::router`]); both stop on the first failure and report the acknowledged prefix.
//! - [`export`]: every point of a collection through a router's scan into JSON lines or
//!   Parquet ([`write`]).
//!
//! Errors are `anyhow` chains: each layer adds what it was doing (file, line, batch).

pub mod export;
pub mod format;
pub mod import;
pub mod read;
pub mod router;
pub mod write;

pub use format::Format;
pub use router::Router;
