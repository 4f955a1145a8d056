//! Manifest versions in a DynamoDB table.
//!
//! It fences manifest versions only: WAL units are still created conditionally in the
//! shard's storage, so a writer still needs a store that honours `If-None-Match` (checked at
//! open; a store that overwrites is refused — see `docs/design/004-wal-damage-and-fencing.md`).
//! Readers work on any store.
//!
//! Table (create it with [`create_table_if_missing`] or by hand): partition key `base_uri`
//! (S, the shard's storage URI), sort key `version` (N), on-demand billing. One item per
//! version:
//!
//! | attribute | type | |
//! | --- | --- | --- |
//! | `base_uri` | S | the shard, e.g. `s3://bucket/collection/shard-3` |
//! | `version` | N | the manifest version |
//! | `manifest` | B | the manifest bytes, when at most [`INLINE_MANIFEST_MAX`] |
//! | `manifest_key` | S | otherwise: the key in the shard's storage holding them |
//!
//! A version is created with `PutItem` conditioned on `attribute_not_exists(version)`, so
//! exactly one writer wins it; the latest is a consistent `Query` in descending order with
//! `Limit 1`. A large manifest is first written to the storage under a key no other writer
//! can choose (`manifest/<20-digit version>.<random hex>`), then the item points at it.
//!
//! Retries are ours (the SDK's are off): a create whose earlier attempt may have reached
//! DynamoDB reads the item back and counts it as created when it holds its own manifest.

use std::sync::Arc;
use std::time::Duration;

pub use aws_sdk_dynamodb;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use bytes::Bytes;
use std::collections::HashMap;

use crate::commit::CommitStore;
use crate::error::{Error, ErrorKind, Result};
use crate::paths;
use crate::storage::{RetrySettings, Storage, retry, runtime};

/// Largest manifest stored inside its item (DynamoDB items are limited to 400 KB).
pub const INLINE_MANIFEST_MAX: usize = 350 * 1024;

const BASE_URI: &str = "base_uri";
const VERSION: &str = "version";
const MANIFEST: &str = "manifest";
const MANIFEST_KEY: &str = "manifest_key";

/// Manifest versions of one shard in a DynamoDB table.
#[derive(Debug)]
pub struct DynamoCommitStore {
    client: Client,
    table: String,
    base_uri: String,
    storage: Arc<dyn Storage>,
    retry: RetrySettings,
}

/// Builds a [`DynamoCommitStore`].
#[derive(Debug)]
pub struct DynamoCommitStoreBuilder {
    table: String,
    base_uri: String,
    storage: Arc<dyn Storage>,
    endpoint: Option<String>,
    retry: RetrySettings,
    interceptors: Vec<SharedInterceptor>,
}

impl DynamoCommitStoreBuilder {
    /// Talk to this endpoint instead of the one from `AWS_ENDPOINT_URL_DYNAMODB`,
    /// `AWS_ENDPOINT_URL` or the region's default.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Retries and timeouts.
    pub fn retry(mut self, retry: &RetrySettings) -> Self {
        self.retry = retry.clone();
        self
    }

    /// Add an SDK interceptor to every request (metrics, tracing, fault injection in tests).
    pub fn interceptor(mut self, interceptor: SharedInterceptor) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// The store (loads the AWS configuration; no request is made).
    pub fn build(self) -> Result<DynamoCommitStore> {
        if self.table.is_empty() {
            return Err(Error::invalid(
                "commit store `dynamodb:`: no table name (dynamodb:TABLE)",
            ));
        }
        let client = connect(self.endpoint, &self.retry, self.interceptors)?;
        Ok(DynamoCommitStore {
            client,
            table: self.table,
            base_uri: self.base_uri,
            storage: self.storage,
            retry: self.retry,
        })
    }
}

impl DynamoCommitStore {
    /// Versions of the shard `base_uri` in `table`; large manifests go to `storage`.
    pub fn builder(
        table: &str,
        base_uri: &str,
        storage: Arc<dyn Storage>,
    ) -> DynamoCommitStoreBuilder {
        DynamoCommitStoreBuilder {
            table: table.to_string(),
            base_uri: base_uri.to_string(),
            storage,
            endpoint: None,
            retry: RetrySettings::default(),
            interceptors: Vec::new(),
        }
    }

    /// The store for a `dynamodb:TABLE` spec (endpoint and credentials from the
    /// environment, default retries).
    pub fn from_spec(spec: &str, base_uri: &str, storage: Arc<dyn Storage>) -> Result<Self> {
        let table = spec.strip_prefix("dynamodb:").ok_or_else(|| {
            Error::invalid(format!("commit store `{spec}`: expected `dynamodb:TABLE`"))
        })?;
        Self::builder(table, base_uri, storage).build()
    }

