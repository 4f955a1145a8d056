//! Talking to the cluster through a router's public gRPC API.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::transport::Channel;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

use crate::Compose;

/// Dimension of the test vectors.
pub const DIM: usize = 8;

pub fn int_key(v: u64) -> pb::Key {
    pb::Key {
        kind: Some(pb::key::Kind::Int(v)),
    }
}

pub fn point(i: u64) -> pb::Point {
    pb::Point {
        key: Some(int_key(i)),
        vector: (0..DIM as u64)
            .map(|d| ((i * 31 + d * 7) % 97) as f32 / 10.0)
            .collect(),
        ..Default::default()
    }
}

/// The cluster as a client sees it: routers by service name.
pub struct Cluster<'a> {
    pub compose: &'a Compose,
    pub routers: Vec<&'static str>,
}

impl<'a> Cluster<'a> {
    pub fn new(compose: &'a Compose) -> Self {
        Cluster {
            compose,
            routers: vec!["router-1", "router-2", "router-3"],
        }
    }

    /// A client of one router.
    pub async fn client(&self, router: &str) -> Result<VecShardClient<Channel>> {
        let ip = self.compose.ip(router)?;
        let channel = Channel::from_shared(format!("http://{ip}:7000"))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .connect()
            .await
            .with_context(|| format!("connect to {router}"))?;
        Ok(VecShardClient::new(channel))
    }

    /// The first router (of `among`) that answers.
    pub async fn any(&self, among: &[&str]) -> Result<VecShardClient<Channel>> {
        for r in among {
            if let Ok(c) = self.client(r).await {
                return Ok(c);
            }
        }
        bail!("no router of {among:?} answers")
    }

    /// Poll `f` until it returns `Some`, failing after `timeout`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn status(&self, among: &[&str]) -> Option<pb::ClusterStatusResponse> {
        let mut c = self.any(among).await.ok()?;
        c.cluster_status(pb::ClusterStatusRequest::default())
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// Wait until every shard of `collection` is serving on a node other than `not_on`.
    pub async fn wait_serving(
        &self,
        among: &[&str],
        collection: &str,
        not_on: &[String],
    ) -> Result<Vec<pb::ShardPlacement>> {
        let last = std::sync::Mutex::new(String::from("no status answered"));
        let found = self
            .eventually(
                &format!("{collection} serving away from {not_on:?}"),
                Duration::from_secs(120),
                || async {
                    let s = self.status(among).await?;
                    if let Ok(mut l) = last.lock() {
                        *l = format!("nodes {:?}; shards {:?}", s.nodes, s.shards);
                    }
                    let shards: Vec<_> = s
                        .shards
                        .into_iter()
                        .filter(|p| p.collection == collection)
                        .collect();
                    let ok = !shards.is_empty()
                        && shards.iter().all(|p| {
                            p.state == pb::ShardState::Serving as i32 && !not_on.contains(&p.owner)
                        });
                    ok.then_some(shards)
                },
            )
            .await;
        found.map_err(|e| {
            let seen = last.lock().map(|l| l.clone()).unwrap_or_default();
            e.context(format!("last seen: {seen}"))
        })
    }

    /// Upsert points `ids` in batches; returns the keys acknowledged.
    pub async fn upsert(
        &self,
        among: &[&str],
        collection: &str,
        ids: std::ops::Range<u64>,
    ) -> Result<BTreeSet<u64>> {
        let mut acked = BTreeSet::new();
        let ids: Vec<u64> = ids.collect();
        for chunk in ids.chunks(100) {
            let req = pb::UpsertRequest {
                collection: collection.into(),
                points: chunk.iter().map(|i| point(*i)).collect(),
            };
            // Retry through any router until acknowledged (a failover may be in progress).
            self.eventually("an acknowledged upsert", Duration::from_secs(120), || {
                let req = req.clone();
                async move {
                    let mut c = self.any(among).await.ok()?;
                    c.upsert(req).await.ok()
                }
            })
            .await?;
            acked.extend(chunk.iter().copied());
        }
        Ok(acked)
    }

    /// Every key of `collection`.
    pub async fn scan_all(&self, among: &[&str], collection: &str) -> Result<BTreeSet<u64>> {
        let mut c = self.any(among).await?;
        let mut keys = BTreeSet::new();
        let mut cursor = String::new();
        loop {
            let page = c
                .scan(pb::ScanRequest {
                    collection: collection.into(),
                    cursor: cursor.clone(),
                    limit: 1000,
                })
                .await
                .context("scan")?
                .into_inner();
            for p in page.points {
                match p.key.and_then(|k| k.kind) {
                    Some(pb::key::Kind::Int(v)) => {
                        keys.insert(v);
                    }
                    other => bail!("unexpected key {other:?}"),
                }
            }
            if page.next_cursor.is_empty() {
                return Ok(keys);
            }
            cursor = page.next_cursor;
        }
    }
}
