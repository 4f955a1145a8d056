//! One nemesis run: bring the dockerised cluster up, create the collections, run the clients
//! while the nemesis injects faults on the seed's schedule, stop at quiet points (clients
//! paused, faults healed, cluster settled) to read everything back, and at the end also
//! after SIGKILLing the whole cluster; then check the whole history.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_proto::v1 as pb;

use crate::checker::{self, Registers};
use crate::compose::{Compose, NODES, ROUTERS};
use crate::history::{Call, History, MapSeen, Op, Outcome, Placement};
use crate::model::{self, Key};
use crate::nemesis::{self, Schedule};
use crate::routers::Routers;
use crate::workload::{self, Collection, Shared};

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u64,
    /// How long the nemesis runs (quiet points and the final checks come on top).
    pub duration: Duration,
    /// A quiet point after at least this much nemesis time.
    pub quiet_every: Duration,
    pub clients: u64,
    /// Package the release binary instead of the debug one.
    pub release: bool,
    /// Where the history goes.
    pub out_dir: PathBuf,
    /// Write the history even when every check passes.
    pub keep_history: bool,
}

/// Parse `90s`, `30m`, `2h`, `1500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("duration {s:?}: expected a number and s, m, h or ms"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => bail!("duration {s:?}: unknown unit {other:?} (use s, m, h or ms)"),
    })
}

impl Settings {
    /// The runs the environment asks for: `VECSHARD_NEMESIS_SEED` (one run, else one per
    /// default seed), `VECSHARD_NEMESIS_DURATION` (else `default_duration`),
    /// `VECSHARD_NEMESIS_CLIENTS`, `VECSHARD_NEMESIS_RELEASE=1`, `VECSHARD_NEMESIS_HISTORY=always`.
    pub fn from_env(
        default_seeds: &[u64],
        default_duration: Duration,
        out_dir: PathBuf,
    ) -> Result<Vec<Settings>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let seeds = match var("VECSHARD_NEMESIS_SEED") {
            Some(s) => vec![
                s.parse()
                    .with_context(|| format!("VECSHARD_NEMESIS_SEED={s:?}: expected an integer"))?,
            ],
            None => default_seeds.to_vec(),
        };
        let duration = match var("VECSHARD_NEMESIS_DURATION") {
            Some(d) => parse_duration(&d).context("VECSHARD_NEMESIS_DURATION")?,
            None => default_duration,
        };
        let clients = match var("VECSHARD_NEMESIS_CLIENTS") {
            Some(c) => c
                .parse()
                .with_context(|| format!("VECSHARD_NEMESIS_CLIENTS={c:?}: expected an integer"))?,
            None => 4,
        };
        let release = var("VECSHARD_NEMESIS_RELEASE").is_some_and(|v| v != "0");
        let keep_history = var("VECSHARD_NEMESIS_HISTORY").is_some_and(|v| v == "always");
        Ok(seeds
            .into_iter()
            .map(|seed| Settings {
                seed,
                duration,
                // Short runs get one quiet point halfway; long ones one every 5 minutes.
                quiet_every: (duration / 2).min(Duration::from_secs(300)),
                clients,
                release,
                out_dir: out_dir.clone(),
                keep_history,
            })
            .collect())
    }
}

/// What a run did and found.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub elapsed: Duration,
    /// Faults started, by description (`kill node-2`, `pause s3` …).
    pub faults: BTreeMap<String, usize>,
    /// Operations by kind and outcome.
    pub ops: BTreeMap<(String, String), usize>,
    pub acked_points: usize,
    pub acked_deletes: usize,
    pub quiet_points: usize,
    pub exact_searches_checked: usize,
    pub violations: Vec<String>,
    pub history: Option<PathBuf>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults: usize = self.faults.values().sum();
        let ops: usize = self.ops.values().sum();
        writeln!(
            f,
            "nemesis seed {} ran {:.0?}: {faults} faults, {ops} operations, {} acknowledged point writes, {} acknowledged key deletes, {} quiet points, {} exact searches checked against a scan",
            self.seed,
            self.elapsed,
            self.acked_points,
            self.acked_deletes,
            self.quiet_points,
            self.exact_searches_checked
        )?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        writeln!(f, "  faults: {}", faults.join(", "))?;
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|((k, o), n)| format!("{k} {o} ×{n}"))
            .collect();
        writeln!(f, "  operations: {}", ops.join(", "))?;
        if let Some(h) = &self.history {
            writeln!(f, "  history: {}", h.display())?;
        }
        writeln!(f, "  violations: {}", self.violations.len())?;
        for v in self.violations.iter().take(30) {
            writeln!(f, "  - {v}")?;
        }
        Ok(())
    }
}

