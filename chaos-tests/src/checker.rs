//! Checks over a history; pure functions, tested without a cluster.
//!
//! Every key is a register. Its writes are the upserts and deletes that may have applied
//! (acknowledged or unknown; a definite failure never applies), plus the empty state at
//! time 0. A write whose outcome is unknown may take effect at any time after it was
//! invoked, so it never completes. A read of the key during `[rs, re]` may return the value
//! of write X when X was invoked before the read ended and no write Y lies definitely
//! between them (Y invoked after X completed, and Y completed before the read started):
//! with `M = max{Y.invoke : Y.complete < rs}`, exactly the X with `X.complete >= M`.
//! Gets, search hits and the checker's scans at quiet points are such reads. That covers
//! lost acknowledged writes, resurrected deletes, stale reads, writes that failed yet
//! show, and points never written; the point's contents must equal its write's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::history::{Call, FaultEvent, Hit, MapSeen, Op, Outcome};
use crate::model::{self, DataKey, Key, Seen};

/// One write of a key: `value` is the write id stored, `None` for a delete.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub op: u64,
    pub invoke: u64,
    /// `u64::MAX` while it may still take effect (unknown outcome).
    pub complete: u64,
    pub value: Option<u64>,
}

/// Every key's writes, the empty state first.
pub struct Registers {
    writes: HashMap<DataKey, Vec<Write>>,
    initial: Vec<Write>,
}

impl Registers {
    pub fn new(ops: &[Op]) -> Registers {
        let mut writes: HashMap<DataKey, Vec<Write>> = HashMap::new();
        let initial = vec![Write {
            op: u64::MAX,
            invoke: 0,
            complete: 0,
            value: None,
        }];
        for op in ops.iter().filter(|o| o.outcome.may_have_applied()) {
            let complete = if op.outcome.is_ok() {
                op.complete_us
            } else {
                u64::MAX
            };
            let mut add = |coll: usize, key: &Key, value: Option<u64>| {
                let dk = DataKey {
                    coll,
                    key: key.clone(),
                };
                writes
                    .entry(dk)
                    .or_insert_with(|| initial.clone())
                    .push(Write {
                        op: op.id,
                        invoke: op.invoke_us,
                        complete,
                        value,
                    });
            };
            match &op.call {
                Call::Upsert {
                    coll,
                    writes: pairs,
                } => {
                    for (k, w) in pairs {
                        add(*coll, k, Some(*w));
                    }
                }
                Call::Delete { coll, keys } => {
                    for k in keys {
                        add(*coll, k, None);
                    }
                }
                Call::Get { .. } | Call::Search { .. } | Call::Scan { .. } => {}
            }
        }
        Registers { writes, initial }
    }

    fn of(&self, k: &DataKey) -> &[Write] {
        self.writes.get(k).map_or(&self.initial, Vec::as_slice)
    }

    /// Keys of collection `coll` that some write may have touched.
    pub fn keys(&self, coll: usize) -> BTreeSet<Key> {
        self.writes
            .keys()
            .filter(|k| k.coll == coll)
            .map(|k| k.key.clone())
            .collect()
    }

    /// Whether a read during `[rs, re]` may see `value` (`None`: absent) under `k`.
    pub fn allowed(&self, k: &DataKey, rs: u64, re: u64, value: Option<u64>) -> bool {
        let ws = self.of(k);
        let m = ws
            .iter()
            .filter(|y| y.complete < rs)
            .map(|y| y.invoke)
            .max()
            .unwrap_or(0);
        ws.iter()
            .any(|x| x.value == value && x.invoke <= re && x.complete >= m)
    }

