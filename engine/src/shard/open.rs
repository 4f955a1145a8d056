//! Opening a shard: storage, lock, manifest (create or claim the next writer epoch),
//! segments, primary-key index, WAL replay, and the WAL claim that fences older writers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::recover::{self, Recovery, WalRepair};
use super::view::{Container, View};
use super::{BgSignal, CommitState, Current, Inner, ManifestState, OPEN, Shard};
use crate::commit::CommitStore;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest, Obsolete};
use crate::memtable::{self, Memtable};
use crate::options::{Options, ShardSpec};
use crate::paths;
use crate::pk_index::{Loc, PkIndex};
use crate::segment::{LazyReads, Segment};
use crate::storage::{self, Storage};
use crate::types::Key;

/// How `open` treats a missing or existing shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Create,
    Open,
    OpenOrCreate,
}

/// Attempts at claiming an epoch or a WAL unit before giving up (each failure means
/// another writer moved at the same moment).
const CLAIM_ATTEMPTS: usize = 32;

pub(super) fn open(
    location: &str,
    spec: Option<ShardSpec>,
    mode: Mode,
    opts: Options,
    recovery: Recovery,
) -> Result<(Shard, WalRepair)> {
    opts.validate()?;
    if let Some(s) = &spec {
        s.validate()?;
    }
    if location.is_empty() {
        return Err(Error::invalid("empty shard location"));
    }
    let storage = storage::open_storage(location, &opts.storage_options())?;
    let commits = storage::open_commit_store(
        opts.commit_store.as_deref(),
        storage.clone(),
        storage.location(),
    )?;
    open_on(storage, commits, spec, mode, opts, recovery)
}

/// Open on a storage and commit store the caller built.
pub(super) fn open_on(
    storage: Arc<dyn Storage>,
    commits: Arc<dyn CommitStore>,
    spec: Option<ShardSpec>,
    mode: Mode,
    opts: Options,
    recovery: Recovery,
) -> Result<(Shard, WalRepair)> {
    opts.validate()?;
    if let Some(s) = &spec {
        s.validate()?;
    }
    if opts.read_only && recovery != Recovery::Strict {
        return Err(Error::invalid(format!(
            "{}: accepting WAL loss needs a writer, not a read-only open",
            storage.location()
        )));
    }
    let lock = if opts.read_only {
        None
    } else {
        storage.lock_exclusive()?
    };
    if !opts.read_only && !storage.supports_append() {
        storage::check_conditional_create(storage.as_ref())?;
    }
    let opts = Options {
        segment_format: opts.segment_format.resolve(storage.reads_in_blocks()),
        ..opts
    };
    let (mut version, mut manifest) =
        load_or_create(commits.as_ref(), storage.as_ref(), spec, mode, &opts)?;
    if !opts.read_only {
        (version, manifest) = claim_epoch(
            commits.as_ref(),
            storage.location(),
            version,
            manifest,
            opts.epoch,
        )?;
    }
    let spec = manifest.spec;
    let epoch = manifest.writer_epoch;
    let segments = open_segments(&storage, &manifest, spec, 1, LazyReads::from(&opts))?;
    seqs_for_snapshots(&segments, manifest.flushed_seq)?;
    // Readers take the version's deletion vectors and build the key index when first
    // asked; a writer resolves every key, which also gives each mark its exact sequence
    // number.
    let pending = match opts.read_only {
        true => pending_keys(&segments, &manifest),
        false => None,
    };
    let pk = match pending {
        Some(_) => PkIndex::default(),
        None => resolve(&segments)?,
    };
    let keys_pending = pending.is_some();
    let next_container = segments.len() as u32 + 1;
    let active = Arc::new(Memtable::new(
        next_container,
        spec,
        memtable::capacity_for(&spec, opts.memtable_bytes),
    ));
    let mut containers: Vec<Container> = segments.iter().cloned().map(Container::Seg).collect();
    containers.push(Container::Mem(active.clone()));
    let flushed = manifest.flushed_seq;
    let read_only = opts.read_only;
    let inner = Arc::new(Inner {
        storage: storage.clone(),
        commits,
        spec,
        read_only,
        lock: Mutex::new(lock),
        current: RwLock::new(Current {
            view: Arc::new(View { containers }),
            seq: flushed,
        }),
        commit: Mutex::new(CommitState {
            next_seq: flushed + 1,
            active,
            frozen: VecDeque::new(),
        }),
        room: Condvar::new(),
        wal: OnceLock::new(),
        published: Mutex::new(flushed),
        published_cv: Condvar::new(),
        pk: RwLock::new(pk),
        pending_keys: Mutex::new(pending),
        keys_pending: AtomicBool::new(keys_pending),
        manifest: Mutex::new(ManifestState { version, manifest }),
        flush_lock: Mutex::new(()),
        compact_lock: Mutex::new(()),
        next_container: AtomicU32::new(next_container + 1),
        // Unique per writer session: the manifest version this session claimed.
        next_segment: AtomicU64::new(version << 32 | 1),
        epoch: AtomicU64::new(epoch),
        manifest_version: AtomicU64::new(version),
        flushed_seq: AtomicU64::new(flushed),
        status: AtomicU8::new(OPEN),
        failure: Mutex::new(None),
        bg: Arc::new(BgSignal::default()),
        bg_thread: Mutex::new(None),
        flushes: AtomicU64::new(0),
        compactions: AtomicU64::new(0),
        merging: std::sync::atomic::AtomicBool::new(false),
        opened: std::time::Instant::now(),
        last_write_ms: AtomicU64::new(0),
        writes_running: std::sync::atomic::AtomicUsize::new(0),
        pins: Mutex::new(Default::default()),
        opts,
    });
    let mut repair = WalRepair::default();
    if !read_only {
        repair = recover::recover(&inner, recovery)?;
        note_orphans(&inner)?;
        if !repair.is_empty() {
            recover::settle_loss(&inner)?;
        }
    }
    super::maintain::spawn_background(&inner);
    Ok((Shard { inner }, repair))
}

