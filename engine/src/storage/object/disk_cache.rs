//! Whole remote objects cached as files in a local directory, so `map` of a segment is a
//! memory map after the first download and after a restart.
//!
//! Files are named by a 128-bit hash of the object's full location (`s3://b/p/segments/…`)
//! and written atomically (temporary file, fsync, rename), so a crash leaves either a
//! complete file or an ignored temporary. Cached objects are immutable, so a file never
//! goes stale. The directory is bounded in bytes: the least recently used files are
//! deleted first (`lru` keeps the order; recency survives restarts through file mtimes).
//! One index per directory per process ([`DiskCache::shared`]): two indexes over one
//! directory would evict each other's files without knowing.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use lru::LruCache;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::paths;

/// A bounded directory of cached objects.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    capacity: u64,
    index: Mutex<Index>,
    tmp_counter: AtomicU64,
}

#[derive(Debug)]
struct Index {
    /// File name → size, least recently used first out.
    lru: LruCache<String, u64>,
    total: u64,
    /// Objects with block files → one past their highest cached block, so dropping an
    /// object finds its block files without scanning.
    extents: HashMap<String, u64>,
}

/// Bytes after a block file's data: the XXH3-64 of the data, checked on every read (block
/// files are written without fsync, so a crash may leave one short or empty).
const BLOCK_TRAILER: usize = 8;

/// The object and block of a block file name (`{object}.{block}`).
fn block_of_name(name: &str) -> Option<(&str, u64)> {
    let (object, block) = name.split_once('.')?;
    Some((object, block.parse().ok()?))
}

