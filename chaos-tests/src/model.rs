//! What the workload writes: every upsert of every point carries a unique write id `w`,
//! and the point's vector, metadata and payload are functions of `w` alone. A point read
//! back therefore names the write it came from, and any other content is damage.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use vecshard_proto::v1 as pb;

/// Dimension of the vectors.
pub const DIM: usize = 8;

/// A primary key of the model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Key {
    Int(u64),
    Str(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(v) => write!(f, "{v}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Key {
    pub fn to_pb(&self) -> pb::Key {
        let kind = match self {
            Key::Int(v) => pb::key::Kind::Int(*v),
            Key::Str(s) => pb::key::Kind::Str(s.clone()),
        };
        pb::Key { kind: Some(kind) }
    }

    pub fn from_pb(k: Option<&pb::Key>) -> Result<Key, String> {
        match k.and_then(|k| k.kind.as_ref()) {
            Some(pb::key::Kind::Int(v)) => Ok(Key::Int(*v)),
            Some(pb::key::Kind::Str(s)) => Ok(Key::Str(s.clone())),
            None => Err("a point without a key".into()),
        }
    }
}

/// A key of one collection of the run (`coll` indexes the run's collections).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DataKey {
    pub coll: usize,
    pub key: Key,
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "collection #{} key {}", self.coll, self.key)
    }
}

/// splitmix64: a well-mixed 64-bit function of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The vector of write `w`: values on a 1/4096 grid in [-1, 1), exact in f32.
pub fn vector(w: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| (mix(w.wrapping_mul(31).wrapping_add(d)) % 8192) as f32 / 4096.0 - 1.0)
        .collect()
}

/// The client that made write `w` (ids are `client << 32 | sequence`).
pub fn client_of(w: u64) -> u64 {
    w >> 32
}

fn int(v: i64) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::IntValue(v)),
    }
}

/// The metadata of write `w`: its id, its client (filtered on by searches) and a tag.
pub fn metadata(w: u64) -> HashMap<String, pb::Value> {
    let tag = pb::Value {
        kind: Some(pb::value::Kind::StringValue(format!("t{}", mix(w) % 7))),
    };
    [
        ("w".to_string(), int(w as i64)),
        ("client".to_string(), int(client_of(w) as i64)),
        ("tag".to_string(), tag),
    ]
    .into()
}

/// The payload of write `w`.
pub fn payload(w: u64) -> Vec<u8> {
    format!("{{\"w\":{w}}}").into_bytes()
}

/// The point that write `w` stores under `key`.
pub fn point(key: &Key, w: u64) -> pb::Point {
    pb::Point {
        key: Some(key.to_pb()),
        vector: vector(w),
        metadata: metadata(w),
        payload: payload(w),
        ..Default::default()
    }
}

/// The write id a point or hit names in its metadata.
pub fn write_id(metadata: &HashMap<String, pb::Value>) -> Result<u64, String> {
    match metadata.get("w").and_then(|v| v.kind.as_ref()) {
        Some(pb::value::Kind::IntValue(w)) => Ok(*w as u64),
        other => Err(format!("metadata field \"w\" is {other:?}, not a write id")),
    }
}

/// A point as read back: its key, the write it names and whether its contents are exactly
/// that write's (`damage` says what differs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub key: Key,
    pub w: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
}

impl Seen {
    /// Decode a point read back (with vector, metadata and payload).
    pub fn of_point(p: &pb::Point) -> Result<Seen, String> {
        let key = Key::from_pb(p.key.as_ref())?;
        let w = write_id(&p.metadata).map_err(|e| format!("key {key}: {e}"))?;
        let mut damage = Vec::new();
        if p.vector != vector(w) {
            damage.push(format!(
                "vector {:?}, write {w} stored {:?}",
                p.vector,
                vector(w)
            ));
        }
        if p.metadata != metadata(w) {
            damage.push(format!("metadata {:?}", p.metadata));
        }
        if p.payload != payload(w) {
            damage.push(format!("payload {:?}", String::from_utf8_lossy(&p.payload)));
        }
        Ok(Seen {
            key,
            w,
            damage: (!damage.is_empty()).then(|| damage.join("; ")),
        })
    }
}

/// Squared L2 distance in f64 (the engine's `l2` score).
pub fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_names_its_write_and_damage_is_seen() {
        let k = Key::Str("k7".into());
        let p = point(&k, 42 | (3 << 32));
        let seen = Seen::of_point(&p).unwrap();
        assert_eq!((seen.key.clone(), seen.w), (k.clone(), 42 | (3 << 32)));
        assert_eq!(seen.damage, None);
        assert_eq!(client_of(seen.w), 3);
        let mut bad = p.clone();
        bad.vector[2] += 0.5;
        assert!(Seen::of_point(&bad).unwrap().damage.is_some());
        let mut bad = p;
        bad.payload.clear();
        assert!(Seen::of_point(&bad).unwrap().damage.is_some());
        assert_ne!(vector(1), vector(2));
    }
}
