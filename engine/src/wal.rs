//! Write-ahead log: record framing, group commit, replay.
//!
//! A WAL *unit* is `wal/<20-digit number>`. It starts with a header (magic, format version,
//! writer epoch, unit number, CRC) followed by frames:
//!
//! ```text
//! [len u32][crc32c u32][payload: postcard(WalOp), len-8 bytes][first_seq u64]
//! ```
//!
//! The CRC covers payload and sequence number. On local disk a unit is an append-only file
//! shared by many group commits and rotated when a memtable is frozen; on an object store
//! each group commit is one unit, created conditionally, so a fenced writer's append fails.
//! A unit holding only a header is a *claim*: the writer that took over the shard created
//! it after replaying; claims are never garbage-collected, which keeps the unit number right
//! after any old writer's last unit occupied forever.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::failpoints::{self, fail_point};
use crate::options::Durability;
use crate::paths;
use crate::storage::{AppendFile, ObjectInfo, Storage};
use crate::types::{Key, Point};

const MAGIC: &[u8; 8] = b"VSHDWAL1";
const FORMAT_VERSION: u32 = 1;
/// Bytes of a unit header.
pub(crate) const HEADER_LEN: usize = 32;
const FRAME_OVERHEAD: usize = 16;
/// Largest frame accepted on replay (a corrupt length beyond it ends the unit).
const MAX_FRAME: usize = 1 << 31;

/// One logged operation; every point or key in it gets its own sequence number, starting
/// at the frame's `first_seq`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WalOp {
    Upsert(Vec<Point>),
    Delete(Vec<Key>),
}

impl WalOp {
    pub(crate) fn len(&self) -> usize {
        match self {
            WalOp::Upsert(p) => p.len(),
            WalOp::Delete(k) => k.len(),
        }
    }
}

/// An encoded operation waiting for its sequence number.
pub(crate) struct EncodedOp {
    payload: Vec<u8>,
    crc: u32,
}

impl EncodedOp {
    pub(crate) fn new(op: &WalOp) -> Result<Self> {
        let payload = postcard::to_stdvec(op)
            .map_err(|e| Error::invalid(format!("cannot encode write: {e}")))?;
        let crc = crc32c::crc32c(&payload);
        Ok(EncodedOp { payload, crc })
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.payload.len() + FRAME_OVERHEAD
    }

    /// The frame bytes for sequence number `first_seq`.
    pub(crate) fn frame(&self, first_seq: u64) -> Vec<u8> {
        let seq = first_seq.to_le_bytes();
        let crc = crc32c::crc32c_append(self.crc, &seq);
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&((self.payload.len() + 8) as u32).to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&seq);
        out
    }
}

fn header(epoch: u64, unit: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let body = [
        FORMAT_VERSION.to_le_bytes().as_slice(),
        &epoch.to_le_bytes(),
        &unit.to_le_bytes(),
    ]
    .concat();
    h.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    h.extend_from_slice(&epoch.to_le_bytes());
    h.extend_from_slice(&unit.to_le_bytes());
    h
}

/// A replayed frame.
#[derive(Debug)]
pub(crate) struct Record {
    /// Byte offset of the frame in its unit.
    pub offset: u64,
    pub first_seq: u64,
    pub op: WalOp,
}

impl Record {
    pub(crate) fn last_seq(&self) -> u64 {
        self.first_seq + self.op.len() as u64 - 1
    }
}

/// How a unit ends after its last readable frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnitEnd {
    /// Every byte belongs to a frame.
    Clean,
    /// A torn tail (local files only): a crash while appending left an incomplete final
    /// frame (its header cut short, its length running past the end of the file, or only
    /// zeros) with no valid frame after it. Never acknowledged, so it is dropped.
    Torn { offset: u64 },
    /// Bytes that are not a frame, where the unit cannot have been torn: a valid frame
    /// follows, the frame is complete, or the unit is an object written whole.
    Damaged(Damage),
}

/// Unreadable bytes inside a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Where the unreadable bytes start (the damaged frame, or 0 for a damaged header).
    pub offset: u64,
    /// Where the next valid frame starts (`None`: nothing readable follows).
    pub resume: Option<u64>,
    /// What is wrong there.
    pub reason: String,
    /// Readable frames after the damage, and the points and keys in them.
    pub records_after: u64,
    pub points_after: u64,
}

