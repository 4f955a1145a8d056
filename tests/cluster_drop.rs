//! Dropping a collection and creating it again under the same name never brings old points
//! back — with a fast control loop (the drop's deletes race the reconciler's releases), on
//! local disk and on S3, and with a node down during the drop, whose copy of the dropped
//! collection is deleted once it returns.

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cluster_support::*;
use vecshard_proto::v1 as pb;

const DIM: usize = 4;
const KEYS: u64 = 300;

fn fast() -> Options {
    Options {
        control_interval_ms: 20,
        failure_timeout_ms: 1500,
        ..Options::default()
    }
}

/// Key `i` as written in `round`: its vector and metadata differ from every other round's.
fn round_point(i: u64, round: u64) -> pb::Point {
    let round_value = pb::Value {
        kind: Some(pb::value::Kind::IntValue(round as i64)),
    };
    pb::Point {
        key: Some(int_key(i)),
        vector: vector(i + round * 1_000_000, DIM),
        metadata: [("round".to_string(), round_value)].into(),
        payload: Vec::new(),
        ..Default::default()
    }
}

async fn create(c: &Cluster, name: &str, shards: u32, storage: &str) {
    let mut client = c.any_client().await;
    client
        .create_collection(pb::CreateCollectionRequest {
            name: name.into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: shards,
            storage: storage.into(),
            index: None,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", c.logs()));
    c.wait_serving(name).await;
}

async fn drop_collection(c: &Cluster, name: &str) {
    let mut client = c.any_client().await;
    client
        .drop_collection(pb::DropCollectionRequest { name: name.into() })
        .await
        .unwrap_or_else(|e| panic!("drop {name}: {e:?}\n{}", c.logs()));
}

/// Write keys 0..KEYS as in `round`, then read every one back with its values.
async fn write_round(c: &Cluster, name: &str, round: u64) {
    let mut client = c.any_client().await;
    let points: Vec<pb::Point> = (0..KEYS).map(|i| round_point(i, round)).collect();
    client
        .upsert(pb::UpsertRequest {
            collection: name.into(),
            points,
        })
        .await
        .unwrap_or_else(|e| panic!("upsert round {round}: {e:?}\n{}", c.logs()));
    let got = client
        .get(pb::GetRequest {
            collection: name.into(),
            keys: (0..KEYS).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points.len(), KEYS as usize, "round {round}");
    for p in got.points {
        let Some(pb::key::Kind::Int(i)) = p.key.as_ref().and_then(|k| k.kind.clone()) else {
            panic!("unexpected key {:?}", p.key)
        };
        let want = round_point(i, round);
        assert_eq!(p.vector, want.vector, "key {i} in round {round}");
        assert_eq!(p.metadata, want.metadata, "key {i} in round {round}");
    }
}

/// The collection holds nothing: no point in a scan, none of the old keys found.
async fn assert_empty(c: &Cluster, name: &str, round: u64) {
    let mut client = c.any_client().await;
    let scanned = scan_all(&mut client, name).await;
    assert!(
        scanned.is_empty(),
        "round {round}: the re-created collection shows {} old points: {:?}…",
        scanned.len(),
        scanned.iter().take(10).collect::<Vec<_>>()
    );
    let got = client
        .get(pb::GetRequest {
            collection: name.into(),
            keys: (0..KEYS).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        got.points.is_empty(),
        "round {round}: get finds {} old points",
        got.points.len()
    );
}

/// Collection directories in a node's data directory (`<name>-<incarnation>` or, from
/// older clusters, `<name>`), each with the number of files below it.
fn collection_dirs(data_dir: &std::path::Path) -> BTreeMap<String, usize> {
    fn files(p: &std::path::Path) -> usize {
        std::fs::read_dir(p).map_or(0, |d| {
            d.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
    }
    std::fs::read_dir(data_dir).map_or_else(
        |_| BTreeMap::new(),
        |d| {
            d.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        files(&e.path()),
                    )
                })
                .collect()
        },
    )
}

/// Collection directories over every node.
fn all_collection_dirs(c: &Cluster) -> BTreeSet<String> {
    c.nodes
        .iter()
        .flat_map(|n| collection_dirs(&c.dir.path().join(&n.id)).into_keys())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_recreate_in_a_loop_never_resurrects_local_points() {
    let mut c = Cluster::start_with(1, 2, fast());
    c.wait_ready(2).await;
    create(&c, "c", 3, "local").await;
    for round in 0..8 {
        write_round(&c, "c", round).await;
        drop_collection(&c, "c").await;
        create(&c, "c", 3, "local").await;
        assert_empty(&c, "c", round).await;
    }
    // Every dropped incarnation's files go; only the current collection's remain.
    c.eventually(
        "only the current incarnation on disk",
        Duration::from_secs(30),
        || async { (all_collection_dirs(&c).len() == 1).then_some(()) },
    )
    .await;
    c.assert_all_alive();
}

/// Object keys under `prefix` on the local S3 test service (ListObjectsV2).
async fn s3_keys(prefix_url: &str) -> Vec<String> {
    let endpoint = std::env::var("VECSHARD_TEST_S3_ENDPOINT").unwrap();
    let rest = prefix_url.strip_prefix("s3://").unwrap();
    let (bucket, prefix) = rest.split_once('/').unwrap();
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}/");
        if let Some(t) = &token {
            url.push_str(&format!("&continuation-token={t}"));
        }
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        let tag = |t: &str| -> Vec<String> {
            body.split(&format!("<{t}>"))
                .skip(1)
                .filter_map(|s| s.split(&format!("</{t}>")).next())
                .map(str::to_string)
                .collect()
        };
        keys.extend(tag("Key"));
        token = tag("NextContinuationToken").into_iter().next();
        if token.is_none() {
            return keys;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_recreate_in_a_loop_never_resurrects_object_store_points() {
    let mut c = Cluster::start_with(1, 2, fast());
    c.wait_ready(2).await;
    let storage = c.storage();
    create(&c, "s", 2, &storage).await;
    for round in 0..5 {
        write_round(&c, "s", round).await;
        drop_collection(&c, "s").await;
        create(&c, "s", 2, &storage).await;
        assert_empty(&c, "s", round).await;
    }
    // Only one incarnation's objects remain (`<storage>/s-<incarnation>/…`).
    c.eventually(
        "only the current incarnation in the bucket",
        Duration::from_secs(30),
        || async {
            let (_, prefix) = storage["s3://".len()..].split_once('/').unwrap();
            let roots: BTreeSet<String> = s3_keys(&storage)
                .await
                .iter()
                .filter_map(|k| {
                    k.strip_prefix(prefix)?
                        .split('/')
                        .nth(1)
                        .map(str::to_string)
                })
                .collect();
            (roots.len() <= 1).then_some(())
        },
    )
    .await;
    c.assert_all_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_during_the_drop_deletes_the_old_points_when_it_returns() {
    let mut c = Cluster::start_with(1, 2, fast());
    c.wait_ready(2).await;
    create(&c, "d", 4, "local").await;
    write_round(&c, "d", 0).await;
    let victim = c.node_index("node-2");
    let victim_dir = c.dir.path().join("node-2");
    assert!(
        collection_dirs(&victim_dir)
            .values()
            .any(|files| *files > 0),
        "node-2 holds no shard of d"
    );

    c.nodes[victim].proc.as_mut().unwrap().kill9();
    c.eventually("node-2 down", Duration::from_secs(30), || async {
        let s = c.status().await?;
        s.nodes
            .iter()
            .any(|n| n.id == "node-2" && n.state == pb::NodeState::Down as i32)
            .then_some(())
    })
    .await;
    drop_collection(&c, "d").await;
    create(&c, "d", 4, "local").await;
    assert_empty(&c, "d", 0).await;
    write_round(&c, "d", 1).await;

    // node-2 returns: it holds no shard of the new collection, and its copy of the
    // dropped one is deleted.
    c.start_node(victim);
    c.wait_ready(2).await;
    c.eventually(
        "node-2's copy of the dropped collection deleted",
        Duration::from_secs(30),
        || async { collection_dirs(&victim_dir).is_empty().then_some(()) },
    )
    .await;
    write_round(&c, "d", 2).await;

    // A new incarnation spread over both nodes starts empty too.
    drop_collection(&c, "d").await;
    create(&c, "d", 4, "local").await;
    assert_empty(&c, "d", 2).await;
    write_round(&c, "d", 3).await;
    c.eventually(
        "only the current incarnation on disk",
        Duration::from_secs(30),
        || async { (all_collection_dirs(&c).len() == 1).then_some(()) },
    )
    .await;
    c.assert_all_alive();
}
