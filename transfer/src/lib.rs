//! Moving points in and out of vecshard.
//!
//! - [`read`]: points from files — `.fvecs`, JSON lines (the model's point grammar),
//!   Parquet and `.npy` — streamed, every error naming the file and the line or row.
//! - [`import`]: a file into one shard ([`import::local`]) or through a router
//!   ([`import::router`]); both stop on the first failure and report the acknowledged prefix.
//! - [`export`]: every point of a collection through a router's scan into JSON lines or
//!   Parquet ([`write`]).
//! - [`Progress`]: what a long import or export shows (a bar, or `acked N` lines).
//!
//! Errors are `anyhow` chains: each layer adds what it was doing (file, line, batch).

pub mod export;
pub mod format;
pub mod import;
mod progress;
pub mod read;
pub mod router;
pub mod write;

pub use format::Format;
pub use progress::Progress;
pub use router::Router;
