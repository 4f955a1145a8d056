//! The demo `vecshard dev` runs through a router's public API: create a collection, import
//! generated points (reporting progress), then three searches (plain, filtered on a string,
//! filtered on a range and a negation), printed to stdout.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use vecshard_model::json::key_to_json;
use vecshard_model::proto::key_from_proto;
use vecshard_proto::v1 as pb;
use vecshard_transfer::Progress;

use crate::{Client, ClusterError};

const DIM: usize = 64;
const COLORS: [&str; 4] = ["red", "green", "blue", "black"];

/// Wait (up to `timeout`) until the router sees `n` live nodes.
pub async fn wait_nodes(c: &mut Client, n: usize, timeout: Duration) -> Result<(), ClusterError> {
    let end = Instant::now() + timeout;
    loop {
        let s = c
            .cluster_status(pb::ClusterStatusRequest {})
            .await
            .map_err(ClusterError::Api)?
            .into_inner();
        let alive = s
            .nodes
            .iter()
            .filter(|x| x.state == pb::NodeState::Alive as i32)
            .count();
        if alive >= n {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(ClusterError::NodesMissing { alive, wanted: n });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn demo_point(i: usize, centers: &[Vec<f32>], rng: &mut rand::rngs::SmallRng) -> pb::Point {
    let c = &centers[i % centers.len()];
    let value = |k| pb::Value { kind: Some(k) };
    let metadata = [
        (
            "color".to_string(),
            value(pb::value::Kind::StringValue(
                COLORS[(i / 7) % COLORS.len()].into(),
            )),
        ),
        (
            "price".to_string(),
            value(pb::value::Kind::IntValue((i % 1000) as i64)),
        ),
    ];
    pb::Point {
        key: Some(pb::Key {
            kind: Some(pb::key::Kind::Int(i as u64)),
        }),
        vector: c
            .iter()
            .map(|x| x + rng.random_range(-0.3f32..0.3))
            .collect(),
        metadata: metadata.into(),
        payload: format!("{{\"title\": \"item {i}\"}}").into_bytes(),
        ..Default::default()
    }
}

/// Run the demo on collection `demo` (created with `shards` shards unless it exists), with
/// `points` points.
pub async fn run(
    c: &mut Client,
    points: usize,
    shards: u32,
    progress: &Progress,
) -> Result<(), ClusterError> {
    let name = "demo";
    let exists = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .map_err(ClusterError::Api)?
        .into_inner()
        .collections
        .iter()
        .any(|s| s.name == name);
    if !exists {
        c.create_collection(pb::CreateCollectionRequest {
            name: name.into(),
            dimension: DIM as u32,
            metric: pb::Metric::Cosine as i32,
            shard_count: shards,
            storage: "local".into(),
            index: None,
            ..Default::default()
        })
        .await
        .map_err(ClusterError::Api)?;
    }
    println!("\ncollection {name:?}: {DIM}-d cosine, {shards} shards on local disk");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let centers: Vec<Vec<f32>> = (0..32)
        .map(|_| (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let batches: Vec<Vec<pb::Point>> = (0..points)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&i| demo_point(i, &centers, &mut rng))
                .collect()
        })
        .collect();
    let started = Instant::now();
    let sender = c.clone();
    let sends = futures::stream::iter(batches)
        .map(|b| {
            let mut c = sender.clone();
            async move {
                let n = b.len() as u64;
                let req = pb::UpsertRequest {
                    collection: name.into(),
                    points: b,
                };
                c.upsert(req).await.map_err(ClusterError::Api).map(|_| n)
            }
        })
        .buffered(4);
    let mut sends = std::pin::pin!(sends);
    let mut acked = 0;
    while let Some(n) = sends.next().await {
        acked += n?;
        progress.acked(acked);
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {acked} points in {secs:.1} s ({:.0} points/s, durable)",
        acked as f64 / secs
    );

    let query: Vec<f32> = centers[3].clone();
    for (title, filter) in [
        ("nearest to cluster 3", None),
        (
            "nearest red ones",
            Some(r#"{"field": "color", "eq": "red"}"#),
        ),
        (
            "nearest with 100 <= price < 200, not black",
            Some(
                r#"{"and": [{"field": "price", "range": {"gte": 100, "lt": 200}}, {"not": {"field": "color", "eq": "black"}}]}"#,
            ),
        ),
    ] {
        let t = Instant::now();
        let r = c
            .search(pb::SearchRequest {
                collection: name.into(),
                vector: query.clone(),
                k: 5,
                filter_spec: filter.map(|f| pb::search_request::FilterSpec::FilterJson(f.into())),
                with_metadata: true,
                ..Default::default()
            })
            .await
            .map_err(ClusterError::Api)?
            .into_inner();
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "\n{title}{} ({ms:.1} ms):",
            filter.map(|f| format!(" {f}")).unwrap_or_default()
        );
        for h in r.hits {
            let meta = |f: &str| h.metadata.get(f).and_then(|v| v.kind.clone());
            let color = match meta("color") {
                Some(pb::value::Kind::StringValue(s)) => s,
                _ => String::new(),
            };
            let price = match meta("price") {
                Some(pb::value::Kind::IntValue(p)) => p,
                _ => 0,
            };
            let id = key_from_proto(h.key.as_ref())
                .map(|k| key_to_json(&k))
                .unwrap_or_default()
                .to_string();
            println!(
                "  id {id:>6}  score {:.4}  color {color:<5}  price {price}",
                h.score
            );
        }
    }
    Ok(())
}
