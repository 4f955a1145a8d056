//! The nemesis: faults on a seeded random schedule. The schedule (which faults, on which
//! node or router, for how long, with how much calm between) is a pure function of the
//! seed; "the Raft leader" and the replicated shard's primary and followers are resolved
//! when the fault starts. Every start and heal goes into
//! the history with the services it disturbs.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::compose::{Compose, NODES, Net, ROUTERS, S3};
use crate::history::History;
use crate::model;
use crate::routers::{Routers, blocking};
use crate::workload::REPLICATED;
use vecshard_proto::v1 as pb;

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a node; healed by starting it again.
    KillNode(usize),
    /// `docker pause` a node (alive, silent).
    PauseNode(usize),
    /// Cut a node off the routers; it still reaches S3 (and may keep writing there).
    PartitionNode(usize),
    /// Cut a node off everything, S3 included.
    IsolateNode(usize),
    /// Cut the Raft leader off the other routers, the nodes and the clients.
    PartitionLeader,
    /// SIGKILL the node holding the primary of the replicated collection's shard.
    KillPrimary,
    /// Cut that primary's node off everything (routers, its followers, S3): it can
    /// acknowledge nothing, a follower is promoted, and on heal its copy must not diverge.
    IsolatePrimary,
    /// SIGKILL a node holding a follower copy of the replicated shard (the n-th follower
    /// in the map), delete that copy and its replica record, start it again: it must
    /// catch up before it counts.
    WipeFollower(usize),
    /// SIGKILL a router.
    KillRouter(usize),
    /// SIGKILL the Raft leader.
    KillLeader,
    /// `docker pause` the S3 server: writes must fail by their deadline, not hang.
    PauseS3,
    /// Restart every container (SIGTERM, then start).
    RestartAll,
    /// SIGKILL every router and node at once, then start them.
    CrashAll,
}

impl Fault {
    /// Whether it is over as soon as it is applied (nothing to heal).
    pub fn instant(&self) -> bool {
        matches!(self, Fault::RestartAll | Fault::CrashAll)
    }

    /// The service it targets, when known before it starts (the leader is not).
    fn target(&self) -> Option<&'static str> {
        match self {
            Fault::KillNode(n)
            | Fault::PauseNode(n)
            | Fault::PartitionNode(n)
            | Fault::IsolateNode(n) => Some(NODES[*n]),
            Fault::KillRouter(n) => Some(ROUTERS[*n]),
            Fault::PauseS3 => Some(S3),
            Fault::PartitionLeader | Fault::KillLeader => Some("leader"),
            Fault::KillPrimary | Fault::IsolatePrimary => Some("primary"),
            Fault::WipeFollower(_) => Some("follower"),
            Fault::RestartAll | Fault::CrashAll => None,
        }
    }
}

/// One step of the schedule: calm, then faults held together, then heal.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub calm: Duration,
    pub faults: Vec<Fault>,
    pub hold: Duration,
}

/// The schedule of a seed.
pub struct Schedule {
    rng: SmallRng,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            rng: SmallRng::seed_from_u64(model::mix(seed ^ 0x006e_656d_6573_6973)),
        }
    }

    fn fault(&mut self) -> Fault {
        let node = self.rng.random_range(0..NODES.len());
        let router = self.rng.random_range(0..ROUTERS.len());
        // Weights: node faults most, then leader and S3 faults, whole-cluster ones rarely.
        let follower = self.rng.random_range(0..2);
        let table: [(u32, Fault); 13] = [
            (4, Fault::KillNode(node)),
            (3, Fault::PauseNode(node)),
            (3, Fault::PartitionNode(node)),
            (1, Fault::IsolateNode(node)),
            (2, Fault::PartitionLeader),
            (1, Fault::KillRouter(router)),
            (2, Fault::KillLeader),
            (2, Fault::PauseS3),
            (1, Fault::RestartAll),
            (1, Fault::CrashAll),
            (2, Fault::KillPrimary),
            (2, Fault::IsolatePrimary),
            (1, Fault::WipeFollower(follower)),
        ];
        let total: u32 = table.iter().map(|(w, _)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        for (w, f) in table {
            if pick < w {
                return f;
            }
            pick -= w;
        }
        unreachable!("pick < total")
    }

    /// The next step: one fault, sometimes two at once (never two whole-cluster ones).
    pub fn next_step(&mut self) -> Step {
        let calm = Duration::from_millis(self.rng.random_range(1_000..5_000));
        let mut faults = vec![self.fault()];
        if !faults[0].instant() && self.rng.random_bool(0.25) {
            let second = self.fault();
            if !second.instant() && second.target() != faults[0].target() {
                faults.push(second);
            }
        }
        // Up to twice the routers' failure timeout (5 s): some faults heal before a
        // failover, some after.
        let hold = Duration::from_millis(self.rng.random_range(1_000..11_000));
        Step { calm, faults, hold }
    }
}

