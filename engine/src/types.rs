//! The data model: keys, typed metadata, points, metrics, search requests and hits.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::filter::Filter;

/// A point's primary key: an unsigned 64-bit integer or a UTF-8 string.
///
/// Keys order integers before strings, integers numerically and strings bytewise; this is
/// the deterministic tie-break between hits with equal scores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    /// An integer key.
    Int(u64),
    /// A string key (at most [`limits::MAX_KEY_BYTES`] bytes).
    Str(String),
}

impl Key {
    /// The key as JSON: a number for integer keys, a string otherwise.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Key::Int(v) => serde_json::Value::from(*v),
            Key::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }

    /// Parse a JSON key: a non-negative integer or a string.
    pub fn from_json(v: &serde_json::Value) -> Result<Key> {
        match v {
            serde_json::Value::Number(n) => n.as_u64().map(Key::Int).ok_or_else(|| {
                Error::invalid(format!("key {n} is not an unsigned 64-bit integer"))
            }),
            serde_json::Value::String(s) => Ok(Key::Str(s.clone())),
            other => Err(Error::invalid(format!(
                "key must be a string or an unsigned integer, got {other}"
            ))),
        }
    }

    /// Parse a key given on a command line: digits make an integer key, anything else a
    /// string key.
    pub fn parse_cli(s: &str) -> Key {
        s.parse::<u64>()
            .map(Key::Int)
            .unwrap_or_else(|_| Key::Str(s.to_string()))
    }

    /// Bytes fed to the cluster's stable partitioning hash.
    pub fn hash_bytes(&self) -> Vec<u8> {
        match self {
            Key::Int(v) => {
                let mut b = vec![0u8];
                b.extend_from_slice(&v.to_le_bytes());
                b
            }
            Key::Str(s) => {
                let mut b = vec![1u8];
                b.extend_from_slice(s.as_bytes());
                b
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(v) => write!(f, "{v}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<u64> for Key {
    fn from(v: u64) -> Self {
        Key::Int(v)
    }
}

impl From<&str> for Key {
    fn from(v: &str) -> Self {
        Key::Str(v.to_string())
    }
}

impl From<String> for Key {
    fn from(v: String) -> Self {
        Key::Str(v)
    }
}

/// A typed, filterable metadata value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A list of strings (`eq`/`in` match any element).
    StrList(Vec<String>),
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(v) => (*v).into(),
            Value::Float(v) => (*v).into(),
            Value::Str(v) => v.as_str().into(),
            Value::Bool(v) => (*v).into(),
            Value::StrList(v) => v.clone().into(),
        }
    }

    /// Parse a JSON metadata value; `field` names it in errors.
    pub fn from_json(field: &str, v: &serde_json::Value) -> Result<Value> {
        use serde_json::Value as J;
        match v {
            J::Bool(b) => Ok(Value::Bool(*b)),
            J::String(s) => Ok(Value::Str(s.clone())),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::Int(i))
                } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                    Ok(Value::Float(f))
                } else {
                    Err(Error::invalid(format!(
                        "metadata field {field:?}: number {n} out of range"
                    )))
                }
            }
            J::Array(items) => items
                .iter()
                .map(|i| match i {
                    J::String(s) => Ok(s.clone()),
                    other => Err(Error::invalid(format!(
                        "metadata field {field:?}: lists may hold only strings, found {other}"
                    ))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Value::StrList),
            other => Err(Error::invalid(format!(
                "metadata field {field:?}: unsupported value {other} (use int, float, string, bool or list of strings)"
            ))),
        }
    }

    /// Numeric view for range comparisons.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// Total order between two values of comparable types (numbers with numbers, strings
    /// with strings, bools with bools); `None` across types.
    pub(crate) fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }
}

/// Typed metadata of one point, by field name.
pub type Metadata = BTreeMap<String, Value>;

/// Parse a JSON object into [`Metadata`].
pub fn metadata_from_json(v: &serde_json::Value) -> Result<Metadata> {
    match v {
        serde_json::Value::Null => Ok(Metadata::new()),
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), Value::from_json(k, v)?)))
            .collect(),
        other => Err(Error::invalid(format!(
            "metadata must be a JSON object, got {other}"
        ))),
    }
}

