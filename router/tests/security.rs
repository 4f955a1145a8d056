//! The router's trust boundary over real sockets on 127.0.0.1: TLS listeners refuse
//! plaintext and untrusted clients, the internal service takes a node's registration and
//! heartbeats only from that node, a cluster secret gates internal calls, and API keys
//! carry roles (401 for no or unknown key, 403 for a missing role).

mod common;

use std::time::{Duration, Instant};

use common::{eventually, test_config};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity as TlsIdentity};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;
use vecshard_router::RouterConfig;
use vecshard_security::Identity;
use vecshard_security::generate::{Plan, Written, generate};

const PATIENCE: Duration = Duration::from_secs(20);

/// A CA with router 1 and nodes `n1`, `n2`, `n3`.
fn pki(dir: &std::path::Path) -> Written {
    let plan = Plan {
        hosts: vec![],
        routers: vec!["1".into()],
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
    };
    generate(dir, &plan).unwrap()
}

fn files(w: &Written, id: &Identity) -> (String, String) {
    let m = w.members.iter().find(|m| &m.identity == id).unwrap();
    (m.cert.display().to_string(), m.key.display().to_string())
}

fn tls_config(dir: &std::path::Path, w: &Written) -> RouterConfig {
    let mut c = test_config(&dir.join("router"), 1);
    let (cert, key) = files(w, &Identity::Router("1".into()));
    (c.tls_cert, c.tls_key, c.tls_ca) = (cert, key, w.ca.display().to_string());
    c
}

/// Client TLS trusting `w`'s CA, presenting `who`'s certificate from `as_w` (or none).
fn client_tls(w: &Written, who: Option<(&Written, &Identity)>) -> ClientTlsConfig {
    let ca = std::fs::read(&w.ca).unwrap();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match who {
        None => tls,
        Some((as_w, id)) => {
            let (cert, key) = files(as_w, id);
            let (cert, key) = (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap());
            tls.identity(TlsIdentity::from_pem(cert, key))
        }
    }
}

fn tls_channel(addr: std::net::SocketAddr, tls: ClientTlsConfig) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

fn plain_channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// The call never reached the service: the connection was refused or dropped at the TLS
/// handshake (a transport error, never an answer of the server).
fn assert_refused(e: &tonic::Status) {
    let transport = std::error::Error::source(e)
        .is_some_and(|s| s.downcast_ref::<tonic::transport::Error>().is_some());
    assert!(transport, "expected a transport refusal, got {e:?}");
}

fn beat(node: &str, address: &str) -> pi::Heartbeat {
    pi::Heartbeat {
        node_id: node.into(),
        address: address.into(),
        shards: vec![],
    }
}

fn register(node: &str, address: &str) -> pi::RegisterNodeRequest {
    pi::RegisterNodeRequest {
        node_id: node.into(),
        address: address.into(),
        zone: String::new(),
    }
}

