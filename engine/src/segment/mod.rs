//! Immutable segments: a file with vectors, keys, sequence numbers, metadata, payloads,
//! tombstones and the ANN index sections. Both file formats are read: format 1 (graph and
//! codes sections) and format 2 (4 KiB checksummed blocks, hop blocks and a tail
//! directory, `format2.rs`).
//!
//! Two backings:
//! - **mapped**: the whole file memory-mapped (local disk) or fetched (format 1 on an
//!   object store); opening verifies every checksum;
//! - **lazy** (format 2 on an object store, `lazy.rs`): opening reads the header, the
//!   directory and the small row columns a shard needs for every row (sequence numbers,
//!   keys, metadata, tombstones — what the primary-key and filter indexes are built
//!   from); the hop blocks, vectors and payloads are read in blocks, through the
//!   storage's caches, when a search or a get touches them, each block checked then.
//!
//! A damaged file is a `Corrupt` error naming it, found at open (mapped) or when the
//! damaged block is read (lazy).

mod format;
mod format2;
mod lazy;
#[cfg(test)]
mod tests;
mod writer;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use roaring::RoaringBitmap;

pub(crate) use format2::tail_bytes;
pub(crate) use writer::SegmentWriter;

use crate::deletions::Deletions;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::{
    FrozenIndex, HopIndex, IndexBytes, IndexParams, LazySource, Neighbor, ReadAhead, SliceVectors,
    Vectors, Within,
};
use crate::manifest::SegmentMeta;
use crate::meta_index::MetaIndex;
use crate::options::{Prefetch, ShardSpec};
use crate::paths;
use crate::storage::{Blob, Storage};
use crate::types::{Key, Metadata};
use format::{Section, u64_at};
use lazy::LazyIndex;

/// Byte ranges of the key column's parts.
#[derive(Debug, Clone)]
struct KeyLayout {
    tags: Range<usize>,
    ints: Range<usize>,
    offsets: Range<usize>,
    strings: Range<usize>,
}

/// An open segment.
pub(crate) struct Segment {
    pub id: u64,
    /// Runtime container id used by the primary-key index.
    pub container: u32,
    /// Full name (location + path) for messages.
    pub name: String,
    /// Mapped: the whole file. Lazy: the resident sections only, packed.
    blob: Blob,
    pub spec: ShardSpec,
    rows: u32,
    file_len: u64,
    max_seq: u64,
    sections: [Range<usize>; 9],
    keys: KeyLayout,
    meta: MetaIndex,
    index: SegIndex,
    pub deleted: Arc<Deletions>,
    tombstones: Vec<(Key, u64)>,
    /// A lazy reader's sequence numbers, read when first needed ([`Segment::load_seqs`]);
    /// its `Seqs` section range is then empty.
    late_seqs: std::sync::OnceLock<Bytes>,
}

/// A segment's ANN index: format 1 (graph + codes sections), format 2 mapped (hop
/// blocks in the blob) or format 2 lazy (the lazy backing: blocks read on demand).
enum SegIndex {
    Graph(FrozenIndex),
    Hops(HopIndex),
    Lazy(Arc<LazyIndex>, ReadAhead),
}

/// How a segment on a storage that [reads in blocks](Storage::reads_in_blocks) is read.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LazyReads {
    pub prefetch: Prefetch,
    pub read_ahead: ReadAhead,
    /// Leave the per-row sequence numbers in the store until asked for
    /// ([`Segment::load_seqs`]): a reader's searches never need them (every segment of
    /// its version precedes its snapshot), only its key resolution and checkpoints do.
    pub skip_seqs: bool,
}

impl From<&crate::options::Options> for LazyReads {
    fn from(o: &crate::options::Options) -> Self {
        LazyReads {
            prefetch: o.prefetch,
            read_ahead: o.read_ahead,
            skip_seqs: o.read_only,
        }
    }
}

/// The sections a lazy segment reads whole at open: what every row's bookkeeping needs
/// (sequence numbers, keys for the primary-key index, metadata for the filter index).
const RESIDENT: [Section; 4] = [
    Section::Seqs,
    Section::Keys,
    Section::Metadata,
    Section::Tombstones,
];

/// An owned buffer aligned for zero-copy casts of the sections.
struct Aligned(Vec<u64>, usize);

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.0)[..self.1]
    }
}