/// What undoes an applied fault.
#[derive(Clone, Debug)]
enum Undo {
    Start(String),
    Unpause(String),
    Connect(String, Net),
}

/// A fault in force.
pub struct Active {
    what: String,
    undo: Vec<Undo>,
}

/// The leader's service name, as some router reports it.
async fn leader(routers: &Routers) -> Option<&'static str> {
    for r in ROUTERS {
        if let Ok(s) = routers.status(r).await
            && let Some(l) = s.routers.iter().find(|x| x.leader)
        {
            return ROUTERS
                .iter()
                .copied()
                .find(|n| *n == format!("router-{}", l.id));
        }
    }
    None
}

fn names(svcs: &[&str]) -> Vec<String> {
    svcs.iter().map(|s| s.to_string()).collect()
}

/// The node holding the primary (`None`) or the `Some(n)`-th follower of the replicated
/// collection's shard 0, as some router's map shows it.
async fn replica_node(routers: &Routers, follower: Option<usize>) -> Option<&'static str> {
    for r in ROUTERS {
        let Ok(s) = routers.status(r).await else {
            continue;
        };
        let Some(p) = s
            .shards
            .iter()
            .find(|p| p.collection == REPLICATED && p.number == 0)
        else {
            continue;
        };
        let node = match follower {
            None => p.owner.clone(),
            Some(n) => {
                let followers: Vec<&pb::ReplicaInfo> =
                    p.replicas.iter().filter(|x| x.node != p.owner).collect();
                followers.get(n % followers.len().max(1))?.node.clone()
            }
        };
        return NODES.iter().copied().find(|x| *x == node);
    }
    None
}

/// A fault made concrete: what it is called, which services it disturbs, how to undo it.
/// `resolved`: the service a fault on "the leader", "the primary" or "a follower" hits.
fn plan(fault: &Fault, resolved: Option<&'static str>) -> (String, Vec<&'static str>, Vec<Undo>) {
    let all: Vec<&str> = ROUTERS.iter().chain(&NODES).copied().collect();
    let leader = resolved.unwrap_or(ROUTERS[0]);
    let replica = resolved.unwrap_or(NODES[0]);
    match fault {
        Fault::KillNode(n) => (
            format!("kill {}", NODES[*n]),
            vec![NODES[*n]],
            vec![Undo::Start(NODES[*n].into())],
        ),
        Fault::KillRouter(n) => (
            format!("kill {}", ROUTERS[*n]),
            vec![ROUTERS[*n]],
            vec![Undo::Start(ROUTERS[*n].into())],
        ),
        Fault::PauseNode(n) => (
            format!("pause {}", NODES[*n]),
            vec![NODES[*n]],
            vec![Undo::Unpause(NODES[*n].into())],
        ),
        Fault::PartitionNode(n) => (
            format!("partition {} from the routers", NODES[*n]),
            vec![NODES[*n]],
            vec![Undo::Connect(NODES[*n].into(), Net::Default)],
        ),
        Fault::IsolateNode(n) => (
            format!("isolate {}", NODES[*n]),
            vec![NODES[*n]],
            vec![
                Undo::Connect(NODES[*n].into(), Net::Default),
                Undo::Connect(NODES[*n].into(), Net::Storage),
            ],
        ),
        Fault::PartitionLeader => (
            format!("partition the leader {leader}"),
            vec![leader],
            vec![Undo::Connect(leader.into(), Net::Default)],
        ),
        Fault::KillLeader => (
            format!("kill the leader {leader}"),
            vec![leader],
            vec![Undo::Start(leader.into())],
        ),
        Fault::KillPrimary => (
            format!("kill {replica}, the primary of {REPLICATED}"),
            vec![replica],
            vec![Undo::Start(replica.into())],
        ),
        Fault::IsolatePrimary => (
            format!("isolate {replica}, the primary of {REPLICATED}"),
            vec![replica],
            vec![
                Undo::Connect(replica.into(), Net::Default),
                Undo::Connect(replica.into(), Net::Storage),
            ],
        ),
        Fault::WipeFollower(_) => (
            format!("wipe {replica}'s follower copy of {REPLICATED}"),
            vec![replica],
            vec![Undo::Start(replica.into())],
        ),
        Fault::PauseS3 => ("pause s3".into(), vec![S3], vec![Undo::Unpause(S3.into())]),
        Fault::RestartAll => ("restart everything".into(), all, vec![]),
        Fault::CrashAll => ("SIGKILL everything".into(), all, vec![]),
    }
}