/// Register `node` at `address` through `c`, retrying until the router has elected itself.
async fn register_eventually(c: &RouterInternalClient<Channel>, node: &str, address: &str) {
    eventually("a registration", PATIENCE, || {
        let mut c = c.clone();
        async move {
            c.register_node(register(node, address))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
}

async fn node_address(c: &mut VecShardClient<Channel>, node: &str) -> Option<String> {
    let s = c
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .ok()?
        .into_inner();
    s.nodes
        .into_iter()
        .find(|n| n.id == node)
        .map(|n| n.address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_refuse_plaintext_clients() {
    let dir = tempfile::tempdir().unwrap();
    let w = pki(&dir.path().join("pki"));
    let router = vecshard_router::start(tls_config(dir.path(), &w))
        .await
        .unwrap();

    // Plaintext gRPC to the public and the internal listener: no answer, only errors.
    let mut public = VecShardClient::new(plain_channel(router.grpc_addr()));
    let e = public
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    let mut internal = RouterInternalClient::new(plain_channel(router.internal_addr()));
    let e = internal
        .heartbeat(beat("n1", "127.0.0.1:1"))
        .await
        .unwrap_err();
    assert_refused(&e);
    // Plaintext HTTP to the REST listener: the connection fails.
    let plain = reqwest::Client::new();
    let r = plain
        .get(format!("http://{}/healthz", router.http_addr()))
        .send()
        .await;
    assert!(r.is_err(), "plaintext HTTP got an answer: {r:?}");

    // The same listeners over TLS, verified against the cluster CA, answer.
    let mut public = VecShardClient::new(tls_channel(router.grpc_addr(), client_tls(&w, None)));
    public
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&w.ca).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let r = https
        .get(format!(
            "https://localhost:{}/healthz",
            router.http_addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_or_missing_client_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = pki(&dir.path().join("pki"));
    let other = pki(&dir.path().join("other-ca"));
    let router = vecshard_router::start(tls_config(dir.path(), &w))
        .await
        .unwrap();
    let n1 = Identity::Node("n1".into());

    // A node certificate from another CA (the client trusts the right CA).
    let mut forged = RouterInternalClient::new(tls_channel(
        router.internal_addr(),
        client_tls(&w, Some((&other, &n1))),
    ));
    let e = forged
        .register_node(register("n1", "127.0.0.1:9"))
        .await
        .unwrap_err();
    assert_refused(&e);
    // No client certificate at all.
    let mut anonymous =
        RouterInternalClient::new(tls_channel(router.internal_addr(), client_tls(&w, None)));
    let e = anonymous
        .heartbeat(beat("n1", "127.0.0.1:9"))
        .await
        .unwrap_err();
    assert_refused(&e);

    // The genuine node is accepted; the refused calls registered nothing.
    let genuine = RouterInternalClient::new(tls_channel(
        router.internal_addr(),
        client_tls(&w, Some((&w, &n1))),
    ));
    register_eventually(&genuine, "n1", "127.0.0.1:1111").await;
    let mut public = VecShardClient::new(tls_channel(router.grpc_addr(), client_tls(&w, None)));
    assert_eq!(
        node_address(&mut public, "n1").await.as_deref(),
        Some("127.0.0.1:1111")
    );
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_heartbeat_or_register_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let w = pki(&dir.path().join("pki"));
    let router = vecshard_router::start(tls_config(dir.path(), &w))
        .await
        .unwrap();
    let as_node = |id: &str| {
        RouterInternalClient::new(tls_channel(
            router.internal_addr(),
            client_tls(&w, Some((&w, &Identity::Node(id.into())))),
        ))
    };
    let (n1, mut n2) = (as_node("n1"), as_node("n2"));
    register_eventually(&n1, "n1", "127.0.0.1:1111").await;
    let mut public = VecShardClient::new(tls_channel(router.grpc_addr(), client_tls(&w, None)));

    // n2 speaks for n1: refused, naming the caller.
    let e = n2.heartbeat(beat("n1", "10.6.6.6:1")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("node n2"), "{}", e.message());
    let e = n2
        .register_node(register("n1", "10.6.6.6:1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // n1's own heartbeats pass. The forged address never shows up: watch the shard map
    // for ten control-loop rounds (heartbeats with a new address become re-registrations
    // there).
    let mut n1c = n1.clone();
    n1c.heartbeat(beat("n1", "127.0.0.1:1111")).await.unwrap();
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let a = node_address(&mut public, "n1").await;
        assert_eq!(a.as_deref(), Some("127.0.0.1:1111"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A move by n1 itself does happen (the check above could not miss it).
    n1c.heartbeat(beat("n1", "127.0.0.1:2222")).await.unwrap();
    eventually("n1's own move", PATIENCE, || {
        let mut p = public.clone();
        async move {
            (node_address(&mut p, "n1").await.as_deref() == Some("127.0.0.1:2222")).then_some(())
        }
    })
    .await;
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_internal_calls_need_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.cluster_secret = "a-cluster-secret-for-tests".into();
    let router = vecshard_router::start(cfg).await.unwrap();
    let mut c = RouterInternalClient::new(plain_channel(router.internal_addr()));
    let e = c
        .register_node(register("n1", "127.0.0.1:1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let mut wrong = tonic::Request::new(register("n1", "127.0.0.1:1"));
    wrong.metadata_mut().insert(
        vecshard_security::SECRET_HEADER,
        "a-cluster-secret-for-tesTS".parse().unwrap(),
    );
    let e = c.register_node(wrong).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let vote = pi::RaftRequest {
        payload: b"{}".to_vec(),
    };
    let e = c.vote(vote).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    eventually("a registration with the secret", PATIENCE, || {
        let mut c = c.clone();
        async move {
            let mut r = tonic::Request::new(register("n1", "127.0.0.1:1"));
            r.metadata_mut().insert(
                vecshard_security::SECRET_HEADER,
                "a-cluster-secret-for-tests".parse().unwrap(),
            );
            c.register_node(r).await.ok().map(|_| ())
        }
    })
    .await;
    router.shutdown().await;
}

/// Keys for the role tests: `reader-key` (read), `writer-key` (write), `admin-key` (admin).
fn with_role_keys(cfg: &mut RouterConfig) {
    use vecshard_router::api::keys::{KeySpec, Role};
    let spec = |key: &str, role| KeySpec {
        key: key.into(),
        key_env: String::new(),
        key_file: String::new(),
        role,
        collections: vec![],
    };
    cfg.keys = vec![
        spec("reader-key", Role::Read),
        spec("writer-key", Role::Write),
        KeySpec {
            collections: vec!["a".into()],
            ..spec("a-reader-key", Role::Read)
        },
    ];
    cfg.api_keys = vec!["admin-key".into()];
}

fn with_key<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_roles_are_enforced_on_rest_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    with_role_keys(&mut cfg);
    cfg.metrics_need_key = true;
    let router = vecshard_router::start(cfg).await.unwrap();
    let base = format!("http://{}", router.http_addr());
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, key: Option<&str>, body: serde_json::Value| {
        let mut r = http.request(method, format!("{base}{path}")).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let upsert = serde_json::json!({"points": [{"id": 1, "vector": [0.0, 1.0]}]});
    let post = reqwest::Method::POST;
    let (s, body) = send(
        post.clone(),
        "/v1/collections/c/points",
        Some("reader-key"),
        upsert.clone(),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("needs the write role") && body.contains("PERMISSION_DENIED"),
        "{body}"
    );
    let (s, body) = send(
        reqwest::Method::DELETE,
        "/v1/collections/c",
        Some("writer-key"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("needs the admin role"), "{body}");
    let (s, body) = send(
        post.clone(),
        "/v1/collections/c/points",
        None,
        upsert.clone(),
    )
    .await;
    assert_eq!(s, 401, "{body}");
    let (s, body) = send(
        post.clone(),
        "/v1/collections/c/points",
        Some("guessed-key"),
        upsert.clone(),
    )
    .await;
    assert_eq!(s, 401, "{body}");
    // Past the role check the request is handled (here: the collection does not exist).
    let (s, body) = send(
        post.clone(),
        "/v1/collections/c/points",
        Some("writer-key"),
        upsert,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (s, _) = send(
        reqwest::Method::GET,
        "/v1/collections",
        Some("reader-key"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        reqwest::Method::GET,
        "/metrics",
        None,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = send(
        reqwest::Method::GET,
        "/metrics",
        Some("reader-key"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        reqwest::Method::GET,
        "/healthz",
        None,
        serde_json::json!({}),
    )
    .await;
    assert_eq!(s, 200);

    let mut c = VecShardClient::new(plain_channel(router.grpc_addr()));
    let req = pb::UpsertRequest {
        collection: "c".into(),
        ..Default::default()
    };
    let e = c
        .upsert(with_key(req.clone(), "reader-key"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("write role"), "{}", e.message());
    let e = c
        .drop_collection(with_key(
            pb::DropCollectionRequest { name: "c".into() },
            "writer-key",
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = c.upsert(with_key(req, "nobody")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    c.list_collections(with_key(pb::ListCollectionsRequest {}, "reader-key"))
        .await
        .unwrap();
    // Search is served by its own fast path (api/grpc_fast.rs): the same key checks.
    let search = pb::SearchRequest {
        collection: "c".into(),
        vector: vec![0.0, 1.0],
        k: 1,
        ..Default::default()
    };
    let e = c.search(search.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c
        .search(with_key(search.clone(), "nobody"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = c
        .search(with_key(search.clone(), "a-reader-key"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("collection \"c\""), "{}", e.message());
    // Past the key checks the search is handled (here: the collection does not exist).
    for key in ["reader-key", "writer-key", "admin-key"] {
        let e = c.search(with_key(search.clone(), key)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{key}: {e:?}");
        assert!(e.message().contains("does not exist"), "{}", e.message());
    }
    router.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_cap_are_refused_at_once() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    cfg.max_concurrent_requests = 1;
    let router = vecshard_router::start(cfg).await.unwrap();
    // One request holds the only place: its body never finishes arriving.
    let mut slow = tokio::net::TcpStream::connect(router.http_addr())
        .await
        .unwrap();
    let head = "POST /v1/collections/c/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"vector\"";
    slow.write_all(head.as_bytes()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/collections", router.http_addr());
    let r = eventually("a refusal", PATIENCE, || {
        let r = http.get(&url).send();
        async move {
            let r = r.await.ok()?;
            (r.status().as_u16() == 429).then_some(r)
        }
    })
    .await;
    assert_eq!(r.headers()["retry-after"], "1");
    let body = r.text().await.unwrap();
    assert!(body.contains("max_concurrent_requests"), "{body}");
    let mut c = VecShardClient::new(plain_channel(router.grpc_addr()));
    let e = c
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // Health stays outside the cap; once the slow request is gone, requests pass again.
    let health = format!("http://{}/healthz", router.http_addr());
    assert_eq!(
        http.get(&health).send().await.unwrap().status().as_u16(),
        200
    );
    drop(slow);
    eventually("a place again", PATIENCE, || {
        let r = http.get(&url).send();
        async move { (r.await.ok()?.status().as_u16() == 200).then_some(()) }
    })
    .await;
    router.shutdown().await;
}

/// The gRPC backup operations need the admin role (as REST `/v1/backups…` does), and
/// every location must lie under `router.backup_locations`: refused with the location
/// and the setting named, on gRPC and REST alike, before anything is created there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_need_admin_and_an_allowed_location() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path(), 1);
    with_role_keys(&mut cfg);
    let allowed = dir.path().join("backups");
    cfg.backup_locations = vec![allowed.to_string_lossy().into_owned()];
    let router = vecshard_router::start(cfg).await.unwrap();
    let mut c = common::client(&router).await;
    let inside = allowed.join("b1").to_string_lossy().into_owned();
    let outside = dir.path().join("elsewhere/b1");
    let outside_s = outside.to_string_lossy().into_owned();

    /// Every backup operation with `key` on `location`: (operation, its status).
    async fn all_ops(
        c: &mut vecshard_test_support::api::Client,
        key: Option<&str>,
        location: &str,
    ) -> Vec<(&'static str, Result<(), tonic::Status>)> {
        fn req<T>(m: T, key: Option<&str>) -> tonic::Request<T> {
            match key {
                Some(k) => with_key(m, k),
                None => tonic::Request::new(m),
            }
        }
        let l = location.to_string();
        vec![
            (
                "CreateBackup",
                c.create_backup(req(
                    pb::CreateBackupRequest {
                        collection: "c".into(),
                        to: l.clone(),
                        ..Default::default()
                    },
                    key,
                ))
                .await
                .map(drop),
            ),
            (
                "GetBackupJob",
                c.get_backup_job(req(
                    pb::GetBackupJobRequest {
                        id: "backup-1".into(),
                    },
                    key,
                ))
                .await
                .map(drop),
            ),
            (
                "ListBackups",
                c.list_backups(req(
                    pb::ListBackupsRequest {
                        location: l.clone(),
                    },
                    key,
                ))
                .await
                .map(drop),
            ),
            (
                "DescribeBackup",
                c.describe_backup(req(
                    pb::DescribeBackupRequest {
                        location: l.clone(),
                    },
                    key,
                ))
                .await
                .map(drop),
            ),
            (
                "RestoreBackup",
                c.restore_backup(req(
                    pb::RestoreBackupRequest {
                        location: l.clone(),
                        as_collection: "r".into(),
                        ..Default::default()
                    },
                    key,
                ))
                .await
                .map(drop),
            ),
            (
                "DeleteBackup",
                c.delete_backup(req(pb::DeleteBackupRequest { location: l }, key))
                    .await
                    .map(drop),
            ),
        ]
    }

    for (key, code, needle) in [
        (None, Code::Unauthenticated, ""),
        (Some("guessed-key"), Code::Unauthenticated, ""),
        (
            Some("reader-key"),
            Code::PermissionDenied,
            "needs the admin role",
        ),
        (
            Some("writer-key"),
            Code::PermissionDenied,
            "needs the admin role",
        ),
    ] {
        for (op, r) in all_ops(&mut c, key, &inside).await {
            let e = r.expect_err(op);
            assert_eq!(e.code(), code, "{op} with {key:?}: {e:?}");
            assert!(e.message().contains(needle), "{op}: {e:?}");
        }
    }
    // An admin outside the allow-list: every operation with a location names it and the
    // setting; nothing is created there.
    for (op, r) in all_ops(&mut c, Some("admin-key"), &outside_s).await {
        if op == "GetBackupJob" {
            assert_eq!(r.unwrap_err().code(), Code::NotFound);
            continue;
        }
        let e = r.expect_err(op);
        assert_eq!(e.code(), Code::InvalidArgument, "{op}: {e:?}");
        assert!(
            e.message().contains(&outside_s) && e.message().contains("router.backup_locations"),
            "{op}: {e:?}"
        );
    }
    assert!(!outside.exists(), "{} was created", outside.display());
    // Inside it, the request goes on to the ordinary answers.
    let admin = |m| with_key(m, "admin-key");
    let e = c
        .create_backup(admin(pb::CreateBackupRequest {
            collection: "nope".into(),
            to: inside.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("nope"), "{e:?}");
    let listed = c
        .list_backups(with_key(
            pb::ListBackupsRequest {
                location: allowed.to_string_lossy().into_owned(),
            },
            "admin-key",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.backups.is_empty(), "{listed:?}");
    // REST answers the same error with the same code.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/backups", router.http_addr()))
        .bearer_auth("admin-key")
        .json(&serde_json::json!({"collection": "c", "to": outside_s}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("INVALID_ARGUMENT") && body.contains("router.backup_locations"),
        "{body}"
    );
    router.shutdown().await;
}