fn load_or_create(
    commits: &dyn CommitStore,
    storage: &dyn Storage,
    spec: Option<ShardSpec>,
    mode: Mode,
    opts: &Options,
) -> Result<(u64, Manifest)> {
    let location = storage.location();
    for _ in 0..CLAIM_ATTEMPTS {
        if let Some((version, m)) = manifest::load_latest(commits, location)? {
            if mode == Mode::Create {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("a shard already exists at {location}"),
                ));
            }
            if let Some(s) = spec
                && (s.dim != m.spec.dim || s.metric != m.spec.metric)
            {
                return Err(Error::invalid(format!(
                    "the shard at {location} is {}-d {}, not {}-d {}",
                    m.spec.dim, m.spec.metric, s.dim, s.metric
                )));
            }
            return Ok((version, m));
        }
        refuse_incomplete(storage)?;
        let Some(spec) = spec.filter(|_| mode != Mode::Open && !opts.read_only) else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no shard at {location} (create one first)"),
            ));
        };
        if commits.create(1, Manifest::new(spec).encode())? {
            return Ok((1, Manifest::new(spec)));
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("{location}: could not read or create the manifest"),
    ))
}

/// Segment files without any manifest: a checkpoint (or a copy) that stopped before its
/// manifest, never a shard — a manifest is created before the first segment.
fn refuse_incomplete(storage: &dyn Storage) -> Result<()> {
    let segments = storage.list(paths::SEGMENT_DIR)?;
    if segments.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Corrupt,
        format!(
            "{}: incomplete checkpoint or shard: {} segment files but no manifest \
             ({}/ is empty or missing); it was never completed and does not open",
            storage.location(),
            segments.len(),
            paths::MANIFEST_DIR
        ),
    ))
}

