//! Replicated local-disk collections as processes (issue 17, step 1 of
//! `docs/design/014-replication.md`): `replication_factor` and `write_ack` through the CLI,
//! REST and gRPC; replicas on distinct nodes in the shard map, shown by `GET /v1/cluster`
//! and `vecshard status`; too few live nodes is FAILED_PRECONDITION naming both numbers;
//! the primary serves reads and writes as an unreplicated shard's owner does.

mod cluster_support;

use std::collections::BTreeSet;
use std::process::Command;

use cluster_support::*;
use serde_json::{Value as J, json};
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
                    // Nothing ships writes to followers yet: only the primary is in sync.
                    assert_eq!(r["in_sync"], r["role"] == "primary", "{s}");
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
