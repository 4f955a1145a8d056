//! A shard directory on local disk.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{AppendFile, Blob, LockGuard, NativeFile, ObjectInfo, Storage};
use crate::error::{Error, ErrorKind, Result};
use crate::paths;

/// Files under a root directory. Writes are durable (fsync of the file and its directory)
/// before they return.
#[derive(Debug)]
pub struct LocalStorage {
    root: PathBuf,
    location: String,
    tmp_counter: AtomicU64,
}

impl LocalStorage {
    /// Storage rooted at `root`, created if missing (the parent of every directory created
    /// is fsynced, so a new root survives a power loss).
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        create_dirs(&root)?;
        let location = root.display().to_string();
        Ok(LocalStorage {
            root,
            location,
            tmp_counter: AtomicU64::new(0),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn display(&self, path: &str) -> String {
        self.full(path).display().to_string()
    }

    fn ensure_parent(&self, path: &str) -> Result<()> {
        match self.full(path).parent() {
            Some(parent) if !parent.is_dir() => create_dirs(parent),
            _ => Ok(()),
        }
    }

    /// A fresh temporary name next to `path` (never listed).
    fn temp_name(&self, path: &str) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let full = self.full(path);
        let name = full.file_name().and_then(|s| s.to_str()).unwrap_or("file");
        full.with_file_name(format!(
            "{}{name}.{}.{n}",
            paths::TEMP_PREFIX,
            std::process::id()
        ))
    }

    /// Write `data` to a fresh temporary file next to `path` and fsync it.
    fn write_temp(&self, path: &str, data: &[u8]) -> Result<PathBuf> {
        self.ensure_parent(path)?;
        let tmp = self.temp_name(path);
        let ctx = || format!("write {}", tmp.display());
        let mut f = File::create(&tmp).map_err(|e| Error::io(ctx(), e))?;
        f.write_all(data).map_err(|e| Error::io(ctx(), e))?;
        f.sync_all().map_err(|e| Error::io(ctx(), e))?;
        Ok(tmp)
    }

    fn parent_dir(&self, path: &str) -> PathBuf {
        self.full(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone())
    }
}

/// Create `dir` and its missing ancestors, fsyncing the parent of each directory created
/// (outermost first), so that a new shard root — every new entry on the way to it —
/// survives a power loss once its files are synced.
fn create_dirs(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::metadata(cur) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("{} is not a directory", cur.display()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(cur),
            Err(e) => return Err(Error::io(format!("stat {}", cur.display()), e)),
        }
        match cur.parent() {
            Some(p) if !p.as_os_str().is_empty() => cur = p,
            // A relative path's first component: its parent is the working directory.
            Some(_) => break,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            // Created meanwhile by someone else; it still gets its parent synced.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(Error::io(format!("create directory {}", d.display()), e)),
        }
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(test)]
    tests::SYNCED.with(|s| s.borrow_mut().push(dir.to_path_buf()));
    let f =
        File::open(dir).map_err(|e| Error::io(format!("open directory {}", dir.display()), e))?;
    f.sync_all()
        .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}

impl Storage for LocalStorage {
    fn location(&self) -> &str {
        &self.location
    }

    fn get(&self, path: &str) -> Result<Bytes> {
        fs::read(self.full(path))
            .map(Bytes::from)
            .map_err(|e| Error::io(format!("read {}", self.display(path)), e))
    }

    fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes> {
        let ctx = || {
            format!(
                "read {} bytes {}..{}",
                self.display(path),
                range.start,
                range.end
            )
        };
        let mut f = File::open(self.full(path)).map_err(|e| Error::io(ctx(), e))?;
        f.seek(SeekFrom::Start(range.start))
            .map_err(|e| Error::io(ctx(), e))?;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        f.read_exact(&mut buf).map_err(|e| Error::io(ctx(), e))?;
        Ok(Bytes::from(buf))
    }

