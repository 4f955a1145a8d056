//! Compaction: merge segments into one, dropping deleted and superseded rows, without
//! stopping reads or writes.
//!
//! Everything is built off to the side from a snapshot: the merged segment, and the new
//! primary-key index (a copy of the live one with the merged rows' locations rewritten,
//! plus the deletion marks carried over). Meanwhile the live index journals its changes.
//! Publishing then holds the publish lock (writes wait, reads do not) only to replay that
//! journal onto the copy, and the read locks only to swap the index and the view.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use super::commit::Added;
use super::policy::{MergePolicy, SegmentSize};
use super::view::Container;
use crate::deletions::LIVE;
use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::index::{self, SliceVectors};
use crate::manifest::{self, Obsolete, SegmentMeta};
use crate::paths;
use crate::pk_index::{Change, Loc, PkIndex};
use crate::segment::{self, LazyReads, Segment, SegmentWriter};
use crate::types::Key;

/// A merge extends the graph of an input that keeps at least this share of its rows
/// (see [`extension_base`]); links to the dropped rows are repaired, which keeps recall
/// for a few dropped rows (`tests/index_extend.rs` drops 10 %), not for many.
const EXTEND_MIN_KEPT: f64 = 0.9;

/// Marks "no row in the merged segment" in a [`Remap`].
const GONE: u32 = u32::MAX;

/// Where each row of the merged inputs went in the new segment.
struct Remap {
    /// Container id of each input.
    containers: Vec<u32>,
    /// Per input: old row → new row, or [`GONE`].
    rows: Vec<Vec<u32>>,
}

impl Remap {
    /// The new row of `loc`, if `loc` is in an input (`Some(GONE)`: dropped).
    fn get(&self, loc: Loc) -> Option<(usize, u32)> {
        let i = self.containers.iter().position(|c| *c == loc.container)?;
        let new = self.rows[i].get(loc.row as usize).copied().unwrap_or(GONE);
        Some((i, new))
    }
}

/// The merged segment and what publishing it needs.
struct Merged {
    seg: Arc<Segment>,
    meta: SegmentMeta,
    remap: Remap,
    /// Per new row: (input, old row).
    origin: Vec<(usize, u32)>,
}

/// Stops the live index's journal if a compaction gives up half way.
struct JournalGuard<'a> {
    inner: &'a Inner,
    armed: bool,
}

impl Drop for JournalGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.pk.write().take_journal();
        }
    }
}

/// Sets `Inner::merging` while a compaction runs.
struct Merging<'a>(&'a Inner);

impl<'a> Merging<'a> {
    fn start(inner: &'a Inner) -> Self {
        inner.merging.store(true, Ordering::Relaxed);
        Merging(inner)
    }
}

impl Drop for Merging<'_> {
    fn drop(&mut self) {
        self.0.merging.store(false, Ordering::Relaxed);
    }
}

