//! The REST handlers of cluster backups (routes in `rest.rs`):
//!
//! | method and path | operation |
//! |---|---|
//! | `POST /v1/backups` | start a backup `{collection, to, timeout_s?, wait?}`: 202 `{job}` (200 with the manifest when `wait`) |
//! | `GET /v1/backups?location=` | list the backup at a location and those directly under it |
//! | `GET /v1/backups/describe?location=` | one backup: status, and its manifest when complete |
//! | `POST /v1/backups/restore` | restore `{from, as, storage?, timeout_s?, wait?}` as a new collection: 202 `{job}` (200 when `wait`) |
//! | `POST /v1/backups/delete` | delete a backup `{location}` |
//! | `GET /v1/backups/jobs/{id}` | a job's progress and outcome |
//!
//! The gRPC operations (`grpc_backups.rs`) make the same calls: jobs start in
//! `backup/start.rs`, list, describe and delete are the catalog's.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::backup::{RestoreRequest, Started};
use crate::core::Core;
use crate::error::{Error, Result};

type Reply = Result<Response>;

fn body<T: serde::de::DeserializeOwned>(b: Result<Bytes, BytesRejection>) -> Result<T> {
    let b =
        b.map_err(|r| Error::invalid(format!("cannot read the request body: {}", r.body_text())))?;
    serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))
}

/// 200 with the job's result once it ended (`wait`), or 202 `{job}` at once.
async fn answer(started: Started, wait: bool) -> Reply {
    if wait {
        return Ok(Json(started.outcome().await?).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": started.job.id }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    collection: String,
    to: String,
    timeout_s: Option<u64>,
    #[serde(default)]
    wait: bool,
}

pub(super) async fn create(
    State(core): State<Arc<Core>>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let c: CreateBody = body(b)?;
    answer(
        core.start_backup(&c.collection, &c.to, c.timeout_s)?,
        c.wait,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    from: String,
    #[serde(rename = "as")]
    as_name: String,
    storage: Option<String>,
    timeout_s: Option<u64>,
    #[serde(default)]
    wait: bool,
}

pub(super) async fn restore(
    State(core): State<Arc<Core>>,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let r: RestoreBody = body(b)?;
    let forwarded = h.contains_key(super::FORWARDED_HEADER);
    let req = RestoreRequest {
        from: r.from,
        as_name: r.as_name,
        storage: r.storage,
    };
    let started = core.start_restore(req, r.timeout_s, forwarded)?;
    answer(started, r.wait || forwarded).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LocationQuery {
    location: String,
}

pub(super) async fn list(
    State(core): State<Arc<Core>>,
    q: std::result::Result<Query<LocationQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| Error::invalid(format!("query: {e} (?location=PREFIX)")))?;
    let backups = core.list_backups(&q.location).await?;
    Ok(Json(json!({ "backups": backups })).into_response())
}

pub(super) async fn describe(
    State(core): State<Arc<Core>>,
    q: std::result::Result<Query<LocationQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let Query(q) = q.map_err(|e| Error::invalid(format!("query: {e} (?location=LOCATION)")))?;
    Ok(Json(core.describe_backup(&q.location).await?).into_response())
}

pub(super) async fn delete(
    State(core): State<Arc<Core>>,
    b: Result<Bytes, BytesRejection>,
) -> Reply {
    let q: LocationQuery = body(b)?;
    Ok(Json(core.delete_backup(&q.location).await?).into_response())
}

pub(super) async fn job(State(core): State<Arc<Core>>, Path(id): Path<String>) -> Reply {
    let job = core
        .backups
        .get(&id)
        .ok_or_else(|| Error::not_found(format!("no job {id:?} on this router")))?;
    Ok(Json(job.to_json()).into_response())
}
