//! The embedded engine from a terminal: the operations of `vecshard local …` on one shard
//! ([`Local`]) and `vecshard demo` ([`demo`]). Each prints what its command prints —
//! results and reports on stdout (JSON where a program reads them), summaries on stderr —
//! and returns an error (an `anyhow` chain naming the shard) instead of printing one.

pub mod demo;
mod local;

pub use local::{Local, Search};
