//! `vecshard local …`: the embedded engine on one shard, from the command line; the
//! operations are `vecshard_local::Local`'s.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use vecshard_engine::{Durability, Metric, Options, ShardSpec};
use vecshard_local::{Local, Search};
use vecshard_transfer::Format;

#[derive(Subcommand)]
pub enum LocalCmd {
    /// Create a shard.
    Create {
        #[command(flatten)]
        shard: ShardArgs,
        /// Vector dimension.
        #[arg(long)]
        dim: usize,
        /// Distance metric.
        #[arg(long, default_value = "l2")]
        metric: Metric,
        /// Graph degree.
        #[arg(long, default_value_t = 16)]
        m: usize,
        /// Build-time search width.
        #[arg(long, default_value_t = 200)]
        ef_construction: usize,
        /// Default query-time search width.
        #[arg(long, default_value_t = 64)]
        ef_search: usize,
    },
    /// Import points from FILE: `.fvecs` and `.npy` (keys are row numbers), `.parquet`,
    /// otherwise JSON lines.
    Import {
        #[command(flatten)]
        shard: ShardArgs,
        /// The file to import.
        file: PathBuf,
        /// The file's format (fvecs, jsonl, parquet, npy); default: from its extension.
        #[arg(long)]
        format: Option<Format>,
        /// Points per write batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Concurrent writers (they share WAL syncs).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Search with every vector of an `.fvecs` query file; one JSON line per query.
    Search {
        #[command(flatten)]
        shard: ShardArgs,
        /// Query vectors.
        #[arg(long)]
        queries: PathBuf,
        /// Results per query.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Metadata filter (JSON).
        #[arg(long)]
        filter: Option<String>,
        /// Exact (brute-force) search.
        #[arg(long)]
        exact: bool,
        /// Search width.
        #[arg(long)]
        ef: Option<usize>,
    },
    /// Print one point as JSON.
    Get {
        #[command(flatten)]
        shard: ShardArgs,
        /// Key: digits for an integer key, anything else for a string key.
        id: String,
    },
    /// Delete points by key.
    Delete {
        #[command(flatten)]
        shard: ShardArgs,
        /// Keys.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print every live point as JSON lines, in key order.
    Scan {
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Print sizes and counters as JSON.
    Stats {
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Write memtables to segments.
    Flush {
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Merge all segments into one.
    Compact {
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Write a consistent point-in-time copy of the shard to DEST (a directory or an
    /// object-store URL where no shard is) and print its summary as JSON. Opening DEST is
    /// the restore. A writer flushes first (the copy holds every acknowledged write); with
    /// --read-only it copies what the shard's manifest covers, leaving a running writer be.
    Checkpoint {
        #[command(flatten)]
        shard: ShardArgs,
        /// Where the checkpoint goes: a directory (hard links on the same file system) or
        /// s3://bucket/prefix, file:///path (server-side copies within one bucket).
        dest: String,
    },
    /// Open a shard whose WAL is damaged: keep every write before the first damage, drop
    /// everything after it (reported per file, as JSON on stdout), and settle that so the
    /// shard opens normally again. Only when no intact copy of the shard exists.
    Repair {
        #[command(flatten)]
        shard: ShardArgs,
        /// Confirm that acknowledged writes after the damage are lost for good.
        #[arg(long, required = true)]
        accept_wal_loss: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DurabilityArg {
    Sync,
    Buffered,
}

/// Where the shard is and how to open it.
#[derive(Args, Clone)]
pub struct ShardArgs {
    /// A directory, or an object-store URL: s3://bucket/prefix, file:///path, memory://name.
    pub location: String,
    /// Open read-only (writes fail).
    #[arg(long)]
    pub read_only: bool,
    /// On-disk cache directory for object-store data.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Memory bound of the object-store block cache.
    #[arg(long, default_value_t = 256 << 20)]
    pub block_cache_bytes: u64,
    /// Manifest commit store: dynamodb:TABLE (default: conditional puts on the store).
    #[arg(long)]
    pub commit_store: Option<String>,
    /// Memtable size limit in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub memtable_bytes: usize,
    /// Merge policy cap: at most this many segments once compaction catches up.
    #[arg(long, default_value_t = 3)]
    pub max_segments: usize,
    /// When writes are acknowledged.
    #[arg(long, value_enum, default_value = "sync")]
    pub durability: DurabilityArg,
}

impl ShardArgs {
    fn local(&self) -> Local {
        Local {
            location: self.location.clone(),
            options: Options {
                read_only: self.read_only,
                cache_dir: self.cache_dir.clone(),
                block_cache_bytes: self.block_cache_bytes,
                commit_store: self.commit_store.clone(),
                memtable_bytes: self.memtable_bytes,
                max_segments: self.max_segments,
                durability: match self.durability {
                    DurabilityArg::Sync => Durability::Sync,
                    DurabilityArg::Buffered => Durability::Buffered,
                },
                ..Options::default()
            },
        }
    }
}

pub fn run(cmd: LocalCmd) -> Result<()> {
    match cmd {
        LocalCmd::Create {
            shard,
            dim,
            metric,
            m,
            ef_construction,
            ef_search,
        } => {
            let mut spec = ShardSpec::new(dim, metric);
            spec.index.m = m;
            spec.index.ef_construction = ef_construction;
            spec.index.ef_search = ef_search;
            shard.local().create(spec)
        }
        LocalCmd::Import {
            shard,
            file,
            format,
            batch,
            threads,
        } => shard.local().import(&file, format, batch, threads),
        LocalCmd::Search {
            shard,
            queries,
            k,
            filter,
            exact,
            ef,
        } => shard.local().search(
            &queries,
            &Search {
                k,
                filter,
                exact,
                ef,
            },
        ),
        LocalCmd::Get { shard, id } => shard.local().get(&id),
        LocalCmd::Delete { shard, ids } => shard.local().delete(&ids),
        LocalCmd::Scan { shard } => shard.local().scan(),
        LocalCmd::Stats { shard } => shard.local().stats(),
        LocalCmd::Flush { shard } => shard.local().flush(),
        LocalCmd::Compact { shard } => shard.local().compact(),
        LocalCmd::Checkpoint { shard, dest } => shard.local().checkpoint(&dest),
        LocalCmd::Repair {
            shard,
            accept_wal_loss,
        } => {
            if !accept_wal_loss {
                bail!("repair drops WAL data: pass --accept-wal-loss to confirm");
            }
            shard.local().repair()
        }
    }
}
