//! Checkpoint catch-up (docs/design/014-replication.md, "Checkpoint catch-up"): the
//! primary checkpoints its shard into a staging directory (hard links; writes go on) and
//! streams its files to a follower in chunks of about 1 MiB with each file's CRC32C on
//! its last chunk ([`send_dir`]); the follower writes them into its own staging
//! directory and checks every CRC ([`Incoming`]) before it swaps the directory in.
//!
//! Both sides are blocking file I/O: run them off the async runtime.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use vecshard_proto::internal::v1 as pb;

/// Bytes of file data in one chunk.
pub const CHUNK_BYTES: usize = 1 << 20;

/// The files under `dir`, as paths relative to it with `/` separators, sorted, manifest
/// files last (a receiver that stops early never holds a manifest without segments).
pub fn files(dir: &Path) -> std::io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by_key(|p| {
        (
            p.starts_with(vecshard_engine::paths::MANIFEST_DIR),
            p.clone(),
        )
    });
    Ok(out)
}

/// Stream the files under `dir` as chunks through `emit` (which answers `false` when the
/// receiver went away): the first chunk carries `target` and `seq`, the last one `done`.
/// Returns the bytes of file data sent.
pub fn send_dir(
    dir: &Path,
    target: pb::ShardTarget,
    seq: u64,
    mut emit: impl FnMut(pb::CheckpointChunk) -> bool,
) -> Result<u64, String> {
    let names = files(dir).map_err(|e| format!("list {}: {e}", dir.display()))?;
    let mut first = Some(target);
    let mut head = |mut c: pb::CheckpointChunk| {
        if let Some(t) = first.take() {
            c.target = Some(t);
            c.seq = seq;
        }
        c
    };
    let gone = || "the follower stopped receiving the checkpoint".to_string();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; CHUNK_BYTES];
    for name in &names {
        let path = dir.join(name);
        let mut f = File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
        let (mut offset, mut crc) = (0u64, 0u32);
        loop {
            let n =
                read_full(&mut f, &mut buf).map_err(|e| format!("read {}: {e}", path.display()))?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            let file_end = n < buf.len();
            let chunk = head(pb::CheckpointChunk {
                path: name.clone(),
                data: buf[..n].to_vec(),
                offset,
                file_end,
                crc32c: if file_end { crc } else { 0 },
                ..Default::default()
            });
            if !emit(chunk) {
                return Err(gone());
            }
            offset += n as u64;
            bytes += n as u64;
            if file_end {
                break;
            }
        }
    }
    let last = head(pb::CheckpointChunk {
        done: true,
        files: names.len() as u32,
        ..Default::default()
    });
    if !emit(last) {
        return Err(gone());
    }
    Ok(bytes)
}

/// Read until `buf` is full or the file ends; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A checkpoint being received into a staging directory.
#[derive(Debug)]
pub struct Incoming {
    dir: PathBuf,
    /// The file being written: its relative path, handle, CRC so far and length.
    current: Option<(String, File, u32, u64)>,
    files: u32,
    bytes: u64,
    done: bool,
}

