//! Protobuf ↔ engine conversions, in one place. Proto types never go further into the
//! node than this file and the service; the engine never sees them.
//!
//! Conversions also validate what the wire allows but the model does not: unset oneofs,
//! unset keys, non-finite floats, filters nested too deep. Messages name the point,
//! field or filter path (`filter.and[1].not`) that is wrong.

use vecshard_engine::filter::Range as EngineRange;
use vecshard_engine::index::IndexParams;
use vecshard_engine::{Filter, Hit, Key, Metadata, Metric, Point, ShardSpec, Value};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::v1 as pb1;

use crate::error::NodeError;
use crate::placement::{Assignment, Role, ShardId, Storage, check_collection_name};
use crate::registry::SlotStatus;

/// Filters nested deeper than this are rejected.
pub const MAX_FILTER_DEPTH: usize = 32;

type Result<T> = std::result::Result<T, NodeError>;

/// A call's shard and epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The shard.
    pub id: ShardId,
    /// The caller's epoch.
    pub epoch: u64,
}

/// The shard target of a call; it must be set and name a valid collection.
pub fn target_from_proto(t: Option<pb::ShardTarget>) -> Result<Target> {
    let t = t.ok_or_else(|| NodeError::invalid("target is required"))?;
    check_collection_name(&t.collection).map_err(NodeError::invalid)?;
    Ok(Target {
        id: ShardId {
            collection: t.collection,
            shard: t.shard,
        },
        epoch: t.epoch,
    })
}

/// A key; `what` names it in errors.
pub fn key_from_proto(k: Option<pb1::Key>, what: &str) -> Result<Key> {
    match k.and_then(|k| k.kind) {
        Some(pb1::key::Kind::Int(v)) => Ok(Key::Int(v)),
        Some(pb1::key::Kind::Str(s)) => Ok(Key::Str(s)),
        None => Err(NodeError::invalid(format!(
            "{what}: the key is required (set int or str)"
        ))),
    }
}

/// Keys of a get or delete; each must be set.
pub fn keys_from_proto(keys: Vec<pb1::Key>) -> Result<Vec<Key>> {
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| key_from_proto(Some(k), &format!("keys[{i}]")))
        .collect()
}

/// The wire form of a key.
pub fn key_to_proto(k: Key) -> pb1::Key {
    pb1::Key {
        kind: Some(match k {
            Key::Int(v) => pb1::key::Kind::Int(v),
            Key::Str(s) => pb1::key::Kind::Str(s),
        }),
    }
}

/// A metadata or filter value; `what` names it in errors.
pub fn value_from_proto(v: pb1::Value, what: &str) -> Result<Value> {
    use pb1::value::Kind;
    match v.kind {
        Some(Kind::IntValue(i)) => Ok(Value::Int(i)),
        Some(Kind::FloatValue(f)) if f.is_finite() => Ok(Value::Float(f)),
        Some(Kind::FloatValue(f)) => Err(NodeError::invalid(format!(
            "{what}: float value {f} is not finite"
        ))),
        Some(Kind::StringValue(s)) => Ok(Value::Str(s)),
        Some(Kind::BoolValue(b)) => Ok(Value::Bool(b)),
        Some(Kind::StringListValue(l)) => Ok(Value::StrList(l.values)),
        None => Err(NodeError::invalid(format!(
            "{what}: the value is empty (set one of int, float, string, bool, string list)"
        ))),
    }
}

/// The wire form of a value.
pub fn value_to_proto(v: Value) -> pb1::Value {
    use pb1::value::Kind;
    pb1::Value {
        kind: Some(match v {
            Value::Int(i) => Kind::IntValue(i),
            Value::Float(f) => Kind::FloatValue(f),
            Value::Str(s) => Kind::StringValue(s),
            Value::Bool(b) => Kind::BoolValue(b),
            Value::StrList(l) => Kind::StringListValue(pb1::StringList { values: l }),
        }),
    }
}

fn metadata_from_proto(
    m: std::collections::HashMap<String, pb1::Value>,
    what: &str,
) -> Result<Metadata> {
    m.into_iter()
        .map(|(field, v)| {
            let value = value_from_proto(v, &format!("{what} metadata field {field:?}"))?;
            Ok((field, value))
        })
        .collect()
}

fn metadata_to_proto(m: Metadata) -> std::collections::HashMap<String, pb1::Value> {
    m.into_iter().map(|(k, v)| (k, value_to_proto(v))).collect()
}