impl Damage {
    /// The `Corrupt` error for this damage in `path` (a unit of `len` bytes).
    pub(crate) fn error(&self, path: &str, len: u64) -> Error {
        let end = self.resume.unwrap_or(len);
        let after = match self.records_after {
            0 => String::from("nothing readable follows it"),
            n => format!(
                "{n} readable WAL records ({} points and deletes) follow it",
                self.points_after
            ),
        };
        Error::corrupt(
            path,
            format!(
                "damaged WAL record at byte offset {} (bytes {}..{end} unreadable: {}); {after}. \
                 Acknowledged writes are in or after it, so the shard does not open; the file is \
                 left as it is. To drop everything from this offset on, repair the shard \
                 (`vecshard local repair SHARD --accept-wal-loss`, or \
                 Shard::open_accepting_wal_loss)",
                self.offset, self.offset, self.reason
            ),
        )
    }
}

/// The frames of one unit and how it ends.
#[derive(Debug)]
pub(crate) struct Unit {
    pub number: u64,
    /// Bytes of the unit.
    pub len: u64,
    pub records: Vec<Record>,
    pub end: UnitEnd,
}

/// Parse a unit. `whole`: the unit is an object written in one piece (object stores), so
/// no frame of it can be torn. An unsupported format version is an error; damage is
/// reported in [`Unit::end`] for the caller to refuse (or, repairing, to drop).
pub(crate) fn parse_unit(path: &str, number: u64, data: &[u8], whole: bool) -> Result<Unit> {
    let mut unit = Unit {
        number,
        len: data.len() as u64,
        records: Vec::new(),
        end: UnitEnd::Clean,
    };
    if let Some(reason) = header_problem(path, data)? {
        unit.end = if data.len() < HEADER_LEN && !whole {
            // A crash between creating a local unit file and writing its header.
            UnitEnd::Torn { offset: 0 }
        } else {
            let resume = find_frame(data, HEADER_LEN, 0);
            UnitEnd::Damaged(damage(data, 0, resume, reason))
        };
        return Ok(unit);
    }
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        let Some((record, used)) = parse_frame(&data[pos..], pos as u64) else {
            let after = unit.records.last().map_or(0, Record::last_seq);
            unit.end = frame_end(data, pos, after, whole);
            return Ok(unit);
        };
        unit.records.push(record);
        pos += used;
    }
    Ok(unit)
}

/// Why a unit's header is unusable (`None`: it is fine); an unsupported version is an error.
fn header_problem(path: &str, data: &[u8]) -> Result<Option<String>> {
    if data.len() < HEADER_LEN {
        return Ok(Some(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte header",
            data.len()
        )));
    }
    if &data[..8] != MAGIC {
        return Ok(Some("bad WAL magic".into()));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(data[12..16].try_into().unwrap_or_default());
    let body = [&data[8..12], &data[16..32]].concat();
    if crc32c::crc32c(&body) != crc {
        return Ok(Some("WAL header checksum mismatch".into()));
    }
    if version != FORMAT_VERSION {
        return Err(Error::corrupt(
            path,
            format!("unsupported WAL format version {version}"),
        ));
    }
    Ok(None)
}

/// Classify the unreadable frame at `pos`: a torn tail or damage.
fn frame_end(data: &[u8], pos: usize, after_seq: u64, whole: bool) -> UnitEnd {
    let resume = find_frame(data, pos + 1, after_seq);
    if !whole && resume.is_none() && incomplete(&data[pos..]) {
        return UnitEnd::Torn { offset: pos as u64 };
    }
    let reason = if whole {
        "a frame of an object written in one piece fails its checks"
    } else if resume.is_some() {
        "not a valid frame, and a valid frame follows"
    } else {
        "a complete frame whose checksum or contents do not match"
    };
    UnitEnd::Damaged(damage(data, pos, resume, reason.into()))
}

