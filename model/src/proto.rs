//! The one conversion between the model and the gRPC types (feature `proto`). What the
//! wire allows but the model does not — unset oneofs, unset keys, unknown enum values,
//! non-finite floats — is refused here with a [`ValidationError`] naming the part.

use std::collections::HashMap;

use vecshard_proto::v1 as pb;

use crate::error::{Result, ValidationError, ValidationKind as K};
use crate::filter::{Filter, Range};
use crate::index::IndexParams;
use crate::key::Key;
use crate::metric::Metric;
use crate::point::Point;
use crate::validate;
use crate::value::{Metadata, Value};

/// The wire form of a key.
pub fn key_to_proto(k: &Key) -> pb::Key {
    pb::Key {
        kind: Some(match k {
            Key::Int(v) => pb::key::Kind::Int(*v),
            Key::Str(s) => pb::key::Kind::Str(s.clone()),
        }),
    }
}

/// A key from the wire; it must be set.
pub fn key_from_proto(k: Option<&pb::Key>) -> Result<Key> {
    match k.and_then(|k| k.kind.as_ref()) {
        Some(pb::key::Kind::Int(v)) => Ok(Key::Int(*v)),
        Some(pb::key::Kind::Str(s)) => Ok(Key::Str(s.clone())),
        None => Err(ValidationError::new(
            K::Missing,
            "key",
            "the key is required (set int or str)",
        )),
    }
}

/// Keys of a get or delete from the wire: each set and valid (`keys[3]` in errors).
pub fn keys_from_proto(keys: &[pb::Key]) -> Result<Vec<Key>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            key_from_proto(Some(k))
                .and_then(|k| validate::key(&k).map(|_| k))
                .map_err(|e| e.within(format!("keys[{i}]")))
        })
        .collect()
}

/// The wire form of a metadata or filter value.
pub fn value_to_proto(v: &Value) -> pb::Value {
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

/// A value from the wire: set and finite.
pub fn value_from_proto(v: &pb::Value) -> Result<Value> {
    use pb::value::Kind;
    match &v.kind {
        Some(Kind::IntValue(i)) => Ok(Value::Int(*i)),
        Some(Kind::FloatValue(f)) if f.is_finite() => Ok(Value::Float(*f)),
        Some(Kind::FloatValue(f)) => Err(ValidationError::new(
            K::NotFinite,
            "",
            format!("float value {f} is not finite"),
        )),
        Some(Kind::StringValue(s)) => Ok(Value::Str(s.clone())),
        Some(Kind::BoolValue(b)) => Ok(Value::Bool(*b)),
        Some(Kind::StringListValue(l)) => Ok(Value::StrList(l.values.clone())),
        None => Err(ValidationError::new(
            K::Missing,
            "",
            "the value is empty (set one of int, float, string, bool, string list)",
        )),
    }
}

/// The wire form of metadata.
pub fn metadata_to_proto(m: &Metadata) -> HashMap<String, pb::Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), value_to_proto(v)))
        .collect()
}

/// Metadata from the wire; each value set and finite (sizes are [`validate::metadata`]'s).
pub fn metadata_from_proto(m: &HashMap<String, pb::Value>) -> Result<Metadata> {
    m.iter()
        .map(|(field, v)| {
            let value = value_from_proto(v).map_err(|e| e.within(format!("metadata.{field}")))?;
            Ok((field.clone(), value))
        })
        .collect()
}

/// The wire form of a point.
pub fn point_to_proto(p: Point) -> pb::Point {
    pb::Point {
        key: Some(key_to_proto(&p.key)),
        metadata: metadata_to_proto(&p.metadata),
        vector: p.vector,
        payload: p.payload,
        vector_f32le: Vec::new(),
    }
}

/// A vector from the wire, given as floats or packed (`vector_f32le`), at most one of
/// them; the packed form is decoded (values are not checked: see [`check_vector`]).
pub fn vector_from_proto(floats: Vec<f32>, packed: &[u8]) -> Result<Vec<f32>> {
    if validate::one_vector_form(floats.len(), packed.len())? {
        validate::decode_f32le(packed)
    } else {
        Ok(floats)
    }
}

/// Every rule of [`validate::vector`] on a wire vector in either form, without decoding
/// or copying it.
pub fn check_vector(floats: &[f32], packed: &[u8], dim: usize, metric: Metric) -> Result<()> {
    if validate::one_vector_form(floats.len(), packed.len())? {
        validate::vector_f32le(packed, dim, metric)
    } else {
        validate::vector(floats, dim, metric)
    }
}

