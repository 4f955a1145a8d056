//! Opening a shard's storage and commit store from the strings users configure.
//!
//! | location | storage |
//! | --- | --- |
//! | `/data/s0`, `data/s0` | [`LocalStorage`]: files, mmap, append-only WAL, a `LOCK` |
//! | `file:///abs/path` | object semantics on local disk (`object_store` `LocalFileSystem`): no append, no lock |
//! | `memory://name[/prefix]` | an in-memory store, shared by name within the process |
//! | `s3://bucket[/prefix]` | S3 or an S3-compatible store, configured from `AWS_*` variables |
//!
//! Commit stores: none (manifest versions as create-once objects in the storage) or
//! `dynamodb:TABLE`.

use std::sync::Arc;

use super::{LocalStorage, Storage, StorageOptions};
use crate::commit::{CommitStore, StorageCommitStore};
use crate::error::{Error, Result};

/// Open the storage at `location` (a local path or a URL, see the module docs).
///
/// `s3://` reads `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`;
/// S3 Express One Zone buckets (`name--azid--x-s3`) are recognised by their name.
/// Manifest versions and WAL objects are created with `If-None-Match: *`.
pub fn open_storage(location: &str, opts: &StorageOptions) -> Result<Arc<dyn Storage>> {
    match location.split_once("://") {
        None => Ok(Arc::new(LocalStorage::new(location)?)),
        Some((scheme, rest)) => open_url(location, scheme, rest, opts),
    }
}

#[cfg(not(feature = "object-store"))]
fn open_url(location: &str, _: &str, _: &str, _: &StorageOptions) -> Result<Arc<dyn Storage>> {
    Err(Error::invalid(format!(
        "storage `{location}`: this build has no object-store support \
         (enable the `object-store` feature of vecshard-engine)"
    )))
}

#[cfg(feature = "object-store")]
fn open_url(
    location: &str,
    scheme: &str,
    rest: &str,
    opts: &StorageOptions,
) -> Result<Arc<dyn Storage>> {
    use super::ObjectStorage;

    let location = location.trim_end_matches('/');
    let (store, prefix) = match scheme {
        "file" => (url_stores::file(location, rest)?, String::new()),
        "memory" => {
            let (name, prefix) = split_first(rest);
            if name.is_empty() {
                return Err(Error::invalid(format!(
                    "storage `{location}`: no store name (memory://name/prefix)"
                )));
            }
            (url_stores::memory(name), prefix.to_string())
        }
        "s3" => {
            let (bucket, prefix) = split_first(rest);
            (url_stores::s3(location, bucket, opts)?, prefix.to_string())
        }
        _ => {
            return Err(Error::invalid(format!(
                "storage `{location}`: unknown scheme `{scheme}://`; expected a local path, \
                 file:///absolute/path, memory://name or s3://bucket/prefix"
            )));
        }
    };
    let storage = ObjectStorage::builder(store, location)
        .prefix(&prefix)
        .options(opts)
        .build()?;
    Ok(Arc::new(storage))
}

/// `name/rest/of/it` → (`name`, `rest/of/it`).
#[cfg(feature = "object-store")]
fn split_first(rest: &str) -> (&str, &str) {
    let rest = rest.trim_matches('/');
    rest.split_once('/').unwrap_or((rest, ""))
}

#[cfg(feature = "object-store")]
mod url_stores {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use object_store::{ClientConfigKey, ObjectStore, RetryConfig};
    use parking_lot::Mutex;

    use crate::error::{Error, Result};
    use crate::storage::StorageOptions;

    /// `file:///abs/path`: the directory is created if missing; writes are fsynced.
    pub(super) fn file(location: &str, rest: &str) -> Result<Arc<dyn ObjectStore>> {
        if !rest.starts_with('/') {
            return Err(Error::invalid(format!(
                "storage `{location}`: a file URL needs an absolute path (file:///data/s0)"
            )));
        }
        std::fs::create_dir_all(rest)
            .map_err(|e| Error::io(format!("create directory {rest} for {location}"), e))?;
        let fs = LocalFileSystem::new_with_prefix(rest).map_err(|e| {
            Error::new(crate::ErrorKind::Io, format!("open {location}: {e}")).with_source(e)
        })?;
        Ok(Arc::new(fs.with_fsync(true)))
    }

