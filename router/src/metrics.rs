//! Prometheus metrics, served at `GET /metrics` on the REST listener (names under
//! `vecshard_router_`):
//!
//! - `requests_total{op,code}` and `request_duration_seconds{op}`: every client operation
//!   (gRPC and REST alike), `code` the gRPC code name of the outcome (`OK`, `UNAVAILABLE`…);
//! - `shard_call_retries_total{reason}`: shard-level calls retried (`not_owner`,
//!   `transient`, `moved`, `waiting`);
//! - at scrape time: `raft_leader` (1 on the leader), `shard_map_version`,
//!   `nodes{state}`, `shards{state}`.

use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::{Error, ErrorKind};
use crate::error_status::code_name;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    op: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs … about 50 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

/// The router's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    latency: HistFamily<OpLabels>,
    retries: Family<ReasonLabels, Counter>,
    leader: Gauge,
    version: Gauge,
    nodes: Family<StateLabels, Gauge>,
    shards: Family<StateLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vecshard_router");
        let requests = Family::<OutcomeLabels, Counter>::default();
        let latency =
            HistFamily::<OpLabels>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let retries = Family::<ReasonLabels, Counter>::default();
        let (leader, version) = (Gauge::default(), Gauge::default());
        let nodes = Family::<StateLabels, Gauge>::default();
        let shards = Family::<StateLabels, Gauge>::default();
        registry.register("requests", "Client operations by outcome", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Client operation latency",
            latency.clone(),
        );
        registry.register(
            "shard_call_retries",
            "Shard-level calls retried, by reason",
            retries.clone(),
        );
        registry.register(
            "raft_leader",
            "1 if this router is the Raft leader",
            leader.clone(),
        );
        registry.register(
            "shard_map_version",
            "Last applied Raft log index",
            version.clone(),
        );
        registry.register("nodes", "Data nodes by liveness", nodes.clone());
        registry.register("shards", "Shards by state", shards.clone());
        Metrics {
            registry,
            requests,
            latency,
            retries,
            leader,
            version,
            nodes,
            shards,
        }
    }
}

impl Metrics {
    /// Record one client operation.
    pub fn observe<T>(&self, op: &'static str, started: Instant, result: &Result<T, Error>) {
        let code = match result {
            Ok(_) => "OK",
            Err(e) => code_name(e.kind()),
        };
        self.requests
            .get_or_create(&OutcomeLabels { op, code })
            .inc();
        self.latency
            .get_or_create(&OpLabels { op })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Record a retried shard call.
    pub fn retry(&self, reason: &'static str) {
        self.retries.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The text exposition, after setting the scrape-time gauges.
    pub fn render(
        &self,
        leader: bool,
        version: u64,
        nodes: &[(String, i64)],
        shards: &[(String, i64)],
    ) -> Result<String, Error> {
        self.leader.set(i64::from(leader));
        self.version.set(version as i64);
        self.nodes.clear();
        for (state, n) in nodes {
            self.nodes
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        self.shards.clear();
        for (state, n) in shards {
            self.shards
                .get_or_create(&StateLabels {
                    state: state.clone(),
                })
                .set(*n);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry)
            .map_err(|e| Error::new(ErrorKind::Internal, format!("metrics: {e}")))?;
        Ok(out)
    }
}
