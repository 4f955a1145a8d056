//! The REST/JSON API: the same operations as the gRPC service, with JSON bodies, plus the
//! operator's commands. Errors are `{"error": {"code": "...", "message": "..."}}` with
//! the HTTP status from `error_status.rs`.
//!
//! | method and path | operation |
//! |---|---|
//! | `GET /healthz` | liveness |
//! | `GET /readyz` | readiness: 200 while this router follows a leader, or leads with a quorum; else 503 |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /openapi.json` | the OpenAPI document of this API (`router/openapi.json`) |
//! | `GET /v1/collections` | list |
//! | `POST /v1/collections` | create `{name, dimension, metric, shard_count?, storage?, index?, replication_factor?, write_ack?}` |
//! | `GET /v1/collections/{name}` | describe |
//! | `DELETE /v1/collections/{name}` | drop |
//! | `POST /v1/collections/{name}/points` | upsert `{points: [{id, vector, metadata?, payload?}]}` |
//! | `POST /v1/collections/{name}/points/delete` | delete `{ids: [...]}` |
//! | `POST /v1/collections/{name}/points/get` | get `{ids: [...]}` |
//! | `GET /v1/collections/{name}/points?cursor=&limit=` | scan one page |
//! | `POST /v1/collections/{name}/search` | search `{vector \| id, k, offset?, filter?, ef?, exact?, with_metadata?, with_payload?, with_vector?, allow_partial?, timeout_ms?}`; or binary: the vector as packed float32 with `Content-Type: application/x-vecshard-f32`, the rest in the query string, packed hits back ([`search_binary`]) |
//! | `POST /v1/collections/{name}/search/batch` | many searches `{searches: [...], allow_partial?, timeout_ms?}` |
//! | `POST /v1/collections/{name}/count` | count `{filter?}` |
//! | `GET /v1/cluster` | cluster status |
//! | `POST /v1/cluster/shards/move` | move a shard `{collection, shard, to}` |
//! | `POST /v1/cluster/routers` | add a router `{id, grpc, internal, http}` |
//! | `POST /v1/cluster/routers/remove` | remove a router `{id}` |
//! | `POST /v1/cluster/nodes/remove` | forget a down node that holds nothing `{id}` |
//! | `/v1/backups…` | cluster backups: see `rest_backups.rs` |

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value as J, json};
use vecshard_proto::v1 as pb;

use super::keys::Role;
use super::rest_backups as backups;
use super::{FORWARDED_HEADER, deadline};
use crate::core::Core;
use crate::error::{Error, ErrorKind, Result};
use crate::raft::RouterNode;
use vecshard_model::json::{
    key_from_json, key_to_json, metadata_to_json, payload_to_json, point_to_json,
    points_body_from_slice,
};
use vecshard_model::{Metric, ValidationKind, proto as model_pb};

/// The REST API on `core`.
pub fn router(core: Arc<Core>) -> axum::Router {
    let limit = core.cfg.max_request_bytes;
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/collections", get(list).post(create))
        .route(
            "/v1/collections/{name}",
            get(describe).delete(drop_collection),
        )
        .route("/v1/collections/{name}/points", post(upsert).get(scan))
        .route("/v1/collections/{name}/points/delete", post(delete))
        .route("/v1/collections/{name}/points/get", post(get_points))
        .route("/v1/collections/{name}/search", post(search))
        .route("/v1/collections/{name}/search/batch", post(search_batch))
        .route("/v1/collections/{name}/count", post(count))
        .route("/v1/cluster", get(status))
        .route("/v1/cluster/shards/move", post(move_shard))
        .route("/v1/cluster/routers", post(add_router))
        .route("/v1/cluster/routers/remove", post(remove_router))
        .route("/v1/cluster/nodes/remove", post(remove_node))
        .route("/v1/backups", get(backups::list).post(backups::create))
        .route("/v1/backups/describe", get(backups::describe))
        .route("/v1/backups/restore", post(backups::restore))
        .route("/v1/backups/delete", post(backups::delete))
        .route("/v1/backups/jobs/{id}", get(backups::job))
        .fallback(|| async {
            Error::not_found("no such endpoint; see the REST API table in the README")
        })
        .layer(middleware::from_fn_with_state(core.clone(), guard))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(core)
}

