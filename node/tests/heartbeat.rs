//! Membership against fake routers: the node registers, turns ready, sends heartbeats
//! with its shards' states, registers again when a router forgot it, and talks to the
//! routers a heartbeat answer lists.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::router_internal_server::{RouterInternal, RouterInternalServer};

#[derive(Debug)]
enum Seen {
    Register(pb::RegisterNodeRequest),
    Beat(pb::Heartbeat),
}

/// What a fake router's heartbeat answers grant.
#[derive(Debug, Clone, Copy, Default)]
enum Grant {
    /// No lease (a follower router).
    #[default]
    Nothing,
    /// A lease of this many ms for every writer shard reported (the leader).
    Every(u64),
    /// A lease answer that leases nothing (the leader's map gives the shards elsewhere).
    NoShard(u64),
}

struct FakeRouter {
    seen: mpsc::Sender<Seen>,
    forget_once: Arc<AtomicBool>,
    others: Vec<String>,
    grant: Arc<std::sync::Mutex<Grant>>,
}

#[tonic::async_trait]
impl RouterInternal for FakeRouter {
    async fn register_node(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> Result<Response<pb::RegisterNodeResponse>, Status> {
        let _ = self.seen.send(Seen::Register(req.into_inner())).await;
        Ok(Response::new(pb::RegisterNodeResponse { created: true }))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::Heartbeat>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        if self.forget_once.swap(false, Ordering::AcqRel) {
            return Err(Status::not_found("unknown node"));
        }
        let beat = req.into_inner();
        let grant = *self.grant.lock().unwrap();
        let (lease_ms, leased) = match grant {
            Grant::Nothing => (0, vec![]),
            Grant::NoShard(ms) => (ms, vec![]),
            Grant::Every(ms) => (
                ms,
                beat.shards
                    .iter()
                    .filter(|s| s.role() == pb::Role::Writer)
                    .map(|s| pb::ShardTarget {
                        collection: s.collection.clone(),
                        shard: s.shard,
                        epoch: s.epoch,
                    })
                    .collect(),
            ),
        };
        let _ = self.seen.send(Seen::Beat(beat)).await;
        Ok(Response::new(pb::HeartbeatResponse {
            lease_ms,
            leased,
            leader_id: Some(1),
            routers: self
                .others
                .iter()
                .enumerate()
                .map(|(i, a)| pb::RouterEndpoint {
                    id: i as u64 + 2,
                    address: a.clone(),
                })
                .collect(),
            shard_map_version: 7,
        }))
    }

    async fn shrink_isr(
        &self,
        _: Request<pb::ShrinkIsrRequest>,
    ) -> Result<Response<pb::ShrinkIsrResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn expand_isr(
        &self,
        _: Request<pb::ExpandIsrRequest>,
    ) -> Result<Response<pb::ExpandIsrResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn append_entries(
        &self,
        _: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn vote(
        &self,
        _: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn install_snapshot(
        &self,
        _: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

fn serve(listener: TcpListener, router: FakeRouter) {
    tokio::spawn(
        Server::builder()
            .add_service(RouterInternalServer::new(router))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
}

async fn next(rx: &mut mpsc::Receiver<Seen>) -> Seen {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("the node calls the router")
        .expect("router alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_sends_heartbeats_and_follows_the_router_list() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster.routers = vec![a_addr.to_string()];
    cfg.cluster.heartbeat_interval_ms = 20;
    cfg.cluster.rpc_timeout_ms = 1000;
    let node = vecshard_node::start(cfg).await.unwrap();

    // Router A accepts connections but does not answer yet: not ready.
    let (code, body) = http_get(node.http_addr(), "/readyz").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "not ready: not registered with a router yet\n")
    );
    assert!(!node.is_ready());

    let (tx_a, mut seen_a) = mpsc::channel(1024);
    let forget = Arc::new(AtomicBool::new(false));
    serve(
        a,
        FakeRouter {
            seen: tx_a,
            forget_once: forget.clone(),
            others: vec![b_addr.to_string()],
            grant: Arc::default(),
        },
    );
    let Seen::Register(r) = next(&mut seen_a).await else {
        panic!("the first call registers")
    };
    assert_eq!(r.node_id, "test-node");
    assert_eq!(r.address, node.grpc_addr().to_string());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while http_get(node.http_addr(), "/readyz").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::task::yield_now().await;
    }

    // Heartbeats carry the shards and their states.
    let mut c = connect(&node).await;
    serve_writer(&mut c, "h", 1, 5, 4).await;
    loop {
        let Seen::Beat(beat) = next(&mut seen_a).await else {
            panic!("registered once only")
        };
        assert_eq!(beat.node_id, "test-node");
        let serving = beat
            .shards
            .iter()
            .find(|s| s.collection == "h" && s.shard == 1 && s.state() == pb::ShardState::Serving);
        if let Some(s) = serving {
            assert_eq!((s.epoch, s.role()), (5, pb::Role::Writer));
            break;
        }
    }

    // A router that forgot the node gets a new registration.
    forget.store(true, Ordering::Release);
    loop {
        if let Seen::Register(r) = next(&mut seen_a).await {
            assert_eq!(r.node_id, "test-node");
            break;
        }
    }

    // Router B, listed in A's answers, receives heartbeats too.
    let (tx_b, mut seen_b) = mpsc::channel(1024);
    serve(
        b,
        FakeRouter {
            seen: tx_b,
            forget_once: Arc::new(AtomicBool::new(false)),
            others: vec![],
            grant: Arc::default(),
        },
    );
    // (Beats sent while B was not serving yet may arrive first, stale: wait for a
    // current one.)
    loop {
        if let Seen::Beat(beat) = next(&mut seen_b).await
            && beat.shards.iter().any(|s| s.collection == "h")
        {
            break;
        }
    }

    // A released shard is reported CLOSED, then forgotten.
    c.release_shard(pb::ReleaseShardRequest {
        collection: "h".into(),
        shard: 1,
        epoch: 5,
        delete_data: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut closed_reports = 0;
    let mut empty_beats = 0;
    while empty_beats < 3 {
        let Seen::Beat(beat) = next(&mut seen_a).await else {
            continue;
        };
        match beat.shards.iter().find(|s| s.collection == "h") {
            Some(s) if s.state() == pb::ShardState::Closed => closed_reports += 1,
            Some(_) => {}
            None => empty_beats += 1,
        }
    }
    assert!(closed_reports >= 1);
    node.shutdown().await;
}

/// A TCP relay to `target` whose connections can all go dark at once: bytes are then read
/// and dropped, nothing is answered and nothing is closed, as when a network cut leaves
/// the peer's address unreachable. Connections accepted afterwards relay again.
async fn relay(
    target: std::net::SocketAddr,
) -> (std::net::SocketAddr, tokio::sync::watch::Sender<u64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, generation) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let mut gone_dark = generation.clone();
            let born = *gone_dark.borrow_and_update();
            tokio::spawn(async move {
                let (mut in_r, mut in_w) = inbound.into_split();
                let (mut out_r, mut out_w) = outbound.into_split();
                let mut up = [0u8; 16384];
                let mut down = [0u8; 16384];
                let mut dark = false;
                loop {
                    tokio::select! {
                        n = in_r.read(&mut up) => match n {
                            Ok(0) | Err(_) => return,
                            Ok(n) if !dark => { if out_w.write_all(&up[..n]).await.is_err() { return } }
                            Ok(_) => {}
                        },
                        n = out_r.read(&mut down), if !dark => match n {
                            Ok(0) | Err(_) => return,
                            Ok(n) => { if in_w.write_all(&down[..n]).await.is_err() { return } }
                        },
                        changed = gone_dark.changed(), if !dark => {
                            if changed.is_err() { return }
                            dark = *gone_dark.borrow() > born;
                        }
                    }
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_resume_on_a_new_connection_after_the_old_one_goes_dark() {
    let router = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (relay_addr, cut) = relay(router.local_addr().unwrap()).await;
    let (tx, mut seen) = mpsc::channel(1024);
    serve(
        router,
        FakeRouter {
            seen: tx,
            forget_once: Arc::new(AtomicBool::new(false)),
            others: vec![],
            grant: Arc::default(),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster.routers = vec![relay_addr.to_string()];
    cfg.cluster.heartbeat_interval_ms = 20;
    cfg.cluster.rpc_timeout_ms = 300;
    let node = vecshard_node::start(cfg).await.unwrap();
    while !matches!(next(&mut seen).await, Seen::Beat(_)) {}

    // Every open connection goes dark; new ones work. The node must notice and reconnect:
    // a beat arrives again (PATIENCE is many RPC timeouts).
    cut.send_modify(|g| *g += 1);
    // Beats already on their way may still land: skip them, up to a silence (the cut
    // must stop the beats for a while, or this test proves nothing).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::timeout(std::time::Duration::from_millis(100), seen.recv())
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut did not stop the beats"
        );
    }
    assert!(
        matches!(next(&mut seen).await, Seen::Beat(_)),
        "heartbeats resumed"
    );
    node.shutdown().await;
}

/// The heartbeat timer runs on the node's clock: with a manual clock and a 10 s interval
/// the node registers and beats at once, then beats again only when the clock has moved a
/// whole interval (not a millisecond sooner), without any real 10 s passing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_follow_the_injected_clock() {
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut seen) = mpsc::channel(1024);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster.routers = vec![a.local_addr().unwrap().to_string()];
    cfg.cluster.heartbeat_interval_ms = 10_000;
    serve(
        a,
        FakeRouter {
            seen: tx,
            forget_once: Arc::new(AtomicBool::new(false)),
            others: vec![],
            grant: Arc::default(),
        },
    );
    let clock = vecshard_model::ManualClock::new();
    let started = std::time::Instant::now();
    let node = vecshard_node::start_with_clock(cfg, Arc::new(clock.clone()))
        .await
        .unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Register(_)));
    assert!(matches!(next(&mut seen).await, Seen::Beat(_)));
    for round in 0..3 {
        clock.advance(Duration::from_millis(9_999));
        // Nothing is due yet: a beat now would come within a few milliseconds.
        let early = tokio::time::timeout(Duration::from_millis(200), seen.recv()).await;
        assert!(
            early.is_err(),
            "round {round}: a beat before the interval: {early:?}"
        );
        clock.advance(Duration::from_millis(1));
        assert!(
            matches!(next(&mut seen).await, Seen::Beat(_)),
            "round {round}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "30 s of heartbeats took {:?} of real time",
        started.elapsed()
    );
    node.shutdown().await;
}

/// Poll a get of key 1 at epoch 1 of shard `l/0` until it answers (or PATIENCE).
async fn get_until_served(c: &mut Client) -> Vec<vecshard_proto::v1::Point> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match c.get(get_one("l")).await {
            Ok(r) => return r.into_inner().points,
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never served: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Assert a read was refused as UNAVAILABLE with a message containing `why`.
fn refused<T: std::fmt::Debug>(r: Result<T, Status>, why: &str) {
    let err = r.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(err.message().contains(why), "{}", err.message());
}

/// The keys a get of key 1 finds in the local shard `h/0`.
async fn local_keys(c: &mut Client) -> Vec<u64> {
    keys_of(&c.get(get_one("h")).await.unwrap().into_inner().points)
}

fn get_one(collection: &str) -> pb::GetRequest {
    pb::GetRequest {
        target: target(collection, 0, 1),
        keys: vec![int_key(1)],
    }
}

/// A writer another node could replace (here an object-store shard) answers reads only
/// under the read lease the Raft leader's heartbeat answers grant: none before the first
/// grant, served while it runs (counted from when the heartbeat left, on the node's
/// clock), refused once it ran out or once the leader's answer leaves the shard out. A
/// local unreplicated writer, which never moves, needs no lease. Writes need none: they
/// are fenced in storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaceable_writer_reads_only_under_the_leaders_lease() {
    let prefix = s3_prefix("lease");
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, mut seen) = mpsc::channel(1024);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cluster.routers = vec![a.local_addr().unwrap().to_string()];
    cfg.cluster.heartbeat_interval_ms = 10_000;
    cfg.cluster.allowed_storage = vec![prefix.clone()];
    let grant = Arc::new(std::sync::Mutex::new(Grant::Nothing));
    serve(
        a,
        FakeRouter {
            seen: tx,
            forget_once: Arc::new(AtomicBool::new(false)),
            others: vec![],
            grant: grant.clone(),
        },
    );
    let clock = vecshard_model::ManualClock::new();
    let node = vecshard_node::start_with_clock(cfg, Arc::new(clock.clone()))
        .await
        .unwrap();
    assert!(matches!(next(&mut seen).await, Seen::Register(_)));
    let mut c = connect(&node).await;
    c.assign_shard(pb::AssignShardRequest {
        storage: format!("{prefix}/l/0"),
        ..assign_req("l", 0, 1, pb::Role::Writer, 4)
    })
    .await
    .unwrap();
    wait_state(&mut c, "l", 0, 1, pb::ShardState::Serving).await;
    serve_writer(&mut c, "h", 0, 1, 4).await;
    for collection in ["l", "h"] {
        c.upsert(pb::UpsertRequest {
            target: target(collection, 0, 1),
            points: vec![p4(1)],
        })
        .await
        .expect("writes need no lease");
    }

    // No grant yet: the object-store writer refuses reads, naming why; the local one serves.
    refused(
        c.get(get_one("l")).await,
        "has not confirmed that this node holds the shard",
    );
    assert_eq!(local_keys(&mut c).await, vec![1]);

    // The leader grants 1 s. The refused read asked for an early round (at most one per
    // 50 ms of the node's clock): the next reads are served, with the written value.
    *grant.lock().unwrap() = Grant::Every(1_000);
    clock.advance(Duration::from_millis(50));
    let got = get_until_served(&mut c).await;
    assert_eq!(keys_of(&got), vec![1]);
    assert_eq!(got[0].vector, vec![1.0, 0.0, 0.0, 1.0]);

    // The leader goes quiet: once 1 s has passed since the granting beat left, reads stop.
    *grant.lock().unwrap() = Grant::Nothing;
    clock.advance(Duration::from_millis(1_000));
    refused(c.get(get_one("l")).await, "read lease ran out");
    assert_eq!(local_keys(&mut c).await, vec![1]);
    let (_, text) = http_get(node.http_addr(), "/metrics").await;
    let refusals = metric(
        &text,
        "vecshard_node_read_lease_refusals_total{collection=\"l\",shard=\"0\"}",
    );
    assert!(refusals.is_some_and(|n| n >= 2.0), "{refusals:?}");

    // Granted again, then a leader answer that leaves the shard out takes the lease away
    // at once, long before it would run out.
    *grant.lock().unwrap() = Grant::Every(60_000);
    clock.advance(Duration::from_millis(50));
    assert_eq!(keys_of(&get_until_served(&mut c).await), vec![1]);
    *grant.lock().unwrap() = Grant::NoShard(60_000);
    clock.advance(Duration::from_millis(10_000)); // the next regular round
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let refusal = loop {
        match c.get(get_one("l")).await {
            Ok(_) => assert!(tokio::time::Instant::now() < deadline, "never revoked"),
            Err(e) => break Err::<(), _>(e),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    refused(refusal, "has not confirmed");
    node.shutdown().await;
}
