//! Writes queue in a shard's bounded mailbox; reads never wait behind them; a full
//! mailbox is RESOURCE_EXHAUSTED; queued writes are grouped into one engine write.

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;

const MAILBOX: usize = 4;

async fn mailbox_depth(node: &vecshard_node::NodeHandle) -> f64 {
    let (_, text) = http_get(node.http_addr(), "/metrics").await;
    metric(
        &text,
        r#"vecshard_node_shard_mailbox_depth{collection="c",shard="0"}"#,
    )
    .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_do_not_wait_behind_writes_and_a_full_mailbox_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.node.mailbox_capacity = MAILBOX;
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut c = connect(&node).await;
    serve_writer(&mut c, "c", 0, 1, 4).await;
    c.upsert(pb::UpsertRequest {
        target: target("c", 0, 1),
        points: vec![p4(0)],
    })
    .await
    .unwrap();

    // Block the shard's actor thread: from now on its writes cannot complete.
    let hold = node
        .hold_writes("c", 0)
        .await
        .expect("the shard has an actor");
    let writers: Vec<_> = (1..=MAILBOX as u64)
        .map(|k| {
            let mut c = c.clone();
            tokio::spawn(async move {
                c.upsert(pb::UpsertRequest {
                    target: target("c", 0, 1),
                    points: vec![p4(k)],
                })
                .await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while mailbox_depth(&node).await != MAILBOX as f64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never queued"
        );
        tokio::task::yield_now().await;
    }

    // The mailbox is full: the next write is refused at once, visibly.
    let err = tokio::time::timeout(
        PATIENCE,
        c.upsert(pb::UpsertRequest {
            target: target("c", 0, 1),
            points: vec![p4(100)],
        }),
    )
    .await
    .expect("a full mailbox answers at once")
    .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("mailbox full"), "{}", err.message());

    // Reads run while every write is stuck; they see the snapshot without them.
    for _ in 0..20 {
        let hits = tokio::time::timeout(
            Duration::from_secs(5),
            c.search(pb::SearchRequest {
                target: target("c", 0, 1),
                vector: vec![3.0, 0.0, 0.0, 1.0],
                k: 10,
                ..Default::default()
            }),
        )
        .await
        .expect("a search must not wait behind queued writes")
        .unwrap()
        .into_inner()
        .hits;
        assert_eq!(hit_keys(&hits), vec![0]);
    }
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        c.get(pb::GetRequest {
            target: target("c", 0, 1),
            keys: vec![int_key(0), int_key(1)],
        }),
    )
    .await
    .expect("a get must not wait behind queued writes")
    .unwrap();
    assert_eq!(keys_of(&got.into_inner().points), vec![0]);
    assert!(writers.iter().all(|w| !w.is_finished()));

    // Let the actor go: every queued write completes, grouped into one engine write.
    drop(hold);
    for w in writers {
        tokio::time::timeout(PATIENCE, w)
            .await
            .expect("queued writes complete once the actor runs")
            .unwrap()
            .unwrap();
    }
    let hits = c
        .search(pb::SearchRequest {
            target: target("c", 0, 1),
            vector: vec![3.0, 0.0, 0.0, 1.0],
            k: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .hits;
    assert_eq!(hits.len(), 1 + MAILBOX);
    let (_, text) = http_get(node.http_addr(), "/metrics").await;
    let l = r#"{collection="c",shard="0"}"#;
    let engine_writes = metric(
        &text,
        &format!("vecshard_node_write_group_requests_count{l}"),
    );
    let requests = metric(&text, &format!("vecshard_node_write_group_requests_sum{l}"));
    assert_eq!(requests, Some(1.0 + MAILBOX as f64), "{text}");
    assert_eq!(
        engine_writes,
        Some(2.0),
        "the queued writes share one engine write"
    );
    assert_eq!(mailbox_depth(&node).await, 0.0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_write_does_not_fail_the_writes_grouped_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = vecshard_node::start(config(dir.path())).await.unwrap();
    let mut c = connect(&node).await;
    serve_writer(&mut c, "c", 0, 1, 4).await;
    let hold = node.hold_writes("c", 0).await.unwrap();
    // Key "" passes the edge checks but the engine refuses it.
    let bad = vecshard_proto::v1::Point {
        key: Some(vecshard_proto::v1::Key {
            kind: Some(vecshard_proto::v1::key::Kind::Str(String::new())),
        }),
        vector: vec![0.0; 4],
        ..Default::default()
    };
    let mut calls = Vec::new();
    for i in 0..3u64 {
        let mut c = c.clone();
        let points = if i == 1 {
            vec![bad.clone()]
        } else {
            vec![p4(i)]
        };
        calls.push(tokio::spawn(async move {
            c.upsert(pb::UpsertRequest {
                target: target("c", 0, 1),
                points,
            })
            .await
        }));
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while mailbox_depth(&node).await != 3.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never queued"
        );
        tokio::task::yield_now().await;
    }
    drop(hold);
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.unwrap().map(|_| ()).map_err(|s| s.code()));
    }
    assert_eq!(outcomes, vec![Ok(()), Err(Code::InvalidArgument), Ok(())]);
    let got = c
        .get(pb::GetRequest {
            target: target("c", 0, 1),
            keys: vec![int_key(0), int_key(2)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys_of(&got.points), vec![0, 2]);
    node.shutdown().await;
}