/// Inject `fault` with docker.
fn inject(c: &Compose, fault: &Fault, target: &str) -> anyhow::Result<()> {
    match fault {
        Fault::KillNode(_) | Fault::KillRouter(_) | Fault::KillLeader | Fault::KillPrimary => {
            c.kill(target)
        }
        Fault::WipeFollower(_) => c
            .kill(target)
            .and_then(|()| c.wipe_local_collection(target, REPLICATED)),
        Fault::PauseNode(_) | Fault::PauseS3 => c.pause(target),
        Fault::PartitionNode(_) | Fault::PartitionLeader => c.disconnect(target, Net::Default),
        Fault::IsolateNode(_) | Fault::IsolatePrimary => c
            .disconnect(target, Net::Default)
            .and_then(|()| c.disconnect(target, Net::Storage)),
        Fault::RestartAll => c.restart_all(),
        Fault::CrashAll => c.crash_all(),
    }
}

/// Apply `fault`; `None` when it is over already (instant faults) or could not be applied
/// (no leader known, the target is down already): recorded, not fatal. The disturbance
/// is recorded from before the docker command to after its undo.
pub async fn apply(routers: &Routers, history: &History, fault: &Fault) -> Option<Active> {
    let resolved = match fault {
        Fault::PartitionLeader | Fault::KillLeader => {
            Some(leader(routers).await.ok_or("no leader"))
        }
        Fault::KillPrimary | Fault::IsolatePrimary => {
            Some(replica_node(routers, None).await.ok_or("no primary known"))
        }
        Fault::WipeFollower(n) => Some(
            replica_node(routers, Some(*n))
                .await
                .ok_or("no follower known"),
        ),
        _ => None,
    };
    let resolved = match resolved {
        Some(Err(why)) => {
            history.push_fault("skipped", &format!("{fault:?}: {why}"), &[]);
            return None;
        }
        Some(Ok(s)) => Some(s),
        None => None,
    };
    let (what, disturbs, undo) = plan(fault, resolved);
    let disturbs = names(&disturbs);
    history.push_fault("start", &what, &disturbs);
    let result = blocking(|| inject(routers.compose(), fault, &disturbs[0]));
    for svc in &disturbs {
        routers.forget(svc);
    }
    let active = Active { what, undo };
    if let Err(e) = result {
        // For example a second fault on a node that is down already: undo whatever part
        // did happen.
        history.push_fault("error", &format!("{}: {e:#}", active.what), &[]);
        heal_all(routers, history, vec![active]).await;
        return None;
    }
    if fault.instant() {
        history.push_fault("heal", &active.what, &[]);
        return None;
    }
    Some(active)
}

/// Undo faults, the last applied first. Undo steps that fail (the container is already
/// running, already connected) are recorded and skipped.
pub async fn heal_all(routers: &Routers, history: &History, mut active: Vec<Active>) {
    let c = routers.compose();
    while let Some(a) = active.pop() {
        for u in &a.undo {
            let r = blocking(|| match u {
                Undo::Start(s) => c.start(s),
                Undo::Unpause(s) => c.unpause(s),
                Undo::Connect(s, net) => c.connect(s, *net),
            });
            if let Err(e) = r {
                let already = e.to_string();
                if !(already.contains("already") || already.contains("is not paused")) {
                    history.push_fault("error", &format!("heal {}: {e:#}", a.what), &[]);
                }
            }
            let (Undo::Start(s) | Undo::Unpause(s) | Undo::Connect(s, _)) = u;
            routers.forget(s);
        }
        history.push_fault("heal", &a.what, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_every_fault_kind_appears() {
        let steps = |seed| {
            let mut s = Schedule::new(seed);
            (0..300).map(|_| s.next_step()).collect::<Vec<_>>()
        };
        assert_eq!(steps(7), steps(7));
        assert_ne!(steps(7), steps(8));
        let all: Vec<Fault> = steps(7).into_iter().flat_map(|s| s.faults).collect();
        for kind in [
            Fault::KillNode(0),
            Fault::PauseNode(0),
            Fault::PartitionNode(0),
            Fault::IsolateNode(0),
            Fault::PartitionLeader,
            Fault::KillRouter(0),
            Fault::KillLeader,
            Fault::PauseS3,
            Fault::RestartAll,
            Fault::CrashAll,
            Fault::KillPrimary,
            Fault::IsolatePrimary,
            Fault::WipeFollower(0),
        ] {
            let same = |f: &Fault| std::mem::discriminant(f) == std::mem::discriminant(&kind);
            assert!(all.iter().any(same), "{kind:?} never scheduled");
        }
    }
}
