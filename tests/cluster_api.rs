//! One router and one node as processes: the cluster commands of the CLI, and bad client
//! requests over gRPC and REST (precise codes, 4xx, nothing crashes).

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::*;
use vecshard_proto::v1 as pb;
use vecshard_test_support::write_fvecs;

fn vecshard(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_and_bad_requests_against_processes() {
    // Both allow a bucket that does not exist, for a shard that cannot open.
    let missing = format!(
        "{}-missing",
        test_bucket().unwrap_or_else(|| panic!("{HOW_TO_START_S3}"))
    );
    let mut c = Cluster::start_with(
        1,
        1,
        Options {
            extra_allowed_storage: vec![missing.clone()],
            ..Options::default()
        },
    );
    c.wait_ready(1).await;
    let router = c.routers[0].grpc.clone();

    let (ok, out, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "t",
        "--dim",
        "4",
        "--metric",
        "l2",
        "--shards",
        "2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("t: 4-d l2, 2 shards, storage local"), "{out}");
    let (ok, _, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "t",
        "--dim",
        "4",
    ]);
    assert!(!ok && err.contains("AlreadyExists"), "{err}");
    c.wait_serving("t").await;

    let base = c.dir.path().join("base.fvecs");
    write_fvecs(&base, (0..2500u64).map(|i| vector(i, 4)));
    let (ok, out, err) = vecshard(&[
        "import",
        "--router",
        &router,
        "--collection",
        "t",
        "--batch",
        "1000",
        base.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["acked 1000", "acked 2000", "acked 2500"]);

    let queries = c.dir.path().join("q.fvecs");
    write_fvecs(&queries, (0..3u64).map(|i| vector(10 + i, 4)));
    let (ok, out, err) = vecshard(&[
        "search",
        "--router",
        &router,
        "--collection",
        "t",
        "--queries",
        queries.to_str().unwrap(),
        "--k",
        "3",
        "--exact",
    ]);
    assert!(ok, "{err}");
    let all: Vec<u64> = (0..2500).collect();
    for (i, line) in out.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["query"], i);
        let want: Vec<u64> = exact(&vector(10 + i as u64, 4), &all, 4, 3)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(v["ids"], serde_json::json!(want), "{line}");
        assert_eq!(v["scores"].as_array().unwrap().len(), 3);
    }
    let (ok, _, err) = vecshard(&[
        "search",
        "--router",
        &router,
        "--collection",
        "t",
        "--queries",
        queries.to_str().unwrap(),
        "--filter",
        "{\"field\": 3}",
    ]);
    assert!(!ok && err.contains("malformed filter"), "{err}");

    let (ok, out, err) = vecshard(&["status", "--router", &router]);
    assert!(ok, "{err}");
    assert!(
        out.contains("leader") && out.contains("node-1") && out.contains("alive"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("t ")).count(),
        2,
        "{out}"
    );
    let (ok, out, _) = vecshard(&["collection", "describe", "--router", &router, "t"]);
    assert!(ok && out.contains("serving"), "{out}");

    // Storage outside the allowed prefixes is refused, naming the field and what is allowed.
    let (ok, _, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "elsewhere",
        "--dim",
        "4",
        "--storage",
        "file:///tmp/vecshard-elsewhere",
    ]);
    assert!(!ok, "created a collection on file://");
    assert!(
        err.contains("storage") && err.contains(&missing) && err.contains("\"local\""),
        "{err}"
    );

    // A shard whose storage cannot be opened shows as failed, with the node's reason.
    let broken_storage = format!("{missing}/broken");
    let (ok, _, err) = vecshard(&[
        "collection",
        "create",
        "--router",
        &router,
        "broken",
        "--dim",
        "4",
        "--shards",
        "1",
        "--storage",
        &broken_storage,
    ]);
    assert!(ok, "{err}");
    let reason = c
        .eventually(
            "the broken shard's error",
            Duration::from_secs(60),
            || async {
                let s = c.status().await?;
                s.shards
                    .into_iter()
                    .find(|p| p.collection == "broken" && !p.error.is_empty())
                    .map(|p| (p.state, p.error))
            },
        )
        .await;
    assert_eq!(reason.0, pb::ShardState::Failed as i32, "{reason:?}");
    assert!(reason.1.contains(&broken_storage), "{reason:?}");
    // The router retries the failed shard with growing pauses, so `status` may catch it
    // opening again: ask until it shows the failure with its reason.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, out, err) = vecshard(&["status", "--router", &router]);
        assert!(ok, "{err}");
        if out.contains("broken/0: ") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failure reason shown: {out}"
        );
    }
    let (ok, _, err) = vecshard(&["collection", "drop", "--router", &router, "broken"]);
    assert!(ok, "{err}");
    let (ok, out, _) = vecshard(&["collection", "list", "--router", &router]);
    assert!(ok && out.starts_with("t: "), "{out}");

    // Bad requests over gRPC.
    let mut g = c.client(0).await;
    let mut nan = point(1, 4);
    nan.vector[0] = f32::NAN;
    for (points, code) in [
        (vec![nan], tonic::Code::InvalidArgument),
        (vec![point(1, 5)], tonic::Code::InvalidArgument),
        (vec![], tonic::Code::InvalidArgument),
    ] {
        let e = g
            .upsert(pb::UpsertRequest {
                collection: "t".into(),
                points,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
    }
    let e = g
        .search(pb::SearchRequest {
            collection: "missing".into(),
            vector: vec![0.0; 4],
            k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    // And over REST.
    let http = reqwest::Client::new();
    let base_url = format!("http://{}", c.routers[0].http);
    for (path, body, status) in [
        (
            "/v1/collections/t/search",
            r#"{"vector": [1, 2, 3, 4], "k": 0}"#.to_string(),
            400,
        ),
        (
            "/v1/collections/t/search",
            r#"{"vector": [1, 2], "k": 3}"#.to_string(),
            400,
        ),
        ("/v1/collections/t/points", "{]".to_string(), 400),
        (
            "/v1/collections/nope/points/get",
            r#"{"ids": [1]}"#.to_string(),
            404,
        ),
    ] {
        let r = http
            .post(format!("{base_url}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
    }
    let answer =
        status_of_oversized_post(&c.routers[0].http, "/v1/collections/t/points", 70 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let r = http
        .post(format!("{base_url}/v1/collections/t/search"))
        .body(r#"{"vector": [0.1, 0.2, 0.3, 0.4], "k": 2, "with_vector": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hits"].as_array().unwrap().len(), 2);
    assert_eq!(v["coverage"]["shards_answered"], 2);
    c.assert_all_alive();
}

/// POST with a `Content-Length` beyond the limit and no body: the router answers 413 at
/// once, without waiting for the body.
async fn status_of_oversized_post(addr: &str, path: &str, len: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf));
    let n = read.await.expect("an answer before the body").unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
