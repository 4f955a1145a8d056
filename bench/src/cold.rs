//! The cold part of `vecshard bench`: open a shard read-only (optionally through an injected
//! object-store latency), then time the first query and the first 100 queries, with the
//! bytes fetched and the memory held — the "before" column of issue 13.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use vecshard_engine::storage::{Latency, LatencyStorage, open_commit_store, open_storage};
use vecshard_engine::{Options, SearchRequest, Shard};

use crate::measure::{round, rss_bytes};

/// Queries timed one by one right after the open.
const COLD_QUERIES: usize = 100;

/// What the cold open and the first queries cost.
pub struct Cold {
    pub open_s: f64,
    pub open_bytes_fetched: u64,
    pub first_query_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub queries: usize,
    pub bytes_fetched: u64,
    pub rss_after_open_bytes: u64,
    pub rss_after_queries_bytes: u64,
    pub latency: Option<Latency>,
    pub injected_requests: u64,
    pub injected_s: f64,
}

impl Cold {
    /// The JSON fields of the summary.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "open_s": round(self.open_s, 3), "open_bytes_fetched": self.open_bytes_fetched,
            "first_query_ms": round(self.first_query_ms, 2),
            "cold_queries": self.queries, "cold_p50_ms": round(self.p50_ms, 2),
            "cold_p99_ms": round(self.p99_ms, 2), "cold_bytes_fetched": self.bytes_fetched,
            "rss_after_open_bytes": self.rss_after_open_bytes,
            "rss_after_cold_queries_bytes": self.rss_after_queries_bytes,
            "object_latency_ms": self.latency.map(|l| l.first_byte.as_millis() as u64),
            "object_bandwidth_bytes_per_s": self.latency.and_then(|l| l.bytes_per_sec),
            "injected_requests": self.injected_requests, "injected_s": round(self.injected_s, 3),
        })
    }
}

/// Open `location` read-only with `opts` (through `latency` when given) and time the first
/// [`COLD_QUERIES`] of `requests`, one at a time.
pub fn open_cold(
    location: &str,
    opts: &Options,
    latency: Option<Latency>,
    requests: &[SearchRequest],
) -> Result<(Shard, Cold)> {
    let opts = Options {
        read_only: true,
        ..opts.clone()
    };
    let storage_opts = opts.storage_options();
    let t = Instant::now();
    let mut storage = open_storage(location, &storage_opts)?;
    let slow = latency.map(|l| Arc::new(LatencyStorage::new(storage.clone(), l)));
    if let Some(s) = &slow {
        storage = s.clone();
    }
    let commits = open_commit_store(opts.commit_store.as_deref(), storage.clone(), location)?;
    let shard = Shard::open_with(storage, Some(commits), None, opts)?;
    let open_s = t.elapsed().as_secs_f64();
    let open_bytes_fetched = shard.stats().bytes_fetched;
    let rss_after_open_bytes = rss_bytes();

    let mut lat: Vec<Duration> = Vec::with_capacity(COLD_QUERIES);
    for r in requests.iter().take(COLD_QUERIES) {
        let t = Instant::now();
        shard.search(r)?;
        lat.push(t.elapsed());
    }
    let first_query_ms = lat.first().map_or(0.0, |d| d.as_secs_f64() * 1e3);
    lat.sort_unstable();
    let pct = |p: f64| match lat.len() {
        0 => 0.0,
        n => lat[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e3,
    };
    let injected = slow.as_ref().map(|s| s.injected()).unwrap_or_default();
    let cold = Cold {
        open_s,
        open_bytes_fetched,
        first_query_ms,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        queries: lat.len(),
        bytes_fetched: shard.stats().bytes_fetched,
        rss_after_open_bytes,
        rss_after_queries_bytes: rss_bytes(),
        latency,
        injected_requests: injected.requests,
        injected_s: injected.delay.as_secs_f64(),
    };
    Ok((shard, cold))
}
