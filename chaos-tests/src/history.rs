//! The record of a run: every operation with its invocation and completion time and its
//! outcome, every fault the nemesis injected or healed, and every shard map a router
//! showed. Times are microseconds since the start of the run, on the test host's
//! monotonic clock. Written as JSON lines when a check fails, so a run can be studied and
//! replayed (same seed).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::model::{Key, Seen};

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Acknowledged.
    Ok,
    /// Refused in a way that guarantees it had no effect (bad input, unknown collection).
    Failed(String),
    /// An error after which the effect is unknown (unavailable, deadline, transport): it may
    /// have been applied, in part (one shard of a batch), or not at all, now or later.
    Unknown(String),
    /// No answer by the request's deadline plus a grace period: the client gave up. Unknown
    /// as to its effect, and a failure to answer in time unless the router itself was hit
    /// by a fault meanwhile.
    Hung(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }

    /// Whether the operation may have taken effect.
    pub fn may_have_applied(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }
}

/// A search hit: the point it names and its score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub seen: Seen,
    pub score: f32,
}

/// What an operation did and (for reads) saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Call {
    /// Upsert of `(key, write id)` pairs, distinct keys.
    Upsert {
        coll: usize,
        writes: Vec<(Key, u64)>,
    },
    /// Delete of distinct keys.
    Delete { coll: usize, keys: Vec<Key> },
    /// Get of `keys`; `found` is what came back.
    Get {
        coll: usize,
        keys: Vec<Key>,
        found: Vec<Seen>,
    },
    /// Search with the vector of write id `query` (a synthetic id nobody writes).
    Search {
        coll: usize,
        query: u64,
        k: u32,
        exact: bool,
        /// Only points of this client's writes.
        client_filter: Option<u64>,
        hits: Vec<Hit>,
        /// Shards answered / total.
        coverage: (u32, u32),
    },
    /// Every point of the collection, page by page (a checker's read at a quiet point).
    Scan { coll: usize, found: Vec<Seen> },
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    /// `client-N` or `checker`.
    pub process: String,
    /// The router it was sent to.
    pub router: String,
    pub invoke_us: u64,
    /// When the outcome was known, or when the client gave up.
    pub complete_us: u64,
    pub outcome: Outcome,
    pub call: Call,
}

/// A fault injected or healed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    pub at_us: u64,
    /// Wall clock (ms since the Unix epoch), to find the moment in the containers' logs.
    #[serde(default)]
    pub wall_ms: u64,
    /// `start`, `heal` or `error`.
    pub phase: String,
    /// What, e.g. `kill node-2`.
    pub what: String,
    /// Containers whose service this disturbs until healed.
    pub disturbs: Vec<String>,
}

/// A shard's placement as one router showed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub collection: String,
    pub number: u32,
    pub owner: String,
    pub epoch: u64,
    /// The proto `ShardState` name.
    pub state: String,
}

/// One router's cluster status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapSeen {
    pub at_us: u64,
    pub router: String,
    pub shards: Vec<Placement>,
}

/// A line of the history file.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Op(&'a Op),
    Fault(&'a FaultEvent),
    Map(&'a MapSeen),
}

/// The shared record of a run.
pub struct History {
    start: Instant,
    /// The wall clock at `start` (ms since the Unix epoch).
    start_unix_ms: u64,
    next_id: AtomicU64,
    ops: Mutex<Vec<Op>>,
    faults: Mutex<Vec<FaultEvent>>,
    maps: Mutex<Vec<MapSeen>>,
}

impl Default for History {
    fn default() -> Self {
        History {
            start: Instant::now(),
            start_unix_ms: unix_ms(),
            next_id: AtomicU64::new(0),
            ops: Mutex::default(),
            faults: Mutex::default(),
            maps: Mutex::default(),
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking client must not hide the history from the checker.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl History {
    /// The wall clock at the start of the run (ms since the Unix epoch): a time `t` of the
    /// run is `start_unix_ms + t / 1000` in the containers' logs.
    pub fn start_unix_ms(&self) -> u64 {
        self.start_unix_ms
    }

    /// Microseconds since the start of the run.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn push_op(&self, op: Op) {
        lock(&self.ops).push(op);
    }

    /// A progress line on stderr, stamped with the run's clock.
    pub fn log(&self, msg: &str) {
        eprintln!("[nemesis {:>8.1}s] {msg}", self.now() as f64 / 1e6);
    }

    pub fn push_fault(&self, phase: &str, what: &str, disturbs: &[String]) {
        self.log(&format!("{phase} {what}"));
        let e = FaultEvent {
            at_us: self.now(),
            wall_ms: unix_ms(),
            phase: phase.into(),
            what: what.into(),
            disturbs: disturbs.to_vec(),
        };
        lock(&self.faults).push(e);
    }

    pub fn push_map(&self, m: MapSeen) {
        lock(&self.maps).push(m);
    }

    pub fn ops(&self) -> Vec<Op> {
        lock(&self.ops).clone()
    }

    pub fn faults(&self) -> Vec<FaultEvent> {
        lock(&self.faults).clone()
    }

    pub fn maps(&self) -> Vec<MapSeen> {
        lock(&self.maps).clone()
    }

    /// Write `header` and then every op, fault and map (in time order) as JSON lines.
    pub fn write(&self, path: &Path, header: &serde_json::Value) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "{header}")?;
        let (ops, faults, maps) = (self.ops(), self.faults(), self.maps());
        let mut lines: Vec<(u64, Line<'_>)> = Vec::new();
        lines.extend(ops.iter().map(|o| (o.invoke_us, Line::Op(o))));
        lines.extend(faults.iter().map(|f| (f.at_us, Line::Fault(f))));
        lines.extend(maps.iter().map(|m| (m.at_us, Line::Map(m))));
        lines.sort_by_key(|(t, _)| *t);
        for (_, line) in lines {
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        }
        out.flush()
    }
}
