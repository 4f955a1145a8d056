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
//!
//! Replication (note 014, "Observability"; names under `vecshard_`, reported by a
//! replicated shard's primary):
//!
//! - `replica_lag_seqs{collection,shard,follower}`: sequence numbers a follower is behind
//!   the primary's last one;
//! - `replica_lag_seconds{collection,shard,follower}`: seconds since it last held the
//!   primary's whole log (0 while it does);
//! - `replica_catchup_bytes_total{collection,shard,follower}`: bytes of frames sent to it
//!   while it was behind, since this primary's epoch began;
//! - `isr_size{collection,shard}`: replicas the primary counts as in sync, itself included;
//! - `write_ack_wait_seconds{collection,shard}`: how long a write durable on the primary
//!   waited for its acknowledgement rule (or its deadline).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::{encode, encode_eof, encode_registry};
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry as PromRegistry;

use crate::placement::ShardId;
use crate::reads::ReadPool;
use crate::registry::{Registry, SlotStatus};
use crate::replication::observe::FollowerLag;

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
    /// Replication's metrics, under `vecshard_` (note 014 names them so).
    replication: PromRegistry,
    ack_wait: HistFamily<ShardLabels>,
    lease_refusals: Family<ShardLabels, Counter>,
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
        let lease_refusals = Family::<ShardLabels, Counter>::default();
        registry.register(
            "read_lease_refusals",
            "Reads a replaceable writer refused for want of a read lease from the Raft leader",
            lease_refusals.clone(),
        );
        registry.register_collector(Box::new(ShardCollector {
            shards: shards.clone(),
            reads,
        }));
        let mut replication = PromRegistry::with_prefix("vecshard");
        let ack_wait: HistFamily<ShardLabels> = Family::new_with_constructor(latency_histogram);
        replication.register(
            "write_ack_wait_seconds",
            "How long a write durable on a replicated shard's primary waited for its acknowledgement rule",
            ack_wait.clone(),
        );
        replication.register_collector(Box::new(ReplicationCollector { shards }));
        Metrics {
            registry,
            requests,
            latency,
            engine_write,
            group_requests,
            replication,
            ack_wait,
            lease_refusals,
        }
    }

    /// Count a read refused for want of a read lease.
    pub fn lease_refused(&self, id: &ShardId) {
        self.lease_refusals
            .get_or_create(&ShardLabels::of(id))
            .inc();
    }

    /// The histogram of acknowledgement waits of shard `id` (a replicated primary's).
    pub fn ack_wait(&self, id: &ShardId) -> Histogram {
        self.ack_wait.get_or_create(&ShardLabels::of(id)).clone()
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
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode(&mut out, &self.replication));
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode metrics");
            out.clear();
            let _ = encode_eof(&mut out);
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabels {
    collection: String,
    shard: u32,
    follower: String,
}

/// Replication gauges read from each replicated primary at scrape time.
#[derive(Debug)]
struct ReplicationCollector {
    shards: Arc<Registry>,
}

/// One follower's value of a replication metric.
enum Value {
    Gauge(i64),
    Seconds(f64),
    Counter(u64),
}

type FollowerValue = fn(&FollowerLag) -> Value;

impl Collector for ReplicationCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::metrics::MetricType;
        let statuses = self.shards.statuses(false);
        let primaries: Vec<_> = statuses
            .iter()
            .filter_map(|s| Some((&s.id, s.followers.as_ref()?)))
            .collect();
        let per_follower: [(&str, &str, MetricType, FollowerValue); 3] = [
            (
                "replica_lag_seqs",
                "Sequence numbers a follower is behind its primary's last one",
                MetricType::Gauge,
                |f| Value::Gauge(f.lag_seqs as i64),
            ),
            (
                "replica_lag_seconds",
                "Seconds since a follower last held its primary's whole log (0 while it does)",
                MetricType::Gauge,
                |f| Value::Seconds(f.lag.as_secs_f64()),
            ),
            (
                "replica_catchup_bytes",
                "Bytes of frames a primary sent to a follower while the follower was behind",
                MetricType::Counter,
                |f| Value::Counter(f.catchup_bytes),
            ),
        ];
        for (name, help, kind, get) in per_follower {
            let mut m = enc.encode_descriptor(name, help, None, kind)?;
            for (id, followers) in &primaries {
                for f in followers.iter() {
                    let labels = FollowerLabels {
                        collection: id.collection.clone(),
                        shard: id.shard,
                        follower: f.node.clone(),
                    };
                    let e = m.encode_family(&labels)?;
                    match get(f) {
                        Value::Gauge(v) => ConstGauge::new(v).encode(e)?,
                        Value::Seconds(v) => ConstGauge::new(v).encode(e)?,
                        Value::Counter(v) => ConstCounter::new(v).encode(e)?,
                    }
                }
            }
        }
        let mut m = enc.encode_descriptor(
            "isr_size",
            "Replicas a replicated shard's primary counts as in sync, itself included",
            None,
            MetricType::Gauge,
        )?;
        for (id, followers) in &primaries {
            let size = 1 + followers.iter().filter(|f| f.in_sync).count() as i64;
            ConstGauge::new(size).encode(m.encode_family(&ShardLabels::of(id))?)?;
        }
        Ok(())
    }
}
