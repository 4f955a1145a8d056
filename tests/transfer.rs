//! `vecshard export` and `vecshard import` through a real router: a collection with integer
//! and string keys, every kind of metadata value and payloads of every shape is exported as
//! JSON lines and as Parquet, imported into new collections, and every point comes back
//! identical (key, vector bits, metadata, payload). Imports that fail halfway exit non-zero
//! with the reason, the file's line and the acknowledged count.

mod cluster_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use cluster_support::{Client, Cluster, bin};
use vecshard_model::proto::{point_from_proto, point_to_proto};
use vecshard_model::{Key, Point, Value};
use vecshard_proto::v1 as pb;

const DIM: usize = 8;
const POINTS: u64 = 1_500;

struct Exit {
    success: bool,
    stderr: String,
}

fn run(args: &[&str]) -> Exit {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Exit {
        success: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Floats that use every bit of the mantissa, negative and positive, tiny and large.
fn vector(i: u64) -> Vec<f32> {
    (0..DIM as u64)
        .map(|d| {
            let h = (i * 0x9E37_79B9 + d * 0x85EB_CA6B).wrapping_mul(0xC2B2_AE35) >> 7;
            let x = (h % 2_000_003) as f32 / 1_000.0 - 1_000.0;
            x * (1.0 + d as f32 * 0.1234567) / if d == 3 { 1.0e6 } else { 1.0 }
        })
        .collect()
}

/// Point `i`: an integer key for most, a string key for some; metadata of every kind on
/// most; payloads of JSON, plain text, JSON with spaces (kept byte for byte), none — and,
/// when `binary`, bytes that are not UTF-8.
fn point(i: u64, binary: bool) -> Point {
    let key = if i % 5 == 4 {
        Key::Str(format!("doc-{i}"))
    } else {
        Key::Int(i * 7)
    };
    let mut p = Point::new(key, vector(i));
    if !i.is_multiple_of(3) {
        p = p
            .with("n", Value::Int(i as i64 - 700))
            .with("x", Value::Float(i as f64 * 0.25 + 0.1))
            .with("whole", Value::Float(2.0))
            .with("tag", Value::Str(format!("t{}", i % 7)))
            .with("flag", Value::Bool(i.is_multiple_of(2)))
            .with("tags", Value::StrList(vec!["a".into(), format!("b{i}")]));
    }
    p.payload = match i % 5 {
        0 => format!("{{\"i\":{i}}}").into_bytes(),
        1 => format!("plain text {i}").into_bytes(),
        2 => format!("{{\"z\": {i}, \"a\": [1, 2]}}").into_bytes(),
        3 if binary => vec![0xff, 0x00, i as u8],
        _ => Vec::new(),
    };
    p
}

async fn create(router: &str, c: &Cluster, name: &str) {
    let e = run(&[
        "collection",
        "create",
        "--router",
        router,
        name,
        "--dim",
        "8",
        "--shards",
        "2",
    ]);
    assert!(e.success, "{}", e.stderr);
    c.wait_serving(name).await;
}

async fn upsert(client: &mut Client, collection: &str, points: Vec<Point>) {
    for chunk in points.chunks(500) {
        client
            .upsert(pb::UpsertRequest {
                collection: collection.into(),
                points: chunk.iter().cloned().map(point_to_proto).collect(),
            })
            .await
            .unwrap();
    }
}

/// Every point of a collection, by key.
async fn contents(client: &mut Client, collection: &str) -> BTreeMap<Key, Point> {
    let mut out = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .scan(pb::ScanRequest {
                collection: collection.into(),
                cursor: cursor.clone(),
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner();
        for p in page.points {
            let p = point_from_proto(p).unwrap();
            assert!(
                out.insert(p.key.clone(), p).is_none(),
                "a key scanned twice"
            );
        }
        if page.next_cursor.is_empty() {
            return out;
        }
        cursor = page.next_cursor;
    }
}

fn assert_identical(want: &BTreeMap<Key, Point>, got: &BTreeMap<Key, Point>) {
    assert_eq!(want.len(), got.len(), "point counts differ");
    for (k, p) in want {
        let q = got.get(k).unwrap_or_else(|| panic!("point {k} is missing"));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p.vector), bits(&q.vector), "point {k}: vector");
        assert_eq!(p, q, "point {k}");
    }
}

fn export(router: &str, collection: &str, out: &Path, format: Option<&str>) -> Exit {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "export",
        "--router",
        router,
        "--collection",
        collection,
        "--out",
        out,
    ];
    if let Some(f) = format {
        args.extend(["--format", f]);
    }
    run(&args)
}

