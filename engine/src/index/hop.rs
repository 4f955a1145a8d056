//! The index of a format-2 segment: layer-0 links stored next to the SQ8 codes of the
//! same rows in "hop blocks", so that expanding one node of the walk touches one block;
//! the upper layers, the entry point and the quantizer are small and held in memory (a
//! segment keeps them in its directory).
//!
//! ```text
//! hop section   blocks of `block_len` bytes (a multiple of 4 KiB), block b holding rows
//!               [b·rpb, (b+1)·rpb), rpb a power of two; each row a record of
//!               `record` bytes: links0 [u32; m0] (unused slots u32::MAX), code [i8; dim],
//!               zero padding to a multiple of 4
//! ```
//!
//! [`HopIndex::open`] validates the in-memory part; [`HopIndex::check_block`] the rows of
//! one block, so a mapped segment checks them all at open and a lazy one (`lazy.rs`) when
//! it reads a block.

use serde::{Deserialize, Serialize};

use super::format::{GraphParts, GraphView, NONE, check_links};
use super::frozen::{Within, exact, query_code};
use super::search::{Space, prefetch_slice};
use super::sq8::{CodesView, Kind, code_distance};
use super::{IndexBytes, Neighbor, Vectors};
use crate::types::Metric;

/// Hop blocks are multiples of this (the unit the object store and caches read).
pub const HOP_BLOCK: usize = 4096;

/// The index state a format-2 segment keeps in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HopMeta {
    /// Upper-layer degree.
    pub m: u32,
    /// Layer-0 degree.
    pub m0: u32,
    /// Top layer.
    pub max_level: u32,
    /// Entry row (`u32::MAX` when empty).
    pub entry: u32,
    /// SQ8 kind code.
    pub kind: u32,
    /// SQ8 per-dimension offsets.
    pub offsets: Vec<f32>,
    /// SQ8 per-dimension scales.
    pub scales: Vec<f32>,
    /// Rows on layer 1 or above, ascending.
    pub upper_rows: Vec<u32>,
    /// Top layer of each of `upper_rows`.
    pub upper_levels: Vec<u8>,
    /// Their lists, `m` slots each: layers 1..=level of each upper row, in order.
    pub upper: Vec<u32>,
    /// Their SQ8 codes, `dim` each (also in their hop blocks): the descent through the
    /// upper layers reads no block. Encoded as a byte string, which in postcard is the
    /// same bytes as the sequence of `i8`s it was written as, but decodes in one copy.
    #[serde(with = "codes_as_bytes")]
    pub upper_codes: Vec<i8>,
    /// Bytes per row record.
    pub record: u32,
    /// Rows per block (a power of two).
    pub rows_per_block: u32,
    /// Bytes per block.
    pub block_len: u32,
}