/// A point from the wire (not yet checked against a collection: see [`check_point`]).
pub fn point_from_proto(p: pb::Point) -> Result<Point> {
    Ok(Point {
        key: key_from_proto(p.key.as_ref())?,
        metadata: metadata_from_proto(&p.metadata)?,
        vector: vector_from_proto(p.vector, &p.vector_f32le)?,
        payload: p.payload,
    })
}

/// Every rule of [`validate::point`] on a wire point, without copying its vector.
pub fn check_point(p: &pb::Point, dim: usize, metric: Metric) -> Result<()> {
    let key = key_from_proto(p.key.as_ref())?;
    validate::key(&key)?;
    check_vector(&p.vector, &p.vector_f32le, dim, metric)?;
    validate::payload_len(p.payload.len())?;
    validate::metadata(&metadata_from_proto(&p.metadata)?)
}

/// Every point of an upsert batch (`points[3]` in errors).
pub fn check_points(points: &[pb::Point], dim: usize, metric: Metric) -> Result<()> {
    validate::batch_len(points.len(), "upsert")?;
    points.iter().enumerate().try_for_each(|(i, p)| {
        check_point(p, dim, metric).map_err(|e| e.within(format!("points[{i}]")))
    })
}

/// Packed search results (`PackedHits`) for hits whose keys are all integers; `None`
/// when a key is a string (or unset), so the caller answers with the hits themselves.
pub fn pack_hits<'a>(
    hits: impl Iterator<Item = (Option<&'a pb::Key>, f32)>,
) -> Option<pb::PackedHits> {
    let n = hits.size_hint().0;
    let mut ids = Vec::with_capacity(n * 8);
    let mut scores = Vec::with_capacity(n * 4);
    for (key, score) in hits {
        match key.and_then(|k| k.kind.as_ref()) {
            Some(pb::key::Kind::Int(id)) => ids.extend_from_slice(&id.to_le_bytes()),
            _ => return None,
        }
        scores.extend_from_slice(&score.to_le_bytes());
    }
    Some(pb::PackedHits {
        ids_u64le: ids,
        scores_f32le: scores,
    })
}

/// The wire form of a metric.
pub fn metric_to_proto(m: Metric) -> pb::Metric {
    match m {
        Metric::L2 => pb::Metric::L2,
        Metric::Cosine => pb::Metric::Cosine,
        Metric::Dot => pb::Metric::Dot,
    }
}