/// Damage at `offset`; counts the readable frames from `resume` on.
fn damage(data: &[u8], offset: usize, resume: Option<u64>, reason: String) -> Damage {
    let (mut records_after, mut points_after) = (0, 0);
    let mut pos = resume;
    while let Some(p) = pos.map(|p| p as usize).filter(|p| *p < data.len()) {
        pos = match parse_frame(&data[p..], p as u64) {
            Some((r, used)) => {
                records_after += 1;
                points_after += r.op.len() as u64;
                Some((p + used) as u64)
            }
            None => find_frame(data, p + 1, 0),
        };
    }
    Damage {
        offset: offset as u64,
        resume,
        reason,
        records_after,
        points_after,
    }
}

/// Whether the bytes of a bad final frame look like an interrupted append: too short for a
/// frame header, a length running past the end, or nothing but zeros (a file extended
/// before its data reached the disk).
fn incomplete(rest: &[u8]) -> bool {
    if rest.len() < 8 || rest.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default()) as usize;
    (8..MAX_FRAME).contains(&len) && 8 + len > rest.len()
}

/// The first offset at or after `from` where a valid frame starts. `after_seq`: the last
/// sequence number before the damage; a frame must continue above it (a cheap check that
/// skips nearly every offset before the checksum).
fn find_frame(data: &[u8], from: usize, after_seq: u64) -> Option<u64> {
    (from..data.len().saturating_sub(FRAME_OVERHEAD - 1)).find_map(|p| {
        let rest = &data[p..];
        let len = u32::from_le_bytes(rest[0..4].try_into().ok()?) as usize;
        if !(9..MAX_FRAME).contains(&len) || 8 + len > rest.len() {
            return None;
        }
        let seq = u64::from_le_bytes(rest[len..8 + len].try_into().ok()?);
        if seq <= after_seq || seq - after_seq > 1 << 48 {
            return None;
        }
        parse_frame(rest, p as u64).map(|_| p as u64)
    })
}

fn parse_frame(data: &[u8], offset: u64) -> Option<(Record, usize)> {
    let len = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    if !(8..MAX_FRAME).contains(&len) {
        return None;
    }
    let body = data.get(8..8 + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let (payload, seq) = body.split_at(len - 8);
    let first_seq = u64::from_le_bytes(seq.try_into().ok()?);
    let op: WalOp = postcard::from_bytes(payload).ok()?;
    if op.len() == 0 {
        return None;
    }
    Some((
        Record {
            offset,
            first_seq,
            op,
        },
        8 + len,
    ))
}

/// Read the units of `listed` (a listing of the WAL directory) numbered `from` or above,
/// in order.
pub(crate) fn read_units(
    storage: &dyn Storage,
    listed: &[ObjectInfo],
    from: u64,
) -> Result<Vec<Unit>> {
    let whole = !storage.supports_append();
    let mut units = Vec::new();
    for info in listed {
        let Some(number) = paths::number_of(&info.path) else {
            continue;
        };
        if number < from {
            continue;
        }
        let data = storage.get(&info.path)?;
        let unit = parse_unit(&unit_name(storage, number), number, &data, whole)?;
        units.push(unit);
    }
    Ok(units)
}

/// The full name of unit `number`, for messages.
pub(crate) fn unit_name(storage: &dyn Storage, number: u64) -> String {
    format!("{}/{}", storage.location(), paths::wal(number))
}

/// Sizes and highest sequence numbers of the units on storage (for garbage collection).
#[derive(Debug, Default, Clone)]
pub(crate) struct UnitTable {
    /// unit → (highest seq in it, 0 if none; bytes; is a claim)
    units: BTreeMap<u64, UnitInfo>,
}

#[derive(Debug, Clone, Copy)]
struct UnitInfo {
    max_seq: u64,
    bytes: u64,
    claim: bool,
}

/// What the unit table keeps of a replayed unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayed {
    pub number: u64,
    /// Bytes of the unit as read.
    pub bytes: u64,
    /// Highest sequence number in its records (0 if none).
    pub max_seq: u64,
    pub records: usize,
    /// Whether every byte of it was a frame.
    pub clean: bool,
}

impl UnitTable {
    pub(crate) fn from_replay(units: &[Replayed], claims: bool) -> Self {
        let mut t = UnitTable::default();
        for u in units {
            let claim = claims && u.records == 0 && u.bytes as usize == HEADER_LEN && u.clean;
            t.units.insert(
                u.number,
                UnitInfo {
                    max_seq: u.max_seq,
                    bytes: u.bytes,
                    claim,
                },
            );
        }
        t
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.units.values().map(|u| u.bytes).sum()
    }
}

