//! The graph section of a segment: layout, writer, and a validating zero-copy reader.
//!
//! ```text
//! header, 64 bytes (little-endian u32 unless noted)
//!   0  magic  b"VSGRAPH\0"        8  format version (1)
//!   12 rows   16 m (upper links)  20 m0 (layer-0 links)
//!   24 max_level                  28 entry row (u32::MAX when empty)
//!   32 upper_lists                36 CRC-32C of the section with this field zeroed
//! arrays, each starting at a multiple of 64 bytes from the section start
//!   links0       [u32; rows * m0]        layer 0, unused slots u32::MAX (after the used)
//!   upper_start  [u32; rows]             first upper list of a row (u32::MAX: none)
//!   upper        [u32; upper_lists * m]  layers 1..=level of each such row, in order
//!   levels       [u8; rows]
//! ```
//! Sections sit 64-byte aligned in a segment file, so the arrays are cache-line aligned
//! when mapped. [`GraphView::open`] checks everything a search relies on, so a corrupt
//! section is an error at open and never a panic or an out-of-bounds read later.

use super::level::MAX_LEVEL;

/// An unused link slot.
pub(crate) const NONE: u32 = u32::MAX;
const MAGIC: &[u8; 8] = b"VSGRAPH\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;
const CRC_AT: usize = 36;
const MAX_M: u32 = 512;

/// Byte offsets of the arrays of a graph section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GraphLayout {
    pub rows: u32,
    pub m: u32,
    pub m0: u32,
    pub max_level: u32,
    pub entry: u32,
    pub upper_lists: u32,
    links0: usize,
    upper_start: usize,
    upper: usize,
    levels: usize,
    len: usize,
}

fn align64(x: usize) -> usize {
    x.div_ceil(64) * 64
}

impl GraphLayout {
    /// `None` if the sizes overflow.
    fn new(rows: u32, m: u32, m0: u32, upper_lists: u32) -> Option<GraphLayout> {
        let (r, m_, m0_, ul) = (rows as usize, m as usize, m0 as usize, upper_lists as usize);
        let links0 = HEADER;
        let upper_start = align64(links0.checked_add(r.checked_mul(m0_)?.checked_mul(4)?)?);
        let upper = align64(upper_start.checked_add(r.checked_mul(4)?)?);
        let levels = align64(upper.checked_add(ul.checked_mul(m_)?.checked_mul(4)?)?);
        let len = align64(levels.checked_add(r)?);
        Some(GraphLayout {
            rows,
            m,
            m0,
            max_level: 0,
            entry: NONE,
            upper_lists,
            links0,
            upper_start,
            upper,
            levels,
            len,
        })
    }
}

/// The links of a graph, ready to be written.
#[derive(Debug)]
pub(crate) struct GraphParts {
    pub rows: u32,
    m: u32,
    m0: u32,
    entry: u32,
    levels: Vec<u8>,
    links0: Vec<u32>,
    upper_start: Vec<u32>,
    upper: Vec<u32>,
}

impl GraphParts {
    /// An unlinked graph whose rows sit on the given top layers.
    pub fn new(m: u32, m0: u32, levels: Vec<u8>) -> GraphParts {
        let rows = levels.len() as u32;
        let mut next = 0u32;
        let upper_start = levels
            .iter()
            .map(|&l| {
                if l == 0 {
                    NONE
                } else {
                    next += u32::from(l);
                    next - u32::from(l)
                }
            })
            .collect();
        GraphParts {
            rows,
            m,
            m0,
            entry: NONE,
            links0: vec![NONE; rows as usize * m0 as usize],
            upper_start,
            upper: vec![NONE; next as usize * m as usize],
            levels,
        }
    }

    /// Set the links of `row` on `level` (extra links are dropped).
    pub fn set_links(&mut self, row: u32, level: usize, links: &[u32]) {
        let r = row as usize;
        let (slots, width) = if level == 0 {
            (r * self.m0 as usize, self.m0 as usize)
        } else {
            let list = self.upper_start[r] as usize + level - 1;
            (list * self.m as usize, self.m as usize)
        };
        let target = if level == 0 {
            &mut self.links0[slots..slots + width]
        } else {
            &mut self.upper[slots..slots + width]
        };
        let n = links.len().min(width);
        target[..n].copy_from_slice(&links[..n]);
        target[n..].fill(NONE);
    }

    /// Set the entry point; it must be a row on the top layer.
    pub fn set_entry(&mut self, entry: Option<u32>) {
        self.entry = entry.unwrap_or(NONE);
    }

