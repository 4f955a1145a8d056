//! Points into files: JSON lines and Parquet, the formats an export writes. Both are read
//! back by [`crate::read`] into identical points.

mod jsonl;
mod parquet;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result, bail};
use vecshard_model::Point;

use crate::Format;

pub use jsonl::JsonlWriter;
pub use parquet::ParquetWriter;

/// A file being written, a batch of points at a time.
pub trait PointWriter: Send {
    /// Append `points`.
    fn write(&mut self, points: &[Point]) -> Result<()>;
    /// Flush and close (Parquet writes its footer here).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// A writer of `format` into a new file at `path`; `dim` is every vector's dimension.
pub fn create(path: &Path, format: Format, dim: usize) -> Result<Box<dyn PointWriter>> {
    let open = || -> Result<BufWriter<File>> {
        let f = File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    };
    Ok(match format {
        Format::Jsonl => Box::new(JsonlWriter::new(open()?, path)),
        Format::Parquet => Box::new(ParquetWriter::new(open()?, path, dim)?),
        Format::Fvecs | Format::Npy => {
            bail!("cannot export {format}: keys, metadata and payloads need jsonl or parquet")
        }
    })
}
