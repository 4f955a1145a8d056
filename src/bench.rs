//! `vecshard bench` and `vecshard bench-cluster`: read the dataset's files, then run the
//! benchmark library (`vecshard-bench`).

use std::path::Path;

use anyhow::Result;
use vecshard_bench::Dataset;
pub use vecshard_bench::cluster::BenchClusterArgs;
pub use vecshard_bench::shard::BenchArgs;

use crate::datafile::{read_fvecs, read_ivecs};

pub fn run(a: BenchArgs) -> Result<()> {
    let data = load(&a.dataset, true)?;
    vecshard_bench::shard::run(a, data)
}

/// `tls`: run router and node with generated certificates (the global `--tls`).
pub fn run_cluster(a: BenchClusterArgs, tls: bool) -> Result<()> {
    let data = load(&a.dataset, false)?;
    vecshard_bench::cluster::run(a, data, tls)
}

/// base.fvecs, query.fvecs and groundtruth.ivecs (optional unless `need_truth`) of `dir`.
fn load(dir: &Path, need_truth: bool) -> Result<Dataset> {
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
