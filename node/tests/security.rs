//! A node obeys only routers, over real sockets on 127.0.0.1: with TLS its listener
//! refuses plaintext, certificate-less and foreign-CA clients at the handshake, and a
//! cluster member that is not a router (a node's certificate) gets PERMISSION_DENIED for
//! AssignShard, ReleaseShard and Upsert with nothing changed on disk; without TLS, a
//! cluster secret gates every call.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_security::Identity;
use vecshard_security::generate::{Plan, Written, generate};

fn pki(dir: &Path) -> Written {
    let plan = Plan {
        hosts: vec![],
        routers: vec!["1".into()],
        nodes: vec!["test-node".into(), "n2".into()],
    };
    generate(dir, &plan).unwrap()
}

fn files(w: &Written, id: &Identity) -> (String, String) {
    let m = w.members.iter().find(|m| &m.identity == id).unwrap();
    (m.cert.display().to_string(), m.key.display().to_string())
}

fn client(
    node: &vecshard_node::NodeHandle,
    w: &Written,
    who: Option<(&Written, &Identity)>,
) -> Client {
    let ca = std::fs::read(&w.ca).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some((as_w, id)) = who {
        let (cert, key) = files(as_w, id);
        tls = tls.identity(TlsIdentity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ));
    }
    let ch: Channel = Endpoint::from_shared(format!("https://{}", node.grpc_addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    NodeClient::new(ch)
}

/// Every file under `dir` with its length and content hash.
fn disk(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let h = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ *b as u64).wrapping_mul(0x100000001b3)
                });
                out.insert(p.display().to_string(), (bytes.len() as u64, h));
            }
        }
    }
    out
}

/// The call never reached the service: the connection was refused or dropped at the TLS
/// handshake (a transport error, never an answer of the server).
fn assert_refused(e: &tonic::Status) {
    let transport = std::error::Error::source(e)
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(transport, "expected a transport refusal, got {e:?}");
}

fn release(epoch: u64) -> pb::ReleaseShardRequest {
    pb::ReleaseShardRequest {
        collection: "c".into(),
        shard: 0,
        epoch,
        delete_data: true,
        ..Default::default()
    }
}

fn upsert() -> pb::UpsertRequest {
    pb::UpsertRequest {
        target: target("c", 0, 1),
        points: vec![p4(7)],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_only_routers_may_call_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let w = pki(&dir.path().join("pki"));
    let other = pki(&dir.path().join("other-ca"));
    let data = dir.path().join("data");
    let mut cfg = config(&data);
    let (cert, key) = files(&w, &Identity::Node("test-node".into()));
    cfg.cluster.tls_cert = cert;
    cfg.cluster.tls_key = key;
    cfg.cluster.tls_ca = w.ca.display().to_string();
    let node = vecshard_node::start(cfg).await.unwrap();
    let router = Identity::Router("1".into());

    // A router sets up a shard with data.
    let mut r = client(&node, &w, Some((&w, &router)));
    serve_writer(&mut r, "c", 0, 1, 4).await;
    r.upsert(upsert()).await.unwrap();
    let before = disk(&data);
    assert!(!before.is_empty());

    // Refused at the handshake: plaintext, no certificate, a router certificate of
    // another CA.
    let plain = Endpoint::from_shared(format!("http://{}", node.grpc_addr()))
        .unwrap()
        .connect_lazy();
    let e = NodeClient::new(plain)
        .release_shard(release(u64::MAX))
        .await
        .unwrap_err();
    assert_refused(&e);
    let e = client(&node, &w, None)
        .release_shard(release(u64::MAX))
        .await
        .unwrap_err();
    assert_refused(&e);
    let mut foreign = client(&node, &w, Some((&other, &router)));
    let e = foreign.release_shard(release(u64::MAX)).await.unwrap_err();
    assert_refused(&e);

    // A member that is not a router: PERMISSION_DENIED for everything.
    let mut n2 = client(&node, &w, Some((&w, &Identity::Node("n2".into()))));
    let e = n2.release_shard(release(u64::MAX)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("only routers"), "{}", e.message());
    let e = n2.upsert(upsert()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = n2
        .assign_shard(assign_req("d", 0, 1, pb::Role::Writer, 4))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Nothing changed on disk, and the shard still serves the router.
    assert_eq!(disk(&data), before);
    let got = r
        .get(pb::GetRequest {
            target: target("c", 0, 1),
            keys: vec![int_key(7)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys_of(&got.points), vec![7]);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_a_node_needs_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = config(&data);
    cfg.cluster.secret = "a-cluster-secret-for-tests".into();
    let node = vecshard_node::start(cfg).await.unwrap();
    let mut c = connect(&node).await;
    let before = disk(&data);
    let e = c
        .assign_shard(assign_req("c", 0, 1, pb::Role::Writer, 4))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c.release_shard(release(u64::MAX)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c.upsert(upsert()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert_eq!(disk(&data), before);
    let mut r = tonic::Request::new(assign_req("c", 0, 1, pb::Role::Writer, 4));
    r.metadata_mut().insert(
        vecshard_security::SECRET_HEADER,
        "a-cluster-secret-for-tests".parse().unwrap(),
    );
    c.assign_shard(r).await.unwrap();
    node.shutdown().await;
}
