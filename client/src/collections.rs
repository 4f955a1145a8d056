//! Collections: create, list, describe, drop.

use anyhow::Result;
use vecshard_model::Metric;
use vecshard_model::proto::metric_to_proto;
use vecshard_proto::v1 as pb;

use crate::{Client, status};

/// A collection to create. `None` index parameters take the cluster's defaults.
pub struct NewCollection {
    /// Letters, digits, `_` and `-`.
    pub name: String,
    /// Vector dimension.
    pub dimension: u32,
    /// Distance metric.
    pub metric: Metric,
    /// Number of shards (0: the cluster's default).
    pub shards: u32,
    /// `local`, or an object-store URL under one of the cluster's allowed prefixes.
    pub storage: String,
    /// Graph degree.
    pub m: Option<u32>,
    /// Build-time search width.
    pub ef_construction: Option<u32>,
    /// Default query-time search width.
    pub ef_search: Option<u32>,
    /// Copies of every shard on distinct nodes (local storage; 0 or 1: one copy).
    pub replication_factor: u32,
    /// `majority` or `all` (empty: the default, `majority`).
    pub write_ack: String,
}

/// Create a collection and place its shards on the live nodes; returns its spec.
pub async fn create(c: &mut Client, n: NewCollection) -> Result<Option<pb::CollectionSpec>> {
    let req = pb::CreateCollectionRequest {
        name: n.name,
        dimension: n.dimension,
        metric: metric_to_proto(n.metric) as i32,
        shard_count: n.shards,
        storage: n.storage,
        index: Some(pb::IndexParams {
            m: n.m,
            ef_construction: n.ef_construction,
            ef_search: n.ef_search,
        }),
        replication_factor: n.replication_factor,
        write_ack: n.write_ack,
    };
    let r = c.create_collection(req).await.map_err(status)?;
    Ok(r.into_inner().spec)
}

/// Every collection's spec.
pub async fn list(c: &mut Client) -> Result<Vec<pb::CollectionSpec>> {
    let l = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .map_err(status)?;
    Ok(l.into_inner().collections)
}

/// A collection's spec and shards.
pub async fn describe(c: &mut Client, name: &str) -> Result<pb::DescribeCollectionResponse> {
    let req = pb::DescribeCollectionRequest { name: name.into() };
    let d = c.describe_collection(req).await.map_err(status)?;
    Ok(d.into_inner())
}

/// Drop a collection and delete its data.
pub async fn drop(c: &mut Client, name: &str) -> Result<()> {
    let req = pb::DropCollectionRequest { name: name.into() };
    c.drop_collection(req).await.map_err(status)?;
    Ok(())
}

/// The routers, nodes and every shard's placement.
pub async fn cluster_status(c: &mut Client) -> Result<pb::ClusterStatusResponse> {
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .map_err(status)?;
    Ok(s.into_inner())
}
