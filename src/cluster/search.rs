//! `vecshard search --router ADDR --collection C --queries FILE.fvecs --k K`: one JSON
//! line per query, `{"query": i, "ids": [...], "scores": [...]}` (like `vecshard local
//! search`), queries pipelined but printed in order.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::StreamExt;
use vecshard_proto::v1 as pb;

use super::client::{connect, status};
use vecshard_model::json::key_to_json;
use vecshard_model::proto::key_from_proto;

use crate::datafile;

pub struct SearchArgs<'a> {
    pub router: &'a str,
    pub collection: &'a str,
    pub queries: &'a Path,
    pub k: u32,
    pub filter: Option<String>,
    pub ef: Option<u32>,
    pub exact: bool,
    pub allow_partial: bool,
}

pub async fn run(a: SearchArgs<'_>) -> Result<()> {
    let client = connect(a.router).await?;
    let queries = datafile::read_fvecs(a.queries)?;
    let filter = a.filter.map(pb::search_request::FilterSpec::FilterJson);
    let mut results = futures::stream::iter(queries.into_iter().enumerate())
        .map(|(i, q)| {
            let mut c = client.clone();
            let req = pb::SearchRequest {
                collection: a.collection.to_string(),
                vector: q,
                k: a.k,
                filter_spec: filter.clone(),
                ef: a.ef,
                exact: a.exact,
                allow_partial: a.allow_partial,
                ..Default::default()
            };
            async move { (i, c.search(req).await) }
        })
        .buffered(8);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some((i, r)) = results.next().await {
        let r = r
            .map_err(status)
            .with_context(|| format!("query {i}"))?
            .into_inner();
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
        if let Some(c) = r.coverage.filter(|c| !c.missing_shards.is_empty()) {
            line["missing_shards"] = serde_json::json!(c.missing_shards);
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
