//! Points from files, streamed. Every error names the file and where in it: `line N` (JSON
//! lines, from 1) or `row N` (the binary formats, from 0 — the key a row gets when the
//! format has no key of its own).

mod fvecs;
mod jsonl;
mod npy;
mod parquet;

use std::path::Path;

use anyhow::Result;
use vecshard_model::Point;

use crate::Format;

pub use fvecs::{Fvecs, read_fvecs, read_ivecs};

/// A file's points in file order; the first error ends it.
pub type Points = Box<dyn Iterator<Item = Result<Point>> + Send>;

/// The points of `path`, read as `format`.
pub fn points(path: &Path, format: Format) -> Result<Points> {
    Ok(match format {
        Format::Fvecs => Box::new(
            Fvecs::open(path)?
                .enumerate()
                .map(|(i, v)| v.map(|v| Point::new(i as u64, v))),
        ),
        Format::Jsonl => Box::new(jsonl::points(path)?),
        Format::Npy => Box::new(
            npy::Npy::open(path)?
                .enumerate()
                .map(|(i, v)| v.map(|v| Point::new(i as u64, v))),
        ),
        Format::Parquet => Box::new(parquet::ParquetPoints::open(path)?),
    })
}

/// The number of points, when cheap to know (from the size or the header).
pub fn count_hint(path: &Path, format: Format) -> Option<u64> {
    match format {
        Format::Fvecs => fvecs::count_hint(path),
        Format::Npy => npy::Npy::open(path).ok().map(|n| n.rows()),
        Format::Parquet => parquet::row_count(path),
        Format::Jsonl => None,
    }
}
