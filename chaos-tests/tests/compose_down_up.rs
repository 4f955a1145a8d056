//! `docker compose down && up` keeps the cluster (deploy/docker-compose.yml's named
//! volumes): after the containers are removed and created anew, the shard map holds the
//! same collections and shards (local shards on the same nodes), and every point — in a
//! collection on the nodes' local disks and in one on S3 — reads back with its vector,
//! metadata and payload.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use vecshard_chaos_tests::{Compose, NODES, ROUTERS, Routers};
use vecshard_proto::v1 as pb;

const POINTS: u64 = 300;
const DIM: usize = 4;

fn point(i: u64, collection: &str) -> pb::Point {
    pb::Point {
        key: Some(pb::Key {
            kind: Some(pb::key::Kind::Int(i)),
        }),
        vector: (0..DIM).map(|d| i as f32 + d as f32 * 0.25).collect(),
        metadata: [(
            "from".to_string(),
            pb::Value {
                kind: Some(pb::value::Kind::StringValue(collection.to_string())),
            },
        )]
        .into(),
        payload: format!("payload {i}").into_bytes(),
        ..Default::default()
    }
}

/// Poll `f` every 500 ms until it succeeds or `timeout` passes (then its last error).
async fn until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > end => return Err(e.context(format!("waiting for {what}"))),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The shard map once every router agrees on a leader, all nodes are alive and every shard
/// of `collections` serves.
async fn settled(routers: &Routers, collections: &[&str]) -> Result<pb::ClusterStatusResponse> {
    until("a settled cluster", Duration::from_secs(180), || async {
        let s = routers.status(ROUTERS[0]).await?;
        ensure!(s.routers.iter().any(|r| r.leader), "no leader");
        let alive = s
            .nodes
            .iter()
            .filter(|n| n.state == pb::NodeState::Alive as i32)
            .count();
        ensure!(alive == NODES.len(), "{alive} nodes alive");
        for c in collections {
            let shards: Vec<_> = s.shards.iter().filter(|p| p.collection == *c).collect();
            ensure!(!shards.is_empty(), "{c}: no shards");
            ensure!(
                shards
                    .iter()
                    .all(|p| p.state == pb::ShardState::Serving as i32),
                "{c}: not every shard serves"
            );
        }
        Ok(s)
    })
    .await
}

/// Every point of `collection`, by key.
async fn contents(routers: &Routers, collection: &str) -> Result<BTreeMap<u64, pb::Point>> {
    let mut c = routers.client(ROUTERS[0])?;
    let mut out = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = c
            .scan(pb::ScanRequest {
                collection: collection.into(),
                cursor: cursor.clone(),
                limit: 1000,
            })
            .await
            .with_context(|| format!("scan {collection}"))?
            .into_inner();
        for p in page.points {
            let Some(pb::key::Kind::Int(k)) = p.key.as_ref().and_then(|k| k.kind.clone()) else {
                bail!("{collection}: a point without an integer key");
            };
            out.insert(k, p);
        }
        if page.next_cursor.is_empty() {
            return Ok(out);
        }
        cursor = page.next_cursor;
    }
}

/// (collection, shard) → owner, for the local collection (its shards cannot move), and the
/// shard numbers of every collection.
fn shape(s: &pb::ClusterStatusResponse, local: &str) -> BTreeMap<(String, u32), String> {
    s.shards
        .iter()
        .map(|p| {
            let owner = if p.collection == local {
                p.owner.clone()
            } else {
                String::new()
            };
            ((p.collection.clone(), p.number), owner)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_and_up_keeps_the_data_and_the_shard_map() -> Result<()> {
    let compose = Arc::new(tokio::task::block_in_place(|| {
        Compose::up("durable", false)
    })?);
    let routers = Routers::new(compose.clone());
    let collections = [
        ("durable-local", "local"),
        ("durable-s3", "s3://vecshard/durable"),
    ];
    settled(&routers, &[]).await?;
    for (name, storage) in collections {
        until("create", Duration::from_secs(60), || async {
            let mut c = routers.client(ROUTERS[0])?;
            let r = c
                .create_collection(pb::CreateCollectionRequest {
                    name: name.into(),
                    dimension: DIM as u32,
                    metric: pb::Metric::L2 as i32,
                    shard_count: 3,
                    storage: storage.into(),
                    index: None,
                    ..Default::default()
                })
                .await;
            match r {
                Ok(_) => Ok(()),
                Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                Err(s) => Err(s.into()),
            }
        })
        .await?;
    }
    let names: Vec<&str> = collections.iter().map(|(n, _)| *n).collect();
    settled(&routers, &names).await?;
    for name in &names {
        let points: Vec<pb::Point> = (0..POINTS).map(|i| point(i, name)).collect();
        until("upsert", Duration::from_secs(60), || async {
            let mut c = routers.client(ROUTERS[0])?;
            c.upsert(pb::UpsertRequest {
                collection: name.to_string(),
                points: points.clone(),
            })
            .await?;
            Ok(())
        })
        .await?;
    }
    let before = settled(&routers, &names).await?;
    let mut data = BTreeMap::new();
    for name in &names {
        let got = contents(&routers, name).await?;
        ensure!(
            got.len() as u64 == POINTS,
            "{name}: {} points before",
            got.len()
        );
        data.insert(*name, got);
    }

    tokio::task::block_in_place(|| compose.down_up())?;
    let routers = Routers::new(compose.clone());
    let after = settled(&routers, &names).await?;
    ensure!(
        shape(&before, "durable-local") == shape(&after, "durable-local"),
        "the shard map changed: before {:?}, after {:?}",
        shape(&before, "durable-local"),
        shape(&after, "durable-local")
    );
    for name in &names {
        let got = until("a full scan", Duration::from_secs(60), || {
            contents(&routers, name)
        })
        .await?;
        ensure!(
            got == data[name],
            "{name}: the points differ after down and up"
        );
        ensure!(
            got.get(&7)
                .is_some_and(|p| p.payload == b"payload 7" && p.vector[1] == 7.25),
            "{name}: point 7 has other values"
        );
    }
    Ok(())
}
