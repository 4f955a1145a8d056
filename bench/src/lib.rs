//! vecshard's benchmarks, behind `vecshard bench` and `vecshard bench-cluster`: the same
//! TEXMEX data through one embedded shard, through a node over loopback gRPC, and through
//! a router with nodes in this process. The command line loads the dataset's files
//! ([`Dataset::load`]) and hands them over; these functions print their results.
//!
//! Errors are `anyhow`: a benchmark reports and stops, no caller branches on them.

use std::path::Path;

use anyhow::Result;
use vecshard_transfer::read::{read_fvecs, read_ivecs};

pub mod cluster;
pub mod cold;
pub mod measure;
pub mod replication;
pub mod served;
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

impl Dataset {
    /// `base.fvecs`, `query.fvecs` and `groundtruth.ivecs` of `dir`; the ground truth is
    /// optional unless `need_truth`.
    pub fn load(dir: &Path, need_truth: bool) -> Result<Dataset> {
        let base = read_fvecs(&dir.join("base.fvecs"))?;
        let queries = read_fvecs(&dir.join("query.fvecs"))?;
        let truth = read_ivecs(&dir.join("groundtruth.ivecs"));
        let truth = if need_truth { Some(truth?) } else { truth.ok() };
        Ok(Dataset {
            base,
            queries,
            truth,
        })
    }
}
