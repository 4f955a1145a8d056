//! The proto conversion (feature `proto`): round trips, and one table of wire inputs the
//! model refuses.
#![cfg(feature = "proto")]

use vecshard_model::proto::*;
use vecshard_model::{Filter, IndexParams, Key, Metric, Point, ValidationKind as K, Value};
use vecshard_proto::v1 as pb;

fn cond(field: &str, op: pb::condition::Op) -> pb::Filter {
    pb::Filter {
        kind: Some(pb::filter::Kind::Condition(pb::Condition {
            field: field.into(),
            op: Some(op),
        })),
    }
}

fn not(f: pb::Filter) -> pb::Filter {
    pb::Filter {
        kind: Some(pb::filter::Kind::Not(Box::new(f))),
    }
}

#[test]
fn points_metrics_and_index_params_round_trip() {
    let p = Point::new("k", vec![1.0, 2.0])
        .with("tags", Value::StrList(vec!["a".into()]))
        .with("n", Value::Float(0.5))
        .with("i", Value::Int(-3))
        .with("b", Value::Bool(true))
        .with_payload(b"{}".to_vec());
    assert_eq!(point_from_proto(point_to_proto(p.clone())).unwrap(), p);
    for m in [Metric::L2, Metric::Cosine, Metric::Dot] {
        assert_eq!(metric_from_proto(metric_to_proto(m) as i32).unwrap(), m);
    }
    let d = IndexParams::default();
    assert_eq!(index_from_proto(None).unwrap(), d);
    assert_eq!(index_from_proto(Some(&index_to_proto(&d))).unwrap(), d);
    let partial = pb::IndexParams {
        m: Some(32),
        ..Default::default()
    };
    assert_eq!(index_from_proto(Some(&partial)).unwrap().m, 32);
    assert_eq!(index_from_proto(Some(&partial)).unwrap().ef_search, 64);
}

#[test]
fn filters_round_trip() {
    let f = Filter::parse_str(
        r#"{"and": [{"field": "color", "eq": "red"}, {"not": {"field": "tags", "in": ["old"]}},
            {"field": "price", "range": {"gte": 10, "lt": 2.5}}, {"field": "stock", "exists": false},
            {"or": [{"field": "n", "ne": true}]}]}"#,
    )
    .unwrap();
    assert_eq!(filter_from_proto(&filter_to_proto(&f)).unwrap(), f);
}

#[test]
fn bad_wire_input_is_named() {
    use pb::condition::Op;
    let s = |v: &str| value_to_proto(&Value::Str(v.into()));
    let nan = value_to_proto(&Value::Float(f64::NAN));
    let deep = (0..32).fold(cond("a", Op::Exists(true)), |f, _| not(f));
    let wide = pb::Filter {
        kind: Some(pb::filter::Kind::Or(pb::FilterList {
            filters: vec![cond("a", Op::Exists(true)); 1025],
        })),
    };
    let rows: Vec<(pb::Filter, K, &str)> = vec![
        (
            pb::Filter {
                kind: Some(pb::filter::Kind::And(pb::FilterList {
                    filters: vec![cond("a", Op::Exists(true)), pb::Filter { kind: None }],
                })),
            },
            K::Malformed,
            "filter.and[1]: malformed filter: empty filter",
        ),
        (cond("", Op::Exists(true)), K::Malformed, "non-empty string"),
        (
            cond("p", Op::Range(pb::Range::default())),
            K::Malformed,
            "at least one",
        ),
        (
            cond("p", Op::Eq(nan)),
            K::NotFinite,
            "filter.eq: malformed filter: float value NaN is not finite",
        ),
        (
            cond(
                "p",
                Op::Range(pb::Range {
                    gt: Some(pb::Value::default()),
                    ..Default::default()
                }),
            ),
            K::Missing,
            "the value is empty",
        ),
        (
            cond(
                "p",
                Op::Range(pb::Range {
                    gt: Some(value_to_proto(&Value::StrList(vec![]))),
                    ..Default::default()
                }),
            ),
            K::Malformed,
            "range bounds",
        ),
        (
            pb::Filter {
                kind: Some(pb::filter::Kind::Condition(pb::Condition {
                    field: "a".into(),
                    op: None,
                })),
            },
            K::Malformed,
            "has no operator",
        ),
        (deep, K::TooLarge, "deeper than 32"),
        (wide, K::TooLarge, "the limit is 1024"),
        (
            cond(
                "a",
                Op::In(pb::ValueList {
                    values: vec![s("x"); 10_001],
                }),
            ),
            K::TooLarge,
            "the limit is 10000",
        ),
    ];
    for (f, kind, needle) in rows {
        let e = filter_from_proto(&f).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
    }

    let e = point_from_proto(pb::Point::default()).unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string().as_str()),
        (K::Missing, "key: the key is required (set int or str)")
    );
    let e = metric_from_proto(0).unwrap_err();
    assert!(e.to_string().contains("metric 0 is not one of"), "{e}");
    let e = index_from_proto(Some(&pb::IndexParams {
        m: Some(1),
        ..Default::default()
    }))
    .unwrap_err();
    assert_eq!(e.kind(), K::OutOfRange);
    let e = keys_from_proto(&[key_to_proto(&Key::Int(1)), pb::Key::default()]).unwrap_err();
    assert_eq!(e.field(), "keys[1].key");
    let long = pb::Point {
        key: Some(key_to_proto(&Key::Str("x".repeat(1025)))),
        vector: vec![1.0],
        ..Default::default()
    };
    let e = check_points(&[long], 1, Metric::L2).unwrap_err();
    assert_eq!((e.kind(), e.field()), (K::TooLarge, "points[0].key"));
    let zero = pb::Point {
        key: Some(key_to_proto(&Key::Int(1))),
        vector: vec![0.0],
        ..Default::default()
    };
    let e = check_points(&[zero], 1, Metric::Cosine).unwrap_err();
    assert_eq!((e.kind(), e.field()), (K::ZeroVector, "points[0].vector"));
}
