//! Searching with many query vectors: pipelined, answered in order, as the JSON lines
//! `vecshard search` prints (`{"query": i, "ids": [...], "scores": [...]}`, like `vecshard
//! local search`, plus `missing_shards` when a partial answer lacks some).

use std::io::Write;

use anyhow::{Context, Result};
use futures::StreamExt;
use vecshard_model::json::key_to_json;
use vecshard_model::proto::key_from_proto;
use vecshard_proto::v1 as pb;

use crate::{Client, status};

/// Queries in flight at once.
const IN_FLIGHT: usize = 8;

/// What every query asks.
#[derive(Clone, Default)]
pub struct Params {
    /// Collection.
    pub collection: String,
    /// Results per query.
    pub k: u32,
    /// Metadata filter (JSON).
    pub filter: Option<String>,
    /// Search width.
    pub ef: Option<u32>,
    /// Exact (brute-force) search.
    pub exact: bool,
    /// Return the hits of the shards that answer when some cannot.
    pub allow_partial: bool,
}

/// Search with each of `queries`, writing one JSON line per query to `out` in order; the
/// first failed query stops it (`query i: …`).
pub async fn search_lines(
    client: &Client,
    queries: Vec<Vec<f32>>,
    p: &Params,
    out: &mut impl Write,
) -> Result<()> {
    let filter = p
        .filter
        .clone()
        .map(pb::search_request::FilterSpec::FilterJson);
    let mut results = futures::stream::iter(queries.into_iter().enumerate())
        .map(|(i, q)| {
            let mut c = client.clone();
            let req = pb::SearchRequest {
                collection: p.collection.clone(),
                vector: q,
                k: p.k,
                filter_spec: filter.clone(),
                ef: p.ef,
                exact: p.exact,
                allow_partial: p.allow_partial,
                ..Default::default()
            };
            async move { (i, c.search(req).await) }
        })
        .buffered(IN_FLIGHT);
    while let Some((i, r)) = results.next().await {
        let r = r
            .map_err(status)
            .with_context(|| format!("query {i}"))?
            .into_inner();
        writeln!(out, "{}", line(i, &r))?;
    }
    out.flush()?;
    Ok(())
}

fn line(i: usize, r: &pb::SearchResponse) -> serde_json::Value {
    let ids: Vec<_> = r
        .hits
        .iter()
        .map(|h| {
            key_from_proto(h.key.as_ref())
                .map(|k| key_to_json(&k))
                .unwrap_or_default()
        })
        .collect();
    let scores: Vec<_> = r.hits.iter().map(|h| h.score).collect();
    let mut line = serde_json::json!({"query": i, "ids": ids, "scores": scores});
    if let Some(c) = r.coverage.as_ref().filter(|c| !c.missing_shards.is_empty()) {
        line["missing_shards"] = serde_json::json!(c.missing_shards);
    }
    line
}
