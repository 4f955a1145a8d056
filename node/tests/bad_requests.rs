//! Bad requests get precise gRPC codes and messages, and the node keeps serving.

mod common;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::v1 as pb1;

fn assert_status<T: std::fmt::Debug>(r: Result<T, tonic::Status>, code: Code, needles: &[&str]) {
    let s = r.expect_err("the request must be refused");
    assert_eq!(s.code(), code, "{s:?}");
    for n in needles {
        assert!(s.message().contains(n), "{n:?} not in {:?}", s.message());
    }
}

fn search(vector: Vec<f32>, k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        target: target("c", 0, 1),
        vector,
        k,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.node.max_message_bytes = 1 << 20;
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut c = connect(&node).await;
    serve_writer(&mut c, "c", 0, 1, 4).await;

    // Unknown shard: "not owner", unassigned.
    let err = c
        .search(pb::SearchRequest {
            target: target("c", 7, 1),
            vector: vec![0.0; 4],
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let d = not_owner(&err);
    assert_eq!(d.reason(), pb::NotOwnerReason::Unassigned);
    assert_eq!((d.shard, d.node_epoch), (7, None));

    // Malformed targets and collection names.
    assert_status(
        c.upsert(pb::UpsertRequest {
            target: None,
            points: vec![p4(1)],
        })
        .await,
        Code::InvalidArgument,
        &["target is required"],
    );
    assert_status(
        c.upsert(pb::UpsertRequest {
            target: target("../etc", 0, 1),
            points: vec![p4(1)],
        })
        .await,
        Code::InvalidArgument,
        &["collection name", "../etc"],
    );

    // Points: wrong dimension, NaN, missing key, NaN metadata, empty batch.
    let upsert = |points| pb::UpsertRequest {
        target: target("c", 0, 1),
        points,
    };
    assert_status(
        c.upsert(upsert(vec![p4(1), point(2, vec![1.0, 2.0, 3.0])]))
            .await,
        Code::InvalidArgument,
        &["points[1] (key 2).vector", "dimension 3", "dimension 4"],
    );
    assert_status(
        c.upsert(upsert(vec![point(3, vec![0.0, f32::NAN, 0.0, 0.0])]))
            .await,
        Code::InvalidArgument,
        &["non-finite", "index 1"],
    );
    assert_status(
        c.upsert(upsert(vec![pb1::Point {
            vector: vec![0.0; 4],
            ..Default::default()
        }]))
        .await,
        Code::InvalidArgument,
        &["points[0]", "key is required"],
    );
    let mut nan_meta = p4(4);
    nan_meta.metadata.insert(
        "price".into(),
        pb1::Value {
            kind: Some(pb1::value::Kind::FloatValue(f64::INFINITY)),
        },
    );
    assert_status(
        c.upsert(upsert(vec![nan_meta])).await,
        Code::InvalidArgument,
        &["metadata.price", "not finite"],
    );
    assert_status(
        c.upsert(upsert(vec![])).await,
        Code::InvalidArgument,
        &["empty upsert batch"],
    );
    // The engine's own limits come back with its message.
    assert_status(
        c.upsert(upsert(vec![pb1::Point {
            key: Some(pb1::Key {
                kind: Some(pb1::key::Kind::Str("k".repeat(2000))),
            }),
            vector: vec![0.0; 4],
            ..Default::default()
        }]))
        .await,
        Code::InvalidArgument,
        &["2000 bytes", "limit"],
    );

    // Searches: wrong dimension, NaN, k out of range, malformed filters.
    assert_status(
        c.search(search(vec![0.0; 5], 1)).await,
        Code::InvalidArgument,
        &["query.vector", "dimension 5"],
    );
    assert_status(
        c.search(search(vec![0.0, 0.0, f32::NAN, 0.0], 1)).await,
        Code::InvalidArgument,
        &["non-finite"],
    );
    assert_status(
        c.search(search(vec![0.0; 4], 0)).await,
        Code::InvalidArgument,
        &["k: must be in 1..=10000, got 0"],
    );
    let mut filtered = search(vec![0.0; 4], 1);
    filtered.filter = Some(pb1::Filter {
        kind: Some(pb1::filter::Kind::And(pb1::FilterList {
            filters: vec![pb1::Filter {
                kind: Some(pb1::filter::Kind::Condition(pb1::Condition {
                    field: "color".into(),
                    op: None,
                })),
            }],
        })),
    });
    assert_status(
        c.search(filtered).await,
        Code::InvalidArgument,
        &["filter.and[0]: malformed filter", "no operator"],
    );
    let mut empty_filter = search(vec![0.0; 4], 1);
    empty_filter.filter = Some(pb1::Filter { kind: None });
    assert_status(
        c.search(empty_filter).await,
        Code::InvalidArgument,
        &["filter: malformed filter", "empty filter"],
    );

    // Scan and get limits.
    assert_status(
        c.scan(pb::ScanRequest {
            target: target("c", 0, 1),
            start_after: None,
            limit: 0,
        })
        .await,
        Code::InvalidArgument,
        &["limit"],
    );
    assert_status(
        c.get(pb::GetRequest {
            target: target("c", 0, 1),
            keys: vec![pb1::Key { kind: None }],
        })
        .await,
        Code::InvalidArgument,
        &["keys[0]"],
    );

    // Assignments: unspecified role and metric, zero dimension, bad storage.
    let mut a = assign_req("d", 0, 1, pb::Role::Unspecified, 4);
    assert_status(
        c.assign_shard(a.clone()).await,
        Code::InvalidArgument,
        &["role"],
    );
    a.role = pb::Role::Writer as i32;
    a.metric = pb1::Metric::Unspecified as i32;
    assert_status(
        c.assign_shard(a.clone()).await,
        Code::InvalidArgument,
        &["metric"],
    );
    a.metric = pb1::Metric::Dot as i32;
    a.dimension = 0;
    assert_status(
        c.assign_shard(a.clone()).await,
        Code::InvalidArgument,
        &["dimension"],
    );
    a.dimension = 4;
    a.storage = "/tmp/elsewhere".into();
    assert_status(c.assign_shard(a).await, Code::InvalidArgument, &["storage"]);

    // A shard that exists with another dimension fails to open; the status says why.
    c.assign_shard(assign_req("c2", 0, 1, pb::Role::Writer, 4))
        .await
        .unwrap();
    wait_state(&mut c, "c2", 0, 1, pb::ShardState::Serving).await;
    c.release_shard(pb::ReleaseShardRequest {
        collection: "c2".into(),
        shard: 0,
        epoch: 1,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();
    c.assign_shard(assign_req("c2", 0, 2, pb::Role::Writer, 8))
        .await
        .unwrap();
    let s = wait_state(&mut c, "c2", 0, 2, pb::ShardState::Failed).await;
    assert!(s.error.contains("4-d l2, not 8-d l2"), "{}", s.error);
    assert_status(
        c.search(pb::SearchRequest {
            target: target("c2", 0, 2),
            vector: vec![0.0; 8],
            k: 1,
            ..Default::default()
        })
        .await,
        Code::Unavailable,
        &["failed", "not 8-d"],
    );

    // Oversized message: refused by the transport with the limit in the message.
    let huge: Vec<pb1::Point> = (0..3000).map(|k| point(k, vec![0.5; 128])).collect();
    assert_status(
        c.upsert(upsert(huge)).await,
        Code::OutOfRange,
        &["message length too large", "limit is: 1048576"],
    );

    // The node still serves.
    c.upsert(upsert(vec![p4(1), p4(2)])).await.unwrap();
    let hits = c.search(search(vec![2.0, 0.0, 0.0, 1.0], 1)).await.unwrap();
    assert_eq!(hit_keys(&hits.into_inner().hits), vec![2]);
    node.shutdown().await;
}
