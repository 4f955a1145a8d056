//! `vecshard local …`: the embedded engine on one shard, from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use vecshard_engine::{Durability, Filter, Key, Metric, Options, SearchRequest, Shard, ShardSpec};

use vecshard_transfer::Format;

use crate::datafile;
use crate::progress::Progress;
use vecshard_model::json::{key_to_json, point_to_json};

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
    pub fn options(&self) -> Options {
        Options {
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
        }
    }

    fn open(&self) -> Result<Shard> {
        Shard::open(&self.location, self.options())
            .with_context(|| format!("open shard {}", self.location))
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
            let s = Shard::create(&shard.location, spec, shard.options())?;
            s.close()?;
            println!("created {} ({dim}-d {metric})", shard.location);
            Ok(())
        }
        LocalCmd::Import {
            shard,
            file,
            format,
            batch,
            threads,
        } => {
            let s = shard.open()?;
            let format = Format::or_detect(format, &file);
            let progress = Progress::new(datafile::count_hint(&file, format), "importing");
            let imported =
                vecshard_transfer::import::local::import(&s, &file, format, batch, threads, |n| {
                    progress.acked(n)
                });
            progress.finish();
            let n = imported?;
            s.close()?;
            eprintln!("imported {n} points into {}", shard.location);
            Ok(())
        }
        LocalCmd::Search {
            shard,
            queries,
            k,
            filter,
            exact,
            ef,
        } => {
            let s = shard.open()?;
            let filter = filter.map(|f| Filter::parse_str(&f)).transpose()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for (i, q) in datafile::Fvecs::open(&queries)?.enumerate() {
                let mut req = SearchRequest::new(q?, k);
                req.filter = filter.clone();
                req.exact = exact;
                req.ef = ef;
                let hits = s.search(&req).with_context(|| format!("query {i}"))?;
                let ids: Vec<_> = hits.iter().map(|h| key_to_json(&h.key)).collect();
                let scores: Vec<_> = hits.iter().map(|h| h.score).collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"query": i, "ids": ids, "scores": scores})
                )?;
            }
            out.flush()?;
            Ok(())
        }
        LocalCmd::Get { shard, id } => {
            let s = shard.open()?;
            match s.get(&Key::parse_cli(&id))? {
                Some(p) => println!("{}", point_to_json(&p)),
                None => bail!("no point with key {id} in {}", shard.location),
            }
            Ok(())
        }
        LocalCmd::Delete { shard, ids } => {
            let s = shard.open()?;
            s.delete(ids.iter().map(|i| Key::parse_cli(i)).collect())?;
            s.close()?;
            Ok(())
        }
        LocalCmd::Scan { shard } => {
            let s = shard.open()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut after: Option<Key> = None;
            loop {
                let page = s.scan(after.as_ref(), 1000)?;
                let Some(last) = page.last() else { break };
                after = Some(last.key.clone());
                for p in &page {
                    writeln!(out, "{}", point_to_json(p))?;
                }
            }
            out.flush()?;
            Ok(())
        }
        LocalCmd::Stats { shard } => {
            let s = shard.open()?;
            println!("{}", serde_json::to_string_pretty(&s.stats())?);
            Ok(())
        }
        LocalCmd::Flush { shard } => {
            let s = shard.open()?;
            s.flush()?;
            s.close()?;
            Ok(())
        }
        LocalCmd::Compact { shard } => {
            let s = shard.open()?;
            s.compact()?;
            s.close()?;
            Ok(())
        }
        LocalCmd::Checkpoint { shard, dest } => {
            let s = shard.open()?;
            let summary = s
                .checkpoint(&dest)
                .with_context(|| format!("checkpoint {} to {dest}", shard.location))?;
            s.close()?;
            let secs = summary.duration.as_secs_f64();
            eprintln!(
                "checkpoint of {} at {}: {} points, {} segments, {:.1} MB, up to sequence number {}, in {secs:.2} s ({:.0} MB/s)",
                shard.location,
                summary.location,
                summary.points,
                summary.segments,
                summary.bytes as f64 / 1e6,
                summary.seq,
                summary.bytes as f64 / 1e6 / secs.max(1e-9)
            );
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        LocalCmd::Repair {
            shard,
            accept_wal_loss,
        } => {
            if !accept_wal_loss {
                bail!("repair drops WAL data: pass --accept-wal-loss to confirm");
            }
            repair(&shard)
        }
    }
}

/// `local repair --accept-wal-loss`: a summary on stderr, the report as JSON on stdout.
fn repair(shard: &ShardArgs) -> Result<()> {
    if shard.read_only {
        bail!("repair writes to the shard: drop --read-only");
    }
    let (s, report) = Shard::open_accepting_wal_loss(&shard.location, shard.options())
        .with_context(|| format!("repair shard {}", shard.location))?;
    s.close()?;
    for l in &report.dropped {
        eprintln!(
            "dropped {} bytes of {} from byte offset {}: {} readable records ({} points and deletes) — {}",
            l.bytes, l.file, l.offset, l.records, l.points, l.reason
        );
    }
    if report.is_empty() {
        eprintln!("the WAL of {} is intact: nothing dropped", shard.location);
    } else {
        eprintln!(
            "dropped {} readable WAL records ({} points and deletes, {} bytes) after the damage; \
             every write up to sequence number {} is kept; {} opens normally again",
            report.records(),
            report.points(),
            report.bytes(),
            report.kept_seq,
            shard.location
        );
    }
    let json = serde_json::json!({
        "location": shard.location,
        "dropped_records": report.records(),
        "dropped_points": report.points(),
        "dropped_bytes": report.bytes(),
        "kept_seq": report.kept_seq,
        "files": report.dropped,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
