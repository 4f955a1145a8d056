//! Replicated local-disk collections as processes (issue 17, steps 1 and 2 of
//! `docs/design/014-replication.md`): `replication_factor` and `write_ack` through the CLI,
//! REST and gRPC; replicas on distinct nodes in the shard map, shown by `GET /v1/cluster`
//! and `vecshard status`; too few live nodes is FAILED_PRECONDITION naming both numbers;
//! the primary ships every write to its followers, so each replica, read through its own
//! node, holds every acknowledged value; with two of three replicas gone writes fail with
//! UNAVAILABLE / 503 naming the shard and the replicas that answered, while the surviving
//! primary serves reads.

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster_support::*;
use serde_json::{Value as J, json};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb;

const DIM: usize = 4;

fn vecshard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_collections_are_placed_on_distinct_nodes_and_shown() {
    let mut c = Cluster::start(1, 3);
    c.wait_ready(3).await;
    let router = c.routers[0].grpc.clone();
    let http = format!("http://{}", c.routers[0].http);
    let mut client = c.client(0).await;

    // More replicas than live nodes: refused before anything is proposed.
    let e = client
        .create_collection(pb::CreateCollectionRequest {
            name: "too-many".into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            replication_factor: 4,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("replication_factor 4 needs 4 live data nodes, 3 are alive"),
        "{e:?}"
    );

    // The CLI: three copies of each of three shards, every write on all in-sync replicas.
    let (ok, out, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "rep",
        "--dim",
        "4",
        "--shards",
        "3",
        "--replication-factor",
        "3",
        "--write-ack",
        "all",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("rep: 4-d l2, 3 shards, storage local, replication factor 3 (write ack all)"),
        "{out}"
    );
    let (ok, _, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "bad",
        "--dim",
        "4",
        "--replication-factor",
        "6",
    ]);
    assert!(
        !ok && err.contains("replication_factor") && err.contains('6'),
        "{err}"
    );

    // REST: the defaults (majority), the checks, and what describe and list say.
    let http_client = reqwest::Client::new();
    let post = |body: J| {
        let req = http_client
            .post(format!("{http}/v1/collections"))
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<J>().await.unwrap())
        }
    };
    let (status, body) = post(json!({
        "name": "rest-rep", "dimension": DIM, "metric": "l2", "shard_count": 2,
        "replication_factor": 2
    }))
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["spec"]["replication_factor"], 2, "{body}");
    assert_eq!(body["spec"]["write_ack"], "majority", "{body}");
    for (bad, needle) in [
        (
            json!({"name": "b1", "dimension": 4, "metric": "l2", "replication_factor": 9}),
            "replication_factor",
        ),
        (
            json!({"name": "b2", "dimension": 4, "metric": "l2", "replication_factor": 2, "write_ack": "one"}),
            "write_ack",
        ),
    ] {
        let (status, body) = post(bad).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(needle), "{body}");
    }
    let (status, body) = post(json!({
        "name": "too-many", "dimension": DIM, "metric": "l2", "replication_factor": 5
    }))
    .await;
    assert_eq!(status, 412, "{body}");
    assert!(
        body.to_string()
            .contains("needs 5 live data nodes, 3 are alive"),
        "{body}"
    );
    let described: J = reqwest::get(format!("{http}/v1/collections/rep"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["spec"]["replication_factor"], 3, "{described}");
    assert_eq!(described["spec"]["write_ack"], "all", "{described}");

    // An unreplicated collection next to them answers exactly as before.
    let (status, body) = post(json!({"name": "plain", "dimension": DIM, "metric": "l2"})).await;
    assert_eq!(status, 201, "{body}");
    assert!(body["spec"].get("replication_factor").is_none(), "{body}");

    // The shard map: every shard's replicas on distinct nodes, the owner the primary.
    c.wait_serving("rep").await;
    c.wait_serving("plain").await;
    let cluster: J = reqwest::get(format!("{http}/v1/cluster"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shards = cluster["shards"].as_array().unwrap();
    let mut primaries = BTreeSet::new();
    for s in shards {
        let replicas = s["replicas"].as_array().unwrap();
        match s["collection"].as_str().unwrap() {
            "plain" => assert!(replicas.is_empty(), "{s}"),
            name => {
                let want = if name == "rep" { 3 } else { 2 };
                let nodes: BTreeSet<&str> = replicas
                    .iter()
                    .map(|r| r["node"].as_str().unwrap())
                    .collect();
                assert_eq!(nodes.len(), want, "distinct nodes: {s}");
                assert_eq!(replicas[0]["role"], "primary", "{s}");
                assert_eq!(replicas[0]["node"], s["owner"], "{s}");
                for r in replicas {
                    assert_eq!(r["epoch"], s["epoch"], "{s}");
                    // Followers take every write from the first: all start in sync.
                    assert_eq!(r["in_sync"], true, "{s}");
                }
                assert!(replicas[1..].iter().all(|r| r["role"] == "follower"), "{s}");
                if name == "rep" {
                    primaries.insert(s["owner"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(
        primaries.len(),
        3,
        "one primary of `rep` per node: {cluster}"
    );
    // Every node holds a copy of every shard of `rep` (three of three).
    for n in cluster["nodes"].as_array().unwrap() {
        let held = n["shards"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["collection"] == "rep")
            .count();
        assert_eq!(held, 3, "{n}");
    }

    // The primary takes writes and serves reads, values and all.
    let points: Vec<pb::Point> = (0..200u64)
        .map(|i| pb::Point {
            key: Some(int_key(i)),
            vector: vector(i, DIM),
            ..Default::default()
        })
        .collect();
    client
        .upsert(pb::UpsertRequest {
            collection: "rep".into(),
            points,
        })
        .await
        .unwrap();
    let got = client
        .get(pb::GetRequest {
            collection: "rep".into(),
            keys: (0..200u64).map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points.len(), 200);
    for p in &got.points {
        let Some(pb::key::Kind::Int(i)) = p.key.as_ref().and_then(|k| k.kind.clone()) else {
            panic!("{p:?}");
        };
        assert_eq!(p.vector, vector(i, DIM));
    }

    // `vecshard status` lists the replicas.
    let (ok, out, err) = vecshard(&["status", "--router", &router]);
    assert!(ok, "{err}");
    assert!(out.contains("REPLICA"), "{out}");
    assert_eq!(
        out.lines()
            .filter(
                |l| l.starts_with("rep ") && (l.contains(" primary ") || l.contains(" follower "))
            )
            .count(),
        9,
        "{out}"
    );
    c.assert_all_alive();
}

/// Nodes with `node.zone` labels: every shard's replicas land in distinct zones, and the
/// zones show in `GET /v1/cluster`, the gRPC status and `vecshard status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_spread_over_zones_and_zones_are_shown() {
    let zones = vec!["z1", "z1", "z2", "z3"];
    let c = Cluster::start_with(
        1,
        4,
        Options {
            zones: zones.clone(),
            ..Options::default()
        },
    );
    c.wait_ready(4).await;
    let mut client = c.client(0).await;
    let placements = create_replicated(&c, &mut client, "zoned", 4, "majority").await;
    let zone_of = |node: &str| zones[c.node_index(node)];
    for p in &placements {
        let nodes: BTreeSet<&str> = p.replicas.iter().map(|r| r.node.as_str()).collect();
        let in_zones: BTreeSet<&str> = nodes.iter().map(|n| zone_of(n)).collect();
        assert_eq!((nodes.len(), in_zones.len()), (3, 3), "{p:?}");
    }
    let status = c.status().await.unwrap();
    for n in &status.nodes {
        assert_eq!(n.zone, zone_of(&n.id), "{n:?}");
    }
    let body: J = reqwest::get(format!("http://{}/v1/cluster", c.routers[0].http))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: BTreeMap<String, String> = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().into(),
                n["zone"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(shown.len(), 4, "{body}");
    for (id, zone) in &shown {
        assert_eq!(zone, zone_of(id), "{body}");
    }
    let (ok, out, err) = vecshard(&["status", "--router", &c.routers[0].grpc]);
    assert!(ok, "{err}");
    assert!(out.contains("ZONE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("node-3 ") && l.contains(" z2 ")),
        "{out}"
    );
}

/// Key `k` as writer round `v` wrote it: vector and metadata differ from every other round.
fn versioned(k: u64, v: u64) -> pb::Point {
    let value = |s: String| pb::Value {
        kind: Some(pb::value::Kind::StringValue(s)),
    };
    pb::Point {
        key: Some(int_key(k)),
        vector: vector(k * 1000 + v, DIM),
        metadata: [("version".to_string(), value(format!("{k}@{v}")))].into(),
        ..Default::default()
    }
}

/// What a reader must find: the latest acknowledged version of every key, `None` once
/// deleted.
type Expected = BTreeMap<u64, Option<u64>>;

/// Compare points read back with `want`: every live key present with its latest value
/// (vector and metadata), every deleted key absent. Returns the first difference.
fn differences(want: &Expected, got: &[pb::Point]) -> Option<String> {
    let got: BTreeMap<u64, &pb::Point> = got
        .iter()
        .map(|p| (vecshard_test_support::api::key_id(p.key.as_ref()), p))
        .collect();
    for (k, v) in want {
        match (v, got.get(k)) {
            (None, None) => {}
            (None, Some(_)) => return Some(format!("key {k} was deleted but is there")),
            (Some(v), None) => return Some(format!("key {k} (version {v}) is missing")),
            (Some(v), Some(p)) => {
                let w = versioned(*k, *v);
                if p.vector != w.vector || p.metadata != w.metadata {
                    return Some(format!(
                        "key {k}: want version {v}, got metadata {:?}",
                        p.metadata
                    ));
                }
            }
        }
    }
    None
}

/// Get `keys` from every shard of `collection` on one node directly (its own copy,
/// whatever its role), at the shard map's epochs.
async fn read_replica(
    address: &str,
    collection: &str,
    epochs: &[(u32, u64)],
    keys: &[u64],
) -> Result<Vec<pb::Point>, tonic::Status> {
    let mut node = NodeClient::connect(format!("http://{address}"))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?
        .max_decoding_message_size(256 << 20);
    let mut out = Vec::new();
    for (shard, epoch) in epochs {
        let got = node
            .get(pi::GetRequest {
                target: Some(pi::ShardTarget {
                    collection: collection.into(),
                    shard: *shard,
                    epoch: *epoch,
                }),
                keys: keys.iter().copied().map(int_key).collect(),
            })
            .await?;
        out.extend(got.into_inner().points);
    }
    Ok(out)
}

/// Every replica of `collection`, read through its own node, holds `want` (polled: a
/// follower outside the majority may still be applying the last frames).
async fn assert_every_replica_holds(c: &Cluster, collection: &str, want: &Expected) {
    assert_replicas_hold(c, collection, want, &[]).await
}

/// [`assert_every_replica_holds`] on the replicas not on the nodes `gone`.
async fn assert_replicas_hold(c: &Cluster, collection: &str, want: &Expected, gone: &[&str]) {
    let status = c.status().await.unwrap();
    let address: BTreeMap<String, String> = status
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.address.clone()))
        .collect();
    let shards: Vec<&pb::ShardPlacement> = status
        .shards
        .iter()
        .filter(|s| s.collection == collection)
        .collect();
    let epochs: Vec<(u32, u64)> = shards.iter().map(|s| (s.number, s.epoch)).collect();
    let holders: BTreeSet<&str> = shards
        .iter()
        .flat_map(|s| s.replicas.iter().map(|r| r.node.as_str()))
        .collect();
    assert_eq!(holders.len(), 3, "{status:?}");
    let keys: Vec<u64> = want.keys().copied().collect();
    for node in holders.into_iter().filter(|n| !gone.contains(n)) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match read_replica(&address[node], collection, &epochs, &keys).await {
                Ok(points) => match differences(want, &points) {
                    None => break,
                    Some(d) => d,
                },
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < until,
                "node {node} does not hold every acknowledged write of {collection}: {last}\n{}",
                c.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_holds_every_acknowledged_write_and_two_lost_stop_writes() {
    let mut c = Cluster::start_with(
        1,
        3,
        Options {
            write_timeout_ms: 8000,
            ..Options::default()
        },
    );
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    for (name, shards) in [("rep", 2), ("solo", 1)] {
        create_replicated(&c, &mut client, name, shards, "majority").await;
    }

    // Ingest under load: four writers on disjoint keys, each replacing and deleting its
    // own keys in rounds; every acknowledged write is recorded in order.
    let writers = (0..4u64).map(|w| {
        let mut client = client.clone();
        async move {
            let mut want = Expected::new();
            let keys: Vec<u64> = (w * 1000..w * 1000 + 150).collect();
            for round in 1..=10u64 {
                if round % 3 == 0 {
                    let gone: Vec<u64> = keys
                        .iter()
                        .copied()
                        .filter(|k| k % 5 == round % 5)
                        .collect();
                    client
                        .delete(pb::DeleteRequest {
                            collection: "rep".into(),
                            keys: gone.iter().copied().map(int_key).collect(),
                        })
                        .await
                        .unwrap();
                    for k in gone {
                        want.insert(k, None);
                    }
                    continue;
                }
                for chunk in keys.chunks(50) {
                    client
                        .upsert(pb::UpsertRequest {
                            collection: "rep".into(),
                            points: chunk.iter().map(|k| versioned(*k, round)).collect(),
                        })
                        .await
                        .unwrap();
                    for k in chunk {
                        want.insert(*k, Some(round));
                    }
                }
            }
            // Finally some keys are deleted for good.
            let gone: Vec<u64> = keys.iter().copied().filter(|k| k % 7 == 0).collect();
            client
                .delete(pb::DeleteRequest {
                    collection: "rep".into(),
                    keys: gone.iter().copied().map(int_key).collect(),
                })
                .await
                .unwrap();
            for k in gone {
                want.insert(k, None);
            }
            want
        }
    });
    let mut want = Expected::new();
    for part in futures::future::join_all(writers).await {
        want.extend(part);
    }
    assert!(want.values().any(Option::is_none) && want.values().any(Option::is_some));
    assert_every_replica_holds(&c, "rep", &want).await;
    // Followers refuse client writes: only the primary takes them.
    let status = c.status().await.unwrap();
    let rep0 = status
        .shards
        .iter()
        .find(|s| s.collection == "rep" && s.number == 0)
        .unwrap();
    let follower = &rep0.replicas[1].node;
    let follower_addr = &status
        .nodes
        .iter()
        .find(|n| &n.id == follower)
        .unwrap()
        .address;
    let mut node = NodeClient::connect(format!("http://{follower_addr}"))
        .await
        .unwrap();
    let e = node
        .upsert(pi::UpsertRequest {
            target: Some(pi::ShardTarget {
                collection: "rep".into(),
                shard: 0,
                epoch: rep0.epoch,
            }),
            points: vec![versioned(1, 99)],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("not primary"), "{e:?}");

    // `solo`: one shard on all three nodes. Write, then lose both followers.
    let mut solo = Expected::new();
    client
        .upsert(pb::UpsertRequest {
            collection: "solo".into(),
            points: (0..100).map(|k| versioned(k, 1)).collect(),
        })
        .await
        .unwrap();
    solo.extend((0..100).map(|k| (k, Some(1))));
    assert_every_replica_holds(&c, "solo", &solo).await;
    let status = c.status().await.unwrap();
    let solo0 = status
        .shards
        .iter()
        .find(|s| s.collection == "solo")
        .unwrap();
    let primary = solo0.owner.clone();
    for r in &solo0.replicas[1..] {
        let i = c.node_index(&r.node);
        c.nodes[i].proc.as_mut().unwrap().kill9();
    }

    // gRPC: UNAVAILABLE before the caller's deadline, naming the shard and the answers.
    let started = Instant::now();
    let mut req = tonic::Request::new(pb::UpsertRequest {
        collection: "solo".into(),
        points: vec![versioned(7, 2)],
    });
    req.set_timeout(Duration::from_secs(3));
    let e = client.upsert(req).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    for needle in [
        "shards [0] of \"solo\"",
        "shard solo/0",
        "durable on 1 of 3 replicas",
        "majority needs 2",
    ] {
        assert!(e.message().contains(needle), "{needle:?} in {e:?}");
    }
    assert!(took < Duration::from_secs(4), "no hang: {took:?}");

    // REST: 503 after the router's write deadline, with the same words.
    let http = format!("http://{}", c.routers[0].http);
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{http}/v1/collections/solo/points"))
        .json(&json!({"points": [{"id": 8, "vector": [0.1, 0.2, 0.3, 0.4]}]}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status_code = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status_code, 503, "{body}");
    assert!(
        body.contains("shard solo/0") && body.contains("1 of 3 replicas"),
        "{body}"
    );
    assert!(took < Duration::from_secs(10), "no hang: {took:?}");

    // Reads go on from the surviving primary: every acknowledged value. (Keys 7 and 8
    // may or may not have been written: their writes were not acknowledged.)
    let got = client
        .get(pb::GetRequest {
            collection: "solo".into(),
            keys: (0..100)
                .filter(|k| *k != 7 && *k != 8)
                .map(int_key)
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    solo.remove(&7);
    solo.remove(&8);
    assert_eq!(differences(&solo, &got.points), None);
    assert_eq!(got.points.len(), 98);
    let alive = c.node_index(&primary);
    assert!(c.nodes[alive].proc.as_mut().unwrap().alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_write_ack_all_a_lost_follower_leaves_the_in_sync_set_and_writes_go_on() {
    let lag = Duration::from_millis(1000);
    let mut c = Cluster::start_with(
        1,
        3,
        Options {
            write_timeout_ms: 8000,
            replica_lag_timeout_ms: lag.as_millis() as u64,
            ..Options::default()
        },
    );
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    create_replicated(&c, &mut client, "every", 1, "all").await;
    let write = |client: &mut Client, version: u64| {
        let mut client = client.clone();
        async move {
            let started = Instant::now();
            client
                .upsert(pb::UpsertRequest {
                    collection: "every".into(),
                    points: (0..50).map(|k| versioned(k, version)).collect(),
                })
                .await
                .unwrap();
            started.elapsed()
        }
    };
    write(&mut client, 1).await;
    let mut want: Expected = (0..50).map(|k| (k, Some(1))).collect();
    assert_every_replica_holds(&c, "every", &want).await;

    // Lose one follower: the next write waits for it until the lag timeout, then the
    // primary has it dropped from the in-sync set and acknowledges with the other two.
    let status = c.status().await.unwrap();
    let shard = status
        .shards
        .iter()
        .find(|s| s.collection == "every")
        .unwrap();
    let lost = shard.replicas[2].node.clone();
    let i = c.node_index(&lost);
    c.nodes[i].proc.as_mut().unwrap().kill9();
    let took = write(&mut client, 2).await;
    assert!(
        took >= lag - Duration::from_millis(100),
        "acknowledged without the lost follower too early: {took:?}"
    );
    want.extend((0..50).map(|k| (k, Some(2))));
    let status = c.status().await.unwrap();
    let shard = status
        .shards
        .iter()
        .find(|s| s.collection == "every")
        .unwrap();
    for r in &shard.replicas {
        assert_eq!(r.in_sync, r.node != lost, "{shard:?}");
    }
    assert_replicas_hold(&c, "every", &want, &[&lost]).await;
    // Later writes no longer wait for it.
    let took = write(&mut client, 3).await;
    assert!(took < lag, "{took:?}");
    want.extend((0..50).map(|k| (k, Some(3))));
    assert_replicas_hold(&c, "every", &want, &[&lost]).await;
}

/// Per key: the last acknowledged version and the last attempted one (a write that
/// failed may or may not have survived).
type Acked = BTreeMap<u64, (u64, u64)>;

/// Every acknowledged key holds a version between its last acknowledged and its last
/// attempted one, with that version's vector and metadata.
fn acked_differences(want: &Acked, got: &[pb::Point]) -> Option<String> {
    let got: BTreeMap<u64, &pb::Point> = got
        .iter()
        .map(|p| (vecshard_test_support::api::key_id(p.key.as_ref()), p))
        .collect();
    for (k, (acked, tried)) in want {
        let Some(p) = got.get(k) else {
            return Some(format!(
                "key {k} (acknowledged at version {acked}) is missing"
            ));
        };
        let ok = (*acked..=*tried).any(|v| {
            let w = versioned(*k, v);
            p.vector == w.vector && p.metadata == w.metadata
        });
        if !ok {
            return Some(format!(
                "key {k}: want a version in {acked}..={tried}, got {:?}",
                p.metadata
            ));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_the_primary_under_ingest_a_follower_takes_over_with_every_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let failure_timeout = Duration::from_millis(2000);
    let mut c = Cluster::start_with(
        1,
        3,
        Options {
            write_timeout_ms: 4000,
            failure_timeout_ms: failure_timeout.as_millis() as u64,
            ..Options::default()
        },
    );
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    let before = create_replicated(&c, &mut client, "failover", 1, "").await;
    let (old_primary, old_epoch) = (before[0].owner.clone(), before[0].epoch);

    // Three writers on disjoint keys, each rewriting its keys with growing versions
    // until told to stop; every acknowledged write and every attempt is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (mut client, stop, acks) = (client.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let mut want = Acked::new();
                let keys: Vec<u64> = (w * 100..w * 100 + 40).collect();
                let mut version = 0;
                while !stop.load(Ordering::Acquire) {
                    version += 1;
                    let mut req = tonic::Request::new(pb::UpsertRequest {
                        collection: "failover".into(),
                        points: keys.iter().map(|k| versioned(*k, version)).collect(),
                    });
                    req.set_timeout(Duration::from_secs(3));
                    let ok = client.upsert(req).await.is_ok();
                    for k in &keys {
                        let e = want.entry(*k).or_insert((0, 0));
                        e.1 = version;
                        if ok {
                            e.0 = version;
                        }
                    }
                    if ok {
                        acks.fetch_add(1, Ordering::AcqRel);
                    }
                }
                want.retain(|_, (acked, _)| *acked > 0);
                want
            })
        })
        .collect();
    c.eventually("writes acknowledged", Duration::from_secs(30), || async {
        (acks.load(Ordering::Acquire) >= 30).then_some(())
    })
    .await;

    let i = c.node_index(&old_primary);
    c.nodes[i].proc.as_mut().unwrap().kill9();
    let killed = Instant::now();
    let at_kill = acks.load(Ordering::Acquire);
    // A follower is promoted and writes are acknowledged again.
    c.eventually(
        "writes acknowledged after the kill",
        Duration::from_secs(30),
        || async { (acks.load(Ordering::Acquire) >= at_kill + 10).then_some(()) },
    )
    .await;
    let took = killed.elapsed();
    stop.store(true, Ordering::Release);
    let mut want = Acked::new();
    for w in writers {
        want.extend(w.await.unwrap());
    }
    assert!(
        took < failure_timeout + Duration::from_secs(8),
        "writes resumed {took:?} after the kill"
    );
    let status = c.status().await.unwrap();
    let shard = status
        .shards
        .iter()
        .find(|s| s.collection == "failover")
        .unwrap();
    assert_ne!(shard.owner, old_primary, "{shard:?}");
    assert_eq!(shard.epoch, old_epoch + 1, "{shard:?}");
    assert_eq!(shard.replicas[0].node, shard.owner, "{shard:?}");

    // Every acknowledged write is there: through the router, and on each survivor.
    let keys: Vec<u64> = want.keys().copied().collect();
    let got = client
        .get(pb::GetRequest {
            collection: "failover".into(),
            keys: keys.iter().copied().map(int_key).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(acked_differences(&want, &got.points), None);
    let address: BTreeMap<String, String> = status
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.address.clone()))
        .collect();
    for r in shard.replicas.iter().filter(|r| r.node != old_primary) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got = read_replica(&address[&r.node], "failover", &[(0, shard.epoch)], &keys).await;
            let last = match got {
                Ok(points) => match acked_differences(&want, &points) {
                    None => break,
                    Some(d) => d,
                },
                Err(e) => e.to_string(),
            };
            assert!(Instant::now() < until, "{}: {last}\n{}", r.node, c.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Create the RF 3 collection `name` (`write_ack` empty: the default, majority) with
/// `shards` shards and wait until every shard serves.
async fn create_replicated(
    c: &Cluster,
    client: &mut Client,
    name: &str,
    shards: u32,
    write_ack: &str,
) -> Vec<pb::ShardPlacement> {
    client
        .create_collection(pb::CreateCollectionRequest {
            name: name.into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: shards,
            replication_factor: 3,
            write_ack: write_ack.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.wait_serving(name).await
}

/// Start a 3-node cluster with `o`, create the RF 3, one-shard collection `name` and
/// write `rounds` rounds of keys 0..40 (round `v` writes version `v` of every key).
/// Returns the cluster, a client, the shard's placement and what every replica must hold.
async fn replicated_with_rounds(
    name: &str,
    write_ack: &str,
    o: Options,
    rounds: u64,
) -> (Cluster, Client, pb::ShardPlacement, Expected) {
    let c = Cluster::start_with(1, 3, o);
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    create_replicated(&c, &mut client, name, 1, write_ack).await;
    let mut want = Expected::new();
    for v in 1..=rounds {
        write_round(&mut client, name, v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
    }
    let status = c.status().await.unwrap();
    let shard = status
        .shards
        .into_iter()
        .find(|s| s.collection == name)
        .unwrap();
    (c, client, shard, want)
}

/// Round `v`: version `v` of keys 0..40 in one upsert.
async fn write_round(client: &mut Client, name: &str, v: u64) -> Result<(), tonic::Status> {
    client
        .upsert(pb::UpsertRequest {
            collection: name.into(),
            points: (0..40).map(|k| versioned(k, v)).collect(),
        })
        .await
        .map(|_| ())
}

/// SIGKILL node `i`, delete its whole data directory, start it again.
fn wipe_and_restart(c: &mut Cluster, i: usize) {
    c.nodes[i].proc.as_mut().unwrap().kill9();
    std::fs::remove_dir_all(c.node_data_dir(i)).unwrap();
    c.start_node(i);
}

/// Fence `shard`'s copy on node `address` at the epoch after the map's.
async fn fence(address: &str, name: &str, epoch: u64) -> Result<(u64, u64), tonic::Status> {
    let mut node = NodeClient::connect(format!("http://{address}"))
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let r = node
        .fence_replica(pi::FenceReplicaRequest {
            target: Some(pi::ShardTarget {
                collection: name.into(),
                shard: 0,
                epoch: epoch + 1,
            }),
        })
        .await?
        .into_inner();
    Ok((r.last_epoch, r.last_seq))
}

/// The address of node `id` in the cluster status.
async fn address_of(c: &Cluster, id: &str) -> String {
    let status = c.status().await.unwrap();
    status
        .nodes
        .iter()
        .find(|n| n.id == id)
        .map(|n| n.address.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_catches_up_under_ingest_and_answers_fences_only_then() {
    let (mut c, mut client, shard, mut want) =
        replicated_with_rounds("wiped", "majority", Options::default(), 20).await;
    let follower = shard.replicas[1].node.clone();
    let b = c.node_index(&follower);
    wipe_and_restart(&mut c, b);
    let started = Instant::now();
    // Ingest goes on (the primary and the other follower are a majority) while the
    // wiped copy comes back and catches up from the primary's tail.
    let mut v = 20;
    let address = address_of(&c, &follower).await;
    loop {
        v += 1;
        write_round(&mut client, "wiped", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
        let got = read_replica(&address, "wiped", &[(0, shard.epoch)], &[0]).await;
        if v >= 30 && got.is_ok_and(|p| differences(&BTreeMap::from([(0, Some(v))]), &p).is_none())
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the wiped follower did not catch up\n{}",
            c.logs()
        );
    }
    // Every replica, the wiped one read through its own node, holds every write's latest
    // value.
    assert_every_replica_holds(&c, "wiped", &want).await;
    let log = c.nodes[b].proc.as_ref().unwrap().log_text();
    assert!(log.contains("new follower copy: catching up"), "{log}");
    // Caught up, it answers a fence with the primary's whole log (40 writes a round).
    let (last_epoch, last_seq) = c
        .eventually(
            "the caught-up copy answers a fence",
            Duration::from_secs(30),
            || async { fence(&address, "wiped", shard.epoch).await.ok() },
        )
        .await;
    assert_eq!((last_epoch, last_seq), (shard.epoch, 40 * v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_behind_the_primary_tail_catches_up_by_checkpoint_and_answers_no_fence_before()
 {
    let (mut c, mut client, shard, mut want) = replicated_with_rounds(
        "behind",
        "majority",
        Options {
            replica_tail_bytes: 4096,
            ..Options::default()
        },
        20,
    )
    .await;
    let follower = shard.replicas[1].node.clone();
    let b = c.node_index(&follower);
    wipe_and_restart(&mut c, b);
    let address = address_of(&c, &follower).await;
    // Writes go on. The tail holds only the last frames, so the wiped copy gets a
    // checkpoint, then the tail. Before it reached the primary's log end it must not
    // answer a promotion's fence (with (0, 0) or a checkpoint's position); the first
    // answer it gives holds every write acknowledged before it was asked.
    let mut v = 20;
    let mut refusals = Vec::new();
    let started = Instant::now();
    let answer = loop {
        v += 1;
        write_round(&mut client, "behind", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
        match fence(&address, "behind", shard.epoch).await {
            Ok(answer) => break answer,
            Err(e) if e.message().contains("has not caught up") => refusals.push(e),
            Err(_) => {} // still starting or opening
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the wiped follower did not catch up\n{}",
            c.logs()
        );
    };
    // Caught up means it reached the log end of one primary call: it may miss the last
    // round (acknowledged by the other follower) but no more, and it is past the 20
    // rounds written before the wipe.
    let (last_epoch, last_seq) = answer;
    assert_eq!(last_epoch, shard.epoch, "{answer:?}");
    assert!(
        last_seq % 40 == 0 && last_seq > 40 * 20 && last_seq >= 40 * (v - 1) && last_seq <= 40 * v,
        "{answer:?} after round {v}"
    );
    // Whether a refusal was seen depends on timing; each one said why.
    for refusal in &refusals {
        assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
        assert!(
            refusal.message().contains("answers no fence")
                && refusal.message().contains("behind/0"),
            "{refusal:?}"
        );
    }
    eprintln!(
        "caught up {:?} after the restart; {} fence refusals before",
        started.elapsed(),
        refusals.len()
    );
    // It caught up through a checkpoint, not the tail.
    let primary = c.node_index(&shard.owner);
    let log = c.nodes[primary].proc.as_ref().unwrap().log_text();
    assert!(
        log.contains("behind the primary's tail") && log.contains("sent a checkpoint"),
        "{log}"
    );
    let log = c.nodes[b].proc.as_ref().unwrap().log_text();
    assert!(log.contains("installed the primary's checkpoint"), "{log}");
    // The others hold every acknowledged value; its copy, read through its own node, every
    // value up to the position it answered (the fence moved it to the next epoch: it takes
    // no more frames).
    assert_replicas_hold(&c, "behind", &want, &[&follower]).await;
    let held: Expected = (0..40).map(|k| (k, Some(last_seq / 40))).collect();
    let keys: Vec<u64> = (0..40).collect();
    let got = read_replica(&address, "behind", &[(0, shard.epoch)], &keys)
        .await
        .unwrap();
    assert_eq!(differences(&held, &got), None);
}

/// Entries of node `i`'s data directory that belong to collection `name` (its directory
/// `<name>-<incarnation>` holds the shard directories and their replica records).
fn collection_files(c: &Cluster, i: usize, name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    let Ok(dirs) = std::fs::read_dir(c.node_data_dir(i)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in dirs.flatten() {
        let n = d.file_name().to_string_lossy().into_owned();
        if n.starts_with(&prefix) {
            out.push(n.clone());
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                out.push(format!("{n}/{}", f.file_name().to_string_lossy()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_a_replicated_collection_deletes_every_copy() {
    let (c, mut client, shard, _) =
        replicated_with_rounds("dropped", "majority", Options::default(), 5).await;
    assert_eq!(shard.replicas.len(), 3, "{shard:?}");
    for i in 0..3 {
        let files = collection_files(&c, i, "dropped");
        assert!(
            files.iter().any(|f| f.ends_with("/shard-0000"))
                && files.iter().any(|f| f.ends_with("/shard-0000.replica")),
            "node {i} holds no copy: {files:?}"
        );
    }
    client
        .drop_collection(pb::DropCollectionRequest {
            name: "dropped".into(),
        })
        .await
        .unwrap();
    // The primary's copy and both followers' copies, with their replica records and the
    // collection directories, go.
    c.eventually("every copy deleted", Duration::from_secs(30), || async {
        (0..3)
            .all(|i| collection_files(&c, i, "dropped").is_empty())
            .then_some(())
    })
    .await;
    // ... and the map forgets the dropped collection once every deletion is confirmed.
    c.eventually("the drop finished", Duration::from_secs(30), || async {
        let logs = c.routers[0].proc.as_ref()?.log_text();
        (logs.matches("control: delete dropped dropped/0").count() >= 3).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_write_ack_all_a_wiped_follower_catches_up_and_rejoins_the_in_sync_set() {
    let o = Options {
        write_timeout_ms: 8000,
        replica_lag_timeout_ms: 1000,
        ..Options::default()
    };
    let (mut c, mut client, shard, mut want) = replicated_with_rounds("rejoin", "all", o, 5).await;
    let follower = shard.replicas[2].node.clone();
    let b = c.node_index(&follower);
    let in_sync = |status: &pb::ClusterStatusResponse| {
        let s = status
            .shards
            .iter()
            .find(|s| s.collection == "rejoin")
            .unwrap();
        s.replicas
            .iter()
            .find(|r| r.node == follower)
            .unwrap()
            .in_sync
    };
    // Lost: the primary has it dropped from the in-sync set after the lag timeout.
    c.nodes[b].proc.as_mut().unwrap().kill9();
    write_round(&mut client, "rejoin", 6).await.unwrap();
    want.extend((0..40).map(|k| (k, Some(6))));
    assert!(!in_sync(&c.status().await.unwrap()));
    // Its disk is wiped and it returns under ingest: it catches up from the primary's
    // tail and the primary has it added back.
    std::fs::remove_dir_all(c.node_data_dir(b)).unwrap();
    c.start_node(b);
    let restarted = Instant::now();
    let mut v = 6;
    loop {
        v += 1;
        write_round(&mut client, "rejoin", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
        if in_sync(&c.status().await.unwrap()) {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the wiped follower did not rejoin the in-sync set\n{}",
            c.logs()
        );
    }
    eprintln!(
        "rejoined the in-sync set {:?} after the restart, {} writes of 40 points in the log",
        restarted.elapsed(),
        v
    );
    let rejoined = (follower.as_str(), shard.epoch);
    later_rounds_reach_the_follower_before_their_ack(
        &c,
        &mut client,
        "rejoin",
        rejoined,
        v,
        &mut want,
    )
    .await;
}

/// With `all`, every write after `follower` (at `epoch`) rejoined the in-sync set waits
/// for it: rounds `v + 1 ..= v + 3`, each read from its own copy right after the
/// acknowledgement (not polled); then every replica holds `want`.
async fn later_rounds_reach_the_follower_before_their_ack(
    c: &Cluster,
    client: &mut Client,
    name: &str,
    (follower, epoch): (&str, u64),
    v: u64,
    want: &mut Expected,
) {
    let address = address_of(c, follower).await;
    let keys: Vec<u64> = (0..40).collect();
    for v in v + 1..=v + 3 {
        write_round(client, name, v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
        let got = read_replica(&address, name, &[(0, epoch)], &keys)
            .await
            .unwrap();
        assert_eq!(differences(want, &got), None, "round {v}");
    }
    assert_every_replica_holds(c, name, want).await;
}

/// `router.follower_reads`: a primary that stalls (SIGSTOP: still alive in the shard map,
/// it never answers) does not stall reads — after `hedge_after_ms` an in-sync follower
/// answers gets and searches, with every acknowledged value (`all`). Without the setting
/// the same reads wait for the primary (checked first, with a short deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_follower_reads_a_stalled_primary_does_not_stall_reads() {
    let o = |follower_reads: &'static str| Options {
        // The stalled primary stays alive in the map for the whole test.
        failure_timeout_ms: 120_000,
        router_settings: vec![follower_reads, "hedge_after_ms = 50"],
        ..Options::default()
    };
    let get = |name: &str| {
        let mut r = tonic::Request::new(pb::GetRequest {
            collection: name.into(),
            keys: (0..40).map(int_key).collect(),
        });
        r.set_timeout(Duration::from_secs(3));
        r
    };
    for (setting, served) in [
        ("follower_reads = false", false),
        ("follower_reads = true", true),
    ] {
        let (c, mut client, shard, want) =
            replicated_with_rounds("hedged", "all", o(setting), 3).await;
        let primary = c.node_index(&shard.owner);
        c.nodes[primary].proc.as_ref().unwrap().stop();
        let got = client.get(get("hedged")).await;
        if !served {
            let e = got.unwrap_err();
            assert!(
                matches!(
                    e.code(),
                    tonic::Code::DeadlineExceeded
                        | tonic::Code::Unavailable
                        | tonic::Code::Cancelled
                ),
                "{setting}: {e:?}"
            );
            c.nodes[primary].proc.as_ref().unwrap().cont();
            continue;
        }
        let got = got.unwrap().into_inner();
        assert_eq!(differences(&want, &got.points), None, "{setting}");
        assert_eq!(got.points.len(), 40);
        for k in [0, 17, 39] {
            let mut req = tonic::Request::new(pb::SearchRequest {
                collection: "hedged".into(),
                vector: vector(k * 1000 + 3, DIM),
                k: 1,
                exact: true,
                with_metadata: true,
                ..Default::default()
            });
            req.set_timeout(Duration::from_secs(3));
            let hits = client.search(req).await.unwrap().into_inner().hits;
            let top = hits.first().unwrap();
            assert_eq!(top.key, Some(int_key(k)), "{hits:?}");
            assert_eq!(top.metadata, versioned(k, 3).metadata, "{hits:?}");
        }
        // The primary was alive in the map all along: followers answered because of the
        // setting, not because the primary was declared down.
        let status = c.status().await.unwrap();
        let node = status.nodes.iter().find(|n| n.id == shard.owner).unwrap();
        assert_eq!(node.state, pb::NodeState::Alive as i32, "{node:?}");
        c.nodes[primary].proc.as_ref().unwrap().cont();
    }
}

/// Whether `node` is in the in-sync set of `collection`'s shard 0.
fn in_sync_of(status: &pb::ClusterStatusResponse, collection: &str, node: &str) -> bool {
    let s = status
        .shards
        .iter()
        .find(|s| s.collection == collection && s.number == 0)
        .unwrap();
    s.replicas.iter().find(|r| r.node == node).unwrap().in_sync
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_write_ack_all_a_stopped_follower_behind_the_tail_rejoins_by_checkpoint() {
    let o = Options {
        write_timeout_ms: 8000,
        replica_lag_timeout_ms: 1000,
        replica_tail_bytes: 4096,
        ..Options::default()
    };
    let (mut c, mut client, shard, mut want) = replicated_with_rounds("stopped", "all", o, 5).await;
    let follower = shard.replicas[2].node.clone();
    let b = c.node_index(&follower);
    // Lost (its copy stays on disk): dropped from the in-sync set after the lag timeout,
    // and the primary's tail moves far past its position.
    c.nodes[b].proc.as_mut().unwrap().kill9();
    for v in 6..=15 {
        write_round(&mut client, "stopped", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
    }
    assert!(!in_sync_of(
        &c.status().await.unwrap(),
        "stopped",
        &follower
    ));
    // Back under ingest: a checkpoint, then the tail, then `ExpandIsr`.
    c.start_node(b);
    let restarted = Instant::now();
    let mut v = 15;
    loop {
        v += 1;
        write_round(&mut client, "stopped", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
        if in_sync_of(&c.status().await.unwrap(), "stopped", &follower) {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the stopped follower did not rejoin the in-sync set\n{}",
            c.logs()
        );
    }
    eprintln!(
        "rejoined the in-sync set {:?} after the restart, {v} writes of 40 points in the log",
        restarted.elapsed()
    );
    let primary = c.node_index(&shard.owner);
    let log = c.nodes[primary].proc.as_ref().unwrap().log_text();
    assert!(
        log.contains("behind the primary's tail") && log.contains("sent a checkpoint"),
        "{log}"
    );
    let rejoined = (follower.as_str(), shard.epoch);
    later_rounds_reach_the_follower_before_their_ack(
        &c,
        &mut client,
        "stopped",
        rejoined,
        v,
        &mut want,
    )
    .await;
}

/// A primary whose data directory was wiped does not reopen empty: it hears from its
/// followers that they hold writes and refuses to open, reporting the shard failed; no
/// read answers from an empty copy. The leader treats a primary that reports its copy
/// failed like a lost one: it promotes an in-sync follower, writes go on, and the old
/// primary, now a follower, is rebuilt by checkpoint and rejoins the in-sync set with
/// every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_primary_does_not_open_empty_and_a_follower_is_promoted_over_it() {
    let name = "wipedprimary";
    let o = Options {
        write_timeout_ms: 3000,
        ..Options::default()
    };
    let (mut c, mut client, shard, mut want) = replicated_with_rounds(name, "majority", o, 5).await;
    let p = c.node_index(&shard.owner);
    wipe_and_restart(&mut c, p);
    // It asks its followers, hears that they hold 200 writes, and refuses to open. Until
    // a follower is promoted, every read that answers has every acknowledged value.
    let cluster = &c;
    let promoted = c
        .eventually(
            "a follower is promoted over the refusing primary",
            Duration::from_secs(60),
            || {
                let mut client = client.clone();
                let want = want.clone();
                let old = shard.clone();
                async move {
                    let read = client
                        .get(pb::GetRequest {
                            collection: name.into(),
                            keys: (0..40).map(int_key).collect(),
                        })
                        .await;
                    if let Ok(r) = read {
                        assert_eq!(differences(&want, &r.into_inner().points), None);
                    }
                    let s = cluster.status().await?;
                    let s = s.shards.into_iter().find(|s| s.collection == name)?;
                    (s.owner != old.owner && s.epoch > old.epoch).then_some(s)
                }
            },
        )
        .await;
    let log = c.nodes[p].proc.as_ref().unwrap().log_text();
    assert!(
        log.contains("refusing to open as primary") && log.contains("holds writes up to 200"),
        "{log}"
    );
    // Writes go on through the new primary.
    let mut v = 6;
    c.eventually("writes resume", Duration::from_secs(30), || {
        let mut client = client.clone();
        async move { write_round(&mut client, name, v).await.ok() }
    })
    .await;
    want.extend((0..40).map(|k| (k, Some(v))));
    v += 1;
    write_round(&mut client, name, v).await.unwrap();
    want.extend((0..40).map(|k| (k, Some(v))));
    // The old primary is rebuilt from a checkpoint and rejoins the in-sync set.
    c.eventually(
        "the wiped node rejoins the in-sync set",
        Duration::from_secs(60),
        || async {
            let s = c.status().await?;
            in_sync_of(&s, name, &shard.owner).then_some(())
        },
    )
    .await;
    assert_ne!(promoted.owner, shard.owner);
    assert_every_replica_holds(&c, name, &want).await;
}

/// Catch-up speed of a new (wiped) replica of a larger shard: 50,000 points of 128
/// dimensions. Run by hand (note 014 has the number):
/// `cargo nextest run -p vecshard --test cluster_replication --run-ignored only measure_checkpoint_catch_up --no-capture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run by hand"]
async fn measure_checkpoint_catch_up() {
    const POINTS: u64 = 50_000;
    const BATCH: u64 = 250;
    const BIG_DIM: usize = 128;
    let mut c = Cluster::start_with(
        1,
        3,
        Options {
            replica_tail_bytes: 4096,
            ..Options::default()
        },
    );
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    client
        .create_collection(pb::CreateCollectionRequest {
            name: "big".into(),
            dimension: BIG_DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: 1,
            replication_factor: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let shard = c.wait_serving("big").await.remove(0);
    // A debug build's followers can take longer than a call's deadline to index a batch:
    // a refused (ambiguous) batch is written again.
    for batch in 0..POINTS / BATCH {
        let points: Vec<pb::Point> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|k| pb::Point {
                key: Some(int_key(k)),
                vector: vector(k, BIG_DIM),
                ..Default::default()
            })
            .collect();
        c.eventually("a batch written", Duration::from_secs(300), || {
            let (mut client, points) = (client.clone(), points.clone());
            async move {
                client
                    .upsert(pb::UpsertRequest {
                        collection: "big".into(),
                        points,
                    })
                    .await
                    .ok()
            }
        })
        .await;
    }
    let follower = shard.replicas[1].node.clone();
    let b = c.node_index(&follower);
    wipe_and_restart(&mut c, b);
    let started = Instant::now();
    let primary = c.node_index(&shard.owner);
    let line = c
        .eventually(
            "the wiped replica got a checkpoint",
            Duration::from_secs(600),
            || async {
                let log = c.nodes[primary].proc.as_ref()?.log_text();
                log.lines()
                    .find(|l| l.contains("sent a checkpoint"))
                    .map(str::to_string)
            },
        )
        .await;
    eprintln!(
        "{POINTS} points of {BIG_DIM} dimensions: {line}\n(restart to checkpoint sent: {:?})",
        started.elapsed()
    );
    // The copy holds the points (a sample, values checked).
    let address = address_of(&c, &follower).await;
    let keys: Vec<u64> = (0..POINTS).step_by(997).collect();
    let got = c
        .eventually("the copy serves", Duration::from_secs(60), || async {
            read_replica(&address, "big", &[(0, shard.epoch)], &keys)
                .await
                .ok()
                .filter(|p| p.len() == keys.len())
        })
        .await;
    for p in got {
        let k = vecshard_test_support::api::key_id(p.key.as_ref());
        assert_eq!(p.vector, vector(k, BIG_DIM), "key {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deposed_primary_with_unacknowledged_writes_is_rebuilt_from_a_checkpoint() {
    let o = Options {
        write_timeout_ms: 1500,
        ..Options::default()
    };
    let (mut c, mut client, shard, mut want) =
        replicated_with_rounds("diverged", "majority", o, 5).await;
    let a = c.node_index(&shard.owner);
    let followers: Vec<usize> = shard.replicas[1..]
        .iter()
        .map(|r| c.node_index(&r.node))
        .collect();
    // Both followers frozen: a write of new keys is durable on the primary alone and
    // fails (not acknowledged).
    for &f in &followers {
        c.nodes[f].proc.as_ref().unwrap().stop();
    }
    let unacknowledged: Vec<u64> = (1000..1040).collect();
    let refused = client
        .upsert(pb::UpsertRequest {
            collection: "diverged".into(),
            points: unacknowledged.iter().map(|k| versioned(*k, 1)).collect(),
        })
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // The primary dies; the followers return and one of them is promoted.
    c.nodes[a].proc.as_mut().unwrap().kill9();
    for &f in &followers {
        c.nodes[f].proc.as_ref().unwrap().cont();
    }
    let promoted = c
        .eventually("a follower promoted", Duration::from_secs(60), || async {
            let s = c.status().await?;
            let p = s.shards.into_iter().find(|s| s.collection == "diverged")?;
            (p.owner != shard.owner && p.state == pb::ShardState::Serving as i32).then_some(p)
        })
        .await;
    c.eventually(
        "a write through the new primary",
        Duration::from_secs(30),
        || {
            let mut client = client.clone();
            async move { write_round(&mut client, "diverged", 6).await.ok() }
        },
    )
    .await;
    want.extend((0..40).map(|k| (k, Some(6))));
    // The deposed primary returns as a follower holding 40 writes past the new epoch's
    // start: its copy is discarded and rebuilt from the new primary's checkpoint, so the
    // writes no one acknowledged are gone from every replica.
    c.start_node(a);
    want.extend(unacknowledged.iter().map(|k| (*k, None)));
    for v in 7..=9 {
        write_round(&mut client, "diverged", v).await.unwrap();
        want.extend((0..40).map(|k| (k, Some(v))));
    }
    assert_every_replica_holds(&c, "diverged", &want).await;
    let log = c.nodes[a].proc.as_ref().unwrap().log_text();
    assert!(log.contains("installed the primary's checkpoint"), "{log}");
    let p = c.node_index(&promoted.owner);
    let log = c.nodes[p].proc.as_ref().unwrap().log_text();
    assert!(
        log.contains("follower needs a checkpoint") && log.contains("sent a checkpoint"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_of_an_idle_shard_catches_up_by_checkpoint_without_a_write() {
    let (mut c, _client, shard, want) = replicated_with_rounds(
        "idle",
        "majority",
        Options {
            replica_tail_bytes: 4096,
            ..Options::default()
        },
        10,
    )
    .await;
    let follower = shard.replicas[1].node.clone();
    let b = c.node_index(&follower);
    wipe_and_restart(&mut c, b);
    // No write follows: the primary's idle probe finds the empty copy behind its tail.
    let address = address_of(&c, &follower).await;
    let keys: Vec<u64> = (0..40).collect();
    c.eventually(
        "the wiped copy holds every write",
        Duration::from_secs(60),
        || async {
            let got = read_replica(&address, "idle", &[(0, shard.epoch)], &keys)
                .await
                .ok()?;
            differences(&want, &got).is_none().then_some(())
        },
    )
    .await;
    let log = c.nodes[b].proc.as_ref().unwrap().log_text();
    assert!(log.contains("installed the primary's checkpoint"), "{log}");
    // A checkpoint alone (seq 400 = the primary's log end) clears its catching-up flag
    // with the next probe.
    let answer = c
        .eventually("it answers a fence", Duration::from_secs(30), || async {
            fence(&address, "idle", shard.epoch).await.ok()
        })
        .await;
    assert_eq!(answer, (shard.epoch, 400));
}

/// Node `i`'s metrics text.
async fn node_metrics(c: &Cluster, i: usize) -> String {
    reqwest::get(format!("http://{}/metrics", c.nodes[i].http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the series `name{labels}` in a metrics text.
fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

/// `node`'s replica of shard 0 of `collection` in `status`.
fn replica_info(
    status: &pb::ClusterStatusResponse,
    collection: &str,
    node: &str,
) -> pb::ReplicaInfo {
    let s = status
        .shards
        .iter()
        .find(|s| s.collection == collection)
        .unwrap();
    s.replicas.iter().find(|r| r.node == node).unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_and_metrics_show_a_lost_followers_lag_until_it_caught_up_again() {
    let o = Options {
        write_timeout_ms: 8000,
        replica_lag_timeout_ms: 1000,
        ..Options::default()
    };
    let (mut c, mut client, shard, mut want) = replicated_with_rounds("lag", "all", o, 3).await;
    let primary = shard.replicas[0].node.clone();
    let (kept, lost) = (
        shard.replicas[1].node.clone(),
        shard.replicas[2].node.clone(),
    );
    let p = c.node_index(&primary);
    let labels = |follower: &str| format!("collection=\"lag\",shard=\"0\",follower=\"{follower}\"");
    let shard_labels = "collection=\"lag\",shard=\"0\"";

    // Three rounds of 40 points, each acknowledged by all three: no lag anywhere, as the
    // primary reports it in its heartbeats and its metrics.
    c.eventually(
        "every replica reported at lag 0",
        Duration::from_secs(20),
        || async {
            let status = c.status().await?;
            let all = [&primary, &kept, &lost].map(|n| replica_info(&status, "lag", n));
            all.iter()
                .all(|r| r.in_sync && r.lag_seqs == Some(0) && r.lag_seconds == Some(0.0))
                .then_some(())
        },
    )
    .await;
    let text = node_metrics(&c, p).await;
    for f in [&kept, &lost] {
        assert_eq!(
            series(&text, "vecshard_replica_lag_seqs", &labels(f)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            series(&text, "vecshard_replica_lag_seconds", &labels(f)),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            series(&text, "vecshard_replica_catchup_bytes_total", &labels(f)),
            Some(0.0),
            "{text}"
        );
    }
    assert_eq!(
        series(&text, "vecshard_isr_size", shard_labels),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "vecshard_write_ack_wait_seconds_count", shard_labels),
        Some(3.0),
        "one wait per acknowledged write: {text}"
    );
    // Followers report nothing of their own.
    let follower_text = node_metrics(&c, c.node_index(&kept)).await;
    assert!(
        !follower_text.contains("vecshard_isr_size{"),
        "{follower_text}"
    );

    // One follower lost: the next round waits the lag timeout, the follower leaves the
    // in-sync set, and it stays at least 40 sequence numbers (one round) behind, for longer
    // and longer. (The router abandons the call in flight when `ShrinkIsr` changes the
    // shard's assignment and sends the round again, so the primary may have it twice.)
    let l = c.node_index(&lost);
    c.nodes[l].proc.as_mut().unwrap().kill9();
    write_round(&mut client, "lag", 4).await.unwrap();
    want.extend((0..40).map(|k| (k, Some(4))));
    let behind = c
        .eventually(
            "the lost follower shown behind",
            Duration::from_secs(20),
            || async {
                let r = replica_info(&c.status().await?, "lag", &lost);
                let lag = r.lag_seqs?;
                (!r.in_sync && lag >= 40 && lag.is_multiple_of(40) && r.lag_seconds? >= 1.0)
                    .then_some(r)
            },
        )
        .await;
    assert_eq!(behind.role, "follower");
    // The other follower holds everything, and the metrics agree with the status (which
    // shows the primary's last heartbeat; the router's resend may land in between).
    let (lag, text) = c
        .eventually(
            "the kept follower at lag 0, the metrics agreeing with the status",
            Duration::from_secs(20),
            || async {
                let s = c.status().await?;
                let k = replica_info(&s, "lag", &kept);
                let lag = replica_info(&s, "lag", &lost).lag_seqs?;
                let text = node_metrics(&c, p).await;
                let metric = series(&text, "vecshard_replica_lag_seqs", &labels(&lost));
                (k.in_sync && k.lag_seqs == Some(0) && metric == Some(lag as f64))
                    .then_some((lag, text))
            },
        )
        .await;
    assert!(
        lag >= behind.lag_seqs.unwrap() && lag.is_multiple_of(40),
        "{lag}"
    );
    let lag = lag as f64;
    assert_eq!(
        series(&text, "vecshard_replica_lag_seqs", &labels(&lost)),
        Some(lag),
        "{text}"
    );
    assert!(
        series(&text, "vecshard_replica_lag_seconds", &labels(&lost)).unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        series(&text, "vecshard_replica_lag_seqs", &labels(&kept)),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "vecshard_isr_size", shard_labels),
        Some(2.0),
        "{text}"
    );
    let waited = series(&text, "vecshard_write_ack_wait_seconds_sum", shard_labels).unwrap();
    assert!(waited >= 0.9, "round 4 waited the lag timeout: {text}");

    // Back: it catches up from the primary's tail, rejoins the in-sync set and shows no
    // lag; the primary counted the frames it sent it meanwhile as catch-up bytes.
    c.start_node(l);
    c.eventually(
        "the follower caught up again",
        Duration::from_secs(30),
        || async {
            let r = replica_info(&c.status().await?, "lag", &lost);
            (r.in_sync && r.lag_seqs == Some(0) && r.lag_seconds == Some(0.0)).then_some(())
        },
    )
    .await;
    let text = node_metrics(&c, p).await;
    assert_eq!(
        series(&text, "vecshard_replica_lag_seqs", &labels(&lost)),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "vecshard_isr_size", shard_labels),
        Some(3.0),
        "{text}"
    );
    let caught_up = series(
        &text,
        "vecshard_replica_catchup_bytes_total",
        &labels(&lost),
    )
    .unwrap();
    // 40 points of 4 floats each at least.
    assert!(caught_up >= 40.0 * 16.0, "{text}");
    assert_eq!(
        series(
            &text,
            "vecshard_replica_catchup_bytes_total",
            &labels(&kept)
        ),
        Some(0.0),
        "{text}"
    );
    assert_every_replica_holds(&c, "lag", &want).await;
}

/// The nemesis's stale read (note 014, "Found by CI"), between processes: a primary
/// stopped (SIGSTOP) long enough to be replaced, then resumed, is read at its old epoch
/// at once — as a router whose map is behind would — before anyone told it. Its read
/// lease ran out while it was stopped, so it refuses; it must never answer with the value
/// it held before the promotion, since a newer one was acknowledged since.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_primary_resumed_answers_no_read_from_its_old_epoch() {
    let c = Cluster::start_with(
        1,
        3,
        Options {
            failure_timeout_ms: 2000,
            ..Options::default()
        },
    );
    c.wait_ready(3).await;
    let mut client = c.client(0).await;
    let before = create_replicated(&c, &mut client, "deposed", 1, "").await;
    let (old_primary, old_epoch) = (before[0].owner.clone(), before[0].epoch);
    let old_address = address_of(&c, &old_primary).await;
    let upsert = |v: u64| pb::UpsertRequest {
        collection: "deposed".into(),
        points: vec![versioned(1, v)],
    };
    client.upsert(upsert(1)).await.unwrap();
    let epochs = [(0, old_epoch)];
    let read_old = || read_replica(&old_address, "deposed", &epochs, &[1]);
    c.eventually(
        "the primary serves its own read",
        Duration::from_secs(10),
        || async { read_old().await.ok().filter(|p| p.len() == 1) },
    )
    .await;

    let i = c.node_index(&old_primary);
    c.nodes[i].proc.as_ref().unwrap().stop();
    c.eventually("a follower promoted", Duration::from_secs(30), || async {
        let s = c.status().await?;
        let shard = s.shards.iter().find(|s| s.collection == "deposed")?;
        (shard.owner != old_primary && shard.epoch > old_epoch).then_some(())
    })
    .await;
    client.upsert(upsert(2)).await.unwrap();

    c.nodes[i].proc.as_ref().unwrap().cont();
    let until = Instant::now() + Duration::from_secs(30);
    let mut refusals = 0;
    loop {
        match read_old().await {
            Ok(points) => {
                let stale = versioned(1, 1).vector;
                assert!(
                    points.iter().all(|p| p.vector != stale),
                    "the replaced primary answered from its old epoch: {points:?}\n{}",
                    c.logs()
                );
            }
            Err(s) if s.code() == tonic::Code::FailedPrecondition => break, // reassigned
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                refusals += 1;
            }
        }
        assert!(Instant::now() < until, "never reassigned\n{}", c.logs());
    }
    // (Usually several: the reassignment takes a heartbeat and a control tick.)
    eprintln!("{refusals} reads refused before the node was reassigned");
}
