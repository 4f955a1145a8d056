//! The gRPC operations of cluster backups (`CreateBackup`, `GetBackupJob`, `ListBackups`,
//! `DescribeBackup`, `RestoreBackup`, `DeleteBackup`): the same [`Core`] calls as the
//! REST handlers in `rest_backups.rs`, with proto in and out. Authorization (admin) is
//! checked by the service in `grpc.rs` before these run.

use std::sync::Arc;

use vecshard_proto::v1 as pb;

use crate::backup::{RestoreRequest, Started};
use crate::conversions::{backup_description, backup_job, backup_summary};
use crate::core::Core;
use crate::error::{Error, Result};

/// The job once it ended (`wait`: its error is the call's error), or as it is now.
async fn answer(started: Started, wait: bool) -> Result<pb::BackupJob> {
    let job = started.job.clone();
    if wait {
        started.outcome().await?;
    }
    Ok(backup_job(&job))
}

pub(super) async fn create(core: &Arc<Core>, r: pb::CreateBackupRequest) -> Result<pb::BackupJob> {
    answer(
        core.start_backup(&r.collection, &r.to, r.timeout_s)?,
        r.wait,
    )
    .await
}

pub(super) fn job(core: &Core, r: &pb::GetBackupJobRequest) -> Result<pb::BackupJob> {
    let job = core
        .backups
        .get(&r.id)
        .ok_or_else(|| Error::not_found(format!("no job {:?} on this router", r.id)))?;
    Ok(backup_job(&job))
}

pub(super) async fn list(
    core: &Core,
    r: &pb::ListBackupsRequest,
) -> Result<pb::ListBackupsResponse> {
    let backups = core.list_backups(&r.location).await?;
    Ok(pb::ListBackupsResponse {
        backups: backups.iter().map(backup_summary).collect(),
    })
}

pub(super) async fn describe(
    core: &Core,
    r: &pb::DescribeBackupRequest,
) -> Result<pb::DescribeBackupResponse> {
    Ok(backup_description(
        &core.describe_backup(&r.location).await?,
    ))
}

pub(super) async fn restore(
    core: &Arc<Core>,
    r: pb::RestoreBackupRequest,
) -> Result<pb::BackupJob> {
    let req = RestoreRequest {
        from: r.location,
        as_name: r.as_collection,
        storage: r.storage,
    };
    answer(core.start_restore(req, r.timeout_s, false)?, r.wait).await
}

pub(super) async fn delete(
    core: &Core,
    r: &pb::DeleteBackupRequest,
) -> Result<pb::DeleteBackupResponse> {
    let v = core.delete_backup(&r.location).await?;
    Ok(pb::DeleteBackupResponse {
        location: v["location"].as_str().unwrap_or_default().to_string(),
        files_deleted: v["files_deleted"].as_u64().unwrap_or(0),
    })
}
