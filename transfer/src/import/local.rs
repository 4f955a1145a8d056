//! `vecshard local import`: a file's points into one shard, in batches, by `threads`
//! writers that share WAL syncs. Progress counts the acknowledged prefix of the file.
//!
//! The first failure stops the import: a batch the engine refuses (wrong dimension, NaN,
//! read-only shard, storage error) or a bad row of the file. Writers take no batch beyond
//! the failed one, the reader stops when the writers are gone, and the error says what
//! failed and how many points are acknowledged — always the first N points of the file, so
//! an import can be resumed from point N.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};
use vecshard_engine::{Point, Shard};

use crate::{Format, Progress, read};

/// `vecshard local import`: [`import`] showing [`Progress`], the format taken from the
/// file's name unless given.
pub fn import_file(
    s: &Shard,
    file: &Path,
    format: Option<Format>,
    batch: usize,
    threads: usize,
) -> Result<u64> {
    let (format, progress) = Progress::importing(file, format);
    let imported = import(s, file, format, batch, threads, |n| progress.acked(n));
    progress.finish();
    imported
}

/// Points `first..first + points.len()` of the file, the `index`-th batch.
struct Batch {
    index: u64,
    first: u64,
    points: Vec<Point>,
}

/// A batch the engine acknowledged, or refused.
enum Outcome {
    Written {
        index: u64,
        n: u64,
    },
    Refused {
        index: u64,
        first: u64,
        n: u64,
        error: vecshard_engine::Error,
    },
}

/// Import `file`, read as `format`, in batches of `batch` points with `threads` concurrent
/// writers; `on_ack(n)` whenever the acknowledged prefix grows to n points. Returns the
/// number of points imported; on failure, the error names the failure and the acknowledged
/// prefix.
pub fn import(
    s: &Shard,
    file: &Path,
    format: Format,
    batch: usize,
    threads: usize,
    mut on_ack: impl FnMut(u64),
) -> Result<u64> {
    if batch == 0 || threads == 0 {
        bail!("--batch and --threads must be at least 1");
    }
    // The lowest index of a refused batch (u64::MAX: none yet).
    let refused = AtomicU64::new(u64::MAX);
    let (work_tx, work_rx) = mpsc::sync_channel::<Batch>(threads * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = mpsc::channel::<Outcome>();
    let (acks, failure, read) = std::thread::scope(|scope| {
        for _ in 0..threads {
            let (work, done, refused) = (Arc::clone(&work_rx), done_tx.clone(), &refused);
            scope.spawn(move || write_batches(s, &work, &done, refused));
        }
        // The writers own the receiving end: when the last one stops, the reader's next send
        // fails and it stops too, wherever it is in the file.
        drop((work_rx, done_tx));
        let reader = scope.spawn(move || read_batches(file, format, batch, &work_tx));
        let mut acks = Acks::default();
        let mut failure: Option<Outcome> = None;
        for outcome in done_rx {
            match outcome {
                Outcome::Written { index, n } => acks.written(index, n, &mut on_ack),
                refused @ Outcome::Refused { .. } => {
                    if failure.as_ref().is_none_or(|f| f.index() > refused.index()) {
                        failure = Some(refused);
                    }
                }
            }
        }
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the file reader panicked")));
        (acks, failure, read)
    });
    let stopped = |e: anyhow::Error| {
        let mut what = format!(
            "import of {} stopped after {} acknowledged points (the first {} of the file)",
            file.display(),
            acks.prefix,
            acks.prefix
        );
        if acks.beyond > 0 {
            what.push_str(&format!(
                "; {} points of batches after the failure were written too",
                acks.beyond
            ));
        }
        e.context(what)
    };
    if let Some(Outcome::Refused {
        first, n, error, ..
    }) = failure
    {
        let e = anyhow::Error::new(error)
            .context(format!("batch of points {first}..{} refused", first + n));
        return Err(stopped(e));
    }
    read.map_err(stopped)?;
    Ok(acks.prefix)
}

impl Outcome {
    fn index(&self) -> u64 {
        match self {
            Outcome::Written { index, .. } | Outcome::Refused { index, .. } => *index,
        }
    }
}

/// One writer: upsert batches until the file is done or a batch failed; batches beyond a
/// refused one are never written.
fn write_batches(
    s: &Shard,
    work: &Mutex<Receiver<Batch>>,
    done: &Sender<Outcome>,
    refused: &AtomicU64,
) {
    loop {
        let next = match work.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return, // another writer panicked holding the lock
        };
        let Ok(b) = next else { return };
        if b.index > refused.load(Ordering::Acquire) {
            return;
        }
        let n = b.points.len() as u64;
        let outcome = match s.upsert(b.points) {
            Ok(_) => Outcome::Written { index: b.index, n },
            Err(error) => {
                refused.fetch_min(b.index, Ordering::AcqRel);
                Outcome::Refused {
                    index: b.index,
                    first: b.first,
                    n,
                    error,
                }
            }
        };
        if done.send(outcome).is_err() {
            return;
        }
    }
}

/// Read the file into batches; stops early (Ok) when the writers are gone.
fn read_batches(file: &Path, format: Format, batch: usize, work: &SyncSender<Batch>) -> Result<()> {
    let mut buf = Vec::with_capacity(batch);
    let (mut index, mut first) = (0u64, 0u64);
    for p in read::points(file, format)? {
        buf.push(p?);
        if buf.len() == batch {
            let points = std::mem::replace(&mut buf, Vec::with_capacity(batch));
            let n = points.len() as u64;
            if work
                .send(Batch {
                    index,
                    first,
                    points,
                })
                .is_err()
            {
                return Ok(());
            }
            index += 1;
            first += n;
        }
    }
    if !buf.is_empty() {
        // A failed send means the writers stopped on a failure; they report it.
        let _ = work.send(Batch {
            index,
            first,
            points: buf,
        });
    }
    Ok(())
}

/// Batches written so far: the acknowledged prefix of the file, and points of batches
/// written beyond a gap (another batch still in flight, or refused).
#[derive(Default)]
struct Acks {
    finished: BTreeMap<u64, u64>,
    next: u64,
    prefix: u64,
    beyond: u64,
}

impl Acks {
    fn written(&mut self, index: u64, n: u64, on_ack: &mut impl FnMut(u64)) {
        self.finished.insert(index, n);
        self.beyond += n;
        while let Some(n) = self.finished.remove(&self.next) {
            self.prefix += n;
            self.beyond -= n;
            self.next += 1;
            on_ack(self.prefix);
        }
    }
}
