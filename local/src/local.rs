//! `vecshard local …`: one shard (a directory or an object-store URL).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use vecshard_engine::{Filter, Key, Options, SearchRequest, Shard, ShardSpec};
use vecshard_model::json::{key_to_json, point_to_json};
use vecshard_transfer::{Format, read};

/// Points per page of `scan`.
const SCAN_PAGE: usize = 1000;

/// A shard and how to open it.
pub struct Local {
    /// A directory, or an object-store URL: s3://bucket/prefix, file:///path, memory://name.
    pub location: String,
    /// How to open it.
    pub options: Options,
}

/// What every query of [`Local::search`] asks.
pub struct Search {
    /// Results per query.
    pub k: usize,
    /// Metadata filter (JSON).
    pub filter: Option<String>,
    /// Exact (brute-force) search.
    pub exact: bool,
    /// Search width.
    pub ef: Option<usize>,
}

impl Local {
    fn open(&self) -> Result<Shard> {
        Shard::open(&self.location, self.options.clone())
            .with_context(|| format!("open shard {}", self.location))
    }

    /// Create the shard: `created LOCATION (DIM-d METRIC)`.
    pub fn create(&self, spec: ShardSpec) -> Result<()> {
        let (dim, metric) = (spec.dim, spec.metric);
        let s = Shard::create(&self.location, spec, self.options.clone())?;
        s.close()?;
        println!("created {} ({dim}-d {metric})", self.location);
        Ok(())
    }

    /// Import `file` (`batch` points per write, `threads` writers) showing progress.
    pub fn import(
        &self,
        file: &Path,
        format: Option<Format>,
        batch: usize,
        threads: usize,
    ) -> Result<()> {
        let s = self.open()?;
        let n = vecshard_transfer::import::local::import_file(&s, file, format, batch, threads)?;
        s.close()?;
        eprintln!("imported {n} points into {}", self.location);
        Ok(())
    }

    /// Search with every vector of the `.fvecs` file `queries`: one JSON line per query,
    /// `{"query": i, "ids": [...], "scores": [...]}`.
    pub fn search(&self, queries: &Path, q: &Search) -> Result<()> {
        let s = self.open()?;
        let filter = q.filter.as_deref().map(Filter::parse_str).transpose()?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (i, v) in read::Fvecs::open(queries)?.enumerate() {
            let mut req = SearchRequest::new(v?, q.k);
            req.filter = filter.clone();
            req.exact = q.exact;
            req.ef = q.ef;
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

    /// Print the point with key `id` (digits: an integer key) as JSON; an error if none.
    pub fn get(&self, id: &str) -> Result<()> {
        let s = self.open()?;
        match s.get(&Key::parse_cli(id))? {
            Some(p) => println!("{}", point_to_json(&p)),
            None => bail!("no point with key {id} in {}", self.location),
        }
        Ok(())
    }

    /// Delete points by key.
    pub fn delete(&self, ids: &[String]) -> Result<()> {
        let s = self.open()?;
        s.delete(ids.iter().map(|i| Key::parse_cli(i)).collect())?;
        s.close()?;
        Ok(())
    }

    /// Print every live point as JSON lines, in key order.
    pub fn scan(&self) -> Result<()> {
        let s = self.open()?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut after: Option<Key> = None;
        loop {
            let page = s.scan(after.as_ref(), SCAN_PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for p in &page {
                writeln!(out, "{}", point_to_json(p))?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// Print sizes and counters as JSON.
    pub fn stats(&self) -> Result<()> {
        let s = self.open()?;
        println!("{}", serde_json::to_string_pretty(&s.stats())?);
        Ok(())
    }

    /// Write memtables to segments.
    pub fn flush(&self) -> Result<()> {
        let s = self.open()?;
        s.flush()?;
        s.close()?;
        Ok(())
    }

    /// Merge all segments into one.
    pub fn compact(&self) -> Result<()> {
        let s = self.open()?;
        s.compact()?;
        s.close()?;
        Ok(())
    }

    /// A point-in-time copy at `dest`: a summary on stderr, the details as JSON on stdout.
    pub fn checkpoint(&self, dest: &str) -> Result<()> {
        let s = self.open()?;
        let summary = s
            .checkpoint(dest)
            .with_context(|| format!("checkpoint {} to {dest}", self.location))?;
        s.close()?;
        let secs = summary.duration.as_secs_f64();
        eprintln!(
            "checkpoint of {} at {}: {} points, {} segments, {:.1} MB, up to sequence number {}, in {secs:.2} s ({:.0} MB/s)",
            self.location,
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

    /// Open a shard whose WAL is damaged, dropping everything after the first damage: a
    /// summary on stderr, the report as JSON on stdout.
    pub fn repair(&self) -> Result<()> {
        if self.options.read_only {
            bail!("repair writes to the shard: drop --read-only");
        }
        let (s, report) = Shard::open_accepting_wal_loss(&self.location, self.options.clone())
            .with_context(|| format!("repair shard {}", self.location))?;
        s.close()?;
        for l in &report.dropped {
            eprintln!(
                "dropped {} bytes of {} from byte offset {}: {} readable records ({} points and deletes) — {}",
                l.bytes, l.file, l.offset, l.records, l.points, l.reason
            );
        }
        if report.is_empty() {
            eprintln!("the WAL of {} is intact: nothing dropped", self.location);
        } else {
            eprintln!(
                "dropped {} readable WAL records ({} points and deletes, {} bytes) after the damage; \
                 every write up to sequence number {} is kept; {} opens normally again",
                report.records(),
                report.points(),
                report.bytes(),
                report.kept_seq,
                self.location
            );
        }
        let json = serde_json::json!({
            "location": self.location,
            "dropped_records": report.records(),
            "dropped_points": report.points(),
            "dropped_bytes": report.bytes(),
            "kept_seq": report.kept_seq,
            "files": report.dropped,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        Ok(())
    }
}
