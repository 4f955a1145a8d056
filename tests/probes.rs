//! The probes Kubernetes (deploy/k8s) and compose use: a router's `/readyz` answers 200 only
//! while it knows a Raft leader, and goes 503 when the leader is lost (a majority of routers
//! gone); `/healthz` answers 200 throughout.

mod cluster_support;

use std::time::Duration;

use cluster_support::Cluster;

async fn code(url: &str) -> Option<u16> {
    let r = reqwest::get(url).await.ok()?;
    Some(r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_readyz_follows_the_raft_leader() {
    let mut c = Cluster::start(3, 1);
    c.wait_ready(1).await;
    let survivor = c.leader().await;
    let http = c.routers[survivor].http.clone();
    let (ready, health) = (
        format!("http://{http}/readyz"),
        format!("http://{http}/healthz"),
    );
    c.eventually("/readyz 200", Duration::from_secs(30), || async {
        (code(&ready).await? == 200).then_some(())
    })
    .await;
    assert_eq!(code(&health).await, Some(200));

    // Without a majority the survivor steps down and knows no leader: not ready, still live.
    for i in (0..3).filter(|i| *i != survivor) {
        c.routers[i].proc.as_mut().unwrap().kill9();
        c.routers[i].proc = None;
    }
    c.eventually("/readyz 503", Duration::from_secs(60), || async {
        (code(&ready).await? == 503).then_some(())
    })
    .await;
    assert_eq!(code(&health).await, Some(200));
}
