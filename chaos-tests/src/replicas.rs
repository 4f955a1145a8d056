//! Divergence of a replicated collection's copies (note 014): at a quiet point, after a
//! stable scan through the routers, every replica's own copy is read straight from its
//! node (`Node.Scan` at the map's epoch, as a router: mutual TLS with a router's
//! certificate) and compared with that scan, values and all.
//!
//! A copy that differs is given time to catch up. One that still differs is a violation
//! when the shard map counts it in sync and its primary reports it at the primary's log
//! end (lag 0): it then claims to hold the primary's log and holds something else. A copy
//! the primary reports behind (a follower the primary's tail no longer reaches; checkpoint
//! catch-up is not implemented) is logged, not counted: it is not divergent, only late,
//! and no read goes to it while it is out of the in-sync set or behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::internal::v1::node_client::NodeClient;
use vecshard_proto::v1 as pb;

use crate::compose::{NODES, ROUTERS};
use crate::model::{Key, Seen};
use crate::routers::blocking;
use crate::workload::Shared;

/// How long a copy that differs from the routers' scan may take to catch up (a follower at
/// the log end matches within a heartbeat; kept short so that each quiet point with a
/// follower left behind costs the CI run little).
const CATCH_UP: Duration = Duration::from_secs(10);

/// What a copy's comparison with the routers' scan means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It holds exactly what the routers serve.
    Same,
    /// It differs but its primary reports it behind (or does not report it): late, not
    /// divergent.
    Behind(String),
    /// It differs while counted in sync at the primary's log end.
    Diverged(String),
}

/// The differences of `copy` from `served` (key → write id), at most a few named.
pub fn differences(served: &BTreeMap<Key, u64>, copy: &BTreeMap<Key, u64>) -> Option<String> {
    let mut out = Vec::new();
    for (k, w) in served {
        match copy.get(k) {
            None => out.push(format!("{k} missing (served: write {w})")),
            Some(c) if c != w => out.push(format!("{k} holds write {c} (served: write {w})")),
            Some(_) => {}
        }
    }
    for (k, c) in copy {
        if !served.contains_key(k) {
            out.push(format!(
                "{k} holds write {c}, which the routers do not serve"
            ));
        }
    }
    if out.is_empty() {
        return None;
    }
    let n = out.len();
    out.truncate(5);
    Some(format!("{n} keys differ: {}", out.join("; ")))
}

/// The verdict on a copy that showed `diff` after the catch-up time.
pub fn verdict(diff: Option<String>, in_sync: bool, lag_seqs: Option<u64>) -> Verdict {
    match diff {
        None => Verdict::Same,
        Some(d) if in_sync && lag_seqs == Some(0) => {
            Verdict::Diverged(format!("in sync at its primary's log end, yet {d}"))
        }
        Some(d) => Verdict::Behind(format!(
            "{d} (in sync: {in_sync}, lag: {})",
            lag_seqs.map_or("not reported".into(), |l| format!("{l} sequence numbers"))
        )),
    }
}

