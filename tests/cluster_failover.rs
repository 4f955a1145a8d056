//! Three routers and three data nodes as real processes, object-store shards: import
//! through any router, exact search over all data, kill -9 a node (its shards move, every
//! acknowledged write is still found), kill -9 the Raft leader (a new leader serves, the map
//! is intact), restart everything (nothing lost).

mod cluster_support;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use cluster_support::*;
use vecshard_proto::v1 as pb;

const DIM: usize = 16;
const C: &str = "docs";

async fn check_search(client: &mut Client, acked: &BTreeSet<u64>, seed: u64) {
    for q in 0..4 {
        let query = vector(1_000_000 + seed * 10 + q, DIM);
        let r = client
            .search(pb::SearchRequest {
                collection: C.into(),
                vector: query.clone(),
                k: 10,
                exact: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_same_hits(&r, &exact(&query, acked, DIM, 10), &query, DIM);
        let cov = r.coverage.unwrap();
        assert_eq!(cov.shards_answered, cov.shards_total);
    }
    // A filter passes through to every shard.
    let query = vector(2_000_000 + seed, DIM);
    let r = client
        .search(pb::SearchRequest {
            collection: C.into(),
            vector: query.clone(),
            k: 10,
            exact: true,
            filter_spec: Some(pb::search_request::FilterSpec::FilterJson(
                r#"{"field": "tag", "eq": "a"}"#.into(),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let tagged: BTreeSet<u64> = acked
        .iter()
        .copied()
        .filter(|i| i.is_multiple_of(3))
        .collect();
    assert_same_hits(&r, &exact(&query, &tagged, DIM, 10), &query, DIM);
}

async fn placements(c: &Cluster) -> Vec<(u32, String, u64)> {
    let s = c.status().await.unwrap();
    s.shards
        .iter()
        .filter(|p| p.collection == C)
        .map(|p| (p.number, p.owner.clone(), p.epoch))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_survives_node_loss_leader_loss_and_a_full_restart() {
    let mut c = Cluster::start(3, 3);
    c.wait_ready(3).await;
    let mut r1 = c.client(1).await;
    r1.create_collection(pb::CreateCollectionRequest {
        name: C.into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: 6,
        storage: c.storage(),
        index: None,
        ..Default::default()
    })
    .await
    .unwrap();
    c.wait_serving(C).await;

    // Import a JSON-lines file through router 3 with the CLI (in a pipe: `acked N` lines).
    let file = c.dir.path().join("points.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for i in 0..1500u64 {
        let p = serde_json::json!({"id": i, "vector": vector(i, DIM), "metadata": {"tag": if i % 3 == 0 { "a" } else { "b" }}});
        writeln!(f, "{p}").unwrap();
    }
    drop(f);
    let out = std::process::Command::new(bin())
        .args([
            "import",
            "--router",
            &c.routers[2].grpc,
            "--collection",
            C,
            "--batch",
            "200",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.logs()
    );
    assert_eq!(stdout.lines().last(), Some("acked 1500"), "{stdout}");
    let mut r0 = c.client(0).await;
    upsert(&mut r0, C, 1500..3000, DIM).await;
    let mut acked: BTreeSet<u64> = (0..3000).collect();
    check_search(&mut r1, &acked, 0).await;

    // kill -9 the node with the most shards; writes go on and land on the new owners.
    let before = placements(&c).await;
    let victim = {
        let mut count = std::collections::BTreeMap::new();
        for (_, o, _) in &before {
            *count.entry(o.clone()).or_insert(0) += 1;
        }
        count.into_iter().max_by_key(|(_, n)| *n).unwrap().0
    };
    let vi = c.node_index(&victim);
    c.nodes[vi].proc.as_mut().unwrap().kill9();
    upsert(&mut r0, C, 3000..3500, DIM).await;
    acked.extend(3000..3500);
    let moved = c
        .eventually(
            "the dead node's shards moved",
            Duration::from_secs(60),
            || async {
                let p = placements(&c).await;
                p.iter().all(|(_, o, _)| *o != victim).then_some(p)
            },
        )
        .await;
    for ((n, old_owner, old_epoch), (_, _, epoch)) in before.iter().zip(&moved) {
        let expect = if *old_owner == victim {
            old_epoch + 1
        } else {
            *old_epoch
        };
        assert!(
            *epoch >= expect,
            "shard {n}: epoch {epoch}, expected at least {expect}"
        );
    }
    c.wait_serving(C).await;
    assert_all_found(&mut r1, C, &acked).await;
    check_search(&mut r1, &acked, 1).await;

    // kill -9 the Raft leader: a new one serves and the map is intact.
    let map_before = placements(&c).await;
    let li = c.leader().await;
    c.routers[li].proc.as_mut().unwrap().kill9();
    c.routers[li].proc = None;
    let new_leader = c.leader().await;
    assert_ne!(new_leader, li);
    let mut nl = c.client(new_leader).await;
    let map_after = placements(&c).await;
    assert_eq!(map_before, map_after, "the shard map survived the leader");
    nl.create_collection(pb::CreateCollectionRequest {
        name: "second".into(),
        dimension: 4,
        metric: pb::Metric::Dot as i32,
        shard_count: 2,
        storage: "local".into(),
        index: None,
        ..Default::default()
    })
    .await
    .unwrap();
    upsert(&mut nl, C, 3500..4000, DIM).await;
    acked.extend(3500..4000);

    // Restart everything: nothing is lost.
    for r in &mut c.routers {
        if let Some(p) = r.proc.as_mut() {
            p.kill9();
        }
    }
    for n in &mut c.nodes {
        if let Some(p) = n.proc.as_mut() {
            p.kill9();
        }
    }
    for i in 0..c.routers.len() {
        c.start_router(i);
    }
    for i in 0..c.nodes.len() {
        c.start_node(i);
    }
    c.wait_ready(3).await;
    c.wait_serving(C).await;
    let mut any = c.any_client().await;
    let names: Vec<String> = any
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["docs", "second"]);
    assert_eq!(scan_all(&mut any, C).await, acked);
    check_search(&mut any, &acked, 2).await;
    c.assert_all_alive();
}
