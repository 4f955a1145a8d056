//! What a run did (faults, operations, acknowledged writes) and found (violations).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::history::{Call, History, Op, Outcome};

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
    /// Container logs and object-store data kept after a failure.
    pub evidence: Vec<PathBuf>,
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
        for e in &self.evidence {
            writeln!(f, "  kept: {}", e.display())?;
        }
        writeln!(f, "  violations: {}", self.violations.len())?;
        for v in self.violations.iter().take(30) {
            writeln!(f, "  - {v}")?;
        }
        Ok(())
    }
}

pub(crate) fn tally(report: &mut Report, ops: &[Op], history: &History) {
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
