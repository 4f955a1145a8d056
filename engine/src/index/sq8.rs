//! SQ8: one signed byte per dimension, used to walk a segment's graph cheaply before the
//! best candidates are rescored with exact f32 distances.
//!
//! Two forms, chosen by the metric when the codes are trained:
//! - **L2** (L2, and cosine, whose unit vectors rank alike under L2): per-dimension
//!   offsets and one scale `s` for all dimensions, so `|q - x|² ≈ s² · |cq - cx|²` and the
//!   code-space distance is proportional; queries are encoded like rows. Errors shrink
//!   with the distance, where ranking matters most.
//! - **Dot**: per-dimension offsets `o` and scales `s`. `q·x ≈ q·o + Σ (q_i s_i) c_i`;
//!   `q·o` is the same for every row, and `q_i s_i` is quantized with its own scale, so
//!   ranking by the byte dot product is ranking by `q·x`.
//!
//! ```text
//! section header, 64 bytes (little-endian)
//!   0 magic b"VSSQ8\0\0\0"  8 version (1)  12 rows  16 dim  20 kind (0 L2, 1 Dot)
//!   24 CRC-32C of the section with this field zeroed
//! arrays at multiples of 64 bytes: offsets [f32; dim], scales [f32; dim], codes [i8; rows * dim]
//! ```

use rayon::prelude::*;
use simsimd::SpatialSimilarity;

use super::Vectors;
use super::format::{read_u32, section_crc};
use crate::types::Metric;

const MAGIC: &[u8; 8] = b"VSSQ8\0\0\0";
const VERSION: u32 = 1;
const HEADER: usize = 64;
const CRC_AT: usize = 24;
/// Codes use -127..=127 so every kernel may negate them safely.
const LIMIT: f32 = 127.0;

/// How codes are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Symmetric L2 in code space (one scale for all dimensions).
    L2,
    /// Negated byte dot product with a separately scaled query.
    Dot,
}

impl Kind {
    /// The form used for `metric`.
    pub fn for_metric(metric: Metric) -> Kind {
        match metric {
            Metric::L2 | Metric::Cosine => Kind::L2,
            Metric::Dot => Kind::Dot,
        }
    }

    pub(crate) fn code(self) -> u32 {
        match self {
            Kind::L2 => 0,
            Kind::Dot => 1,
        }
    }
}

/// Byte offsets of a codes section's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodesLayout {
    pub kind: Kind,
    rows: usize,
    dim: usize,
    offsets: usize,
    scales: usize,
    codes: usize,
    len: usize,
}

impl CodesLayout {
    fn new(kind: Kind, rows: usize, dim: usize) -> Option<CodesLayout> {
        let align = |x: usize| x.checked_next_multiple_of(64);
        let offsets = HEADER;
        let scales = align(offsets.checked_add(dim.checked_mul(4)?)?)?;
        let codes = align(scales.checked_add(dim.checked_mul(4)?)?)?;
        let len = align(codes.checked_add(rows.checked_mul(dim)?)?)?;
        Some(CodesLayout {
            kind,
            rows,
            dim,
            offsets,
            scales,
            codes,
            len,
        })
    }
}

/// Offsets and scales fitted to a set of rows.
struct Quantizer {
    offsets: Vec<f32>,
    scales: Vec<f32>,
}