/// Zeroed words holding `len` bytes from an offset aligned for the sections, and that
/// offset in bytes (a `Vec<u64>` is 8-aligned; sections need 64).
fn aligned_words(len: usize) -> (Vec<u64>, usize) {
    let words = vec![0u64; len.div_ceil(8) + format::ALIGN / 8];
    let skip = (words.as_ptr() as usize).next_multiple_of(format::ALIGN) - words.as_ptr() as usize;
    (words, skip)
}

fn aligned(blob: Blob) -> Blob {
    if (blob.as_ptr() as usize).is_multiple_of(format::ALIGN) {
        return blob;
    }
    let (mut words, skip) = aligned_words(blob.len());
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    bytes[skip..skip + blob.len()].copy_from_slice(&blob);
    let len = blob.len();
    Blob::Owned(Bytes::from_owner(Aligned(words, skip + len)).slice(skip..skip + len))
}

impl Segment {
    /// Open the segment `meta` describes (as the manifest records it); `deleted` carries
    /// the marks over when a memtable becomes this segment. A format-2 file on a storage
    /// that reads in blocks gets the lazy backing, anything else is mapped.
    pub(crate) fn open(
        storage: &Arc<dyn Storage>,
        meta: &SegmentMeta,
        container: u32,
        spec: ShardSpec,
        deleted: Option<Arc<Deletions>>,
        reads: LazyReads,
    ) -> Result<Segment> {
        if storage.reads_in_blocks()
            && let Some(lazy) =
                LazyIndex::open(storage.clone(), meta.id, meta.bytes, meta.tail_bytes, spec)?
        {
            return Self::open_lazy(lazy, container, spec, deleted, reads);
        }
        Self::open_mapped(storage.as_ref(), meta.id, container, spec, deleted)
    }

    /// Open `segments/<id>` whole (mapped or fetched), every checksum verified.
    pub(crate) fn open_mapped(
        storage: &dyn Storage,
        id: u64,
        container: u32,
        spec: ShardSpec,
        deleted: Option<Arc<Deletions>>,
    ) -> Result<Segment> {
        let path = paths::segment(id);
        let name = format!("{}/{path}", storage.location());
        let blob = aligned(storage.map(&path)?);
        Self::from_blob(name, blob, id, container, spec, deleted)
    }

    /// The lazy backing: the resident sections read (in one round) and packed, the rest
    /// left in the store; the prefetch policy's warming starts in the background.
    fn open_lazy(
        lazy: LazyIndex,
        container: u32,
        spec: ShardSpec,
        deleted: Option<Arc<Deletions>>,
        reads: LazyReads,
    ) -> Result<Segment> {
        // A metadata column without values is offsets that are all zero: not read (at a
        // million rows, 8 MB less to read and keep); its range stays empty.
        let offsets_only = (lazy.header.rows as usize + 1) * 8;
        let kinds: Vec<Section> = RESIDENT
            .into_iter()
            .filter(|k| *k != Section::Metadata || lazy.section_len(*k) != offsets_only)
            .filter(|k| *k != Section::Seqs || !reads.skip_seqs)
            .collect();
        let resident = lazy.read_sections(&kinds)?;
        let mut sections: [Range<usize>; 9] = Default::default();
        let mut len = 0usize;
        for (kind, bytes) in kinds.iter().zip(&resident) {
            let at = len.next_multiple_of(format::ALIGN);
            sections[*kind as usize - 1] = at..at + bytes.len();
            len = at + bytes.len();
        }
        // Copied once, straight into aligned memory (a byte vector would need a second
        // copy to align it: at a million rows that is 25 MB more to write).
        let (mut words, skip) = aligned_words(len);
        let packed: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        for (kind, bytes) in kinds.iter().zip(&resident) {
            let r = &sections[*kind as usize - 1];
            packed[skip + r.start..skip + r.end].copy_from_slice(bytes);
        }
        drop(resident);
        let blob =
            Blob::Owned(Bytes::from_owner(Aligned(words, skip + len)).slice(skip..skip + len));
        let header = lazy.header;
        let name = lazy.name().to_string();
        let id = lazy.id();
        let file_len = lazy.file_len();
        let rows = u32::try_from(header.rows)
            .map_err(|_| Error::corrupt(&name, "row count out of range"))?;
        let lazy = Arc::new(lazy);
        if reads.prefetch != Prefetch::None {
            lazy.warm_in_background(reads.prefetch);
        }
        let index = SegIndex::Lazy(lazy, reads.read_ahead);
        Self::assemble(
            name,
            blob,
            sections,
            index,
            (id, container, rows, header.max_seq, file_len),
            spec,
            deleted,
        )
    }

