//! What a node keeps about its replicas of replicated shards across assignments:
//!
//! - the **replica record** of each copy, durable next to it (`<location>.replica`): the
//!   epoch of the primary that wrote its last frame (`last_epoch`) and the highest epoch
//!   it was fenced at (`fenced_epoch`) — the position a promotion reads
//!   (docs/design/014-replication.md, "Promotion"), which must survive a restart;
//! - the **recent frames** a follower applied (a bounded [`Tail`] in memory), so that
//!   when it is promoted it can resend them to a follower that missed the last ones.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use parking_lot::Mutex;
use vecshard_proto::internal::v1 as pb;

use super::tail::Tail;

/// A copy's durable replication position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaRecord {
    /// The epoch of the primary that wrote its last frame (0: none).
    pub last_epoch: u64,
    /// The highest epoch it was fenced at: frames of lower epochs are refused.
    pub fenced_epoch: u64,
    /// The copy was created empty on a node the shard map already names as a replica (a
    /// new collection, a new disk, a wiped directory) and has not yet reached the log
    /// end its primary announced: it answers no fence (note 014, "a wiped replica does
    /// not answer fences"). Written before the empty copy is created.
    pub catching_up: bool,
}

const MAGIC: &str = "vecshard-replica-record v1";

/// Where the record of the copy at `location` lives.
pub fn record_path(location: &str) -> String {
    format!("{location}.replica")
}

fn parse(path: &str, text: &str) -> Result<ReplicaRecord, String> {
    let bad = || format!("replica record {path} is malformed: {text:?}");
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad());
    }
    let mut field = |name: &str| -> Result<u64, String> {
        let line = lines.next().ok_or_else(bad)?;
        let value = line.strip_prefix(name).and_then(|v| v.strip_prefix(' '));
        value.and_then(|v| v.parse().ok()).ok_or_else(bad)
    };
    let last_epoch = field("last_epoch")?;
    let fenced_epoch = field("fenced_epoch")?;
    // Absent in records written before catch-up existed: such copies are not catching up.
    let catching_up = match lines.next() {
        None => false,
        Some("catching_up 1") => true,
        Some("catching_up 0") => false,
        Some(_) => return Err(bad()),
    };
    Ok(ReplicaRecord {
        last_epoch,
        fenced_epoch,
        catching_up,
    })
}

fn load(path: &str) -> Result<ReplicaRecord, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ReplicaRecord::default()),
        Err(e) => Err(format!("read {path}: {e}")),
    }
}

/// Write the record durably: a temporary file, synced, renamed over the old one, and
/// the directory synced.
fn store(path: &str, r: &ReplicaRecord) -> Result<(), String> {
    let tmp = format!("{path}.tmp");
    let text = format!(
        "{MAGIC}\nlast_epoch {}\nfenced_epoch {}\ncatching_up {}\n",
        r.last_epoch, r.fenced_epoch, r.catching_up as u8
    );
    let write = || -> std::io::Result<()> {
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = Path::new(path).parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("write {path}: {e}"))
}

/// The records and recent frames of the node's replicas, by location.
#[derive(Debug, Default)]
pub struct ReplicaStore {
    records: Mutex<HashMap<String, ReplicaRecord>>,
    tails: Mutex<HashMap<String, Tail>>,
}

impl ReplicaStore {
    /// The record of the copy at `location`.
    pub fn record(&self, location: &str) -> Result<ReplicaRecord, String> {
        let mut records = self.records.lock();
        if let Some(r) = records.get(location) {
            return Ok(*r);
        }
        let r = load(&record_path(location))?;
        records.insert(location.to_string(), r);
        Ok(r)
    }

    /// Change the record of the copy at `location`; written through when it changed.
    pub fn update(
        &self,
        location: &str,
        f: impl FnOnce(&mut ReplicaRecord),
    ) -> Result<ReplicaRecord, String> {
        let mut records = self.records.lock();
        let old = match records.get(location) {
            Some(r) => *r,
            None => load(&record_path(location))?,
        };
        let mut new = old;
        f(&mut new);
        if new != old {
            store(&record_path(location), &new)?;
        }
        records.insert(location.to_string(), new);
        Ok(new)
    }

