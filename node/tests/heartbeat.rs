//! Membership against fake routers: the node registers, turns ready, sends heartbeats
//! with its shards' states, registers again when a router forgot it, and talks to the
//! routers a heartbeat answer lists.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

struct FakeRouter {
    seen: mpsc::Sender<Seen>,
    forget_once: Arc<AtomicBool>,
    others: Vec<String>,
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
        let _ = self.seen.send(Seen::Beat(req.into_inner())).await;
        Ok(Response::new(pb::HeartbeatResponse {
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