    fn from_blob(
        name: String,
        blob: Blob,
        id: u64,
        container: u32,
        spec: ShardSpec,
        deleted: Option<Arc<Deletions>>,
    ) -> Result<Segment> {
        let header = format::decode_header(&name, &blob)?;
        if header.dim as usize != spec.dim || header.metric != spec.metric {
            return Err(Error::corrupt(
                &name,
                format!(
                    "segment is {}-d {}, the shard is {}-d {}",
                    header.dim, header.metric, spec.dim, spec.metric
                ),
            ));
        }
        let rows = u32::try_from(header.rows)
            .map_err(|_| Error::corrupt(&name, "row count out of range"))?;
        let (sections, index) = if header.version == format::FORMAT_V2 {
            open_v2(&name, &blob, &spec, rows)?
        } else {
            let sections = format::decode_table(&name, &blob)?;
            let sec = |s: Section| sections[s as usize - 1].clone();
            let index = FrozenIndex::open(
                &blob[sec(Section::Graph)],
                &blob[sec(Section::Codes)],
                spec.metric,
                spec.dim,
                rows,
            )
            .map_err(|e| Error::corrupt(&name, format!("index: {e}")))?;
            (sections, SegIndex::Graph(index))
        };
        let r = rows as usize;
        let sec = |s: Section| sections[s as usize - 1].clone();
        if sec(Section::Vectors).len() != r * spec.dim * 4 {
            return Err(Error::corrupt(&name, "vector section has the wrong size"));
        }
        check_offsets(&name, &blob, sec(Section::Payload), r, "payload")?;
        let file_len = blob.len() as u64;
        Self::assemble(
            name,
            blob,
            sections,
            index,
            (id, container, rows, header.max_seq, file_len),
            spec,
            deleted,
        )
    }

    /// The checks and indexes both backings share: sequence numbers, keys, metadata
    /// offsets, tombstones, the filter index.
    fn assemble(
        name: String,
        blob: Blob,
        sections: [Range<usize>; 9],
        index: SegIndex,
        (id, container, rows, max_seq, file_len): (u64, u32, u32, u64, u64),
        spec: ShardSpec,
        deleted: Option<Arc<Deletions>>,
    ) -> Result<Segment> {
        let r = rows as usize;
        let sec = |s: Section| sections[s as usize - 1].clone();
        // Empty in a lazy segment that left them in the store.
        let seqs_later = matches!(index, SegIndex::Lazy(..)) && sec(Section::Seqs).is_empty();
        if sec(Section::Seqs).len() != r * 8 && !seqs_later {
            return Err(Error::corrupt(&name, "sequence section has the wrong size"));
        }
        let keys = key_layout(&name, &blob, sec(Section::Keys), r)?;
        // An empty range: a lazy segment's metadata column without values, not read.
        let meta = sec(Section::Metadata);
        if !meta.is_empty() {
            check_offsets(&name, &blob, meta.clone(), r, "metadata")?;
        }
        // Values beyond the offsets: otherwise every row's metadata is empty.
        let has_meta = meta.len() > (r + 1) * 8;
        let tombstones: Vec<(Key, u64)> = postcard::from_bytes(&blob[sec(Section::Tombstones)])
            .map_err(|e| Error::corrupt(&name, format!("tombstones: {e}")))?;
        let deleted = match deleted {
            Some(d) => d,
            None => Arc::new(Deletions::new(r)),
        };
        let mut seg = Segment {
            id,
            container,
            name,
            blob,
            spec,
            rows,
            file_len,
            max_seq,
            sections,
            keys,
            meta: MetaIndex::default(),
            index,
            deleted,
            tombstones,
            late_seqs: std::sync::OnceLock::new(),
        };
        let mut metas = Vec::new();
        for row in (0..rows).filter(|_| has_meta) {
            let m = seg.metadata(row)?;
            if !m.is_empty() {
                metas.push((row, m));
            }
        }
        seg.meta = MetaIndex::build(rows, metas.into_iter());
        Ok(seg)
    }

    /// Whether blocks are read on demand (the lazy backing).
    pub(crate) fn is_lazy(&self) -> bool {
        matches!(self.index, SegIndex::Lazy(..))
    }