    /// The copy at `location` is deleted: forget its record and recent frames.
    pub fn forget(&self, location: &str) {
        self.records.lock().remove(location);
        self.tails.lock().remove(location);
    }

    /// The copy at `location` was replaced: forget its recent frames.
    pub fn forget_tail(&self, location: &str) {
        self.tails.lock().remove(location);
    }

    /// A follower applied `frame` to the copy at `location`: keep it (at most
    /// `max_bytes` of recent frames).
    pub fn applied(&self, location: &str, frame: pb::ReplicaFrame, max_bytes: usize) {
        let mut tails = self.tails.lock();
        let tail = tails
            .entry(location.to_string())
            .or_insert_with(|| Tail::new(frame.first_seq, max_bytes));
        if tail.end() != frame.first_seq {
            *tail = Tail::new(frame.first_seq, max_bytes);
        }
        tail.push(frame);
    }

    /// The recent frames of the copy at `location` if they end right before `next_seq`
    /// (a promoted follower's), removing them.
    pub fn take_tail(&self, location: &str, next_seq: u64) -> Option<Tail> {
        let tail = self.tails.lock().remove(location)?;
        (tail.end() == next_seq).then_some(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_durable_and_malformed_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let loc = dir.path().join("shard-0000").to_string_lossy().into_owned();
        let store = ReplicaStore::default();
        assert_eq!(store.record(&loc).unwrap(), ReplicaRecord::default());
        store.update(&loc, |r| r.last_epoch = 7).unwrap();
        store.update(&loc, |r| r.fenced_epoch = 9).unwrap();
        // A new store (a restarted node) reads the file.
        let again = ReplicaStore::default();
        let want = ReplicaRecord {
            last_epoch: 7,
            fenced_epoch: 9,
            catching_up: false,
        };
        assert_eq!(again.record(&loc).unwrap(), want);
        store.update(&loc, |r| r.catching_up = true).unwrap();
        let again = ReplicaStore::default();
        assert!(again.record(&loc).unwrap().catching_up);
        // A record written before the flag existed reads as not catching up.
        std::fs::write(
            record_path(&loc),
            format!("{MAGIC}\nlast_epoch 3\nfenced_epoch 4\n"),
        )
        .unwrap();
        let old = ReplicaStore::default().record(&loc).unwrap();
        assert_eq!(
            (old.last_epoch, old.fenced_epoch, old.catching_up),
            (3, 4, false)
        );
        std::fs::write(record_path(&loc), "junk").unwrap();
        let e = ReplicaStore::default().record(&loc).unwrap_err();
        assert!(
            e.contains(&record_path(&loc)) && e.contains("malformed"),
            "{e}"
        );
    }

    #[test]
    fn a_promoted_follower_keeps_the_frames_it_applied() {
        let store = ReplicaStore::default();
        let frame = |first_seq| pb::ReplicaFrame {
            epoch: 1,
            first_seq,
            points: Vec::new(),
            keys: vec![vecshard_model::proto::key_to_proto(
                &vecshard_engine::Key::Int(first_seq),
            )],
        };
        for seq in [3, 4, 5] {
            store.applied("l", frame(seq), 1 << 20);
        }
        // A frame that does not continue starts a new tail.
        store.applied("l", frame(9), 1 << 20);
        store.applied("l", frame(10), 1 << 20);
        assert!(store.take_tail("l", 12).is_none(), "ends at 11");
        store.applied("l", frame(9), 1 << 20);
        store.applied("l", frame(10), 1 << 20);
        let tail = store.take_tail("l", 11).unwrap();
        assert_eq!(tail.from(9, 1 << 20).unwrap().len(), 2);
        assert!(store.take_tail("l", 11).is_none(), "taken");
    }
}