    /// Why a read of `k` during `[rs, re]` could not see `value`: the writes that could.
    pub fn explain(&self, k: &DataKey, rs: u64, re: u64, value: Option<u64>) -> String {
        let ws = self.of(k);
        let show = |v: Option<u64>| v.map_or("absent".to_string(), |w| format!("write {w}"));
        let mut possible: Vec<String> = ws
            .iter()
            .filter(|x| x.invoke <= re)
            .filter(|x| self.allowed(k, rs, re, x.value))
            .map(|x| show(x.value))
            .collect();
        possible.sort();
        possible.dedup();
        let own = ws.iter().find(|x| x.value == value && value.is_some());
        let origin = match (value, own) {
            (None, _) => String::new(),
            (Some(w), None) => format!(" (write {w} never wrote this key, or failed)"),
            (Some(_), Some(x)) => format!(
                " (that write: op {} invoked at {} µs, {})",
                x.op,
                x.invoke,
                if x.complete == u64::MAX {
                    "outcome unknown".to_string()
                } else {
                    format!("acknowledged at {} µs", x.complete)
                }
            ),
        };
        let recent: Vec<String> = ws
            .iter()
            .filter(|x| x.invoke <= re)
            .rev()
            .take(6)
            .map(|x| {
                let done = if x.complete == u64::MAX {
                    "unknown".to_string()
                } else {
                    format!("ok@{}", x.complete)
                };
                format!("op {} {} @{} {done}", x.op, show(x.value), x.invoke)
            })
            .collect();
        format!(
            "{k}: read during [{rs}, {re}] µs saw {}{origin}; possible: [{}]; latest writes: [{}]",
            show(value),
            possible.join(", "),
            recent.join("; ")
        )
    }
}

/// Violations of every read in `ops` (gets, search hits, scans that were answered).
pub fn check_reads(ops: &[Op], regs: &Registers) -> Vec<String> {
    let mut out = Vec::new();
    for op in ops.iter().filter(|o| o.outcome.is_ok()) {
        let (rs, re) = (op.invoke_us, op.complete_us);
        let see = |coll: usize, seen: &Seen, out: &mut Vec<String>| {
            let k = DataKey {
                coll,
                key: seen.key.clone(),
            };
            if let Some(d) = &seen.damage {
                out.push(format!(
                    "op {}: {k} holds write {} damaged: {d}",
                    op.id, seen.w
                ));
            }
            if !regs.allowed(&k, rs, re, Some(seen.w)) {
                out.push(format!(
                    "op {} ({}): {}",
                    op.id,
                    op.process,
                    regs.explain(&k, rs, re, Some(seen.w))
                ));
            }
        };
        match &op.call {
            Call::Get { coll, keys, found } => {
                let mut got = BTreeSet::new();
                for s in found {
                    if !keys.contains(&s.key) {
                        out.push(format!(
                            "op {}: get returned key {} not asked for",
                            op.id, s.key
                        ));
                    }
                    if !got.insert(s.key.clone()) {
                        out.push(format!("op {}: get returned key {} twice", op.id, s.key));
                    }
                    see(*coll, s, &mut out);
                }
                for key in keys.iter().filter(|k| !got.contains(*k)) {
                    absent(regs, op, *coll, key, &mut out);
                }
            }
            Call::Scan { coll, found } => {
                let mut got = BTreeSet::new();
                for s in found {
                    if !got.insert(s.key.clone()) {
                        out.push(format!("op {}: scan returned key {} twice", op.id, s.key));
                    }
                    see(*coll, s, &mut out);
                }
                for key in regs.keys(*coll).iter().filter(|k| !got.contains(*k)) {
                    absent(regs, op, *coll, key, &mut out);
                }
            }
            Call::Search {
                coll,
                query,
                k,
                client_filter,
                hits,
                coverage,
                ..
            } => {
                out.extend(check_hits(
                    op.id,
                    *query,
                    *k,
                    *client_filter,
                    hits,
                    *coverage,
                ));
                for h in hits {
                    see(*coll, &h.seen, &mut out);
                }
            }
            Call::Upsert { .. } | Call::Delete { .. } => {}
        }
    }
    out
}

fn absent(regs: &Registers, op: &Op, coll: usize, key: &Key, out: &mut Vec<String>) {
    let k = DataKey {
        coll,
        key: key.clone(),
    };
    let (rs, re) = (op.invoke_us, op.complete_us);
    if !regs.allowed(&k, rs, re, None) {
        out.push(format!(
            "op {} ({}): {}",
            op.id,
            op.process,
            regs.explain(&k, rs, re, None)
        ));
    }
}

/// Relative tolerance of a score against the f64 distance (f32 kernels).
const SCORE_TOLERANCE: f64 = 1e-4;

fn score_ok(score: f32, want: f64) -> bool {
    (score as f64 - want).abs() <= SCORE_TOLERANCE * want.abs().max(1.0)
}