/// Pending frames and rotation marks, in sequence order.
#[derive(Default)]
struct Pending {
    chunks: Vec<Chunk>,
}

enum Chunk {
    Frame { bytes: Vec<u8>, last_seq: u64 },
    Rotate,
}

struct Io {
    /// Local: the open unit file.
    file: Option<Box<dyn AppendFile>>,
    /// Local: the open unit's number; object store: the next unit to create.
    unit: u64,
    table: UnitTable,
    unsynced: bool,
}

/// The WAL writer with group commit: writers queue frames under the shard's commit lock,
/// then whoever takes the I/O lock first writes and syncs everything queued so far.
pub(crate) struct WalWriter {
    storage: Arc<dyn Storage>,
    durability: Durability,
    epoch: u64,
    append: bool,
    pending: Mutex<Pending>,
    io: Mutex<Io>,
    synced: AtomicU64,
    failure: Mutex<Option<Error>>,
    /// Bytes of live units, kept outside the I/O lock so stats never wait for a write.
    live_bytes: AtomicU64,
}

impl WalWriter {
    /// Start writing at unit `first_unit` (the shard replayed everything below it). On an
    /// object store this creates the claim unit; `Ok(None)` if that number was taken
    /// meanwhile (replay again and retry with a higher number).
    pub(crate) fn start(
        storage: Arc<dyn Storage>,
        durability: Durability,
        epoch: u64,
        first_unit: u64,
        synced_seq: u64,
        table: UnitTable,
    ) -> Result<Option<Self>> {
        let append = storage.supports_append();
        let path = paths::wal(first_unit);
        let mut io = Io {
            file: None,
            unit: first_unit,
            table,
            unsynced: false,
        };
        fail_point!(failpoints::WAL_CREATE_BEFORE);
        if append {
            let mut f = storage.create_append(&path)?;
            f.append(&header(epoch, first_unit))?;
            f.sync()?;
            fail_point!(failpoints::WAL_CREATE_AFTER);
            io.file = Some(f);
            io.table.units.insert(
                first_unit,
                UnitInfo {
                    max_seq: 0,
                    bytes: HEADER_LEN as u64,
                    claim: false,
                },
            );
        } else {
            if !storage.put_if_absent(&path, Bytes::from(header(epoch, first_unit)))? {
                return Ok(None);
            }
            fail_point!(failpoints::WAL_CREATE_AFTER);
            io.table.units.insert(
                first_unit,
                UnitInfo {
                    max_seq: 0,
                    bytes: HEADER_LEN as u64,
                    claim: true,
                },
            );
            io.unit = first_unit + 1;
        }
        Ok(Some(WalWriter {
            storage,
            durability: if append { durability } else { Durability::Sync },
            epoch,
            append,
            pending: Mutex::new(Pending::default()),
            synced: AtomicU64::new(synced_seq),
            live_bytes: AtomicU64::new(io.table.bytes()),
            failure: Mutex::new(None),
            io: Mutex::new(io),
        }))
    }

    /// Queue a frame. Call in sequence order (under the shard's commit lock).
    pub(crate) fn push(&self, bytes: Vec<u8>, last_seq: u64) {
        self.pending
            .lock()
            .chunks
            .push(Chunk::Frame { bytes, last_seq });
    }

    /// Write out what is queued, then start a new unit (local disk; on object stores every
    /// commit is a unit already). Called when a memtable is frozen, so the old unit holds
    /// only frames of memtables being flushed and can be deleted after the flush.
    pub(crate) fn rotate(&self) -> Result<()> {
        if !self.append {
            return Ok(());
        }
        let mut io = self.io.lock();
        let mut chunks = std::mem::take(&mut self.pending.lock().chunks);
        chunks.push(Chunk::Rotate);
        self.write_chunks(&mut io, chunks)
            .inspect_err(|e| *self.failure.lock() = Some(e.clone()))
    }

    /// The error that stopped the WAL, if any.
    pub(crate) fn failure(&self) -> Option<Error> {
        self.failure.lock().clone()
    }

