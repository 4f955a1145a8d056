//! The randomized nemesis against the dockerised cluster. By default a short run per fixed
//! seed (what CI runs); `VECSHARD_NEMESIS_DURATION=30m` and `VECSHARD_NEMESIS_SEED=N` run
//! long or replay one seed (see the README, Tests).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, ensure};
use vecshard_chaos_tests::{Settings, run};

/// Seeds of the short mode.
const SEEDS: [u64; 2] = [1, 2];
/// Nemesis time per seed in the short mode.
const SHORT: Duration = Duration::from_secs(75);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomized_faults_lose_resurrect_or_invent_nothing() -> Result<()> {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nemesis");
    for s in Settings::from_env(&SEEDS, SHORT, out)? {
        let report = run(&s).await?;
        eprintln!("{report}");
        ensure!(
            report.violations.is_empty(),
            "seed {}: {} violations; history and seed in {}",
            s.seed,
            report.violations.len(),
            report
                .history
                .as_ref()
                .map_or("(not written)".into(), |p| p.display().to_string())
        );
    }
    Ok(())
}