impl Inner {
    /// Merge segments. `force`: all of them; otherwise only when the policy says so.
    /// Returns whether anything was merged.
    pub(super) fn compact(&self, force: bool) -> Result<bool> {
        if self.read_only {
            return Err(Error::read_only());
        }
        self.check_writable()?;
        let _g = self.compact_lock.lock();
        let _merging = Merging::start(self);
        let (view, _) = self.snapshot();
        let all: Vec<Arc<Segment>> = view.segments().cloned().collect();
        drop(view);
        // Drop only rows that writes already in segments overwrote or deleted: every
        // manifest version must hold exactly the writes up to its `flushed_seq` (readers
        // and checkpoints use it without the WAL). A row a memtable write superseded stays,
        // marked deleted, until a compaction after that write's flush.
        let snap = self.manifest.lock().manifest.flushed_seq;
        let inputs = if force {
            all.clone()
        } else {
            let sizes: Vec<SegmentSize> = all.iter().map(|s| SegmentSize::of(s, snap)).collect();
            MergePolicy::from_options(&self.opts)
                .plan(&sizes)
                .into_iter()
                .map(|i| all[i].clone())
                .collect()
        };
        let dirty = inputs.iter().any(|s| {
            !s.tombstones().is_empty()
                || s.deleted.live_count_at(s.rows() as usize, snap) < s.rows() as usize
        });
        if inputs.is_empty() || (inputs.len() == 1 && !dirty) {
            return Ok(false);
        }
        let whole = inputs.len() == all.len();
        let merged = self.merge(&inputs, snap, whole)?;
        let input_ids: Vec<u64> = inputs.iter().map(|s| s.id).collect();
        let input_containers: Vec<u32> = inputs.iter().map(|s| s.container).collect();

        // The new key index, off to the side; the live one journals what changes meanwhile.
        let mut journal = JournalGuard {
            inner: self,
            armed: true,
        };
        let mut new_pk = match &merged {
            Some(m) => Some(self.relocated_index(m, &inputs)?),
            None => None,
        };

        let now = manifest::now_ms();
        let obsolete = input_ids.iter().map(|id| Obsolete {
            path: paths::segment(*id),
            since_ms: now,
        });
        let added = merged.as_ref().map(|m| Added::Merged {
            id: m.meta.id,
            origin: &m.origin,
            inputs: &inputs,
        });
        let change = |man: &mut manifest::Manifest| {
            man.segments.retain(|m| !input_ids.contains(&m.id));
            if let Some(m) = &merged {
                man.segments.push(m.meta.clone());
            }
            man.obsolete.extend(obsolete);
        };
        self.commit_manifest_adding(change, added)?;
        // Committed but not published: an injected error stops the handle (reopen recovers).
        if let Err(e) = failpoints::check(failpoints::COMPACTION_PUBLISH_BEFORE) {
            self.fail(&e);
            return Err(e);
        }

        // Publish: writes wait from here, reads only for the two pointer swaps.
        let published = self.published.lock();
        let changes = self.pk.write().take_journal();
        journal.armed = false;
        if let (Some(m), Some(pk)) = (&merged, &mut new_pk) {
            carry_over(m, &inputs, pk, &changes);
        }
        {
            let mut pk = self.pk.write();
            let mut cur = self.current.write();
            if let Some(new_pk) = &mut new_pk {
                std::mem::swap(&mut *pk, new_pk);
            }
            cur.view = Arc::new(match &merged {
                Some(m) => cur
                    .view
                    .swap(&input_containers, Container::Seg(m.seg.clone())),
                None => {
                    let mut v = (*cur.view).clone();
                    v.containers.retain(|c| !input_containers.contains(&c.id()));
                    v
                }
            });
            // Counted with the swap, under the view's lock: `stats` reads the view and
            // then the counter, so it never shows the merged view with the count before.
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
        drop(published);
        // The old index (now in `new_pk`) is freed here, outside every lock.
        drop(new_pk);
        fail_point!(failpoints::COMPACTION_PUBLISH_AFTER);
        Ok(true)
    }

    /// Write one segment of the rows of `inputs` visible at `snap` (none: `None`).
    fn merge(&self, inputs: &[Arc<Segment>], snap: u64, whole: bool) -> Result<Option<Merged>> {
        // A merge reads every row: lazy inputs are read whole first (same containers and
        // deletion marks, so the remapping below is the inputs').
        let inputs = &inputs
            .iter()
            .map(Segment::whole)
            .collect::<Result<Vec<_>>>()?[..];
        let mut remap = Remap {
            containers: inputs.iter().map(|s| s.container).collect(),
            rows: inputs
                .iter()
                .map(|s| vec![GONE; s.rows() as usize])
                .collect(),
        };
        // The graph of the largest input whose rows are all kept is extended with the
        // other rows instead of rebuilt (see `index::extend`): its rows go first, in order.
        let base = extension_base(inputs, snap);
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        if let Some(b) = base {
            order.retain(|&i| i != b);
            order.insert(0, b);
        }
        let mut origin: Vec<(usize, u32)> = Vec::new();
        for &i in &order {
            let s = &inputs[i];
            for r in (0..s.rows()).filter(|r| s.visible(*r, snap)) {
                remap.rows[i][r as usize] = origin.len() as u32;
                origin.push((i, r));
            }
        }
        let dim = self.spec.dim;
        let mut vectors = Vec::with_capacity(origin.len() * dim);
        for (i, r) in &origin {
            vectors.extend_from_slice(&inputs[*i].vector(*r)?);
        }
        let rows = origin.len() as u32;
        let all = SliceVectors {
            data: &vectors,
            dim,
        };
        let (params, metric) = (self.spec.index, self.spec.metric);
        let extended = base.and_then(|b| {
            let kept: Vec<u32> = origin
                .iter()
                .take_while(|(i, _)| *i == b)
                .map(|(_, r)| *r)
                .collect();
            inputs[b].extend_index(params, &kept, rows, &all)
                .inspect_err(|e| {
                    tracing::warn!(segment = %inputs[b].name, error = %e, "cannot extend the segment's graph; rebuilding");
                })
                .ok()
        });
        let index = match extended {
            Some(index) => index,
            None => index::build(params, metric, dim, rows, &all),
        };
        let mut w = SegmentWriter::new(dim, self.spec.metric, origin.len());
        for (row, (i, r)) in origin.iter().enumerate() {
            let s = &inputs[*i];
            w.push(
                &vectors[row * dim..(row + 1) * dim],
                s.seq(*r),
                &s.key(*r),
                &s.metadata(*r)?,
                &s.payload(*r)?,
            );
        }
        drop(vectors);
        let tombstones = if whole {
            Vec::new()
        } else {
            merge_tombstones(inputs)
        };
        let rows = w.rows();
        if rows == 0 && tombstones.is_empty() {
            return Ok(None);
        }
        let max_seq = inputs.iter().map(|s| s.max_seq()).max().unwrap_or(0);
        let bytes = w
            .finish(self.opts.segment_format, max_seq, &tombstones, index)
            .map_err(|e| Error::new(ErrorKind::Io, format!("laying out a segment: {e}")))?;
        let (size, tail_bytes) = (bytes.len() as u64, segment::tail_bytes(&bytes));
        let id = self.write_segment(bytes)?;
        let container = self.next_container.fetch_add(1, Ordering::Relaxed);
        let meta = SegmentMeta {
            id,
            rows,
            bytes: size,
            max_seq,
            tail_bytes,
        };
        let seg = Arc::new(Segment::open(
            &self.storage,
            &meta,
            container,
            self.spec,
            None,
            LazyReads::from(&self.opts),
        )?);
        Ok(Some(Merged {
            seg,
            meta,
            remap,
            origin,
        }))
    }

    /// Start the live index's journal and copy the index with every location in an input
    /// rewritten to the merged segment; carry the deletion marks over. Reads go on; writes
    /// wait only while the index is copied.
    fn relocated_index(&self, m: &Merged, inputs: &[Arc<Segment>]) -> Result<PkIndex> {
        let mut copy = {
            let mut live = self.pk.write();
            live.start_journal();
            let live = parking_lot::RwLockWriteGuard::downgrade(live);
            live.snapshot()
        };
        copy.relocate(|loc| match m.remap.get(loc) {
            None => Ok(None),
            Some((_, GONE)) => Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{}: the key index points at row {} of container {}, which compaction found dead",
                    self.storage.location(),
                    loc.row,
                    loc.container
                ),
            )),
            Some((_, row)) => Ok(Some(Loc {
                container: m.seg.container,
                row,
            })),
        })?;
        // Marks set before the journal started; later ones arrive through the journal.
        for (row, (i, r)) in m.origin.iter().enumerate() {
            let d = inputs[*i].deleted.get(*r);
            if d != LIVE {
                m.seg.deleted.mark(row as u32, d);
            }
        }
        Ok(copy)
    }
}

