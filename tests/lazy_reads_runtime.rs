//! A node whose shard reads segments lazily from an object store stays responsive while
//! searches wait on slow object requests: such reads run on the read pool, never inline on
//! the node's async runtime (where narrow searches of local shards run). Before, a few
//! cold searches held every runtime thread, heartbeats and leases stalled, and the routers
//! failed the node over because its store was slow.
//!
//! The node reaches the local S3 through a proxy that delays the first byte of every
//! answer; the check is causal, not timed: `/healthz` must answer before the proxy has
//! passed on any delayed answer, which a search must wait for to finish.

mod cluster_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster_support::{Cluster, HOW_TO_START_S3, Options, test_bucket};
use vecshard_proto::v1 as pb;
use vecshard_test_support::api::upsert;
use vecshard_test_support::proxy::DelayProxy;
use vecshard_test_support::vector;

const DIM: usize = 16;
const POINTS: u64 = 6000;
const SEARCHES: u64 = 16;

/// `host:port` of the local S3 endpoint the test environment names.
fn s3_addr() -> SocketAddr {
    test_bucket().unwrap_or_else(|| panic!("{HOW_TO_START_S3}"));
    let endpoint = std::env::var("VECSHARD_TEST_S3_ENDPOINT").unwrap();
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    hostport
        .parse()
        .unwrap_or_else(|e| panic!("VECSHARD_TEST_S3_ENDPOINT {endpoint:?}: {e}"))
}

/// `(segments, memtable rows)` of the collection's shard from the node's metrics.
async fn shard_shape(http: &str) -> Option<(u64, u64)> {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("collection=\"lazy\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some((
        value("vecshard_node_shard_segments")?,
        value("vecshard_node_shard_memtable_rows")?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_object_store_searches_leave_the_node_responsive() {
    let proxy = DelayProxy::start(s3_addr()).await.unwrap();
    let mut c = Cluster::start_with(
        1,
        1,
        Options {
            node_env: vec![(
                "AWS_ENDPOINT_URL".to_string(),
                format!("http://{}", proxy.addr()),
            )],
            // Format 2 on the object store: segments are read lazily, block by block.
            engine_settings: vec!["segment_format = \"auto\""],
            ..Options::default()
        },
    );
    c.wait_ready(1).await;
    let mut client = c.any_client().await;
    client
        .create_collection(pb::CreateCollectionRequest {
            name: "lazy".into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: 1,
            storage: c.storage(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create: {e:?}\n{}", c.logs()));
    c.wait_serving("lazy").await;
    upsert(&mut client, "lazy", 0..POINTS, DIM).await;
    // The idle flush writes everything into segments.
    let http = c.nodes[0].http.clone();
    c.eventually("a flushed shard", Duration::from_secs(120), || async {
        let (segments, memtable) = shard_shape(&http).await?;
        (segments >= 1 && memtable == 0).then_some(())
    })
    .await;
    // A restarted node opens the shard with empty caches: every search block is a request.
    c.nodes[0].proc.as_mut().unwrap().kill9();
    c.start_node(0);
    c.eventually("the shard open again", Duration::from_secs(120), || async {
        let (segments, _) = shard_shape(&http).await?;
        (segments >= 1).then_some(())
    })
    .await;
    c.wait_serving("lazy").await;

    proxy.set_delay(Duration::from_millis(500));
    let done = Arc::new(AtomicU64::new(0));
    let before = proxy.requests();
    let mut searches = tokio::task::JoinSet::new();
    for i in 0..SEARCHES {
        let (mut client, done) = (client.clone(), done.clone());
        searches.spawn(async move {
            let r = client
                .search(pb::SearchRequest {
                    collection: "lazy".into(),
                    vector: vector(i * 131 + 7, DIM),
                    k: 10,
                    ..Default::default()
                })
                .await;
            done.fetch_add(1, Ordering::AcqRel);
            r.map(|r| r.into_inner().hits.len())
        });
    }
    // The searches are at the node, waiting on the store.
    c.eventually(
        "the searches' object requests",
        Duration::from_secs(30),
        || async { (proxy.requests() > before).then_some(()) },
    )
    .await;
    let health = reqwest::get(format!("http://{http}/healthz"))
        .await
        .unwrap_or_else(|e| panic!("/healthz: {e}\n{}", c.logs()));
    let (late, finished) = (proxy.delayed_answers(), done.load(Ordering::Acquire));
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        (late, finished),
        (0, 0),
        "the node answered /healthz only after {late} slow object answers and {finished} \
         searches: its runtime was held by searches waiting on the store"
    );

    // The searches themselves answer, right, once the store is fast again.
    proxy.set_delay(Duration::ZERO);
    while let Some(r) = searches.join_next().await {
        let hits = r
            .unwrap()
            .unwrap_or_else(|e| panic!("search: {e:?}\n{}", c.logs()));
        assert_eq!(hits, 10);
    }
}