    /// The entry point, if the graph has rows.
    pub fn entry(&self) -> Option<u32> {
        (self.entry != NONE).then_some(self.entry)
    }

    /// Width of a layer-0 list.
    pub fn m0(&self) -> usize {
        self.m0 as usize
    }

    /// The links of `row` on layer 0.
    pub fn links0(&self, row: u32) -> &[u32] {
        let start = row as usize * self.m0 as usize;
        let list = &self.links0[start..start + self.m0 as usize];
        let n = list.iter().position(|&r| r == NONE).unwrap_or(list.len());
        &list[..n]
    }

    /// The section bytes.
    pub fn encode(&self) -> Vec<u8> {
        let upper_lists = (self.upper.len() / self.m.max(1) as usize) as u32;
        let layout = GraphLayout::new(self.rows, self.m, self.m0, upper_lists)
            .expect("a graph held in memory has a representable size");
        let max_level = self.levels.iter().copied().max().unwrap_or(0);
        let mut out = vec![0u8; layout.len];
        out[..8].copy_from_slice(MAGIC);
        for (i, v) in [
            VERSION,
            self.rows,
            self.m,
            self.m0,
            u32::from(max_level),
            self.entry,
            upper_lists,
        ]
        .into_iter()
        .enumerate()
        {
            out[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        put_u32s(&mut out[layout.links0..], &self.links0);
        put_u32s(&mut out[layout.upper_start..], &self.upper_start);
        put_u32s(&mut out[layout.upper..], &self.upper);
        out[layout.levels..layout.levels + self.levels.len()].copy_from_slice(&self.levels);
        let crc = crc32c::crc32c(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

fn put_u32s(out: &mut [u8], values: &[u32]) {
    for (chunk, v) in out.chunks_exact_mut(4).zip(values) {
        chunk.copy_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// CRC-32C of a section whose checksum field at `crc_at` counts as zero.
pub(crate) fn section_crc(bytes: &[u8], crc_at: usize) -> u32 {
    let crc = crc32c::crc32c(&bytes[..crc_at]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &bytes[crc_at + 4..])
}

/// Cast `bytes[at..at + n * 4]` to u32s, or say why not.
pub(crate) fn u32s<'a>(
    bytes: &'a [u8],
    at: usize,
    n: usize,
    what: &str,
) -> Result<&'a [u32], String> {
    let end = n
        .checked_mul(4)
        .and_then(|b| b.checked_add(at))
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| format!("{what}: array runs past the section"))?;
    bytemuck::try_cast_slice(&bytes[at..end])
        .map_err(|e| format!("{what}: section not 4-byte aligned ({e:?})"))
}

/// A validated graph section, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct GraphView<'a> {
    pub links0: &'a [u32],
    pub upper_start: &'a [u32],
    pub upper: &'a [u32],
    pub levels: &'a [u8],
    pub m0: usize,
    pub m: usize,
}

impl<'a> GraphView<'a> {
    /// Check the whole section for `rows` rows and return its layout.
    pub fn open(bytes: &'a [u8], rows: u32) -> Result<GraphLayout, String> {
        let layout = parse_header(bytes)?;
        if layout.rows != rows {
            return Err(format!(
                "graph holds {} rows, the segment {rows}",
                layout.rows
            ));
        }
        let stored = read_u32(bytes, CRC_AT);
        let actual = section_crc(bytes, CRC_AT);
        if stored != actual {
            return Err(format!(
                "graph checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
            ));
        }
        let view = GraphView::at(bytes, &layout)?;
        view.validate(&layout)?;
        Ok(layout)
    }

    /// Borrow the arrays of a section already validated with `layout`.
    pub fn at(bytes: &'a [u8], layout: &GraphLayout) -> Result<GraphView<'a>, String> {
        if bytes.len() != layout.len {
            return Err(format!(
                "graph section is {} bytes, expected {}",
                bytes.len(),
                layout.len
            ));
        }
        let rows = layout.rows as usize;
        Ok(GraphView {
            links0: u32s(bytes, layout.links0, rows * layout.m0 as usize, "links0")?,
            upper_start: u32s(bytes, layout.upper_start, rows, "upper_start")?,
            upper: u32s(
                bytes,
                layout.upper,
                layout.upper_lists as usize * layout.m as usize,
                "upper",
            )?,
            levels: &bytes[layout.levels..layout.levels + rows],
            m0: layout.m0 as usize,
            m: layout.m as usize,
        })
    }

    /// Every invariant a search relies on.
    fn validate(&self, layout: &GraphLayout) -> Result<(), String> {
        let rows = layout.rows;
        let max_level = layout.max_level as usize;
        if rows == 0 {
            return match layout.entry {
                NONE => Ok(()),
                e => Err(format!("empty graph with entry row {e}")),
            };
        }
        let entry = layout.entry;
        if entry >= rows || self.levels[entry as usize] as usize != max_level {
            return Err(format!("bad entry row {entry} (top layer {max_level})"));
        }
        let mut lists = 0usize;
        for row in 0..rows as usize {
            let level = self.levels[row] as usize;
            if level > max_level {
                return Err(format!(
                    "row {row} on layer {level} above the top {max_level}"
                ));
            }
            check_links(&self.links0[row * self.m0..(row + 1) * self.m0], rows, row)?;
            let start = self.upper_start[row];
            match (level, start) {
                (0, NONE) => continue,
                (0, _) | (_, NONE) => {
                    return Err(format!("row {row}: upper lists do not match its layer"));
                }
                _ => {}
            }
            if start as usize != lists {
                return Err(format!("row {row}: upper lists out of order"));
            }
            lists += level;
            if lists > layout.upper_lists as usize {
                return Err(format!("row {row}: upper lists past the array"));
            }
            for l in 1..=level {
                let list = &self.upper_list(row as u32, l);
                check_links(list, rows, row)?;
                if let Some(&bad) = list
                    .iter()
                    .find(|&&nb| nb != NONE && (self.levels[nb as usize] as usize) < l)
                {
                    return Err(format!("row {row}: layer-{l} link to row {bad} below it"));
                }
            }
        }
        if lists != layout.upper_lists as usize {
            return Err("upper list count mismatch".to_string());
        }
        Ok(())
    }

    /// The slots of `row` on upper `level` (`1..=levels[row]`).
    #[inline]
    pub fn upper_list(&self, row: u32, level: usize) -> &'a [u32] {
        let start = (self.upper_start[row as usize] as usize + level - 1) * self.m;
        &self.upper[start..start + self.m]
    }

    /// The slots of `row` on `level`, empty when the row is not on it.
    #[inline]
    pub fn links(&self, row: u32, level: usize) -> &'a [u32] {
        if level == 0 {
            let start = row as usize * self.m0;
            &self.links0[start..start + self.m0]
        } else if level <= self.levels[row as usize] as usize {
            self.upper_list(row, level)
        } else {
            &[]
        }
    }
}

fn parse_header(bytes: &[u8]) -> Result<GraphLayout, String> {
    if bytes.len() < HEADER {
        return Err(format!("graph section too short: {} bytes", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("graph section: bad magic".to_string());
    }
    let version = read_u32(bytes, 8);
    if version != VERSION {
        return Err(format!("graph section: unsupported version {version}"));
    }
    let field = |i: usize| read_u32(bytes, 12 + 4 * i);
    let (rows, m, m0, max_level, entry, upper_lists) =
        (field(0), field(1), field(2), field(3), field(4), field(5));
    if m == 0 || m > MAX_M || m0 < m || m0 > 2 * MAX_M {
        return Err(format!("graph section: bad degrees m={m} m0={m0}"));
    }
    if max_level as usize > MAX_LEVEL {
        return Err(format!("graph section: top layer {max_level} too high"));
    }
    let mut layout = GraphLayout::new(rows, m, m0, upper_lists)
        .ok_or_else(|| "graph section: sizes overflow".to_string())?;
    if bytes.len() != layout.len {
        return Err(format!(
            "graph section is {} bytes, its header implies {}",
            bytes.len(),
            layout.len
        ));
    }
    layout.max_level = max_level;
    layout.entry = entry;
    Ok(layout)
}

/// Used slots first, each a row below `rows` other than the owner, then only [`NONE`].
pub(crate) fn check_links(slots: &[u32], rows: u32, owner: usize) -> Result<(), String> {
    let used = slots.iter().position(|&s| s == NONE).unwrap_or(slots.len());
    if slots[used..].iter().any(|&s| s != NONE) {
        return Err(format!("row {owner}: gap in its links"));
    }
    match slots[..used]
        .iter()
        .find(|&&s| s >= rows || s as usize == owner)
    {
        Some(bad) => Err(format!("row {owner}: bad link {bad}")),
        None => Ok(()),
    }
}
