//! A format-2 segment's index read on demand (design note 015, step 5, not yet wired into
//! shards): opening reads the header and the tail directory only; a search reads the hop
//! blocks its walk reaches and the vectors it rescores through `Storage::get_range` (so
//! an object store's block and disk caches serve repeats), each hop's missing blocks in
//! one round of parallel requests (adjacent blocks coalesced into one request). Every
//! block's checksum, and every hop block's links, are checked when it arrives: damage is a
//! `Corrupt` error naming the file and block, a failed read an error — never an answer
//! from partial data.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::format::{self, Section};
use super::format2::{self, BLOCK, SectionEntry};
use crate::error::{Error, Result};
use crate::index::{HopIndex, LazySource, Neighbor, ReadAhead, Within};
use crate::options::ShardSpec;
use crate::paths;
use crate::storage::Storage;

/// Bytes read from the end of a file at open, hoping to get the directory with the tail.
const TAIL_PROBE: u64 = 64 << 10;
/// Requests of one round issued at once.
const PARALLEL: usize = 32;

/// Reads and requests a [`LazyIndex`] made.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// The index of a format-2 segment, read on demand.
pub(crate) struct LazyIndex {
    storage: Arc<dyn Storage>,
    path: String,
    name: String,
    index: HopIndex,
    hops: SectionEntry,
    vectors: SectionEntry,
    dim: usize,
    pub stats: ReadStats,
}

impl LazyIndex {
    /// Open `segments/<id>`, `file_len` bytes long (the manifest records it), reading
    /// its header and tail directory only.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        id: u64,
        file_len: u64,
        spec: ShardSpec,
    ) -> Result<LazyIndex> {
        let path = paths::segment(id);
        let name = format!("{}/{path}", storage.location());
        let min = (format::HEADER_LEN + format2::TAIL_LEN) as u64;
        if file_len < min {
            return Err(Error::corrupt(&name, "segment too short"));
        }
        let stats = ReadStats::default();
        let probe = file_len
            .saturating_sub(TAIL_PROBE)
            .max(format::HEADER_LEN as u64);
        let mut got = parallel_reads(
            storage.as_ref(),
            &path,
            &[0..format::HEADER_LEN as u64, probe..file_len],
            &stats,
        )?;
        let (end, header) = (got.pop().unwrap_or_default(), got.pop().unwrap_or_default());
        let header = format::decode_header(&name, &header)?;
        if header.version != format::FORMAT_V2 {
            return Err(Error::invalid(format!(
                "{name}: format {} segments are not read lazily",
                header.version
            )));
        }
        if header.dim as usize != spec.dim || header.metric != spec.metric {
            return Err(Error::corrupt(
                &name,
                "segment does not fit the shard's spec",
            ));
        }
        let rows = u32::try_from(header.rows)
            .map_err(|_| Error::corrupt(&name, "row count out of range"))?;
        let file = file_len as usize;
        if end.len() != file - probe as usize {
            return Err(Error::corrupt(
                &name,
                "segment shorter than the manifest says",
            ));
        }
        let tail = &end[end.len() - format2::TAIL_LEN..];
        let dir = format2::decode_tail(&name, tail, file)?;
        let dir_bytes = if dir.start as u64 >= probe {
            end.slice(dir.start - probe as usize..dir.end - probe as usize)
        } else {
            read(
                storage.as_ref(),
                &path,
                dir.start as u64..dir.end as u64,
                &stats,
            )?
        };
        let (dir, _) = format2::decode_directory(&name, &dir_bytes, tail, file)?;
        // `decode_directory` checked the kinds: the sections are in `SECTIONS_V2` order.
        let entry = |s: Section| {
            let i = format::SECTIONS_V2
                .iter()
                .position(|k| *k == s)
                .unwrap_or(0);
            dir.sections[i].clone()
        };
        let (vectors, hops) = (entry(Section::Vectors), entry(Section::Hops));
        let index = HopIndex::open(dir.hops, spec.metric, spec.dim, rows)
            .map_err(|e| Error::corrupt(&name, format!("index: {e}")))?;
        if hops.len as usize != index.section_len()
            || vectors.len != header.rows * spec.dim as u64 * 4
        {
            return Err(Error::corrupt(
                &name,
                "hop or vector section has the wrong size",
            ));
        }
        Ok(LazyIndex {
            storage,
            path,
            name,
            index,
            hops,
            vectors,
            dim: spec.dim,
            stats,
        })
    }

    /// Approximate search, reading what the walk reaches (see [`ReadAhead`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        ahead: ReadAhead,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> Result<Vec<Neighbor>> {
        self.index
            .search_lazy(self, ahead, query, k, ef, accept, selectivity, within)
    }

    /// Blocks `ids` (ascending) of `entry`, checksummed.
    fn blocks(&self, entry: &SectionEntry, ids: &[usize]) -> Result<Vec<Bytes>> {
        let runs = runs(ids);
        let ranges: Vec<Range<u64>> = runs
            .iter()
            .map(|r| entry.block(r.start).start as u64..entry.block(r.end - 1).end as u64)
            .collect();
        let got = parallel_reads(self.storage.as_ref(), &self.path, &ranges, &self.stats)?;
        let mut out = Vec::with_capacity(ids.len());
        for (run, data) in runs.iter().zip(got) {
            let base = entry.block(run.start).start;
            for b in run.clone() {
                let r = entry.block(b);
                let block = data.slice(r.start - base..r.end - base);
                format2::check_block(&self.name, entry, b, &block)?;
                out.push(block);
            }
        }
        Ok(out)
    }
}