    /// Return once every frame up to `seq` is durable (or written, in buffered mode).
    pub(crate) fn sync_through(&self, seq: u64) -> Result<()> {
        loop {
            if self.synced.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if let Some(e) = self.failure() {
                return Err(e);
            }
            let mut io = self.io.lock();
            if self.synced.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if let Some(e) = self.failure() {
                return Err(e);
            }
            let chunks = std::mem::take(&mut self.pending.lock().chunks);
            if let Err(e) = self.write_chunks(&mut io, chunks) {
                let e = if e.kind() == ErrorKind::Fenced {
                    e
                } else {
                    Error::new(
                        e.kind(),
                        format!(
                            "WAL write failed; the shard stops taking writes: {}",
                            e.message()
                        ),
                    )
                };
                *self.failure.lock() = Some(e.clone());
                return Err(e);
            }
        }
    }

    fn write_chunks(&self, io: &mut Io, chunks: Vec<Chunk>) -> Result<()> {
        let mut buf = Vec::new();
        let mut last = None;
        for chunk in chunks {
            match chunk {
                Chunk::Frame { bytes, last_seq } => {
                    buf.extend_from_slice(&bytes);
                    last = Some(last_seq);
                }
                Chunk::Rotate => {
                    self.write_buf(io, &mut buf, last)?;
                    self.open_next_local_unit(io)?;
                }
            }
        }
        self.write_buf(io, &mut buf, last)?;
        self.live_bytes.store(io.table.bytes(), Ordering::Relaxed);
        if let Some(last) = last {
            self.synced.fetch_max(last, Ordering::AcqRel);
        }
        Ok(())
    }

    fn write_buf(&self, io: &mut Io, buf: &mut Vec<u8>, last: Option<u64>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let max_seq = last.unwrap_or(0);
        if self.append {
            let unit = io.unit;
            let f = io.file.as_mut().ok_or_else(Error::closed)?;
            f.append(buf)?;
            if self.durability == Durability::Sync {
                f.sync()?;
            } else {
                io.unsynced = true;
            }
            let info = io.table.units.entry(unit).or_insert(UnitInfo {
                max_seq: 0,
                bytes: 0,
                claim: false,
            });
            info.max_seq = info.max_seq.max(max_seq);
            info.bytes += buf.len() as u64;
        } else {
            let unit = io.unit;
            let mut data = header(self.epoch, unit);
            data.extend_from_slice(buf);
            let bytes = data.len() as u64;
            fail_point!(failpoints::WAL_CREATE_BEFORE);
            if !self
                .storage
                .put_if_absent(&paths::wal(unit), Bytes::from(data))?
            {
                return Err(Error::new(
                    ErrorKind::Fenced,
                    format!(
                        "WAL unit {}/{} already exists: another writer owns this shard now",
                        self.storage.location(),
                        paths::wal(unit)
                    ),
                ));
            }
            fail_point!(failpoints::WAL_CREATE_AFTER);
            io.table.units.insert(
                unit,
                UnitInfo {
                    max_seq,
                    bytes,
                    claim: false,
                },
            );
            io.unit += 1;
        }
        buf.clear();
        Ok(())
    }

    fn open_next_local_unit(&self, io: &mut Io) -> Result<()> {
        if let Some(f) = io.file.as_mut()
            && io.unsynced
        {
            f.sync()?;
            io.unsynced = false;
        }
        let unit = io.unit + 1;
        fail_point!(failpoints::WAL_CREATE_BEFORE);
        let mut f = self.storage.create_append(&paths::wal(unit))?;
        f.append(&header(self.epoch, unit))?;
        f.sync()?;
        fail_point!(failpoints::WAL_CREATE_AFTER);
        io.file = Some(f);
        io.unit = unit;
        io.table.units.insert(
            unit,
            UnitInfo {
                max_seq: 0,
                bytes: HEADER_LEN as u64,
                claim: false,
            },
        );
        Ok(())
    }

    /// Make buffered frames durable (buffered mode; a no-op otherwise).
    pub(crate) fn sync_all(&self) -> Result<()> {
        let mut io = self.io.lock();
        if io.unsynced
            && let Some(f) = io.file.as_mut()
        {
            f.sync()?;
            io.unsynced = false;
        }
        Ok(())
    }

