//! The engine's own request and result types. The data model — keys, values, points,
//! metrics, limits, filters and their rules — is `vecshard-model`'s, re-exported here.

use std::cmp::Ordering;

use crate::filter::Filter;
pub use vecshard_model::{Key, Metadata, Metric, Point, Value, limits};

/// A k-nearest-neighbour query.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits to return (at most [`limits::MAX_K`]).
    pub k: usize,
    /// Only points whose metadata matches are returned.
    pub filter: Option<Filter>,
    /// Search width for approximate search; `None` uses the shard's default.
    pub ef: Option<usize>,
    /// Exact (brute-force) search instead of the ANN index.
    pub exact: bool,
    /// Return each hit's metadata.
    pub with_metadata: bool,
    /// Return each hit's payload.
    pub with_payload: bool,
    /// Return each hit's vector.
    pub with_vector: bool,
}

impl SearchRequest {
    /// A request for the `k` nearest neighbours of `vector`.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            k,
            ..Default::default()
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The point's key.
    pub key: Key,
    /// The score under the shard's metric (see [`Metric`] for its direction).
    pub score: f32,
    /// Internal distance, lower is better (`score` converted); used to merge across shards.
    pub distance: f32,
    /// Metadata when requested.
    pub metadata: Option<Metadata>,
    /// Payload when requested.
    pub payload: Option<Vec<u8>>,
    /// Vector when requested (normalised for cosine shards).
    pub vector: Option<Vec<f32>>,
}

/// Order hits best first: by distance, then by key.
pub fn hit_order(a: &Hit, b: &Hit) -> Ordering {
    a.distance
        .total_cmp(&b.distance)
        .then_with(|| a.key.cmp(&b.key))
}
