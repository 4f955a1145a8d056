//! The write path: validate → WAL (group commit) → memtable → publish in sequence order.

use std::sync::Arc;

use rayon::prelude::*;

use super::Inner;
use crate::error::{Error, Result};
use crate::memtable::{self, Memtable};
use crate::pk_index::Loc;
use crate::types::{Key, Metric, Point};
use crate::wal::{EncodedOp, WalOp};
use vecshard_model::validate;

/// Batches at least this large insert into the memtable index on all cores.
const PARALLEL_INSERT: usize = 64;

/// Check a point (the model's rules) and normalise its vector for cosine.
fn validate_point(
    p: &mut Point,
    dim: usize,
    metric: Metric,
) -> Result<(), vecshard_model::ValidationError> {
    validate::point(p, dim, metric)?;
    if metric == Metric::Cosine {
        validate::normalize(&mut p.vector);
    }
    Ok(())
}

/// A write that a replicated shard's primary sequenced, as a follower applies it with
/// [`crate::Shard::apply_replicated`] (`docs/design/014-replication.md`).
#[derive(Debug, Clone, PartialEq)]
pub enum Replicated {
    /// An upsert batch; its points take consecutive sequence numbers.
    Upsert(Vec<Point>),
    /// A delete batch; its keys take consecutive sequence numbers.
    Delete(Vec<Key>),
}

/// Where an operation's sequence numbers come from.
#[derive(Clone, Copy)]
enum Seq {
    /// The next free ones (a local write).
    Next,
    /// Recovery: the WAL record's own, already durable.
    Replayed(u64),
    /// A follower: the primary's, which must be exactly the next free ones.
    Replicated(u64),
}

/// Where a logged operation goes.
struct Assigned {
    first_seq: u64,
    memtable: Arc<Memtable>,
    first_row: u32,
}

impl Inner {
    pub(super) fn upsert(&self, mut points: Vec<Point>) -> Result<u64> {
        self.check_writable()?;
        let _writing = self.writing();
        validate::batch_len(points.len(), "upsert")?;
        for (i, p) in points.iter_mut().enumerate() {
            validate_point(p, self.spec.dim, self.spec.metric)
                .map_err(|e| e.within(format!("points[{i}] (key {})", p.key)))?;
        }
        let op = WalOp::Upsert(points);
        let enc = EncodedOp::new(&op)?;
        let a = self.assign(&op, Some(&enc), Seq::Next)?;
        let WalOp::Upsert(points) = op else {
            unreachable!("constructed above")
        };
        self.apply_upsert(a, points)
    }

    pub(super) fn delete(&self, keys: Vec<Key>) -> Result<u64> {
        self.check_writable()?;
        let _writing = self.writing();
        validate::batch_len(keys.len(), "delete")?;
        keys.iter()
            .enumerate()
            .try_for_each(|(i, k)| validate::key(k).map_err(|e| e.within(format!("keys[{i}]"))))?;
        let op = WalOp::Delete(keys);
        let enc = EncodedOp::new(&op)?;
        let a = self.assign(&op, Some(&enc), Seq::Next)?;
        let WalOp::Delete(keys) = op else {
            unreachable!("constructed above")
        };
        self.apply_delete(a, keys)
    }

