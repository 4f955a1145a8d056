//! The dockerised cluster (deploy/docker-compose.yml: 3 routers, 3 nodes, S3) under faults:
//! a node killed with SIGKILL, a node cut off the network, a node frozen (alive but silent),
//! the Raft leader killed, then everything restarted. After each fault the shards serve
//! again elsewhere and every acknowledged write is still there; at the end the cluster holds
//! exactly the acknowledged writes.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use vecshard_chaos_tests::{Cluster, Compose};
use vecshard_proto::v1 as pb;

const COLLECTION: &str = "chaos";
const ROUTERS: [&str; 3] = ["router-1", "router-2", "router-3"];

async fn owner_of_a_shard(c: &Cluster<'_>, among: &[&str]) -> Result<String> {
    let s = c
        .status(among)
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    let owner = s
        .shards
        .iter()
        .find(|p| p.collection == COLLECTION)
        .map(|p| p.owner.clone());
    owner.ok_or_else(|| anyhow::anyhow!("no shard placed"))
}

async fn wait_alive(c: &Cluster<'_>, among: &[&str], n: usize) -> Result<()> {
    c.eventually(
        &format!("{n} alive nodes and a leader"),
        Duration::from_secs(180),
        || async {
            let s = c.status(among).await?;
            let alive = s
                .nodes
                .iter()
                .filter(|n| n.state == pb::NodeState::Alive as i32)
                .count();
            (alive >= n && s.routers.iter().any(|r| r.leader)).then_some(())
        },
    )
    .await
}

async fn check_holds(
    c: &Cluster<'_>,
    among: &[&str],
    acked: &BTreeSet<u64>,
    what: &str,
) -> Result<()> {
    let keys = c.scan_all(among, COLLECTION).await?;
    let missing: Vec<_> = acked.difference(&keys).take(10).collect();
    ensure!(
        missing.is_empty(),
        "{what}: acknowledged keys missing: {missing:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_crashes_partitions_pauses_and_restarts() -> Result<()> {
    let compose = Compose::up("main")?;
    let result = scenario(&compose).await;
    if result.is_err() {
        eprintln!("{}", compose.logs());
    }
    result
}

async fn scenario(compose: &Compose) -> Result<()> {
    let c = Cluster::new(compose);
    wait_alive(&c, &ROUTERS, 3).await?;
    let storage = format!("s3://vecshard/chaos-{}", std::process::id());
    c.eventually("the collection created", Duration::from_secs(60), || {
        let storage = storage.clone();
        let c = &c;
        async move {
            let mut client = c.any(&ROUTERS).await.ok()?;
            let req = pb::CreateCollectionRequest {
                name: COLLECTION.into(),
                dimension: vecshard_chaos_tests::data_dim() as u32,
                metric: pb::Metric::L2 as i32,
                shard_count: 3,
                storage,
                index: None,
            };
            match client.create_collection(req).await {
                Ok(_) => Some(()),
                Err(s) if s.code() == tonic::Code::AlreadyExists => Some(()),
                Err(_) => None,
            }
        }
    })
    .await?;
    c.wait_serving(&ROUTERS, COLLECTION, &[]).await?;
    let mut acked = c.upsert(&ROUTERS, COLLECTION, 0..2_000).await?;
    check_holds(&c, &ROUTERS, &acked, "after import").await?;

    // 1. SIGKILL a node that owns a shard: its shards move, nothing acknowledged is lost.
    let victim = owner_of_a_shard(&c, &ROUTERS).await?;
    compose.kill(&victim)?;
    c.wait_serving(&ROUTERS, COLLECTION, std::slice::from_ref(&victim))
        .await?;
    check_holds(&c, &ROUTERS, &acked, "after killing a node").await?;
    acked.extend(c.upsert(&ROUTERS, COLLECTION, 2_000..2_500).await?);
    compose.start(&victim)?;
    wait_alive(&c, &ROUTERS, 3).await?;

    // 2. Partition a node: it keeps running but cannot be reached.
    let victim = owner_of_a_shard(&c, &ROUTERS).await?;
    compose.disconnect(&victim)?;
    c.wait_serving(&ROUTERS, COLLECTION, std::slice::from_ref(&victim))
        .await?;
    acked.extend(c.upsert(&ROUTERS, COLLECTION, 2_500..3_000).await?);
    compose.connect(&victim)?;
    wait_alive(&c, &ROUTERS, 3).await?;
    check_holds(&c, &ROUTERS, &acked, "after a partition healed").await?;

    // 3. Freeze a node (alive, silent): after its shards moved, thawing it must not bring
    //    back anything stale; storage fencing refuses its writes.
    let victim = owner_of_a_shard(&c, &ROUTERS).await?;
    compose.pause(&victim)?;
    c.wait_serving(&ROUTERS, COLLECTION, std::slice::from_ref(&victim))
        .await?;
    acked.extend(c.upsert(&ROUTERS, COLLECTION, 3_000..3_500).await?);
    compose.unpause(&victim)?;
    wait_alive(&c, &ROUTERS, 3).await?;
    check_holds(&c, &ROUTERS, &acked, "after a frozen node thawed").await?;

    // 4. Kill the Raft leader: another router leads and the shard map is intact.
    let status = c
        .status(&ROUTERS)
        .await
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    let leader = status
        .routers
        .iter()
        .find(|r| r.leader)
        .map(|r| r.id)
        .ok_or_else(|| anyhow::anyhow!("no leader"))?;
    let leader_svc = format!("router-{leader}");
    compose.kill(&leader_svc)?;
    let others: Vec<&str> = ROUTERS
        .iter()
        .copied()
        .filter(|r| *r != leader_svc)
        .collect();
    let placements = c
        .eventually("a new leader", Duration::from_secs(60), || async {
            let s = c.status(&others).await?;
            s.routers
                .iter()
                .any(|r| r.leader && r.id != leader)
                .then_some(s.shards)
        })
        .await?;
    ensure!(
        placements
            .iter()
            .filter(|p| p.collection == COLLECTION)
            .count()
            == 3,
        "shard map lost shards"
    );
    acked.extend(c.upsert(&others, COLLECTION, 3_500..4_000).await?);
    check_holds(&c, &others, &acked, "after the leader died").await?;
    compose.start(&leader_svc)?;

    // 5. Restart everything: exactly the acknowledged writes are there.
    compose.restart_all()?;
    wait_alive(&c, &ROUTERS, 3).await?;
    c.wait_serving(&ROUTERS, COLLECTION, &[]).await?;
    let keys = c.scan_all(&ROUTERS, COLLECTION).await?;
    ensure!(
        keys == acked,
        "after a full restart the cluster holds {} keys, {} were acknowledged",
        keys.len(),
        acked.len()
    );
    Ok(())
}