    /// `memory://name`: one store per name for the life of the process, so closing and
    /// reopening a shard sees its data.
    pub(super) fn memory(name: &str) -> Arc<dyn ObjectStore> {
        static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
        let mut stores = STORES.get_or_init(Default::default).lock();
        stores
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(InMemory::new()))
            .clone()
    }

    /// `s3://bucket`: `AWS_*` environment, conditional put by `If-None-Match`, and no
    /// retries inside object_store (ours see every attempt; see `object::retry`).
    pub(super) fn s3(
        location: &str,
        bucket: &str,
        opts: &StorageOptions,
    ) -> Result<Arc<dyn ObjectStore>> {
        if bucket.is_empty() {
            return Err(Error::invalid(format!(
                "storage `{location}`: no bucket name (s3://bucket/prefix)"
            )));
        }
        let r = &opts.retry;
        let retry = RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::from_millis(r.request_timeout_ms),
            ..RetryConfig::default()
        };
        // Client settings one by one: `with_client_options` would drop what `from_env` read
        // (AWS_ALLOW_HTTP among them).
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                format!("{}ms", r.request_timeout_ms),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                format!("{}ms", r.connect_timeout_ms),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::PoolMaxIdlePerHost),
                opts.max_requests.max(1).to_string(),
            )
            .with_retry(retry);
        if bucket.ends_with("--x-s3") {
            builder = builder.with_s3_express(true);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::invalid(format!("storage `{location}`: {e}")).with_source(e))?;
        Ok(Arc::new(s3))
    }
}

/// The commit store for a shard: `None` (or `storage`) keeps manifest versions as
/// create-once objects in `storage`; `dynamodb:TABLE` keeps them in a DynamoDB table under
/// the partition key `base_uri` (feature `dynamodb`).
pub fn open_commit_store(
    spec: Option<&str>,
    storage: Arc<dyn Storage>,
    base_uri: &str,
) -> Result<Arc<dyn CommitStore>> {
    let spec = spec.map(str::trim).unwrap_or("");
    if spec.is_empty() || spec == "storage" {
        return Ok(Arc::new(StorageCommitStore::new(storage)));
    }
    match spec.strip_prefix("dynamodb:") {
        Some(table) => open_dynamo(table, storage, base_uri),
        None => Err(Error::invalid(format!(
            "commit store `{spec}`: expected `dynamodb:TABLE` or none"
        ))),
    }
}

#[cfg(feature = "dynamodb")]
fn open_dynamo(
    table: &str,
    storage: Arc<dyn Storage>,
    base_uri: &str,
) -> Result<Arc<dyn CommitStore>> {
    let store =
        crate::commit::dynamo::DynamoCommitStore::builder(table, base_uri, storage).build()?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "dynamodb"))]
fn open_dynamo(table: &str, _: Arc<dyn Storage>, _: &str) -> Result<Arc<dyn CommitStore>> {
    Err(Error::invalid(format!(
        "commit store `dynamodb:{table}`: this build has no DynamoDB support \
         (enable the `dynamodb` feature of vecshard-engine)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn plain_paths_are_local() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_storage(dir.path().to_str().unwrap(), &StorageOptions::default()).unwrap();
        assert!(s.supports_append());
    }

    #[test]
    fn unknown_schemes_name_the_url() {
        let err = open_storage("gs://bucket/x", &StorageOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("gs://bucket/x"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
        let err = open_commit_store(Some("etcd:x"), local, "u").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("etcd:x"), "{err}");
    }

    #[cfg(feature = "object-store")]
    #[test]
    fn memory_stores_are_shared_by_name() {
        let opts = StorageOptions::default();
        let a = open_storage("memory://open-test/shard", &opts).unwrap();
        a.put("x", bytes::Bytes::from_static(b"kept")).unwrap();
        drop(a);
        let b = open_storage("memory://open-test/shard", &opts).unwrap();
        assert_eq!(&b.get("x").unwrap()[..], b"kept");
        let other = open_storage("memory://open-test/other", &opts).unwrap();
        assert_eq!(other.get("x").unwrap_err().kind(), ErrorKind::NotFound);
        assert!(!b.supports_append());
        assert!(b.lock_exclusive().unwrap().is_none());
        let err = open_storage("memory://", &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}