/// The hits of one search on their own: full coverage, at most k, no key twice, the
/// filter holds, scores are the distances of the points' vectors, best first (ties by key).
pub fn check_hits(
    op: u64,
    query: u64,
    k: u32,
    client_filter: Option<u64>,
    hits: &[Hit],
    coverage: (u32, u32),
) -> Vec<String> {
    let mut out = Vec::new();
    if coverage.0 != coverage.1 {
        out.push(format!(
            "op {op}: search answered by {} of {} shards without allow_partial",
            coverage.0, coverage.1
        ));
    }
    if hits.len() > k as usize {
        out.push(format!("op {op}: {} hits for k = {k}", hits.len()));
    }
    let q = model::vector(query);
    let mut keys = BTreeSet::new();
    for (i, h) in hits.iter().enumerate() {
        if !keys.insert(&h.seen.key) {
            out.push(format!("op {op}: key {} twice in the hits", h.seen.key));
        }
        if let Some(c) = client_filter
            && model::client_of(h.seen.w) != c
        {
            out.push(format!(
                "op {op}: hit {} (write {}) fails the filter client = {c}",
                h.seen.key, h.seen.w
            ));
        }
        let want = model::l2sq(&q, &model::vector(h.seen.w));
        if !score_ok(h.score, want) {
            out.push(format!(
                "op {op}: hit {} (write {}) has score {}, its distance is {want}",
                h.seen.key, h.seen.w, h.score
            ));
        }
        if let Some(prev) = i.checked_sub(1).map(|j| &hits[j])
            && (prev.score > h.score || (prev.score == h.score && prev.seen.key > h.seen.key))
        {
            out.push(format!(
                "op {op}: hits out of order: {} ({}) before {} ({})",
                prev.seen.key, prev.score, h.seen.key, h.score
            ));
        }
    }
    out
}

/// An exact search against the points a stable scan saw (key → write id): the hits must be
/// the exact top k, up to the order of near-ties.
pub fn check_exact(op: &Op, points: &BTreeMap<Key, u64>) -> Vec<String> {
    let Call::Search {
        query,
        k,
        client_filter,
        hits,
        ..
    } = &op.call
    else {
        return Vec::new();
    };
    let q = model::vector(*query);
    let mut want: Vec<(f64, &Key)> = points
        .iter()
        .filter(|(_, w)| client_filter.is_none_or(|c| model::client_of(**w) == c))
        .map(|(key, w)| (model::l2sq(&q, &model::vector(*w)), key))
        .collect();
    want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    want.truncate(*k as usize);
    let mut out = Vec::new();
    if hits.len() != want.len() {
        out.push(format!(
            "op {}: exact search gave {} hits, {} points qualify (k = {k})",
            op.id,
            hits.len(),
            want.len()
        ));
    }
    for (i, (h, (d, key))) in hits.iter().zip(&want).enumerate() {
        if &h.seen.key != *key && !score_ok(h.score, *d) {
            out.push(format!(
                "op {}: exact hit {i} is {} at {}, the exact answer is {key} at {d}",
                op.id, h.seen.key, h.score
            ));
        }
        if points.get(&h.seen.key) != Some(&h.seen.w) {
            out.push(format!(
                "op {}: exact hit {} names write {}, the scan saw {:?}",
                op.id,
                h.seen.key,
                h.seen.w,
                points.get(&h.seen.key)
            ));
        }
    }
    out
}

/// Operations that got no answer by their deadline (plus grace) although no fault touched
/// their router meanwhile.
pub fn check_hangs(ops: &[Op], faults: &[FaultEvent]) -> Vec<String> {
    let spans = disturbed(faults);
    ops.iter()
        .filter_map(|op| {
            let Outcome::Hung(why) = &op.outcome else {
                return None;
            };
            let hit = spans.iter().any(|(svc, from, to)| {
                svc == &op.router && *from <= op.complete_us && *to >= op.invoke_us
            });
            (!hit).then(|| {
                format!(
                    "op {} ({}) to {} hung: {why} (invoked at {} µs)",
                    op.id, op.process, op.router, op.invoke_us
                )
            })
        })
        .collect()
}