fn state_name(s: i32) -> String {
    pb::ShardState::try_from(s)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| format!("state {s}"))
}

fn map_seen(history: &History, router: &str, s: &pb::ClusterStatusResponse) -> MapSeen {
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
async fn settle(shared: &Shared, timeout: Duration) -> Result<()> {
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

/// Create the collections (retrying through any router until one accepts).
async fn create(shared: &Shared) -> Result<()> {
    for c in &shared.collections {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            let req = pb::CreateCollectionRequest {
                name: c.name.clone(),
                dimension: model::DIM as u32,
                metric: pb::Metric::L2 as i32,
                shard_count: c.shards,
                storage: c.storage.clone(),
                index: None,
            };
            let (o, _, _) = workload::call(shared, ROUTERS[0], |mut cl| async move {
                cl.create_collection(req).await
            })
            .await;
            match o {
                Outcome::Ok => break,
                Outcome::Unknown(m) if m.starts_with("AlreadyExists") => break,
                other if Instant::now() > end => bail!("create {}: {other:?}", c.name),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    Ok(())
}

/// The shard maps every router shows, every second, into the history.
async fn monitor(shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Acquire) {
        for r in ROUTERS {
            if let Ok(s) = shared.routers.status(r).await {
                shared.history.push_map(map_seen(&shared.history, r, &s));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
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
async fn quiet_point(
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
async fn pause_and_check(
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

/// Run the nemesis with `s`.
pub async fn run(s: &Settings) -> Result<Report> {
    let started = Instant::now();
    let compose = Arc::new(Compose::up(&format!("s{}", s.seed), s.release)?);
    let result = run_on(s, Arc::clone(&compose)).await;
    match result {
        Ok(mut report) => {
            report.elapsed = started.elapsed();
            if !report.violations.is_empty() {
                eprintln!("{}", compose.logs(150));
            }
            Ok(report)
        }
        Err(e) => {
            eprintln!("{}", compose.logs(150));
            Err(e)
        }
    }
}

async fn run_on(s: &Settings, compose: Arc<Compose>) -> Result<Report> {
    let tag = format!("{}-{}", s.seed, std::process::id());
    let shared = Arc::new(Shared {
        history: History::default(),
        routers: Routers::new(compose),
        collections: vec![
            Collection {
                name: "objects".into(),
                shards: 3,
                storage: format!("s3://vecshard/nemesis-{tag}"),
            },
            Collection {
                name: "disks".into(),
                shards: 2,
                storage: "local".into(),
            },
        ],
        clients: s.clients,
        gate: tokio::sync::RwLock::new(()),
        stop: Default::default(),
    });
    let mut report = Report {
        seed: s.seed,
        ..Report::default()
    };
    wait_for_leader(&shared).await?;
    create(&shared).await?;
    settle(&shared, Duration::from_secs(180))
        .await
        .context("the new collections never served")?;

    let monitor = tokio::spawn(monitor(Arc::clone(&shared)));
    let clients: Vec<_> = (0..s.clients)
        .map(|id| tokio::spawn(workload::client(Arc::clone(&shared), id, s.seed)))
        .collect();

    let mut schedule = Schedule::new(s.seed);
    let mut rng = SmallRng::seed_from_u64(model::mix(s.seed ^ 0x0071_7569_6574));
    let end = Instant::now() + s.duration;
    let mut next_quiet = Instant::now() + s.quiet_every;
    // False once the cluster failed to recover: the rest would only wait for it again.
    let mut recovered = true;
    while recovered && Instant::now() < end {
        let step = schedule.next_step();
        tokio::time::sleep(step.calm.min(end.saturating_duration_since(Instant::now()))).await;
        let mut active = Vec::new();
        for f in &step.faults {
            active.extend(nemesis::apply(&shared.routers, &shared.history, f).await);
        }
        tokio::time::sleep(step.hold).await;
        if Instant::now() >= next_quiet && Instant::now() < end {
            let label = format!("quiet point {}", report.quiet_points + 1);
            recovered = pause_and_check(&shared, active, &label, &mut rng, &mut report)
                .await
                .is_some();
            next_quiet = Instant::now() + s.quiet_every;
        } else {
            nemesis::heal_all(&shared.routers, &shared.history, active).await;
        }
    }

    // The end: stop the clients, check, then SIGKILL everything and check again.
    {
        let _paused = shared.gate.write().await;
        shared.stop.store(true, Ordering::Release);
    }
    for c in clients {
        c.await.context("a client panicked")?;
    }
    if recovered
        && quiet_point(&shared, "final", &mut rng, &mut report)
            .await
            .is_some()
    {
        // An instant fault: nothing to heal.
        let crash = nemesis::apply(&shared.routers, &shared.history, &nemesis::Fault::CrashAll);
        crash.await;
        let label = "after SIGKILL of everything";
        quiet_point(&shared, label, &mut rng, &mut report).await;
    }
    monitor.abort();

    let ops = shared.history.ops();
    let regs = Registers::new(&ops);
    report.violations.extend(checker::check_reads(&ops, &regs));
    report
        .violations
        .extend(checker::check_hangs(&ops, &shared.history.faults()));
    report
        .violations
        .extend(checker::check_epochs(&shared.history.maps()));
    tally(&mut report, &ops, &shared.history);

    if !report.violations.is_empty() || s.keep_history {
        std::fs::create_dir_all(&s.out_dir)
            .with_context(|| format!("create {}", s.out_dir.display()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = s
            .out_dir
            .join(format!("nemesis-seed-{}-{stamp}.jsonl", s.seed));
        let header = serde_json::json!({
            "seed": s.seed,
            "duration_s": s.duration.as_secs(),
            "clients": s.clients,
            "release": s.release,
            "replay": format!(
                "VECSHARD_NEMESIS_SEED={} VECSHARD_NEMESIS_DURATION={}s VECSHARD_NEMESIS_CLIENTS={}{} cargo nextest run -p vecshard-chaos-tests",
                s.seed,
                s.duration.as_secs(),
                s.clients,
                if s.release { " VECSHARD_NEMESIS_RELEASE=1" } else { "" }
            ),
            "collections": shared.collections.iter().map(|c| (c.name.clone(), c.storage.clone())).collect::<Vec<_>>(),
            "violations": report.violations,
        });
        shared
            .history
            .write(&path, &header)
            .with_context(|| format!("write {}", path.display()))?;
        report.history = Some(path);
    }
    Ok(report)
}

async fn wait_for_leader(shared: &Shared) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(180);
    loop {
        for r in ROUTERS {
            if let Ok(s) = shared.routers.status(r).await {
                let alive = s
                    .nodes
                    .iter()
                    .filter(|n| n.state == pb::NodeState::Alive as i32)
                    .count();
                if alive == NODES.len() && s.routers.iter().any(|r| r.leader) {
                    return Ok(());
                }
            }
        }
        if Instant::now() > end {
            bail!("no leader with every node alive within 180 s of starting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn tally(report: &mut Report, ops: &[Op], history: &History) {
    for f in history.faults().iter().filter(|f| f.phase == "start") {
        // "kill node-2" → "kill node-2"; leader faults name the router they hit.
        *report.faults.entry(f.what.clone()).or_default() += 1;
    }
    for op in ops {
        let kind = match &op.call {
            Call::Upsert { writes, .. } => {
                if op.outcome.is_ok() {
                    report.acked_points += writes.len();
                }
                "upsert"
            }
            Call::Delete { keys, .. } => {
                if op.outcome.is_ok() {
                    report.acked_deletes += keys.len();
                }
                "delete"
            }
            Call::Get { .. } => "get",
            Call::Search { .. } => "search",
            Call::Scan { .. } => "scan",
        };
        let outcome = match &op.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed(_) => "failed",
            Outcome::Unknown(_) => "unknown",
            Outcome::Hung(_) => "hung",
        };
        *report
            .ops
            .entry((kind.to_string(), outcome.to_string()))
            .or_default() += 1;
    }
}
