//! A node refuses assignments beyond `node.memory_budget_bytes`: RESOURCE_EXHAUSTED with a
//! message naming the budget, the ask and what is used, and the shard shows FAILED with
//! that reason in the node's status. Room freed by a release admits it on the next try.

mod common;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;

/// The test config's memtable (1 MiB) × 3: one writer's estimate.
const WRITER: u64 = 3 << 20;

async fn status_of(c: &mut Client, shard: u32) -> pb::ShardStatus {
    let status = c
        .node_status(pb::NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    status
        .shards
        .into_iter()
        .find(|s| s.collection == "m" && s.shard == shard)
        .unwrap_or_else(|| panic!("shard m/{shard} is not in the node's status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_beyond_the_memory_budget_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.node.memory_budget_bytes = 3 * WRITER + WRITER / 2;
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut c = connect(&node).await;
    for shard in 0..3 {
        serve_writer(&mut c, "m", shard, 1, 4).await;
    }

    let e = c
        .assign_shard(assign_req("m", 3, 1, pb::Role::Writer, 4))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let budget = (3 * WRITER + WRITER / 2).to_string();
    let (ask, used) = (WRITER.to_string(), (3 * WRITER).to_string());
    for needle in [
        "node.memory_budget_bytes",
        budget.as_str(),
        ask.as_str(),
        used.as_str(),
        "m/3",
    ] {
        assert!(e.message().contains(needle), "{needle:?} not in {e:?}");
    }
    let refused = status_of(&mut c, 3).await;
    assert_eq!(refused.state, pb::ShardState::Failed as i32, "{refused:?}");
    assert!(
        refused.error.contains("node.memory_budget_bytes") && refused.error.contains(&ask),
        "{refused:?}"
    );
    assert!(
        !dir.path().join("m").join("3").exists(),
        "a refused shard must not be opened or created"
    );
    // Releasing a shard frees its room; repeating the assignment retries.
    c.release_shard(pb::ReleaseShardRequest {
        collection: "m".into(),
        shard: 0,
        epoch: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    serve_writer(&mut c, "m", 3, 1, 4).await;
    node.shutdown().await;
}
