//! Crash test for merges under concurrent writes: a child process (this test binary,
//! re-run as `merge_crash_child`) upserts and deletes overlapping keys from two threads
//! while small memtables flush and an eager merge policy (at most two segments: a third
//! makes the two smallest merge, leaving the largest, so merges are partial) merges in the
//! background. It is killed with SIGKILL at random moments,
//! half of the rounds right after a merge committed its manifest. After each kill the shard
//! is reopened: it must hold every acknowledged write with its latest value (vector,
//! metadata, payload), deletes deleted, plus at most the batches that were in flight, and
//! those only whole. Every round continues the same shard, so later rounds also recover
//! from earlier crashes.

mod batches;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use batches::{contents, point};
use vecshard_engine::failpoints::COMPACTION_PUBLISH_BEFORE;
use vecshard_engine::{Key, Metric, Options, Shard, ShardSpec};

const DIM: usize = 4;
const KEYS: u64 = 1000;
const ROUNDS: u64 = 16;
/// Batch numbers of round `r` start at `r * ROUND_BATCHES` (all exact in f32).
const ROUND_BATCHES: u64 = 100_000;

/// Keys of batch `b` (1 to 13 consecutive keys, wrapping).
fn batch_keys(b: u64) -> Vec<u64> {
    let start = (b * 37) % KEYS;
    let mut keys: Vec<u64> = (0..1 + b % 13).map(|i| (start + i) % KEYS).collect();
    keys.sort_unstable();
    keys
}

/// Every fifth batch deletes its keys; the others upsert them.
fn is_delete(b: u64) -> bool {
    b.is_multiple_of(5)
}

fn child_opts() -> Options {
    Options {
        memtable_bytes: 64 << 10,
        max_segments: 2,
        min_merge_width: 2,
        merge_ratio: 1.0,
        ..Options::default()
    }
}