/// Check a vector against the shard's dimension; finite values only. The engine checks
/// again; checking here gives a message that names the point within the request.
pub fn check_vector(v: &[f32], dim: usize, what: &str) -> Result<()> {
    if v.len() != dim {
        return Err(NodeError::invalid(format!(
            "{what} has dimension {}, the shard expects {dim}",
            v.len()
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(NodeError::invalid(format!(
            "{what} has a non-finite value ({}) at index {i}",
            v[i]
        )));
    }
    Ok(())
}

/// The points of an upsert, checked against the shard's dimension.
pub fn points_from_proto(points: Vec<pb1::Point>, dim: usize) -> Result<Vec<Point>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let what = format!("points[{i}]");
            let key = key_from_proto(p.key, &what)?;
            let what = format!("points[{i}] (key {key})");
            check_vector(&p.vector, dim, &format!("the vector of {what}"))?;
            Ok(Point {
                metadata: metadata_from_proto(p.metadata, &what)?,
                key,
                vector: p.vector,
                payload: p.payload,
            })
        })
        .collect()
}

/// The wire form of a point.
pub fn point_to_proto(p: Point) -> pb1::Point {
    pb1::Point {
        key: Some(key_to_proto(p.key)),
        vector: p.vector,
        metadata: metadata_to_proto(p.metadata),
        payload: p.payload,
    }
}

/// A metric; unspecified or unknown values are refused.
pub fn metric_from_proto(m: i32) -> Result<Metric> {
    match pb1::Metric::try_from(m) {
        Ok(pb1::Metric::L2) => Ok(Metric::L2),
        Ok(pb1::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(pb1::Metric::Dot) => Ok(Metric::Dot),
        Ok(pb1::Metric::Unspecified) | Err(_) => Err(NodeError::invalid(format!(
            "metric {m} is not one of METRIC_L2, METRIC_COSINE, METRIC_DOT"
        ))),
    }
}

fn index_from_proto(p: Option<pb1::IndexParams>) -> IndexParams {
    let d = IndexParams::default();
    let p = p.unwrap_or_default();
    IndexParams {
        m: p.m.map_or(d.m, |v| v as usize),
        ef_construction: p.ef_construction.map_or(d.ef_construction, |v| v as usize),
        ef_search: p.ef_search.map_or(d.ef_search, |v| v as usize),
        ..d
    }
}

/// A role; unspecified or unknown values are refused.
pub fn role_from_proto(r: i32) -> Result<Role> {
    match pb::Role::try_from(r) {
        Ok(pb::Role::Writer) => Ok(Role::Writer),
        Ok(pb::Role::Reader) => Ok(Role::Reader),
        Ok(pb::Role::Unspecified) | Err(_) => Err(NodeError::invalid(format!(
            "role {r} is not one of ROLE_WRITER, ROLE_READER"
        ))),
    }
}

/// The wire form of a role.
pub fn role_to_proto(r: Role) -> pb::Role {
    match r {
        Role::Writer => pb::Role::Writer,
        Role::Reader => pb::Role::Reader,
    }
}

/// Where a shard's data lives, as the router sends it: `local` (or empty) or a URL.
pub fn storage_from_proto(storage: &str) -> Result<Storage> {
    match storage {
        "" | "local" => Ok(Storage::Local),
        url if url.contains("://") => Ok(Storage::Url(url.to_string())),
        other => Err(NodeError::invalid(format!(
            "storage {other:?} is neither `local` nor an object-store URL"
        ))),
    }
}

/// An assignment from the router.
pub fn assignment_from_proto(r: pb::AssignShardRequest) -> Result<Assignment> {
    check_collection_name(&r.collection).map_err(NodeError::invalid)?;
    let storage = storage_from_proto(&r.storage)?;
    if r.dimension == 0 {
        return Err(NodeError::invalid("dimension must be at least 1"));
    }
    Ok(Assignment {
        role: role_from_proto(r.role)?,
        spec: ShardSpec {
            dim: r.dimension as usize,
            metric: metric_from_proto(r.metric)?,
            index: index_from_proto(r.index),
        },
        id: ShardId {
            collection: r.collection,
            shard: r.shard,
        },
        epoch: r.epoch,
        storage,
        incarnation: r.incarnation,
    })
}

/// A search request (the target is taken out by the caller).
pub fn search_from_proto(r: pb::SearchRequest) -> Result<vecshard_engine::SearchRequest> {
    Ok(vecshard_engine::SearchRequest {
        vector: r.vector,
        k: r.k as usize,
        filter: r
            .filter
            .map(|f| filter_from_proto(f, "filter", 1))
            .transpose()?,
        ef: r.ef.map(|e| e as usize),
        exact: r.exact,
        with_metadata: r.with_metadata,
        with_payload: r.with_payload,
        with_vector: r.with_vector,
    })
}

fn bad_filter(at: &str, what: impl std::fmt::Display) -> NodeError {
    NodeError::invalid(format!("malformed filter at {at}: {what}"))
}

/// A filter; `at` is its path for messages, `depth` its nesting level (1 at the top).
pub fn filter_from_proto(f: pb1::Filter, at: &str, depth: usize) -> Result<Filter> {
    use pb1::filter::Kind;
    if depth > MAX_FILTER_DEPTH {
        return Err(bad_filter(
            at,
            format!("nested deeper than {MAX_FILTER_DEPTH} levels"),
        ));
    }
    let list = |l: pb1::FilterList, op: &str| -> Result<Vec<Filter>> {
        l.filters
            .into_iter()
            .enumerate()
            .map(|(i, f)| filter_from_proto(f, &format!("{at}.{op}[{i}]"), depth + 1))
            .collect()
    };
    match f.kind {
        Some(Kind::And(l)) => Ok(Filter::And(list(l, "and")?)),
        Some(Kind::Or(l)) => Ok(Filter::Or(list(l, "or")?)),
        Some(Kind::Not(inner)) => Ok(Filter::Not(Box::new(filter_from_proto(
            *inner,
            &format!("{at}.not"),
            depth + 1,
        )?))),
        Some(Kind::Condition(c)) => condition_from_proto(c, at),
        None => Err(bad_filter(
            at,
            "empty filter (set one of and, or, not, condition)",
        )),
    }
}

fn condition_from_proto(c: pb1::Condition, at: &str) -> Result<Filter> {
    use pb1::condition::Op;
    if c.field.is_empty() {
        return Err(bad_filter(at, "the condition's field is empty"));
    }
    let field = c.field;
    let value =
        |v: pb1::Value, op: &str| value_from_proto(v, &format!("malformed filter at {at}.{op}"));
    match c.op {
        Some(Op::Eq(v)) => Ok(Filter::Eq(field, value(v, "eq")?)),
        Some(Op::Ne(v)) => Ok(Filter::Ne(field, value(v, "ne")?)),
        Some(Op::In(vs)) => Ok(Filter::In(
            field,
            vs.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| value(v, &format!("in[{i}]")))
                .collect::<Result<_>>()?,
        )),
        Some(Op::Range(r)) => Ok(Filter::Range(field, range_from_proto(r, at)?)),
        Some(Op::Exists(true)) => Ok(Filter::Exists(field)),
        Some(Op::Exists(false)) => Ok(Filter::Not(Box::new(Filter::Exists(field)))),
        None => Err(bad_filter(
            at,
            format!(
                "the condition on {field:?} has no operator (set one of eq, ne, in, range, exists)"
            ),
        )),
    }
}

