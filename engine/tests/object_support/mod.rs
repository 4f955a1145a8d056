//! Shared by the object-store tests: a fault-injecting, request-counting `ObjectStore`
//! wrapper, and the test services' settings.
#![allow(dead_code)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use vecshard_engine::storage::object_store::path::Path;
use vecshard_engine::storage::object_store::{
    self, CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use vecshard_engine::storage::{RetrySettings, StorageOptions};

/// A real store (usually `InMemory`) with scripted failures and request counters.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    /// The next N conditional creates are applied, then reported as failed (a timeout
    /// after the server committed).
    pub fail_creates_after_apply: AtomicUsize,
    /// The next N conditional creates fail before reaching the store.
    pub fail_creates_before_apply: AtomicUsize,
    /// The next N GETs fail with a transient error.
    pub fail_gets: AtomicUsize,
    pub puts: AtomicUsize,
    pub gets: AtomicUsize,
    /// The range of every GET, in order (`None`: whole object).
    pub get_ranges: Mutex<Vec<Option<GetRange>>>,
    /// GETs in the store now, and the most there were at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// [`FaultyStore::hold_gets`]: (at once, of how many), GETs that arrived so far.
    hold: Mutex<Option<(usize, usize)>>,
    arrived: AtomicUsize,
    released: tokio::sync::Notify,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<Self> {
        Arc::new(FaultyStore {
            inner,
            fail_creates_after_apply: AtomicUsize::new(0),
            fail_creates_before_apply: AtomicUsize::new(0),
            fail_gets: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
            gets: AtomicUsize::new(0),
            get_ranges: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
            hold: Mutex::new(None),
            arrived: AtomicUsize::new(0),
            released: tokio::sync::Notify::new(),
        })
    }

    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    pub fn take_ranges(&self) -> Vec<Option<GetRange>> {
        std::mem::take(&mut *self.get_ranges.lock())
    }

    /// From now on a GET waits in the store until `at_once` GETs are in it together, or
    /// until the `total`-th GET has arrived, and then yields once more before it completes:
    /// so a caller that sends its requests side by side without a bound gets more than
    /// `at_once` into the store at once, and one with a bound of `at_once` exactly that
    /// many. Resets the counters.
    pub fn hold_gets(&self, at_once: usize, total: usize) {
        *self.hold.lock() = Some((at_once, total));
        self.arrived.store(0, Ordering::SeqCst);
        self.peak_in_flight.store(0, Ordering::SeqCst);
    }

    /// The most GETs that were in the store at once since [`FaultyStore::hold_gets`].
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    async fn enter_get(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        let Some((at_once, total)) = *self.hold.lock() else {
            return;
        };
        let arrived = self.arrived.fetch_add(1, Ordering::SeqCst) + 1;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) >= at_once
                || self.arrived.load(Ordering::SeqCst) >= total
                || arrived > total
            {
                self.released.notify_waiters();
                // Give the caller's other requests a turn before this one completes: a
                // caller that does not bound them gets another one into the store now.
                tokio::task::yield_now().await;
                return;
            }
            released.await;
        }
    }
}

/// Take one from a counter of scripted failures; whether one was due.
fn due(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn timeout(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("injected timeout {what}"),
        )),
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        let create = matches!(opts.mode, PutMode::Create);
        if create && due(&self.fail_creates_before_apply) {
            return Err(timeout("before the create reached the store"));
        }
        let result = self.inner.put_opts(location, payload, opts).await?;
        if create && due(&self.fail_creates_after_apply) {
            return Err(timeout("after the create was applied"));
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.get_ranges.lock().push(options.range.clone());
        self.enter_get().await;
        let got = if due(&self.fail_gets) {
            Err(timeout("on a read"))
        } else {
            self.inner.get_opts(location, options).await
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        got
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Retries fast enough for tests (real backoff, tiny waits).
pub fn fast_retries() -> StorageOptions {
    StorageOptions {
        retry: RetrySettings {
            max_attempts: 4,
            initial_backoff_ms: 1,
            max_backoff_ms: 5,
            ..RetrySettings::default()
        },
        ..StorageOptions::default()
    }
}

/// A name no earlier run used.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

const HOW_TO_START: &str = "start the local S3/DynamoDB service first: \
     eval \"$(scripts/test-services.sh start)\" (from the repository root)";

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: {HOW_TO_START}"),
    }
}

/// `s3://BUCKET/<unique prefix>` on the test S3 service. Fails (never skips) when the
/// service's environment is missing. `open_storage` reads the endpoint from
/// `AWS_ENDPOINT_URL`, which must point at the test service, never at real AWS.
pub fn s3_location(test: &str) -> String {
    let endpoint = required_env("VECSHARD_TEST_S3_ENDPOINT");
    let bucket = required_env("VECSHARD_TEST_S3_BUCKET");
    let aws_endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert_eq!(
        aws_endpoint, endpoint,
        "AWS_ENDPOINT_URL must be the test service's endpoint: {HOW_TO_START}"
    );
    format!("s3://{bucket}/{}", unique(test))
}

/// The test DynamoDB endpoint. Fails (never skips) when unset.
pub fn dynamodb_endpoint() -> String {
    required_env("VECSHARD_TEST_DYNAMODB_ENDPOINT")
}
