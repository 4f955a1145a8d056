//! The segment file layout.
//!
//! ```text
//! header (64 bytes)   magic "VSHDSEG1", format version u32, dim u32, metric u32, 0 u32,
//!                     rows u64, max_seq u64, tombstones u64, zeros…, CRC32C u32 of bytes 0..60
//! sections            each 64-byte aligned: vectors, seqs, keys, metadata, payload,
//!                     tombstones, graph, codes
//! section table       per section: kind u32, 0 u32, offset u64, length u64, CRC32C u32, 0 u32
//! tail (16 bytes)     section count u32, CRC32C of the table u32, magic "VSHDSEGZ"
//! ```
//!
//! Every section carries its own checksum, verified when the segment is opened. Format 2
//! (`format2.rs`) shares the header and the encoding of the row sections.

use crate::error::{Error, Result};
use crate::types::Metric;

pub(crate) const MAGIC: &[u8; 8] = b"VSHDSEG1";
pub(crate) const TAIL_MAGIC: &[u8; 8] = b"VSHDSEGZ";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const MAGIC_V2: &[u8; 8] = b"VSHDSEG2";
pub(crate) const FORMAT_V2: u32 = 2;
pub(crate) const HEADER_LEN: usize = 64;
pub(crate) const TAIL_LEN: usize = 16;
pub(crate) const ENTRY_LEN: usize = 32;
pub(crate) const ALIGN: usize = 64;

/// Section kinds, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Section {
    Vectors = 1,
    Seqs = 2,
    Keys = 3,
    Metadata = 4,
    Payload = 5,
    Tombstones = 6,
    Graph = 7,
    Codes = 8,
    /// Format 2: layer-0 links next to the codes of the same rows.
    Hops = 9,
}

pub(crate) const SECTIONS: [Section; 8] = [
    Section::Vectors,
    Section::Seqs,
    Section::Keys,
    Section::Metadata,
    Section::Payload,
    Section::Tombstones,
    Section::Graph,
    Section::Codes,
];

/// Format-2 sections, in file order.
pub(crate) const SECTIONS_V2: [Section; 7] = [
    Section::Vectors,
    Section::Seqs,
    Section::Keys,
    Section::Metadata,
    Section::Payload,
    Section::Tombstones,
    Section::Hops,
];

pub(crate) fn metric_code(m: Metric) -> u32 {
    match m {
        Metric::L2 => 1,
        Metric::Cosine => 2,
        Metric::Dot => 3,
    }
}

pub(crate) fn metric_from_code(c: u32) -> Option<Metric> {
    match c {
        1 => Some(Metric::L2),
        2 => Some(Metric::Cosine),
        3 => Some(Metric::Dot),
        _ => None,
    }
}

/// Parsed header fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub version: u32,
    pub dim: u32,
    pub metric: Metric,
    pub rows: u64,
    pub max_seq: u64,
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

pub(crate) fn encode_header(h: &Header, tombstones: u64) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    let magic = if h.version == FORMAT_V2 {
        MAGIC_V2
    } else {
        MAGIC
    };
    b[0..8].copy_from_slice(magic);
    b[8..12].copy_from_slice(&h.version.to_le_bytes());
    b[12..16].copy_from_slice(&h.dim.to_le_bytes());
    b[16..20].copy_from_slice(&metric_code(h.metric).to_le_bytes());
    b[24..32].copy_from_slice(&h.rows.to_le_bytes());
    b[32..40].copy_from_slice(&h.max_seq.to_le_bytes());
    b[40..48].copy_from_slice(&tombstones.to_le_bytes());
    let crc = crc32c::crc32c(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    b
}

pub(crate) fn decode_header(path: &str, b: &[u8]) -> Result<Header> {
    if b.len() < HEADER_LEN || (&b[..8] != MAGIC && &b[..8] != MAGIC_V2) {
        return Err(Error::corrupt(
            path,
            "not a vecshard segment (bad magic or too short)",
        ));
    }
    if crc32c::crc32c(&b[..60]) != u32_at(b, 60) {
        return Err(Error::corrupt(path, "segment header checksum mismatch"));
    }
    let version = u32_at(b, 8);
    let want = if &b[..8] == MAGIC {
        FORMAT_VERSION
    } else {
        FORMAT_V2
    };
    if version != want {
        return Err(Error::corrupt(
            path,
            format!("unsupported segment format version {version}"),
        ));
    }
    let metric = metric_from_code(u32_at(b, 16))
        .ok_or_else(|| Error::corrupt(path, "unknown metric code"))?;
    Ok(Header {
        version,
        dim: u32_at(b, 12),
        metric,
        rows: u64_at(b, 24),
        max_seq: u64_at(b, 32),
    })
}

/// Byte ranges of the sections, verified.
pub(crate) fn decode_table(path: &str, b: &[u8]) -> Result<[std::ops::Range<usize>; 9]> {
    let n = b.len();
    if &b[n - 8..] != TAIL_MAGIC {
        return Err(Error::corrupt(
            path,
            "bad segment tail magic (truncated file?)",
        ));
    }
    let count = u32_at(b, n - 16) as usize;
    if count != SECTIONS.len() || n < HEADER_LEN + TAIL_LEN + count * ENTRY_LEN {
        return Err(Error::corrupt(path, "bad segment section count"));
    }
    let table = &b[n - TAIL_LEN - count * ENTRY_LEN..n - TAIL_LEN];
    if crc32c::crc32c(table) != u32_at(b, n - 12) {
        return Err(Error::corrupt(
            path,
            "segment section table checksum mismatch",
        ));
    }
    let table_start = n - TAIL_LEN - count * ENTRY_LEN;
    let mut out: [std::ops::Range<usize>; 9] = Default::default();
    for (i, want) in SECTIONS.iter().enumerate() {
        let e = &table[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
        let (kind, off, len, crc) = (
            u32_at(e, 0),
            u64_at(e, 8) as usize,
            u64_at(e, 16) as usize,
            u32_at(e, 24),
        );
        if kind != *want as u32 {
            return Err(Error::corrupt(
                path,
                format!("unexpected section kind {kind}"),
            ));
        }
        let end = off
            .checked_add(len)
            .filter(|end| *end <= table_start && off >= HEADER_LEN && off % ALIGN == 0);
        let Some(end) = end else {
            return Err(Error::corrupt(
                path,
                format!("section {want:?} out of bounds"),
            ));
        };
        if crc32c::crc32c(&b[off..end]) != crc {
            return Err(Error::corrupt(
                path,
                format!("section {want:?} checksum mismatch"),
            ));
        }
        out[i] = off..end;
    }
    Ok(out)
}