    fn what(&self, version: Option<u64>) -> String {
        match version {
            Some(v) => format!(
                "manifest version {v} of {} in dynamodb table {}",
                self.base_uri, self.table
            ),
            None => format!(
                "manifests of {} in dynamodb table {}",
                self.base_uri, self.table
            ),
        }
    }

    fn sdk_err<E>(&self, op: &str, version: Option<u64>, e: SdkError<E>) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::new(
            ErrorKind::Io,
            format!("{op} {}: {}", self.what(version), DisplayErrorContext(&e)),
        )
        .with_source(e)
    }

    fn key(&self, version: u64) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                BASE_URI.to_string(),
                AttributeValue::S(self.base_uri.clone()),
            ),
            (VERSION.to_string(), AttributeValue::N(version.to_string())),
        ])
    }

    /// The item of `version`, read consistently.
    fn get_item(&self, version: u64) -> Result<Option<HashMap<String, AttributeValue>>> {
        let (client, table, key, settings) = (
            self.client.clone(),
            self.table.clone(),
            self.key(version),
            self.retry.clone(),
        );
        let got = runtime::run(async move { get_item(&client, &table, key, &settings).await })?;
        got.map_err(|e| self.sdk_err("read", Some(version), e))
    }

    /// Versions in order (ascending or descending), at most `limit` of them.
    fn query_versions(&self, ascending: bool, limit: Option<i32>) -> Result<Vec<u64>> {
        let (client, table, base_uri, settings) = (
            self.client.clone(),
            self.table.clone(),
            self.base_uri.clone(),
            self.retry.clone(),
        );
        let items = runtime::run(async move {
            let mut out = Vec::new();
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let page = retry::retry(&settings, sdk_transient, || {
                    client
                        .query()
                        .table_name(&table)
                        .key_condition_expression("#u = :u")
                        .expression_attribute_names("#u", BASE_URI)
                        .expression_attribute_names("#v", VERSION)
                        .expression_attribute_values(":u", AttributeValue::S(base_uri.clone()))
                        .projection_expression("#v")
                        .scan_index_forward(ascending)
                        .consistent_read(true)
                        .set_limit(limit)
                        .set_exclusive_start_key(start.clone())
                        .send()
                })
                .await?;
                out.extend(page.items().iter().cloned());
                start = page.last_evaluated_key().cloned();
                let full = limit.is_some_and(|l| out.len() >= l as usize);
                if start.is_none() || full {
                    return Ok(out);
                }
            }
        })?;
        let items = items.map_err(|e| self.sdk_err("list", None, e))?;
        items
            .iter()
            .map(|item| self.version_of(item))
            .collect::<Result<Vec<_>>>()
    }

    fn version_of(&self, item: &HashMap<String, AttributeValue>) -> Result<u64> {
        match item.get(VERSION) {
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| {
                Error::corrupt(&self.what(None), format!("version `{n}` is not a u64"))
            }),
            _ => Err(Error::corrupt(
                &self.what(None),
                "an item without a numeric version",
            )),
        }
    }

    /// The manifest an item holds: inline bytes, or the storage key of its body.
    fn body_of(&self, version: u64, item: &HashMap<String, AttributeValue>) -> Result<Body> {
        match (item.get(MANIFEST), item.get(MANIFEST_KEY)) {
            (Some(AttributeValue::B(b)), _) => {
                Ok(Body::Inline(Bytes::from(b.clone().into_inner())))
            }
            (_, Some(AttributeValue::S(key))) => Ok(Body::Key(key.clone())),
            _ => Err(Error::corrupt(
                &self.what(Some(version)),
                "the item has neither `manifest` (B) nor `manifest_key` (S)",
            )),
        }
    }

    /// A storage key for a large manifest body that no other writer can pick.
    fn body_key(version: u64) -> String {
        let mut nonce = [0u8; 16];
        // If the OS cannot give randomness, time and pid still separate writers.
        if getrandom::fill(&mut nonce).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            nonce[..8].copy_from_slice(&(t as u64).to_le_bytes());
            nonce[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}.{hex}", paths::manifest(version))
    }

    /// Put the item unless `version` exists. `Ok(true)` if it is ours: created now, or
    /// found holding exactly `body` after an attempt that may have reached DynamoDB.
    fn put_item_once(&self, version: u64, body: &Body) -> Result<bool> {
        let mut item = self.key(version);
        match body {
            Body::Inline(b) => {
                item.insert(MANIFEST.into(), AttributeValue::B(Blob::new(b.to_vec())))
            }
            Body::Key(k) => item.insert(MANIFEST_KEY.into(), AttributeValue::S(k.clone())),
        };
        let (client, table, settings) =
            (self.client.clone(), self.table.clone(), self.retry.clone());
        let key = self.key(version);
        let outcome = runtime::run(async move {
            let mut backoff = retry::Backoff::new(&settings);
            let mut maybe_written = false;
            loop {
                let attempt = client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(#v)")
                    .expression_attribute_names("#v", VERSION)
                    .send()
                    .await;
                match attempt {
                    Ok(_) => return Ok(Created::Yes),
                    Err(e) if is_conditional_failure(&e) => {
                        if !maybe_written {
                            return Ok(Created::No);
                        }
                        let found = get_item(&client, &table, key, &settings).await?;
                        return Ok(Created::Check(found));
                    }
                    Err(e) if sdk_transient(&e) && backoff.wait().await => {
                        tracing::debug!(version, error = %DisplayErrorContext(&e), "PutItem failed; retrying and checking");
                        maybe_written = true;
                    }
                    Err(e) => return Err(PutFailure::Put(e)),
                }
            }
        })?;
        match outcome {
            Ok(Created::Yes) => Ok(true),
            Ok(Created::No) => Ok(false),
            Ok(Created::Check(None)) => Ok(false),
            Ok(Created::Check(Some(found))) => Ok(self.body_of(version, &found)? == *body),
            Err(PutFailure::Put(e)) => Err(self.sdk_err("create", Some(version), e)),
            Err(PutFailure::Get(e)) => Err(self.sdk_err("check created", Some(version), e)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    Inline(Bytes),
    Key(String),
}

enum Created {
    Yes,
    No,
    /// Lost the condition after an attempt that may have written: the item found.
    Check(Option<HashMap<String, AttributeValue>>),
}

enum PutFailure {
    Put(SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>),
    Get(SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>),
}

impl From<SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>> for PutFailure {
    fn from(e: SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>) -> Self {
        PutFailure::Get(e)
    }
}

fn is_conditional_failure(
    e: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_conditional_check_failed_exception())
}

async fn get_item(
    client: &Client,
    table: &str,
    key: HashMap<String, AttributeValue>,
    settings: &RetrySettings,
) -> std::result::Result<
    Option<HashMap<String, AttributeValue>>,
    SdkError<aws_sdk_dynamodb::operation::get_item::GetItemError>,
> {
    let out = retry::retry(settings, sdk_transient, || {
        client
            .get_item()
            .table_name(table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
    })
    .await?;
    Ok(out.item().cloned())
}

/// Whether a DynamoDB error may go away on retry: timeouts, dropped connections,
/// unparseable responses, 5xx, throttling.
fn sdk_transient<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            s.raw().status().as_u16() >= 500
                || matches!(
                    s.err().code(),
                    Some(
                        "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                            | "RequestLimitExceeded"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                    )
                )
        }
        // `SdkError` is non-exhaustive; an unknown kind is not retried.
        _ => false,
    }
}

/// A client with the SDK's own retries off (ours decide) and our timeouts. The endpoint is
/// `endpoint`, else `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`, else AWS's.
fn connect(
    endpoint: Option<String>,
    settings: &RetrySettings,
    interceptors: Vec<SharedInterceptor>,
) -> Result<Client> {
    let endpoint = endpoint
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .filter(|e| !e.is_empty());
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .operation_attempt_timeout(Duration::from_millis(settings.request_timeout_ms))
        .build();
    runtime::run(async move {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(endpoint) = &endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let conf = loader.load().await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&conf);
        if conf.region().is_none() && endpoint.is_some() {
            // A local endpoint (moto, DynamoDB Local) still needs a region to sign with.
            builder = builder.region(aws_sdk_dynamodb::config::Region::new("us-east-1"));
        }
        for interceptor in interceptors {
            builder.push_interceptor(interceptor);
        }
        Client::from_conf(builder.build())
    })
}

