//! The subcommands and their runs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::show;
use vecshard_client::rest::Router;

/// `vecshard backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Back up a collection: a checkpoint of every shard, then the manifest.
    Create {
        /// A router's REST (HTTP) address, `host:port`.
        #[arg(long)]
        router: String,
        /// The collection.
        #[arg(long)]
        collection: String,
        /// Where: `s3://bucket/backups/NAME`, `file:///abs/dir` or an absolute directory.
        #[arg(long)]
        to: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
    },
    /// The backups at a location and directly under it, with their status.
    List {
        /// A router's REST (HTTP) address.
        #[arg(long)]
        router: String,
        /// A backup location or a prefix holding backups.
        #[arg(long)]
        location: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One backup: status and manifest.
    Describe {
        /// A router's REST (HTTP) address.
        #[arg(long)]
        router: String,
        /// The backup's location.
        #[arg(long)]
        location: String,
        /// Print the manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup as a new collection (same settings and shard count).
    Restore {
        /// A router's REST (HTTP) address.
        #[arg(long)]
        router: String,
        /// The backup's location.
        #[arg(long)]
        from: String,
        /// The new collection's name (must not exist).
        #[arg(long = "as")]
        as_name: String,
        /// The new collection's storage (`local` or an allowed object-store prefix);
        /// default: the backed-up collection's.
        #[arg(long)]
        storage: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout_s: u64,
    },
    /// Delete a backup (never a collection).
    Delete {
        /// A router's REST (HTTP) address.
        #[arg(long)]
        router: String,
        /// The backup's location.
        #[arg(long)]
        location: String,
    },
}

/// Run a backup command.
pub fn run(cmd: BackupCmd) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(run_async(cmd))
}

async fn run_async(cmd: BackupCmd) -> Result<()> {
    match cmd {
        BackupCmd::Create {
            router,
            collection,
            to,
            timeout_s,
        } => {
            let r = Router::new(&router)?;
            let body = json!({"collection": collection, "to": to, "timeout_s": timeout_s});
            let job = r.post("/v1/backups", body).await?;
            let done = follow(&r, &job, &format!("backup {collection}")).await?;
            println!("{}", show::created(&done["result"]));
        }
        BackupCmd::List {
            router,
            location,
            json,
        } => {
            let v = Router::new(&router)?
                .get("/v1/backups", &[("location", &location)])
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v["backups"])?);
            } else {
                print!("{}", show::list(&v["backups"]));
            }
        }
        BackupCmd::Describe {
            router,
            location,
            json,
        } => {
            let v = Router::new(&router)?
                .get("/v1/backups/describe", &[("location", &location)])
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", show::describe(&v));
            }
        }
        BackupCmd::Restore {
            router,
            from,
            as_name,
            storage,
            timeout_s,
        } => {
            let r = Router::new(&router)?;
            let body =
                json!({"from": from, "as": as_name, "storage": storage, "timeout_s": timeout_s});
            let job = r.post("/v1/backups/restore", body).await?;
            let done = follow(&r, &job, &format!("restore {as_name}")).await?;
            println!("{}", show::restored(&done["result"]));
        }
        BackupCmd::Delete { router, location } => {
            let v = Router::new(&router)?
                .post("/v1/backups/delete", json!({ "location": location }))
                .await?;
            println!(
                "deleted the backup at {} ({} files)",
                v["location"].as_str().unwrap_or(&location),
                v["files_deleted"]
            );
        }
    }
    Ok(())
}

/// Poll a job until it ends, with a progress bar over its shards; the finished job, or
/// its error.
async fn follow(r: &Router, started: &Value, what: &str) -> Result<Value> {
    let id = started["job"]
        .as_str()
        .context("the router did not return a job id")?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} shards {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    loop {
        let j = r.get(&format!("/v1/backups/jobs/{id}"), &[]).await?;
        bar.set_length(j["shards_total"].as_u64().unwrap_or(0));
        bar.set_position(j["shards_done"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{:.1} MB, {} points",
            j["bytes_done"].as_u64().unwrap_or(0) as f64 / 1e6,
            j["points_done"].as_u64().unwrap_or(0)
        ));
        match j["state"].as_str() {
            Some("running") => tokio::time::sleep(Duration::from_millis(200)).await,
            Some("done") => {
                bar.finish();
                return Ok(j);
            }
            _ => {
                bar.abandon();
                bail!(
                    "{}: {}",
                    j["error"]["code"].as_str().unwrap_or("error"),
                    j["error"]["message"].as_str().unwrap_or("the job failed")
                );
            }
        }
    }
}