fn import(router: &str, collection: &str, file: &Path, extra: &[&str]) -> Exit {
    let mut args = vec![
        "import",
        "--router",
        router,
        "--collection",
        collection,
        file.to_str().unwrap(),
        "--batch",
        "100",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_gives_identical_points_in_both_formats() {
    let c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    let router = c.routers[0].grpc.clone();
    let mut client = c.any_client().await;
    let tmp = tempfile::tempdir().unwrap();
    for (format, binary) in [("parquet", true), ("jsonl", false)] {
        let source = format!("source-{format}");
        create(&router, &c, &source).await;
        upsert(
            &mut client,
            &source,
            (0..POINTS).map(|i| point(i, binary)).collect(),
        )
        .await;
        let want = contents(&mut client, &source).await;
        assert_eq!(want.len() as u64, POINTS);

        // The format from the extension for one, from --format for the other.
        let (file, flag) = match format {
            "parquet" => (tmp.path().join("points.parquet"), None),
            _ => (tmp.path().join("points.out"), Some("jsonl")),
        };
        let e = export(&router, &source, &file, flag);
        assert!(e.success, "export {format}: {}", e.stderr);
        assert!(
            e.stderr.contains(&format!("exported {POINTS} points")),
            "{}",
            e.stderr
        );

        let copy = format!("copy-{format}");
        create(&router, &c, &copy).await;
        let e = import(&router, &copy, &file, &["--format", format]);
        assert!(e.success, "import {format}: {}", e.stderr);
        assert!(
            e.stderr.contains(&format!("imported {POINTS} points")),
            "{}",
            e.stderr
        );
        assert_identical(&want, &contents(&mut client, &copy).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_that_cannot_be_written_fail_and_leave_no_file() {
    let c = Cluster::start(1, 1);
    c.wait_ready(1).await;
    let router = c.routers[0].grpc.clone();
    let mut client = c.any_client().await;
    create(&router, &c, "binary").await;
    upsert(
        &mut client,
        "binary",
        (0..20).map(|i| point(i, true)).collect(),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("binary.jsonl");
    let e = export(&router, "binary", &out, None);
    assert!(!e.success);
    assert!(
        e.stderr.contains("not UTF-8") && e.stderr.contains("parquet"),
        "{}",
        e.stderr
    );
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "a file was left"
    );

    let e = export(&router, "no-such-collection", &out, None);
    assert!(!e.success);
    assert!(e.stderr.contains("no-such-collection"), "{}", e.stderr);
    let e = export(&router, "binary", &tmp.path().join("x.npy"), None);
    assert!(!e.success);
    assert!(e.stderr.contains("jsonl or parquet"), "{}", e.stderr);
}

/// The count in "after N acknowledged points".
fn acked_in(stderr: &str) -> u64 {
    let (_, rest) = stderr
        .split_once("after ")
        .unwrap_or_else(|| panic!("no acknowledged count in: {stderr}"));
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no acknowledged count in: {stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_that_fail_halfway_exit_with_the_reason_and_the_acknowledged_count() {
    let c = Cluster::start(1, 1);
    c.wait_ready(1).await;
    let router = c.routers[0].grpc.clone();
    let mut client = c.any_client().await;
    let tmp = tempfile::tempdir().unwrap();

    // JSON lines with a misspelt field on line 1235.
    let jsonl = tmp.path().join("points.jsonl");
    let mut f = std::fs::File::create(&jsonl).unwrap();
    for i in 0..2_000u64 {
        let v = serde_json::to_string(&vector(i)).unwrap();
        let field = if i == 1_234 { "metdata" } else { "metadata" };
        writeln!(f, "{{\"id\":{i},\"vector\":{v},\"{field}\":{{}}}}").unwrap();
    }
    drop(f);
    create(&router, &c, "half-jsonl").await;
    let e = import(&router, "half-jsonl", &jsonl, &["--parallel", "1"]);
    assert!(!e.success, "import succeeded");
    assert!(e.stderr.contains("points.jsonl: line 1235"), "{}", e.stderr);
    assert!(e.stderr.contains("metdata"), "{}", e.stderr);
    assert_eq!(acked_in(&e.stderr), 1_200, "{}", e.stderr);
    assert_eq!(contents(&mut client, "half-jsonl").await.len(), 1_200);

    // .npy (float32, 2000 x 8) with a NaN in row 1234: the router refuses its batch.
    let npy = tmp.path().join("points.npy");
    let mut f = std::fs::File::create(&npy).unwrap();
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2000, 8), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    for i in 0..2_000u64 {
        for (d, x) in vector(i).into_iter().enumerate() {
            let x = if i == 1_234 && d == 5 { f32::NAN } else { x };
            f.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    drop(f);
    create(&router, &c, "half-npy").await;
    let e = import(&router, "half-npy", &npy, &["--parallel", "1"]);
    assert!(!e.success, "import succeeded");
    assert!(e.stderr.contains("non-finite"), "{}", e.stderr);
    assert_eq!(acked_in(&e.stderr), 1_200, "{}", e.stderr);
    let got = contents(&mut client, "half-npy").await;
    assert_eq!(got.len(), 1_200);
    for (k, p) in got {
        let Key::Int(i) = k else {
            panic!("string key {k}")
        };
        assert_eq!(p.vector, vector(i), "row {i}");
    }

    // A truncated .npy is refused before anything is sent, naming the incomplete row.
    let bytes = std::fs::read(&npy).unwrap();
    let cut = tmp.path().join("cut.npy");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let e = import(&router, "half-npy", &cut, &[]);
    assert!(!e.success);
    assert!(
        e.stderr.contains("cut.npy: truncated") && e.stderr.contains("row 1999"),
        "{}",
        e.stderr
    );
}