    /// A follower applies a write its primary sequenced from `first_seq`: checked like a
    /// local write, logged and made durable with the primary's sequence numbers, then
    /// visible. `first_seq` must be the shard's next sequence number (no gap, no repeat).
    pub(super) fn apply_replicated(&self, first_seq: u64, r: Replicated) -> Result<u64> {
        self.check_writable()?;
        let _writing = self.writing();
        let op = match r {
            Replicated::Upsert(mut points) => {
                validate::batch_len(points.len(), "upsert")?;
                for (i, p) in points.iter_mut().enumerate() {
                    validate_point(p, self.spec.dim, self.spec.metric)
                        .map_err(|e| e.within(format!("points[{i}] (key {})", p.key)))?;
                }
                WalOp::Upsert(points)
            }
            Replicated::Delete(keys) => {
                validate::batch_len(keys.len(), "delete")?;
                keys.iter().enumerate().try_for_each(|(i, k)| {
                    validate::key(k).map_err(|e| e.within(format!("keys[{i}]")))
                })?;
                WalOp::Delete(keys)
            }
        };
        let enc = EncodedOp::new(&op)?;
        let a = self.assign(&op, Some(&enc), Seq::Replicated(first_seq))?;
        match op {
            WalOp::Upsert(points) => self.apply_upsert(a, points),
            WalOp::Delete(keys) => self.apply_delete(a, keys),
        }
    }

    /// The sequence number the next write takes.
    pub(super) fn next_seq(&self) -> u64 {
        self.commit.lock().next_seq
    }

    /// Apply a replayed WAL record (already durable) during recovery.
    pub(super) fn replay(&self, first_seq: u64, op: WalOp) -> Result<()> {
        let a = self.assign(&op, None, Seq::Replayed(first_seq))?;
        match op {
            WalOp::Upsert(points) => self.apply_upsert(a, points)?,
            WalOp::Delete(keys) => self.apply_delete(a, keys)?,
        };
        Ok(())
    }

    /// Take sequence numbers and memtable rows for `op`, queue its WAL frame, then wait for
    /// durability. `seq`: where the sequence numbers come from.
    fn assign(&self, op: &WalOp, enc: Option<&EncodedOp>, seq: Seq) -> Result<Assigned> {
        let replayed = match seq {
            Seq::Replayed(first) => Some(first),
            Seq::Next | Seq::Replicated(_) => None,
        };
        let n = op.len();
        let (rows, bytes) = match op {
            WalOp::Upsert(points) => (n, points.iter().map(memtable::point_bytes).sum()),
            WalOp::Delete(_) => (0, 0),
        };
        let mut st = self.commit.lock();
        if replayed.is_none() {
            while st.frozen.len() >= self.opts.max_frozen_memtables {
                self.check_writable()?;
                if self.opts.background {
                    self.room.wait(&mut st);
                } else {
                    drop(st);
                    self.flush_frozen()?;
                    st = self.commit.lock();
                }
            }
            self.check_writable()?;
        }
        if let Seq::Replicated(first) = seq
            && first != st.next_seq
        {
            let what = if first < st.next_seq {
                "repeats sequence numbers this shard already holds"
            } else {
                "leaves a gap"
            };
            return Err(Error::new(
                crate::ErrorKind::InvalidArgument,
                format!(
                    "replicated write from sequence number {first} {what}: the next is {}",
                    st.next_seq
                ),
            ));
        }
        if !st.active.fits(rows, bytes, self.opts.memtable_bytes)
            && let Err(e) = self.freeze(&mut st, rows)
        {
            drop(st);
            self.fail(&e);
            return Err(e);
        }
        let first_seq = match seq {
            Seq::Next => st.next_seq,
            Seq::Replayed(first) | Seq::Replicated(first) => first,
        };
        let last_seq = first_seq + n as u64 - 1;
        st.next_seq = last_seq + 1;
        let first_row = st.active.reserve(rows, bytes, last_seq);
        let memtable = st.active.clone();
        if let (Some(enc), Some(wal)) = (enc, self.wal.get()) {
            wal.push(enc.frame(first_seq), last_seq);
        }
        drop(st);
        if let (Some(_), Some(wal)) = (enc, self.wal.get())
            && let Err(e) = wal.sync_through(last_seq)
        {
            self.fail(&e);
            return Err(e);
        }
        Ok(Assigned {
            first_seq,
            memtable,
            first_row,
        })
    }

