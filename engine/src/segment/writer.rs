//! Builds a segment file in memory from rows, tombstones and index sections.

use super::format::{self, ALIGN, ENTRY_LEN, Header, SECTIONS, TAIL_MAGIC};
use super::format2;
use crate::index::{IndexBytes, encode_hops};
use crate::options::SegmentFormat;
use crate::types::{Key, Metadata, Metric};

/// Accumulates rows in order; [`SegmentWriter::finish`] lays out the file.
pub(crate) struct SegmentWriter {
    dim: usize,
    metric: Metric,
    rows: u64,
    max_seq: u64,
    vectors: Vec<u8>,
    seqs: Vec<u8>,
    key_tags: Vec<u8>,
    key_ints: Vec<u8>,
    strings: Vec<u8>,
    string_offsets: Vec<u64>,
    meta_offsets: Vec<u64>,
    meta: Vec<u8>,
    payload_offsets: Vec<u64>,
    payload: Vec<u8>,
}

impl SegmentWriter {
    pub(crate) fn new(dim: usize, metric: Metric, rows_hint: usize) -> Self {
        SegmentWriter {
            dim,
            metric,
            rows: 0,
            max_seq: 0,
            vectors: Vec::with_capacity(rows_hint * dim * 4),
            seqs: Vec::with_capacity(rows_hint * 8),
            key_tags: Vec::with_capacity(rows_hint),
            key_ints: Vec::with_capacity(rows_hint * 8),
            strings: Vec::new(),
            string_offsets: vec![0],
            meta_offsets: vec![0],
            meta: Vec::new(),
            payload_offsets: vec![0],
            payload: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        vector: &[f32],
        seq: u64,
        key: &Key,
        metadata: &Metadata,
        payload: &[u8],
    ) {
        debug_assert_eq!(vector.len(), self.dim);
        self.vectors.extend_from_slice(bytemuck::cast_slice(vector));
        self.seqs.extend_from_slice(&seq.to_le_bytes());
        self.max_seq = self.max_seq.max(seq);
        match key {
            Key::Int(v) => {
                self.key_tags.push(0);
                self.key_ints.extend_from_slice(&v.to_le_bytes());
            }
            Key::Str(s) => {
                self.key_tags.push(1);
                let idx = (self.string_offsets.len() - 1) as u64;
                self.key_ints.extend_from_slice(&idx.to_le_bytes());
                self.strings.extend_from_slice(s.as_bytes());
                self.string_offsets.push(self.strings.len() as u64);
            }
        }
        if !metadata.is_empty() {
            self.meta
                .extend_from_slice(&postcard::to_stdvec(metadata).unwrap_or_default());
        }
        self.meta_offsets.push(self.meta.len() as u64);
        self.payload.extend_from_slice(payload);
        self.payload_offsets.push(self.payload.len() as u64);
        self.rows += 1;
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// The finished file in `format`. Errors only if `index` is not a valid index of the
    /// rows pushed (format 2 re-lays it).
    pub(crate) fn finish(
        self,
        format: SegmentFormat,
        max_seq: u64,
        tombstones: &[(Key, u64)],
        index: IndexBytes,
    ) -> Result<Vec<u8>, String> {
        let version = match format {
            // Resolved at open; format 1 if it was not.
            SegmentFormat::V1 | SegmentFormat::Auto => format::FORMAT_VERSION,
            SegmentFormat::V2 => format::FORMAT_V2,
        };
        let header = Header {
            version,
            dim: self.dim as u32,
            metric: self.metric,
            rows: self.rows,
            max_seq: max_seq.max(self.max_seq),
        };
        let header = format::encode_header(&header, tombstones.len() as u64);
        let (dim, metric, rows) = (self.dim, self.metric, self.rows as u32);
        let [vectors, seqs, keys, meta, payload, tomb] = self.row_sections(tombstones);
        match format {
            SegmentFormat::V1 | SegmentFormat::Auto => Ok(finish_v1(
                &header,
                [
                    vectors,
                    seqs,
                    keys,
                    meta,
                    payload,
                    tomb,
                    index.graph,
                    index.codes,
                ],
            )),
            SegmentFormat::V2 => {
                let (hops, hop_bytes) = encode_hops(&index, metric, dim, rows)?;
                let block = hops.block_len as usize;
                Ok(format2::write(
                    &header,
                    &[vectors, seqs, keys, meta, payload, tomb, hop_bytes],
                    hops,
                    block,
                ))
            }
        }
    }

    /// Vectors, seqs, keys, metadata, payload and tombstones, encoded as both formats
    /// store them.
    fn row_sections(self, tombstones: &[(Key, u64)]) -> [Vec<u8>; 6] {
        let keys = {
            // [rows u64][strings u64][tags, padded to 8][ints u64×rows][offsets u64×(n+1)][bytes]
            let mut k = Vec::new();
            k.extend_from_slice(&self.rows.to_le_bytes());
            k.extend_from_slice(&((self.string_offsets.len() - 1) as u64).to_le_bytes());
            k.extend_from_slice(&self.key_tags);
            k.resize(k.len().next_multiple_of(8), 0);
            k.extend_from_slice(&self.key_ints);
            k.extend_from_slice(bytemuck::cast_slice(&self.string_offsets));
            k.extend_from_slice(&self.strings);
            k
        };
        let column = |offsets: &[u64], data: &[u8]| {
            let mut c = Vec::with_capacity(offsets.len() * 8 + data.len());
            c.extend_from_slice(bytemuck::cast_slice(offsets));
            c.extend_from_slice(data);
            c
        };
        let tomb = postcard::to_stdvec(tombstones).unwrap_or_default();
        [
            self.vectors,
            self.seqs,
            keys,
            column(&self.meta_offsets, &self.meta),
            column(&self.payload_offsets, &self.payload),
            tomb,
        ]
    }
}

/// Lay out a format-1 file.
fn finish_v1(header: &[u8], sections: [Vec<u8>; 8]) -> Vec<u8> {
    let total: usize = sections.iter().map(|s| s.len() + ALIGN).sum::<usize>() + 1024;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(header);
    let mut table = Vec::with_capacity(SECTIONS.len() * ENTRY_LEN);
    for (kind, data) in SECTIONS.iter().zip(sections.iter()) {
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        let off = out.len() as u64;
        out.extend_from_slice(data);
        table.extend_from_slice(&(*kind as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&off.to_le_bytes());
        table.extend_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
    }
    out.extend_from_slice(&table);
    out.extend_from_slice(&(SECTIONS.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&table).to_le_bytes());
    out.extend_from_slice(TAIL_MAGIC);
    out
}
