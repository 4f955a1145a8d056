//! `vecshard bench --via node`: a node in process on loopback, one shard, ingest and
//! searches over gRPC; the same searches on the in-process engine over the same files for
//! comparison.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::transport::Channel;
use vecshard_engine::{Key, Metric, Options, SearchRequest, Shard};
use vecshard_proto::fast_unary::OneFrameChannel;
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb1;

use crate::measure::{
    client_threads_qps, dir_bytes, multi_thread_qps, peak_rss_bytes, round, timed_passes,
};
use crate::shard::BenchArgs;

type Client = NodeClient<OneFrameChannel>;

const COLLECTION: &str = "bench";

fn target(epoch: u64) -> Option<pb::ShardTarget> {
    Some(pb::ShardTarget {
        collection: COLLECTION.into(),
        shard: 0,
        epoch,
    })
}

async fn connect(addr: &str) -> Result<Client> {
    let channel =
        vecshard_proto::coalesce::connect(&Channel::from_shared(addr.to_string())?).await?;
    Ok(NodeClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

async fn assign(
    c: &mut Client,
    a: &BenchArgs,
    dim: usize,
    metric: Metric,
    epoch: u64,
) -> Result<()> {
    let metric = vecshard_model::proto::metric_to_proto(metric);
    c.assign_shard(pb::AssignShardRequest {
        collection: COLLECTION.into(),
        shard: 0,
        epoch,
        role: pb::Role::Writer as i32,
        storage: "local".into(),
        dimension: dim as u32,
        metric: metric as i32,
        index: Some(pb1::IndexParams {
            m: Some(a.m as u32),
            ef_construction: Some(a.ef_construction as u32),
            ef_search: Some(64),
        }),
        incarnation: 0,
        restore: None,
        replication: None,
    })
    .await?;
    loop {
        let st = c.node_status(pb::NodeStatusRequest {}).await?.into_inner();
        if let Some(s) = st.shards.iter().find(|s| s.epoch == epoch) {
            match s.state() {
                pb::ShardState::Serving => return Ok(()),
                pb::ShardState::Failed | pb::ShardState::Fenced => {
                    bail!("the node could not open the shard: {}", s.error)
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn search_req(q: &[f32], k: usize, ef: usize, epoch: u64) -> pb::SearchRequest {
    pb::SearchRequest {
        target: target(epoch),
        vector: q.to_vec(),
        k: k as u32,
        ef: Some(ef as u32),
        ..Default::default()
    }
}

fn hit_key(h: &pb::ShardHit) -> Option<Key> {
    vecshard_model::proto::key_from_proto(h.key.as_ref()).ok()
}

pub fn run(
    a: &BenchArgs,
    base: Vec<Vec<f32>>,
    queries: &[Vec<f32>],
    truth: &[Vec<i32>],
    metric: Metric,
) -> Result<()> {
    let dim = base[0].len();
    let n = base.len();
    let tmp = tempfile::tempdir()?;
    let data_dir = a.dir.clone().unwrap_or_else(|| tmp.path().join("node"));
    let memtable_bytes = a
        .memtable_bytes
        .unwrap_or((n * (dim * 4 + a.m * 8 + 256)).max(64 << 20));
    let mut cfg = vecshard_cluster::node_config("bench", data_dir.clone());
    cfg.node.search_threads = a.threads;
    cfg.node.mailbox_capacity = (a.threads * 4).max(16);
    cfg.engine.memtable_bytes = memtable_bytes;
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .thread_name("bench-node")
        .enable_all()
        .build()?;
    let node = server.block_on(vecshard_node::start(cfg))?;
    let addr = format!("http://{}", node.grpc_addr());

    // Ingest through gRPC: `threads` clients, batches of `batch`.
    let base = std::sync::Arc::new(base);
    let started = Instant::now();
    server.block_on(async {
        let mut c = connect(&addr).await?;
        assign(&mut c, a, dim, metric, 1).await?;
        let next = std::sync::Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..a.threads.max(1) {
            let (mut c, next, base, batch) = (c.clone(), next.clone(), base.clone(), a.batch);
            tasks.spawn(async move {
                loop {
                    let from = next.fetch_add(batch, Ordering::Relaxed);
                    if from >= n {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let points = (from..(from + batch).min(n))
                        .map(|i| pb1::Point {
                            key: Some(pb1::Key {
                                kind: Some(pb1::key::Kind::Int(i as u64)),
                            }),
                            vector: base[i].clone(),
                            ..Default::default()
                        })
                        .collect();
                    c.upsert(pb::UpsertRequest {
                        target: target(1),
                        points,
                    })
                    .await?;
                }
            });
        }
        while let Some(t) = tasks.join_next().await {
            t??;
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let searchable_s = started.elapsed().as_secs_f64();
    drop(base);

    // Release (the node flushes and closes), then reassign: the node reopens.
    let t = Instant::now();
    server.block_on(async {
        let mut c = connect(&addr).await?;
        c.release_shard(pb::ReleaseShardRequest {
            collection: COLLECTION.into(),
            shard: 0,
            epoch: 1,
            delete_data: false,
            ..Default::default()
        })
        .await?;
        Ok::<(), anyhow::Error>(())
    })?;
    let flush_s = t.elapsed().as_secs_f64();
    let build_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    server.block_on(async {
        let mut c = connect(&addr).await?;
        assign(&mut c, a, dim, metric, 2).await
    })?;
    let open_s = t.elapsed().as_secs_f64();

    // The engine, in process, over the same files (read-only: the node holds the lock).
    let location = data_dir.join(COLLECTION).join("0");
    let engine = Shard::open(
        location.to_str().context("data directory is not UTF-8")?,
        Options {
            read_only: true,
            ..Options::default()
        },
    )?;
    let stats = engine.stats();
    let disk_bytes = dir_bytes(&location);

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut client = client_rt.block_on(connect(&addr))?;
    let mut rows = Vec::new();
    for &ef in &a.ef {
        let reqs: Vec<pb::SearchRequest> =
            queries.iter().map(|q| search_req(q, a.k, ef, 2)).collect();
        let mut found = 0usize;
        for (r, t) in reqs.iter().zip(truth) {
            let hits = client_rt
                .block_on(client.search(r.clone()))?
                .into_inner()
                .hits;
            let want: std::collections::HashSet<Key> =
                t[..a.k].iter().map(|&i| Key::Int(i as u64)).collect();
            found += hits
                .iter()
                .filter_map(hit_key)
                .filter(|k| want.contains(k))
                .count();
        }
        let recall = found as f64 / (queries.len() * a.k) as f64;
        let engine_reqs: Vec<SearchRequest> = queries
            .iter()
            .map(|q| {
                let mut r = SearchRequest::new(q.clone(), a.k);
                r.ef = Some(ef);
                r
            })
            .collect();
        let eng = timed_passes(engine_reqs.len(), a.min_pass_secs, 5, |i| {
            let _ = engine.search(&engine_reqs[i]);
        });
        let via = timed_passes(reqs.len(), a.min_pass_secs, 5, |i| {
            let _ = client_rt.block_on(client.search(reqs[i].clone()));
        });
        let eng_mt = multi_thread_qps(&engine, &engine_reqs, a.threads, a.min_pass_secs);
        let via_mt = client_threads_qps(
            a.threads,
            a.min_pass_secs,
            || connect(&addr),
            |mut c, i| {
                let req = reqs[i % reqs.len()].clone();
                async move {
                    let _ = c.search(req).await;
                }
            },
        );
        rows.push(serde_json::json!({
            "ef": ef, "recall": round(recall, 4), "qps": round(via.qps, 0), "qps_mt": round(via_mt, 0),
            "threads": a.threads, "p50_us": round(via.p50_us, 1), "p99_us": round(via.p99_us, 1),
            "via": "node", "engine_qps": round(eng.qps, 0), "engine_qps_mt": round(eng_mt, 0),
            "engine_p50_us": round(eng.p50_us, 1), "engine_p99_us": round(eng.p99_us, 1),
            "added_p50_us": round(via.p50_us - eng.p50_us, 1),
            "added_p99_us": round(via.p99_us - eng.p99_us, 1),
        }));
    }
    // Close the client's connection before the node's graceful shutdown waits for it.
    drop(client);
    drop(client_rt);
    engine.close()?;
    server.block_on(node.shutdown());
    let summary = serde_json::json!({
        "summary": true, "via": "node", "points": n, "dim": dim, "metric": metric.as_str(), "k": a.k,
        "ingest_points_per_s": round(n as f64 / searchable_s, 0), "searchable_s": round(searchable_s, 2),
        "flush_s": round(flush_s, 2), "build_s": round(build_s, 2), "open_s": round(open_s, 3),
        "segments": stats.segments, "disk_bytes": disk_bytes, "peak_rss_bytes": peak_rss_bytes(),
        "memtable_bytes": memtable_bytes,
    });
    if a.json {
        for r in &rows {
            println!("{r}");
        }
        println!("{summary}");
    } else {
        print_table(&rows, &summary);
    }
    Ok(())
}

fn print_table(rows: &[serde_json::Value], s: &serde_json::Value) {
    println!(
        "via node (loopback gRPC): {} points × {}-d {}: ingest {} pts/s, release (flush) {} s, reopen {} s, {} segment(s)",
        s["points"],
        s["dim"],
        s["metric"].as_str().unwrap_or(""),
        s["ingest_points_per_s"],
        s["flush_s"],
        s["open_s"],
        s["segments"]
    );
    println!(
        "{:>6} {:>8} {:>10} {:>10} {:>9} {:>9} | {:>10} {:>10} {:>9} {:>9} | {:>10}",
        "ef",
        "recall",
        "QPS (1t)",
        "QPS (mt)",
        "p50 µs",
        "p99 µs",
        "eng QPS",
        "eng mt",
        "eng p50",
        "eng p99",
        "added p50"
    );
    for r in rows {
        println!(
            "{:>6} {:>8} {:>10} {:>10} {:>9} {:>9} | {:>10} {:>10} {:>9} {:>9} | {:>10}",
            r["ef"],
            r["recall"],
            r["qps"],
            r["qps_mt"],
            r["p50_us"],
            r["p99_us"],
            r["engine_qps"],
            r["engine_qps_mt"],
            r["engine_p50_us"],
            r["engine_p99_us"],
            r["added_p50_us"]
        );
    }
}
