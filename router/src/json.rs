//! The JSON forms of keys, metadata values and points (the same as the engine's and the
//! CLI's JSON lines: `{"id": …, "vector": […], "metadata": {…}, "payload": …}`), converted
//! to and from the proto types.

use std::collections::HashMap;

use serde_json::Value as J;
use vecshard_proto::v1::{Key, Point, StringList, Value, key, value};

use crate::error::{Error, Result};

/// A key from JSON: a non-negative integer or a string.
pub fn key_from_json(v: &J) -> Result<Key> {
    let kind =
        match v {
            J::Number(n) => key::Kind::Int(n.as_u64().ok_or_else(|| {
                Error::invalid(format!("key {n} is not an unsigned 64-bit integer"))
            })?),
            J::String(s) => key::Kind::Str(s.clone()),
            other => {
                return Err(Error::invalid(format!(
                    "a key must be a string or an unsigned integer, got {other}"
                )));
            }
        };
    Ok(Key { kind: Some(kind) })
}

/// A key as JSON (`null` for a key with no kind).
pub fn key_to_json(k: &Key) -> J {
    match &k.kind {
        Some(key::Kind::Int(v)) => J::from(*v),
        Some(key::Kind::Str(s)) => J::from(s.as_str()),
        None => J::Null,
    }
}

/// A metadata value from JSON; `field` names it in errors.
pub fn value_from_json(field: &str, v: &J) -> Result<Value> {
    let kind = match v {
        J::Bool(b) => value::Kind::BoolValue(*b),
        J::String(s) => value::Kind::StringValue(s.clone()),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => value::Kind::IntValue(i),
            (None, Some(f)) if f.is_finite() => value::Kind::FloatValue(f),
            _ => {
                return Err(Error::invalid(format!(
                    "metadata field {field:?}: number {n} out of range"
                )));
            }
        },
        J::Array(items) => value::Kind::StringListValue(StringList {
            values: items
                .iter()
                .map(|i| match i {
                    J::String(s) => Ok(s.clone()),
                    other => Err(Error::invalid(format!(
                        "metadata field {field:?}: lists may hold only strings, found {other}"
                    ))),
                })
                .collect::<Result<_>>()?,
        }),
        other => {
            return Err(Error::invalid(format!(
                "metadata field {field:?}: unsupported value {other} (use int, float, string, bool or list of strings)"
            )));
        }
    };
    Ok(Value { kind: Some(kind) })
}

/// A metadata value as JSON.
pub fn value_to_json(v: &Value) -> J {
    match &v.kind {
        Some(value::Kind::IntValue(i)) => J::from(*i),
        Some(value::Kind::FloatValue(f)) => J::from(*f),
        Some(value::Kind::StringValue(s)) => J::from(s.as_str()),
        Some(value::Kind::BoolValue(b)) => J::from(*b),
        Some(value::Kind::StringListValue(l)) => J::from(l.values.clone()),
        None => J::Null,
    }
}

/// Metadata from a JSON object (`null` is empty).
pub fn metadata_from_json(v: &J) -> Result<HashMap<String, Value>> {
    match v {
        J::Null => Ok(HashMap::new()),
        J::Object(m) => m
            .iter()
            .map(|(k, v)| Ok((k.clone(), value_from_json(k, v)?)))
            .collect(),
        other => Err(Error::invalid(format!(
            "metadata must be a JSON object, got {other}"
        ))),
    }
}

/// Metadata as a JSON object, fields in name order.
pub fn metadata_to_json(m: &HashMap<String, Value>) -> J {
    let mut fields: Vec<_> = m.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    J::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

/// A payload from JSON: a string is stored as its UTF-8 bytes, anything else as its JSON
/// text, `null` as empty.
pub fn payload_from_json(v: &J) -> Vec<u8> {
    match v {
        J::Null => Vec::new(),
        J::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

/// A payload as JSON: parsed when it is JSON, else a (lossy UTF-8) string; empty is
/// `null`.
pub fn payload_to_json(p: &[u8]) -> J {
    if p.is_empty() {
        return J::Null;
    }
    serde_json::from_slice(p).unwrap_or_else(|_| J::String(String::from_utf8_lossy(p).into_owned()))
}

/// A point from its JSON object; `at` names it in errors (for example `points[3]`).
pub fn point_from_json(v: &J, at: &str) -> Result<Point> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{at}: expected a JSON object")))?;
    let ctx = |e: Error| e.context(at);
    let key = key_from_json(
        obj.get("id")
            .ok_or_else(|| Error::invalid(format!("{at}: missing \"id\"")))?,
    )
    .map_err(ctx)?;
    let vector = obj
        .get("vector")
        .and_then(J::as_array)
        .ok_or_else(|| Error::invalid(format!("{at}: missing \"vector\" array")))?
        .iter()
        .map(|x| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| Error::invalid(format!("{at}: vector holds a non-number {x}")))
        })
        .collect::<Result<Vec<f32>>>()?;
    let metadata = obj
        .get("metadata")
        .map(metadata_from_json)
        .transpose()
        .map_err(ctx)?
        .unwrap_or_default();
    for k in obj.keys() {
        if !["id", "vector", "metadata", "payload"].contains(&k.as_str()) {
            return Err(Error::invalid(format!(
                "{at}: unknown field {k:?} (expected id, vector, metadata, payload)"
            )));
        }
    }
    Ok(Point {
        key: Some(key),
        vector,
        metadata,
        payload: obj
            .get("payload")
            .map(payload_from_json)
            .unwrap_or_default(),
    })
}

/// A point as JSON.
pub fn point_to_json(p: &Point) -> J {
    serde_json::json!({
        "id": p.key.as_ref().map(key_to_json).unwrap_or(J::Null),
        "vector": p.vector,
        "metadata": metadata_to_json(&p.metadata),
        "payload": payload_to_json(&p.payload),
    })
}