/// Create the next manifest version carrying the next writer epoch (or the requested one).
fn claim_epoch(
    commits: &dyn CommitStore,
    location: &str,
    mut version: u64,
    mut m: Manifest,
    requested: Option<u64>,
) -> Result<(u64, Manifest)> {
    for _ in 0..CLAIM_ATTEMPTS {
        // An assigned epoch equal to the current one is the same assignment reopening (a
        // restarted owner): it claims a new manifest version, which fences any older
        // process of that assignment. A lower one is stale.
        let want = requested.unwrap_or(m.writer_epoch + 1);
        if want < m.writer_epoch || (want == m.writer_epoch && requested.is_none()) {
            return Err(Error::new(
                ErrorKind::Fenced,
                format!(
                    "the shard at {location} is held by writer epoch {}; epoch {want} is stale",
                    m.writer_epoch
                ),
            ));
        }
        let mut next = m.clone();
        next.writer_epoch = want;
        next.written_ms = manifest::now_ms();
        next.writer_nonce = rand::random();
        if commits.create(version + 1, next.encode())? {
            return Ok((version + 1, next));
        }
        (version, m) = manifest::load_latest(commits, location)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("the shard at {location} disappeared"),
            )
        })?;
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("{location}: too many writers racing to open the shard"),
    ))
}

/// Open the manifest's segments with container ids from `first_container`.
pub(super) fn open_segments(
    storage: &Arc<dyn Storage>,
    m: &Manifest,
    spec: ShardSpec,
    first_container: u32,
    reads: LazyReads,
) -> Result<Vec<Arc<Segment>>> {
    m.segments
        .par_iter()
        .enumerate()
        .map(|(i, meta)| {
            let container = first_container + i as u32;
            Segment::open(storage, meta, container, spec, None, reads).map(Arc::new)
        })
        .collect()
}

/// A reader's lazy segments leave their sequence numbers in the store, and a search needs
/// them only in a segment holding writes after its snapshot — after the version's
/// `flushed_seq`, which no segment of the version does. Read them for any that does.
pub(super) fn seqs_for_snapshots(segments: &[Arc<Segment>], flushed_seq: u64) -> Result<()> {
    for s in segments.iter().filter(|s| s.max_seq() > flushed_seq) {
        s.load_seqs()?;
    }
    Ok(())
}

/// Build the primary-key index over segments: the highest sequence number of a key wins,
/// a newer tombstone removes it; every loser is marked deleted by its winner's number.
/// Reads first the sequence numbers a reader's lazy segments left in the store.
pub(super) fn resolve(segments: &[Arc<Segment>]) -> Result<PkIndex> {
    for s in segments {
        s.load_seqs()?;
    }
    // Every row by key. The sort is stable, so each key's rows stay in segment order and
    // the winner and the marks are those of taking the rows one by one in that order;
    // the index is then built in bulk (inserting a million keys one by one into the
    // trees was most of a large shard's open).
    let total = segments.iter().map(|s| s.rows() as usize).sum();
    let mut ints: Vec<(u64, u32, u32)> = Vec::with_capacity(total);
    let mut strs: Vec<(Box<str>, u32, u32)> = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        for row in 0..s.rows() {
            match s.key(row) {
                Key::Int(k) => ints.push((k, i as u32, row)),
                Key::Str(k) => strs.push((k.into_boxed_str(), i as u32, row)),
            }
        }
    }
    let mut pk = match PkIndex::from_parts(winners(ints, segments), winners(strs, segments)) {
        Ok(pk) => pk,
        Err(key) => unreachable!("key {key} was grouped once"),
    };
    apply_tombstones(segments, &mut pk);
    Ok(pk)
}

/// A segment's tombstone newer than its key's live row removes the key and marks the row
/// deleted by the tombstone's number.
fn apply_tombstones(segments: &[Arc<Segment>], pk: &mut PkIndex) {
    let by_container: HashMap<u32, &Segment> =
        segments.iter().map(|s| (s.container, s.as_ref())).collect();
    for s in segments {
        for (key, tseq) in s.tombstones() {
            if let Some(loc) = pk.get(key) {
                let ls = by_container[&loc.container];
                if *tseq > ls.seq(loc.row) {
                    ls.deleted.mark(loc.row, *tseq);
                    pk.remove(key);
                }
            }
        }
    }
}