/// `Vec<i8>` (de)serialised as bytes. Postcard writes a byte string as its length and
/// the bytes, exactly as it writes a sequence of `i8`s, so directories written either way
/// read either way; a human-readable format (JSON) keeps the sequence of numbers.
mod codes_as_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(codes: &[i8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_seq(codes)
        } else {
            s.serialize_bytes(bytemuck::cast_slice(codes))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i8>, D::Error> {
        struct Codes;
        impl<'de> Visitor<'de> for Codes {
            type Value = Vec<i8>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("SQ8 codes (bytes)")
            }

            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<i8>, E> {
                Ok(bytemuck::cast_slice(v).to_vec())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(c) = seq.next_element::<i8>()? {
                    out.push(c);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(Codes)
    }
}

/// Record size, rows per block and block length for rows of `dim` with `m0` links.
fn layout(dim: usize, m0: usize) -> (usize, usize, usize) {
    let record = (m0 * 4 + dim).next_multiple_of(4);
    let rpb = if record >= HOP_BLOCK {
        1
    } else {
        let fit = HOP_BLOCK / record;
        1usize << fit.ilog2()
    };
    (record, rpb, (rpb * record).next_multiple_of(HOP_BLOCK))
}

/// Re-lay the graph and codes sections of an index as hop blocks and directory state.
pub fn encode_hops(
    index: &IndexBytes,
    metric: Metric,
    dim: usize,
    rows: u32,
) -> Result<(HopMeta, Vec<u8>), String> {
    let glayout = GraphView::open(&index.graph, rows)?;
    let g = GraphView::at(&index.graph, &glayout)?;
    let clayout = CodesView::open(&index.codes, metric, dim, rows)?;
    let c = CodesView::at(&index.codes, &clayout)?;
    let (record, rpb, block_len) = layout(dim, g.m0);
    let blocks = (rows as usize).div_ceil(rpb);
    let mut out = vec![0u8; blocks * block_len];
    for row in 0..rows {
        let at = (row as usize / rpb) * block_len + (row as usize % rpb) * record;
        for (i, l) in g.links(row, 0).iter().enumerate() {
            out[at + 4 * i..at + 4 * i + 4].copy_from_slice(&l.to_le_bytes());
        }
        let code: &[u8] = bytemuck::cast_slice(c.code(row));
        out[at + g.m0 * 4..at + g.m0 * 4 + dim].copy_from_slice(code);
    }
    let (mut upper_rows, mut upper_levels, mut upper) = (Vec::new(), Vec::new(), Vec::new());
    let mut upper_codes = Vec::new();
    for row in 0..rows {
        let level = g.levels[row as usize];
        if level > 0 {
            upper_rows.push(row);
            upper_levels.push(level);
            upper_codes.extend_from_slice(c.code(row));
            for l in 1..=level as usize {
                upper.extend_from_slice(g.upper_list(row, l));
            }
        }
    }
    let (offsets, scales) = c.params();
    let meta = HopMeta {
        m: glayout.m,
        m0: glayout.m0,
        max_level: glayout.max_level,
        entry: glayout.entry,
        kind: c.kind.code(),
        offsets: offsets.to_vec(),
        scales: scales.to_vec(),
        upper_rows,
        upper_levels,
        upper,
        upper_codes,
        record: record as u32,
        rows_per_block: rpb as u32,
        block_len: block_len as u32,
    };
    Ok((meta, out))
}

/// A format-2 segment's index, validated at open; searched over its hop section.
#[derive(Debug)]
pub struct HopIndex {
    pub(super) metric: Metric,
    pub(super) dim: usize,
    pub(super) rows: u32,
    pub(super) kind: Kind,
    pub(super) meta: HopMeta,
    /// First list in `meta.upper` of each upper row.
    upper_start: Vec<u32>,
    pub(super) shift: u32,
}

impl HopIndex {
    /// Validate the directory state of a segment of `rows` rows of `dim`. The error says
    /// what is wrong; the caller names the file.
    pub fn open(meta: HopMeta, metric: Metric, dim: usize, rows: u32) -> Result<Self, String> {
        let kind = Kind::for_metric(metric);
        if meta.kind != kind.code() {
            return Err(format!(
                "hop index: kind {} does not fit {metric:?}",
                meta.kind
            ));
        }
        if meta.offsets.len() != dim || meta.scales.len() != dim {
            return Err("hop index: quantizer of the wrong dimension".to_string());
        }
        if meta.offsets.iter().any(|o| !o.is_finite())
            || meta.scales.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err("hop index: non-finite offset or non-positive scale".to_string());
        }
        if meta.m == 0 || meta.m > 512 || meta.m0 < meta.m || meta.m0 > 1024 {
            return Err(format!(
                "hop index: bad degrees m={} m0={}",
                meta.m, meta.m0
            ));
        }
        let (record, rpb, block_len) = layout(dim, meta.m0 as usize);
        if (
            meta.record as usize,
            meta.rows_per_block as usize,
            meta.block_len as usize,
        ) != (record, rpb, block_len)
        {
            return Err("hop index: block layout does not match its degrees".to_string());
        }
        let upper_start = check_upper(&meta, rows)?;
        Ok(HopIndex {
            metric,
            dim,
            rows,
            kind,
            shift: rpb.ilog2(),
            meta,
            upper_start,
        })
    }

    /// Rows in the segment.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Rows whose top layer is `level` or above, ascending.
    pub fn rows_at_or_above(&self, level: u8) -> Vec<u32> {
        let m = &self.meta;
        m.upper_rows
            .iter()
            .zip(&m.upper_levels)
            .filter(|(_, l)| **l >= level)
            .map(|(r, _)| *r)
            .collect()
    }

    /// Bytes per hop block.
    pub fn block_len(&self) -> usize {
        self.meta.block_len as usize
    }

    /// Blocks in the hop section.
    pub fn blocks(&self) -> usize {
        (self.rows as usize).div_ceil(self.meta.rows_per_block as usize)
    }

    /// The length the hop section must have.
    pub fn section_len(&self) -> usize {
        self.blocks() * self.block_len()
    }

    /// Check the links of the rows in block `b` (`bytes`, the block).
    pub fn check_block(&self, b: usize, bytes: &[u8]) -> Result<(), String> {
        if bytes.len() != self.block_len() {
            return Err(format!("hop block {b} is {} bytes", bytes.len()));
        }
        let rpb = self.meta.rows_per_block as usize;
        let first = b * rpb;
        let m0 = self.meta.m0 as usize;
        let mut slots = vec![0u32; m0];
        for row in first..(first + rpb).min(self.rows as usize) {
            let at = (row - first) * self.meta.record as usize;
            for (i, s) in slots.iter_mut().enumerate() {
                *s = u32::from_le_bytes(
                    bytes[at + 4 * i..at + 4 * i + 4]
                        .try_into()
                        .unwrap_or([0xff; 4]),
                );
            }
            check_links(&slots, self.rows, row)?;
        }
        Ok(())
    }

    /// Check every block of a hop section.
    pub fn check_section(&self, hops: &[u8]) -> Result<(), String> {
        if hops.len() != self.section_len() {
            return Err(format!(
                "hop section is {} bytes, expected {}",
                hops.len(),
                self.section_len()
            ));
        }
        hops.chunks_exact(self.block_len())
            .enumerate()
            .try_for_each(|(b, block)| self.check_block(b, block))
    }

    /// [`super::FrozenIndex::search_within`] over the hop section checked with
    /// [`HopIndex::check_section`].
    #[allow(clippy::too_many_arguments)]
    pub fn search_within(
        &self,
        hops: &[u8],
        vectors: &dyn Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(u32) -> bool,
        selectivity: f32,
        within: Within,
    ) -> Vec<Neighbor> {
        if k == 0 || self.rows == 0 {
            return Vec::new();
        }
        let words: &[u32] = match bytemuck::try_cast_slice(hops) {
            Ok(w) if hops.len() == self.section_len() => w,
            _ => {
                tracing::error!("hop section differs from the opened one; scanning");
                return exact(self.metric, self.rows, vectors, query, k, accept);
            }
        };
        let shape = self.shape();
        let quant = CodesView::quantizer(self.kind, &self.meta.offsets, &self.meta.scales);
        let make = |query: &[f32]| {
            let space = HopSpace {
                index: self,
                words,
                bytes: bytemuck::cast_slice(hops),
                query: query_code(self.metric, &quant, query),
                prefetch_lines: self.dim.div_ceil(64),
                shift: self.shift,
                mask: (1u32 << self.shift) - 1,
                block_len: self.meta.block_len as usize,
                record: self.meta.record as usize,
                m0: self.meta.m0 as usize,
                dim: self.dim,
            };
            (space, quant.bound(self.metric, within.dist))
        };
        shape.search(make, vectors, query, k, ef, accept, selectivity, within)
    }

    /// Byte offset of `row`'s record in the hop section.
    #[inline]
    fn at(&self, row: u32) -> usize {
        let mask = (1u32 << self.shift) - 1;
        (row >> self.shift) as usize * self.meta.block_len as usize
            + (row & mask) as usize * self.meta.record as usize
    }

    /// The slots of `row` on upper `level`, empty when the row is not on it.
    pub(super) fn upper_links(&self, row: u32, level: usize) -> &[u32] {
        let Ok(i) = self.meta.upper_rows.binary_search(&row) else {
            return &[];
        };
        if level > self.meta.upper_levels[i] as usize {
            return &[];
        }
        let m = self.meta.m as usize;
        let start = (self.upper_start[i] as usize + level - 1) * m;
        &self.meta.upper[start..start + m]
    }

    /// The graph as a format-1 graph section (a merge extends it).
    pub fn graph_section(&self, hops: &[u8]) -> Result<Vec<u8>, String> {
        if hops.len() != self.section_len() {
            return Err("hop section differs from the opened one".to_string());
        }
        let mut levels = vec![0u8; self.rows as usize];
        for (&r, &l) in self.meta.upper_rows.iter().zip(&self.meta.upper_levels) {
            levels[r as usize] = l;
        }
        let mut parts = GraphParts::new(self.meta.m, self.meta.m0, levels);
        let m0 = self.meta.m0 as usize;
        let mut links = vec![0u32; m0];
        for row in 0..self.rows {
            let at = self.at(row);
            for (i, s) in links.iter_mut().enumerate() {
                *s = u32::from_le_bytes(
                    hops[at + 4 * i..at + 4 * i + 4]
                        .try_into()
                        .unwrap_or([0xff; 4]),
                );
            }
            let used = links.iter().position(|&s| s == NONE).unwrap_or(m0);
            parts.set_links(row, 0, &links[..used]);
        }
        for (&r, &l) in self.meta.upper_rows.iter().zip(&self.meta.upper_levels) {
            for level in 1..=l as usize {
                let list = self.upper_links(r, level);
                let used = list.iter().position(|&s| s == NONE).unwrap_or(list.len());
                parts.set_links(r, level, &list[..used]);
            }
        }
        parts.set_entry((self.meta.entry != NONE).then_some(self.meta.entry));
        Ok(parts.encode())
    }
}

/// Check the upper layers and entry point; the first list of each upper row.
fn check_upper(meta: &HopMeta, rows: u32) -> Result<Vec<u32>, String> {
    let ur = &meta.upper_rows;
    if ur.len() != meta.upper_levels.len() {
        return Err("hop index: upper rows and levels differ in length".to_string());
    }
    if ur.windows(2).any(|w| w[0] >= w[1]) || ur.last().is_some_and(|&r| r >= rows) {
        return Err("hop index: upper rows not ascending or past the segment".to_string());
    }
    if meta.upper_codes.len() != ur.len() * meta.offsets.len() {
        return Err("hop index: upper codes do not match the upper rows".to_string());
    }
    let mut starts = Vec::with_capacity(ur.len());
    let mut lists = 0usize;
    for &l in &meta.upper_levels {
        if l == 0 || u32::from(l) > meta.max_level {
            return Err(format!(
                "hop index: upper row on layer {l} (top {})",
                meta.max_level
            ));
        }
        starts.push(lists as u32);
        lists += l as usize;
    }
    let m = meta.m as usize;
    if lists.checked_mul(m) != Some(meta.upper.len()) {
        return Err("hop index: upper list count mismatch".to_string());
    }
    let level_of = |r: u32| -> u32 {
        ur.binary_search(&r)
            .map(|i| u32::from(meta.upper_levels[i]))
            .unwrap_or(0)
    };
    // Most upper lists are layer 1's, whose links need only "is an upper row": a bit per
    // row answers that without a search (rows / 8 bytes; the searches were a tenth of a
    // large segment's open).
    let mut upper_bits = vec![0u64; (rows as usize).div_ceil(64)];
    for &r in ur {
        upper_bits[r as usize / 64] |= 1 << (r % 64);
    }
    let reaches = |nb: u32, level: usize| match level {
        1 => upper_bits
            .get(nb as usize / 64)
            .is_some_and(|w| w >> (nb % 64) & 1 == 1),
        _ => level_of(nb) as usize >= level,
    };
    if rows == 0 {
        if meta.entry != NONE || !ur.is_empty() {
            return Err("hop index: empty graph with an entry row".to_string());
        }
        return Ok(starts);
    }
    if meta.entry >= rows || level_of(meta.entry) != meta.max_level {
        return Err(format!(
            "hop index: bad entry row {} (top layer {})",
            meta.entry, meta.max_level
        ));
    }
    for (i, (&r, &l)) in ur.iter().zip(&meta.upper_levels).enumerate() {
        for level in 1..=l as usize {
            let start = (starts[i] as usize + level - 1) * m;
            let list = &meta.upper[start..start + m];
            check_links(list, rows, r as usize)?;
            if let Some(bad) = list.iter().find(|&&nb| nb != NONE && !reaches(nb, level)) {
                return Err(format!("row {r}: layer-{level} link to row {bad} below it"));
            }
        }
    }
    Ok(starts)
}

/// A hop section seen from one query; the layout copied out of the index so the hot
/// address computation reads no indirection.
struct HopSpace<'a> {
    index: &'a HopIndex,
    words: &'a [u32],
    bytes: &'a [i8],
    query: Vec<i8>,
    prefetch_lines: usize,
    shift: u32,
    mask: u32,
    block_len: usize,
    record: usize,
    m0: usize,
    dim: usize,
}

impl HopSpace<'_> {
    #[inline]
    fn at(&self, node: u32) -> usize {
        (node >> self.shift) as usize * self.block_len + (node & self.mask) as usize * self.record
    }

    #[inline]
    fn links0(&self, node: u32) -> &[u32] {
        let w = self.at(node) / 4;
        &self.words[w..w + self.m0]
    }

    #[inline]
    fn code(&self, node: u32) -> &[i8] {
        let at = self.at(node) + self.m0 * 4;
        &self.bytes[at..at + self.dim]
    }
}