/// The input whose graph a merge extends: the one with the most rows kept (visible at
/// `snap`) among those that keep at least [`EXTEND_MIN_KEPT`] of their rows. Extending
/// costs the insertion of the other rows (plus repairing the links of rows that pointed
/// at dropped ones), so any such input will do; a graph that loses more is rebuilt.
fn extension_base(inputs: &[Arc<Segment>], snap: u64) -> Option<usize> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i,
                s.rows(),
                (0..s.rows()).filter(|r| s.visible(*r, snap)).count(),
            )
        })
        .filter(|&(_, rows, kept)| kept > 0 && kept as f64 >= EXTEND_MIN_KEPT * f64::from(rows))
        .max_by_key(|&(i, _, kept)| (kept, std::cmp::Reverse(i)))
        .map(|(i, _, _)| i)
}

/// Replay the live index's changes since the copy onto it: the newest locations, and the
/// deletion marks writers set on merged rows meanwhile. Called with publishing paused.
fn carry_over(m: &Merged, inputs: &[Arc<Segment>], pk: &mut PkIndex, changes: &[Change]) {
    for c in changes {
        pk.apply(c);
        if let Some(old) = c.old
            && let Some((i, row)) = m.remap.get(old)
            && row != GONE
        {
            let d = inputs[i].deleted.get(old.row);
            if d != LIVE {
                m.seg.deleted.mark(row, d);
            }
        }
    }
}

/// Tombstones of merged segments, one per key (the newest).
fn merge_tombstones(inputs: &[Arc<Segment>]) -> Vec<(Key, u64)> {
    let mut by_key: std::collections::BTreeMap<Key, u64> = std::collections::BTreeMap::new();
    for s in inputs {
        for (k, seq) in s.tombstones() {
            let e = by_key.entry(k.clone()).or_insert(*seq);
            *e = (*e).max(*seq);
        }
    }
    by_key.into_iter().collect()
}
