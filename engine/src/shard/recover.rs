//! Recovery when a writer opens: replay the WAL above the manifest, then claim the next
//! unit (which fences older writers on an object store).
//!
//! A damaged WAL is never skipped silently. Only a torn tail — an append a crash cut short,
//! never acknowledged — is dropped; any other damage, and any gap in the sequence numbers,
//! is a `Corrupt` error naming the file and byte offset, and nothing is changed on storage.
//! An operator who has no better copy can accept the loss ([`Recovery::AcceptWalLoss`]):
//! everything from the first damage on is dropped, reported in a [`WalRepair`], and the
//! shard moves past it for good (see `docs/design/004-wal-damage-and-fencing.md`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Inner;
use crate::error::{Error, ErrorKind, Result};
use crate::paths;
use crate::storage::Storage;
use crate::wal::{self, Replayed, Unit, UnitEnd, UnitTable, WalWriter};

/// Attempts at claiming a WAL unit before giving up (each failure means an older writer
/// appended at the same moment).
const CLAIM_ATTEMPTS: usize = 32;

/// How recovery treats a damaged WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recovery {
    /// Damage is a `Corrupt` error naming the file and offset; storage is left as it is.
    Strict,
    /// The operator accepted losing everything from the first damage on.
    AcceptWalLoss,
}

/// What an open that accepted WAL loss dropped ([`crate::Shard::open_accepting_wal_loss`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalRepair {
    /// The dropped bytes, file by file in WAL order; empty when the WAL was intact.
    pub dropped: Vec<WalLoss>,
    /// Every write with a sequence number up to this one is kept.
    pub kept_seq: u64,
}

/// Bytes dropped from one WAL file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WalLoss {
    /// The file or object, e.g. `/data/s0/wal/00000000000000000001`.
    pub file: String,
    /// The first dropped byte.
    pub offset: u64,
    /// Bytes dropped, from `offset` to the end of the file.
    pub bytes: u64,
    /// Readable WAL records among them (one per write batch); damaged bytes hold an
    /// unknown number more.
    pub records: u64,
    /// Points and deleted keys in those records.
    pub points: u64,
    /// Why they were dropped.
    pub reason: String,
}

impl WalRepair {
    /// Whether nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty()
    }

    /// Readable records dropped, over all files.
    pub fn records(&self) -> u64 {
        self.dropped.iter().map(|l| l.records).sum()
    }

    /// Points and deleted keys in the dropped records.
    pub fn points(&self) -> u64 {
        self.dropped.iter().map(|l| l.points).sum()
    }

    /// Bytes dropped, over all files.
    pub fn bytes(&self) -> u64 {
        self.dropped.iter().map(|l| l.bytes).sum()
    }
}

/// Replay the WAL above the manifest, then claim the next unit, retrying while an older
/// writer still appends. Units below the manifest's `wal_min_unit` (covered by segments)
/// are deleted once the claim holds; no other unit is.
pub(super) fn recover(inner: &Arc<Inner>, recovery: Recovery) -> Result<WalRepair> {
    let storage = inner.storage.clone();
    let (flushed, min_unit) = {
        let ms = inner.manifest.lock();
        (ms.manifest.flushed_seq, ms.manifest.wal_min_unit)
    };
    let claims = !storage.supports_append();
    let mut replay = Replay {
        inner,
        recovery,
        flushed,
        last: flushed,
        kept: Vec::new(),
        repair: WalRepair::default(),
    };
    let mut sizes = BTreeMap::new();
    // Where the next listing starts reading: after a lost claim, only the units the older
    // writer added meanwhile are new.
    let mut read_from = min_unit;
    for _ in 0..CLAIM_ATTEMPTS {
        let listed = storage.list(paths::WAL_DIR)?;
        let max_listed = listed
            .iter()
            .filter_map(|o| paths::number_of(&o.path))
            .max();
        sizes.extend(
            listed
                .iter()
                .filter_map(|o| Some((paths::number_of(&o.path)?, o.size))),
        );
        // Exactly the listed units: one listed later is read after a lost claim, never twice.
        for unit in wal::read_units(storage.as_ref(), &listed, read_from)? {
            replay.unit(unit)?;
        }
        let first_unit = max_listed.map_or(read_from, |m| m + 1).max(read_from);
        let table = UnitTable::from_replay(&replay.kept, claims);
        let epoch = inner.epoch.load(Ordering::Relaxed);
        let durability = inner.opts.durability;
        let started = WalWriter::start(
            storage.clone(),
            durability,
            epoch,
            first_unit,
            replay.last,
            table,
        )?;
        match started {
            Some(w) => {
                w.collect_garbage(flushed)?;
                let _ = inner.wal.set(w);
                delete_covered_units(storage.as_ref(), &sizes, min_unit, claims)?;
                replay.repair.kept_seq = replay.last;
                return Ok(replay.repair);
            }
            None => read_from = first_unit,
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("{}: could not claim a WAL unit", storage.location()),
    ))
}

