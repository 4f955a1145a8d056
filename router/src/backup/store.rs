//! Reading and writing the router's own files of a backup (the manifest and the status
//! markers) at a backup location: `s3://bucket/prefix` (configured from the `AWS_*`
//! environment, as the nodes' shard storage), `file:///absolute/path` or an absolute
//! directory. The shard checkpoints under it are written by the nodes.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};

/// One backup location (or a prefix holding several).
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    /// The local directory, for a local location (removed entirely on delete).
    dir: Option<std::path::PathBuf>,
}

/// Check a backup location string and normalise it (no trailing `/`).
pub fn parse(location: &str) -> Result<String> {
    let l = location.trim().trim_end_matches('/');
    let bad = |why: &str| {
        Error::invalid(format!(
            "backup location {location:?} {why}; use s3://bucket/prefix, file:///absolute/path or an absolute directory"
        ))
    };
    if l.is_empty() {
        return Err(bad("is empty"));
    }
    let path = match l.split_once("://") {
        Some(("s3", _)) => {
            return crate::storage::parse_url(l)
                .map_err(|why| bad(&format!("is invalid: it {why}")));
        }
        Some(("file", p)) => p,
        Some((scheme, _)) => return Err(bad(&format!("has the unsupported scheme {scheme}://"))),
        None => l,
    };
    if !path.starts_with('/') {
        return Err(bad("is not absolute"));
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return Err(bad("has a '.' or '..' segment"));
    }
    Ok(l.to_string())
}

/// `location` + `/` + `child`, for a location from [`parse`].
pub fn join(location: &str, child: &str) -> String {
    format!("{}/{child}", location.trim_end_matches('/'))
}

impl Location {
    /// Open a location checked by [`parse`]; a local directory is created if missing.
    pub fn open(location: &str) -> Result<Location> {
        let url = parse(location)?;
        let io = |e: object_store::Error| Error::unavailable(format!("backup location {url}: {e}"));
        let (store, prefix, dir): (Arc<dyn ObjectStore>, _, _) = match url.split_once("://") {
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
                    .build()
                    .map_err(io)?;
                (Arc::new(s3), Path::from(prefix), None)
            }
            other => {
                let dir = match other {
                    Some((_, p)) => p,
                    None => url.as_str(),
                };
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::unavailable(format!("backup location {url}: create {dir}: {e}"))
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(io)?;
                (Arc::new(fs), Path::from(""), Some(dir.into()))
            }
        };
        Ok(Location {
            store,
            prefix,
            url,
            dir,
        })
    }

    /// The location's URL (normalised).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, name: &str) -> Path {
        self.prefix
            .parts()
            .chain(Path::from(name).parts())
            .collect()
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::unavailable(format!("{}/{name}: {e}", self.url))
    }

    /// A file's bytes; `None` if it does not exist.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.path(name)).await {
            Ok(r) => Ok(Some(
                r.bytes().await.map_err(|e| self.err(name, e))?.to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Create a file unless one exists; `false` if one did.
    pub async fn create(&self, name: &str, data: Vec<u8>) -> Result<bool> {
        let opts = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&self.path(name), PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Create or replace a file.
    pub async fn put(&self, name: &str, data: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(name), PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|e| self.err(name, e))
    }

    /// The directories directly under this location, as child locations.
    pub async fn children(&self) -> Result<Vec<String>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let l = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.err("", e))?;
        let mut out: Vec<String> = l
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(|n| join(&self.url, n)))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Bytes and files under this location.
    pub async fn usage(&self) -> Result<(u64, u64)> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        self.store
            .list(prefix)
            .try_fold(
                (0u64, 0u64),
                |(b, n), m| async move { Ok((b + m.size, n + 1)) },
            )
            .await
            .map_err(|e| self.err("", e))
    }

    /// Delete every file under this location (and, for a local one, the directory).
    pub async fn delete_all(&self) -> Result<u64> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let paths: Vec<Path> = self
            .store
            .list(prefix)
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| self.err("", e))?;
        let n = paths.len() as u64;
        let store = self.store.clone();
        let mut deletes = futures::stream::iter(paths)
            .map(|p| {
                let store = store.clone();
                async move { store.delete(&p).await.map(|_| ()) }
            })
            .buffer_unordered(16);
        while let Some(r) = deletes.next().await {
            r.map_err(|e| self.err("", e))?;
        }
        if let Some(dir) = &self.dir {
            remove_empty_dirs(dir);
        }
        Ok(n)
    }
}

/// Remove `dir` and the directories under it that are empty once their own empty
/// subdirectories are gone (never a file: what the listing did not show stays).
fn remove_empty_dirs(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
