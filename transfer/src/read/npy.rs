//! NumPy `.npy` (format versions 1 to 3): a 2-D little-endian float32 array in C order, one
//! vector per row. A small parser of the header's Python dict literal; no other dtype.
//! (`npyz` would pull in a Python-literal parser for the same three fields.)

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Rows of an `.npy` file, streamed.
pub(super) struct Npy {
    reader: BufReader<File>,
    path: String,
    rows: u64,
    dim: usize,
    row: u64,
}

impl Npy {
    /// Open `path` and check its header: dtype `<f4`, C order, 2-D, and a size that holds
    /// every row.
    pub(super) fn open(path: &Path) -> Result<Npy> {
        let name = path.display().to_string();
        let f = File::open(path).with_context(|| format!("open {name}"))?;
        let len = f.metadata().with_context(|| format!("stat {name}"))?.len();
        let mut reader = BufReader::with_capacity(1 << 20, f);
        let header = read_header(&mut reader).map_err(|e| anyhow!("{name}: {e}"))?;
        let (rows, dim) = parse_header(&header.text).map_err(|e| anyhow!("{name}: {e}"))?;
        let want = header.len + rows * dim * 4;
        if len < want {
            let whole = (len.saturating_sub(header.len)) / (dim * 4).max(1);
            bail!(
                "{name}: truncated: the header promises {rows} rows of {dim} float32 \
                 ({want} bytes) but the file has {len} bytes; row {whole} is incomplete"
            );
        }
        Ok(Npy {
            reader,
            path: name,
            rows,
            dim: dim as usize,
            row: 0,
        })
    }

    /// The number of rows the header declares.
    pub(super) fn rows(&self) -> u64 {
        self.rows
    }
}

impl Iterator for Npy {
    type Item = Result<Vec<f32>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.row == self.rows {
            return None;
        }
        let mut buf = vec![0u8; self.dim * 4];
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

struct Header {
    text: String,
    /// Bytes before the data: magic, version, length, dict.
    len: u64,
}

fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut start = [0u8; 8];
    r.read_exact(&mut start)
        .map_err(|_| anyhow!("not an .npy file: shorter than its magic"))?;
    if &start[..6] != MAGIC {
        bail!("not an .npy file: no \\x93NUMPY magic");
    }
    let (dict_len, prefix) = match start[6] {
        1 => {
            let mut n = [0u8; 2];
            r.read_exact(&mut n)
                .map_err(|_| anyhow!("truncated header"))?;
            (u16::from_le_bytes(n) as u64, 10)
        }
        2 | 3 => {
            let mut n = [0u8; 4];
            r.read_exact(&mut n)
                .map_err(|_| anyhow!("truncated header"))?;
            (u32::from_le_bytes(n) as u64, 12)
        }
        v => bail!("unsupported .npy format version {v}"),
    };
    if dict_len > 1 << 20 {
        bail!("header of {dict_len} bytes is implausibly long");
    }
    let mut dict = vec![0u8; dict_len as usize];
    r.read_exact(&mut dict)
        .map_err(|_| anyhow!("truncated header"))?;
    let text = String::from_utf8(dict).map_err(|_| anyhow!("header is not text"))?;
    Ok(Header {
        text,
        len: prefix + dict_len,
    })
}

/// `(rows, dim)` from `{'descr': '<f4', 'fortran_order': False, 'shape': (R, D), }`.
fn parse_header(text: &str) -> Result<(u64, u64)> {
    let descr = field(text, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if descr != "<f4" {
        bail!(
            "dtype {descr:?} is not supported: vectors must be little-endian float32 \
             ('<f4'; numpy: arr.astype(np.float32))"
        );
    }
    match field(text, "fortran_order")? {
        "False" => {}
        "True" => bail!("Fortran-ordered arrays are not supported (numpy: np.ascontiguousarray)"),
        other => bail!("bad fortran_order {other:?}"),
    }
    let shape = field(text, "shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| anyhow!("bad shape {shape:?}"))?;
    let dims: Vec<u64> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| anyhow!("bad shape {shape:?}")))
        .collect::<Result<_>>()?;
    match dims[..] {
        [rows, dim] if dim > 0 => Ok((rows, dim)),
        _ => bail!("shape {shape} is not 2-D (rows, dimension) with a dimension of at least 1"),
    }
}

/// The value text of `'key': value` in the header dict: a quoted string, a tuple or a word.
fn field<'a>(text: &'a str, key: &str) -> Result<&'a str> {
    let missing = || anyhow!("header has no {key:?}");
    let at = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))
        .ok_or_else(missing)?;
    let rest = text[at + key.len() + 2..].trim_start();
    let rest = rest.strip_prefix(':').ok_or_else(missing)?.trim_start();
    let end = match rest.chars().next() {
        Some('(') => rest.find(')').map(|i| i + 1),
        Some(q @ ('\'' | '"')) => rest[1..].find(q).map(|i| i + 2),
        Some(_) => rest.find([',', '}']),
        None => None,
    };
    end.map(|e| rest[..e].trim())
        .ok_or_else(|| anyhow!("header value of {key:?} is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_numpy_writes_parse() {
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }";
        assert_eq!(parse_header(h).unwrap(), (1000, 128));
        let h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
        assert!(parse_header(h).unwrap_err().to_string().contains("float32"));
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
        assert!(parse_header(h).unwrap_err().to_string().contains("2-D"));
        let h = "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }";
        assert!(parse_header(h).unwrap_err().to_string().contains("Fortran"));
    }
}