/// A client of a node's internal API, authenticated as router-1.
fn node_client(shared: &Shared, node: &str) -> Result<NodeClient<Channel>> {
    let ip = blocking(|| shared.routers.compose().ip(node))?;
    let certs = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/certs");
    let read = |f: &str| {
        let path = format!("{certs}/{f}");
        std::fs::read(&path).with_context(|| format!("read {path}"))
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")?))
        .identity(Identity::from_pem(
            read(&format!("{}.pem", ROUTERS[0]))?,
            read(&format!("{}.key", ROUTERS[0]))?,
        ))
        .domain_name(node);
    let ch = Endpoint::from_shared(format!("https://{ip}:7100"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    Ok(NodeClient::new(ch).max_decoding_message_size(64 << 20))
}

/// Every point of one shard's copy on `node` at `epoch` (key → write id); damaged points
/// are an error.
async fn read_copy(
    shared: &Shared,
    node: &str,
    collection: &str,
    shard: u32,
    epoch: u64,
) -> Result<BTreeMap<Key, u64>> {
    let mut client = node_client(shared, node)?;
    let mut out = BTreeMap::new();
    let mut start_after = None;
    loop {
        let page = client
            .scan(pi::ScanRequest {
                target: Some(pi::ShardTarget {
                    collection: collection.into(),
                    shard,
                    epoch,
                }),
                start_after: start_after.take(),
                limit: 500,
            })
            .await
            .with_context(|| format!("scan {collection}/{shard} on {node}"))?
            .into_inner();
        for p in &page.points {
            let seen = Seen::of_point(p).map_err(anyhow::Error::msg)?;
            if let Some(d) = seen.damage {
                bail!(
                    "{node}'s copy: {} holds write {} damaged: {d}",
                    seen.key,
                    seen.w
                );
            }
            out.insert(seen.key, seen.w);
        }
        match page.next_start_after {
            Some(k) => start_after = Some(k),
            None => return Ok(out),
        }
    }
}

/// The replicas of `collection`'s shards as some router's map shows them, with the lag
/// their primary reports: `(shard, epoch, [(node, in_sync, lag_seqs)])`.
async fn replica_sets(
    shared: &Shared,
    collection: &str,
) -> Result<Vec<(u32, u64, Vec<pb::ReplicaInfo>)>> {
    for r in ROUTERS {
        if let Ok(s) = shared.routers.status(r).await {
            return Ok(s
                .shards
                .into_iter()
                .filter(|p| p.collection == collection)
                .map(|p| (p.number, p.epoch, p.replicas))
                .collect());
        }
    }
    bail!("no router answered its status")
}

/// Compare every copy of the replicated collection `coll` with `served`, the stable scan
/// through the routers (one shard per collection: the harness creates it so). Returns
/// the violations; copies found behind are logged.
pub async fn check(
    shared: &Shared,
    label: &str,
    coll: usize,
    served: &BTreeMap<Key, u64>,
) -> Vec<String> {
    let name = shared.collections[coll].name.clone();
    let mut out = Vec::new();
    let end = Instant::now() + CATCH_UP;
    let mut pending: Vec<(String, Option<String>)> =
        NODES.iter().map(|n| (n.to_string(), None)).collect();
    let mut last_sets = Vec::new();
    while !pending.is_empty() {
        let sets = match replica_sets(shared, &name).await {
            Ok(s) => s,
            Err(e) => {
                out.push(format!("{label}: replicas of {name}: {e:#}"));
                return out;
            }
        };
        let mut still = Vec::new();
        for (node, _) in pending {
            let mut diff = None;
            for (shard, epoch, replicas) in &sets {
                if !replicas.iter().any(|r| r.node == node) {
                    continue;
                }
                diff = match read_copy(shared, &node, &name, *shard, *epoch).await {
                    Ok(copy) => differences(served, &copy),
                    Err(e) => Some(format!("{e:#}")),
                };
                if diff.is_some() {
                    break;
                }
            }
            if diff.is_some() {
                still.push((node, diff));
            }
        }
        last_sets = sets;
        pending = still;
        if pending.is_empty() || Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (node, diff) in pending {
        let info = last_sets
            .iter()
            .flat_map(|(_, _, rs)| rs.iter())
            .find(|r| r.node == node);
        let (in_sync, lag) = info.map_or((false, None), |r| (r.in_sync, r.lag_seqs));
        match verdict(diff, in_sync, lag) {
            Verdict::Same => {}
            Verdict::Behind(why) => shared.history.log(&format!(
                "{label}: {node}'s copy of {name} is behind: {why}"
            )),
            Verdict::Diverged(why) => {
                out.push(format!("{label}: {node}'s copy of {name} diverged: {why}"))
            }
        }
    }
    shared.history.log(&format!(
        "{label}: the copies of {name} compared with the routers' scan, {} diverged",
        out.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(u64, u64)]) -> BTreeMap<Key, u64> {
        pairs.iter().map(|(k, w)| (Key::Int(*k), *w)).collect()
    }

    #[test]
    fn differences_name_missing_changed_and_extra_keys() {
        let served = map(&[(1, 10), (2, 20), (3, 30)]);
        assert_eq!(differences(&served, &served.clone()), None);
        let d = differences(&served, &map(&[(1, 10), (2, 21), (4, 40)])).unwrap();
        assert!(d.starts_with("3 keys differ"), "{d}");
        assert!(d.contains("2 holds write 21 (served: write 20)"), "{d}");
        assert!(d.contains("3 missing (served: write 30)"), "{d}");
        assert!(
            d.contains("4 holds write 40, which the routers do not serve"),
            "{d}"
        );
    }

    #[test]
    fn only_a_copy_in_sync_at_the_log_end_that_differs_has_diverged() {
        assert_eq!(verdict(None, true, Some(0)), Verdict::Same);
        assert!(matches!(
            verdict(Some("x".into()), true, Some(0)),
            Verdict::Diverged(d) if d.contains("x")
        ));
        assert!(matches!(
            verdict(Some("x".into()), true, Some(7)),
            Verdict::Behind(d) if d.contains("7 sequence numbers")
        ));
        assert!(matches!(
            verdict(Some("x".into()), false, Some(0)),
            Verdict::Behind(_)
        ));
        assert!(matches!(
            verdict(Some("x".into()), true, None),
            Verdict::Behind(d) if d.contains("not reported")
        ));
    }
}
