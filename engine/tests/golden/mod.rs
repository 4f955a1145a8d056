//! The contents of the frozen shard in `tests/data/shard-v1` (shared by the generator
//! `examples/write_golden.rs` and the test `tests/shard_format.rs`).
#![allow(dead_code)]

use vecshard_engine::{Key, Point, Value};

pub const DIM: usize = 6;
/// Integer keys deleted after their segment was flushed.
pub const DELETED_FLUSHED: [u64; 3] = [2, 61, 99];
/// A string key deleted by a record that is only in the WAL.
pub const DELETED_IN_WAL: &str = "doc-7";

pub fn key(i: u64) -> Key {
    if i % 10 == 7 {
        Key::Str(format!("doc-{i}"))
    } else {
        Key::Int(i)
    }
}

pub fn point(i: u64) -> Point {
    let v: Vec<f32> = (0..DIM as u64)
        .map(|d| ((i * 7 + d * 3) % 11) as f32 + 1.0)
        .collect();
    Point::new(key(i), v)
        .with("group", Value::Int((i % 4) as i64))
        .with("tags", Value::StrList(vec![format!("t{}", i % 3)]))
        .with_payload(format!("p{i}").into_bytes())
}

/// Whether point `i` is live in the frozen shard, with or without its WAL applied.
pub fn live(i: u64, with_wal: bool) -> bool {
    let deleted_in_wal = with_wal && key(i) == Key::Str(DELETED_IN_WAL.into());
    !(DELETED_FLUSHED.contains(&i) || deleted_in_wal)
}