/// The live row of each key among `rows` (key, segment index, row), marking each other
/// row deleted by the sequence number of the row that replaced it: as taking the rows one
/// by one in segment order, where a row replaces the live one only with a higher number.
fn winners<K: Ord>(mut rows: Vec<(K, u32, u32)>, segments: &[Arc<Segment>]) -> Vec<(K, Loc)> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(rows.len());
    let win = |(key, seg, row, _): (K, u32, u32, u64)| {
        let container = segments[seg as usize].container;
        (key, Loc { container, row })
    };
    let mut current: Option<(K, u32, u32, u64)> = None;
    for (key, seg, row) in rows {
        let seq = segments[seg as usize].seq(row);
        match &mut current {
            Some((k, wseg, wrow, wseq)) if *k == key => {
                if seq > *wseq {
                    segments[*wseg as usize].deleted.mark(*wrow, seq);
                    (*wseg, *wrow, *wseq) = (seg, row, seq);
                } else {
                    segments[seg as usize].deleted.mark(row, *wseq);
                }
            }
            _ => out.extend(current.replace((key, seg, row, seq)).map(win)),
        }
    }
    out.extend(current.map(win));
    out
}

/// What a reader's primary-key index is built from: the segments and the deletion
/// vectors of their version. Searches need only the deletion marks, which
/// [`pending_keys`] sets, so a read-only open leaves the index to the first `get` or
/// `scan` (at a million rows the index is 16 MB, and building it a share of the open).
pub(super) struct PendingKeys {
    segments: Vec<Arc<Segment>>,
    deletes: BTreeMap<u64, RoaringBitmap>,
    flushed_seq: u64,
    /// Rows live in the version: the index's length once built.
    pub live: u64,
}

impl PendingKeys {
    /// The index of the live rows. A key live twice means the vectors missed a mark
    /// (searches until now counted that row live too): logged, and the keys are resolved
    /// instead, which marks the rows the vectors missed (an error only when the sequence
    /// numbers that needs cannot be read).
    pub(super) fn build(&self) -> Result<PkIndex> {
        let empty = RoaringBitmap::new();
        let live = self.segments.iter().flat_map(|s| {
            let dead = self.deletes.get(&s.id).unwrap_or(&empty);
            (0..s.rows()).filter(|r| !dead.contains(*r)).map(|row| {
                let loc = Loc {
                    container: s.container,
                    row,
                };
                (s.key(row), loc)
            })
        });
        match PkIndex::from_entries(live, self.live as usize) {
            Ok(pk) => Ok(pk),
            Err(key) => {
                tracing::warn!(
                    key = %key,
                    flushed_seq = self.flushed_seq,
                    "deletion vectors leave a key live twice; resolving keys"
                );
                resolve(&self.segments)
            }
        }
    }
}

/// The deletion marks of `segments` from the deletion vectors of `m`, at `m.flushed_seq`
/// (every snapshot of the version is at or after it), and what the reader's key index is
/// built from. `None`, with nothing marked, when `m` has no vectors or they do not fit the
/// segments (a row past a segment's end, a vector of a segment not in `m`): then
/// [`resolve`] builds the index and the marks.
pub(super) fn pending_keys(segments: &[Arc<Segment>], m: &Manifest) -> Option<PendingKeys> {
    let deletes = m.deletes.as_ref()?;
    let misfit = |why: String| {
        tracing::warn!(
            why,
            flushed_seq = m.flushed_seq,
            "deletion vectors do not fit the segments; resolving keys"
        );
        None
    };
    if let Some(id) = deletes
        .keys()
        .find(|id| !segments.iter().any(|s| s.id == **id))
    {
        return misfit(format!(
            "vector of segment {id}, which the version does not list"
        ));
    }
    for s in segments {
        if let Some(dead) = deletes.get(&s.id)
            && dead.max().is_some_and(|r| r >= s.rows())
        {
            return misfit(format!("segment {} has {} rows", s.id, s.rows()));
        }
    }
    let live = segments
        .iter()
        .map(|s| u64::from(s.rows()) - deletes.get(&s.id).map_or(0, |d| d.len()))
        .sum();
    for s in segments {
        for row in deletes.get(&s.id).into_iter().flatten() {
            s.deleted.mark(row, m.flushed_seq);
        }
    }
    Some(PendingKeys {
        segments: segments.to_vec(),
        deletes: deletes.clone(),
        flushed_seq: m.flushed_seq,
        live,
    })
}

