//! The real `vecshard node` binary with a config file: gRPC to it, SIGKILL it in the
//! middle of a concurrent ingest, restart it, and find every acknowledged write (with
//! its latest acknowledged version). Finally SIGTERM: a graceful exit that leaves the
//! shard closed and complete.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::transport::Channel;
use vecshard_engine::{Key, Options, Shard};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb1;

const PATIENCE: Duration = Duration::from_secs(60);
const DIM: usize = 8;
const WRITERS: u64 = 4;
const KEYS_PER_WRITER: u64 = 300;
const ROUNDS: usize = 3;

struct Node {
    child: Child,
    grpc: String,
}

impl Drop for Node {
    /// Never leave a node behind, even when the test fails.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(config: &Path) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["node", "--config"])
        .arg(config)
        .env("VECSHARD__NODE__ID", "env-node")
        .env("VECSHARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start vecshard node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the node prints its addresses");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Node {
        child,
        grpc: v["grpc_addr"].as_str().unwrap().to_string(),
    }
}

async fn connect(addr: &str) -> NodeClient<Channel> {
    NodeClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

fn target() -> Option<pb::ShardTarget> {
    Some(pb::ShardTarget {
        collection: "proc".into(),
        shard: 0,
        epoch: 1,
    })
}

/// Assign the shard (the same epoch every time, as a router re-sends it after a
/// restart) and wait until it serves.
async fn assign(c: &mut NodeClient<Channel>) {
    c.assign_shard(pb::AssignShardRequest {
        collection: "proc".into(),
        shard: 0,
        epoch: 1,
        role: pb::Role::Writer as i32,
        storage: "local".into(),
        dimension: DIM as u32,
        metric: pb1::Metric::L2 as i32,
        index: None,
        incarnation: 0,
        restore: None,
        replication: None,
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let st = c
            .node_status(pb::NodeStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(st.node_id, "env-node", "the environment overrides the file");
        if let Some(s) = st.shards.iter().find(|s| s.collection == "proc") {
            assert_ne!(s.state(), pb::ShardState::Failed, "{}", s.error);
            if s.state() == pb::ShardState::Serving {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never serving");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn vector(key: u64, version: u64) -> Vec<f32> {
    let mut v = vec![key as f32, version as f32];
    v.resize(DIM, 0.5);
    v
}

/// Per key: the highest acknowledged version and the highest attempted one.
type Model = Arc<Mutex<BTreeMap<u64, (u64, u64)>>>;

/// Writers re-upsert their keys with growing versions until the node dies.
async fn ingest_until_killed(c: &NodeClient<Channel>, model: &Model, round: u64) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (mut c, model) = (c.clone(), model.clone());
        tasks.push(tokio::spawn(async move {
            for step in 0u64.. {
                let version = round * 1_000_000 + step;
                let keys: Vec<u64> = (0..25)
                    .map(|i| w * KEYS_PER_WRITER + (step * 25 + i) % KEYS_PER_WRITER)
                    .collect();
                {
                    let mut m = model.lock().unwrap();
                    for k in &keys {
                        m.entry(*k).or_insert((0, 0)).1 = version;
                    }
                }
                let points = keys
                    .iter()
                    .map(|k| pb1::Point {
                        key: Some(pb1::Key {
                            kind: Some(pb1::key::Kind::Int(*k)),
                        }),
                        vector: vector(*k, version),
                        ..Default::default()
                    })
                    .collect();
                let r = c
                    .upsert(pb::UpsertRequest {
                        target: target(),
                        points,
                    })
                    .await;
                if r.is_err() {
                    return step;
                }
                let mut m = model.lock().unwrap();
                for k in &keys {
                    m.get_mut(k).unwrap().0 = version;
                }
            }
            unreachable!()
        }));
    }
    for t in tasks {
        tokio::time::timeout(PATIENCE, t).await.unwrap().unwrap();
    }
}

async fn verify(c: &mut NodeClient<Channel>, model: &Model) -> usize {
    let wanted: Vec<(u64, (u64, u64))> = model
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    if wanted.is_empty() {
        return 0;
    }
    let got = c
        .get(pb::GetRequest {
            target: target(),
            keys: wanted
                .iter()
                .map(|(k, _)| pb1::Key {
                    kind: Some(pb1::key::Kind::Int(*k)),
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .points;
    let stored: BTreeMap<u64, u64> = got
        .iter()
        .map(|p| match p.key.as_ref().and_then(|k| k.kind.clone()) {
            Some(pb1::key::Kind::Int(k)) => (k, p.vector[1] as u64),
            other => panic!("unexpected key {other:?}"),
        })
        .collect();
    let mut acked = 0;
    for (k, (acked_v, tried_v)) in wanted {
        if acked_v == 0 && tried_v == 0 {
            continue;
        }
        let Some(v) = stored.get(&k) else {
            assert!(
                acked_v == 0,
                "acknowledged key {k} (version {acked_v}) lost"
            );
            continue;
        };
        assert!(
            *v >= acked_v && *v <= tried_v,
            "key {k}: stored version {v}, acknowledged {acked_v}, last tried {tried_v}"
        );
        acked += usize::from(acked_v > 0);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = \"from-file\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[engine]\nmemtable_bytes = 262144\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let model: Model = Arc::default();
    for round in 1..=ROUNDS as u64 {
        let mut node = spawn_node(&config);
        let mut c = connect(&node.grpc).await;
        assign(&mut c).await;
        let before = verify(&mut c, &model).await;
        // Kill once this round's writers have had some writes acknowledged.
        let killer = {
            let model = model.clone();
            let target_acks = 200 * round as usize;
            async move {
                loop {
                    let acked = model
                        .lock()
                        .unwrap()
                        .values()
                        .filter(|(a, _)| *a >= round * 1_000_000)
                        .count();
                    if acked >= target_acks.min((WRITERS * KEYS_PER_WRITER) as usize) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                node.child.kill().expect("SIGKILL");
                node.child.wait().unwrap();
            }
        };
        tokio::join!(ingest_until_killed(&c, &model, round), killer);
        assert!(before <= (WRITERS * KEYS_PER_WRITER) as usize);
    }

    // One more restart: everything acknowledged is there; then a graceful SIGTERM.
    let mut node = spawn_node(&config);
    let mut c = connect(&node.grpc).await;
    assign(&mut c).await;
    let acked = verify(&mut c, &model).await;
    assert!(acked >= 200, "only {acked} keys were acknowledged");
    let pid = node.child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let status = node.child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status:?}");

    // The shard was closed cleanly: its lock is free and it holds every acknowledged key.
    let shard = Shard::open(
        data.join("proc").join("0").to_str().unwrap(),
        Options::default(),
    )
    .expect("the node released the shard's lock");
    for (k, (acked_v, _)) in model.lock().unwrap().iter() {
        if *acked_v > 0 {
            let p = shard.get(&Key::Int(*k)).unwrap().expect("acknowledged key");
            assert!(p.vector[1] as u64 >= *acked_v);
        }
    }
    shard.close().unwrap();
}

#[test]
fn a_bad_config_stops_the_binary_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[node]\nid = \"n\"\nmailbx_capacity = 8\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["node", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config key `node.mailbx_capacity`: unknown key"),
        "{err}"
    );

    std::fs::write(&config, "[node]\nid = \"n\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["node", "--config"])
        .arg(&config)
        .env("VECSHARD__ENGINE__MEMTABLE_BYTES", "12")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config key `engine.memtable_bytes`: must be at least 65536 (got 12)"),
        "{err}"
    );
}