impl Quantizer {
    /// Fit the per-dimension ranges of rows `0..rows`.
    fn train(kind: Kind, dim: usize, rows: u32, vectors: &dyn Vectors) -> Quantizer {
        let (lo, hi) = (0..rows)
            .into_par_iter()
            .fold(
                || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]),
                |(mut lo, mut hi), r| {
                    for ((l, h), &x) in lo.iter_mut().zip(hi.iter_mut()).zip(vectors.get(r)) {
                        if x.is_finite() {
                            *l = l.min(x);
                            *h = h.max(x);
                        }
                    }
                    (lo, hi)
                },
            )
            .reduce(
                || (vec![f32::INFINITY; dim], vec![f32::NEG_INFINITY; dim]),
                |(a_lo, a_hi), (b_lo, b_hi)| {
                    let lo = a_lo.iter().zip(&b_lo).map(|(a, b)| a.min(*b)).collect();
                    let hi = a_hi.iter().zip(&b_hi).map(|(a, b)| a.max(*b)).collect();
                    (lo, hi)
                },
            );
        let offsets: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(&l, &h)| if l <= h { (l + h) / 2.0 } else { 0.0 })
            .collect();
        let ranges: Vec<f32> = lo
            .iter()
            .zip(&hi)
            .map(|(&l, &h)| if l < h { (h - l) / (2.0 * LIMIT) } else { 0.0 })
            .collect();
        let positive = |s: f32| if s > 0.0 && s.is_finite() { s } else { 1.0 };
        let scales = match kind {
            Kind::L2 => vec![positive(ranges.iter().copied().fold(0.0, f32::max)); dim],
            Kind::Dot => ranges.into_iter().map(positive).collect(),
        };
        Quantizer { offsets, scales }
    }
}

/// Encode `x` as a row: `(x - offset) / scale`, rounded and clamped.
fn encode_row(offsets: &[f32], scales: &[f32], x: &[f32], out: &mut [i8]) {
    for (((o, &x), &off), &s) in out.iter_mut().zip(x).zip(offsets).zip(scales) {
        *o = ((x - off) / s).round().clamp(-LIMIT, LIMIT) as i8;
    }
}

