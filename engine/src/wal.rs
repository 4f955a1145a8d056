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
use crate::options::Durability;
use crate::paths;
use crate::storage::{AppendFile, Storage};
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
    pub first_seq: u64,
    pub op: WalOp,
}

impl Record {
    pub(crate) fn last_seq(&self) -> u64 {
        self.first_seq + self.op.len() as u64 - 1
    }
}

/// The frames of one unit, and whether its tail was torn (an incomplete or damaged frame at
/// the end, dropped).
#[derive(Debug)]
pub(crate) struct Unit {
    pub number: u64,
    pub records: Vec<Record>,
    pub torn_at: Option<usize>,
}

/// Parse a unit. A bad header is `Corrupt` (naming the file); a bad frame ends the unit
/// (a torn tail) — the caller checks sequence continuity across units to tell a torn tail
/// from lost acknowledged data.
pub(crate) fn parse_unit(path: &str, number: u64, data: &[u8]) -> Result<Unit> {
    if data.len() < HEADER_LEN {
        // A crash between creating a local unit file and writing its header.
        return Ok(Unit {
            number,
            records: Vec::new(),
            torn_at: Some(0),
        });
    }
    if &data[..8] != MAGIC {
        return Err(Error::corrupt(path, "bad WAL magic"));
    }
    let version = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(data[12..16].try_into().unwrap_or_default());
    let body = [&data[8..12], &data[16..32]].concat();
    if crc32c::crc32c(&body) != crc {
        return Err(Error::corrupt(path, "WAL header checksum mismatch"));
    }
    if version != FORMAT_VERSION {
        return Err(Error::corrupt(
            path,
            format!("unsupported WAL format version {version}"),
        ));
    }
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        match parse_frame(&data[pos..]) {
            Some((record, used)) => {
                records.push(record);
                pos += used;
            }
            None => {
                return Ok(Unit {
                    number,
                    records,
                    torn_at: Some(pos),
                });
            }
        }
    }
    Ok(Unit {
        number,
        records,
        torn_at: None,
    })
}

fn parse_frame(data: &[u8]) -> Option<(Record, usize)> {
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
    Some((Record { first_seq, op }, 8 + len))
}

/// Read every unit numbered `from` or above, in order.
pub(crate) fn read_units(storage: &dyn Storage, from: u64) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for info in storage.list(paths::WAL_DIR)? {
        let Some(number) = paths::number_of(&info.path) else {
            continue;
        };
        if number < from {
            continue;
        }
        let data = storage.get(&info.path)?;
        let unit = parse_unit(
            &format!("{}/{}", storage.location(), info.path),
            number,
            &data,
        )?;
        units.push(unit);
    }
    Ok(units)
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

impl UnitTable {
    pub(crate) fn from_replay(units: &[Unit], sizes: &BTreeMap<u64, u64>, claims: bool) -> Self {
        let mut t = UnitTable::default();
        for u in units {
            let max_seq = u.records.iter().map(Record::last_seq).max().unwrap_or(0);
            let bytes = sizes.get(&u.number).copied().unwrap_or(0);
            let claim = claims
                && u.records.is_empty()
                && bytes as usize == HEADER_LEN
                && u.torn_at.is_none();
            t.units.insert(
                u.number,
                UnitInfo {
                    max_seq,
                    bytes,
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
        if append {
            let mut f = storage.create_append(&path)?;
            f.append(&header(epoch, first_unit))?;
            f.sync()?;
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
        let mut f = self.storage.create_append(&paths::wal(unit))?;
        f.append(&header(self.epoch, unit))?;
        f.sync()?;
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
        for n in doomed {
            self.storage.delete(&paths::wal(n))?;
            io.table.units.remove(&n);
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

    #[test]
    fn frames_round_trip_and_torn_tail_is_dropped() {
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
        w.push(a.frame(1), 3);
        w.push(b.frame(4), 4);
        w.sync_through(4).unwrap();
        let units = read_units(storage.as_ref(), 0).unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].records.len(), 2);
        assert_eq!(units[0].records[1].first_seq, 4);
        assert!(units[0].torn_at.is_none());

        // Flip a byte in the last frame: it is dropped as a torn tail.
        let path = dir.path().join(paths::wal(1));
        let mut data = std::fs::read(&path).unwrap();
        let n = data.len();
        data[n - 3] ^= 0x40;
        std::fs::write(&path, &data).unwrap();
        let units = read_units(storage.as_ref(), 0).unwrap();
        assert_eq!(units[0].records.len(), 1);
        assert!(units[0].torn_at.is_some());

        // A damaged header is a named corruption error.
        data[9] ^= 1;
        std::fs::write(&path, &data).unwrap();
        let err = read_units(storage.as_ref(), 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(
            err.to_string().contains("wal/00000000000000000001"),
            "{err}"
        );
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
        let units = read_units(storage.as_ref(), 0).unwrap();
        let seqs: Vec<u64> = units[0].records.iter().map(|r| r.first_seq).collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    }
}