impl Incoming {
    /// Receive into `dir`, which is removed first if it exists (a leftover of an earlier
    /// attempt) and created empty.
    pub fn new(dir: PathBuf) -> Result<Incoming, String> {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("remove {}: {e}", dir.display())),
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(Incoming {
            dir,
            current: None,
            files: 0,
            bytes: 0,
            done: false,
        })
    }

    /// Bytes of file data received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Take the next chunk: it must continue the current file (or start a new one at
    /// offset 0 after the last ended); a file's last chunk must carry its CRC32C.
    pub fn take(&mut self, c: pb::CheckpointChunk) -> Result<(), String> {
        if self.done {
            return Err("a checkpoint chunk after the last one".into());
        }
        if c.done {
            if let Some((path, ..)) = &self.current {
                return Err(format!(
                    "checkpoint file {path} ended without its last chunk"
                ));
            }
            if c.files != self.files {
                return Err(format!(
                    "the checkpoint has {} files, {} were received",
                    c.files, self.files
                ));
            }
            self.done = true;
            return Ok(());
        }
        if self.current.is_none() {
            let rel = Path::new(&c.path);
            let plain =
                !c.path.is_empty() && rel.components().all(|p| matches!(p, Component::Normal(_)));
            if !plain {
                return Err(format!(
                    "checkpoint file {:?} is not a relative path",
                    c.path
                ));
            }
            if c.offset != 0 {
                return Err(format!(
                    "checkpoint file {} starts at offset {}, not 0",
                    c.path, c.offset
                ));
            }
            let path = self.dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("create {}: {e}", parent.display()))?;
            }
            let f =
                File::create_new(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
            self.current = Some((c.path.clone(), f, 0, 0));
        }
        let Some((path, f, crc, len)) = self.current.as_mut() else {
            unreachable!("set above");
        };
        if c.path != *path || c.offset != *len {
            return Err(format!(
                "checkpoint chunk {} at {} does not continue file {path} at {len}",
                c.path, c.offset
            ));
        }
        f.write_all(&c.data)
            .map_err(|e| format!("write checkpoint file {path}: {e}"))?;
        *crc = crc32c::crc32c_append(*crc, &c.data);
        *len += c.data.len() as u64;
        self.bytes += c.data.len() as u64;
        if c.file_end {
            if *crc != c.crc32c {
                return Err(format!(
                    "checkpoint file {path} is damaged: CRC32C {crc:#010x} received, {:#010x} sent",
                    c.crc32c
                ));
            }
            f.sync_all()
                .map_err(|e| format!("sync checkpoint file {path}: {e}"))?;
            self.current = None;
            self.files += 1;
        }
        Ok(())
    }

    /// Every file arrived whole: sync the directories and return the staging directory.
    pub fn finish(self) -> Result<PathBuf, String> {
        if !self.done {
            return Err("the checkpoint stream ended before its last chunk".into());
        }
        let sync = |d: &Path| -> Result<(), String> {
            File::open(d)
                .and_then(|f| f.sync_all())
                .map_err(|e| format!("sync {}: {e}", d.display()))
        };
        for entry in std::fs::read_dir(&self.dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                sync(&entry.path())?;
            }
        }
        sync(&self.dir)?;
        Ok(self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(dir: &Path) -> Vec<pb::CheckpointChunk> {
        let mut out = Vec::new();
        send_dir(dir, pb::ShardTarget::default(), 7, |c| {
            out.push(c);
            true
        })
        .unwrap();
        out
    }

    fn source() -> tempfile::TempDir {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("segments")).unwrap();
        std::fs::create_dir_all(src.path().join("manifest")).unwrap();
        // A file of several chunks, one of exactly one chunk, an empty one, a manifest.
        let big: Vec<u8> = (0..CHUNK_BYTES * 2 + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(src.path().join("segments/1"), &big).unwrap();
        std::fs::write(src.path().join("segments/2"), vec![9u8; CHUNK_BYTES]).unwrap();
        std::fs::write(src.path().join("segments/3"), b"").unwrap();
        std::fs::write(src.path().join("manifest/4"), b"manifest").unwrap();
        src
    }

    #[test]
    fn a_checkpoint_arrives_whole_with_the_manifest_last() {
        let src = source();
        let chunks = chunks_of(src.path());
        assert_eq!(chunks[0].seq, 7);
        assert!(chunks[0].target.is_some() && chunks[1].target.is_none());
        let order: Vec<&str> = chunks
            .iter()
            .filter(|c| c.file_end)
            .map(|c| c.path.as_str())
            .collect();
        assert_eq!(
            order,
            ["segments/1", "segments/2", "segments/3", "manifest/4"]
        );
        assert!(chunks.iter().all(|c| c.data.len() <= CHUNK_BYTES));
        let dest = tempfile::tempdir().unwrap();
        let mut inc = Incoming::new(dest.path().join("staging")).unwrap();
        for c in chunks {
            inc.take(c).unwrap();
        }
        assert_eq!(inc.bytes(), (CHUNK_BYTES * 3 + 123 + 8) as u64);
        let dir = inc.finish().unwrap();
        for f in ["segments/1", "segments/2", "segments/3", "manifest/4"] {
            assert_eq!(
                std::fs::read(dir.join(f)).unwrap(),
                std::fs::read(src.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn a_damaged_or_missing_chunk_is_refused_naming_the_file() {
        let src = source();
        let dest = tempfile::tempdir().unwrap();
        // One flipped byte in the second chunk of segments/1.
        let mut chunks = chunks_of(src.path());
        chunks[1].data[10] ^= 1;
        let mut inc = Incoming::new(dest.path().join("s")).unwrap();
        let e = chunks
            .into_iter()
            .try_for_each(|c| inc.take(c))
            .unwrap_err();
        assert!(e.contains("segments/1") && e.contains("damaged"), "{e}");

        // A lost chunk: the next does not continue the file.
        let mut chunks = chunks_of(src.path());
        chunks.remove(1);
        let mut inc = Incoming::new(dest.path().join("s")).unwrap();
        let e = chunks
            .into_iter()
            .try_for_each(|c| inc.take(c))
            .unwrap_err();
        assert!(e.contains("does not continue file segments/1"), "{e}");

        // A stream cut before its last message is not a checkpoint.
        let mut chunks = chunks_of(src.path());
        chunks.pop();
        let mut inc = Incoming::new(dest.path().join("s")).unwrap();
        for c in chunks {
            inc.take(c).unwrap();
        }
        let e = inc.finish().unwrap_err();
        assert!(e.contains("ended before its last chunk"), "{e}");

        // A path leaving the staging directory is refused.
        let mut inc = Incoming::new(dest.path().join("s")).unwrap();
        let e = inc
            .take(pb::CheckpointChunk {
                path: "../escape".into(),
                file_end: true,
                ..Default::default()
            })
            .unwrap_err();
        assert!(e.contains("not a relative path"), "{e}");
    }
}