/// Train on rows `0..rows` and write the codes section.
pub(crate) fn encode_section(
    metric: Metric,
    dim: usize,
    rows: u32,
    vectors: &dyn Vectors,
) -> Vec<u8> {
    let kind = Kind::for_metric(metric);
    let q = Quantizer::train(kind, dim, rows, vectors);
    let layout = CodesLayout::new(kind, rows as usize, dim)
        .expect("codes held in memory have a representable size");
    let mut out = vec![0u8; layout.len];
    out[..8].copy_from_slice(MAGIC);
    for (i, v) in [VERSION, rows, dim as u32, kind.code()]
        .into_iter()
        .enumerate()
    {
        out[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    for (i, (&o, &s)) in q.offsets.iter().zip(&q.scales).enumerate() {
        out[layout.offsets + 4 * i..][..4].copy_from_slice(&o.to_le_bytes());
        out[layout.scales + 4 * i..][..4].copy_from_slice(&s.to_le_bytes());
    }
    if dim > 0 {
        let codes: &mut [i8] =
            bytemuck::cast_slice_mut(&mut out[layout.codes..layout.codes + rows as usize * dim]);
        codes
            .par_chunks_mut(dim)
            .enumerate()
            .for_each(|(r, code)| encode_row(&q.offsets, &q.scales, vectors.get(r as u32), code));
    }
    let crc = section_crc(&out, CRC_AT);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A validated codes section, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct CodesView<'a> {
    pub kind: Kind,
    pub dim: usize,
    offsets: &'a [f32],
    scales: &'a [f32],
    codes: &'a [i8],
}

impl<'a> CodesView<'a> {
    /// Check a codes section for `rows` rows of `dim` and return its layout.
    pub fn open(
        bytes: &'a [u8],
        metric: Metric,
        dim: usize,
        rows: u32,
    ) -> Result<CodesLayout, String> {
        if bytes.len() < HEADER {
            return Err(format!("codes section too short: {} bytes", bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err("codes section: bad magic".to_string());
        }
        let version = read_u32(bytes, 8);
        if version != VERSION {
            return Err(format!("codes section: unsupported version {version}"));
        }
        let (r, d, k) = (
            read_u32(bytes, 12),
            read_u32(bytes, 16),
            read_u32(bytes, 20),
        );
        if r != rows || d as usize != dim {
            return Err(format!(
                "codes section holds {r} rows of dim {d}, the segment {rows} of dim {dim}"
            ));
        }
        let kind = Kind::for_metric(metric);
        if k != kind.code() {
            return Err(format!(
                "codes section: kind {k} does not fit metric {metric:?}"
            ));
        }
        let layout = CodesLayout::new(kind, rows as usize, dim)
            .ok_or_else(|| "codes section: sizes overflow".to_string())?;
        if bytes.len() != layout.len {
            return Err(format!(
                "codes section is {} bytes, its header implies {}",
                bytes.len(),
                layout.len
            ));
        }
        let stored = read_u32(bytes, CRC_AT);
        let actual = section_crc(bytes, CRC_AT);
        if stored != actual {
            return Err(format!(
                "codes checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
            ));
        }
        let view = CodesView::at(bytes, &layout)?;
        if view.offsets.iter().any(|o| !o.is_finite())
            || view.scales.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err("codes section: non-finite offset or non-positive scale".to_string());
        }
        Ok(layout)
    }

    /// Borrow the arrays of a section already validated with `layout`.
    pub fn at(bytes: &'a [u8], layout: &CodesLayout) -> Result<CodesView<'a>, String> {
        if bytes.len() != layout.len {
            return Err(format!(
                "codes section is {} bytes, expected {}",
                bytes.len(),
                layout.len
            ));
        }
        let floats = |at: usize, what: &str| -> Result<&'a [f32], String> {
            bytemuck::try_cast_slice(&bytes[at..at + layout.dim * 4])
                .map_err(|e| format!("codes {what}: section not 4-byte aligned ({e:?})"))
        };
        Ok(CodesView {
            kind: layout.kind,
            dim: layout.dim,
            offsets: floats(layout.offsets, "offsets")?,
            scales: floats(layout.scales, "scales")?,
            codes: bytemuck::cast_slice(
                &bytes[layout.codes..layout.codes + layout.rows * layout.dim],
            ),
        })
    }

    /// A view of the quantizer alone (no codes), as a format-2 segment's directory holds it.
    pub fn quantizer(kind: Kind, offsets: &'a [f32], scales: &'a [f32]) -> CodesView<'a> {
        CodesView {
            kind,
            dim: offsets.len(),
            offsets,
            scales,
            codes: &[],
        }
    }

    /// Per-dimension offsets and scales.
    pub fn params(&self) -> (&'a [f32], &'a [f32]) {
        (self.offsets, self.scales)
    }

    /// The code of `row`.
    #[inline]
    pub fn code(&self, row: u32) -> &'a [i8] {
        let start = row as usize * self.dim;
        &self.codes[start..start + self.dim]
    }

    /// A code-space distance that rows at exact distance `exact` from the query (the
    /// engine's L2 or cosine distance: cosine codes rank by L2 between unit vectors) stay
    /// under despite rounding, mostly: `|cq - cx| ≈ |q - x| / s ± ε`, where the rounding
    /// error ε of the difference has a norm of about `sqrt(dim / 6)` code steps, and the
    /// bound allows [`BOUND_SLACK`] times that. `INFINITY` for dot codes (no bound then).
    pub fn bound(&self, metric: Metric, exact: f32) -> f32 {
        if self.kind != Kind::L2 || exact.is_nan() || self.dim == 0 {
            return f32::INFINITY;
        }
        let l2sq = match metric {
            Metric::Cosine => 2.0 * exact,
            _ => exact,
        };
        let r =
            l2sq.max(0.0).sqrt() / self.scales[0] + BOUND_SLACK * (self.dim as f32 / 6.0).sqrt();
        r * r
    }

    /// The query's code, to be compared with [`code_distance`].
    pub fn encode_query(&self, query: &[f32]) -> Vec<i8> {
        let mut out = vec![0i8; self.dim];
        match self.kind {
            Kind::L2 => encode_row(self.offsets, self.scales, query, &mut out),
            Kind::Dot => {
                let w: Vec<f32> = query.iter().zip(self.scales).map(|(q, s)| q * s).collect();
                let peak = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let t = if peak > 0.0 && peak.is_finite() {
                    peak / LIMIT
                } else {
                    1.0
                };
                let zero = vec![0.0; self.dim];
                let unit = vec![t; self.dim];
                encode_row(&zero, &unit, &w, &mut out);
            }
        }
        out
    }
}

/// How many typical rounding errors [`CodesView::bound`] allows on top of the exact
/// distance. Tuned on clustered 32-d data (`segments_bench`, 1M rows in 3 segments): 1
/// lost 0.02–0.04 recall@10 against unbounded walks, 2 about 0.01, 3 hardly any but
/// saved little time.
const BOUND_SLACK: f32 = 2.0;

/// The code-space distance under `kind`, lower is better.
#[inline]
pub(crate) fn code_distance(kind: Kind, query: &[i8], code: &[i8]) -> f32 {
    match kind {
        Kind::L2 => i8::l2sq(query, code).unwrap_or(f64::INFINITY) as f32,
        Kind::Dot => -(i8::dot(query, code).unwrap_or(f64::NEG_INFINITY) as f32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::distance;
    use crate::index::SliceVectors;

    fn data(n: usize, dim: usize, seed: u32) -> Vec<f32> {
        (0..n * dim)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed);
                (x >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 1.0 + (i % dim) as f32 * 0.1
            })
            .collect()
    }

    #[test]
    fn byte_kernels_match_scalar_loops_over_the_full_code_range() {
        let a: Vec<i8> = (0..300).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..300).map(|i| ((i * 91 + 5) % 255 - 127) as i8).collect();
        let l2: i64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (i64::from(x) - i64::from(y)).pow(2))
            .sum();
        let dot: i64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum();
        assert_eq!(code_distance(Kind::L2, &a, &b), l2 as f32);
        assert_eq!(code_distance(Kind::Dot, &a, &b), -(dot as f32));
    }

    /// The code-space nearest row is among the exact three nearest, for most queries.
    fn ranks_like_exact(metric: Metric) {
        let (n, dim) = (500, 16);
        let mut rows = data(n, dim, 1);
        let mut queries = data(50, dim, 2);
        if metric == Metric::Cosine {
            rows.chunks_exact_mut(dim).for_each(|v| {
                crate::distance::normalize(v);
            });
            queries.chunks_exact_mut(dim).for_each(|v| {
                crate::distance::normalize(v);
            });
        }
        let vectors = SliceVectors { data: &rows, dim };
        let section = encode_section(metric, dim, n as u32, &vectors);
        let layout = CodesView::open(&section, metric, dim, n as u32).unwrap();
        let view = CodesView::at(&section, &layout).unwrap();
        let mut good = 0;
        for q in queries.chunks_exact(dim) {
            let qc = view.encode_query(q);
            let by_code = (0..n as u32)
                .min_by(|&a, &b| {
                    let (da, db) = (
                        code_distance(view.kind, &qc, view.code(a)),
                        code_distance(view.kind, &qc, view.code(b)),
                    );
                    da.total_cmp(&db)
                })
                .unwrap();
            let mut exact: Vec<(f32, u32)> = (0..n as u32)
                .map(|r| (distance(metric, q, vectors.get(r)), r))
                .collect();
            exact.sort_by(|a, b| a.0.total_cmp(&b.0));
            if exact[..3].iter().any(|&(_, r)| r == by_code) {
                good += 1;
            }
        }
        assert!(good >= 45, "{metric:?}: {good}/50");
    }

    #[test]
    fn codes_rank_like_exact_distances() {
        ranks_like_exact(Metric::L2);
        ranks_like_exact(Metric::Cosine);
        ranks_like_exact(Metric::Dot);
    }
}
