//! The Rust client of a vecshard router — the counterpart of `clients/python`, and what the
//! `vecshard` command line's cluster commands are made of.
//!
//! - [`Connector`]: how to reach routers (TLS verified against a CA or the system's roots,
//!   the API key from `VECSHARD_API_KEY`); [`Connector::connect`] gives a [`Client`] of the
//!   router's gRPC API.
//! - [`collections`], [`search`], [`admin`]: the operations, typed; [`admin`] goes through a
//!   router's REST address (followers forward to the Raft leader).
//! - [`text`]: the plain-text renderings `vecshard collection …` and `vecshard status` print.
//!
//! It never depends on the engine, a node or the router crate: only the public API (proto)
//! and the model. Errors are `anyhow` chains that read well on a terminal ([`status`]).

pub mod admin;
pub mod collections;
mod connect;
pub mod rest;
pub mod search;
pub mod text;

pub use connect::{ApiKey, Client, Connector};

/// A gRPC error as an error that reads well on a terminal: `Code: message`.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", s.code(), s.message())
}
