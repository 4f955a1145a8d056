//! One nemesis run: bring the dockerised cluster up, create the collections, run the clients
//! while the nemesis injects faults on the seed's schedule, stop at quiet points (clients
//! paused, faults healed, cluster settled) to read everything back, and at the end also
//! after SIGKILLing the whole cluster; then check the whole history.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use vecshard_proto::v1 as pb;

use crate::checker::{self, Registers};
use crate::compose::{Compose, NODES, ROUTERS, S3};
use crate::history::{History, Outcome};
use crate::model;
use crate::nemesis::{self, Schedule};
use crate::quiet::{map_seen, pause_and_check, quiet_point, settle};
use crate::report::{Report, tally};
use crate::routers::Routers;
use crate::settings::Settings;
use crate::workload::{self, Collection, REPLICATED, Shared};

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
                replication_factor: c.replication_factor,
                write_ack: if c.replicated() { "majority" } else { "" }.into(),
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

/// Run the nemesis with `s`. When a check fails (or the run cannot go on), the history,
/// every container's log and the object-store data of the run are kept next to each other
/// under `s.out_dir` (their paths are in the report and the error).
pub async fn run(s: &Settings) -> Result<Report> {
    let started = Instant::now();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stem = s.out_dir.join(format!("nemesis-seed-{}-{stamp}", s.seed));
    let tag = format!("{}-{}", s.seed, std::process::id());
    let compose = Arc::new(Compose::up(&format!("s{}", s.seed), s.release)?);
    let result = run_on(s, Arc::clone(&compose), &stem, &tag).await;
    let failed = result.as_ref().map_or(true, |r| !r.violations.is_empty());
    let evidence = if failed {
        keep_evidence(&compose, &stem, &tag)
    } else {
        Vec::new()
    };
    match result {
        Ok(mut report) => {
            report.elapsed = started.elapsed();
            report.evidence = evidence;
            Ok(report)
        }
        Err(e) => {
            let kept: Vec<String> = evidence.iter().map(|p| p.display().to_string()).collect();
            Err(e.context(format!("seed {}; kept: {}", s.seed, kept.join(", "))))
        }
    }
}

/// Every container's whole log, and the run's prefix of the S3 bucket.
fn keep_evidence(compose: &Compose, stem: &Path, tag: &str) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    if let Err(e) = std::fs::create_dir_all(stem.parent().unwrap_or(stem)) {
        eprintln!("cannot keep the evidence under {}: {e}", stem.display());
        return kept;
    }
    let logs = stem.with_extension("logs.txt");
    match std::fs::write(&logs, compose.logs_all()) {
        Ok(()) => kept.push(logs),
        Err(e) => eprintln!("write {}: {e}", logs.display()),
    }
    let data = stem.with_extension("s3");
    let bucket = format!("/data/vecshard/nemesis-{tag}");
    match compose.copy_out(S3, &bucket, &data) {
        Ok(()) => kept.push(data),
        Err(e) => eprintln!("copy {bucket} out of the S3 container: {e:#}"),
    }
    for k in &kept {
        eprintln!("kept {}", k.display());
    }
    kept
}

async fn run_on(s: &Settings, compose: Arc<Compose>, stem: &Path, tag: &str) -> Result<Report> {
    let shared = Arc::new(Shared {
        history: History::default(),
        routers: Routers::new(compose),
        collections: vec![
            Collection {
                name: "objects".into(),
                shards: 3,
                storage: format!("s3://vecshard/nemesis-{tag}"),
                replication_factor: 1,
            },
            Collection {
                name: "disks".into(),
                shards: 2,
                storage: "local".into(),
                replication_factor: 1,
            },
            Collection {
                name: REPLICATED.into(),
                shards: 1,
                storage: "local".into(),
                replication_factor: 3,
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
        let path = stem.with_extension("jsonl");
        let header = serde_json::json!({
            "seed": s.seed,
            "started_unix_ms": shared.history.start_unix_ms(),
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