/// `(service, from, to)` for every fault: from its start to its heal (or the end).
fn disturbed(faults: &[FaultEvent]) -> Vec<(String, u64, u64)> {
    let mut open: BTreeMap<&str, (u64, &[String])> = BTreeMap::new();
    let mut out = Vec::new();
    for f in faults {
        if f.phase == "start" {
            open.insert(&f.what, (f.at_us, &f.disturbs));
        } else if f.phase == "heal"
            && let Some((from, svcs)) = open.remove(f.what.as_str())
        {
            out.extend(svcs.iter().map(|s| (s.clone(), from, f.at_us)));
        }
    }
    out.extend(
        open.into_values()
            .flat_map(|(from, svcs)| svcs.iter().map(move |s| (s.clone(), from, u64::MAX))),
    );
    out
}

/// Every router's view of each shard's epoch never goes back.
pub fn check_epochs(maps: &[MapSeen]) -> Vec<String> {
    let mut last: BTreeMap<(&str, &str, u32), (u64, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for m in maps {
        for p in &m.shards {
            let key = (m.router.as_str(), p.collection.as_str(), p.number);
            if let Some((epoch, at)) = last.get(&key)
                && p.epoch < *epoch
            {
                out.push(format!(
                    "{} showed shard {} of {} at epoch {} at {} µs, after epoch {epoch} at {at} µs",
                    m.router, p.number, p.collection, p.epoch, m.at_us
                ));
            }
            last.insert(key, (p.epoch, m.at_us));
        }
    }
    out
}

/// At a quiet point, after healing: every shard of every collection is placed and serving,
/// at an epoch no lower than any router ever showed.
pub fn check_map_settled(
    maps: &[MapSeen],
    now: &MapSeen,
    collections: &[(String, u32)],
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, count) in collections {
        for n in 0..*count {
            let Some(p) = now
                .shards
                .iter()
                .find(|p| &p.collection == name && p.number == n)
            else {
                out.push(format!(
                    "{}: shard {n} of {name} is missing from the map",
                    now.router
                ));
                continue;
            };
            if p.owner.is_empty() || p.state != "SHARD_STATE_SERVING" {
                out.push(format!(
                    "{}: shard {n} of {name} is {} on {:?} after healing",
                    now.router, p.state, p.owner
                ));
            }
            let max = maps
                .iter()
                .flat_map(|m| &m.shards)
                .filter(|q| &q.collection == name && q.number == n)
                .map(|q| q.epoch)
                .max()
                .unwrap_or(0);
            if p.epoch < max {
                out.push(format!(
                    "{}: shard {n} of {name} is at epoch {}, a router showed epoch {max} before",
                    now.router, p.epoch
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, inv: u64, cmp: u64, outcome: Outcome, call: Call) -> Op {
        Op {
            id,
            process: "client-0".into(),
            router: "router-1".into(),
            invoke_us: inv,
            complete_us: cmp,
            outcome,
            call,
        }
    }

    fn up(id: u64, inv: u64, cmp: u64, outcome: Outcome, key: u64, w: u64) -> Op {
        let call = Call::Upsert {
            coll: 0,
            writes: vec![(Key::Int(key), w)],
        };
        op(id, inv, cmp, outcome, call)
    }

    fn del(id: u64, inv: u64, cmp: u64, outcome: Outcome, key: u64) -> Op {
        let call = Call::Delete {
            coll: 0,
            keys: vec![Key::Int(key)],
        };
        op(id, inv, cmp, outcome, call)
    }

    fn seen(key: u64, w: u64) -> Seen {
        Seen {
            key: Key::Int(key),
            w,
            damage: None,
        }
    }

    fn scan(id: u64, inv: u64, cmp: u64, found: Vec<Seen>) -> Op {
        op(id, inv, cmp, Outcome::Ok, Call::Scan { coll: 0, found })
    }

    fn violations(ops: &[Op]) -> Vec<String> {
        check_reads(ops, &Registers::new(ops))
    }

    fn unknown() -> Outcome {
        Outcome::Unknown("deadline".into())
    }

    #[test]
    fn the_last_acknowledged_value_passes_and_a_lost_one_fails() {
        let h = [
            up(1, 10, 20, Outcome::Ok, 7, 100),
            up(2, 30, 40, Outcome::Ok, 7, 101),
        ];
        let ok = [&h[..], &[scan(9, 50, 60, vec![seen(7, 101)])]].concat();
        assert_eq!(violations(&ok), Vec::<String>::new());
        // The older value: the second write was lost.
        let stale = [&h[..], &[scan(9, 50, 60, vec![seen(7, 100)])]].concat();
        assert_eq!(violations(&stale).len(), 1, "{:?}", violations(&stale));
        // Nothing: both were lost.
        let lost = [&h[..], &[scan(9, 50, 60, vec![])]].concat();
        let v = violations(&lost);
        assert!(v.len() == 1 && v[0].contains("saw absent"), "{v:?}");
    }

    #[test]
    fn an_acknowledged_delete_stays_deleted() {
        let h = [
            up(1, 10, 20, Outcome::Ok, 7, 100),
            del(2, 30, 40, Outcome::Ok, 7),
        ];
        let back = [&h[..], &[scan(9, 50, 60, vec![seen(7, 100)])]].concat();
        assert_eq!(violations(&back).len(), 1);
        let gone = [&h[..], &[scan(9, 50, 60, vec![])]].concat();
        assert!(violations(&gone).is_empty());
    }

    #[test]
    fn an_unknown_write_may_apply_at_any_time_later() {
        // Unknown upsert, then an acknowledged delete: either is allowed, even much later.
        let h = [
            up(1, 10, 20, unknown(), 7, 100),
            del(2, 30, 40, Outcome::Ok, 7),
        ];
        for found in [vec![], vec![seen(7, 100)]] {
            let ops = [&h[..], &[scan(9, 500, 600, found)]].concat();
            assert!(violations(&ops).is_empty(), "{:?}", violations(&ops));
        }
        // A definitely failed write must never show.
        let failed = [
            up(1, 10, 20, Outcome::Failed("invalid".into()), 7, 100),
            scan(9, 50, 60, vec![seen(7, 100)]),
        ];
        assert_eq!(violations(&failed).len(), 1);
    }

    #[test]
    fn concurrent_writes_allow_either_value() {
        let h = [
            up(1, 10, 40, Outcome::Ok, 7, 100),
            up(2, 20, 30, Outcome::Ok, 7, 101),
        ];
        for w in [100, 101] {
            let ops = [&h[..], &[scan(9, 50, 60, vec![seen(7, w)])]].concat();
            assert!(violations(&ops).is_empty());
        }
        // A read overlapping a write may or may not see it.
        let h = [
            up(1, 10, 20, Outcome::Ok, 7, 100),
            up(2, 30, 60, Outcome::Ok, 7, 101),
        ];
        for w in [100, 101] {
            let ops = [&h[..], &[scan(9, 40, 50, vec![seen(7, w)])]].concat();
            assert!(violations(&ops).is_empty());
        }
        // But not before the write was invoked.
        let ops = [&h[..], &[scan(9, 22, 25, vec![seen(7, 101)])]].concat();
        assert_eq!(violations(&ops).len(), 1);
    }

    #[test]
    fn never_written_keys_duplicates_and_damage_are_found() {
        let h = [up(1, 10, 20, Outcome::Ok, 7, 100)];
        let ghost = [&h[..], &[scan(9, 50, 60, vec![seen(7, 100), seen(8, 100)])]].concat();
        let v = violations(&ghost);
        assert!(v.len() == 1 && v[0].contains("never wrote"), "{v:?}");
        let twice = [&h[..], &[scan(9, 50, 60, vec![seen(7, 100), seen(7, 100)])]].concat();
        assert!(violations(&twice).iter().any(|v| v.contains("twice")));
        let mut bad = seen(7, 100);
        bad.damage = Some("vector differs".into());
        let damaged = [&h[..], &[scan(9, 50, 60, vec![bad])]].concat();
        assert!(violations(&damaged).iter().any(|v| v.contains("damaged")));
    }

    #[test]
    fn gets_see_absent_keys_too() {
        let h = [up(1, 10, 20, Outcome::Ok, 7, 100)];
        let get = |found| Call::Get {
            coll: 0,
            keys: vec![Key::Int(7)],
            found,
        };
        let ops = [&h[..], &[op(9, 30, 40, Outcome::Ok, get(vec![]))]].concat();
        assert_eq!(violations(&ops).len(), 1);
        let ops = [
            &h[..],
            &[op(9, 30, 40, Outcome::Ok, get(vec![seen(7, 100)]))],
        ]
        .concat();
        assert!(violations(&ops).is_empty());
        // A get that failed saw nothing.
        let failed = op(9, 30, 40, unknown(), get(vec![]));
        assert!(violations(&[&h[..], &[failed]].concat()).is_empty());
    }

    fn hit(key: u64, w: u64, query: u64) -> Hit {
        let score = model::l2sq(&model::vector(query), &model::vector(w)) as f32;
        Hit {
            seen: seen(key, w),
            score,
        }
    }

    fn search(hits: Vec<Hit>, query: u64, k: u32) -> Op {
        let call = Call::Search {
            coll: 0,
            query,
            k,
            exact: true,
            client_filter: None,
            hits,
            coverage: (3, 3),
        };
        op(9, 50, 60, Outcome::Ok, call)
    }

    #[test]
    fn exact_search_hits_are_the_brute_force_answer() {
        let q = 1 << 60;
        let points: BTreeMap<Key, u64> = (0..20).map(|i| (Key::Int(i), 1000 + i)).collect();
        let mut ranked: Vec<(f64, u64)> = (0..20)
            .map(|i| (model::l2sq(&model::vector(q), &model::vector(1000 + i)), i))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let good: Vec<Hit> = ranked[..5]
            .iter()
            .map(|(_, i)| hit(*i, 1000 + i, q))
            .collect();
        let s = search(good.clone(), q, 5);
        assert!(check_exact(&s, &points).is_empty());
        let Call::Search { hits, coverage, .. } = &s.call else {
            unreachable!()
        };
        assert!(check_hits(9, q, 5, None, hits, *coverage).is_empty());
        // A missing best hit, a wrong score, a deleted point.
        let mut skip = good[1..].to_vec();
        skip.push(hit(ranked[5].1, 1000 + ranked[5].1, q));
        assert!(!check_exact(&search(skip, q, 5), &points).is_empty());
        let mut wrong = good.clone();
        wrong[0].score += 0.5;
        assert!(!check_hits(9, q, 5, None, &wrong, (3, 3)).is_empty());
        let mut gone = points.clone();
        gone.remove(&Key::Int(ranked[0].1));
        assert!(!check_exact(&search(good, q, 5), &gone).is_empty());
    }

    #[test]
    fn hangs_count_unless_a_fault_hit_the_router() {
        let hung = op(
            1,
            100,
            200,
            Outcome::Hung("no answer".into()),
            Call::Scan {
                coll: 0,
                found: vec![],
            },
        );
        assert_eq!(check_hangs(std::slice::from_ref(&hung), &[]).len(), 1);
        let fault = |phase: &str, at: u64| FaultEvent {
            at_us: at,
            wall_ms: 0,
            phase: phase.into(),
            what: "kill router-1".into(),
            disturbs: vec!["router-1".into()],
        };
        let faults = [fault("start", 150), fault("heal", 300)];
        assert!(check_hangs(&[hung], &faults).is_empty());
    }

    #[test]
    fn epochs_only_grow() {
        use crate::history::Placement;
        let m = |router: &str, at: u64, epoch: u64, state: &str| MapSeen {
            at_us: at,
            router: router.into(),
            shards: vec![Placement {
                collection: "c".into(),
                number: 0,
                owner: "node-1".into(),
                epoch,
                state: state.into(),
            }],
        };
        let s = "SHARD_STATE_SERVING";
        let maps = [
            m("router-1", 1, 3, s),
            m("router-2", 2, 2, s),
            m("router-1", 3, 4, s),
        ];
        assert!(check_epochs(&maps).is_empty());
        assert_eq!(
            check_epochs(&[m("router-1", 1, 3, s), m("router-1", 2, 2, s)]).len(),
            1
        );
        let colls = [("c".to_string(), 1)];
        assert!(check_map_settled(&maps, &m("router-3", 9, 4, s), &colls).is_empty());
        assert_eq!(
            check_map_settled(&maps, &m("router-3", 9, 3, s), &colls).len(),
            1
        );
        let opening = m("router-3", 9, 4, "SHARD_STATE_OPENING");
        assert_eq!(check_map_settled(&maps, &opening, &colls).len(), 1);
        let two = [("c".to_string(), 2)];
        assert_eq!(
            check_map_settled(&maps, &m("router-3", 9, 4, s), &two).len(),
            1
        );
    }
}