impl DiskCache {
    /// The process-wide cache for `dir` (created if missing). The first opener's
    /// `capacity_bytes` is the bound; later openers share it.
    pub fn shared(dir: &Path, capacity_bytes: u64) -> Result<Arc<DiskCache>> {
        static CACHES: OnceLock<Mutex<HashMap<PathBuf, Arc<DiskCache>>>> = OnceLock::new();
        fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create cache directory {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("resolve cache directory {}", dir.display()), e))?;
        let mut caches = CACHES.get_or_init(Default::default).lock();
        if let Some(c) = caches.get(&dir) {
            if c.capacity != capacity_bytes {
                tracing::warn!(
                    dir = %dir.display(),
                    bound = c.capacity,
                    requested = capacity_bytes,
                    "cache directory already open with another bound; keeping the first"
                );
            }
            return Ok(c.clone());
        }
        let cache = Arc::new(DiskCache::open(dir.clone(), capacity_bytes)?);
        caches.insert(dir, cache.clone());
        Ok(cache)
    }

    /// Index the files already in `dir` (oldest mtime = least recently used), remove
    /// leftover temporaries, and evict down to the bound.
    fn open(dir: PathBuf, capacity: u64) -> Result<DiskCache> {
        let ctx = || format!("scan cache directory {}", dir.display());
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(ctx(), e))? {
            let entry = entry.map_err(|e| Error::io(ctx(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(|e| Error::io(ctx(), e))?;
            if !meta.is_file() {
                continue;
            }
            if name.starts_with(paths::TEMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, name, meta.len()));
        }
        found.sort();
        let mut index = Index {
            lru: LruCache::unbounded(),
            total: 0,
            extents: HashMap::new(),
        };
        for (_, name, size) in found {
            index.total += size;
            if let Some((object, block)) = block_of_name(&name) {
                let end = index.extents.entry(object.to_string()).or_insert(0);
                *end = (*end).max(block + 1);
            }
            index.lru.put(name, size);
        }
        let cache = DiskCache {
            dir,
            capacity,
            index: Mutex::new(index),
            tmp_counter: AtomicU64::new(0),
        };
        cache.evict_over_bound(None);
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    /// Bytes of cached files now.
    pub fn resident_bytes(&self) -> u64 {
        self.index.lock().total
    }

    /// The cache file name of an object's full location.
    pub(crate) fn file_name(full_location: &str) -> String {
        format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(full_location.as_bytes())
        )
    }

    /// The cache file name of block `block` of the object whose file name is `object`
    /// ([`DiskCache::file_name`]).
    pub(crate) fn block_name(object: &str, block: u64) -> String {
        format!("{object}.{block}")
    }

    /// Cache `data` as block file `name` ([`DiskCache::block_name`]): written to a
    /// temporary and renamed, without fsync (a block is cheap to fetch again; the
    /// checksum trailer catches what a crash leaves behind).
    pub(crate) fn insert_block(&self, name: &str, data: &[u8]) -> Result<()> {
        let (tmp, mut file) = self.temp_file()?;
        let path = self.dir.join(name);
        let sum = xxhash_rust::xxh3::xxh3_64(data).to_le_bytes();
        let written = file
            .write_all(data)
            .and_then(|_| file.write_all(&sum))
            .and_then(|_| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(format!("cache {}", path.display()), e));
        }
        let size = (data.len() + BLOCK_TRAILER) as u64;
        {
            let mut index = self.index.lock();
            if let Some(old) = index.lru.put(name.to_string(), size) {
                index.total -= old;
            }
            index.total += size;
            if let Some((object, block)) = block_of_name(name) {
                let end = index.extents.entry(object.to_string()).or_insert(0);
                *end = (*end).max(block + 1);
            }
        }
        self.evict_over_bound(Some(name));
        Ok(())
    }

    /// The data of block file `name`, marking it recently used; `None` when it is not
    /// cached, or damaged (then it is deleted).
    pub(crate) fn read_block(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut file) = self.open_file(name)? else {
            return Ok(None);
        };
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut data)
            .map_err(|e| Error::io(format!("read cached {}", self.dir.join(name).display()), e))?;
        let ok = data.len() >= BLOCK_TRAILER && {
            let (body, sum) = data.split_at(data.len() - BLOCK_TRAILER);
            xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() == sum
        };
        if !ok {
            tracing::warn!(file = %self.dir.join(name).display(), "damaged cached block; fetching it again");
            self.remove(name);
            return Ok(None);
        }
        data.truncate(data.len() - BLOCK_TRAILER);
        Ok(Some(data))
    }

    /// Forget and delete the block files of the object whose file name is `object`.
    pub(crate) fn remove_blocks(&self, object: &str) {
        let Some(end) = self.index.lock().extents.remove(object) else {
            return;
        };
        for block in 0..end {
            self.remove(&DiskCache::block_name(object, block));
        }
    }

    /// Map the cached file `name`, marking it recently used; `None` when it is not cached.
    pub(crate) fn map(&self, name: &str) -> Result<Option<memmap2::Mmap>> {
        let Some(file) = self.open_file(name)? else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        // SAFETY: cache files are written once (temporary + rename) and never modified in
        // place; eviction unlinks them, which leaves existing maps valid.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io(format!("map {}", path.display()), e))?;
        Ok(Some(map))
    }

    /// Open the cached file `name` for reading, marking it recently used.
    pub(crate) fn open_file(&self, name: &str) -> Result<Option<File>> {
        if self.index.lock().lru.get(name).is_none() {
            return Ok(None);
        }
        let path = self.dir.join(name);
        match File::open(&path) {
            Ok(f) => {
                // Keep recency across restarts; best effort.
                let _ = f.set_modified(SystemTime::now());
                Ok(Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Deleted behind our back (another process, an operator): forget it.
                let mut index = self.index.lock();
                if let Some(size) = index.lru.pop(name) {
                    index.total -= size;
                }
                Ok(None)
            }
            Err(e) => Err(Error::io(format!("open {}", path.display()), e)),
        }
    }

    /// Forget and delete the cached file `name` (its object was replaced or deleted).
    pub(crate) fn remove(&self, name: &str) {
        let removed = {
            let mut index = self.index.lock();
            let removed = index.lru.pop(name);
            if let Some(size) = removed {
                index.total -= size;
            }
            removed.is_some()
        };
        if removed {
            let _ = fs::remove_file(self.dir.join(name));
        }
    }

    /// Whether an object of `size` bytes may be cached at all.
    pub(crate) fn admits(&self, size: u64) -> bool {
        size <= self.capacity
    }

    /// A new temporary file in the cache directory, to be filled and then
    /// [`DiskCache::commit`]ted.
    pub(crate) fn temp_file(&self) -> Result<(PathBuf, File)> {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("{}{}.{n}", paths::TEMP_PREFIX, std::process::id()));
        let file =
            File::create(&path).map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok((path, file))
    }

    /// Write `data` as the cached file `name` (atomically) and account for it.
    #[cfg(test)]
    pub(crate) fn insert(&self, name: &str, data: &[u8]) -> Result<()> {
        let (tmp, mut file) = self.temp_file()?;
        file.write_all(data)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        self.commit(&tmp, file, name)
    }

    /// fsync the filled temporary `tmp`, rename it to `name`, account for it, and evict
    /// least recently used files over the bound (never `name` itself).
    pub(crate) fn commit(&self, tmp: &Path, mut file: File, name: &str) -> Result<()> {
        let path = self.dir.join(name);
        let result = (|| {
            file.flush()?;
            file.sync_all()?;
            let size = file.metadata()?.len();
            fs::rename(tmp, &path)?;
            Ok::<_, std::io::Error>(size)
        })();
        let size = match result {
            Ok(size) => size,
            Err(e) => {
                let _ = fs::remove_file(tmp);
                return Err(Error::io(format!("cache {}", path.display()), e));
            }
        };
        {
            let mut index = self.index.lock();
            if let Some(old) = index.lru.put(name.to_string(), size) {
                index.total -= old;
            }
            index.total += size;
        }
        self.evict_over_bound(Some(name));
        Ok(())
    }

    /// Delete least recently used files until the total is within the bound.
    fn evict_over_bound(&self, keep: Option<&str>) {
        let mut victims = Vec::new();
        {
            let mut index = self.index.lock();
            while index.total > self.capacity {
                let Some((name, size)) = index.lru.pop_lru() else {
                    break;
                };
                if Some(name.as_str()) == keep {
                    // The newest file is the last in LRU order: nothing older is left.
                    index.lru.put(name, size);
                    break;
                }
                index.total -= size;
                victims.push(name);
            }
        }
        for name in victims {
            let path = self.dir.join(&name);
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot evict cache file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_over_bound() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path().to_path_buf(), 300).unwrap();
        for name in ["a", "b", "c"] {
            cache.insert(name, &[0u8; 100]).unwrap();
        }
        // Touch "a": "b" becomes the least recently used.
        assert!(cache.open_file("a").unwrap().is_some());
        cache.insert("d", &[0u8; 100]).unwrap();
        assert!(cache.open_file("b").unwrap().is_none());
        assert!(!dir.path().join("b").exists());
        for name in ["a", "c", "d"] {
            assert!(cache.open_file(name).unwrap().is_some(), "{name} kept");
        }
        assert_eq!(cache.resident_bytes(), 300);
    }

    #[test]
    fn block_files_are_checked_indexed_again_and_dropped_with_their_object() {
        let dir = tempfile::tempdir().unwrap();
        let object = DiskCache::file_name("memory://x/segments/1");
        {
            let cache = DiskCache::open(dir.path().to_path_buf(), 1 << 20).unwrap();
            for b in [0, 3, 7] {
                let name = DiskCache::block_name(&object, b);
                cache.insert_block(&name, &[b as u8; 100]).unwrap();
            }
            assert_eq!(cache.resident_bytes(), 3 * 108);
        }
        let cache = DiskCache::open(dir.path().to_path_buf(), 1 << 20).unwrap();
        let read = |b: u64| {
            cache
                .read_block(&DiskCache::block_name(&object, b))
                .unwrap()
        };
        assert_eq!(read(3), Some(vec![3u8; 100]));
        assert_eq!(read(1), None);
        // Damage is found by the trailer: the file is dropped.
        let seven = dir.path().join(DiskCache::block_name(&object, 7));
        let mut bytes = fs::read(&seven).unwrap();
        bytes[5] ^= 1;
        fs::write(&seven, bytes).unwrap();
        assert_eq!(read(7), None);
        assert!(!seven.exists());
        // The object's blocks, known again after the reopen, go with it.
        cache.remove_blocks(&object);
        assert_eq!(cache.resident_bytes(), 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn reopening_indexes_files_and_drops_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = DiskCache::open(dir.path().to_path_buf(), 1000).unwrap();
            cache.insert("x", b"hello").unwrap();
        }
        fs::write(dir.path().join(".tmp-crashed"), b"partial").unwrap();
        let cache = DiskCache::open(dir.path().to_path_buf(), 1000).unwrap();
        assert_eq!(cache.resident_bytes(), 5);
        assert_eq!(&cache.map("x").unwrap().unwrap()[..], b"hello");
        assert!(!dir.path().join(".tmp-crashed").exists());
    }
}