    /// Delete units whose frames are all at or below `flushed_seq` (never the open local
    /// unit, never a claim). Returns the lowest unit still needed.
    pub(crate) fn collect_garbage(&self, flushed_seq: u64) -> Result<u64> {
        let mut io = self.io.lock();
        let current = io.unit;
        let doomed: Vec<u64> = io
            .table
            .units
            .iter()
            .filter(|(n, u)| {
                u.max_seq <= flushed_seq && !u.claim && (!self.append || **n < current)
            })
            .map(|(n, _)| *n)
            .collect();
        if !doomed.is_empty() {
            fail_point!(failpoints::WAL_DELETE_BEFORE);
        }
        for n in &doomed {
            self.storage.delete(&paths::wal(*n))?;
            io.table.units.remove(n);
        }
        if !doomed.is_empty() {
            fail_point!(failpoints::WAL_DELETE_AFTER);
        }
        self.live_bytes.store(io.table.bytes(), Ordering::Relaxed);
        let lowest_needed = io
            .table
            .units
            .iter()
            .find(|(_, u)| !u.claim)
            .map(|(n, _)| *n)
            .unwrap_or(current);
        Ok(lowest_needed)
    }

    /// The lowest unit that still holds frames above `flushed_seq` (or the next unit to
    /// write): the manifest's `wal_min_unit` once `flushed_seq` is committed.
    pub(crate) fn lowest_needed(&self, flushed_seq: u64) -> u64 {
        let io = self.io.lock();
        let pending = io
            .table
            .units
            .iter()
            .find(|(_, u)| u.max_seq > flushed_seq)
            .map(|(n, _)| *n);
        pending.unwrap_or(io.unit).min(io.unit)
    }