/// Before any handler: the API key and its role (except for health, and metrics unless
/// `router.metrics_need_key`), and a declared body size over the limit (413 at once,
/// without reading the body; chunked bodies are cut off by `DefaultBodyLimit` while they
/// are read).
async fn guard(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    let path = req.uri().path();
    let mut _permit = None;
    if let Some((need, collection)) = requirement(req.method(), path, core.cfg.metrics_need_key) {
        let allowed = core
            .security
            .keys
            .authenticate(header("authorization"), header("x-api-key"))
            .and_then(|g| g.allow(need, collection));
        if let Err(e) = allowed {
            return e.into_response();
        }
    }
    if !matches!(path, "/healthz" | "/readyz" | "/metrics") {
        match core.limit.try_enter() {
            Some(p) => _permit = p,
            None => {
                let mut r =
                    Error::new(ErrorKind::ResourceExhausted, super::limit::BUSY).into_response();
                r.headers_mut()
                    .insert("retry-after", super::limit::RETRY_AFTER_S.into());
                return r;
            }
        }
    }
    let limit = core.cfg.max_request_bytes as u64;
    if let Some(len) = header("content-length").and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        let msg = format!(
            "request body too large: {len} bytes, the limit is {limit} (router.max_request_bytes)"
        );
        return Error::new(ErrorKind::PayloadTooLarge, msg).into_response();
    }
    next.run(req).await
}

/// The role (and collection) a REST call needs; `None` for open endpoints. A collection
/// name in the path is taken verbatim (valid names never need percent-encoding), so an
/// encoded name matches no collection-scoped key's list and cannot slip past one.
fn requirement<'a>(
    method: &Method,
    path: &'a str,
    metrics_need_key: bool,
) -> Option<(Role, Option<&'a str>)> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let write = |ok: bool| if ok { Role::Write } else { Role::Read };
    Some(match parts.as_slice() {
        ["healthz"] | ["readyz"] | ["openapi.json"] => return None,
        ["metrics"] => return metrics_need_key.then_some((Role::Read, None)),
        ["v1", "collections"] if method == Method::POST => (Role::Admin, None),
        ["v1", "collections", name] if method == Method::DELETE => (Role::Admin, Some(*name)),
        ["v1", "collections", name, "points"] => (write(method == Method::POST), Some(*name)),
        ["v1", "collections", name, "points", "delete"] => (Role::Write, Some(*name)),
        ["v1", "collections", name, ..] => (Role::Read, Some(*name)),
        ["v1", "cluster", _, ..] => (Role::Admin, None),
        ["v1", "backups", ..] => (Role::Admin, None),
        _ => (Role::Read, None),
    })
}

type Reply = Result<Response>;

/// The body's bytes; 413 for a body over the limit, 400 when it cannot be read.
fn bytes(b: Result<Bytes, BytesRejection>) -> Result<Bytes> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::new(
                ErrorKind::PayloadTooLarge,
                format!("request body too large: {}", r.body_text()),
            )
        } else {
            Error::invalid(format!("cannot read the request body: {}", r.body_text()))
        }
    })
}

/// Parse a JSON body into `T`; 413 for a body over the limit, 400 otherwise.
fn body<T: DeserializeOwned>(b: Result<Bytes, BytesRejection>) -> Result<T> {
    serde_json::from_slice(&bytes(b)?)
        .map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))
}

fn ok(v: J) -> Reply {
    Ok(Json(v).into_response())
}

fn forwarded(h: &HeaderMap) -> bool {
    h.contains_key(FORWARDED_HEADER)
}

/// The OpenAPI document of the REST API, kept in the repository; a test checks it against
/// the routes above in both directions.
pub const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi() -> Response {
    ([("content-type", "application/json")], OPENAPI).into_response()
}

