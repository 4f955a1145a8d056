//! A format-2 segment read on demand (design note 015, step 5), the `Lazy` backing of a
//! segment on an object store: opening reads the header and the tail directory only; a
//! search reads the hop blocks its walk reaches and the vectors it rescores through
//! `Storage::get_ranges` (so an object store's block and disk caches serve repeats), each
//! hop's missing blocks in one round of parallel requests (adjacent blocks coalesced into
//! one request); rows' payloads and single vectors are read the same way. Every
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
use crate::index::{BlockTable, HopIndex, LazySource, Neighbor, ReadAhead, Within};
use crate::options::{Prefetch, ShardSpec};
use crate::paths;
use crate::storage::Storage;

/// Bytes read from the end of a file at open, hoping to get the directory with the tail
/// (when the manifest does not say how long it is). Smaller in tests, whose segments'
/// directories are a few KiB, so that they cover a directory past the probe.
#[cfg(not(test))]
const TAIL_PROBE: u64 = 64 << 10;
#[cfg(test)]
pub(crate) const TAIL_PROBE: u64 = 1 << 10;
/// Ranges of one [`Storage::warm`] call of the prefetch.
const WARM_CHUNK: usize = 1 << 20;

/// Reads and requests a [`LazyIndex`] made.
#[derive(Debug, Default)]
pub(crate) struct ReadStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// A format-2 segment, read on demand.
pub(crate) struct LazyIndex {
    storage: Arc<dyn Storage>,
    id: u64,
    path: String,
    name: String,
    index: HopIndex,
    /// Every section, in [`format::SECTIONS_V2`] order.
    sections: Vec<SectionEntry>,
    hops: SectionEntry,
    vectors: SectionEntry,
    /// The hop and vector blocks the storage's memory cache holds, checked: searches
    /// read them without a cache lookup.
    hop_table: Arc<BlockTable>,
    vector_table: Arc<BlockTable>,
    dim: usize,
    file_len: u64,
    pub header: format::Header,
    pub stats: ReadStats,
}

