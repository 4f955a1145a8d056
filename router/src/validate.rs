//! Checks on client input before anything is sent to a node. Each error says what is
//! wrong and where (which point, which field).

use prost::Message;
use vecshard_proto::v1::{Key, Point, key, value};

use crate::error::{Error, Result};
use crate::shardmap::{CollectionSpec, Metric};

/// Limits of the public API (see `vecshard.proto`).
pub mod limits {
    /// Longest collection name.
    pub const MAX_NAME_LEN: usize = 255;
    /// Largest dimension.
    pub const MAX_DIM: u32 = 16_384;
    /// Most shards of a collection.
    pub const MAX_SHARDS: u32 = 4096;
    /// Longest string key, bytes.
    pub const MAX_KEY_BYTES: usize = 1024;
    /// Largest payload, bytes.
    pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
    /// Largest encoded metadata of a point, bytes.
    pub const MAX_METADATA_BYTES: usize = 64 << 10;
    /// Most points or keys in one request.
    pub const MAX_BATCH: usize = 100_000;
    /// Largest k.
    pub const MAX_K: u32 = 10_000;
    /// Largest ef.
    pub const MAX_EF: u32 = 100_000;
    /// Largest scan page.
    pub const MAX_SCAN_LIMIT: u32 = 10_000;
    /// Scan page when the request says 0.
    pub const DEFAULT_SCAN_LIMIT: u32 = 1000;
}

/// A collection name: 1 to 255 of letters, digits, `_` and `-`.
pub fn collection_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > limits::MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "collection name must have 1 to {} characters, got {}",
            limits::MAX_NAME_LEN,
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::invalid(format!(
            "collection name {name:?} contains {c:?}; use letters, digits, '_' and '-'"
        )));
    }
    Ok(())
}

/// A key: set, and a string key at most 1024 bytes.
pub fn key(k: Option<&Key>, at: &dyn std::fmt::Display) -> Result<()> {
    match k.and_then(|k| k.kind.as_ref()) {
        None => Err(Error::invalid(format!("{at}: key is missing"))),
        Some(key::Kind::Str(s)) if s.len() > limits::MAX_KEY_BYTES => Err(Error::invalid(format!(
            "{at}: string key has {} bytes, the limit is {}",
            s.len(),
            limits::MAX_KEY_BYTES
        ))),
        Some(_) => Ok(()),
    }
}

/// The number of items in a batch: 1 to 100000.
pub fn batch_len(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(format!("empty {what} batch")));
    }
    if n > limits::MAX_BATCH {
        return Err(Error::invalid(format!(
            "{what} batch of {n} exceeds the limit of {}",
            limits::MAX_BATCH
        )));
    }
    Ok(())
}

/// A vector for `spec`: right length, finite, non-zero for cosine.
pub fn vector(v: &[f32], spec: &CollectionSpec, what: &dyn std::fmt::Display) -> Result<()> {
    if v.len() != spec.dimension as usize {
        return Err(Error::invalid(format!(
            "{what} has dimension {}, collection {:?} has dimension {}",
            v.len(),
            spec.name,
            spec.dimension
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(format!(
            "{what} has a non-finite value ({}) at index {i}",
            v[i]
        )));
    }
    if spec.metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
        return Err(Error::invalid(format!(
            "{what} has zero length; cosine needs a non-zero vector"
        )));
    }
    Ok(())
}

/// Every point of an upsert batch for `spec`.
pub fn points(points: &[Point], spec: &CollectionSpec) -> Result<()> {
    batch_len(points.len(), "upsert")?;
    for (i, p) in points.iter().enumerate() {
        point(p, spec, i)?;
    }
    Ok(())
}

fn point(p: &Point, spec: &CollectionSpec, i: usize) -> Result<()> {
    let at = format!("points[{i}]");
    key(p.key.as_ref(), &at)?;
    vector(&p.vector, spec, &format_args!("{at}.vector"))?;
    if p.payload.len() > limits::MAX_PAYLOAD_BYTES {
        return Err(Error::invalid(format!(
            "{at}: payload has {} bytes, the limit is {}",
            p.payload.len(),
            limits::MAX_PAYLOAD_BYTES
        )));
    }
    for (field, v) in &p.metadata {
        if field.is_empty() {
            return Err(Error::invalid(format!(
                "{at}: metadata has an empty field name"
            )));
        }
        match &v.kind {
            None => {
                return Err(Error::invalid(format!(
                    "{at}: metadata field {field:?} has no value"
                )));
            }
            Some(value::Kind::FloatValue(f)) if !f.is_finite() => {
                return Err(Error::invalid(format!(
                    "{at}: metadata field {field:?} is not finite"
                )));
            }
            Some(_) => {}
        }
    }
    let size: usize = p
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.encoded_len() + 4)
        .sum();
    if size > limits::MAX_METADATA_BYTES {
        return Err(Error::invalid(format!(
            "{at}: metadata has about {size} bytes encoded, the limit is {}",
            limits::MAX_METADATA_BYTES
        )));
    }
    Ok(())
}

/// Every key of a delete or get batch.
pub fn keys(keys: &[Key], what: &str) -> Result<()> {
    batch_len(keys.len(), what)?;
    keys.iter()
        .enumerate()
        .try_for_each(|(i, k)| key(Some(k), &format_args!("keys[{i}]")))
}

/// Search parameters: k in 1..=10000, ef (when set) in 1..=100000.
pub fn search_params(k: u32, ef: Option<u32>) -> Result<()> {
    if !(1..=limits::MAX_K).contains(&k) {
        return Err(Error::invalid(format!(
            "k must be in 1..={}, got {k}",
            limits::MAX_K
        )));
    }
    if let Some(ef) = ef
        && !(1..=limits::MAX_EF).contains(&ef)
    {
        return Err(Error::invalid(format!(
            "ef must be in 1..={}, got {ef}",
            limits::MAX_EF
        )));
    }
    Ok(())
}