fn range_from_proto(r: pb1::Range, at: &str) -> Result<EngineRange> {
    let bound = |v: Option<pb1::Value>, name: &str| -> Result<Option<Value>> {
        let Some(v) = v else { return Ok(None) };
        let value = value_from_proto(v, &format!("malformed filter at {at}.range.{name}"))?;
        if matches!(value, Value::StrList(_)) {
            return Err(bad_filter(
                &format!("{at}.range.{name}"),
                "a string list is not a valid range bound",
            ));
        }
        Ok(Some(value))
    };
    let range = EngineRange {
        gt: bound(r.gt, "gt")?,
        gte: bound(r.gte, "gte")?,
        lt: bound(r.lt, "lt")?,
        lte: bound(r.lte, "lte")?,
    };
    if range == EngineRange::default() {
        return Err(bad_filter(
            &format!("{at}.range"),
            "a range needs at least one of gt, gte, lt, lte",
        ));
    }
    Ok(range)
}

/// The wire form of a hit.
pub fn hit_to_proto(h: Hit) -> pb::ShardHit {
    pb::ShardHit {
        key: Some(key_to_proto(h.key)),
        distance: h.distance,
        score: h.score,
        metadata: h.metadata.map(metadata_to_proto).unwrap_or_default(),
        payload: h.payload.unwrap_or_default(),
        vector: h.vector.unwrap_or_default(),
    }
}

