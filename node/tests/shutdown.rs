//! Graceful shutdown under load: calls in flight finish, new ones are refused, every
//! engine closes, and every acknowledged write is in the shard afterwards.

mod common;

use std::collections::BTreeSet;

use common::*;
use tokio::sync::mpsc;
use vecshard_engine::{Key, Options, Shard};
use vecshard_proto::internal::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_writes_and_closes_engines() {
    let dir = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    serve_writer(&mut c, "s", 0, 1, 4).await;
    serve_writer(&mut c, "s", 1, 1, 4).await;

    let (acked_tx, mut acked) = mpsc::channel::<(u32, u64)>(100_000);
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let (mut c, acked_tx) = (c.clone(), acked_tx.clone());
            tokio::spawn(async move {
                let shard = (w % 2) as u32;
                for batch in 0.. {
                    let keys: Vec<u64> = (0..20).map(|i| w * 1_000_000 + batch * 20 + i).collect();
                    let r = c
                        .upsert(pb::UpsertRequest {
                            target: target("s", shard, 1),
                            points: keys.iter().map(|k| p4(*k)).collect(),
                        })
                        .await;
                    match r {
                        Ok(_) => {
                            for k in keys {
                                let _ = acked_tx.send((shard, k)).await;
                            }
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    drop(acked_tx);
    // Let some writes through, then stop the node while the writers keep going.
    let mut got = BTreeSet::new();
    while got.len() < 500 {
        got.insert(acked.recv().await.unwrap());
    }
    tokio::time::timeout(PATIENCE, node.shutdown())
        .await
        .expect("shutdown completes");
    for w in writers {
        tokio::time::timeout(PATIENCE, w).await.unwrap().unwrap();
    }
    while let Some(k) = acked.recv().await {
        got.insert(k);
    }

    // The engines were closed (their locks are free) and hold every acknowledged key.
    for shard in 0..2u32 {
        let loc = dir.path().join("s").join(shard.to_string());
        let s = Shard::open(loc.to_str().unwrap(), Options::default()).expect("lock released");
        for (_, k) in got.iter().filter(|(sh, _)| *sh == shard) {
            assert!(
                s.get(&Key::Int(*k)).unwrap().is_some(),
                "acknowledged key {k} lost"
            );
        }
        assert_eq!(
            s.stats().memtable_rows,
            0,
            "closed engines flushed their memtable"
        );
        s.close().unwrap();
    }
}
