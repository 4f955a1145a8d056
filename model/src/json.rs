//! The JSON grammar of keys, metadata values and points, shared by the REST API and the
//! CLI's JSON-lines files:
//!
//! ```json
//! {"id": 7, "vector": [0.1, 0.2], "metadata": {"color": "red", "tags": ["a"]}, "payload": {"any": "json"}}
//! ```
//!
//! - `id`: an unsigned 64-bit integer or a string; `vector`: numbers; both required.
//! - `metadata`: an object of int, float, string, bool or list-of-strings values (or null).
//! - `payload`: a string is stored as its UTF-8 bytes, `null` as empty, anything else as its
//!   compact JSON text.
//! - **Unknown fields are rejected everywhere** (REST and CLI alike), so a misspelt
//!   `metdata` is an error instead of silently lost data.
//!
//! Points are read straight from the text into the model types — no JSON tree is built —
//! and the limits that bound memory are checked while reading: at most
//! [`limits::MAX_DIM`] vector values, [`limits::MAX_PAYLOAD_BYTES`] of payload,
//! [`limits::MAX_METADATA_BYTES`] of metadata, [`limits::MAX_BATCH`] points. Every error
//! names where it is (`points[3].metadata`).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as J;

use crate::error::{Result, ValidationError, ValidationKind};
use crate::key::Key;
use crate::limits;
use crate::point::Point;
use crate::validate;
use crate::value::{Metadata, Value};

/// A key as JSON: a number for integer keys, a string otherwise.
pub fn key_to_json(k: &Key) -> J {
    match k {
        Key::Int(v) => J::from(*v),
        Key::Str(s) => J::from(s.as_str()),
    }
}

/// A key from JSON: a non-negative integer or a string.
pub fn key_from_json(v: &J) -> Result<Key> {
    KeySeed
        .deserialize(v)
        .map_err(|e| malformed("", e.to_string()))
}

/// A metadata value as JSON.
pub fn value_to_json(v: &Value) -> J {
    match v {
        Value::Int(v) => (*v).into(),
        Value::Float(v) => (*v).into(),
        Value::Str(v) => v.as_str().into(),
        Value::Bool(v) => (*v).into(),
        Value::StrList(v) => v.clone().into(),
    }
}

/// A metadata value from JSON; `field` names it in errors.
pub fn value_from_json(field: &str, v: &J) -> Result<Value> {
    ValueSeed(field)
        .deserialize(v)
        .map_err(|e| malformed("", e.to_string()))
}

/// Metadata as a JSON object, fields in name order.
pub fn metadata_to_json(m: &Metadata) -> J {
    J::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

/// Metadata from a JSON object (`null` is empty).
pub fn metadata_from_json(v: &J) -> Result<Metadata> {
    MetadataSeed
        .deserialize(v)
        .map_err(|e| malformed("metadata", e.to_string()))
}

/// A payload as JSON: parsed when it is JSON, else a (lossy UTF-8) string; empty is `null`.
pub fn payload_to_json(p: &[u8]) -> J {
    if p.is_empty() {
        return J::Null;
    }
    serde_json::from_slice(p).unwrap_or_else(|_| J::String(String::from_utf8_lossy(p).into_owned()))
}

/// A point as JSON.
pub fn point_to_json(p: &Point) -> J {
    serde_json::json!({
        "id": key_to_json(&p.key),
        "vector": p.vector,
        "metadata": metadata_to_json(&p.metadata),
        "payload": payload_to_json(&p.payload),
    })
}

/// One point from JSON text (a line of an import file).
pub fn point_from_str(text: &str) -> Result<Point> {
    let path = Path::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let r = PointSeed(&path)
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|_| p));
    r.map_err(|e| located(&path, &e))
}

/// The body of an upsert, `{"points": [ … ]}`, from JSON bytes.
pub fn points_body_from_slice(body: &[u8]) -> Result<Vec<Point>> {
    let path = Path::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let r = BodySeed(&path)
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|_| p));
    r.map_err(|e| located(&path, &e))
}

fn malformed(field: &str, msg: impl Into<String>) -> ValidationError {
    ValidationError::new(ValidationKind::Malformed, field, msg)
}

/// An error of the JSON reader, located at the part being read when it happened.
fn located(path: &Path, e: &serde_json::Error) -> ValidationError {
    let mut msg = e.to_string();
    if e.line() > 0 {
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        if let Some(stripped) = msg.strip_suffix(&suffix) {
            msg = format!("{stripped} (line {} column {})", e.line(), e.column());
        }
    }
    let field = path.0.borrow().clone();
    let kind = if msg.contains("the limit is") || msg.contains("more than") {
        ValidationKind::TooLarge
    } else {
        ValidationKind::Malformed
    };
    ValidationError::new(kind, field, msg)
}

/// Where the reader is (`points[3].vector`); left as it is when an error unwinds.
#[derive(Default)]
struct Path(RefCell<String>);

impl Path {
    fn set(&self, p: String) {
        *self.0.borrow_mut() = p;
    }
    fn get(&self) -> String {
        self.0.borrow().clone()
    }
}

struct BodySeed<'a>(&'a Path);

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Vec<Point>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<Point>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Vec<Point>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object {\"points\": [ … ]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<Point>, A::Error> {
        let mut points = None;
        while let Some(k) = map.next_key::<String>()? {
            if k != "points" {
                return Err(de::Error::custom(format!(
                    "unknown field {k:?} (expected points)"
                )));
            }
            points = Some(map.next_value_seed(PointsSeed(self.0))?);
        }
        self.0.set(String::new());
        points.ok_or_else(|| de::Error::custom("missing \"points\""))
    }
}

struct PointsSeed<'a>(&'a Path);

