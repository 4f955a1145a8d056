//! vecshard's benchmarks, behind `vecshard bench` and `vecshard bench-cluster`: the same
//! TEXMEX data through one embedded shard, through a node over loopback gRPC, and through
//! a router with nodes in this process. The command line reads the dataset's files and
//! hands them over as a [`Dataset`]; these functions print their results.
//!
//! Errors are `anyhow`: a benchmark reports and stops, no caller branches on them.

pub mod cluster;
pub mod measure;
pub mod shard;
mod via_node;

/// A TEXMEX dataset in memory.
#[derive(Debug)]
pub struct Dataset {
    /// The vectors to insert (key = row number).
    pub base: Vec<Vec<f32>>,
    /// The query vectors.
    pub queries: Vec<Vec<f32>>,
    /// For each query, the row numbers of its true nearest neighbours (L2), when known.
    pub truth: Option<Vec<Vec<i32>>>,
}