/// [`Metadata`] as a JSON object.
pub fn metadata_to_json(m: &Metadata) -> serde_json::Value {
    serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// One stored point.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Primary key; an upsert with an existing key replaces that point.
    pub key: Key,
    /// The vector; its length must equal the shard's dimension.
    pub vector: Vec<f32>,
    /// Filterable metadata.
    pub metadata: Metadata,
    /// Opaque payload returned with results, never filtered on.
    pub payload: Vec<u8>,
}

impl Default for Key {
    fn default() -> Self {
        Key::Int(0)
    }
}

impl Point {
    /// A point with a key and a vector and nothing else.
    pub fn new(key: impl Into<Key>, vector: Vec<f32>) -> Self {
        Point {
            key: key.into(),
            vector,
            ..Default::default()
        }
    }

    /// Builder: add a metadata field.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.metadata.insert(field.to_string(), value);
        self
    }

    /// Builder: set the payload.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }
}

/// The distance used to rank points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance; the score is the squared distance, lower is better.
    L2,
    /// Cosine similarity; vectors are normalised on write; score in [-1, 1], higher is better.
    Cosine,
    /// Inner product; the score is the dot product, higher is better.
    Dot,
}

impl Metric {
    /// The lower-case name (`l2`, `cosine`, `dot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        }
    }

    /// Convert an internal distance (lower is better) to the user-facing score.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::L2 => distance,
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
        }
    }

    /// Whether a higher score is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Metric> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclid" | "euclidean" => Ok(Metric::L2),
            "cosine" | "cos" => Ok(Metric::Cosine),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            other => Err(Error::invalid(format!(
                "unknown metric {other:?} (expected l2, cosine or dot)"
            ))),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A k-nearest-neighbour query.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// The query vector.
    pub vector: Vec<f32>,
    /// How many hits to return (at most [`limits::MAX_K`]).
    pub k: usize,
    /// Only points whose metadata matches are returned.
    pub filter: Option<Filter>,
    /// Search width for approximate search; `None` uses the shard's default.
    pub ef: Option<usize>,
    /// Exact (brute-force) search instead of the ANN index.
    pub exact: bool,
    /// Return each hit's metadata.
    pub with_metadata: bool,
    /// Return each hit's payload.
    pub with_payload: bool,
    /// Return each hit's vector.
    pub with_vector: bool,
}

impl SearchRequest {
    /// A request for the `k` nearest neighbours of `vector`.
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            k,
            ..Default::default()
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The point's key.
    pub key: Key,
    /// The score under the shard's metric (see [`Metric`] for its direction).
    pub score: f32,
    /// Internal distance, lower is better (`score` converted); used to merge across shards.
    pub distance: f32,
    /// Metadata when requested.
    pub metadata: Option<Metadata>,
    /// Payload when requested.
    pub payload: Option<Vec<u8>>,
    /// Vector when requested (normalised for cosine shards).
    pub vector: Option<Vec<f32>>,
}

/// Order hits best first: by distance, then by key.
pub fn hit_order(a: &Hit, b: &Hit) -> Ordering {
    a.distance
        .total_cmp(&b.distance)
        .then_with(|| a.key.cmp(&b.key))
}

/// Limits on request sizes; requests beyond them get an invalid-argument error.
pub mod limits {
    /// Largest supported dimension.
    pub const MAX_DIM: usize = 16_384;
    /// Longest string key, in bytes.
    pub const MAX_KEY_BYTES: usize = 1_024;
    /// Largest payload, in bytes.
    pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
    /// Largest encoded metadata of one point, in bytes.
    pub const MAX_METADATA_BYTES: usize = 64 << 10;
    /// Most points in one upsert or delete batch.
    pub const MAX_BATCH_POINTS: usize = 100_000;
    /// Largest `k`.
    pub const MAX_K: usize = 10_000;
    /// Largest `ef`.
    pub const MAX_EF: usize = 100_000;
}
