//! The async runtime of the serving commands (`dev`, `router`, `node`).
//!
//! Tokio's multi-thread runtime with one worker per core unless `VECSHARD_WORKER_THREADS`
//! says otherwise (a positive integer): the served-path measurements
//! (`docs/design/016-served-path.md`) compare worker counts with one binary.

use anyhow::{Context, Result, bail};

/// The environment variable that sets the number of runtime workers.
pub const WORKER_THREADS_ENV: &str = "VECSHARD_WORKER_THREADS";

/// Workers from the environment: `None` when unset (tokio's default, one per core).
fn worker_threads() -> Result<Option<usize>> {
    let Some(raw) = std::env::var_os(WORKER_THREADS_ENV) else {
        return Ok(None);
    };
    let text = raw.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => bail!("{WORKER_THREADS_ENV}={text:?}: expected a positive number of worker threads"),
    }
}

/// A multi-thread runtime with every driver enabled, threads named `name`.
pub fn server(name: &str) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all().thread_name(name);
    if let Some(n) = worker_threads()? {
        b.worker_threads(n);
    }
    b.build().context("start the async runtime")
}