    /// This segment with the whole file in memory (a merge reads every row): itself
    /// when mapped; the lazy backing downloads the file (through the disk cache when
    /// there is one) and shares this segment's deletion marks.
    pub(crate) fn whole(self: &Arc<Segment>) -> Result<Arc<Segment>> {
        let SegIndex::Lazy(lazy, _) = &self.index else {
            return Ok(self.clone());
        };
        let seg = Segment::open_mapped(
            lazy.storage().as_ref(),
            self.id,
            self.container,
            self.spec,
            Some(self.deleted.clone()),
        )?;
        Ok(Arc::new(seg))
    }

    fn section(&self, s: Section) -> &[u8] {
        &self.blob[self.sections[s as usize - 1].clone()]
    }

    pub(crate) fn rows(&self) -> u32 {
        self.rows
    }

    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq
    }

    pub(crate) fn file_bytes(&self) -> u64 {
        self.file_len
    }

    pub(crate) fn tombstones(&self) -> &[(Key, u64)] {
        &self.tombstones
    }

    /// The vector of `row` (read from the store by the lazy backing).
    pub(crate) fn vector(&self, row: u32) -> Result<Cow<'_, [f32]>> {
        if let SegIndex::Lazy(lazy, _) = &self.index {
            return lazy.vectors(&[row]).map(Cow::Owned);
        }
        let d = self.spec.dim;
        Ok(Cow::Borrowed(
            &self.all_vectors()[row as usize * d..(row as usize + 1) * d],
        ))
    }

    /// The vectors of `rows`, for an exact scan of them: borrowed when mapped, read in
    /// one round by the lazy backing.
    pub(crate) fn vectors_of(&self, rows: &[u32]) -> Result<RowVectors<'_>> {
        match &self.index {
            SegIndex::Lazy(lazy, _) => {
                let data = lazy.vectors(rows)?;
                let at = rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
                Ok(RowVectors::Read {
                    data,
                    at,
                    dim: self.spec.dim,
                })
            }
            _ => Ok(RowVectors::Mapped(self.vectors())),
        }
    }

    /// Every vector, contiguous (empty for the lazy backing: use [`Segment::vector`]).
    pub(crate) fn all_vectors(&self) -> &[f32] {
        // Aligned by construction (64-byte aligned sections in an aligned blob).
        bytemuck::try_cast_slice(self.section(Section::Vectors)).unwrap_or_default()
    }

    pub(crate) fn vectors(&self) -> SliceVectors<'_> {
        SliceVectors {
            data: self.all_vectors(),
            dim: self.spec.dim,
        }
    }

    /// The sequence number of `row`. A lazy reader's segment reads them only through
    /// [`Segment::load_seqs`], which every caller that needs them runs first (searches
    /// need them only for writes after the snapshot, and no segment has any).
    pub(crate) fn seq(&self, row: u32) -> u64 {
        let seqs = match self.late_seqs.get() {
            Some(b) => &b[..],
            None => self.section(Section::Seqs),
        };
        u64_at(seqs, row as usize * 8)
    }

    /// Whether [`Segment::seq`] can answer without [`Segment::load_seqs`].
    pub(crate) fn has_seqs(&self) -> bool {
        self.rows == 0
            || !self.sections[Section::Seqs as usize - 1].is_empty()
            || self.late_seqs.get().is_some()
    }

    /// Read the sequence numbers a lazy reader's segment left in the store (one round,
    /// every block checked); nothing when it holds them.
    pub(crate) fn load_seqs(&self) -> Result<()> {
        if self.has_seqs() {
            return Ok(());
        }
        let SegIndex::Lazy(lazy, _) = &self.index else {
            return Err(Error::corrupt(&self.name, "sequence numbers missing"));
        };
        let got = lazy.read_sections(&[Section::Seqs])?;
        let seqs = got.into_iter().next().unwrap_or_default();
        if seqs.len() != self.rows as usize * 8 {
            return Err(Error::corrupt(
                &self.name,
                "sequence section has the wrong size",
            ));
        }
        let _ = self.late_seqs.set(seqs);
        Ok(())
    }

    pub(crate) fn key(&self, row: u32) -> Key {
        let b = &self.blob;
        let tag = b[self.keys.tags.start + row as usize];
        let int = u64_at(b, self.keys.ints.start + row as usize * 8);
        if tag == 0 {
            return Key::Int(int);
        }
        let off = |i: u64| u64_at(b, self.keys.offsets.start + i as usize * 8) as usize;
        let s = &b[self.keys.strings.start + off(int)..self.keys.strings.start + off(int + 1)];
        Key::Str(String::from_utf8_lossy(s).into_owned())
    }

    fn column(&self, s: Section, row: u32) -> &[u8] {
        let data = self.section(s);
        let n = self.rows as usize + 1;
        let (start, end) = (
            u64_at(data, row as usize * 8) as usize,
            u64_at(data, row as usize * 8 + 8) as usize,
        );
        &data[n * 8 + start..n * 8 + end]
    }

    pub(crate) fn metadata(&self, row: u32) -> Result<Metadata> {
        if self.sections[Section::Metadata as usize - 1].is_empty() {
            return Ok(Metadata::new());
        }
        let b = self.column(Section::Metadata, row);
        if b.is_empty() {
            return Ok(Metadata::new());
        }
        postcard::from_bytes(b)
            .map_err(|e| Error::corrupt(&self.name, format!("metadata of row {row}: {e}")))
    }

    /// The payload of `row` (read from the store by the lazy backing: its two offsets,
    /// then its bytes).
    pub(crate) fn payload(&self, row: u32) -> Result<Cow<'_, [u8]>> {
        let SegIndex::Lazy(lazy, _) = &self.index else {
            return Ok(Cow::Borrowed(self.column(Section::Payload, row)));
        };
        let n = self.rows as usize + 1;
        let bad = || Error::corrupt(&self.name, format!("payload offsets of row {row}"));
        if row >= self.rows {
            return Err(bad());
        }
        let at = lazy.read_in(Section::Payload, row as usize * 8..row as usize * 8 + 16)?;
        let (start, end) = (u64_at(&at, 0) as usize, u64_at(&at, 8) as usize);
        let len = lazy.section_len(Section::Payload);
        if start > end || n * 8 + end > len {
            return Err(bad());
        }
        let bytes = lazy.read_in(Section::Payload, n * 8 + start..n * 8 + end)?;
        Ok(Cow::Owned(bytes.to_vec()))
    }

    /// Whether `row` is present at snapshot `snap`.
    #[inline]
    pub(crate) fn visible(&self, row: u32, snap: u64) -> bool {
        self.deleted.alive_at(row, snap) && (self.max_seq <= snap || self.seq(row) <= snap)
    }

    /// Rows matching `filter` (all rows when `None`).
    pub(crate) fn matching(&self, filter: Option<&Filter>) -> RoaringBitmap {
        match filter {
            Some(f) => self.meta.eval(f),
            None => {
                let mut b = RoaringBitmap::new();
                b.insert_range(0..self.rows);
                b
            }
        }
    }

    /// The index of rows `0..rows` of `vectors` built by extending this segment's graph
    /// (see [`crate::index::extend`]); an error says why it cannot (build from scratch).
    pub(crate) fn extend_index(
        &self,
        params: IndexParams,
        kept: &[u32],
        rows: u32,
        vectors: &dyn Vectors,
    ) -> std::result::Result<IndexBytes, String> {
        let (metric, dim) = (self.spec.metric, self.spec.dim);
        match &self.index {
            SegIndex::Graph(index) => crate::index::extend(
                params,
                metric,
                dim,
                index,
                self.section(Section::Graph),
                kept,
                rows,
                vectors,
            ),
            SegIndex::Lazy(..) => Err("a lazy segment: merge its whole copy".to_string()),
            SegIndex::Hops(index) => {
                let graph = index.graph_section(self.section(Section::Hops))?;
                crate::index::extend_graph(
                    params,
                    metric,
                    dim,
                    &graph,
                    index.rows(),
                    kept,
                    rows,
                    vectors,
                )
            }
        }
    }

    /// The file format version (1 or 2).
    #[cfg(test)]
    pub(crate) fn format_version(&self) -> u32 {
        match self.index {
            SegIndex::Graph(_) => format::FORMAT_VERSION,
            SegIndex::Hops(_) | SegIndex::Lazy(..) => format::FORMAT_V2,
        }
    }

    /// Approximate search through the segment's index; with the lazy backing a failed
    /// or damaged read makes it an error (never a partial answer).
    pub(crate) fn ann(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> Result<Vec<Neighbor>> {
        Ok(match &self.index {
            SegIndex::Lazy(lazy, ahead) => {
                return lazy.search(*ahead, query, k, ef, accept, selectivity, within);
            }
            SegIndex::Graph(index) => index.search_within(
                self.section(Section::Graph),
                self.section(Section::Codes),
                &self.vectors(),
                query,
                k,
                ef,
                accept,
                selectivity,
                within,
            ),
            SegIndex::Hops(index) => index.search_within(
                self.section(Section::Hops),
                &self.vectors(),
                query,
                k,
                ef,
                accept,
                selectivity,
                within,
            ),
        })
    }
}