/// Make an accepted loss durable: the replayed records go to a segment and the manifest's
/// first WAL unit moves past every unit read, so the next open never meets the damage.
pub(super) fn settle_loss(inner: &Inner) -> Result<()> {
    inner.flush()?;
    let wal = inner.wal.get().ok_or_else(Error::closed)?;
    let lowest = wal.lowest_needed(inner.flushed_seq.load(Ordering::Relaxed));
    inner.commit_manifest(|m| m.wal_min_unit = m.wal_min_unit.max(lowest))
}

/// Replay state across units (and across claim retries).
struct Replay<'a> {
    inner: &'a Inner,
    recovery: Recovery,
    flushed: u64,
    /// The last sequence number replayed (or covered by segments).
    last: u64,
    /// Units replayed whole, for the writer's unit table (its clean-up deletes covered
    /// units). A unit with dropped data stays out of it: nothing of it may go before the
    /// manifest has moved past it (`settle_loss`); the next open deletes it then.
    kept: Vec<Replayed>,
    repair: WalRepair,
}

impl Replay<'_> {
    fn name(&self, unit: u64) -> String {
        wal::unit_name(self.inner.storage.as_ref(), unit)
    }

    /// Replay one unit (or, past an accepted loss, drop it).
    fn unit(&mut self, unit: Unit) -> Result<()> {
        let name = self.name(unit.number);
        if let Some(first) = self.repair.dropped.first() {
            let reason = format!("follows the damaged WAL file {}", first.file);
            self.drop_unit(&name, unit, &reason);
            return Ok(());
        }
        let mut kept = Replayed {
            number: unit.number,
            bytes: unit.len,
            max_seq: 0,
            records: 0,
            clean: unit.end == UnitEnd::Clean,
        };
        let mut records = unit.records.into_iter();
        while let Some(rec) = records.next() {
            let last_seq = rec.last_seq();
            if last_seq > self.flushed {
                if rec.first_seq != self.last + 1 {
                    let gap = format!(
                        "WAL sequence gap at byte offset {}: expected sequence number {} but \
                         found {}; acknowledged writes may be missing",
                        rec.offset,
                        self.last + 1,
                        rec.first_seq
                    );
                    if self.recovery == Recovery::Strict {
                        return Err(Error::corrupt(&name, gap));
                    }
                    let (mut n, mut points) = (1, rec.op.len() as u64);
                    for r in records.by_ref() {
                        n += 1;
                        points += r.op.len() as u64;
                    }
                    if let UnitEnd::Damaged(d) = &unit.end {
                        n += d.records_after;
                        points += d.points_after;
                    }
                    self.accept_loss(WalLoss {
                        file: name,
                        offset: rec.offset,
                        bytes: unit.len - rec.offset,
                        records: n,
                        points,
                        reason: gap,
                    });
                    return Ok(());
                }
                self.inner.replay(rec.first_seq, rec.op)?;
                self.last = last_seq;
            }
            kept.max_seq = kept.max_seq.max(last_seq);
            kept.records += 1;
        }
        match unit.end {
            UnitEnd::Clean => {}
            UnitEnd::Torn { offset } => tracing::warn!(
                file = %name,
                offset,
                bytes = unit.len - offset,
                "dropped a torn WAL tail (an append cut short by a crash; never acknowledged)"
            ),
            UnitEnd::Damaged(d) => {
                if self.recovery == Recovery::Strict {
                    return Err(d.error(&name, unit.len));
                }
                self.accept_loss(WalLoss {
                    file: name,
                    offset: d.offset,
                    bytes: unit.len - d.offset,
                    records: d.records_after,
                    points: d.points_after,
                    reason: format!("damaged WAL record: {}", d.reason),
                });
                return Ok(());
            }
        }
        self.kept.push(kept);
        Ok(())
    }

    /// A whole unit after the first damage: none of it is replayed. Empty claim units hold
    /// nothing and are not reported.
    fn drop_unit(&mut self, name: &str, unit: Unit, reason: &str) {
        let mut records = unit.records.len() as u64;
        let mut points: u64 = unit.records.iter().map(|r| r.op.len() as u64).sum();
        if let UnitEnd::Damaged(d) = &unit.end {
            records += d.records_after;
            points += d.points_after;
        }
        if records == 0 && unit.end == UnitEnd::Clean {
            return;
        }
        self.accept_loss(WalLoss {
            file: name.to_string(),
            offset: 0,
            bytes: unit.len,
            records,
            points,
            reason: reason.to_string(),
        });
    }

    fn accept_loss(&mut self, loss: WalLoss) {
        tracing::error!(
            file = %loss.file,
            offset = loss.offset,
            bytes = loss.bytes,
            records = loss.records,
            points = loss.points,
            reason = %loss.reason,
            "dropping WAL data: the operator accepted losing it"
        );
        self.repair.dropped.push(loss);
    }
}

/// Delete the units below the manifest's `wal_min_unit`: segments cover them. Object-store
/// claims stay (they keep an old writer's next unit number taken for good).
fn delete_covered_units(
    storage: &dyn Storage,
    sizes: &BTreeMap<u64, u64>,
    min_unit: u64,
    claims: bool,
) -> Result<()> {
    for (n, size) in sizes.range(..min_unit) {
        if claims && *size as usize == wal::HEADER_LEN {
            continue;
        }
        storage.delete(&paths::wal(*n))?;
    }
    Ok(())
}
