//! Writes the frozen test data for the current format version (run by hand when a format
//! version changes, then commit the output):
//!
//! ```text
//! cargo run -p vecshard-engine --example write_golden -- engine/tests/data/shard-v1
//! cargo run -p vecshard-engine --example write_golden -- engine/tests/data/shard-v2 2
//! ```
//! (the second argument, `2`, writes the segments in format 2; the rest is the same.)
//!
//! It prints the index sections that `tests/index_format.rs` freezes, and writes a small
//! shard directory that `tests/shard_format.rs` reopens: flushed segments (one compacted),
//! tombstones, and writes that are only in the WAL (the handle is dropped without closing).

use vecshard_engine::index::{IndexParams, MemIndex, SliceVectors};
use vecshard_engine::{Key, Metric, Options, SegmentFormat, Shard, ShardSpec};

#[path = "../tests/golden/mod.rs"]
mod golden;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() {
    let data: Vec<f32> = (0..16 * 4)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0)
        .collect();
    let vectors = SliceVectors {
        data: &data,
        dim: 4,
    };
    let params = IndexParams {
        m: 2,
        ef_construction: 8,
        ..IndexParams::default()
    };
    let mem = MemIndex::new(params, Metric::L2, 4, 16);
    for r in 0..16 {
        mem.insert(r, &vectors);
    }
    let bytes = mem.to_bytes(16, &vectors);
    println!("GRAPH: {}", hex(&bytes.graph));
    println!("CODES: {}", hex(&bytes.codes));

    let Some(dir) = std::env::args().nth(1) else {
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    let segment_format = match std::env::args().nth(2).as_deref() {
        Some("2") => SegmentFormat::V2,
        _ => SegmentFormat::V1,
    };
    let opts = Options {
        background: false,
        segment_format,
        ..Options::default()
    };
    let shard = Shard::create(
        &dir,
        ShardSpec::new(golden::DIM, Metric::Cosine),
        opts.clone(),
    )
    .unwrap();
    shard.upsert((0..60).map(golden::point).collect()).unwrap();
    shard.flush().unwrap();
    shard
        .upsert((60..120).map(golden::point).collect())
        .unwrap();
    shard
        .delete(
            golden::DELETED_FLUSHED
                .iter()
                .map(|k| Key::Int(*k))
                .collect(),
        )
        .unwrap();
    shard.flush().unwrap();
    shard.compact().unwrap();
    shard
        .upsert((120..150).map(golden::point).collect())
        .unwrap();
    shard
        .delete(vec![Key::Str(golden::DELETED_IN_WAL.into())])
        .unwrap();
    drop(shard); // not closed: the last writes stay in the WAL only
    let _ = std::fs::remove_file(std::path::Path::new(&dir).join("LOCK"));
    println!("wrote {dir}");
}