/// Vectors of some rows of a segment for an exact scan ([`Segment::vectors_of`]).
pub(crate) enum RowVectors<'a> {
    Mapped(SliceVectors<'a>),
    Read {
        data: Vec<f32>,
        at: std::collections::HashMap<u32, usize>,
        dim: usize,
    },
}

impl Vectors for RowVectors<'_> {
    fn get(&self, row: u32) -> &[f32] {
        match self {
            RowVectors::Mapped(v) => v.get(row),
            RowVectors::Read { data, at, dim } => match at.get(&row) {
                Some(i) => &data[i * dim..(i + 1) * dim],
                None => &[],
            },
        }
    }
}

/// Sections and index of a whole format-2 file, every block checked.
fn open_v2(
    name: &str,
    blob: &[u8],
    spec: &ShardSpec,
    rows: u32,
) -> Result<([Range<usize>; 9], SegIndex)> {
    if blob.len() < format::HEADER_LEN + format2::TAIL_LEN {
        return Err(Error::corrupt(name, "segment too short"));
    }
    let tail = &blob[blob.len() - format2::TAIL_LEN..];
    let dir = format2::decode_tail(name, tail, blob.len())?;
    let (dir, sections) = format2::decode_directory(name, &blob[dir], tail, blob.len())?;
    format2::check_all(name, &dir, blob)?;
    let index = HopIndex::open(dir.hops, spec.metric, spec.dim, rows)
        .map_err(|e| Error::corrupt(name, format!("index: {e}")))?;
    index
        .check_section(&blob[sections[Section::Hops as usize - 1].clone()])
        .map_err(|e| Error::corrupt(name, format!("index: {e}")))?;
    Ok((sections, SegIndex::Hops(index)))
}