impl CommitStore for DynamoCommitStore {
    fn latest_version(&self) -> Result<Option<u64>> {
        Ok(self.query_versions(false, Some(1))?.first().copied())
    }

    fn read(&self, version: u64) -> Result<Bytes> {
        let Some(item) = self.get_item(version)? else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{} not found", self.what(Some(version))),
            ));
        };
        match self.body_of(version, &item)? {
            Body::Inline(bytes) => Ok(bytes),
            Body::Key(key) => self.storage.get(&key),
        }
    }

    fn create(&self, version: u64, bytes: Bytes) -> Result<bool> {
        if bytes.len() <= INLINE_MANIFEST_MAX {
            return self.put_item_once(version, &Body::Inline(bytes));
        }
        let key = Self::body_key(version);
        self.storage.put(&key, bytes)?;
        let created = self.put_item_once(version, &Body::Key(key.clone()));
        if let Ok(false) = created {
            // Another writer has this version; our body is garbage. Best effort: a body
            // left behind is only unreferenced bytes.
            if let Err(e) = self.storage.delete(&key) {
                tracing::warn!(%key, error = %e, "cannot delete the body of a lost manifest");
            }
        }
        created
    }

    fn versions(&self) -> Result<Vec<u64>> {
        self.query_versions(true, None)
    }

    fn delete(&self, version: u64) -> Result<()> {
        let Some(item) = self.get_item(version)? else {
            return Ok(());
        };
        let body = self.body_of(version, &item).ok();
        let (client, table, key, settings) = (
            self.client.clone(),
            self.table.clone(),
            self.key(version),
            self.retry.clone(),
        );
        let deleted = runtime::run(async move {
            retry::retry(&settings, sdk_transient, || {
                client
                    .delete_item()
                    .table_name(&table)
                    .set_key(Some(key.clone()))
                    .send()
            })
            .await
        })?;
        deleted.map_err(|e| self.sdk_err("delete", Some(version), e))?;
        // The item goes first, so no reader finds a key whose body is gone.
        if let Some(Body::Key(key)) = body {
            self.storage.delete(&key)?;
        }
        Ok(())
    }
}

