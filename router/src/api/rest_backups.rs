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

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as J, json};

use crate::backup::{Job, RestoreRequest};
use crate::core::Core;
use crate::error::{Error, Result};

/// Default time a backup or restore may take.
const DEFAULT_TIMEOUT_S: u64 = 3600;

type Reply = Result<Response>;

fn body<T: serde::de::DeserializeOwned>(b: Result<Bytes, BytesRejection>) -> Result<T> {
    let b =
        b.map_err(|r| Error::invalid(format!("cannot read the request body: {}", r.body_text())))?;
    serde_json::from_slice(&b).map_err(|e| Error::invalid(format!("invalid JSON body: {e}")))
}

fn timeout(s: Option<u64>) -> Result<Duration> {
    match s {
        Some(0) => Err(Error::invalid("timeout_s must be at least 1")),
        s => Ok(Duration::from_secs(s.unwrap_or(DEFAULT_TIMEOUT_S))),
    }
}

/// Run `work` as a job: wait for it (`wait`) or answer 202 with the job's id at once.
async fn run_job<F>(core: &Arc<Core>, job: Arc<Job>, wait: bool, work: F) -> Reply
where
    F: Future<Output = Result<J>> + Send + 'static,
{
    let task = {
        let job = job.clone();
        tokio::spawn(async move {
            let r = work.await;
            job.finish(r.clone());
            r
        })
    };
    let _ = core;
    if wait {
        let r = task
            .await
            .map_err(|e| Error::internal(format!("backup task: {e}")))??;
        return Ok(Json(r).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job.id }))).into_response())
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
    let to = crate::backup::store::parse(&c.to)?;
    let timeout = timeout(c.timeout_s)?;
    Core::collection(&core.view(), &c.collection)?;
    let job = core.backups.start("backup", &to, &c.collection);
    let (core2, job2) = (core.clone(), job.clone());
    run_job(&core, job, c.wait, async move {
        let m = core2
            .create_backup(&c.collection, &to, timeout, &job2)
            .await?;
        Ok(json!({ "location": to, "manifest": m }))
    })
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
    let from = crate::backup::store::parse(&r.from)?;
    vecshard_model::validate::collection_name(&r.as_name)?;
    let timeout = timeout(r.timeout_s)?;
    let forwarded = h.contains_key(super::FORWARDED_HEADER);
    let job = core.backups.start("restore", &from, &r.as_name);
    let req = RestoreRequest {
        from,
        as_name: r.as_name,
        storage: r.storage,
    };
    let (core2, job2) = (core.clone(), job.clone());
    run_job(&core, job, r.wait || forwarded, async move {
        core2.restore_backup(req, timeout, forwarded, &job2).await
    })
    .await
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
