//! The file formats points move in and out through.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A file format of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TEXMEX `.fvecs`: per row an i32 dimension, then the values; keys are row numbers.
    Fvecs,
    /// JSON lines: one point per line in the model's JSON grammar.
    Jsonl,
    /// Parquet: a vector column of float lists, optional key, metadata and payload columns.
    Parquet,
    /// NumPy `.npy`: a 2-D float32 array, one vector per row; keys are row numbers.
    Npy,
}

impl Format {
    /// The format a file's extension names: `.fvecs`, `.parquet`, `.npy`; anything else is
    /// JSON lines (`.jsonl`, `.json`, `.ndjson`, none).
    pub fn detect(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("fvecs") => Format::Fvecs,
            Some("parquet") => Format::Parquet,
            Some("npy") => Format::Npy,
            _ => Format::Jsonl,
        }
    }

    /// `format` when given, else the one `path`'s extension names.
    pub fn or_detect(format: Option<Format>, path: &Path) -> Format {
        format.unwrap_or_else(|| Format::detect(path))
    }

    /// The format to export `out` as: `format`, else from the name; an error unless
    /// [`crate::export`] can write it.
    pub fn for_export(format: Option<Format>, out: &Path) -> anyhow::Result<Format> {
        let format = Format::or_detect(format, out);
        if !format.exportable() {
            anyhow::bail!("cannot export as {format}: use --format jsonl or parquet");
        }
        Ok(format)
    }

    /// Whether [`crate::export`] can write it.
    pub fn exportable(self) -> bool {
        matches!(self, Format::Jsonl | Format::Parquet)
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fvecs" => Ok(Format::Fvecs),
            "jsonl" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            "npy" => Ok(Format::Npy),
            other => Err(format!(
                "unknown format {other:?}: expected fvecs, jsonl, parquet or npy"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Fvecs => "fvecs",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::Npy => "npy",
        })
    }
}