impl LazyIndex {
    /// Open `segments/<id>`, `file_len` bytes long (the manifest records it), reading
    /// its header and tail directory only; `Ok(None)` when it is not a format-2 file.
    /// `tail_bytes` (the manifest's, 0 if unknown) is how much of the end to read with
    /// the header, the directory included: one round instead of two.
    pub(crate) fn open(
        storage: Arc<dyn Storage>,
        id: u64,
        file_len: u64,
        tail_bytes: u64,
        spec: ShardSpec,
    ) -> Result<Option<LazyIndex>> {
        let path = paths::segment(id);
        let name = format!("{}/{path}", storage.location());
        let min = (format::HEADER_LEN + format2::TAIL_LEN) as u64;
        if file_len < min {
            return Err(Error::corrupt(&name, "segment too short"));
        }
        let stats = ReadStats::default();
        let probe = file_len
            .saturating_sub(TAIL_PROBE.max(tail_bytes))
            .max(format::HEADER_LEN as u64);
        let mut got = reads(
            storage.as_ref(),
            &path,
            &[0..format::HEADER_LEN as u64, probe..file_len],
            &stats,
        )?;
        let (end, header) = (got.pop().unwrap_or_default(), got.pop().unwrap_or_default());
        let header = format::decode_header(&name, &header)?;
        if header.version != format::FORMAT_V2 {
            return Ok(None);
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
            let range = dir.start as u64..dir.end as u64;
            reads(
                storage.as_ref(),
                &path,
                std::slice::from_ref(&range),
                &stats,
            )?
            .pop()
            .unwrap_or_default()
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
        Ok(Some(LazyIndex {
            storage,
            id,
            path,
            name,
            index,
            sections: dir.sections,
            hop_table: table_of(&hops),
            vector_table: table_of(&vectors),
            hops,
            vectors,
            dim: spec.dim,
            file_len,
            header,
            stats,
        }))
    }

    /// Bytes of the blocks its tables hold (they share them with the memory cache).
    #[cfg(all(test, feature = "object-store"))]
    pub(crate) fn table_bytes(&self) -> u64 {
        (self.hop_table.held() * self.hops.block_len as usize
            + self.vector_table.held() * self.vectors.block_len as usize) as u64
    }

    /// The segment id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The full name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the file is.
    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The file's length in bytes.
    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    fn entry(&self, s: Section) -> &SectionEntry {
        let i = format::SECTIONS_V2
            .iter()
            .position(|k| *k == s)
            .unwrap_or(0);
        &self.sections[i]
    }

    /// The length of section `s`.
    pub(crate) fn section_len(&self, s: Section) -> usize {
        self.entry(s).len as usize
    }

    /// Sections `kinds` whole, read in one round, every block checked.
    pub(crate) fn read_sections(&self, kinds: &[Section]) -> Result<Vec<Bytes>> {
        let ranges: Vec<Range<u64>> = kinds
            .iter()
            .map(|k| {
                let r = self.entry(*k).range();
                r.start as u64..r.end as u64
            })
            .collect();
        let got = reads(self.storage.as_ref(), &self.path, &ranges, &self.stats)?;
        for (k, data) in kinds.iter().zip(&got) {
            let e = self.entry(*k);
            for b in 0..e.crcs.len() {
                let r = e.block(b);
                let base = e.offset as usize;
                format2::check_block(&self.name, e, b, &data[r.start - base..r.end - base])?;
            }
        }
        Ok(got)
    }

    /// Bytes `range` of section `s` (reading and checking the blocks it spans).
    pub(crate) fn read_in(&self, s: Section, range: Range<usize>) -> Result<Bytes> {
        let e = self.entry(s);
        if range.start > range.end || range.end > e.len as usize {
            return Err(Error::corrupt(
                &self.name,
                format!(
                    "bytes {}..{} past the end of section {s:?} ({} bytes)",
                    range.start, range.end, e.len
                ),
            ));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bl = e.block_len as usize;
        let ids: Vec<usize> = (range.start / bl..range.end.div_ceil(bl)).collect();
        let blocks = self.blocks(e, &ids)?;
        let first = ids[0] * bl;
        if let [only] = &blocks[..] {
            return Ok(only.slice(range.start - first..range.end - first));
        }
        let mut all = Vec::with_capacity(ids.len() * bl);
        for b in &blocks {
            all.extend_from_slice(b);
        }
        Ok(Bytes::from(all).slice(range.start - first..range.end - first))
    }

    /// What the prefetch policy warms, as ranges of the file.
    pub(crate) fn warm_ranges(&self, prefetch: Prefetch) -> Vec<Range<u64>> {
        let chunked = |e: &SectionEntry| {
            let r = e.range();
            (r.start..r.end)
                .step_by(WARM_CHUNK)
                .map(move |at| at as u64..(at + WARM_CHUNK).min(r.end) as u64)
        };
        match prefetch {
            Prefetch::None => Vec::new(),
            Prefetch::UpperLayers => {
                let mut ids: Vec<usize> = self
                    .index
                    .rows_at_or_above(2)
                    .into_iter()
                    .chain([self.index.entry()].into_iter().filter(|e| *e != u32::MAX))
                    .map(|r| self.index.block_of(r))
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                runs(&ids)
                    .into_iter()
                    .map(|r| {
                        self.hops.block(r.start).start as u64..self.hops.block(r.end - 1).end as u64
                    })
                    .collect()
            }
            Prefetch::All => chunked(&self.hops)
                .chain(chunked(&self.vectors))
                .chain(chunked(self.entry(Section::Payload)))
                .collect(),
        }
    }

    /// Warm the caches with what `prefetch` asks for on a thread of its own, which holds
    /// the storage but not the segment: once the segment is dropped (a shard closed, a
    /// segment merged away) the warm stops after the round in flight.
    pub(crate) fn warm_in_background(self: &Arc<Self>, prefetch: Prefetch) {
        let ranges = self.warm_ranges(prefetch);
        if ranges.is_empty() {
            return;
        }
        let (storage, path, name) = (self.storage.clone(), self.path.clone(), self.name.clone());
        let segment = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("vecshard-prefetch".into())
            .spawn(move || {
                let alive = || segment.strong_count() > 0;
                if let Err(e) = storage.warm(&path, &ranges, &alive) {
                    tracing::warn!(segment = %name, error = %e, "prefetch failed");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(segment = %self.name, error = %e, "cannot start the prefetch");
        }
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
        self.checked_blocks(entry, ids, &|_, _| Ok(()), None)
    }

    /// Blocks `ids` (ascending) of `entry`, each checked (checksum, then `check`) unless
    /// the cached copy carries the mark of an earlier check; one range per block, which
    /// the storage coalesces into one request per run of missing blocks. Blocks the
    /// memory cache holds go into `table` once checked.
    fn checked_blocks(
        &self,
        entry: &SectionEntry,
        ids: &[usize],
        check: &dyn Fn(usize, &[u8]) -> Result<()>,
        table: Option<&Arc<BlockTable>>,
    ) -> Result<Vec<Bytes>> {
        let ranges: Vec<Range<u64>> = ids
            .iter()
            .map(|&b| {
                let r = entry.block(b);
                r.start as u64..r.end as u64
            })
            .collect();
        let s = &self.stats;
        s.requests
            .fetch_add(runs(ids).len() as u64, Ordering::Relaxed);
        let want: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        s.bytes.fetch_add(want, Ordering::Relaxed);
        let got = self.storage.get_blocks(&self.path, &ranges)?;
        let mut out = Vec::with_capacity(ids.len());
        for ((&b, r), f) in ids.iter().zip(&ranges).zip(got) {
            if f.bytes.len() as u64 != r.end - r.start {
                return Err(Error::corrupt(
                    &self.name,
                    "short read: the object is smaller than its directory says",
                ));
            }
            let marked = f
                .checked
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Acquire));
            if !marked {
                format2::check_block(&self.name, entry, b, &f.bytes)?;
                check(b, &f.bytes)?;
                if let Some(c) = &f.checked {
                    c.store(true, Ordering::Release);
                }
            }
            if let (Some(t), Some(r)) = (table, &f.resident) {
                t.keep(b, &f.bytes, r);
            }
            out.push(f.bytes);
        }
        Ok(out)
    }
}

impl LazySource for LazyIndex {
    fn hop_blocks(&self, ids: &[usize]) -> Result<Vec<Bytes>> {
        let links = |b: usize, block: &[u8]| {
            self.index
                .check_block(b, block)
                .map_err(|e| Error::corrupt(&self.name, format!("hop block {b}: {e}")))
        };
        self.checked_blocks(&self.hops, ids, &links, Some(&self.hop_table))
    }

    fn hop_table(&self) -> Option<&BlockTable> {
        Some(&self.hop_table)
    }

    fn table_hits(&self, n: u64) {
        if n > 0 {
            self.storage.count_memory_hits(n);
        }
    }

    fn vectors(&self, rows: &[u32]) -> Result<Vec<f32>> {
        let row_len = self.dim * 4;
        let bytes_of = |r: u32| r as usize * row_len..(r as usize + 1) * row_len;
        // Rows within one block the table holds are copied from there (their cache lines
        // prefetched first, as a mapped segment's would be); the rest are read below.
        let table = &self.vector_table;
        let pin = BlockTable::pin();
        for &r in rows {
            let b = bytes_of(r);
            table.prefetch(b.start / BLOCK, b.start % BLOCK, row_len);
        }
        let mut out = vec![0f32; rows.len() * self.dim];
        let mut rest: Vec<usize> = Vec::new();
        for (i, (&r, v)) in rows.iter().zip(out.chunks_exact_mut(self.dim)).enumerate() {
            let b = bytes_of(r);
            let (block, at) = (b.start / BLOCK, b.start % BLOCK);
            let src = (at + row_len <= BLOCK)
                .then(|| table.read(block, &pin))
                .flatten()
                .and_then(|data| data.get(at..at + row_len));
            match src {
                Some(src) => {
                    for (x, c) in v.iter_mut().zip(src.chunks_exact(4)) {
                        *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
                None => rest.push(i),
            }
        }
        drop(pin);
        self.table_hits((rows.len() - rest.len()) as u64);
        if rest.is_empty() {
            return Ok(out);
        }
        let missing: Vec<u32> = rest.iter().map(|&i| rows[i]).collect();
        let read = self.read_vectors(&missing)?;
        for (&i, v) in rest.iter().zip(read.chunks_exact(self.dim)) {
            out[i * self.dim..(i + 1) * self.dim].copy_from_slice(v);
        }
        Ok(out)
    }
}

impl LazyIndex {
    /// The vectors of `rows` read through the storage (one round for the blocks the
    /// table lacks), concatenated in that order.
    fn read_vectors(&self, rows: &[u32]) -> Result<Vec<f32>> {
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
        // The blocks the table holds, then one round for the rest.
        let mut blocks: Vec<Option<Bytes>> =
            ids.iter().map(|&b| self.vector_table.get(b)).collect();
        let missing: Vec<usize> = ids
            .iter()
            .zip(&blocks)
            .filter(|(_, got)| got.is_none())
            .map(|(&b, _)| b)
            .collect();
        if !missing.is_empty() {
            let no_check = |_: usize, _: &[u8]| Ok(());
            let read =
                self.checked_blocks(&self.vectors, &missing, &no_check, Some(&self.vector_table))?;
            let mut read = read.into_iter();
            for slot in blocks.iter_mut().filter(|b| b.is_none()) {
                *slot = read.next();
            }
        }
        let blocks: Vec<Bytes> = blocks.into_iter().map(Option::unwrap_or_default).collect();
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

/// An empty [`BlockTable`] for the blocks of section `e`.
fn table_of(e: &SectionEntry) -> Arc<BlockTable> {
    BlockTable::new(e.crcs.len(), e.block_len as usize, e.len as usize)
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

/// `ranges` of `path` in one round (`Storage::get_ranges`: parallel requests for what
/// is not cached), in order; a range the object does not hold in full is `Corrupt`.
fn reads(
    storage: &dyn Storage,
    path: &str,
    ranges: &[Range<u64>],
    stats: &ReadStats,
) -> Result<Vec<Bytes>> {
    stats
        .requests
        .fetch_add(ranges.len() as u64, Ordering::Relaxed);
    let want: u64 = ranges.iter().map(|r| r.end - r.start).sum();
    stats.bytes.fetch_add(want, Ordering::Relaxed);
    // Read once and kept by the caller (or dropped): past the memory block cache.
    let got = storage.get_ranges_uncached(path, ranges)?;
    for (r, g) in ranges.iter().zip(&got) {
        if g.len() as u64 != r.end - r.start {
            return Err(Error::corrupt(
                &format!("{}/{path}", storage.location()),
                "short read: the object is smaller than its directory says",
            ));
        }
    }
    Ok(got)
}