/// The wire form of a shard's status.
pub fn status_to_proto(s: SlotStatus) -> pb::ShardStatus {
    use crate::registry::StateName;
    let state = match s.state {
        StateName::Opening => pb::ShardState::Opening,
        StateName::Serving => pb::ShardState::Serving,
        StateName::Fenced => pb::ShardState::Fenced,
        StateName::Failed => pb::ShardState::Failed,
        StateName::Closed => pb::ShardState::Closed,
    };
    pb::ShardStatus {
        collection: s.id.collection,
        shard: s.id.shard,
        epoch: s.epoch,
        role: role_to_proto(s.role) as i32,
        state: state as i32,
        live_points: s.live_points,
        segments: s.segments as u32,
        error: s.error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, op: pb1::condition::Op) -> pb1::Filter {
        pb1::Filter {
            kind: Some(pb1::filter::Kind::Condition(pb1::Condition {
                field: field.into(),
                op: Some(op),
            })),
        }
    }

    fn s(v: &str) -> pb1::Value {
        value_to_proto(Value::Str(v.into()))
    }

    #[test]
    fn filters_convert() {
        use pb1::condition::Op;
        let f = pb1::Filter {
            kind: Some(pb1::filter::Kind::And(pb1::FilterList {
                filters: vec![
                    cond("color", Op::Eq(s("red"))),
                    pb1::Filter {
                        kind: Some(pb1::filter::Kind::Not(Box::new(cond(
                            "tags",
                            Op::In(pb1::ValueList {
                                values: vec![s("old")],
                            }),
                        )))),
                    },
                    cond(
                        "price",
                        Op::Range(pb1::Range {
                            gte: Some(value_to_proto(Value::Int(10))),
                            ..Default::default()
                        }),
                    ),
                    cond("stock", Op::Exists(false)),
                ],
            })),
        };
        let got = filter_from_proto(f, "filter", 1).unwrap();
        let want = Filter::parse_str(
            r#"{"and": [{"field": "color", "eq": "red"}, {"not": {"field": "tags", "in": ["old"]}},
                {"field": "price", "range": {"gte": 10}}, {"field": "stock", "exists": false}]}"#,
        )
        .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_filters_name_the_path() {
        use pb1::condition::Op;
        let empty_in_and = pb1::Filter {
            kind: Some(pb1::filter::Kind::And(pb1::FilterList {
                filters: vec![cond("a", Op::Exists(true)), pb1::Filter { kind: None }],
            })),
        };
        let e = filter_from_proto(empty_in_and, "filter", 1).unwrap_err();
        assert!(e.to_string().contains("filter.and[1]"), "{e}");
        let e = filter_from_proto(cond("", Op::Exists(true)), "filter", 1).unwrap_err();
        assert!(e.to_string().contains("field is empty"), "{e}");
        let e = filter_from_proto(cond("p", Op::Range(pb1::Range::default())), "filter", 1)
            .unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
        let e = filter_from_proto(
            cond("p", Op::Eq(value_to_proto(Value::Float(f64::NAN)))),
            "filter",
            1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not finite"), "{e}");
        let mut deep = cond("a", Op::Exists(true));
        for _ in 0..MAX_FILTER_DEPTH {
            deep = pb1::Filter {
                kind: Some(pb1::filter::Kind::Not(Box::new(deep))),
            };
        }
        let e = filter_from_proto(deep, "filter", 1).unwrap_err();
        assert!(e.to_string().contains("deeper than 32"), "{e}");
    }

    #[test]
    fn points_round_trip_and_check() {
        let p = Point::new("k", vec![1.0, 2.0])
            .with("tags", Value::StrList(vec!["a".into()]))
            .with("n", Value::Float(0.5))
            .with_payload(b"{}".to_vec());
        let wire = point_to_proto(p.clone());
        assert_eq!(points_from_proto(vec![wire.clone()], 2).unwrap(), vec![p]);
        let e = points_from_proto(vec![wire.clone()], 3).unwrap_err();
        assert!(e.to_string().contains("points[0]"), "{e}");
        let mut nan = wire;
        nan.vector[1] = f32::NAN;
        let e = points_from_proto(vec![nan], 2).unwrap_err();
        assert!(e.to_string().contains("non-finite"), "{e}");
        let e = points_from_proto(vec![pb1::Point::default()], 2).unwrap_err();
        assert!(e.to_string().contains("key is required"), "{e}");
    }
}
