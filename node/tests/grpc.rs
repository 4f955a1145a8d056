//! The node over real gRPC on loopback: the shard lifecycle, every data call,
//! ownership by epoch and role, status, health and metrics.

mod common;

use common::*;
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::v1 as pb1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_lifecycle_and_data_calls() {
    let dir = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    serve_writer(&mut c, "docs", 0, 1, 4).await;
    assert!(dir.path().join("docs").join("0").is_dir());

    // Upsert, with metadata and payload on one point.
    let mut points: Vec<_> = (0..10).map(p4).collect();
    points[7].metadata.insert(
        "color".into(),
        pb1::Value {
            kind: Some(pb1::value::Kind::StringValue("red".into())),
        },
    );
    points[7].payload = b"{\"seven\":7}".to_vec();
    c.upsert(pb::UpsertRequest {
        target: target("docs", 0, 1),
        points,
    })
    .await
    .unwrap();

    // Search: nearest first, with requested fields.
    let hits = c
        .search(pb::SearchRequest {
            target: target("docs", 0, 1),
            vector: vec![6.9, 0.0, 0.0, 1.0],
            k: 3,
            with_metadata: true,
            with_payload: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hit_keys(&hits), vec![7, 6, 8]);
    assert_eq!(hits[0].payload, b"{\"seven\":7}");
    assert!(hits[0].metadata.contains_key("color"));
    assert!(hits[0].distance <= hits[1].distance);

    // Filtered search.
    let filter = pb1::Filter {
        kind: Some(pb1::filter::Kind::Condition(pb1::Condition {
            field: "color".into(),
            op: Some(pb1::condition::Op::Eq(pb1::Value {
                kind: Some(pb1::value::Kind::StringValue("red".into())),
            })),
        })),
    };
    let hits = c
        .search(pb::SearchRequest {
            target: target("docs", 0, 1),
            vector: vec![0.0, 0.0, 0.0, 1.0],
            k: 5,
            filter: Some(filter),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hit_keys(&hits), vec![7]);

    // Get: in the order asked, missing keys left out.
    let got = c
        .get(pb::GetRequest {
            target: target("docs", 0, 1),
            keys: vec![int_key(5), int_key(99), int_key(2)],
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(keys_of(&got), vec![5, 2]);
    assert_eq!(got[0].vector, vec![5.0, 0.0, 0.0, 1.0]);

    // Scan in pages of 4.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = c
            .scan(pb::ScanRequest {
                target: target("docs", 0, 1),
                start_after: after.clone(),
                limit: 4,
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(keys_of(&page.points));
        match page.next_start_after {
            Some(k) => after = Some(k),
            None => break,
        }
    }
    assert_eq!(all, (0..10).collect::<Vec<u64>>());

    // Delete.
    c.delete(pb::DeleteRequest {
        target: target("docs", 0, 1),
        keys: vec![int_key(3)],
    })
    .await
    .unwrap();
    let got = c
        .get(pb::GetRequest {
            target: target("docs", 0, 1),
            keys: vec![int_key(3)],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(got.points.is_empty());

    // Stale epochs are "not owner" with the detail.
    let err = c
        .upsert(pb::UpsertRequest {
            target: target("docs", 0, 0),
            points: vec![p4(1)],
        })
        .await
        .unwrap_err();
    let d = not_owner(&err);
    assert_eq!(d.reason(), pb::NotOwnerReason::StaleCaller);
    assert_eq!((d.caller_epoch, d.node_epoch), (0, Some(1)));
    assert_eq!(d.node_role(), pb::Role::Writer);
    assert_eq!((d.collection.as_str(), d.shard), ("docs", 0));
    let err = c
        .search(pb::SearchRequest {
            target: target("docs", 0, 2),
            vector: vec![0.0; 4],
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::StaleNode);

    // Repeating the assignment changes nothing; a lower epoch is refused.
    let same = c
        .assign_shard(assign_req("docs", 0, 1, pb::Role::Writer, 4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.state(), pb::ShardState::Serving);
    let err = c
        .assign_shard(assign_req("docs", 0, 0, pb::Role::Writer, 4))
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::StaleCaller);

    // Release: the shard is reported CLOSED once, then calls are "unassigned".
    c.release_shard(pb::ReleaseShardRequest {
        collection: "docs".into(),
        shard: 0,
        epoch: 1,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let status = c
        .node_status(pb::NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.node_id, "test-node");
    assert_eq!(status.address, node.grpc_addr().to_string());
    assert_eq!(status.shards.len(), 1);
    assert_eq!(status.shards[0].state(), pb::ShardState::Closed);
    let status = c
        .node_status(pb::NodeStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.shards.is_empty(), "{status:?}");
    let err = c
        .get(pb::GetRequest {
            target: target("docs", 0, 1),
            keys: vec![int_key(1)],
        })
        .await
        .unwrap_err();
    let d = not_owner(&err);
    assert_eq!(d.reason(), pb::NotOwnerReason::Unassigned);
    assert_eq!(d.node_epoch, None);
    // Releasing what is not held succeeds.
    c.release_shard(pb::ReleaseShardRequest {
        collection: "docs".into(),
        shard: 0,
        epoch: 1,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();

    // Reassign at a higher epoch: the data is still there.
    serve_writer(&mut c, "docs", 0, 2, 4).await;
    let got = c
        .get(pb::GetRequest {
            target: target("docs", 0, 2),
            keys: vec![int_key(5), int_key(3)],
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(keys_of(&got), vec![5]);
    let s = wait_state(&mut c, "docs", 0, 2, pb::ShardState::Serving).await;
    assert_eq!(s.live_points, 9);
    let err = c
        .upsert(pb::UpsertRequest {
            target: target("docs", 0, 1),
            points: vec![p4(1)],
        })
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::StaleCaller);

    // A higher epoch replaces the held one directly (writer → reader).
    c.assign_shard(assign_req("docs", 0, 3, pb::Role::Reader, 4))
        .await
        .unwrap();
    wait_state(&mut c, "docs", 0, 3, pb::ShardState::Serving).await;
    let hits = c
        .search(pb::SearchRequest {
            target: target("docs", 0, 3),
            vector: vec![9.0, 0.0, 0.0, 1.0],
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hit_keys(&hits), vec![9]);
    let err = c
        .upsert(pb::UpsertRequest {
            target: target("docs", 0, 3),
            points: vec![p4(1)],
        })
        .await
        .unwrap_err();
    let d = not_owner(&err);
    assert_eq!(d.reason(), pb::NotOwnerReason::NotWriter);
    assert_eq!(d.node_role(), pb::Role::Reader);
    let err = c
        .delete(pb::DeleteRequest {
            target: target("docs", 0, 3),
            keys: vec![int_key(1)],
        })
        .await
        .unwrap_err();
    assert_eq!(not_owner(&err).reason(), pb::NotOwnerReason::NotWriter);

    // Release with delete_data by a reader keeps the data; by the writer deletes it.
    c.release_shard(pb::ReleaseShardRequest {
        collection: "docs".into(),
        shard: 0,
        epoch: 3,
        delete_data: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(dir.path().join("docs").join("0").is_dir());
    serve_writer(&mut c, "docs", 0, 4, 4).await;
    c.release_shard(pb::ReleaseShardRequest {
        collection: "docs".into(),
        shard: 0,
        epoch: 4,
        delete_data: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!dir.path().join("docs").exists());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    assert_eq!(http_get(node.http_addr(), "/healthz").await.0, 200);
    // Standalone (no routers): ready as soon as it serves. The heartbeat task sets it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while http_get(node.http_addr(), "/readyz").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::task::yield_now().await;
    }
    serve_writer(&mut c, "m", 2, 1, 4).await;
    c.upsert(pb::UpsertRequest {
        target: target("m", 2, 1),
        points: (0..5).map(p4).collect(),
    })
    .await
    .unwrap();
    let _ = c
        .upsert(pb::UpsertRequest {
            target: target("m", 2, 1),
            points: vec![point(9, vec![1.0])],
        })
        .await
        .unwrap_err();
    c.search(pb::SearchRequest {
        target: target("m", 2, 1),
        vector: vec![0.0; 4],
        k: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let (code, text) = http_get(node.http_addr(), "/metrics").await;
    assert_eq!(code, 200);
    let l = r#"collection="m",shard="2""#;
    for (prefix, want) in [
        (
            format!(r#"vecshard_node_requests_total{{{l},op="upsert",outcome="ok"}}"#),
            1.0,
        ),
        (
            format!(
                r#"vecshard_node_requests_total{{{l},op="upsert",outcome="invalid_argument"}}"#
            ),
            1.0,
        ),
        (
            format!(r#"vecshard_node_requests_total{{{l},op="search",outcome="ok"}}"#),
            1.0,
        ),
        (
            format!(r#"vecshard_node_request_duration_seconds_count{{{l},op="search"}}"#),
            1.0,
        ),
        (format!(r#"vecshard_node_shard_points{{{l}}}"#), 5.0),
        (format!(r#"vecshard_node_shard_epoch{{{l}}}"#), 1.0),
        (format!(r#"vecshard_node_shard_mailbox_depth{{{l}}}"#), 0.0),
        (
            format!(r#"vecshard_node_shard_state{{{l},role="writer",state="serving"}}"#),
            1.0,
        ),
        // Two: the refused upsert reached the engine too, which checks points (the
        // model's rules) so that a bad write fails alone, not the writes grouped with it.
        (
            format!(r#"vecshard_node_engine_write_duration_seconds_count{{{l}}}"#),
            2.0,
        ),
        (
            format!(r#"vecshard_node_shard_cache_hits_total{{{l},tier="memory"}}"#),
            0.0,
        ),
    ] {
        assert_eq!(metric(&text, &prefix), Some(want), "{prefix} in\n{text}");
    }
    assert!(text.contains("vecshard_node_read_queue_depth"), "{text}");
    node.shutdown().await;
}