/// A metric from the wire; unspecified or unknown values are refused.
pub fn metric_from_proto(m: i32) -> Result<Metric> {
    match pb::Metric::try_from(m) {
        Ok(pb::Metric::L2) => Ok(Metric::L2),
        Ok(pb::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(pb::Metric::Dot) => Ok(Metric::Dot),
        Ok(pb::Metric::Unspecified) | Err(_) => Err(ValidationError::new(
            K::Malformed,
            "metric",
            format!("metric {m} is not one of METRIC_L2, METRIC_COSINE, METRIC_DOT"),
        )),
    }
}

/// The wire form of index parameters (every field set).
pub fn index_to_proto(p: &IndexParams) -> pb::IndexParams {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    pb::IndexParams {
        m: Some(n(p.m)),
        ef_construction: Some(n(p.ef_construction)),
        ef_search: Some(n(p.ef_search)),
    }
}

/// Index parameters from the wire: unset fields take the defaults; the result is checked.
pub fn index_from_proto(p: Option<&pb::IndexParams>) -> Result<IndexParams> {
    let d = IndexParams::default();
    let p = p.cloned().unwrap_or_default();
    let params = IndexParams {
        m: p.m.map_or(d.m, |v| v as usize),
        ef_construction: p.ef_construction.map_or(d.ef_construction, |v| v as usize),
        ef_search: p.ef_search.map_or(d.ef_search, |v| v as usize),
        seed: d.seed,
    };
    validate::index_params(&params)?;
    Ok(params)
}

/// The wire form of a filter.
pub fn filter_to_proto(f: &Filter) -> pb::Filter {
    use pb::condition::Op;
    use pb::filter::Kind;
    let list = |fs: &[Filter]| pb::FilterList {
        filters: fs.iter().map(filter_to_proto).collect(),
    };
    let cond = |field: &str, op: Op| {
        Kind::Condition(pb::Condition {
            field: field.to_string(),
            op: Some(op),
        })
    };
    let kind = match f {
        Filter::And(fs) => Kind::And(list(fs)),
        Filter::Or(fs) => Kind::Or(list(fs)),
        Filter::Not(inner) => Kind::Not(Box::new(filter_to_proto(inner))),
        Filter::Eq(field, v) => cond(field, Op::Eq(value_to_proto(v))),
        Filter::Ne(field, v) => cond(field, Op::Ne(value_to_proto(v))),
        Filter::In(field, vs) => cond(
            field,
            Op::In(pb::ValueList {
                values: vs.iter().map(value_to_proto).collect(),
            }),
        ),
        Filter::Range(field, r) => {
            let b = |v: &Option<Value>| v.as_ref().map(value_to_proto);
            cond(
                field,
                Op::Range(pb::Range {
                    gt: b(&r.gt),
                    gte: b(&r.gte),
                    lt: b(&r.lt),
                    lte: b(&r.lte),
                }),
            )
        }
        Filter::Exists(field) => cond(field, Op::Exists(true)),
    };
    pb::Filter { kind: Some(kind) }
}

/// A filter from the wire, checked by [`validate::filter`] (`filter.and[1].in` in errors).
pub fn filter_from_proto(f: &pb::Filter) -> Result<Filter> {
    let filter = convert_filter(f, 1).map_err(|e| e.within("filter"))?;
    validate::filter(&filter)?;
    Ok(filter)
}

fn bad(field: &str, msg: impl Into<String>) -> ValidationError {
    ValidationError::new(
        K::Malformed,
        field,
        format!("malformed filter: {}", msg.into()),
    )
}

fn convert_filter(f: &pb::Filter, depth: usize) -> Result<Filter> {
    use pb::filter::Kind;
    if depth > crate::limits::MAX_FILTER_DEPTH {
        return Err(ValidationError::new(
            K::TooLarge,
            "",
            format!(
                "malformed filter: nested deeper than {} levels",
                crate::limits::MAX_FILTER_DEPTH
            ),
        ));
    }
    let list = |l: &pb::FilterList, op: &str| -> Result<Vec<Filter>> {
        l.filters
            .iter()
            .enumerate()
            .map(|(i, f)| convert_filter(f, depth + 1).map_err(|e| e.within(format!("{op}[{i}]"))))
            .collect()
    };
    match &f.kind {
        Some(Kind::And(l)) => Ok(Filter::And(list(l, "and")?)),
        Some(Kind::Or(l)) => Ok(Filter::Or(list(l, "or")?)),
        Some(Kind::Not(inner)) => Ok(Filter::Not(Box::new(
            convert_filter(inner, depth + 1).map_err(|e| e.within("not"))?,
        ))),
        Some(Kind::Condition(c)) => convert_condition(c),
        None => Err(bad("", "empty filter (set one of and, or, not, condition)")),
    }
}

fn convert_condition(c: &pb::Condition) -> Result<Filter> {
    use pb::condition::Op;
    if c.field.is_empty() {
        return Err(bad("", "\"field\" must be a non-empty string"));
    }
    let field = c.field.clone();
    let value = |v: &pb::Value, op: &str| {
        value_from_proto(v).map_err(|e| {
            ValidationError::new(e.kind(), op, format!("malformed filter: {}", e.message()))
        })
    };
    match &c.op {
        Some(Op::Eq(v)) => Ok(Filter::Eq(field, value(v, "eq")?)),
        Some(Op::Ne(v)) => Ok(Filter::Ne(field, value(v, "ne")?)),
        Some(Op::In(vs)) => Ok(Filter::In(
            field,
            vs.values
                .iter()
                .map(|v| value(v, "in"))
                .collect::<Result<_>>()?,
        )),
        Some(Op::Range(r)) => {
            let b = |v: &Option<pb::Value>| v.as_ref().map(|v| value(v, "range")).transpose();
            Ok(Filter::Range(
                field,
                Range {
                    gt: b(&r.gt)?,
                    gte: b(&r.gte)?,
                    lt: b(&r.lt)?,
                    lte: b(&r.lte)?,
                },
            ))
        }
        Some(Op::Exists(true)) => Ok(Filter::Exists(field)),
        Some(Op::Exists(false)) => Ok(Filter::Not(Box::new(Filter::Exists(field)))),
        None => Err(bad(
            "",
            format!(
                "the condition on {field:?} has no operator (set one of eq, ne, in, range, exists)"
            ),
        )),
    }
}
