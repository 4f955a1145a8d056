//! Every rule on input, once. Each check returns a [`ValidationError`] whose field is
//! relative to what was checked (`vector`, `payload`, `metadata.price`); callers place it
//! with [`ValidationError::within`] (`points[3]`, `key 17`).

use crate::error::{Result, ValidationError, ValidationKind as K};
use crate::filter::Filter;
use crate::index::IndexParams;
use crate::key::Key;
use crate::limits;
use crate::metric::Metric;
use crate::point::Point;
use crate::value::{Metadata, Value};

fn err(kind: K, field: impl Into<String>, msg: impl Into<String>) -> ValidationError {
    ValidationError::new(kind, field, msg)
}

/// A collection name: 1 to 255 of ASCII letters, digits, `_` and `-` (it becomes a
/// directory name, so nothing else is allowed).
pub fn collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > limits::MAX_NAME_LEN {
        return Err(err(
            K::BadName,
            "collection",
            format!(
                "collection name must have 1 to {} characters, got {}",
                limits::MAX_NAME_LEN,
                name.len()
            ),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(err(
            K::BadName,
            "collection",
            format!("collection name {name:?} contains {c:?}; use letters, digits, '_' and '-'"),
        ));
    }
    Ok(())
}

/// A node's failure zone label (`node.zone`): empty (none), or at most 64 ASCII letters,
/// digits, `-`, `_` and `.`.
pub fn zone(z: &str) -> Result<()> {
    if z.len() > 64
        || !z
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(err(
            K::BadName,
            "zone",
            format!("zone {z:?} must be at most 64 letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(())
}

/// A key: a string key has 1 to [`limits::MAX_KEY_BYTES`] bytes.
pub fn key(k: &Key) -> Result<()> {
    if let Key::Str(s) = k {
        if s.is_empty() {
            return Err(err(K::Missing, "key", "string keys must not be empty"));
        }
        if s.len() > limits::MAX_KEY_BYTES {
            return Err(err(
                K::TooLarge,
                "key",
                format!(
                    "string key has {} bytes, the limit is {}",
                    s.len(),
                    limits::MAX_KEY_BYTES
                ),
            ));
        }
    }
    Ok(())
}

/// A vector for a collection of `dim` and `metric`: the right length, finite values, and
/// not all zero under cosine (it has no direction to normalise to).
pub fn vector(v: &[f32], dim: usize, metric: Metric) -> Result<()> {
    if v.len() != dim {
        return Err(err(
            K::Dimension,
            "vector",
            format!(
                "dimension {} does not match the collection's dimension {dim}",
                v.len()
            ),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(err(
            K::NotFinite,
            "vector",
            format!("non-finite value ({}) at index {i}", v[i]),
        ));
    }
    if metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
        return Err(err(
            K::ZeroVector,
            "vector",
            "zero vector; cosine needs a non-zero vector",
        ));
    }
    Ok(())
}

/// A packed vector (`vector_f32le`: little-endian float32, 4 bytes per component) for a
/// collection of `dim` and `metric`: the same rules as [`vector`], checked on the bytes
/// without decoding them into a new vector.
pub fn vector_f32le(b: &[u8], dim: usize, metric: Metric) -> Result<()> {
    let field = "vector_f32le";
    if !b.len().is_multiple_of(4) {
        return Err(err(
            K::Malformed,
            field,
            format!(
                "{} bytes is not a whole number of float32 components (4 bytes each)",
                b.len()
            ),
        ));
    }
    if b.len() / 4 != dim {
        return Err(err(
            K::Dimension,
            field,
            format!(
                "dimension {} ({} bytes) does not match the collection's dimension {dim}",
                b.len() / 4,
                b.len()
            ),
        ));
    }
    let mut all_zero = true;
    for (i, c) in b.chunks_exact(4).enumerate() {
        let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !x.is_finite() {
            return Err(err(
                K::NotFinite,
                field,
                format!("non-finite value ({x}) at index {i}"),
            ));
        }
        all_zero &= x == 0.0;
    }
    if metric == Metric::Cosine && all_zero {
        return Err(err(
            K::ZeroVector,
            field,
            "zero vector; cosine needs a non-zero vector",
        ));
    }
    Ok(())
}

/// Decode a packed vector (little-endian float32); the byte length must be a multiple of
/// 4 (values are not checked: see [`vector`]).
pub fn decode_f32le(b: &[u8]) -> Result<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return Err(err(
            K::Malformed,
            "vector_f32le",
            format!(
                "{} bytes is not a whole number of float32 components (4 bytes each)",
                b.len()
            ),
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A vector given either as floats or packed (`vector_f32le`): at most one of the two may
/// be set. Returns whether the packed form is used.
pub fn one_vector_form(floats: usize, packed: usize) -> Result<bool> {
    if floats > 0 && packed > 0 {
        return Err(err(
            K::Malformed,
            "vector_f32le",
            "both vector and vector_f32le are set; set exactly one of them",
        ));
    }
    Ok(packed > 0)
}

/// Scale `v` to unit length in place (the norm is taken in f64, so any finite non-zero
/// vector — however tiny or huge its values — normalises); `false` for a zero or
/// non-finite vector, which [`vector`] rejects before.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    v.iter_mut()
        .for_each(|x| *x = (f64::from(*x) / norm) as f32);
    true
}

/// A payload of `len` bytes.
pub fn payload_len(len: usize) -> Result<()> {
    if len > limits::MAX_PAYLOAD_BYTES {
        return Err(err(
            K::TooLarge,
            "payload",
            format!(
                "payload has {len} bytes, the limit is {}",
                limits::MAX_PAYLOAD_BYTES
            ),
        ));
    }
    Ok(())
}

/// One metadata field: a non-empty name and a finite value.
pub fn metadata_field(field: &str, v: &Value) -> Result<()> {
    if field.is_empty() {
        return Err(err(
            K::Missing,
            "metadata",
            "metadata has an empty field name",
        ));
    }
    if let Value::Float(f) = v
        && !f.is_finite()
    {
        return Err(err(
            K::NotFinite,
            format!("metadata.{field}"),
            format!("metadata field {field:?} is not finite ({f})"),
        ));
    }
    Ok(())
}

/// Bytes one metadata entry takes as stored (postcard: length-prefixed strings, varint
/// tags and integers, 8-byte floats).
pub fn metadata_entry_len(field: &str, v: &Value) -> usize {
    fn varint(n: u64) -> usize {
        (64 - n.max(1).leading_zeros() as usize).div_ceil(7)
    }
    let s = |s: &str| varint(s.len() as u64) + s.len();
    let value = match v {
        Value::Int(i) => varint(((i << 1) ^ (i >> 63)) as u64),
        Value::Float(_) => 8,
        Value::Str(x) => s(x),
        Value::Bool(_) => 1,
        Value::StrList(l) => varint(l.len() as u64) + l.iter().map(|x| s(x)).sum::<usize>(),
    };
    s(field) + 1 + value
}

/// Bytes a point's metadata takes as stored; at most [`limits::MAX_METADATA_BYTES`].
pub fn metadata_len(m: &Metadata) -> usize {
    if m.is_empty() {
        return 0;
    }
    let n = m.len() as u64;
    (64 - n.leading_zeros() as usize).div_ceil(7)
        + m.iter()
            .map(|(k, v)| metadata_entry_len(k, v))
            .sum::<usize>()
}

/// The error for metadata of `len` bytes when that is over the limit.
pub fn metadata_size(len: usize) -> Result<()> {
    if len > limits::MAX_METADATA_BYTES {
        return Err(err(
            K::TooLarge,
            "metadata",
            format!(
                "metadata has {len} bytes encoded, the limit is {}",
                limits::MAX_METADATA_BYTES
            ),
        ));
    }
    Ok(())
}

/// A point's metadata: every field valid, the whole within the size limit.
pub fn metadata(m: &Metadata) -> Result<()> {
    m.iter().try_for_each(|(k, v)| metadata_field(k, v))?;
    metadata_size(metadata_len(m))
}

/// A point for a collection of `dim` and `metric` (the vector is not normalised here).
pub fn point(p: &Point, dim: usize, metric: Metric) -> Result<()> {
    key(&p.key)?;
    vector(&p.vector, dim, metric)?;
    payload_len(p.payload.len())?;
    metadata(&p.metadata)
}

/// The number of items of an upsert, delete or get batch: 1 to [`limits::MAX_BATCH`].
pub fn batch_len(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(err(K::Missing, "", format!("empty {what} batch")));
    }
    if n > limits::MAX_BATCH {
        return Err(err(
            K::TooLarge,
            "",
            format!(
                "{what} batch of {n} exceeds the limit of {}",
                limits::MAX_BATCH
            ),
        ));
    }
    Ok(())
}

/// Paging of a search: `k + offset` at most [`limits::MAX_K`] (the shards return that many).
pub fn search_offset(k: usize, offset: usize) -> Result<()> {
    if k.saturating_add(offset) > limits::MAX_K {
        return Err(err(
            K::OutOfRange,
            "offset",
            format!(
                "k + offset must be at most {}, got {k} + {offset}",
                limits::MAX_K
            ),
        ));
    }
    Ok(())
}

/// The number of searches in one batch: 1 to [`limits::MAX_SEARCH_BATCH`].
pub fn search_batch_len(n: usize) -> Result<()> {
    if n == 0 {
        return Err(err(K::Missing, "searches", "empty search batch"));
    }
    if n > limits::MAX_SEARCH_BATCH {
        return Err(err(
            K::TooLarge,
            "searches",
            format!(
                "search batch of {n} exceeds the limit of {}",
                limits::MAX_SEARCH_BATCH
            ),
        ));
    }
    Ok(())
}

/// Search parameters: `k` in 1..=[`limits::MAX_K`], `ef` (when set) in 1..=[`limits::MAX_EF`].
pub fn search_params(k: usize, ef: Option<usize>) -> Result<()> {
    if !(1..=limits::MAX_K).contains(&k) {
        return Err(err(
            K::OutOfRange,
            "k",
            format!("must be in 1..={}, got {k}", limits::MAX_K),
        ));
    }
    if let Some(ef) = ef
        && !(1..=limits::MAX_EF).contains(&ef)
    {
        return Err(err(
            K::OutOfRange,
            "ef",
            format!("must be in 1..={}, got {ef}", limits::MAX_EF),
        ));
    }
    Ok(())
}

/// A dimension: 1 to [`limits::MAX_DIM`].
pub fn dimension(dim: usize) -> Result<()> {
    if dim == 0 || dim > limits::MAX_DIM {
        return Err(err(
            K::OutOfRange,
            "dimension",
            format!("dimension {dim} out of range 1..={}", limits::MAX_DIM),
        ));
    }
    Ok(())
}

/// A shard count: 1 to [`limits::MAX_SHARDS`].
pub fn shard_count(n: u32) -> Result<()> {
    if !(1..=limits::MAX_SHARDS).contains(&n) {
        return Err(err(
            K::OutOfRange,
            "shard_count",
            format!("must be in 1..={}, got {n}", limits::MAX_SHARDS),
        ));
    }
    Ok(())
}

/// Index parameters: `m` in [`limits::INDEX_M`], `ef_construction` and `ef_search` in
/// 1..=[`limits::MAX_EF`].
pub fn index_params(p: &IndexParams) -> Result<()> {
    if !limits::INDEX_M.contains(&p.m)
        || !(1..=limits::MAX_EF).contains(&p.ef_construction)
        || p.ef_search == 0
        || p.ef_search > limits::MAX_EF
    {
        return Err(err(
            K::OutOfRange,
            "index",
            format!(
                "index parameters out of range: m={} ({}..={}), ef_construction={} and ef_search={} (1..={})",
                p.m,
                limits::INDEX_M.start(),
                limits::INDEX_M.end(),
                p.ef_construction,
                p.ef_search,
                limits::MAX_EF
            ),
        ));
    }
    Ok(())
}

/// A filter's structure: depth at most [`limits::MAX_FILTER_DEPTH`], at most
/// [`limits::MAX_FILTER_BREADTH`] sub-filters per `and`/`or`, at most
/// [`limits::MAX_IN_VALUES`] values per `in`, named fields, finite numbers, ranges with at
/// least one bound and no list bounds.
pub fn filter(f: &Filter) -> Result<()> {
    check_filter(f, 1).map_err(|e| e.within("filter"))
}

fn malformed(field: impl Into<String>, msg: impl Into<String>) -> ValidationError {
    err(K::Malformed, field, msg)
}

fn check_filter(f: &Filter, depth: usize) -> Result<()> {
    if depth > limits::MAX_FILTER_DEPTH {
        return Err(err(
            K::TooLarge,
            "",
            format!(
                "malformed filter: nested deeper than {} levels",
                limits::MAX_FILTER_DEPTH
            ),
        ));
    }
    let list = |fs: &[Filter], op: &str| {
        if fs.len() > limits::MAX_FILTER_BREADTH {
            return Err(err(
                K::TooLarge,
                op,
                format!(
                    "malformed filter: {op} has {} sub-filters, the limit is {}",
                    fs.len(),
                    limits::MAX_FILTER_BREADTH
                ),
            ));
        }
        fs.iter().enumerate().try_for_each(|(i, f)| {
            check_filter(f, depth + 1).map_err(|e| e.within(format!("{op}[{i}]")))
        })
    };
    let field_ok = |field: &str| {
        if field.is_empty() {
            Err(malformed(
                "",
                "malformed filter: \"field\" must be a non-empty string",
            ))
        } else {
            Ok(())
        }
    };
    let value_ok = |v: &Value, at: &str| match v {
        Value::Float(x) if !x.is_finite() => Err(err(
            K::NotFinite,
            at,
            format!("malformed filter: value {x} is not finite"),
        )),
        _ => Ok(()),
    };
    match f {
        Filter::And(fs) => list(fs, "and"),
        Filter::Or(fs) => list(fs, "or"),
        Filter::Not(inner) => check_filter(inner, depth + 1).map_err(|e| e.within("not")),
        Filter::Eq(field, v) => field_ok(field).and_then(|_| value_ok(v, "eq")),
        Filter::Ne(field, v) => field_ok(field).and_then(|_| value_ok(v, "ne")),
        Filter::In(field, vs) => {
            field_ok(field)?;
            if vs.len() > limits::MAX_IN_VALUES {
                return Err(err(
                    K::TooLarge,
                    "in",
                    format!(
                        "malformed filter: \"in\" has {} values, the limit is {}",
                        vs.len(),
                        limits::MAX_IN_VALUES
                    ),
                ));
            }
            vs.iter().try_for_each(|v| value_ok(v, "in"))
        }
        Filter::Range(field, r) => {
            field_ok(field)?;
            let bounds = [&r.gt, &r.gte, &r.lt, &r.lte];
            if bounds.iter().all(|b| b.is_none()) {
                return Err(malformed(
                    "range",
                    "malformed filter: a range needs at least one of gt, gte, lt, lte",
                ));
            }
            bounds.iter().filter_map(|b| b.as_ref()).try_for_each(|v| {
                if matches!(v, Value::StrList(_)) {
                    return Err(malformed(
                        "range",
                        "malformed filter: range bounds must be numbers, strings or bools",
                    ));
                }
                value_ok(v, "range")
            })
        }
        Filter::Exists(field) => field_ok(field),
    }
}

#[cfg(test)]
mod tests;
