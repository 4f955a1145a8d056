//! Quiet points: the clients paused and the faults healed, the cluster must settle (a
//! leader, every node alive, every shard serving); then everything is read back and the
//! shard maps are checked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::Rng;
use rand::rngs::SmallRng;
use vecshard_proto::v1 as pb;

use crate::checker;
use crate::compose::{NODES, ROUTERS};
use crate::history::{Call, History, MapSeen, Op, Outcome, Placement};
use crate::model::Key;
use crate::nemesis;
use crate::report::Report;
use crate::workload::{self, Collection, Shared};

fn state_name(s: i32) -> String {
    pb::ShardState::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| format!("state {s}"))
}

pub(crate) fn map_seen(history: &History, router: &str, s: &pb::ClusterStatusResponse) -> MapSeen {
    MapSeen {
        at_us: history.now(),
        router: router.to_string(),
        shards: s
            .shards
            .iter()
            .map(|p| Placement {
                collection: p.collection.clone(),
                number: p.number,
                owner: p.owner.clone(),
                epoch: p.epoch,
                state: state_name(p.state),
            })
            .collect(),
    }
}

/// Whether `s` shows a leader, every node alive and every shard of `colls` serving on a
/// live node; else what is missing.
fn settled(s: &pb::ClusterStatusResponse, colls: &[Collection]) -> Result<(), String> {
    if !s.routers.iter().any(|r| r.leader) {
        return Err("no leader".into());
    }
    let alive: BTreeSet<&str> = s
        .nodes
        .iter()
        .filter(|n| n.state == pb::NodeState::Alive as i32)
        .map(|n| n.id.as_str())
        .collect();
    if alive.len() < NODES.len() {
        return Err(format!("nodes alive: {alive:?}"));
    }
    for c in colls {
        for n in 0..c.shards {
            let p = s
                .shards
                .iter()
                .find(|p| p.collection == c.name && p.number == n);
            match p {
                Some(p)
                    if p.state == pb::ShardState::Serving as i32
                        && alive.contains(p.owner.as_str()) => {}
                Some(p) => {
                    return Err(format!(
                        "shard {n} of {}: {} on {:?} {}",
                        c.name,
                        state_name(p.state),
                        p.owner,
                        p.error
                    ));
                }
                None => return Err(format!("shard {n} of {} is not in the map", c.name)),
            }
        }
    }
    Ok(())
}

/// How long a healed cluster may take to serve every shard again.
const SETTLE: Duration = Duration::from_secs(150);