    fn map(&self, path: &str) -> Result<Blob> {
        let ctx = || format!("map {}", self.display(path));
        let f = File::open(self.full(path)).map_err(|e| Error::io(ctx(), e))?;
        // SAFETY: files under the shard root are immutable once written (segments are created
        // once and never modified in place); the map is read-only.
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(ctx(), e))?;
        Ok(Blob::Mapped(Arc::new(map)))
    }

    fn put(&self, path: &str, data: Bytes) -> Result<()> {
        let tmp = self.write_temp(path, &data)?;
        fs::rename(&tmp, self.full(path))
            .map_err(|e| Error::io(format!("rename to {}", self.display(path)), e))?;
        sync_dir(&self.parent_dir(path))
    }

    fn put_if_absent(&self, path: &str, data: Bytes) -> Result<bool> {
        let tmp = self.write_temp(path, &data)?;
        let linked = fs::hard_link(&tmp, self.full(path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(&self.parent_dir(path))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io(format!("create {}", self.display(path)), e)),
        }
    }

    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let full = self.full(dir);
        let entries = match fs::read_dir(&full) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("list {}", full.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("list {}", full.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry
                .metadata()
                .map_err(|e| Error::io(format!("stat {}", entry.path().display()), e))?;
            if name.starts_with(paths::TEMP_PREFIX) || !meta.is_file() {
                continue;
            }
            out.push(ObjectInfo {
                path: paths::join(dir, &name),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &str) -> Result<()> {
        match fs::remove_file(self.full(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("delete {}", self.display(path)), e)),
        }
    }

    fn native(&self, path: &str) -> Option<NativeFile> {
        Some(NativeFile::Local(self.full(path)))
    }

    /// A hard link where `src` is a local file on the same file system (the files copied
    /// are immutable), else a copy; both fsynced, made under a temporary name and renamed.
    fn copy_from(&self, src: &dyn Storage, path: &str) -> Result<bool> {
        let Some(NativeFile::Local(from)) = src.native(path) else {
            return super::stream_copy(self, src, path).map(|_| false);
        };
        self.ensure_parent(path)?;
        let tmp = self.temp_name(path);
        let linked = match fs::hard_link(&from, &tmp) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::io(format!("link {}", from.display()), e));
            }
            // Another file system, or links not allowed: copy the bytes.
            Err(_) => {
                let ctx = || format!("copy {} to {}", from.display(), tmp.display());
                fs::copy(&from, &tmp).map_err(|e| Error::io(ctx(), e))?;
                let f = File::open(&tmp).map_err(|e| Error::io(ctx(), e))?;
                f.sync_all().map_err(|e| Error::io(ctx(), e))?;
                false
            }
        };
        fs::rename(&tmp, self.full(path)).map_err(|e| {
            Error::io(
                format!("rename {} to {}", tmp.display(), self.display(path)),
                e,
            )
        })?;
        sync_dir(&self.parent_dir(path))?;
        Ok(linked)
    }

    fn supports_append(&self) -> bool {
        true
    }

    fn create_append(&self, path: &str) -> Result<Box<dyn AppendFile>> {
        self.ensure_parent(path)?;
        let full = self.full(path);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&full)
            .map_err(|e| Error::io(format!("create {}", full.display()), e))?;
        sync_dir(&self.parent_dir(path))?;
        Ok(Box::new(LocalAppend { file, path: full }))
    }

    fn lock_exclusive(&self) -> Result<Option<Box<dyn LockGuard>>> {
        let full = self.full(paths::LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&full)
            .map_err(|e| Error::io(format!("open {}", full.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(FileLock(file)))),
            Err(fs::TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "{} is locked by another process (one writer per shard)",
                    full.display()
                ),
            )),
            Err(fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("lock {}", full.display()), e))
            }
        }
    }
}

struct FileLock(#[allow(dead_code)] File);
impl LockGuard for FileLock {}

struct LocalAppend {
    file: File,
    path: PathBuf,
}

impl AppendFile for LocalAppend {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::io(format!("append to {}", self.path.display()), e))
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("fsync {}", self.path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Directories this thread fsynced, in order.
        pub(super) static SYNCED: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    fn take_synced() -> Vec<PathBuf> {
        SYNCED.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }

    #[test]
    fn a_new_root_syncs_every_directory_it_creates() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let root = base.join("a").join("b").join("c");
        take_synced();
        let s = LocalStorage::new(&root).unwrap();
        assert!(root.is_dir());
        let expected = vec![base.clone(), base.join("a"), base.join("a").join("b")];
        assert_eq!(
            take_synced(),
            expected,
            "the parent of each created directory"
        );

        // An existing root creates and syncs nothing.
        LocalStorage::new(&root).unwrap();
        assert_eq!(take_synced(), Vec::<PathBuf>::new());

        // New directories inside the root: the same walk.
        s.put("x/y", Bytes::from_static(b"1")).unwrap();
        let synced = take_synced();
        assert_eq!(synced[0], root, "x is created in the root: {synced:?}");

        // A file in the way is named.
        std::fs::write(base.join("file"), b"").unwrap();
        let err = LocalStorage::new(base.join("file").join("s")).unwrap_err();
        assert!(err.message().contains("file"), "{err}");
    }

    #[test]
    fn local_storage_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path()).unwrap();
        crate::storage::conformance::run(&s);
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path()).unwrap();
        let _g = s.lock_exclusive().unwrap();
        let err = s.lock_exclusive().err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.message().contains("LOCK"));
    }
}
