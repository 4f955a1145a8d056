//! The engine's data types (as parsed from import files) to the API's proto types.

use vecshard_engine::{Key, Point, Value};
use vecshard_proto::v1 as pb;

pub fn key(k: &Key) -> pb::Key {
    pb::Key {
        kind: Some(match k {
            Key::Int(v) => pb::key::Kind::Int(*v),
            Key::Str(s) => pb::key::Kind::Str(s.clone()),
        }),
    }
}

fn value(v: &Value) -> pb::Value {
    use pb::value::Kind;
    pb::Value {
        kind: Some(match v {
            Value::Int(i) => Kind::IntValue(*i),
            Value::Float(f) => Kind::FloatValue(*f),
            Value::Str(s) => Kind::StringValue(s.clone()),
            Value::Bool(b) => Kind::BoolValue(*b),
            Value::StrList(l) => Kind::StringListValue(pb::StringList { values: l.clone() }),
        }),
    }
}

pub fn point(p: Point) -> pb::Point {
    pb::Point {
        key: Some(key(&p.key)),
        metadata: p
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), value(v)))
            .collect(),
        vector: p.vector,
        payload: p.payload,
    }
}
