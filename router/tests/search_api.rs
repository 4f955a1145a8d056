//! The search conveniences against fake data nodes: packed vectors in and packed hits
//! out (forwarded to the nodes still packed), batch search (one call per shard),
//! search by the key of a stored point, paging with `offset`, and count — over gRPC and
//! REST.

mod common;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use serde_json::{Value as J, json};
use tonic::Code;
use vecshard_proto::v1 as pb;

const DIM: usize = 4;
const N: u64 = 60;
const SHARDS: u32 = 3;

fn packed(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn search(q: Vec<f32>, k: u32) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: "c".into(),
        vector: q,
        k,
        ..Default::default()
    }
}

fn scores(r: &pb::SearchResponse) -> Vec<f32> {
    r.hits.iter().map(|h| h.score).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_batch_by_key_offset_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let router = vecshard_router::start(test_config(dir.path(), 1))
        .await
        .unwrap();
    let node = FakeNode::start(
        "n0",
        vec![router.internal_addr().to_string()],
        ObjectStore::default(),
    )
    .await;
    let mut c = client(&router).await;
    wait_alive(&mut c, 1).await;
    c.create_collection(pb::CreateCollectionRequest {
        name: "c".into(),
        dimension: DIM as u32,
        metric: pb::Metric::L2 as i32,
        shard_count: SHARDS,
        ..Default::default()
    })
    .await
    .unwrap();
    wait_serving(&mut c, "c").await;

    // Packed upsert: the node receives the bytes as sent, and stores the same vectors.
    let points: Vec<pb::Point> = (0..N)
        .map(|i| {
            let mut p = point(i, DIM);
            p.vector_f32le = packed(&std::mem::take(&mut p.vector));
            p
        })
        .collect();
    c.upsert(pb::UpsertRequest {
        collection: "c".into(),
        points,
    })
    .await
    .unwrap();
    let seen = node.seen();
    assert_eq!((seen.packed_vectors, seen.float_vectors), (N as usize, 0));
    let got = c
        .get(pb::GetRequest {
            collection: "c".into(),
            keys: vec![int_key(7)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.points[0].vector, vector(7, DIM));

    // A packed query answers as the float one, and reaches every shard packed.
    let q = vector(1000, DIM);
    let floats = c.search(search(q.clone(), 10)).await.unwrap().into_inner();
    assert_eq!(hit_ids(&floats), exact_top_k(&q, 0..N, DIM, 10));
    let before = node.seen();
    let mut req = search(Vec::new(), 10);
    req.vector_f32le = packed(&q);
    let by_bytes = c.search(req.clone()).await.unwrap().into_inner();
    assert_eq!(hit_ids(&by_bytes), hit_ids(&floats));
    assert_eq!(scores(&by_bytes), scores(&floats));
    let after = node.seen();
    assert_eq!(
        after.packed_vectors - before.packed_vectors,
        SHARDS as usize
    );
    assert_eq!(after.float_vectors, before.float_vectors);

    // Packed hits: the same ids and scores as little-endian arrays.
    req.packed_hits = true;
    let p = c.search(req.clone()).await.unwrap().into_inner();
    assert!(p.hits.is_empty());
    let p = p.packed.expect("packed hits");
    let ids: Vec<u64> = p
        .ids_u64le
        .chunks_exact(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let sc: Vec<f32> = p
        .scores_f32le
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!((ids, sc), (hit_ids(&floats), scores(&floats)));
    // With metadata asked for, hits come as messages.
    req.with_metadata = true;
    let m = c.search(req).await.unwrap().into_inner();
    assert!(m.packed.is_none());
    assert_eq!(hit_ids(&m), hit_ids(&floats));

    // Bad packed input: named, invalid argument.
    let mut both = search(q.clone(), 5);
    both.vector_f32le = packed(&q);
    let mut short = search(Vec::new(), 5);
    short.vector_f32le = packed(&q)[..15].to_vec();
    let mut wrong_dim = search(Vec::new(), 5);
    wrong_dim.vector_f32le = packed(&vector(1, DIM + 1));
    let mut bad_point = point(1, DIM);
    bad_point.vector_f32le = vec![0; 8];
    bad_point.vector.clear();
    let e = c
        .upsert(pb::UpsertRequest {
            collection: "c".into(),
            points: vec![bad_point],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("points[0].vector_f32le: dimension 2"),
        "{}",
        e.message()
    );
    for (r, needle) in [
        (both, "set exactly one of them"),
        (short, "15 bytes is not a whole number"),
        (wrong_dim, "dimension 5 (20 bytes) does not match"),
    ] {
        let e = c.search(r).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        assert!(e.message().contains("vector_f32le"), "{}", e.message());
        assert!(e.message().contains(needle), "{}", e.message());
    }

    // Batch search: equal to single searches, with one call per shard.
    let queries: Vec<Vec<f32>> = (0..5).map(|i| vector(2000 + i, DIM)).collect();
    let mut singles = Vec::new();
    for q in &queries {
        singles.push(c.search(search(q.clone(), 7)).await.unwrap().into_inner());
    }
    let before = node.seen();
    let batch = c
        .search_batch(pb::SearchBatchRequest {
            collection: "c".into(),
            searches: queries
                .iter()
                .map(|q| pb::SearchRequest {
                    vector_f32le: packed(q),
                    k: 7,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let after = node.seen();
    assert_eq!(
        after.search_batch_calls - before.search_batch_calls,
        SHARDS as usize
    );
    assert_eq!(after.search_calls, before.search_calls);
    assert_eq!(batch.results.len(), queries.len());
    for (b, s) in batch.results.iter().zip(&singles) {
        assert_eq!((hit_ids(b), scores(b)), (hit_ids(s), scores(s)));
    }
    let e = c
        .search_batch(pb::SearchBatchRequest {
            collection: "c".into(),
            searches: vec![pb::SearchRequest {
                collection: "other".into(),
                ..search(q.clone(), 3)
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("searches[0]: collection"),
        "{}",
        e.message()
    );
    let mut s1 = search(vec![1.0], 3);
    s1.collection.clear();
    let e = c
        .search_batch(pb::SearchBatchRequest {
            collection: "c".into(),
            searches: vec![s1],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        e.message()
            .starts_with("searches[0]: query.vector: dimension 1"),
        "{}",
        e.message()
    );

    // Search by key: the point's own neighbours without the point.
    let by_key = c
        .search(pb::SearchRequest {
            collection: "c".into(),
            query_key: Some(int_key(11)),
            k: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let want: Vec<u64> = exact_top_k(&vector(11, DIM), 0..N, DIM, 6)
        .into_iter()
        .filter(|i| *i != 11)
        .take(5)
        .collect();
    assert_eq!(hit_ids(&by_key), want);
    let e = c
        .search(pb::SearchRequest {
            collection: "c".into(),
            query_key: Some(int_key(999_999)),
            k: 5,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    assert!(
        e.message().contains("no point with key 999999"),
        "{}",
        e.message()
    );
    let e = c
        .search(pb::SearchRequest {
            query_key: Some(int_key(1)),
            ..search(q.clone(), 5)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Offset: pages of the full ranking.
    let full = exact_top_k(&q, 0..N, DIM, 30);
    for page in 0..3u32 {
        let r = c
            .search(pb::SearchRequest {
                offset: page * 10,
                ..search(q.clone(), 10)
            })
            .await
            .unwrap()
            .into_inner();
        let at = page as usize * 10;
        assert_eq!(hit_ids(&r), full[at..at + 10], "page {page}");
    }
    let e = c
        .search(pb::SearchRequest {
            offset: 9_995,
            ..search(q.clone(), 10)
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("k + offset"), "{}", e.message());

    // Count, all and filtered (both filter forms).
    let count = |spec: Option<pb::count_request::FilterSpec>| {
        let mut c = c.clone();
        async move {
            c.count(pb::CountRequest {
                collection: "c".into(),
                filter_spec: spec,
            })
            .await
            .map(|r| r.into_inner().count)
        }
    };
    assert_eq!(count(None).await.unwrap(), N);
    let even =
        pb::count_request::FilterSpec::FilterJson(r#"{"field": "parity", "eq": "even"}"#.into());
    assert_eq!(count(Some(even)).await.unwrap(), N / 2);
    let bad = pb::count_request::FilterSpec::FilterJson("{\"nope\": 1}".into());
    assert_eq!(
        count(Some(bad)).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // REST: the same operations.
    let http = reqwest::Client::new();
    let base = format!("http://{}/v1/collections/c", router.http_addr());
    let post = |path: &str, body: J| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<J>().await.unwrap())
        }
    };
    let rest_ids = |v: &J| -> Vec<u64> {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_u64().unwrap())
            .collect()
    };
    let (s, b) = post(
        "/search/batch",
        json!({"searches": queries.iter().map(|q| json!({"vector": q, "k": 7})).collect::<Vec<_>>()}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let results = b["results"].as_array().unwrap();
    assert_eq!(results.len(), singles.len());
    for (r, single) in results.iter().zip(&singles) {
        assert_eq!(rest_ids(r), hit_ids(single));
    }
    let (s, b) = post("/search", json!({"id": 11, "k": 5})).await;
    assert_eq!((s, rest_ids(&b)), (200, want.clone()), "{b}");
    let (s, b) = post("/search", json!({"vector": q, "k": 10, "offset": 10})).await;
    assert_eq!((s, rest_ids(&b)), (200, full[10..20].to_vec()), "{b}");
    let (s, b) = post(
        "/count",
        json!({"filter": {"field": "parity", "eq": "odd"}}),
    )
    .await;
    assert_eq!((s, b["count"].as_u64()), (200, Some(N / 2)), "{b}");
    let (s, b) = post("/count", json!({})).await;
    assert_eq!((s, b["count"].as_u64()), (200, Some(N)), "{b}");
    let (s, b) = post("/search", json!({"id": 999_999, "k": 5})).await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = post("/search/batch", json!({"searches": []})).await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("empty search batch"),
        "{b}"
    );

    // REST binary search: the packed vector in, packed ids then scores out, the same hits
    // as the gRPC search; errors stay JSON bodies with a code and a message.
    let binary = |query: String, body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{base}/search?{query}");
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/x-vecshard-f32")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
            (status, ctype, r.bytes().await.unwrap().to_vec())
        }
    };
    let (s, ctype, b) = binary("k=10".into(), packed(&q)).await;
    assert_eq!((s, ctype.as_str()), (200, "application/x-vecshard-hits"));
    assert_eq!(b.len(), 10 * 12);
    let ids: Vec<u64> = b[..80]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let sc: Vec<f32> = b[80..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!((ids, sc), (hit_ids(&floats), scores(&floats)));
    let (s, _, b) = binary("k=10&offset=10&ef=50&exact=true".into(), packed(&q)).await;
    let ids: Vec<u64> = b[..80]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!((s, ids), (200, full[10..20].to_vec()));
    let filter = "%7B%22field%22%3A%22parity%22%2C%22eq%22%3A%22even%22%7D";
    let (s, _, b) = binary(format!("k=5&filter={filter}"), packed(&q)).await;
    assert_eq!((s, b.len()), (200, 5 * 12));
    assert!(
        b[..40]
            .chunks_exact(8)
            .all(|c| u64::from_le_bytes(c.try_into().unwrap()) % 2 == 0)
    );
    for (query, body, status, needle) in [
        (
            "k=5".to_string(),
            packed(&q)[..15].to_vec(),
            400,
            "15 bytes",
        ),
        (
            "k=5".into(),
            packed(&vector(1, DIM + 1)),
            400,
            "dimension 5",
        ),
        ("ef=5".into(), packed(&q), 400, "missing field `k`"),
        ("k=5&nope=1".into(), packed(&q), 400, "unknown field `nope`"),
        (
            "k=5&filter=%7B".into(),
            packed(&q),
            400,
            "filter: invalid JSON",
        ),
    ] {
        let (s, ctype, b) = binary(query.clone(), body).await;
        let e: J = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (s, ctype.as_str()),
            (status, "application/json"),
            "{query}: {e}"
        );
        assert_eq!(e["error"]["code"], "INVALID_ARGUMENT", "{query}: {e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{query}: {msg}");
    }
    let r = http
        .post(format!(
            "http://{}/v1/collections/nope/search?k=3",
            router.http_addr()
        ))
        .header("content-type", "application/x-vecshard-f32")
        .body(packed(&q))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