fn key_layout(name: &str, b: &[u8], sec: Range<usize>, rows: usize) -> Result<KeyLayout> {
    let bad = || Error::corrupt(name, "key column malformed");
    if sec.len() < 16 || u64_at(b, sec.start) as usize != rows {
        return Err(bad());
    }
    let nstr = u64_at(b, sec.start + 8) as usize;
    let tags = sec.start + 16..sec.start + 16 + rows;
    let ints_start = tags.end.next_multiple_of(8);
    let ints = ints_start..ints_start + rows * 8;
    let offsets = ints.end..ints.end + (nstr + 1) * 8;
    if offsets.end > sec.end {
        return Err(bad());
    }
    let strings = offsets.end..sec.end;
    let off = |i: usize| u64_at(b, offsets.start + i * 8) as usize;
    for i in 0..nstr {
        if off(i) > off(i + 1) || off(i + 1) > strings.len() {
            return Err(bad());
        }
        std::str::from_utf8(&b[strings.start + off(i)..strings.start + off(i + 1)])
            .map_err(|_| bad())?;
    }
    for row in 0..rows {
        let tag = b[tags.start + row];
        if tag > 1 || (tag == 1 && u64_at(b, ints.start + row * 8) as usize >= nstr) {
            return Err(bad());
        }
    }
    Ok(KeyLayout {
        tags,
        ints,
        offsets,
        strings,
    })
}

fn check_offsets(name: &str, b: &[u8], sec: Range<usize>, rows: usize, what: &str) -> Result<()> {
    let n = rows + 1;
    if sec.len() < n * 8 {
        return Err(Error::corrupt(name, format!("{what} column too short")));
    }
    let data_len = sec.len() - n * 8;
    let mut prev = 0;
    for i in 0..n {
        let o = u64_at(b, sec.start + i * 8) as usize;
        if o < prev || o > data_len || (i == 0 && o != 0) {
            return Err(Error::corrupt(name, format!("{what} offsets malformed")));
        }
        prev = o;
    }
    if prev != data_len {
        return Err(Error::corrupt(
            name,
            format!("{what} column length mismatch"),
        ));
    }
    Ok(())
}