/// The child: write until killed. Prints `ack BATCH LAST_SEQ` after each acknowledged
/// write, `try BATCH` before it, and `merged` when a merge has committed its manifest.
#[test]
#[ignore = "the child process of merge_crash_keeps_every_acknowledged_write"]
fn merge_crash_child() {
    let Ok(location) = std::env::var("MERGE_CRASH_LOCATION") else {
        panic!("run by merge_crash_keeps_every_acknowledged_write only");
    };
    let base: u64 = std::env::var("MERGE_CRASH_BASE").unwrap().parse().unwrap();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = {
        let out = out.clone();
        move |line: String| {
            let mut o = out.lock().unwrap();
            writeln!(o, "{line}").unwrap();
            o.flush().unwrap();
        }
    };
    // The child process is this test alone: the scenario lives until it is killed.
    let _scenario = fail::FailScenario::setup();
    {
        let say = say.clone();
        fail::cfg_callback(COMPACTION_PUBLISH_BEFORE, move || say("merged".into())).unwrap();
    }
    let shard =
        Shard::open_or_create(&location, ShardSpec::new(DIM, Metric::L2), child_opts()).unwrap();
    // Killed long before the writers run out of batch numbers.
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (shard, say) = (shard.clone(), say.clone());
            std::thread::spawn(move || {
                for n in 0..ROUND_BATCHES / 2 {
                    let b = base + 2 * n + w;
                    let keys = batch_keys(b);
                    say(format!("try {b}"));
                    let seq = if is_delete(b) {
                        shard.delete(keys.into_iter().map(Key::from).collect())
                    } else {
                        shard.upsert(keys.into_iter().map(|k| point(k, b)).collect())
                    }
                    .unwrap();
                    say(format!("ack {b} {seq}"));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

/// A small deterministic generator (splitmix64) for kill points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

fn apply(state: &mut BTreeMap<u64, u64>, b: u64) {
    for k in batch_keys(b) {
        if is_delete(b) {
            state.remove(&k);
        } else {
            state.insert(k, b);
        }
    }
}

/// The ways the in-flight batches `pending` can fill the sequence numbers in `from..=to`
/// that acknowledged batches left free, each as batches in sequence order.
fn fillings(from: u64, to: u64, acked: &BTreeMap<u64, u64>, pending: &[u64]) -> Vec<Vec<u64>> {
    // (first seq, batch) of acknowledged batches in range.
    let mut placed: Vec<(u64, u64)> = acked
        .iter()
        .filter(|(_, last)| **last >= from && **last <= to)
        .map(|(b, last)| (last + 1 - batch_keys(*b).len() as u64, *b))
        .collect();
    placed.sort_unstable();
    let mut out = Vec::new();
    // Every order of every subset of `pending` (at most two batches: one per writer).
    let mut orders: Vec<Vec<u64>> = vec![vec![]];
    for &p in pending {
        let mut more = Vec::new();
        for o in &orders {
            for i in 0..=o.len() {
                let mut n = o.clone();
                n.insert(i, p);
                more.push(n);
            }
        }
        orders.extend(more);
    }
    for order in orders {
        // Walk the sequence numbers: at each point an acknowledged batch starts there, or
        // the next pending one of this order does.
        let (mut seq, mut pi, mut ai) = (from, 0, 0);
        let mut sequence = Vec::new();
        let fits = loop {
            if seq > to {
                break seq == to + 1 && pi == order.len() && ai == placed.len();
            }
            if ai < placed.len() && placed[ai].0 == seq {
                sequence.push(placed[ai].1);
                seq += batch_keys(placed[ai].1).len() as u64;
                ai += 1;
            } else if pi < order.len() {
                sequence.push(order[pi]);
                seq += batch_keys(order[pi]).len() as u64;
                pi += 1;
            } else {
                break false;
            }
        };
        if fits {
            out.push(sequence);
        }
    }
    out
}

/// What the child printed.
#[derive(Default)]
struct Seen {
    tried: BTreeSet<u64>,
    /// Batch → its last sequence number.
    acked: BTreeMap<u64, u64>,
    merges: u64,
}

impl Seen {
    fn record(&mut self, line: &str) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("try"), Some(b), None) => {
                self.tried.insert(b.parse().unwrap());
            }
            (Some("ack"), Some(b), Some(seq)) => {
                self.acked.insert(b.parse().unwrap(), seq.parse().unwrap());
            }
            (Some("merged"), None, None) => self.merges += 1,
            _ => {} // the test harness's own lines
        }
    }
}

#[test]
fn merge_crash_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("shard");
    let location = location.to_str().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = std::env::var("VECSHARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x3e76e);
    let mut rng = Rng(seed);
    let mut state: BTreeMap<u64, u64> = BTreeMap::new();
    let mut seen_seq = 0u64;
    let (mut merges, mut killed_after_merge, mut pending_total) = (0u64, 0u64, 0usize);
    let child_log = dir.path().join("child.log");
    for round in 1..=ROUNDS {
        let mut child = Command::new(&exe)
            .args(["merge_crash_child", "--exact", "--ignored", "--nocapture"])
            .env("MERGE_CRASH_LOCATION", location)
            .env("MERGE_CRASH_BASE", (round * ROUND_BATCHES).to_string())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&child_log).unwrap())
            .spawn()
            .unwrap();
        // Half the rounds: kill right after the n-th merge commits; else after n acks.
        let after_merge = round % 2 == 0;
        let target = if after_merge {
            1 + rng.below(3)
        } else {
            20 + rng.below(600)
        };
        let mut seen = Seen::default();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            seen.record(&line.unwrap());
            let reached = if after_merge {
                seen.merges >= target
            } else {
                seen.acked.len() as u64 >= target
            };
            // A policy that never merges would fail below, not hang here.
            if reached || seen.acked.len() > 5000 {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "round {round}: the child ended by itself ({status}): {}",
                std::fs::read_to_string(&child_log).unwrap_or_default()
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in lines.map_while(|l| l.ok()) {
            seen.record(&line);
        }
        let Seen {
            tried,
            acked,
            merges: round_merges,
        } = seen;
        merges += round_merges;
        killed_after_merge += u64::from(after_merge && round_merges >= target);

        let shard = Shard::open(
            location,
            Options {
                background: false,
                ..Options::default()
            },
        )
        .unwrap();
        let visible = shard.stats().visible_seq;
        let max_acked = acked.values().copied().max().unwrap_or(0);
        assert!(
            visible >= max_acked,
            "round {round} (seed {seed}): reopened at seq {visible}, but {max_acked} was acknowledged"
        );
        let pending: Vec<u64> = tried
            .iter()
            .filter(|b| !acked.contains_key(b))
            .copied()
            .collect();
        let got = contents(&shard);
        let candidates = fillings(seen_seq + 1, visible, &acked, &pending);
        let matched = candidates.iter().find_map(|order| {
            let mut want = state.clone();
            order.iter().for_each(|b| apply(&mut want, *b));
            let durable_pending = order.iter().filter(|b| !acked.contains_key(b)).count();
            (want == got).then_some((want, durable_pending))
        });
        let Some((want, durable_pending)) = matched else {
            panic!(
                "round {round} (seed {seed}): after the kill the shard (seq {visible}) is not \
                 the acknowledged writes plus whole in-flight batches {pending:?} \
                 ({} ways to place them); first differing key: {:?}",
                candidates.len(),
                candidates.first().and_then(|order| {
                    let mut want = state.clone();
                    order.iter().for_each(|b| apply(&mut want, *b));
                    (0..KEYS)
                        .find(|k| want.get(k) != got.get(k))
                        .map(|k| (k, got.get(&k).copied(), want.get(&k).copied()))
                })
            )
        };
        pending_total += durable_pending;
        state = want;
        // Closing flushes: the next child continues from exactly this state.
        shard.close().unwrap();
        seen_seq = visible;
    }
    eprintln!(
        "{ROUNDS} kills: {merges} merges committed, {killed_after_merge} kills right after one, \
         {pending_total} in-flight batches found durable"
    );
    assert!(merges >= ROUNDS, "too few merges to test them: {merges}");
    assert!(
        killed_after_merge >= ROUNDS / 4,
        "{killed_after_merge} kills after a merge"
    );
}
