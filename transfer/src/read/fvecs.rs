//! TEXMEX `.fvecs` / `.ivecs`: per row an i32 dimension, then the values (little-endian).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Rows of an `.fvecs` file, streamed.
pub struct Fvecs {
    reader: BufReader<File>,
    path: String,
    row: u64,
}

impl Fvecs {
    /// Open `path`.
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

/// Number of rows, from the file size and the first row's dimension.
pub(super) fn count_hint(path: &Path) -> Option<u64> {
    let len = std::fs::metadata(path).ok()?.len();
    let mut f = File::open(path).ok()?;
    let mut d = [0u8; 4];
    f.read_exact(&mut d).ok()?;
    let dim = i32::from_le_bytes(d) as u64;
    Some(len / (4 + dim * 4))
}
