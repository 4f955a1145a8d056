//! `vecshard demo`: the embedded engine in one process — create a shard, import generated
//! points with a progress bar, run filtered searches, print the results.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use vecshard_engine::{Filter, Metric, Options, Point, SearchRequest, Shard, ShardSpec, Value};
use vecshard_transfer::Progress;

/// What `vecshard demo` does.
pub struct Demo {
    /// Where to keep the shard (default: a temporary directory, removed afterwards).
    pub data: Option<PathBuf>,
    /// Points to generate.
    pub points: usize,
    /// Dimension.
    pub dim: usize,
}

const COLORS: [&str; 4] = ["red", "green", "blue", "black"];

/// Run the demo, printing as it goes.
pub fn run(a: Demo) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.data.unwrap_or_else(|| tmp.path().join("demo-shard"));
    let location = dir.to_string_lossy().into_owned();
    let shard = Shard::open_or_create(
        &location,
        ShardSpec::new(a.dim, Metric::Cosine),
        Options::default(),
    )?;
    println!("shard at {location}: {}-d cosine", a.dim);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let centers: Vec<Vec<f32>> = (0..32)
        .map(|_| (0..a.dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    let progress = Progress::new(Some(a.points as u64), "importing");
    let started = Instant::now();
    let mut done = 0u64;
    for chunk in (0..a.points).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<Point> = chunk
            .iter()
            .map(|&i| {
                let c = &centers[i % centers.len()];
                let v = c
                    .iter()
                    .map(|x| x + rng.random_range(-0.3f32..0.3))
                    .collect();
                Point::new(i as u64, v)
                    .with("color", Value::Str(COLORS[i % COLORS.len()].into()))
                    .with("price", Value::Int((i % 1000) as i64))
                    .with("in_stock", Value::Bool(i % 3 != 0))
                    .with_payload(format!("{{\"title\":\"item {i}\"}}"))
            })
            .collect();
        done += batch.len() as u64;
        shard.upsert(batch)?;
        progress.acked(done);
    }
    progress.finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "imported {} points in {secs:.1} s ({:.0} points/s, every batch durable)",
        a.points,
        a.points as f64 / secs
    );
    let query: Vec<f32> = centers[5].clone();
    for (label, filter) in [
        ("no filter", None),
        ("color = red", Some(r#"{"field": "color", "eq": "red"}"#)),
        (
            "blue, in stock, price 100..200",
            Some(
                r#"{"and": [{"field": "color", "eq": "blue"}, {"field": "in_stock", "eq": true}, {"field": "price", "range": {"gte": 100, "lt": 200}}]}"#,
            ),
        ),
    ] {
        let mut req = SearchRequest::new(query.clone(), 5);
        req.filter = filter.map(Filter::parse_str).transpose()?;
        req.with_metadata = true;
        req.with_payload = true;
        let t = Instant::now();
        let hits = shard.search(&req)?;
        println!(
            "\nsearch ({label}) — {:.2} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        for h in hits {
            let meta = vecshard_model::json::metadata_to_json(
                h.metadata.as_ref().unwrap_or(&Default::default()),
            );
            let payload =
                String::from_utf8_lossy(h.payload.as_deref().unwrap_or_default()).into_owned();
            println!(
                "  key {:>6}  score {:.4}  {meta}  {payload}",
                h.key.to_string(),
                h.score
            );
        }
    }
    shard.flush()?;
    println!("\n{}", serde_json::to_string(&shard.stats())?);
    shard.close()?;
    Ok(())
}
