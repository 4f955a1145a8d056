//! Prometheus metrics (names under `vecshard_node_`):
//!
//! - `requests_total{collection,shard,op,outcome}` and
//!   `request_duration_seconds{collection,shard,op}`: every shard-level call;
//! - `engine_write_duration_seconds{collection,shard}` (WAL append, sync and memtable
//!   insert of one grouped write) and `write_group_requests{collection,shard}` (how many
//!   requests one engine write carried);
//! - per shard, read from the engine at scrape time: `shard_state`, `shard_epoch`,
//!   `shard_points`, `shard_segments`, `shard_memtable_rows`, `shard_segment_bytes`,
//!   `shard_wal_bytes`, `shard_mailbox_depth`, `shard_flushes_total`,
//!   `shard_compactions_total`, `shard_cache_hits_total{tier}`, `shard_cache_misses_total`;
//! - `read_queue_depth`: reads running or waiting for a search thread.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, text::encode};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry as PromRegistry;

use crate::placement::ShardId;
use crate::reads::ReadPool;
use crate::registry::{Registry, SlotStatus};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    collection: String,
    shard: u32,
    op: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    collection: String,
    shard: u32,
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    collection: String,
    shard: u32,
}

impl ShardLabels {
    fn of(id: &ShardId) -> Self {
        ShardLabels {
            collection: id.collection.clone(),
            shard: id.shard,
        }
    }
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: PromRegistry,
    requests: Family<RequestLabels, Counter>,
    latency: HistFamily<OpLabels>,
    engine_write: HistFamily<ShardLabels>,
    group_requests: HistFamily<ShardLabels>,
}

fn latency_histogram() -> Histogram {
    // 25 µs … about 0.8 s.
    Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
}

fn group_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

impl Metrics {
    /// Metrics over `shards` and the read pool.
    pub fn new(shards: Arc<Registry>, reads: Arc<ReadPool>) -> Metrics {
        let mut registry = PromRegistry::with_prefix("vecshard_node");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistFamily<OpLabels> = Family::new_with_constructor(latency_histogram);
        let engine_write: HistFamily<ShardLabels> = Family::new_with_constructor(latency_histogram);
        let group_requests: HistFamily<ShardLabels> = Family::new_with_constructor(group_histogram);
        registry.register(
            "requests",
            "Shard-level calls by operation and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Latency of shard-level calls",
            latency.clone(),
        );
        registry.register(
            "engine_write_duration_seconds",
            "Duration of one grouped engine write (WAL append and sync, memtable insert)",
            engine_write.clone(),
        );
        registry.register(
            "write_group_requests",
            "Write requests carried by one engine write",
            group_requests.clone(),
        );
        registry.register_collector(Box::new(ShardCollector { shards, reads }));
        Metrics {
            registry,
            requests,
            latency,
            engine_write,
            group_requests,
        }
    }

    /// Count a call and its latency.
    pub fn observe_request(
        &self,
        id: &ShardId,
        op: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                collection: id.collection.clone(),
                shard: id.shard,
                op,
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&OpLabels {
                collection: id.collection.clone(),
                shard: id.shard,
                op,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Record one engine write carrying `requests` requests.
    pub fn observe_engine_write(
        &self,
        id: &ShardId,
        elapsed: Duration,
        requests: usize,
        _points: usize,
    ) {
        let labels = ShardLabels::of(id);
        self.engine_write
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        self.group_requests
            .get_or_create(&labels)
            .observe(requests as f64);
    }

    /// The OpenMetrics text of every metric. Reads engine stats: call off the async
    /// runtime.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Per-shard gauges and counters read from the engine at scrape time (so released
/// shards disappear from the output).
#[derive(Debug)]
struct ShardCollector {
    shards: Arc<Registry>,
    reads: Arc<ReadPool>,
}

type Getter = fn(&SlotStatus) -> Option<u64>;

impl ShardCollector {
    fn gauge(
        enc: &mut DescriptorEncoder,
        statuses: &[SlotStatus],
        name: &str,
        help: &str,
        get: Getter,
    ) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for s in statuses {
            if let Some(v) = get(s) {
                ConstGauge::new(v as i64).encode(m.encode_family(&ShardLabels::of(&s.id))?)?;
            }
        }
        Ok(())
    }

    fn counter(
        enc: &mut DescriptorEncoder,
        statuses: &[SlotStatus],
        name: &str,
        help: &str,
        get: Getter,
    ) -> std::fmt::Result {
        let mut m = enc.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for s in statuses {
            if let Some(v) = get(s) {
                ConstCounter::new(v).encode(m.encode_family(&ShardLabels::of(&s.id))?)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    collection: String,
    shard: u32,
    role: &'static str,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabels {
    collection: String,
    shard: u32,
    tier: &'static str,
}

impl Collector for ShardCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let statuses = self.shards.statuses(false);
        {
            let mut m = enc.encode_descriptor(
                "shard_state",
                "1 for the shard's lifecycle state and role",
                None,
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for s in &statuses {
                let labels = StateLabels {
                    collection: s.id.collection.clone(),
                    shard: s.id.shard,
                    role: s.role.as_str(),
                    state: s.state.as_str(),
                };
                ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
            }
        }
        let st = |s: &SlotStatus| s.stats.clone();
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_epoch",
            "Assignment epoch",
            |s| Some(s.epoch),
        )?;
        Self::gauge(&mut enc, &statuses, "shard_points", "Live points", |s| {
            s.stats.as_ref().map(|x| x.live_points)
        })?;
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_segments",
            "Immutable segments",
            |s| s.stats.as_ref().map(|x| x.segments),
        )?;
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_memtable_rows",
            "Rows in memtables (active and waiting for flush)",
            |s| s.stats.as_ref().map(|x| x.memtable_rows),
        )?;
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_segment_bytes",
            "Bytes of segment files",
            |s| s.stats.as_ref().map(|x| x.segment_bytes),
        )?;
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_wal_bytes",
            "Bytes of live write-ahead log",
            |s| s.stats.as_ref().map(|x| x.wal_bytes),
        )?;
        Self::gauge(
            &mut enc,
            &statuses,
            "shard_mailbox_depth",
            "Writes queued or running in the shard's actor",
            |s| Some(s.queued_writes as u64),
        )?;
        Self::counter(
            &mut enc,
            &statuses,
            "shard_flushes",
            "Memtable flushes since the shard opened",
            |s| s.stats.as_ref().map(|x| x.flushes),
        )?;
        Self::counter(
            &mut enc,
            &statuses,
            "shard_compactions",
            "Compactions since the shard opened",
            |s| s.stats.as_ref().map(|x| x.compactions),
        )?;
        Self::counter(
            &mut enc,
            &statuses,
            "shard_cache_misses",
            "Reads that went to the storage backend",
            |s| s.stats.as_ref().map(|x| x.cache_misses),
        )?;
        {
            let mut m = enc.encode_descriptor(
                "shard_cache_hits",
                "Reads served from the memory block cache or the disk cache",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for s in &statuses {
                let Some(x) = st(s) else { continue };
                for (tier, v) in [("memory", x.cache_memory_hits), ("disk", x.cache_disk_hits)] {
                    let labels = TierLabels {
                        collection: s.id.collection.clone(),
                        shard: s.id.shard,
                        tier,
                    };
                    ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        let m = enc.encode_descriptor(
            "read_queue_depth",
            "Reads running or waiting for a search thread",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(self.reads.in_flight() as i64).encode(m)?;
        Ok(())
    }
}