impl LazySource for LazyIndex {
    fn hop_blocks(&self, ids: &[usize]) -> Result<Vec<Bytes>> {
        let blocks = self.blocks(&self.hops, ids)?;
        for (&b, block) in ids.iter().zip(&blocks) {
            self.index
                .check_block(b, block)
                .map_err(|e| Error::corrupt(&self.name, format!("hop block {b}: {e}")))?;
        }
        Ok(blocks)
    }

    fn vectors(&self, rows: &[u32]) -> Result<Vec<f32>> {
        let row_len = self.dim * 4;
        let bytes_of = |r: u32| r as usize * row_len..(r as usize + 1) * row_len;
        let mut ids: Vec<usize> = rows
            .iter()
            .flat_map(|&r| {
                let b = bytes_of(r);
                b.start / BLOCK..b.end.div_ceil(BLOCK)
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let blocks = self.blocks(&self.vectors, &ids)?;
        let mut out = Vec::with_capacity(rows.len() * self.dim);
        let mut row = vec![0u8; row_len];
        for &r in rows {
            let b = bytes_of(r);
            let mut at = b.start;
            while at < b.end {
                let k = ids.binary_search(&(at / BLOCK)).map_err(|_| {
                    Error::corrupt(&self.name, format!("vector block of row {r} not read"))
                })?;
                let end = b.end.min((at / BLOCK + 1) * BLOCK);
                let block = &blocks[k];
                let src = block
                    .get(at % BLOCK..at % BLOCK + (end - at))
                    .ok_or_else(|| {
                        Error::corrupt(&self.name, format!("vector of row {r} cut short"))
                    })?;
                row[at - b.start..end - b.start].copy_from_slice(src);
                at = end;
            }
            out.extend(
                row.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        Ok(out)
    }
}

/// Consecutive ids grouped: `[1, 2, 3, 7]` → `[1..4, 7..8]`.
fn runs(ids: &[usize]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for &b in ids {
        match out.last_mut() {
            Some(r) if r.end == b => r.end = b + 1,
            _ => out.push(b..b + 1),
        }
    }
    out
}

fn read(storage: &dyn Storage, path: &str, range: Range<u64>, stats: &ReadStats) -> Result<Bytes> {
    stats.requests.fetch_add(1, Ordering::Relaxed);
    stats
        .bytes
        .fetch_add(range.end - range.start, Ordering::Relaxed);
    let want = (range.end - range.start) as usize;
    let got = storage.get_range(path, range)?;
    if got.len() != want {
        return Err(Error::corrupt(
            &format!("{}/{path}", storage.location()),
            "short read: the object is smaller than its directory says",
        ));
    }
    Ok(got)
}

/// `ranges` of `path`, read side by side (up to [`PARALLEL`] at once), in order.
fn parallel_reads(
    storage: &dyn Storage,
    path: &str,
    ranges: &[Range<u64>],
    stats: &ReadStats,
) -> Result<Vec<Bytes>> {
    if ranges.len() == 1 {
        return Ok(vec![read(storage, path, ranges[0].clone(), stats)?]);
    }
    let mut out = Vec::with_capacity(ranges.len());
    for chunk in ranges.chunks(PARALLEL) {
        let got: Vec<Result<Bytes>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|r| s.spawn(move || read(storage, path, r.clone(), stats)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::new(
                            crate::error::ErrorKind::Io,
                            "a read thread panicked",
                        ))
                    })
                })
                .collect()
        });
        for g in got {
            out.push(g?);
        }
    }
    Ok(out)
}