impl<'de> DeserializeSeed<'de> for PointsSeed<'_> {
    type Value = Vec<Point>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<Point>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PointsSeed<'_> {
    type Value = Vec<Point>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of points")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<Point>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            self.0.set(format!("points[{}]", out.len()));
            let Some(p) = seq.next_element_seed(PointSeed(self.0))? else {
                break;
            };
            if out.len() == limits::MAX_BATCH {
                self.0.set("points".into());
                return Err(de::Error::custom(format!(
                    "more than {} points; the limit is {}",
                    limits::MAX_BATCH,
                    limits::MAX_BATCH
                )));
            }
            out.push(p);
        }
        self.0.set("points".into());
        Ok(out)
    }
}

struct PointSeed<'a>(&'a Path);

impl<'de> DeserializeSeed<'de> for PointSeed<'_> {
    type Value = Point;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Point, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PointSeed<'_> {
    type Value = Point;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a point object {\"id\": …, \"vector\": […], \"metadata\": {…}, \"payload\": …}",
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Point, A::Error> {
        let base = self.0.get();
        let at = |field: &str| {
            if base.is_empty() {
                field.to_string()
            } else {
                format!("{base}.{field}")
            }
        };
        let (mut key, mut vector) = (None, None);
        let mut p = Point::default();
        while let Some(k) = map.next_key::<String>()? {
            self.0.set(at(&k));
            match k.as_str() {
                "id" => key = Some(map.next_value_seed(KeySeed)?),
                "vector" => vector = Some(map.next_value_seed(VectorSeed)?),
                "metadata" => p.metadata = map.next_value_seed(MetadataSeed)?,
                "payload" => p.payload = map.next_value_seed(PayloadSeed)?,
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field {other:?} (expected id, vector, metadata, payload)"
                    )));
                }
            }
        }
        self.0.set(base.clone());
        p.key = key.ok_or_else(|| de::Error::custom("missing \"id\""))?;
        p.vector = vector.ok_or_else(|| de::Error::custom("missing \"vector\" array"))?;
        Ok(p)
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Key, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key: a string or an unsigned integer")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Key, E> {
        Ok(Key::Int(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Key, E> {
        u64::try_from(v)
            .map(Key::Int)
            .map_err(|_| E::custom(format!("key {v} is not an unsigned 64-bit integer")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Key, E> {
        Err(E::custom(format!(
            "key {v} is not an unsigned 64-bit integer"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key, E> {
        Ok(Key::Str(v.to_string()))
    }
}

struct VectorSeed;

impl<'de> DeserializeSeed<'de> for VectorSeed {
    type Value = Vec<f32>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<f32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for VectorSeed {
    type Value = Vec<f32>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a vector: a list of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<f32>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(limits::MAX_DIM));
        while let Some(Num(x)) = seq.next_element()? {
            if v.len() == limits::MAX_DIM {
                return Err(de::Error::custom(format!(
                    "vector has more than {} values; the limit is the largest dimension, {}",
                    limits::MAX_DIM,
                    limits::MAX_DIM
                )));
            }
            v.push(x as f32);
        }
        Ok(v)
    }
}

/// A JSON number as f64.
struct Num(f64);

impl<'de> de::Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Num, D::Error> {
        d.deserialize_f64(NumVisitor)
    }
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number (vectors hold only numbers)")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Num, E> {
        Ok(Num(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Num, E> {
        Ok(Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Num, E> {
        Ok(Num(v as f64))
    }
}

struct MetadataSeed;

impl<'de> DeserializeSeed<'de> for MetadataSeed {
    type Value = Metadata;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Metadata, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MetadataSeed {
    type Value = Metadata;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("metadata: a JSON object (or null)")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Metadata, E> {
        Ok(Metadata::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Metadata, A::Error> {
        let mut m = Metadata::new();
        let mut size = 1;
        while let Some(field) = map.next_key::<String>()? {
            let v = map.next_value_seed(ValueSeed(&field))?;
            size += validate::metadata_entry_len(&field, &v);
            validate::metadata_size(size).map_err(|e| de::Error::custom(e.message()))?;
            m.insert(field, v);
        }
        Ok(m)
    }
}

struct ValueSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn unsupported<E: de::Error>(&self, what: &str) -> E {
        E::custom(format!(
            "metadata field {:?}: unsupported value {what} (use int, float, string, bool or list of strings)",
            self.0
        ))
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "metadata field {:?}: an int, float, string, bool or list of strings",
            self.0
        )
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom(format!(
                "metadata field {:?}: number {v} out of range",
                self.0
            )))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Value, E> {
        Err(self.unsupported("null"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> std::result::Result<Value, A::Error> {
        Err(self.unsupported("(an object)"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<J>()? {
            match item {
                J::String(s) => items.push(s),
                other => {
                    return Err(de::Error::custom(format!(
                        "metadata field {:?}: lists may hold only strings, found {other}",
                        self.0
                    )));
                }
            }
        }
        Ok(Value::StrList(items))
    }
}

struct PayloadSeed;

impl<'de> DeserializeSeed<'de> for PayloadSeed {
    type Value = Vec<u8>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<u8>, D::Error> {
        let raw = <Box<serde_json::value::RawValue> as de::Deserialize>::deserialize(d)?;
        let text = raw.get();
        let too_large =
            |n: usize| validate::payload_len(n).map_err(|e| de::Error::custom(e.message()));
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(de::Error::custom)?;
            too_large(s.len())?;
            return Ok(s.into_bytes());
        }
        if text == "null" {
            return Ok(Vec::new());
        }
        too_large(text.len())?;
        let tree: J = serde_json::from_str(text).map_err(de::Error::custom)?;
        let compact = tree.to_string().into_bytes();
        too_large(compact.len())?;
        Ok(compact)
    }
}

#[cfg(test)]
mod tests;
