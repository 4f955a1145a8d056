//! The JSON grammar: one table of point lines, one of filters.

use super::*;
use crate::ValidationKind as K;
use crate::filter::Filter;

#[test]
fn points_parse_and_print_back() {
    let text = r#"{"id": "k", "vector": [1, 2.5], "metadata": {"n": 3, "f": 0.5, "s": "x", "b": true, "l": ["a"], "big": 18446744073709551615}, "payload": {"a": [1, 2]}}"#;
    let p = point_from_str(text).unwrap();
    assert_eq!(p.key, Key::Str("k".into()));
    assert_eq!(p.vector, vec![1.0, 2.5]);
    assert_eq!(p.metadata["n"], Value::Int(3));
    assert_eq!(p.metadata["big"], Value::Float(u64::MAX as f64));
    assert_eq!(p.payload, br#"{"a":[1,2]}"#.to_vec());
    let again = point_from_str(&point_to_json(&p).to_string()).unwrap();
    assert_eq!(again, p);
    let s =
        point_from_str(r#"{"id": 7, "vector": [], "payload": "héllo", "metadata": null}"#).unwrap();
    assert_eq!(
        (s.key, s.payload),
        (Key::Int(7), "héllo".as_bytes().to_vec())
    );
    assert!(
        point_from_str(r#"{"id": 7, "vector": [], "payload": null}"#)
            .unwrap()
            .payload
            .is_empty()
    );
}

#[test]
fn bad_points_are_named() {
    let big_payload = format!(
        r#"{{"id": 1, "vector": [], "payload": "{}"}}"#,
        "x".repeat(limits::MAX_PAYLOAD_BYTES + 1)
    );
    let big_meta = format!(
        r#"{{"id": 1, "vector": [], "metadata": {{"s": "{}"}}}}"#,
        "x".repeat(limits::MAX_METADATA_BYTES)
    );
    let long_vector = format!(
        r#"{{"id": 1, "vector": [{}0]}}"#,
        "0,".repeat(limits::MAX_DIM)
    );
    for (text, kind, field, needle) in [
        ("[]", K::Malformed, "", "expected a point object"),
        (r#"{"vector": [1]}"#, K::Malformed, "", "missing \"id\""),
        (r#"{"id": 1}"#, K::Malformed, "", "missing \"vector\""),
        (
            r#"{"id": -1, "vector": []}"#,
            K::Malformed,
            "id",
            "key -1 is not an unsigned 64-bit integer",
        ),
        (
            r#"{"id": 1.5, "vector": []}"#,
            K::Malformed,
            "id",
            "not an unsigned 64-bit integer",
        ),
        (
            r#"{"id": true, "vector": []}"#,
            K::Malformed,
            "id",
            "a string or an unsigned integer",
        ),
        (
            r#"{"id": 1, "vector": [1, "a"]}"#,
            K::Malformed,
            "vector",
            "vectors hold only numbers",
        ),
        (
            r#"{"id": 1, "vector": [], "metdata": {}}"#,
            K::Malformed,
            "metdata",
            "unknown field \"metdata\"",
        ),
        (
            r#"{"id": 1, "vector": [], "metadata": {"a": null}}"#,
            K::Malformed,
            "metadata",
            "unsupported value null",
        ),
        (
            r#"{"id": 1, "vector": [], "metadata": {"a": [1]}}"#,
            K::Malformed,
            "metadata",
            "lists may hold only strings",
        ),
        (
            r#"{"id": 1, "vector": [], "metadata": 3}"#,
            K::Malformed,
            "metadata",
            "a JSON object",
        ),
        (&big_payload, K::TooLarge, "payload", "the limit is 1048576"),
        (&big_meta, K::TooLarge, "metadata", "the limit is 65536"),
        (
            &long_vector,
            K::TooLarge,
            "vector",
            "more than 16384 values",
        ),
        (
            r#"{"id": 1, "vector": []} x"#,
            K::Malformed,
            "",
            "trailing characters",
        ),
    ] {
        let e = point_from_str(text).unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (kind, field),
            "{}: {e}",
            &text[..text.len().min(60)]
        );
        assert!(
            e.message().contains(needle),
            "{}: {e}",
            &text[..text.len().min(60)]
        );
    }
}

#[test]
fn upsert_bodies_name_the_point() {
    let ok = points_body_from_slice(
        br#"{"points": [{"id": 1, "vector": [1]}, {"id": "b", "vector": [2]}]}"#,
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    for (body, field, needle) in [
        (
            &br#"{"points": [{"id": 1, "vector": [1]}, {"id": 2, "vector": [1], "x": 1}]}"#[..],
            "points[1].x",
            "unknown field \"x\"",
        ),
        (
            br#"{"points": [{"id": 1, "vector": [1]}, {"vector": [1]}]}"#,
            "points[1]",
            "missing \"id\"",
        ),
        (
            br#"{"points": [], "extra": 1}"#,
            "points",
            "unknown field \"extra\"",
        ),
        (br#"{}"#, "", "missing \"points\""),
        (
            br#"{"points": [{"id": 1, "vector": [1]"#,
            "points[0].vector",
            "EOF",
        ),
    ] {
        let e = points_body_from_slice(body).unwrap_err();
        assert_eq!(e.field(), field, "{e}");
        assert!(e.message().contains(needle), "{e}");
    }
}

#[test]
fn values_and_keys_from_json_trees() {
    use serde_json::json;
    assert_eq!(key_from_json(&json!(5)).unwrap(), Key::Int(5));
    assert_eq!(key_from_json(&json!("a")).unwrap(), Key::Str("a".into()));
    assert!(
        key_from_json(&json!(-5))
            .unwrap_err()
            .to_string()
            .contains("-5")
    );
    assert_eq!(
        value_from_json("f", &json!(["a", "b"])).unwrap(),
        Value::StrList(vec!["a".into(), "b".into()])
    );
    let m = metadata_from_json(&json!({"a": 1, "b": "x"})).unwrap();
    assert_eq!(metadata_to_json(&m), json!({"a": 1, "b": "x"}));
    assert_eq!(payload_to_json(b"not json"), json!("not json"));
    assert_eq!(payload_to_json(b"[1]"), json!([1]));
}

#[test]
fn malformed_filters_are_named() {
    let deep = (0..32).fold(r#"{"field":"a","exists":true}"#.to_string(), |t, _| {
        format!(r#"{{"not":{t}}}"#)
    });
    let in_list = format!(
        r#"{{"field":"a","in":[{}1]}}"#,
        "1,".repeat(limits::MAX_IN_VALUES)
    );
    let wide = format!(
        r#"{{"and":[{}{{"field":"a","exists":true}}]}}"#,
        r#"{"field":"a","exists":true},"#.repeat(limits::MAX_FILTER_BREADTH)
    );
    for (text, kind, needle) in [
        ("{", K::Malformed, "not valid JSON"),
        ("[]", K::Malformed, "expected an object"),
        (r#"{"field":"a"}"#, K::Malformed, "exactly one"),
        (
            r#"{"field":"a","like":"x"}"#,
            K::Malformed,
            "unknown operator",
        ),
        (r#"{"field":"a","range":{}}"#, K::Malformed, "at least one"),
        (
            r#"{"field":"a","range":{"gt":["x"]}}"#,
            K::Malformed,
            "range bounds",
        ),
        (
            r#"{"field":"a","range":{"gt":1,"near":2}}"#,
            K::Malformed,
            "unknown range bound",
        ),
        (r#"{"and":[{"xor":[]}]}"#, K::Malformed, "filter.and[0].xor"),
        (
            r#"{"field":"a","eq":null}"#,
            K::Malformed,
            "unsupported value",
        ),
        (r#"{"field":"","eq":1}"#, K::Malformed, "non-empty"),
        (r#"{"field":"a","exists":1}"#, K::Malformed, "true or false"),
        (r#"{"field":"a","in":3}"#, K::Malformed, "a list of values"),
        (&deep, K::TooLarge, "deeper than 32"),
        (&in_list, K::TooLarge, "the limit is 10000"),
        (&wide, K::TooLarge, "the limit is 1024"),
    ] {
        let e = Filter::parse_str(text).unwrap_err();
        assert_eq!(e.kind(), kind, "{}: {e}", &text[..text.len().min(60)]);
        assert!(
            e.to_string().contains(needle),
            "{}: {e}",
            &text[..text.len().min(60)]
        );
    }
    let ok = (0..31).fold(r#"{"field":"a","exists":true}"#.to_string(), |t, _| {
        format!(r#"{{"not":{t}}}"#)
    });
    assert!(Filter::parse_str(&ok).is_ok(), "32 levels are allowed");
    let f: Filter = serde_json::from_str(r#"{"field":"a","exists":false}"#).unwrap();
    assert_eq!(f, Filter::Not(Box::new(Filter::Exists("a".into()))));
}