/// Wait until some router shows a settled cluster.
pub(crate) async fn settle(shared: &Shared, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    let mut last = String::from("no router answered");
    loop {
        for r in ROUTERS {
            match shared.routers.status(r).await {
                Ok(s) => match settled(&s, &shared.collections) {
                    Ok(()) => return Ok(()),
                    Err(e) => last = format!("{r}: {e}"),
                },
                Err(e) => last = format!("{e:#}"),
            }
        }
        if Instant::now() > end {
            bail!("not settled after {timeout:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn points_of(scan: &Op) -> Option<BTreeMap<Key, u64>> {
    match (&scan.outcome, &scan.call) {
        (Outcome::Ok, Call::Scan { found, .. }) => {
            Some(found.iter().map(|s| (s.key.clone(), s.w)).collect())
        }
        _ => None,
    }
}

/// A quiet point: with the clients paused and the faults healed, the cluster settles; a
/// scan of each collection, exact searches, and a second scan that must equal the first
/// (else the state was still moving: again); the searches are checked against the scan;
/// every router's map is checked. Returns the violations and the exact searches checked;
/// `None` when the cluster did not recover (a finding of its own, recorded in `report`).
pub(crate) async fn quiet_point(
    shared: &Shared,
    label: &str,
    rng: &mut SmallRng,
    report: &mut Report,
) -> Option<()> {
    report.quiet_points += 1;
    let mut v = Vec::new();
    shared
        .history
        .log(&format!("{label}: clients paused, faults healed; settling"));
    if let Err(e) = settle(shared, SETTLE).await {
        let e = format!("{label}: the cluster did not recover after healing: {e:#}");
        shared.history.log(&e);
        report.violations.push(e);
        return None;
    }
    let mut checked = 0;
    for coll in 0..shared.collections.len() {
        let mut stable = false;
        for attempt in 0..6 {
            let router = ROUTERS[(attempt + coll) % ROUTERS.len()];
            let first = workload::scan(shared, router, coll).await;
            let mut searches = Vec::new();
            for _ in 0..6 {
                let filter = rng
                    .random_bool(0.3)
                    .then(|| rng.random_range(0..shared.clients));
                let query = rng.random::<u32>() as u64 | 1 << 62;
                let invoke = shared.history.now();
                let (o, call, router) =
                    workload::search(shared, router, coll, query, 10, true, filter).await;
                searches.push(record(shared, router, invoke, o, call));
            }
            let second = workload::scan(shared, router, coll).await;
            match (points_of(&first), points_of(&second)) {
                (Some(a), Some(b)) if a == b => {
                    if shared.collections[coll].replicated() {
                        v.extend(crate::replicas::check(shared, label, coll, &a).await);
                    }
                    for s in searches.iter().filter(|s| s.outcome.is_ok()) {
                        v.extend(
                            checker::check_exact(s, &a)
                                .into_iter()
                                .map(|e| format!("{label}: {e}")),
                        );
                        checked += 1;
                    }
                    stable = true;
                    break;
                }
                _ => {
                    // Failed, or still changing (a write abandoned by its client landing
                    // late): settle again.
                    let _ = settle(shared, Duration::from_secs(60)).await;
                }
            }
        }
        if !stable {
            v.push(format!(
                "{label}: no two scans of {} in a row agreed (or succeeded) after healing",
                shared.collections[coll].name
            ));
        }
    }
    let colls: Vec<(String, u32)> = shared
        .collections
        .iter()
        .map(|c| (c.name.clone(), c.shards))
        .collect();
    for r in ROUTERS {
        // Followers apply the map a moment after the leader: give each a little time.
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let (problems, seen) = match shared.routers.status(r).await {
                Ok(s) => {
                    let seen = map_seen(&shared.history, r, &s);
                    let history = shared.history.maps();
                    (
                        checker::check_map_settled(&history, &seen, &colls),
                        Some(seen),
                    )
                }
                Err(e) => (
                    vec![format!("{r} answers no status after healing: {e:#}")],
                    None,
                ),
            };
            if problems.is_empty() || Instant::now() > end {
                if let Some(seen) = seen {
                    shared.history.push_map(seen);
                }
                v.extend(problems.into_iter().map(|e| format!("{label}: {e}")));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    shared.history.log(&format!(
        "{label}: {checked} exact searches checked, {} problems",
        v.len()
    ));
    report.violations.extend(v);
    report.exact_searches_checked += checked;
    Some(())
}

fn record(shared: &Shared, router: &str, invoke: u64, outcome: Outcome, call: Call) -> Op {
    let op = Op {
        id: shared.history.next_id(),
        process: "checker".into(),
        router: router.to_string(),
        invoke_us: invoke,
        complete_us: shared.history.now(),
        outcome,
        call,
    };
    shared.history.push_op(op.clone());
    op
}

/// Pause the clients, heal, check; the clients resume afterwards.
pub(crate) async fn pause_and_check(
    shared: &Shared,
    active: Vec<nemesis::Active>,
    label: &str,
    rng: &mut SmallRng,
    report: &mut Report,
) -> Option<()> {
    nemesis::heal_all(&shared.routers, &shared.history, active).await;
    let _paused = shared.gate.write().await;
    quiet_point(shared, label, rng, report).await
}