/// Segment files no manifest references (a crash between writing a segment and committing
/// it, or a fenced writer's last flush) become obsolete: deleted after the grace period.
fn note_orphans(inner: &Inner) -> Result<()> {
    let mut ms = inner.manifest.lock();
    let known: std::collections::HashSet<String> = ms
        .manifest
        .segments
        .iter()
        .map(|s| paths::segment(s.id))
        .chain(ms.manifest.obsolete.iter().map(|o| o.path.clone()))
        .collect();
    let now = manifest::now_ms();
    for o in inner.storage.list(paths::SEGMENT_DIR)? {
        if !known.contains(&o.path) {
            ms.manifest.obsolete.push(Obsolete {
                path: o.path,
                since_ms: now,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::StorageCommitStore;
    use crate::storage::LocalStorage;
    use crate::types::{Metric, Point};

    fn opts() -> Options {
        Options {
            background: false,
            max_segments: 100,
            ..Options::default()
        }
    }

    /// Dead rows of every segment, and every key with its location.
    fn state(
        segments: &[Arc<Segment>],
        pk: &PkIndex,
        seq: u64,
    ) -> (Vec<Vec<u32>>, Vec<(Key, Loc)>) {
        let dead = segments
            .iter()
            .map(|s| s.deleted.dead_at(s.rows(), seq).iter().collect())
            .collect();
        (dead, pk.page(None, usize::MAX))
    }

    /// The primary-key build before it was done in bulk: rows one by one, segment by
    /// segment (the reference for [`resolve`]; the tombstone pass is the same function).
    fn resolve_one_by_one(segments: &[Arc<Segment>]) -> PkIndex {
        let by_container: HashMap<u32, &Segment> =
            segments.iter().map(|s| (s.container, s.as_ref())).collect();
        let mut pk = PkIndex::default();
        for s in segments {
            for row in 0..s.rows() {
                let (key, seq) = (s.key(row), s.seq(row));
                let loc = Loc {
                    container: s.container,
                    row,
                };
                match pk.get(&key) {
                    None => {
                        pk.insert(&key, loc);
                    }
                    Some(old) => {
                        let os = by_container[&old.container];
                        let old_seq = os.seq(old.row);
                        if seq > old_seq {
                            os.deleted.mark(old.row, seq);
                            pk.insert(&key, loc);
                        } else {
                            s.deleted.mark(row, old_seq);
                        }
                    }
                }
            }
        }
        apply_tombstones(segments, &mut pk);
        pk
    }

    /// Integer and string keys overwritten and deleted across segments written out of
    /// key order, with partial merges (so segment order is not sequence order): the bulk
    /// build gives the same index and the same deletion marks, at every sequence number,
    /// as taking the rows one by one.
    #[test]
    fn the_bulk_key_build_equals_the_one_by_one_build() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().to_str().unwrap();
        let few = Options {
            max_segments: 3,
            ..opts()
        };
        let shard = crate::Shard::create(loc, ShardSpec::new(2, Metric::L2), few).unwrap();
        let key = |i: u64| match i % 4 {
            0 => Key::Str(format!("s{}", i % 37)),
            _ => Key::Int(i * 7 % 61),
        };
        let p = |i: u64, b: u64| Point::new(key(i), vec![i as f32, b as f32]);
        for b in 0..8u64 {
            let batch: Vec<Point> = (0..40).map(|j| p((b * 13 + j * 29) % 150, b)).collect();
            // One upsert per point, so a key may repeat within a segment.
            for point in batch {
                shard.upsert(vec![point]).unwrap();
            }
            if b % 3 == 1 {
                shard
                    .delete((0..6).map(|j| key(b * 11 + j * 5)).collect())
                    .unwrap();
            }
            shard.flush().unwrap();
            if b % 3 == 2 {
                shard.compact_by_policy().unwrap();
            }
        }
        let max_seq = shard.next_seq();
        shard.close().unwrap();

        let storage = Arc::new(LocalStorage::new(loc).unwrap());
        let commits = StorageCommitStore::new(storage.clone());
        let (_, m) = manifest::load_latest(&commits, loc).unwrap().unwrap();
        assert!(m.segments.len() >= 3, "{} segments", m.segments.len());
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let open = || open_segments(&dyn_storage, &m, m.spec, 1, LazyReads::default()).unwrap();
        // In the manifest's order, and newest first (a key's later rows then lose to
        // an earlier one, as after merges that list an older segment last).
        for newest_first in [false, true] {
            let (mut bulk_segments, mut reference_segments) = (open(), open());
            if newest_first {
                bulk_segments.reverse();
                reference_segments.reverse();
            }
            let bulk = resolve(&bulk_segments).unwrap();
            let reference = resolve_one_by_one(&reference_segments);
            assert!(bulk.len() > 40, "{} live keys", bulk.len());
            for seq in 0..=max_seq {
                assert_eq!(
                    state(&bulk_segments, &bulk, seq),
                    state(&reference_segments, &reference, seq),
                    "at sequence number {seq}, newest first: {newest_first}"
                );
            }
        }
    }

    /// After overwrites and deletes across flushes and a partial merge, the current
    /// version's deletion vectors give readers exactly what resolving every key gives.
    #[test]
    fn vectors_equal_resolving_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().to_str().unwrap();
        let shard = crate::Shard::create(loc, ShardSpec::new(2, Metric::L2), opts()).unwrap();
        let p = |k: u64, b: u64| Point::new(k, vec![k as f32, b as f32]);
        for b in 0..6u64 {
            shard
                .upsert((b * 7..b * 7 + 20).map(|k| p(k, b)).collect())
                .unwrap();
            if b % 2 == 1 {
                shard
                    .delete((b * 5..b * 5 + 4).map(Key::Int).collect())
                    .unwrap();
            }
            shard.flush().unwrap();
            if b == 3 {
                assert!(shard.compact_by_policy().unwrap() || shard.stats().segments > 1);
            }
        }
        // Writes after the last flush mark rows too; they are not in the version.
        shard.upsert((0..10).map(|k| p(k, 9)).collect()).unwrap();

        let storage = Arc::new(LocalStorage::new(loc).unwrap());
        let commits = StorageCommitStore::new(storage.clone());
        let (_, m) = manifest::load_latest(&commits, loc).unwrap().unwrap();
        assert!(
            m.deletes.as_ref().is_some_and(|d| !d.is_empty()),
            "{:?}",
            m.deletes
        );
        let spec = m.spec;
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        let resolved = open_segments(&dyn_storage, &m, spec, 1, LazyReads::default()).unwrap();
        let from_keys = resolve(&resolved).unwrap();
        let loaded = open_segments(&dyn_storage, &m, spec, 1, LazyReads::default()).unwrap();
        let pending = pending_keys(&loaded, &m).expect("the vectors fit");
        assert_eq!(pending.live, from_keys.len() as u64);
        // The marks are set before the index is built: searches need only them.
        let marks =
            |segments: &[Arc<Segment>]| state(segments, &PkIndex::default(), m.flushed_seq).0;
        assert_eq!(marks(&loaded), marks(&resolved));
        let from_vecs = pending.build().unwrap();
        assert_eq!(
            state(&loaded, &from_vecs, m.flushed_seq),
            state(&resolved, &from_keys, m.flushed_seq)
        );

        // Vectors that do not fit are refused, and nothing is marked.
        let mut bad = m.clone();
        let first = m.segments[0].id;
        bad.deletes
            .as_mut()
            .unwrap()
            .insert(first, [u32::MAX - 1].into_iter().collect());
        let fresh = open_segments(&dyn_storage, &bad, spec, 1, LazyReads::default()).unwrap();
        assert!(pending_keys(&fresh, &bad).is_none());
        assert!(
            fresh
                .iter()
                .all(|s| s.deleted.dead_at(s.rows(), u64::MAX).is_empty())
        );
        // Vectors that miss marks (overwritten keys live twice) are found when the index
        // is built, which then resolves the keys: the same index and marks.
        let mut live_twice = m.clone();
        live_twice.deletes.as_mut().unwrap().clear();
        let pending = pending_keys(&fresh, &live_twice).expect("nothing to refuse yet");
        let built = pending.build().unwrap();
        assert_eq!(
            state(&fresh, &built, m.flushed_seq),
            state(&resolved, &from_keys, m.flushed_seq)
        );
        shard.close().unwrap();
    }
}
