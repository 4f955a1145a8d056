//! JSON lines: one point per line in the model's grammar (`vecshard_model::json`, the
//! REST API's, which rejects unknown fields); blank lines are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use vecshard_model::Point;

/// The points of a JSON-lines file.
pub(super) fn points(path: &Path) -> Result<impl Iterator<Item = Result<Point>> + Send + use<>> {
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let lines = BufReader::with_capacity(1 << 20, f).lines();
    let name = path.display().to_string();
    Ok(lines.enumerate().filter_map(move |(i, line)| {
        let line = match line {
            Ok(l) => l,
            Err(e) => return Some(Err(anyhow::anyhow!("{name}: line {}: {e}", i + 1))),
        };
        if line.trim().is_empty() {
            return None;
        }
        let parsed = vecshard_model::json::point_from_str(&line)
            .map_err(|e| anyhow::anyhow!("{name}: line {}: {e}", i + 1));
        Some(parsed)
    }))
}
