//! One table per rule: each row an input, whether it passes, and (when not) the kind and a
//! word the message must contain.

use super::*;
use crate::ValidationKind as K;
use crate::filter::Range;

fn check<T: std::fmt::Debug>(
    rule: &str,
    rows: Vec<(T, Option<(K, &str)>)>,
    f: impl Fn(&T) -> Result<()>,
) {
    for (input, want) in rows {
        match (f(&input), want) {
            (Ok(()), None) => {}
            (Err(e), Some((kind, needle))) => {
                assert_eq!(e.kind(), kind, "{rule} {input:?}: {e}");
                assert!(
                    e.to_string().contains(needle),
                    "{rule} {input:?}: {e} lacks {needle:?}"
                );
            }
            (got, want) => panic!("{rule} {input:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn collection_names() {
    check(
        "name",
        vec![
            ("docs_v2-a".to_string(), None),
            ("a".repeat(255), None),
            (String::new(), Some((K::BadName, "1 to 255"))),
            ("a".repeat(256), Some((K::BadName, "got 256"))),
            ("a/b".into(), Some((K::BadName, "'/'"))),
            ("..".into(), Some((K::BadName, "'.'"))),
            ("é".into(), Some((K::BadName, "'é'"))),
            ("a b".into(), Some((K::BadName, "' '"))),
        ],
        |n| collection_name(n),
    );
}

#[test]
fn keys() {
    check(
        "key",
        vec![
            (Key::Int(0), None),
            (Key::Str("k".into()), None),
            (Key::Str("x".repeat(1024)), None),
            (Key::Str(String::new()), Some((K::Missing, "empty"))),
            (
                Key::Str("x".repeat(1025)),
                Some((K::TooLarge, "1025 bytes, the limit is 1024")),
            ),
        ],
        key,
    );
}

#[test]
fn vectors() {
    let z = 0.0f32;
    check(
        "vector",
        vec![
            ((vec![1.0, 2.0], Metric::L2), None),
            ((vec![z, z], Metric::L2), None),
            ((vec![z, z], Metric::Dot), None),
            ((vec![1e-30, 0.0], Metric::Cosine), None),
            ((vec![3e38, 3e38], Metric::Cosine), None),
            (
                (vec![1.0], Metric::L2),
                Some((
                    K::Dimension,
                    "dimension 1 does not match the collection's dimension 2",
                )),
            ),
            (
                (vec![1.0, f32::NAN], Metric::L2),
                Some((K::NotFinite, "NaN) at index 1")),
            ),
            (
                (vec![f32::INFINITY, 1.0], Metric::Dot),
                Some((K::NotFinite, "inf) at index 0")),
            ),
            (
                (vec![z, -z], Metric::Cosine),
                Some((K::ZeroVector, "cosine needs a non-zero vector")),
            ),
        ],
        |(v, m)| vector(v, 2, *m),
    );
}

#[test]
fn normalisation_reaches_unit_length_for_any_non_zero_vector() {
    for v in [
        vec![3.0f32, 4.0],
        vec![1e-30, 1e-30],
        vec![3e38, 3e38],
        vec![f32::MIN_POSITIVE / 8.0, 0.0],
    ] {
        let mut u = v.clone();
        assert!(normalize(&mut u), "{v:?}");
        let norm: f64 = u.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "{v:?} → {u:?}");
    }
    assert!(!normalize(&mut [0.0, 0.0]));
    assert!(!normalize(&mut [f32::NAN, 1.0]));
}

#[test]
fn payloads() {
    check(
        "payload",
        vec![
            (0usize, None),
            (limits::MAX_PAYLOAD_BYTES, None),
            (
                limits::MAX_PAYLOAD_BYTES + 1,
                Some((K::TooLarge, "1048577 bytes, the limit is 1048576")),
            ),
        ],
        |n| payload_len(*n),
    );
}

#[test]
fn metadata_rules() {
    let one = |k: &str, v: Value| Metadata::from([(k.to_string(), v)]);
    check(
        "metadata",
        vec![
            (Metadata::new(), None),
            (one("n", Value::Float(1.5)), None),
            (one("s", Value::Str("x".repeat(60 << 10))), None),
            (
                one("", Value::Int(1)),
                Some((K::Missing, "empty field name")),
            ),
            (
                one("f", Value::Float(f64::NAN)),
                Some((K::NotFinite, "\"f\" is not finite")),
            ),
            (
                one("s", Value::Str("x".repeat(64 << 10))),
                Some((K::TooLarge, "the limit is 65536")),
            ),
            (
                (0..5000)
                    .map(|i| (format!("f{i:05}"), Value::StrList(vec!["ab".into(); 2])))
                    .collect(),
                Some((K::TooLarge, "bytes encoded")),
            ),
        ],
        metadata,
    );
}

#[test]
fn metadata_length_is_the_stored_length() {
    let m: Metadata = [
        ("i".to_string(), Value::Int(-300)),
        ("big".to_string(), Value::Int(i64::MIN)),
        ("f".to_string(), Value::Float(0.5)),
        ("s".to_string(), Value::Str("x".repeat(200))),
        ("b".to_string(), Value::Bool(true)),
        (
            "l".to_string(),
            Value::StrList(vec!["a".into(), "y".repeat(130)]),
        ),
    ]
    .into();
    assert_eq!(metadata_len(&m), postcard::to_stdvec(&m).unwrap().len());
    let wide: Metadata = (0..200).map(|i| (format!("k{i}"), Value::Int(i))).collect();
    assert_eq!(
        metadata_len(&wide),
        postcard::to_stdvec(&wide).unwrap().len()
    );
}

#[test]
fn batches_and_search_params() {
    check(
        "batch",
        vec![
            (1usize, None),
            (limits::MAX_BATCH, None),
            (0, Some((K::Missing, "empty upsert batch"))),
            (
                limits::MAX_BATCH + 1,
                Some((K::TooLarge, "exceeds the limit of 100000")),
            ),
        ],
        |n| batch_len(*n, "upsert"),
    );
    check(
        "search",
        vec![
            ((10usize, None), None),
            ((10_000, Some(100_000)), None),
            (
                (0, None),
                Some((K::OutOfRange, "k: must be in 1..=10000, got 0")),
            ),
            ((10_001, None), Some((K::OutOfRange, "got 10001"))),
            (
                (10, Some(0)),
                Some((K::OutOfRange, "ef: must be in 1..=100000, got 0")),
            ),
        ],
        |(k, ef)| search_params(*k, *ef),
    );
}

#[test]
fn collection_settings() {
    check(
        "dimension",
        vec![
            (1usize, None),
            (16_384, None),
            (0, Some((K::OutOfRange, "dimension 0"))),
            (16_385, Some((K::OutOfRange, "1..=16384"))),
        ],
        |d| dimension(*d),
    );
    check(
        "shards",
        vec![
            (1u32, None),
            (4096, None),
            (0, Some((K::OutOfRange, "got 0"))),
            (4097, Some((K::OutOfRange, "1..=4096"))),
        ],
        |n| shard_count(*n),
    );
    let p = |m, efc, efs| IndexParams {
        m,
        ef_construction: efc,
        ef_search: efs,
        ..IndexParams::default()
    };
    check(
        "index",
        vec![
            (IndexParams::default(), None),
            (p(2, 1, 100_000), None),
            (p(1, 200, 64), Some((K::OutOfRange, "m=1"))),
            (p(257, 200, 64), Some((K::OutOfRange, "m=257"))),
            (p(16, 0, 64), Some((K::OutOfRange, "ef_construction=0"))),
            (
                p(16, 100_001, 64),
                Some((K::OutOfRange, "ef_construction=100001")),
            ),
            (
                p(16, 200, 100_001),
                Some((K::OutOfRange, "ef_search=100001")),
            ),
        ],
        index_params,
    );
    let d = IndexParams::default();
    assert_eq!((d.m, d.ef_construction, d.ef_search), (16, 200, 64));
}

#[test]
fn filter_structure() {
    let eq = |f: &str| Filter::Eq(f.into(), Value::Int(1));
    let nest = |n: usize| (1..n).fold(Filter::Exists("a".into()), |f, _| Filter::Not(Box::new(f)));
    check(
        "filter",
        vec![
            (eq("a"), None),
            (nest(limits::MAX_FILTER_DEPTH), None),
            (Filter::And(vec![eq("a"); limits::MAX_FILTER_BREADTH]), None),
            (
                Filter::In("a".into(), vec![Value::Int(1); limits::MAX_IN_VALUES]),
                None,
            ),
            (
                nest(limits::MAX_FILTER_DEPTH + 1),
                Some((K::TooLarge, "deeper than 32")),
            ),
            (
                Filter::Or(vec![eq("a"); limits::MAX_FILTER_BREADTH + 1]),
                Some((
                    K::TooLarge,
                    "filter.or: malformed filter: or has 1025 sub-filters, the limit is 1024",
                )),
            ),
            (
                Filter::In("a".into(), vec![Value::Int(1); limits::MAX_IN_VALUES + 1]),
                Some((K::TooLarge, "\"in\" has 10001 values, the limit is 10000")),
            ),
            (
                Filter::And(vec![eq("a"), eq("")]),
                Some((
                    K::Malformed,
                    "filter.and[1]: malformed filter: \"field\" must be a non-empty string",
                )),
            ),
            (
                Filter::Eq("a".into(), Value::Float(f64::NAN)),
                Some((K::NotFinite, "not finite")),
            ),
            (
                Filter::Range("a".into(), Range::default()),
                Some((K::Malformed, "at least one")),
            ),
            (
                Filter::Range(
                    "a".into(),
                    Range {
                        gt: Some(Value::StrList(vec![])),
                        ..Range::default()
                    },
                ),
                Some((K::Malformed, "range bounds")),
            ),
        ],
        filter,
    );
}

fn packed(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn packed_vectors_follow_the_same_rules_as_float_vectors() {
    let ok = packed(&[1.0, -2.5, 3.0]);
    assert_eq!(vector_f32le(&ok, 3, Metric::L2), Ok(()));
    assert_eq!(decode_f32le(&ok).unwrap(), vec![1.0, -2.5, 3.0]);
    let cases: Vec<(Vec<u8>, Metric, K, &str)> = vec![
        (
            ok[..11].to_vec(),
            Metric::L2,
            K::Malformed,
            "11 bytes is not a whole number",
        ),
        (
            ok.clone(),
            Metric::Dot,
            K::Dimension,
            "dimension 3 (12 bytes) does not match",
        ),
        (
            packed(&[0.0, f32::NAN, 0.0]),
            Metric::L2,
            K::NotFinite,
            "at index 1",
        ),
        (
            packed(&[0.0, 0.0, 0.0]),
            Metric::Cosine,
            K::ZeroVector,
            "zero vector",
        ),
    ];
    for (i, (bytes, metric, kind, needle)) in cases.into_iter().enumerate() {
        let dim = if kind == K::Dimension { 4 } else { 3 };
        let e = vector_f32le(&bytes, dim, metric).unwrap_err();
        assert_eq!(e.kind(), kind, "case {i}: {e}");
        assert_eq!(e.field(), "vector_f32le", "case {i}");
        assert!(e.to_string().contains(needle), "case {i}: {e}");
    }
    assert!(decode_f32le(&ok[..5]).is_err());
    assert_eq!(one_vector_form(3, 0), Ok(false));
    assert_eq!(one_vector_form(0, 12), Ok(true));
    let e = one_vector_form(3, 12).unwrap_err();
    assert!(e.to_string().contains("set exactly one"), "{e}");
}

#[test]
fn offsets_and_batch_sizes_have_limits() {
    assert!(search_offset(10, 9_990).is_ok());
    assert!(
        search_offset(10, 9_991)
            .unwrap_err()
            .to_string()
            .contains("k + offset")
    );
    assert!(search_batch_len(0).is_err());
    assert!(search_batch_len(1_024).is_ok());
    assert!(
        search_batch_len(1_025)
            .unwrap_err()
            .to_string()
            .contains("1025")
    );
}