async fn metrics(State(core): State<Arc<Core>>) -> Reply {
    let s = core.cluster_status();
    let count = |states: Vec<String>| {
        let mut m = std::collections::BTreeMap::<String, i64>::new();
        for st in states {
            *m.entry(st).or_default() += 1;
        }
        m.into_iter().collect::<Vec<_>>()
    };
    let nodes = count(
        s.nodes
            .iter()
            .map(|n| {
                enum_name(
                    pb::NodeState::try_from(n.state).map(|x| x.as_str_name()),
                    "NODE_STATE_",
                )
            })
            .collect(),
    );
    let shards = count(
        s.shards
            .iter()
            .map(|p| {
                enum_name(
                    pb::ShardState::try_from(p.state).map(|x| x.as_str_name()),
                    "SHARD_STATE_",
                )
            })
            .collect(),
    );
    let text = core
        .metrics
        .render(core.is_leader(), core.view().version, &nodes, &shards)?;
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

async fn list(State(core): State<Arc<Core>>) -> Reply {
    let l = core.list_collections();
    ok(json!({ "collections": l.collections.iter().map(spec_json).collect::<Vec<_>>() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    dimension: u32,
    metric: String,
    #[serde(default)]
    shard_count: u32,
    #[serde(default)]
    storage: String,
    #[serde(default)]
    index: Option<IndexBody>,
    #[serde(default)]
    replication_factor: u32,
    #[serde(default)]
    write_ack: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexBody {
    m: Option<u32>,
    ef_construction: Option<u32>,
    ef_search: Option<u32>,
}

async fn create(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let c: CreateBody = body(b)?;
    let req = pb::CreateCollectionRequest {
        name: c.name,
        dimension: c.dimension,
        metric: model_pb::metric_to_proto(c.metric.parse::<Metric>()?) as i32,
        shard_count: c.shard_count,
        storage: c.storage,
        index: c.index.map(|i| pb::IndexParams {
            m: i.m,
            ef_construction: i.ef_construction,
            ef_search: i.ef_search,
        }),
        replication_factor: c.replication_factor,
        write_ack: c.write_ack,
    };
    let r = core
        .measured(
            "create_collection",
            core.create_collection(req, forwarded(&h)),
        )
        .await?;
    let spec = r.spec.as_ref().map(spec_json).unwrap_or(J::Null);
    Ok((StatusCode::CREATED, Json(json!({ "spec": spec }))).into_response())
}

async fn describe(State(core): State<Arc<Core>>, Path(name): Path<String>) -> Reply {
    let d = core.describe_collection(&name)?;
    let shards: Vec<J> = d
        .shards
        .iter()
        .map(|s| {
            json!({
                "number": s.number,
                "owner_node": s.owner_node,
                "epoch": s.epoch,
                "state": enum_name(pb::ShardState::try_from(s.state).map(|x| x.as_str_name()), "SHARD_STATE_"),
                "live_points": s.live_points,
            })
        })
        .collect();
    ok(json!({ "spec": d.spec.as_ref().map(spec_json), "shards": shards }))
}

async fn drop_collection(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    Path(name): Path<String>,
) -> Reply {
    core.measured("drop_collection", core.drop_collection(name, forwarded(&h)))
        .await?;
    ok(json!({}))
}

async fn upsert(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    // Read straight into model points, limits checked while reading (no JSON tree).
    let points = points_body_from_slice(&bytes(b)?).map_err(|e| match e.kind() {
        ValidationKind::Malformed => Error::invalid(format!("invalid JSON body: {e}")),
        _ => e.into(),
    })?;
    let req = pb::UpsertRequest {
        collection: name,
        points: points.into_iter().map(model_pb::point_to_proto).collect(),
    };
    core.measured(
        "upsert",
        core.upsert(req, deadline(core.cfg.write_timeout_ms, None, None)),
    )
    .await?;
    ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdsBody {
    ids: Vec<J>,
}

fn keys(b: Result<Bytes, BytesRejection>) -> Result<Vec<pb::Key>> {
    let ids: IdsBody = body(b)?;
    ids.ids
        .iter()
        .enumerate()
        .map(|(i, v)| {
            key_from_json(v)
                .map(|k| model_pb::key_to_proto(&k))
                .map_err(|e| e.within(format!("ids[{i}]")).into())
        })
        .collect()
}

async fn delete(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let req = pb::DeleteRequest {
        collection: name,
        keys: keys(b)?,
    };
    core.measured(
        "delete",
        core.delete(req, deadline(core.cfg.write_timeout_ms, None, None)),
    )
    .await?;
    ok(json!({}))
}

async fn get_points(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let req = pb::GetRequest {
        collection: name,
        keys: keys(b)?,
    };
    let d = deadline(core.cfg.write_timeout_ms, None, None);
    let r = core.measured("get", core.get(req, d)).await?;
    ok(json!({ "points": points_json(r.points)? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanQuery {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    limit: u32,
}

async fn scan(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    q: Result<Query<ScanQuery>, QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| Error::invalid(format!("bad query string: {}", e.body_text())))?;
    let req = pb::ScanRequest {
        collection: name,
        cursor: q.cursor,
        limit: q.limit,
    };
    let d = deadline(core.cfg.write_timeout_ms, None, None);
    let r = core.measured("scan", core.scan(req, d)).await?;
    ok(json!({
        "points": points_json(r.points)?,
        "next_cursor": r.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    #[serde(default)]
    vector: Vec<f32>,
    /// Search by the stored point with this id ("more like this", the point excluded).
    #[serde(default)]
    id: Option<J>,
    k: u32,
    #[serde(default)]
    offset: u32,
    #[serde(default)]
    filter: Option<J>,
    #[serde(default)]
    ef: Option<u32>,
    #[serde(default)]
    exact: bool,
    #[serde(default)]
    with_metadata: bool,
    #[serde(default)]
    with_payload: bool,
    #[serde(default)]
    with_vector: bool,
    #[serde(default)]
    allow_partial: bool,
    #[serde(default)]
    timeout_ms: Option<u32>,
}

/// A JSON filter (or null) as the proto filter.
fn filter_json(f: Option<J>) -> Result<Option<pb::Filter>> {
    Ok(f.filter(|f| !f.is_null())
        .map(|f| vecshard_model::Filter::from_json(&f).map(|f| model_pb::filter_to_proto(&f)))
        .transpose()?)
}

impl SearchBody {
    /// The public request; the query vector moves into it (it is not needed after).
    fn take_proto(&mut self, collection: String) -> Result<pb::SearchRequest> {
        let query_key = self
            .id
            .as_ref()
            .map(|v| {
                key_from_json(v)
                    .map(|k| model_pb::key_to_proto(&k))
                    .map_err(|e| e.within("id"))
            })
            .transpose()?;
        Ok(pb::SearchRequest {
            collection,
            vector: std::mem::take(&mut self.vector),
            k: self.k,
            filter_spec: filter_json(self.filter.clone())?
                .map(pb::search_request::FilterSpec::Filter),
            ef: self.ef,
            exact: self.exact,
            with_metadata: self.with_metadata,
            with_payload: self.with_payload,
            with_vector: self.with_vector,
            allow_partial: self.allow_partial,
            timeout_ms: self.timeout_ms,
            vector_f32le: Vec::new(),
            query_key,
            offset: self.offset,
            packed_hits: false,
        })
    }

    /// A search's hits and coverage as JSON, with the fields it asked for.
    fn answer<'a>(&self, r: &'a pb::SearchResponse) -> SearchAnswer<'a> {
        let q = HitFields {
            metadata: self.with_metadata,
            payload: self.with_payload,
            vector: self.with_vector,
        };
        SearchAnswer { q, r }
    }
}

/// A search's answer, serialized straight from the router's response without a JSON
/// `Value` tree: `{coverage: {missing_shards, shards_answered, shards_total}, hits: [{id,
/// metadata?, payload?, score, vector?}]}`, keys in that (sorted) order, numbers as
/// `serde_json::Value` writes them (f32 widened to f64, non-finite as null).
struct SearchAnswer<'a> {
    q: HitFields,
    r: &'a pb::SearchResponse,
}

#[derive(Serialize)]
struct CoverageJson<'a> {
    missing_shards: &'a [u32],
    shards_answered: u32,
    shards_total: u32,
}

/// An f32 as `serde_json::Value` holds it: widened to f64, null unless finite.
fn float_json(x: f32) -> Option<f64> {
    x.is_finite().then_some(f64::from(x))
}

/// The optional fields a search's hits carry in its answer.
#[derive(Clone, Copy, Default)]
struct HitFields {
    metadata: bool,
    payload: bool,
    vector: bool,
}

struct HitJson<'a> {
    q: HitFields,
    h: &'a pb::Hit,
}

impl Serialize for HitJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (q, h) = (self.q, self.h);
        let mut m = s.serialize_map(None)?;
        let id = model_pb::key_from_proto(h.key.as_ref()).map_or(J::Null, |k| key_to_json(&k));
        m.serialize_entry("id", &id)?;
        if q.metadata {
            let md = model_pb::metadata_from_proto(&h.metadata)
                .map_or(J::Null, |m| metadata_to_json(&m));
            m.serialize_entry("metadata", &md)?;
        }
        if q.payload {
            m.serialize_entry("payload", &payload_to_json(&h.payload))?;
        }
        m.serialize_entry("score", &float_json(h.score))?;
        if q.vector {
            let v: Vec<Option<f64>> = h.vector.iter().map(|x| float_json(*x)).collect();
            m.serialize_entry("vector", &v)?;
        }
        m.end()
    }
}

impl Serialize for SearchAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let c = self.r.coverage.as_ref();
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry(
            "coverage",
            &CoverageJson {
                missing_shards: c.map_or(&[], |c| &c.missing_shards),
                shards_answered: c.map_or(0, |c| c.shards_answered),
                shards_total: c.map_or(0, |c| c.shards_total),
            },
        )?;
        let q = self.q;
        m.serialize_entry(
            "hits",
            &SerializeIter(self.r.hits.iter().map(|h| HitJson { q, h })),
        )?;
        m.end()
    }
}

/// A sequence serialized from an iterator (cloned to serialize).
struct SerializeIter<I>(I);

impl<I> Serialize for SerializeIter<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

async fn search(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    h: HeaderMap,
    uri: Uri,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    if is_binary_search(&h) {
        return search_binary(&core, name, &uri, b).await;
    }
    let mut s: SearchBody = body(b)?;
    let req = s.take_proto(name)?;
    let d = deadline(core.cfg.search_timeout_ms, s.timeout_ms, None);
    let r = core.measured("search", core.search(req, d)).await?;
    Ok(Json(s.answer(&r)).into_response())
}

/// `Content-Type` of a binary search: the body is the query vector as little-endian
/// float32 (4 bytes per component), the other parameters go in the query string.
pub const F32_BODY: &str = "application/x-vecshard-f32";
/// `Content-Type` of a binary search's answer: the hits' integer keys (8 bytes each,
/// little-endian uint64), then their scores (4 bytes each, little-endian float32), best
/// first; so `n` hits are `12 n` bytes.
pub const HITS_BODY: &str = "application/x-vecshard-hits";
/// Header of a binary answer that misses shards (`allow_partial`): their numbers, `1,3`.
pub const MISSING_SHARDS_HEADER: &str = "x-vecshard-missing-shards";

fn is_binary_search(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(F32_BODY))
}

/// The query string of a binary search: the JSON body's fields other than the vector
/// (`filter` as JSON text).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BinarySearchQuery {
    k: u32,
    #[serde(default)]
    offset: u32,
    #[serde(default)]
    ef: Option<u32>,
    #[serde(default)]
    exact: bool,
    #[serde(default)]
    allow_partial: bool,
    #[serde(default)]
    timeout_ms: Option<u32>,
    #[serde(default)]
    filter: Option<String>,
}

/// A search whose body is the packed query vector (`F32_BODY`), for clients that want to
/// spend as little CPU per query as possible (no JSON either way). Answers `HITS_BODY`
/// when every hit has an integer key, else the JSON answer of a search (string keys);
/// errors are the usual JSON error bodies.
async fn search_binary(
    core: &Core,
    name: String,
    uri: &Uri,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let Query(q) = Query::<BinarySearchQuery>::try_from_uri(uri).map_err(|e| {
        Error::invalid(format!(
            "bad query string of a binary search: {}",
            e.body_text()
        ))
    })?;
    let filter = q
        .filter
        .as_deref()
        .map(serde_json::from_str::<J>)
        .transpose()
        .map_err(|e| Error::invalid(format!("filter: invalid JSON: {e}")))?;
    let req = pb::SearchRequest {
        collection: name,
        vector_f32le: bytes(b)?.to_vec(),
        k: q.k,
        filter_spec: filter_json(filter)?.map(pb::search_request::FilterSpec::Filter),
        ef: q.ef,
        exact: q.exact,
        allow_partial: q.allow_partial,
        timeout_ms: q.timeout_ms,
        offset: q.offset,
        packed_hits: true,
        ..Default::default()
    };
    let d = deadline(core.cfg.search_timeout_ms, q.timeout_ms, None);
    let r = core.measured("search", core.search(req, d)).await?;
    let Some(p) = &r.packed else {
        return Ok(Json(SearchAnswer {
            q: HitFields::default(),
            r: &r,
        })
        .into_response());
    };
    let mut out = Vec::with_capacity(p.ids_u64le.len() + p.scores_f32le.len());
    out.extend_from_slice(&p.ids_u64le);
    out.extend_from_slice(&p.scores_f32le);
    let mut resp = ([(CONTENT_TYPE, HITS_BODY)], out).into_response();
    let missing = r
        .coverage
        .as_ref()
        .map_or(&[][..], |c| &c.missing_shards[..]);
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(u32::to_string).collect();
        if let Ok(v) = HeaderValue::from_str(&list.join(",")) {
            resp.headers_mut().insert(MISSING_SHARDS_HEADER, v);
        }
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBatchBody {
    searches: Vec<SearchBody>,
    #[serde(default)]
    allow_partial: bool,
    #[serde(default)]
    timeout_ms: Option<u32>,
}

async fn search_batch(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let mut s: SearchBatchBody = body(b)?;
    let searches = s
        .searches
        .iter_mut()
        .enumerate()
        .map(|(i, q)| {
            q.take_proto(String::new())
                .map_err(|e| e.context(format!("searches[{i}]")))
        })
        .collect::<Result<Vec<_>>>()?;
    let req = pb::SearchBatchRequest {
        collection: name,
        searches,
        allow_partial: s.allow_partial,
        timeout_ms: s.timeout_ms,
    };
    let d = deadline(core.cfg.search_timeout_ms, s.timeout_ms, None);
    let r = core
        .measured("search_batch", core.search_batch(req, d))
        .await?;
    let results: Vec<SearchAnswer> = s
        .searches
        .iter()
        .zip(&r.results)
        .map(|(q, r)| q.answer(r))
        .collect();
    #[derive(Serialize)]
    struct Results<'a> {
        results: Vec<SearchAnswer<'a>>,
    }
    Ok(Json(Results { results }).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountBody {
    #[serde(default)]
    filter: Option<J>,
}

async fn count(
    State(core): State<Arc<Core>>,
    Path(name): Path<String>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    // An empty body counts every point.
    let b = bytes(b)?;
    let c: CountBody = if b.iter().all(u8::is_ascii_whitespace) {
        CountBody { filter: None }
    } else {
        serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))?
    };
    let req = pb::CountRequest {
        collection: name,
        filter_spec: filter_json(c.filter)?.map(pb::count_request::FilterSpec::Filter),
    };
    let d = deadline(core.cfg.search_timeout_ms, None, None);
    let n = core.measured("count", core.count(req, d)).await?;
    ok(json!({ "count": n }))
}

/// Ready while the router follows a leader or leads with a quorum ([`Core::readiness`]):
/// then it can serve the shard map and forward changes. Open, like `/healthz`, for probes.
async fn readyz(State(core): State<Arc<Core>>) -> (StatusCode, String) {
    match core.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn status(State(core): State<Arc<Core>>) -> Reply {
    let s = core.cluster_status();
    ok(json!({
        "routers": s.routers.iter().map(|r| json!({"id": r.id, "address": r.address, "leader": r.leader})).collect::<Vec<_>>(),
        "nodes": s.nodes.iter().map(|n| json!({
            "id": n.id,
            "address": n.address,
            "state": enum_name(pb::NodeState::try_from(n.state).map(|x| x.as_str_name()), "NODE_STATE_"),
            "zone": (!n.zone.is_empty()).then_some(&n.zone),
            "last_heartbeat_ms_ago": n.last_heartbeat_ms_ago,
            "shards": n.shards.iter().map(|r| json!({"collection": r.collection, "number": r.number})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "shards": s.shards.iter().map(|p| json!({
            "collection": p.collection,
            "number": p.number,
            "owner": p.owner,
            "epoch": p.epoch,
            "readers": p.readers,
            "state": enum_name(pb::ShardState::try_from(p.state).map(|x| x.as_str_name()), "SHARD_STATE_"),
            "error": p.error,
            "replicas": p.replicas.iter().map(|r| json!({
                "node": r.node,
                "role": r.role,
                "epoch": r.epoch,
                "in_sync": r.in_sync,
                "lag_seqs": r.lag_seqs,
                "lag_seconds": r.lag_seconds,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    collection: String,
    shard: u32,
    to: String,
}

async fn move_shard(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let m: MoveBody = body(b)?;
    let epoch = core
        .move_shard(&m.collection, m.shard, &m.to, forwarded(&h))
        .await?;
    ok(json!({ "epoch": epoch }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterBody {
    id: u64,
    grpc: String,
    internal: String,
    http: String,
}

async fn add_router(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let r: RouterBody = body(b)?;
    if r.id == 0 {
        return Err(Error::invalid("router id must be at least 1"));
    }
    let node = RouterNode {
        grpc: r.grpc,
        internal: r.internal,
        http: r.http,
    };
    core.add_router(r.id, node, forwarded(&h)).await?;
    ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    id: u64,
}

async fn remove_router(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let r: RemoveBody = body(b)?;
    core.remove_router(r.id, forwarded(&h)).await?;
    ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveNodeBody {
    id: String,
}

async fn remove_node(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let r: RemoveNodeBody = body(b)?;
    core.remove_node(&r.id, forwarded(&h)).await?;
    ok(json!({}))
}

/// Points a node returned, as JSON.
fn points_json(points: Vec<pb::Point>) -> Result<Vec<J>> {
    points
        .into_iter()
        .map(|p| {
            model_pb::point_from_proto(p)
                .map(|p| point_to_json(&p))
                .map_err(|e| Error::internal(format!("a node returned a malformed point: {e}")))
        })
        .collect()
}

fn spec_json(s: &pb::CollectionSpec) -> J {
    let metric = model_pb::metric_from_proto(s.metric)
        .map(|m| m.as_str())
        .unwrap_or("unspecified");
    let i = s.index.unwrap_or_default();
    let mut j = json!({
        "name": s.name,
        "dimension": s.dimension,
        "metric": metric,
        "shard_count": s.shard_count,
        "storage": s.storage,
        "index": {"m": i.m, "ef_construction": i.ef_construction, "ef_search": i.ef_search},
    });
    if s.replication_factor > 1 {
        j["replication_factor"] = json!(s.replication_factor);
        j["write_ack"] = json!(s.write_ack);
    }
    j
}

/// `SHARD_STATE_SERVING` → `serving`.
fn enum_name<E>(name: std::result::Result<&str, E>, prefix: &str) -> String {
    name.map(|n| n.strip_prefix(prefix).unwrap_or(n).to_ascii_lowercase())
        .unwrap_or_else(|_| "unknown".into())
}
