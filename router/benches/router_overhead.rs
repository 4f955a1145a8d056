//! What the router adds to a search: client → router → node versus client → node, both
//! over loopback gRPC, against the fake node (which answers at once), so the difference is
//! the router's hop and work. `cargo bench -p vecshard-router --bench router_overhead`.
//! It first measures the machine's floor: a 64-byte ping-pong between two threads over
//! loopback TCP (no gRPC), the least any call between two threads can cost here.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::fake_node::{FakeNode, ObjectStore};
use common::*;
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

const DIM: usize = 128;
const WARMUP: usize = 1000;
const N: usize = 10_000;

fn report(what: &str, mut lat: Vec<u128>) {
    lat.sort_unstable();
    let at = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{what}: p50 {} µs, p99 {} µs ({} round trips)",
        at(0.5),
        at(0.99),
        lat.len()
    );
}

async fn timed<F: std::future::Future<Output = ()>>(mut f: impl FnMut() -> F) -> Vec<u128> {
    let mut lat = Vec::with_capacity(N);
    for i in 0..WARMUP + N {
        let t = Instant::now();
        f().await;
        if i >= WARMUP {
            lat.push(t.elapsed().as_micros());
        }
    }
    lat
}

/// Round trips of 64 bytes between this thread and an echo thread over loopback TCP.
fn tcp_floor() -> Vec<u128> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).unwrap();
        }
    });
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 64];
    let mut lat = Vec::with_capacity(N);
    for i in 0..WARMUP + N {
        let t = Instant::now();
        s.write_all(&buf).unwrap();
        s.read_exact(&mut buf).unwrap();
        if i >= WARMUP {
            lat.push(t.elapsed().as_micros());
        }
    }
    drop(s);
    echo.join().unwrap();
    lat
}

fn main() {
    report("TCP ping-pong, 2 threads  ", tcp_floor());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
        let create = pb::CreateCollectionRequest {
            name: "c".into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: 1,
            storage: "s3://bucket/bench".into(),
            index: None,
            ..Default::default()
        };
        c.create_collection(create).await.unwrap();
        wait_serving(&mut c, "c").await;
        let q = vector(1, DIM);
        let via_router = timed(|| {
            let (mut c, q) = (c.clone(), q.clone());
            async move {
                let req = pb::SearchRequest {
                    collection: "c".into(),
                    vector: q,
                    k: 10,
                    ..Default::default()
                };
                c.search(req).await.unwrap();
            }
        })
        .await;
        let n = pi::node_client::NodeClient::connect(format!("http://{}", node.addr))
            .await
            .unwrap();
        let direct = timed(|| {
            let (mut n, q) = (n.clone(), q.clone());
            async move {
                let req = pi::SearchRequest {
                    target: Some(pi::ShardTarget {
                        collection: "c".into(),
                        shard: 0,
                        epoch: 1,
                    }),
                    vector: q,
                    k: 10,
                    ..Default::default()
                };
                n.search(req).await.unwrap();
            }
        })
        .await;
        report("client -> router -> node", via_router);
        report("client -> node          ", direct);
        router.shutdown().await;
    });
}
