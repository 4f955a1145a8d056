//! The format-2 segment layout: 4 KiB blocks with a checksum each, and a directory at the
//! tail that is all a reader needs before it reads blocks (design note 015).
//!
//! ```text
//! header (64 bytes)   as format 1 with magic "VSHDSEG2" and version 2
//! sections            each 4096-byte aligned: vectors, seqs, keys, metadata, payload,
//!                     tombstones (encoded as in format 1), hops (see `index::HopIndex`)
//! directory           postcard: per section kind, offset, length, block length and the
//!                     CRC32C of each block; the hop index state (entry point, upper
//!                     layers, quantizer, block layout)
//! tail (32 bytes)     directory offset u64, length u64, CRC32C u32, 0 u32, magic "VSHDSEGZ"
//! ```
//!
//! A block is `block_len` bytes of its section (the last one may be shorter); its checksum
//! is verified when it is read, so damage is a `Corrupt` error naming the file, section
//! and block.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::format::{SECTIONS_V2, Section, TAIL_MAGIC, u32_at, u64_at};
use crate::error::{Error, Result};
use crate::index::HopMeta;

/// Block size of every section but the hops (whose blocks are a multiple of it).
pub(crate) const BLOCK: usize = 4096;
pub(crate) const TAIL_LEN: usize = 32;

/// One section of a format-2 file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SectionEntry {
    pub kind: u32,
    pub offset: u64,
    pub len: u64,
    pub block_len: u32,
    /// CRC32C of each block.
    pub crcs: Vec<u32>,
}

impl SectionEntry {
    /// Byte range of block `b` in the file.
    pub fn block(&self, b: usize) -> Range<usize> {
        let start = self.offset as usize + b * self.block_len as usize;
        let end = (start + self.block_len as usize).min((self.offset + self.len) as usize);
        start..end
    }

    pub fn range(&self) -> Range<usize> {
        self.offset as usize..(self.offset + self.len) as usize
    }
}

/// What a reader needs before it reads any block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Directory {
    pub sections: Vec<SectionEntry>,
    pub hops: HopMeta,
}

