//! The file readers on malformed input: each error names the file and the line (JSON
//! lines) or row (Parquet, .npy, .fvecs), and the points before the bad one still come out
//! in order, so an import acknowledges exactly them.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use vecshard_model::{Key, Point};
use vecshard_transfer::{Format, read};

/// The points before the first error, and the error's text.
fn read_until_error(path: &Path, format: Format) -> (Vec<Point>, String) {
    let mut good = Vec::new();
    for p in read::points(path, format).unwrap() {
        match p {
            Ok(p) => good.push(p),
            Err(e) => return (good, format!("{e:#}")),
        }
    }
    panic!("{} read without an error", path.display())
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// A list column of 2-d vectors; row `null_at` holds a null value.
fn vectors(rows: usize, null_at: usize) -> ArrayRef {
    let mut b = ListBuilder::new(Float32Builder::new());
    for i in 0..rows {
        b.values().append_value(i as f32);
        if i == null_at {
            b.values().append_null();
        } else {
            b.values().append_value(0.5);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

#[test]
fn parquet_errors_name_the_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.parquet");
    write_parquet(
        &path,
        vec![
            (
                "id",
                Arc::new(Int64Array::from_iter_values(0..10)) as ArrayRef,
            ),
            ("vector", vectors(10, 6)),
        ],
    );
    let (good, e) = read_until_error(&path, Format::Parquet);
    assert_eq!(good.len(), 6);
    assert_eq!(good[5].key, Key::Int(5));
    assert_eq!(good[5].vector, vec![5.0, 0.5]);
    assert!(
        e.contains("bad.parquet: row 6") && e.contains("null"),
        "{e}"
    );

    // Negative keys, bad metadata JSON.
    write_parquet(
        &path,
        vec![
            ("key", Arc::new(Int64Array::from(vec![1, -2])) as ArrayRef),
            ("vector", vectors(2, 99)),
        ],
    );
    let (_, e) = read_until_error(&path, Format::Parquet);
    assert!(e.contains("row 1") && e.contains("negative"), "{e}");
    write_parquet(
        &path,
        vec![
            ("vector", vectors(2, 99)),
            (
                "metadata",
                Arc::new(StringArray::from(vec!["{\"a\":1}", "{\"a\":"])) as ArrayRef,
            ),
        ],
    );
    let (good, e) = read_until_error(&path, Format::Parquet);
    assert_eq!(good.len(), 1);
    assert!(e.contains("row 1") && e.contains("metadata"), "{e}");

    // Schema errors come at open, naming the file.
    write_parquet(
        &path,
        vec![
            ("vector", vectors(2, 99)),
            (
                "colour",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ],
    );
    let e = format!("{:#}", read::points(&path, Format::Parquet).err().unwrap());
    assert!(
        e.contains("bad.parquet") && e.contains("unknown column \"colour\""),
        "{e}"
    );
    write_parquet(
        &path,
        vec![(
            "vector",
            Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
        )],
    );
    let e = format!("{:#}", read::points(&path, Format::Parquet).err().unwrap());
    assert!(
        e.contains("bad.parquet") && e.contains("not a list of float32"),
        "{e}"
    );
    std::fs::write(&path, b"not parquet at all").unwrap();
    let e = format!("{:#}", read::points(&path, Format::Parquet).err().unwrap());
    assert!(
        e.contains("bad.parquet: not a readable Parquet file"),
        "{e}"
    );
}

#[test]
fn json_lines_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(
        &path,
        "{\"id\": 1, \"vector\": [1, 2]}\n\n{\"id\": \"a\", \"vector\": [3, 4]}\n{\"id\": 2, \"vector\": [1, \"x\"]}\n",
    )
    .unwrap();
    let (good, e) = read_until_error(&path, Format::Jsonl);
    assert_eq!(good.len(), 2);
    assert!(e.contains("bad.jsonl: line 4"), "{e}");
}

#[test]
fn npy_and_fvecs_errors_name_the_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npy");
    let npy = |descr: &str, shape: &str, values: usize| {
        let header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"\x93NUMPY\x01\x00").unwrap();
        f.write_all(&(header.len() as u16).to_le_bytes()).unwrap();
        f.write_all(header.as_bytes()).unwrap();
        for i in 0..values {
            f.write_all(&(i as f32).to_le_bytes()).unwrap();
        }
    };
    npy("<f4", "(3, 2)", 6);
    let points: Vec<Point> = read::points(&path, Format::Npy)
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    assert_eq!(points.len(), 3);
    assert_eq!(points[2], Point::new(2u64, vec![4.0, 5.0]));
    assert_eq!(read::count_hint(&path, Format::Npy), Some(3));
    npy("<f8", "(3, 2)", 12);
    let e = format!("{:#}", read::points(&path, Format::Npy).err().unwrap());
    assert!(e.contains("bad.npy") && e.contains("float32"), "{e}");
    npy("<f4", "(3, 2)", 5);
    let e = format!("{:#}", read::points(&path, Format::Npy).err().unwrap());
    assert!(
        e.contains("bad.npy: truncated") && e.contains("row 2"),
        "{e}"
    );
    std::fs::write(&path, b"PK\x03\x04 a zip").unwrap();
    let e = format!("{:#}", read::points(&path, Format::Npy).err().unwrap());
    assert!(e.contains("bad.npy: not an .npy file"), "{e}");

    let fvecs = dir.path().join("bad.fvecs");
    let mut f = std::fs::File::create(&fvecs).unwrap();
    for i in 0..3 {
        f.write_all(&2i32.to_le_bytes()).unwrap();
        f.write_all(&(i as f32).to_le_bytes()).unwrap();
        if i < 2 {
            f.write_all(&1f32.to_le_bytes()).unwrap();
        }
    }
    drop(f);
    let (good, e) = read_until_error(&fvecs, Format::Fvecs);
    assert_eq!(good.len(), 2);
    assert!(e.contains("bad.fvecs: row 2 is truncated"), "{e}");
}

#[test]
fn formats_come_from_the_extension_unless_named() {
    assert_eq!(Format::detect(Path::new("a.parquet")), Format::Parquet);
    assert_eq!(Format::detect(Path::new("a.npy")), Format::Npy);
    assert_eq!(Format::detect(Path::new("a.fvecs")), Format::Fvecs);
    assert_eq!(Format::detect(Path::new("a.jsonl")), Format::Jsonl);
    assert_eq!(Format::detect(Path::new("points")), Format::Jsonl);
    assert_eq!(
        Format::or_detect(Some(Format::Parquet), Path::new("a.jsonl")),
        Format::Parquet
    );
    assert!("csv".parse::<Format>().unwrap_err().contains("jsonl"));
}
