//! `vecshard bench-replication`: what replication costs a writer (note 014, issue 17).
//! Against a RUNNING cluster (a router and at least as many data nodes as the largest
//! factor; `scripts/bench-replication.sh` starts one), for each `factor:write_ack` case it
//! creates a fresh local-disk collection with that replication factor and rule, upserts
//! the same generated points (seeded, uniform in [-1, 1)) in batches with a fixed number
//! in flight, and reports ingest throughput and the latency of one acknowledged upsert
//! (p50, p99) as a markdown table. The collection is dropped afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use vecshard_proto::v1 as pb;

use crate::cluster::status;
use crate::measure::round;

#[derive(Args)]
pub struct BenchReplicationArgs {
    /// The router's gRPC address (`host:port`).
    #[arg(long)]
    pub router: String,
    /// Cases as `factor:write_ack` (write_ack `majority` or `all`; ignored with factor 1).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1:majority,3:all,3:majority"
    )]
    pub cases: Vec<String>,
    /// Points per case.
    #[arg(long, default_value_t = 100_000)]
    pub points: usize,
    /// Dimension of the generated vectors.
    #[arg(long, default_value_t = 128)]
    pub dim: u32,
    /// Points per upsert.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Upserts in flight.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Shards per collection.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Seed of the generated points.
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
}

/// One case's results.
#[derive(Debug, Clone)]
struct Row {
    factor: u32,
    write_ack: String,
    points_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// A case from its `factor:write_ack` text.
fn parse_case(s: &str) -> Result<(u32, String)> {
    let (f, ack) = s.split_once(':').unwrap_or((s, "majority"));
    let factor: u32 = f
        .parse()
        .with_context(|| format!("case {s:?}: factor {f:?} is not a number"))?;
    if ack != "majority" && ack != "all" {
        bail!("case {s:?}: write_ack must be `majority` or `all`, got {ack:?}");
    }
    Ok((factor, ack.to_string()))
}

/// SplitMix64: a small, seeded generator for the points.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The batches of every case: `points` points of `dim` floats, keys 0.., `batch` a call.
fn batches(a: &BenchReplicationArgs) -> Vec<Vec<pb::Point>> {
    let mut rng = a.seed;
    let points: Vec<pb::Point> = (0..a.points as u64)
        .map(|k| pb::Point {
            key: Some(pb::Key {
                kind: Some(pb::key::Kind::Int(k)),
            }),
            vector: (0..a.dim)
                .map(|_| (splitmix(&mut rng) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
                .collect(),
            ..Default::default()
        })
        .collect();
    points.chunks(a.batch.max(1)).map(<[_]>::to_vec).collect()
}

/// The value at quantile `q` of sorted latencies, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

async fn one_case(
    a: &BenchReplicationArgs,
    client: &vecshard_cluster::Client,
    batches: Arc<Vec<Vec<pb::Point>>>,
    factor: u32,
    write_ack: &str,
) -> Result<Row> {
    let name = format!("bench-rf{factor}-{write_ack}");
    let mut c = client.clone();
    let _ = c
        .drop_collection(pb::DropCollectionRequest { name: name.clone() })
        .await;
    let req = pb::CreateCollectionRequest {
        name: name.clone(),
        dimension: a.dim,
        metric: pb::Metric::L2 as i32,
        shard_count: a.shards,
        storage: "local".into(),
        replication_factor: factor,
        write_ack: if factor > 1 {
            write_ack.to_string()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match c.create_collection(req.clone()).await {
            Ok(_) => break,
            Err(e) if e.code() == tonic::Code::Unavailable && Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(status(e)).context(format!("create {name}")),
        }
    }
    // The first write goes through once every replica opened its copy.
    let first = pb::UpsertRequest {
        collection: name.clone(),
        points: batches[0][..1].to_vec(),
    };
    let end = Instant::now() + Duration::from_secs(30);
    while let Err(e) = c.upsert(first.clone()).await {
        if Instant::now() > end {
            return Err(status(e)).context(format!("{name} never took a write"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let calls = futures::stream::iter(0..batches.len())
        .map(|i| {
            let (mut c, batches, name) = (client.clone(), batches.clone(), name.clone());
            async move {
                let t = Instant::now();
                c.upsert(pb::UpsertRequest {
                    collection: name,
                    points: batches[i].clone(),
                })
                .await
                .map_err(status)?;
                Ok::<_, anyhow::Error>(t.elapsed())
            }
        })
        .buffer_unordered(a.parallel.max(1));
    let mut lat: Vec<Duration> = calls
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()
        .with_context(|| format!("ingest into {name}"))?;
    let took = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let _ = c.drop_collection(pb::DropCollectionRequest { name }).await;
    Ok(Row {
        factor,
        write_ack: if factor > 1 { write_ack } else { "-" }.to_string(),
        points_per_s: a.points as f64 / took,
        p50_ms: quantile_ms(&lat, 0.50),
        p99_ms: quantile_ms(&lat, 0.99),
    })
}

/// Run every case in order and print the table.
pub fn run(a: BenchReplicationArgs) -> Result<()> {
    let cases: Vec<(u32, String)> = a
        .cases
        .iter()
        .map(|s| parse_case(s))
        .collect::<Result<_>>()?;
    let rt = tokio::runtime::Runtime::new()?;
    let client = rt.block_on(vecshard_cluster::connect(&a.router, None))?;
    let batches = Arc::new(batches(&a));
    eprintln!(
        "{} points of {}-d, {} per upsert, {} in flight, {} shard(s) per collection",
        a.points, a.dim, a.batch, a.parallel, a.shards
    );
    let mut rows = Vec::new();
    for (factor, ack) in &cases {
        let row = rt.block_on(one_case(&a, &client, batches.clone(), *factor, ack))?;
        eprintln!("{row:?}");
        rows.push(row);
    }
    println!(
        "| replication factor | write_ack | ingest (points/s) | upsert p50 (ms) | upsert p99 (ms) |"
    );
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.factor,
            r.write_ack,
            round(r.points_per_s, 0),
            round(r.p50_ms, 1),
            round(r.p99_ms, 1)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse_and_bad_ones_are_named() {
        assert_eq!(parse_case("3:all").unwrap(), (3, "all".to_string()));
        assert_eq!(parse_case("1").unwrap(), (1, "majority".to_string()));
        let e = parse_case("3:quorum").unwrap_err().to_string();
        assert!(
            e.contains("\"3:quorum\"") && e.contains("\"quorum\""),
            "{e}"
        );
        assert!(
            parse_case("x:all")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
    }

    #[test]
    fn quantiles_pick_the_sorted_values() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&lat, 0.5), 51.0);
        assert_eq!(quantile_ms(&lat, 0.99), 100.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn the_generated_points_are_seeded_and_in_range() {
        let a = BenchReplicationArgs {
            router: String::new(),
            cases: Vec::new(),
            points: 1_001,
            dim: 8,
            batch: 500,
            parallel: 1,
            shards: 1,
            seed: 3,
        };
        let b = batches(&a);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [500, 500, 1]);
        assert_eq!(b, batches(&a));
        for p in b.iter().flatten() {
            assert_eq!(p.vector.len(), 8);
            assert!(p.vector.iter().all(|v| (-1.0..1.0).contains(v)), "{p:?}");
        }
        let other = batches(&BenchReplicationArgs { seed: 4, ..a });
        assert_ne!(b[0][0].vector, other[0][0].vector);
    }
}
