//! Input files: `.fvecs` / `.ivecs` (TEXMEX: per row an i32 dimension, then the values) and
//! JSON lines (`{"id": …, "vector": […], "metadata": {…}, "payload": …}`: the model's
//! grammar, `vecshard_model::json`, which rejects unknown fields as the REST API does).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use vecshard_engine::Point;

/// Rows of an `.fvecs` file, streamed.
pub struct Fvecs {
    reader: BufReader<File>,
    path: String,
    row: u64,
}

impl Fvecs {
    pub fn open(path: &Path) -> Result<Self> {
        let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
        Ok(Fvecs {
            reader: BufReader::with_capacity(1 << 20, f),
            path: path.display().to_string(),
            row: 0,
        })
    }
}

impl Iterator for Fvecs {
    type Item = Result<Vec<f32>>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut dim = [0u8; 4];
        match self.reader.read_exact(&mut dim) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => return Some(Err(e).with_context(|| format!("read {}", self.path))),
        }
        let d = i32::from_le_bytes(dim);
        if !(1..=1 << 20).contains(&d) {
            return Some(Err(anyhow::anyhow!(
                "{}: row {} has a bad dimension {d}",
                self.path,
                self.row
            )));
        }
        let mut buf = vec![0u8; d as usize * 4];
        if let Err(e) = self.reader.read_exact(&mut buf) {
            return Some(
                Err(e).with_context(|| format!("{}: row {} is truncated", self.path, self.row)),
            );
        }
        self.row += 1;
        Some(Ok(buf
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()))
    }
}

/// All rows of an `.fvecs` file.
pub fn read_fvecs(path: &Path) -> Result<Vec<Vec<f32>>> {
    Fvecs::open(path)?.collect()
}

/// All rows of an `.ivecs` file.
pub fn read_ivecs(path: &Path) -> Result<Vec<Vec<i32>>> {
    let data = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(head) = data.get(pos..pos + 4) else {
            bail!("{}: truncated", path.display())
        };
        let d = i32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(body) = data.get(pos + 4..pos + 4 + d * 4) else {
            bail!("{}: truncated", path.display())
        };
        out.push(
            body.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
        pos += 4 + d * 4;
    }
    Ok(out)
}

/// Points of an import file: `.fvecs` rows get keys 0, 1, 2 …; anything else is JSON lines.
pub fn points(path: &Path) -> Result<Box<dyn Iterator<Item = Result<Point>>>> {
    if path.extension().is_some_and(|e| e == "fvecs") {
        let rows = Fvecs::open(path)?;
        return Ok(Box::new(
            rows.enumerate()
                .map(|(i, v)| v.map(|v| Point::new(i as u64, v))),
        ));
    }
    let f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let lines = BufReader::with_capacity(1 << 20, f).lines();
    let name = path.display().to_string();
    Ok(Box::new(lines.enumerate().filter_map(move |(i, line)| {
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
    })))
}

/// Number of rows, when cheap to know (fvecs: from the file size).
pub fn count_hint(path: &Path) -> Option<u64> {
    if path.extension()? != "fvecs" {
        return None;
    }
    let len = std::fs::metadata(path).ok()?.len();
    let mut f = File::open(path).ok()?;
    let mut d = [0u8; 4];
    f.read_exact(&mut d).ok()?;
    let dim = i32::from_le_bytes(d) as u64;
    Some(len / (4 + dim * 4))
}
