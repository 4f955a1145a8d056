//! Points whose every field says which write batch stored them, shared by the tests that
//! check a shard holds whole acknowledged batches (checkpoints, crashes during merges).

use std::collections::BTreeMap;

use vecshard_engine::{Key, Point, Shard, Value};

/// The point batch `batch` writes under `key`: vector, metadata and payload all name it.
pub fn point(key: u64, batch: u64) -> Point {
    let mut p = Point::new(key, vec![batch as f32, key as f32, 1.0, -(batch as f32)])
        .with("batch", Value::Int(batch as i64));
    p.payload = batch.to_le_bytes().to_vec();
    p
}

/// The shard's content as key → batch, each point checked to be exactly its batch's.
pub fn contents(shard: &Shard) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    let mut after: Option<Key> = None;
    loop {
        let page = shard.scan(after.as_ref(), 500).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for p in page {
            let Key::Int(k) = p.key else {
                panic!("unexpected key {:?}", p.key)
            };
            let batch = p.vector[0] as u64;
            assert_eq!(
                p,
                point(k, batch),
                "point {k} is not what batch {batch} wrote"
            );
            out.insert(k, batch);
        }
    }
    out
}
