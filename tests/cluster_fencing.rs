//! Fencing end to end: a node frozen with SIGSTOP (partitioned but alive) loses its
//! object-store shard to another node; a write it still had queued for the old epoch must
//! fail after SIGCONT and never become visible.

mod cluster_support;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster_support::*;
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb;
use vecshard_router::partition::Partitioner;

const DIM: usize = 8;
const C: &str = "fenced";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_owner_cannot_make_a_write_visible_after_its_shard_moved() {
    let mut c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    let mut r = c.client(0).await;
    r.create_collection(pb::CreateCollectionRequest {
        name: C.into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: 2,
        storage: c.storage(),
        index: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let placed = c.wait_serving(C).await;
    upsert(&mut r, C, 0..200, DIM).await;
    let mut acked: BTreeSet<u64> = (0..200).collect();

    let (number, epoch, victim) = (placed[0].number, placed[0].epoch, placed[0].owner.clone());
    let status = c.status().await.unwrap();
    let address = status
        .nodes
        .iter()
        .find(|n| n.id == victim)
        .unwrap()
        .address
        .clone();
    let part = Partitioner::new(2);
    let in_shard = |i: &u64| part.shard_of(&int_key(*i)) == Some(number);
    let stale_key = (1_000_000u64..).find(in_shard).unwrap();

    // Freeze the owner, with a write for the old epoch already on its way to it.
    let vi = c.node_index(&victim);
    c.nodes[vi].proc.as_ref().unwrap().stop();
    let mut direct = NodeClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let stale = tokio::spawn(async move {
        let mut req = tonic::Request::new(pi::UpsertRequest {
            target: Some(pi::ShardTarget {
                collection: C.into(),
                shard: number,
                epoch,
            }),
            points: vec![point(stale_key, DIM)],
        });
        req.set_timeout(Duration::from_secs(120));
        direct.upsert(req).await
    });

    // Writes through the router wait for the failover and land on the new owner.
    let fresh: Vec<u64> = (200..2000).filter(in_shard).take(50).collect();
    upsert(&mut r, C, fresh.iter().copied(), DIM).await;
    acked.extend(&fresh);
    let moved = c
        .eventually(
            "the frozen node's shard moved",
            Duration::from_secs(60),
            || async {
                let s = c.status().await?;
                let p = s
                    .shards
                    .into_iter()
                    .find(|p| p.collection == C && p.number == number)?;
                (p.owner != victim && p.state == pb::ShardState::Serving as i32).then_some(p)
            },
        )
        .await;
    assert_eq!(moved.epoch, epoch + 1);

    // Wake it up: the queued write for the old epoch is refused.
    c.nodes[vi].proc.as_ref().unwrap().cont();
    let answer = stale.await.unwrap();
    assert!(
        answer.is_err(),
        "a fenced owner acknowledged a write: {answer:?}"
    );
    let code = answer.unwrap_err().code();
    assert!(
        matches!(
            code,
            tonic::Code::FailedPrecondition | tonic::Code::Unavailable
        ),
        "{code:?}"
    );

    // The woken node rejoins; shards may move back to it. The stale write never shows.
    c.wait_ready(2).await;
    c.wait_serving(C).await;
    upsert(&mut r, C, 3000..3100, DIM).await;
    acked.extend(3000..3100);
    let got = r
        .get(pb::GetRequest {
            collection: C.into(),
            keys: vec![int_key(stale_key)],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.points.is_empty(), "the fenced write became visible");
    let hits = r
        .search(pb::SearchRequest {
            collection: C.into(),
            vector: vector(stale_key, DIM),
            k: 5,
            exact: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(hits.hits.iter().all(|h| h.key != Some(int_key(stale_key))));
    assert_eq!(scan_all(&mut r, C).await, acked);
    c.assert_all_alive();
}