impl Space for HopSpace<'_> {
    #[inline]
    fn neighbors(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        let slots = if level == 0 {
            self.links0(node)
        } else {
            self.index.upper_links(node, level)
        };
        out.extend(slots.iter().copied().take_while(|&nb| nb != NONE));
    }

    #[inline]
    fn dist(&self, node: u32) -> f32 {
        code_distance(self.index.kind, &self.query, self.code(node))
    }

    #[inline]
    fn prefetch(&self, node: u32) {
        prefetch_slice(self.code(node), self.prefetch_lines);
    }

    #[inline]
    fn prefetch_links(&self, node: u32) {
        prefetch_slice(self.links0(node), 2);
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Before {
        level: u32,
        codes: Vec<i8>,
        links: Vec<u32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct After {
        level: u32,
        #[serde(with = "super::codes_as_bytes")]
        codes: Vec<i8>,
        links: Vec<u32>,
    }

    /// Directories written with the codes as a sequence of `i8`s read the same with the
    /// codes as bytes, and are written again byte for byte; JSON keeps the numbers.
    #[test]
    fn upper_codes_as_bytes_are_the_sequence_they_were_written_as() {
        let codes: Vec<i8> = (0..1000).map(|i| (i * 37 % 256) as u8 as i8).collect();
        let before = Before {
            level: 7,
            codes: codes.clone(),
            links: vec![1, 300, 70_000],
        };
        let written = postcard::to_allocvec(&before).unwrap();
        let after: After = postcard::from_bytes(&written).unwrap();
        assert_eq!(after.codes, codes);
        assert_eq!(after.links, before.links);
        assert_eq!(postcard::to_allocvec(&after).unwrap(), written);

        let json = serde_json::to_string(&after).unwrap();
        assert_eq!(json, serde_json::to_string(&before).unwrap());
        assert_eq!(serde_json::from_str::<After>(&json).unwrap(), after);
    }
}