/// Lay out a format-2 file: `header`, then the sections (kinds in [`SECTIONS_V2`] order,
/// hops with blocks of `hop_block`), the directory and the tail.
pub(crate) fn write(
    header: &[u8],
    sections: &[Vec<u8>; 7],
    hops: HopMeta,
    hop_block: usize,
) -> Vec<u8> {
    let total: usize = sections.iter().map(|s| s.len() + BLOCK).sum::<usize>() + BLOCK;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(header);
    let mut entries = Vec::with_capacity(sections.len());
    for (kind, data) in SECTIONS_V2.iter().zip(sections) {
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        let block_len = if *kind == Section::Hops {
            hop_block
        } else {
            BLOCK
        };
        entries.push(SectionEntry {
            kind: *kind as u32,
            offset: out.len() as u64,
            len: data.len() as u64,
            block_len: block_len as u32,
            crcs: data.chunks(block_len).map(crc32c::crc32c).collect(),
        });
        out.extend_from_slice(data);
    }
    let dir = postcard::to_stdvec(&Directory {
        sections: entries,
        hops,
    })
    .unwrap_or_default();
    let dir_off = out.len() as u64;
    out.extend_from_slice(&dir);
    out.extend_from_slice(&dir_off.to_le_bytes());
    out.extend_from_slice(&(dir.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&dir).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(TAIL_MAGIC);
    out
}

/// Bytes from the start of the directory to the end of `file`, a whole format-2 file
/// (for the manifest: see `SegmentMeta::tail_bytes`); 0 for any other file.
pub(crate) fn tail_bytes(file: &[u8]) -> u64 {
    let Some(tail) = file.len().checked_sub(TAIL_LEN).map(|at| &file[at..]) else {
        return 0;
    };
    match decode_tail("", tail, file.len()) {
        Ok(dir) => (file.len() - dir.start) as u64,
        Err(_) => 0,
    }
}

/// The directory's byte range, from the last [`TAIL_LEN`] bytes of a file of `file_len`.
pub(crate) fn decode_tail(path: &str, tail: &[u8], file_len: usize) -> Result<Range<usize>> {
    if tail.len() != TAIL_LEN || &tail[TAIL_LEN - 8..] != TAIL_MAGIC {
        return Err(Error::corrupt(
            path,
            "bad segment tail magic (truncated file?)",
        ));
    }
    let (off, len) = (u64_at(tail, 0) as usize, u64_at(tail, 8) as usize);
    match off.checked_add(len) {
        Some(end) if end <= file_len - TAIL_LEN => Ok(off..end),
        _ => Err(Error::corrupt(path, "segment directory out of bounds")),
    }
}

/// Decode and check the directory (`dir`, its bytes; `tail`, the file's tail) of a file
/// of `file_len` bytes: sections in order, in bounds, 4 KiB aligned, with one checksum
/// per block.
pub(crate) fn decode_directory(
    path: &str,
    dir: &[u8],
    tail: &[u8],
    file_len: usize,
) -> Result<(Directory, [Range<usize>; 9])> {
    if crc32c::crc32c(dir) != u32_at(tail, 16) {
        return Err(Error::corrupt(path, "segment directory checksum mismatch"));
    }
    let d: Directory = postcard::from_bytes(dir)
        .map_err(|e| Error::corrupt(path, format!("segment directory: {e}")))?;
    if d.sections.len() != SECTIONS_V2.len() {
        return Err(Error::corrupt(path, "bad segment section count"));
    }
    let dir_start = file_len - TAIL_LEN - dir.len();
    let mut out: [Range<usize>; 9] = Default::default();
    for (e, want) in d.sections.iter().zip(SECTIONS_V2) {
        if e.kind != want as u32 {
            return Err(Error::corrupt(
                path,
                format!("unexpected section kind {}", e.kind),
            ));
        }
        let end = e.offset.checked_add(e.len).filter(|end| {
            *end as usize <= dir_start && (e.offset as usize).is_multiple_of(BLOCK) && e.offset > 0
        });
        let blocks = (e.len as usize).div_ceil((e.block_len as usize).max(1));
        if end.is_none() || e.block_len == 0 || !(e.block_len as usize).is_multiple_of(BLOCK) {
            return Err(Error::corrupt(
                path,
                format!("section {want:?} out of bounds"),
            ));
        }
        if e.crcs.len() != blocks {
            return Err(Error::corrupt(
                path,
                format!(
                    "section {want:?}: {} block checksums for {blocks} blocks",
                    e.crcs.len()
                ),
            ));
        }
        out[want as usize - 1] = e.range();
    }
    Ok((d, out))
}

/// Check block `b` of `entry` (`bytes`, the block as read).
pub(crate) fn check_block(path: &str, entry: &SectionEntry, b: usize, bytes: &[u8]) -> Result<()> {
    let want = entry.crcs.get(b).copied();
    if want != Some(crc32c::crc32c(bytes)) {
        let r = entry.block(b);
        return Err(Error::corrupt(
            path,
            format!(
                "section {} block {b} (bytes {}..{}) checksum mismatch",
                section_name(entry.kind),
                r.start,
                r.end
            ),
        ));
    }
    Ok(())
}

/// Check every block of every section of a whole file.
pub(crate) fn check_all(path: &str, d: &Directory, file: &[u8]) -> Result<()> {
    for e in &d.sections {
        for b in 0..e.crcs.len() {
            check_block(path, e, b, &file[e.block(b)])?;
        }
    }
    Ok(())
}

fn section_name(kind: u32) -> String {
    SECTIONS_V2
        .iter()
        .find(|s| **s as u32 == kind)
        .map(|s| format!("{s:?}"))
        .unwrap_or_else(|| kind.to_string())
}
