//! `vecshard status --router ADDR`: routers, nodes and every shard's placement.

use anyhow::Result;
use vecshard_proto::v1 as pb;

use super::client::{connect, status};
use super::collection::shard_state;
use super::table::Table;

pub async fn run(router: &str) -> Result<()> {
    let s = connect(router)
        .await?
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .map_err(status)?
        .into_inner();
    let mut t = Table::new(&["ROUTER", "ADDRESS", "ROLE"]);
    for r in &s.routers {
        let role = if r.leader { "leader" } else { "follower" };
        t.row(vec![r.id.to_string(), r.address.clone(), role.into()]);
    }
    println!("{t}");
    let mut t = Table::new(&["NODE", "ADDRESS", "HEALTH", "LAST HEARTBEAT", "SHARDS"]);
    for n in &s.nodes {
        let health = pb::NodeState::try_from(n.state)
            .map(|x| {
                x.as_str_name()
                    .trim_start_matches("NODE_STATE_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let hb = n
            .last_heartbeat_ms_ago
            .map(|ms| format!("{:.1}s ago", ms as f64 / 1000.0))
            .unwrap_or_else(|| "never".into());
        t.row(vec![
            n.id.clone(),
            n.address.clone(),
            health,
            hb,
            n.shards.len().to_string(),
        ]);
    }
    println!("{t}");
    let mut t = Table::new(&["COLLECTION", "SHARD", "OWNER", "EPOCH", "READERS", "STATE"]);
    for p in &s.shards {
        let readers = if p.readers.is_empty() {
            "-".into()
        } else {
            p.readers.join(",")
        };
        t.row(vec![
            p.collection.clone(),
            p.number.to_string(),
            if p.owner.is_empty() {
                "-".into()
            } else {
                p.owner.clone()
            },
            p.epoch.to_string(),
            readers,
            shard_state(p.state),
        ]);
    }
    print!("{t}");
    for p in s.shards.iter().filter(|p| !p.error.is_empty()) {
        println!("{}/{}: {}", p.collection, p.number, p.error);
    }
    Ok(())
}