    /// Swap in a fresh memtable (at least `min_rows` rows) and queue the full one for flush.
    /// Called with the commit lock held.
    /// A WAL error here stops the shard (the caller calls `fail` after dropping the lock).
    pub(super) fn freeze(&self, st: &mut super::CommitState, min_rows: usize) -> Result<()> {
        let cap = memtable::capacity_for(&self.spec, self.opts.memtable_bytes).max(min_rows);
        let id = self
            .next_container
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let fresh = Arc::new(Memtable::new(id, self.spec, cap));
        let old = std::mem::replace(&mut st.active, fresh.clone());
        {
            let mut cur = self.current.write();
            let view = cur.view.with_memtable(fresh);
            cur.view = Arc::new(if old.is_empty() {
                view.replace(old.container, None)
            } else {
                view
            });
        }
        if !old.is_empty() {
            st.frozen.push_back(old);
            if let Some(wal) = self.wal.get() {
                wal.rotate()?;
            }
            self.wake_background();
        }
        Ok(())
    }

    fn apply_upsert(&self, a: Assigned, points: Vec<Point>) -> Result<u64> {
        let m = &a.memtable;
        let keys: Vec<Key> = points.iter().map(|p| p.key.clone()).collect();
        let insert =
            |(i, p): (usize, Point)| m.insert(a.first_row + i as u32, a.first_seq + i as u64, p);
        if points.len() >= PARALLEL_INSERT {
            points.into_par_iter().enumerate().for_each(insert);
        } else {
            points.into_iter().enumerate().for_each(insert);
        }
        let last = a.first_seq + keys.len() as u64 - 1;
        self.publish(a.first_seq, last, |view, pk| {
            for (i, key) in keys.iter().enumerate() {
                let loc = Loc {
                    container: m.container,
                    row: a.first_row + i as u32,
                };
                if let Some(old) = pk.insert(key, loc) {
                    mark_deleted(view, old, a.first_seq + i as u64);
                }
            }
        })?;
        Ok(last)
    }

    fn apply_delete(&self, a: Assigned, keys: Vec<Key>) -> Result<u64> {
        let last = a.first_seq + keys.len() as u64 - 1;
        self.publish(a.first_seq, last, |view, pk| {
            for (i, key) in keys.into_iter().enumerate() {
                let seq = a.first_seq + i as u64;
                if let Some(old) = pk.remove(&key) {
                    mark_deleted(view, old, seq);
                    a.memtable.add_tombstone(key, seq);
                }
            }
        })?;
        Ok(last)
    }

    /// Run `f` (index updates) for sequence numbers `first..=last` after every earlier
    /// number has been published, then make them visible.
    fn publish(
        &self,
        first: u64,
        last: u64,
        f: impl FnOnce(&super::View, &mut crate::pk_index::PkIndex),
    ) -> Result<()> {
        let mut p = self.published.lock();
        while *p + 1 != first {
            if *p >= first {
                return Err(Error::new(
                    crate::ErrorKind::Corrupt,
                    format!("sequence number {first} published twice"),
                ));
            }
            if self.status.load(std::sync::atomic::Ordering::Acquire) != super::OPEN {
                self.check_open()?;
            }
            self.published_cv.wait(&mut p);
        }
        let view = self.current.read().view.clone();
        f(&view, &mut self.pk.write());
        self.current.write().seq = last;
        *p = last;
        self.published_cv.notify_all();
        Ok(())
    }

    /// Wait until every sequence number up to `seq` is published.
    pub(super) fn wait_published(&self, seq: u64) -> Result<()> {
        let mut p = self.published.lock();
        while *p < seq {
            self.check_open()?;
            self.published_cv.wait(&mut p);
        }
        Ok(())
    }
}

fn mark_deleted(view: &super::View, loc: Loc, seq: u64) {
    if let Some(c) = view.get(loc.container) {
        c.deleted().mark(loc.row, seq);
    } else {
        tracing::error!(
            container = loc.container,
            "primary-key index points at a container not in the view"
        );
    }
}