    /// Bytes of live WAL units.
    pub(crate) fn bytes(&self) -> u64 {
        self.live_bytes.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    fn op(keys: std::ops::Range<u64>) -> WalOp {
        WalOp::Upsert(keys.map(|k| Point::new(k, vec![k as f32, 1.0])).collect())
    }

    /// A local unit with three frames (keys 0..3, a delete of key 1, keys 10..12).
    fn three_frames() -> (tempfile::TempDir, Arc<dyn Storage>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let w = WalWriter::start(
            storage.clone(),
            Durability::Sync,
            1,
            1,
            0,
            UnitTable::default(),
        )
        .unwrap()
        .unwrap();
        let a = EncodedOp::new(&op(0..3)).unwrap();
        let b = EncodedOp::new(&WalOp::Delete(vec![Key::Int(1)])).unwrap();
        let c = EncodedOp::new(&op(10..12)).unwrap();
        w.push(a.frame(1), 3);
        w.push(b.frame(4), 4);
        w.push(c.frame(5), 6);
        w.sync_through(6).unwrap();
        let data = storage.get(&paths::wal(1)).unwrap().to_vec();
        (dir, storage, data)
    }

    fn parse(data: &[u8], whole: bool) -> Unit {
        parse_unit("s/wal/1", 1, data, whole).unwrap()
    }

    #[test]
    fn frames_round_trip() {
        let (_dir, storage, data) = three_frames();
        let units =
            read_units(storage.as_ref(), &storage.list(paths::WAL_DIR).unwrap(), 0).unwrap();
        assert_eq!(units.len(), 1);
        let seqs: Vec<u64> = units[0].records.iter().map(|r| r.first_seq).collect();
        assert_eq!(seqs, vec![1, 4, 5]);
        assert_eq!(units[0].records[0].offset, HEADER_LEN as u64);
        assert_eq!(units[0].end, UnitEnd::Clean);
        assert_eq!(units[0].len, data.len() as u64);
    }

    #[test]
    fn an_interrupted_append_is_a_torn_tail() {
        let (_dir, _storage, data) = three_frames();
        let unit = parse(&data, false);
        let last = unit.records[2].offset as usize;
        // Cut inside the last frame's body, inside its header, and zeros where it was.
        let mut zeroed = data.clone();
        zeroed[last..].fill(0);
        for torn in [&data[..data.len() - 7], &data[..last + 5], &zeroed[..]] {
            let unit = parse(torn, false);
            assert_eq!(unit.records.len(), 2);
            assert_eq!(
                unit.end,
                UnitEnd::Torn {
                    offset: last as u64
                }
            );
        }
        // A header cut short: a crash right after creating the file.
        assert_eq!(parse(&data[..10], false).end, UnitEnd::Torn { offset: 0 });
    }

    #[test]
    fn damage_is_never_a_torn_tail() {
        let (_dir, _storage, data) = three_frames();
        let offsets: Vec<u64> = parse(&data, false)
            .records
            .iter()
            .map(|r| r.offset)
            .collect();
        let damaged = |at: usize| {
            let mut d = data.clone();
            d[at] ^= 0x40;
            d
        };
        // A flip in the first frame: valid frames follow, so it is damage.
        let unit = parse(&damaged(offsets[0] as usize + 9), false);
        assert!(unit.records.is_empty());
        let UnitEnd::Damaged(d) = &unit.end else {
            panic!("{:?}", unit.end)
        };
        assert_eq!((d.offset, d.resume), (offsets[0], Some(offsets[1])));
        assert_eq!((d.records_after, d.points_after), (2, 3));
        let err = d.error("s/wal/1", data.len() as u64);
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.message().contains("s/wal/1"), "{err}");
        assert!(
            err.message()
                .contains(&format!("byte offset {}", offsets[0])),
            "{err}"
        );

        // A flipped length field: the scan finds the next frame all the same.
        let unit = parse(&damaged(offsets[1] as usize + 1), false);
        let UnitEnd::Damaged(d) = &unit.end else {
            panic!("{:?}", unit.end)
        };
        assert_eq!(
            (d.offset, d.resume, d.records_after),
            (offsets[1], Some(offsets[2]), 1)
        );

        // A flip in the complete last frame: damage, though nothing follows.
        let unit = parse(&damaged(data.len() - 12), false);
        assert_eq!(unit.records.len(), 2);
        assert!(
            matches!(&unit.end, UnitEnd::Damaged(d) if d.offset == offsets[2] && d.resume.is_none()),
            "{:?}",
            unit.end
        );

        // Objects are written whole: even a short last frame is damage.
        let unit = parse(&data[..data.len() - 7], true);
        assert!(matches!(unit.end, UnitEnd::Damaged(_)), "{:?}", unit.end);
        assert!(matches!(parse(&data[..10], true).end, UnitEnd::Damaged(_)));

        // A damaged header is damage at offset 0; the frames after it are counted.
        let unit = parse(&damaged(9), false);
        assert!(
            matches!(&unit.end, UnitEnd::Damaged(d) if d.offset == 0 && d.records_after == 3),
            "{:?}",
            unit.end
        );
    }

    #[test]
    fn an_unknown_format_version_is_an_error() {
        let (_dir, _storage, mut data) = three_frames();
        data[8..12].copy_from_slice(&2u32.to_le_bytes());
        let body = [&data[8..12], &data[16..32]].concat();
        let crc = crc32c::crc32c(&body).to_le_bytes();
        data[12..16].copy_from_slice(&crc);
        let err = parse_unit("s/wal/1", 1, &data, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.message().contains("version 2"), "{err}");
    }

    #[test]
    fn concurrent_writers_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let w = Arc::new(
            WalWriter::start(
                storage.clone(),
                Durability::Sync,
                1,
                1,
                0,
                UnitTable::default(),
            )
            .unwrap()
            .unwrap(),
        );
        let seq = Arc::new(Mutex::new(0u64));
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (w, seq) = (w.clone(), seq.clone());
                s.spawn(move || {
                    for i in 0..50u64 {
                        let enc = EncodedOp::new(&op(t * 1000 + i..t * 1000 + i + 1)).unwrap();
                        let mine = {
                            let mut s = seq.lock();
                            *s += 1;
                            w.push(enc.frame(*s), *s);
                            *s
                        };
                        w.sync_through(mine).unwrap();
                    }
                });
            }
        });
        let units =
            read_units(storage.as_ref(), &storage.list(paths::WAL_DIR).unwrap(), 0).unwrap();
        let seqs: Vec<u64> = units[0].records.iter().map(|r| r.first_seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    }
}
