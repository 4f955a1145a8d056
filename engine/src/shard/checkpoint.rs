//! Checkpoints: a consistent point-in-time copy of a shard at another location, which
//! opens as a shard of its own (the restore). See `docs/design/007-checkpoints.md`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Inner;
use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::manifest::{self, Manifest};
use crate::paths;
use crate::segment::Segment;
use crate::storage::{self, Storage, StorageOptions};
use crate::types::Key;

/// What a checkpoint wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckpointSummary {
    /// Where the checkpoint is (open it there to restore).
    pub location: String,
    /// Live points in the checkpoint.
    pub points: u64,
    /// Bytes of segment files copied.
    pub bytes: u64,
    /// Segment files copied.
    pub segments: u64,
    /// Every write with a sequence number up to this one is in the checkpoint, none after.
    pub seq: u64,
    /// Files hard-linked or copied server-side (the rest were streamed).
    pub linked: u64,
    /// Wall time of the whole checkpoint, the flush included.
    #[serde(serialize_with = "as_secs")]
    pub duration: Duration,
    /// CRC32C of the checkpoint's manifest file (which lists every segment with its size;
    /// each segment carries its own checksum): [`restore_checkpoint`] checks it.
    pub manifest_crc32c: u32,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Segment paths a running checkpoint still copies; garbage collection skips them.
#[derive(Default)]
pub(super) struct Pins {
    counts: HashMap<String, usize>,
}

impl Pins {
    pub(super) fn contains(&self, path: &str) -> bool {
        self.counts.contains_key(path)
    }
}

/// Unpins its paths when the checkpoint ends, however it ends.
struct PinGuard<'a> {
    inner: &'a Inner,
    paths: Vec<String>,
}

impl Drop for PinGuard<'_> {
    fn drop(&mut self) {
        let mut pins = self.inner.pins.lock();
        for p in &self.paths {
            if let Some(n) = pins.counts.get_mut(p) {
                *n -= 1;
                if *n == 0 {
                    pins.counts.remove(p);
                }
            }
        }
    }
}

impl Inner {
    pub(super) fn checkpoint(&self, dest: &str) -> Result<CheckpointSummary> {
        let started = Instant::now();
        self.check_open()?;
        if dest.is_empty() {
            return Err(Error::invalid("empty checkpoint location"));
        }
        let target = storage::open_storage(dest, &StorageOptions::default())?;
        if target.location() == self.storage.location() {
            return Err(Error::invalid(format!(
                "cannot checkpoint {} onto itself",
                self.storage.location()
            )));
        }
        refuse_existing(target.as_ref())?;
        if !self.read_only {
            self.flush()?;
        }
        let (version, manifest, segments, _pins) = self.pinned_snapshot()?;
        fail_point!(failpoints::CHECKPOINT_COPY_BEFORE);
        let (mut bytes, mut linked) = (0, 0);
        for meta in &manifest.segments {
            if target.copy_from(self.storage.as_ref(), &paths::segment(meta.id))? {
                linked += 1;
            }
            bytes += meta.bytes;
        }
        let mut m = manifest.clone();
        m.obsolete.clear();
        m.written_ms = manifest::now_ms();
        m.writer_nonce = rand::random();
        fail_point!(failpoints::CHECKPOINT_MANIFEST_BEFORE);
        let encoded = m.encode();
        let manifest_crc32c = crc32c::crc32c(&encoded);
        if !target.put_if_absent(&paths::manifest(version), encoded)? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{}: another checkpoint wrote a manifest here meanwhile",
                    target.location()
                ),
            ));
        }
        Ok(CheckpointSummary {
            location: target.location().to_string(),
            points: live_points(&segments)?,
            bytes,
            segments: manifest.segments.len() as u64,
            seq: manifest.flushed_seq,
            linked,
            duration: started.elapsed(),
            manifest_crc32c,
        })
    }

    /// The current manifest, its open segments and a pin on their files, taken while no
    /// flush or compaction is between its manifest commit and its view update.
    fn pinned_snapshot(&self) -> Result<(u64, Manifest, Vec<Arc<Segment>>, PinGuard<'_>)> {
        let _c = self.compact_lock.lock();
        let _f = self.flush_lock.lock();
        let ms = self.manifest.lock();
        let (view, _) = self.snapshot();
        let mut segments = Vec::with_capacity(ms.manifest.segments.len());
        for meta in &ms.manifest.segments {
            let seg = view.segments().find(|s| s.id == meta.id).ok_or_else(|| {
                Error::new(
                    ErrorKind::Io,
                    format!(
                        "{}: segment {} of manifest {} is not open",
                        self.storage.location(),
                        meta.id,
                        ms.version
                    ),
                )
            })?;
            segments.push(seg.clone());
        }
        let paths: Vec<String> = segments.iter().map(|s| paths::segment(s.id)).collect();
        let mut pins = self.pins.lock();
        for p in &paths {
            *pins.counts.entry(p.clone()).or_default() += 1;
        }
        drop(pins);
        let guard = PinGuard { inner: self, paths };
        Ok((ms.version, ms.manifest.clone(), segments, guard))
    }
}

/// A checkpoint goes only where no shard or checkpoint is.
fn refuse_existing(target: &dyn Storage) -> Result<()> {
    if !target.list(paths::MANIFEST_DIR)?.is_empty() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{}: a shard or checkpoint is already there (it has a manifest)",
                target.location()
            ),
        ));
    }
    Ok(())
}

/// Keys whose newest row is newer than their newest tombstone, over `segments` alone
/// (the checkpoint's view: no memtable, no deletion marks of later writes).
fn live_points(segments: &[Arc<Segment>]) -> Result<u64> {
    let mut newest: HashMap<Key, (u64, u64)> = HashMap::new();
    for s in segments {
        s.load_seqs()?;
        for row in 0..s.rows() {
            let e = newest.entry(s.key(row)).or_default();
            e.0 = e.0.max(s.seq(row));
        }
        for (key, seq) in s.tombstones() {
            let e = newest.entry(key.clone()).or_default();
            e.1 = e.1.max(*seq);
        }
    }
    Ok(newest.values().filter(|(row, tomb)| row > tomb).count() as u64)
}