/// Create the commit table (`base_uri` S partition key, `version` N sort key, on-demand
/// billing) unless it exists, and wait until it is active. `Ok(true)` if it was created.
/// Same endpoint rules as [`DynamoCommitStoreBuilder::endpoint`].
pub fn create_table_if_missing(table: &str, endpoint: Option<&str>) -> Result<bool> {
    let settings = RetrySettings::default();
    let client = connect(endpoint.map(str::to_string), &settings, Vec::new())?;
    let name = table.to_string();
    let created = runtime::run(async move { ensure_table(&client, &name, &settings).await })?;
    created.map_err(|msg| {
        Error::new(
            ErrorKind::Io,
            format!("create dynamodb table {table}: {msg}"),
        )
    })
}

async fn ensure_table(
    client: &Client,
    table: &str,
    settings: &RetrySettings,
) -> std::result::Result<bool, String> {
    let describe = || async {
        retry::retry(settings, sdk_transient, || {
            client.describe_table().table_name(table).send()
        })
        .await
    };
    let created = match describe().await {
        Ok(_) => false,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            create_table(client, table, settings).await?
        }
        Err(e) => return Err(DisplayErrorContext(&e).to_string()),
    };
    // Poll until ACTIVE (on AWS a new table takes a few seconds; moto is immediate).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let out = describe()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        let status = out.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(created);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("not active after 120 s (status {status:?})"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create_table(
    client: &Client,
    table: &str,
    settings: &RetrySettings,
) -> std::result::Result<bool, String> {
    let attr = |name: &str, ty| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
            .map_err(|e| e.to_string())
    };
    let key = |name: &str, ty| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(ty)
            .build()
            .map_err(|e| e.to_string())
    };
    let attrs = vec![
        attr(BASE_URI, ScalarAttributeType::S)?,
        attr(VERSION, ScalarAttributeType::N)?,
    ];
    let schema = vec![key(BASE_URI, KeyType::Hash)?, key(VERSION, KeyType::Range)?];
    let out = retry::retry(settings, sdk_transient, || {
        client
            .create_table()
            .table_name(table)
            .set_attribute_definitions(Some(attrs.clone()))
            .set_key_schema(Some(schema.clone()))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
    })
    .await;
    match out {
        Ok(_) => Ok(true),
        // Someone else created it meanwhile.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(DisplayErrorContext(&e).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keys_are_unique_and_not_versions() {
        let a = DynamoCommitStore::body_key(7);
        let b = DynamoCommitStore::body_key(7);
        assert_ne!(a, b);
        assert!(a.starts_with("manifest/00000000000000000007."));
        assert_eq!(
            paths::number_of(&a),
            None,
            "never mistaken for a version file"
        );
    }
}
