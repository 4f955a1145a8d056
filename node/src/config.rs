//! The node's configuration: built-in defaults, then an optional TOML file, then
//! `VECSHARD__SECTION__KEY` environment variables, validated before anything starts.
//!
//! Every error names the key it is about (`node.grpc_addr`, `engine.memtable_bytes` …).
//! Unknown keys inside the node's sections (`node`, `cluster`, `engine`) are errors, so
//! a typo never silently falls back to a default; other top-level sections belong to
//! other components (a shared file may configure a router too) and are left alone.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};
use serde::{Deserialize, Serialize};
use vecshard_engine::{Durability, Options, Prefetch, SegmentFormat};
use vecshard_security::{Secret, TlsFiles};

/// Built-in defaults; every key the node reads appears here (and only these keys are
/// accepted in the node's sections).
pub const DEFAULTS: &str = r#"
[node]
# A stable name, unique in the cluster; empty: the host name.
id = ""
# gRPC listen address for routers (port 0: any free port).
grpc_addr = "127.0.0.1:7100"
# HTTP listen address for /healthz, /readyz and /metrics (port 0: any free port).
http_addr = "127.0.0.1:7180"
# The gRPC address routers should dial (`host:port`); empty: the bound gRPC address.
# Required when grpc_addr listens on 0.0.0.0 or [::] and routers are configured.
advertise_addr = ""
# The node's failure zone (a rack, an availability zone); empty: none. The replicas of a
# shard go to nodes in distinct zones when enough zones have live nodes.
zone = ""
# Local shards live under <data_dir>/<collection>-<incarnation>/shard-<nnnn>.
data_dir = "vecshard-data"
# Writes a shard accepts while earlier ones are queued or running; beyond it a write
# gets RESOURCE_EXHAUSTED ("busy, retry"). Larger absorbs bursts, smaller bounds the
# memory and the latency of queued writes.
mailbox_capacity = 256
# Most points a shard's actor groups into one engine write (queued writes are merged
# so they share one WAL sync).
write_group_points = 20000
# Threads that run searches, gets and scans; 0: one per core.
search_threads = 0
# Reads that may wait for a search thread; beyond it a read gets RESOURCE_EXHAUSTED.
read_queue = 1024
# Largest gRPC message accepted or sent, in bytes.
max_message_bytes = 67108864
# How often a READER shard looks for the writer's newer manifests.
reader_refresh_ms = 1000
# How long a graceful shutdown waits for in-flight calls before closing shards anyway.
shutdown_timeout_ms = 20000
# Memory the node's shards may claim, in bytes; 0: unlimited. Each shard counts at an
# estimate: a writer engine.memtable_bytes x 3 (the active memtable and two waiting for
# their flush), plus engine.block_cache_bytes for an object-store shard. An assignment
# beyond the budget is refused (RESOURCE_EXHAUSTED) and the shard shows FAILED with the
# reason in the node's status.
memory_budget_bytes = 0
# Replicated shards (replication_factor > 1): bytes of recent writes a primary keeps in
# memory to resend to a follower that missed them. A follower further behind needs a
# catch-up copy (not implemented yet) and stops counting for acknowledgements.
replica_tail_bytes = 67108864
# Replicated shards: how long a primary waits for its followers to acknowledge a write
# that carries no deadline of its own (routers always send one), and the deadline of one
# call to a follower.
replica_ack_timeout_ms = 10000
# Replicated shards with write_ack `all`: how long an in-sync follower may hold back a
# write before its primary has it dropped from the in-sync set (through the routers'
# shard map) and acknowledges without it.
replica_lag_timeout_ms = 10000

[cluster]
# Router gRPC addresses (`host:port`) to register with and send heartbeats to; empty:
# standalone (ready as soon as it serves).
routers = []
# Heartbeat period. Routers declare a node down after their own timeout, so keep this
# well below it.
heartbeat_interval_ms = 1000
# Deadline of one RegisterNode or Heartbeat call.
rpc_timeout_ms = 2000
# Object-store prefixes this node may open shards under, such as "s3://bucket/prefix" (a
# shard's URL must equal one or lie below it); list the routers' router.allowed_storage.
# Empty: local shards (under node.data_dir) only. A node never opens anything else,
# whoever asks.
allowed_storage = []
# TLS (PEM files): this node's certificate (naming vecshard://node/<node.id>) and key,
# and the cluster CA. Set all three or none. With TLS the gRPC listener accepts only
# clients with a certificate the CA signed, and only routers' certificates may call it;
# routers are dialled over TLS and verified against the CA.
tls_cert = ""
tls_key = ""
tls_ca = ""
# Shared secret (at least 16 characters) every internal call carries, for clusters
# without TLS; the routers' router.cluster_secret must be the same. Prefer secret_file
# or VECSHARD__CLUSTER__SECRET.
secret = ""
secret_file = ""

[engine]
# Memtable size per shard; larger means fewer segments and a longer WAL replay.
memtable_bytes = 67108864
# Memory bound of the object-store block cache, per shard.
block_cache_bytes = 268435456
# On-disk cache directory for object-store shards; empty: none.
cache_dir = ""
# Size bound of cache_dir, per shard.
cache_dir_bytes = 10737418240
# Ranged GETs an object-store shard has in flight at once (a prefetch a quarter of them),
# and idle connections it keeps (at least 1); cold searches ask for tens of blocks per step.
object_requests = 64
# What an object-store shard of format-2 segments warms at open while it already serves:
# "none", "upper-layers" (the blocks where the graph's descents land, ~rows/256 blocks)
# or "all" (every block: into cache_dir when set, else the block cache up to its bound).
prefetch = "upper-layers"
# Lazy (format-2) searches on object stores: graph candidates expanded per round of block
# reads. 1 gives the mapped search's answers; 8 cuts a cold query's rounds about 4x (each
# round costs the store's first-byte latency) with a wider walk (higher recall, ~5-10 %
# more bytes read than 4).
read_batch = 8
# true: widen to read_batch only in rounds that must read blocks from the caches or the
# store; a round whose blocks are all in memory expands one candidate, so a warm search
# answers as the mapped one. false: every round expands read_batch candidates.
read_batch_adaptive = true
# Format of new segments: "v1" (read whole at open), "auto" (2 on object stores, read
# lazily in 4 KiB blocks: for shards larger than memory; 1 on local disk) or "v2".
# Builds before 2026-12 cannot read format 2: upgrade every node before choosing it.
segment_format = "v1"
# "sync" (an acknowledged write survives a machine crash) or "buffered" (local disk
# only: survives a process crash, not a power loss).
durability = "sync"
# Merge policy cap: at most this many segments per shard once background compaction
# catches up (searches walk every segment; a lower cap rewrites rows more often).
max_segments = 3
# Threads for flushes and compactions, shared by all shards, at a lower scheduling priority
# than searches; 0: all cores but one (at least one).
background_threads = 0
# Where object-store shards commit manifest versions: "" (create-once objects in the
# store itself) or "dynamodb:TABLE" (a DynamoDB table, endpoint and credentials from the
# AWS_* environment). Local shards ignore it. WAL objects still need a store with
# conditional writes: a writer refuses to open on one without.
commit_store = ""
"#;

/// Sections the node owns; unknown keys in them are errors.
const SECTIONS: &[&str] = &["node", "cluster", "engine"];

/// The whole node configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The process: identity, listeners, data directory, queues.
    pub node: NodeSection,
    /// Where the routers are.
    pub cluster: ClusterSection,
    /// Engine defaults for every shard this node opens.
    pub engine: EngineSection,
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSection {
    /// A stable name, unique in the cluster (empty: the host name).
    pub id: String,
    /// gRPC listen address (port 0: any free port).
    pub grpc_addr: String,
    /// HTTP listen address for health and metrics (port 0: any free port).
    pub http_addr: String,
    /// The address routers dial; empty: the bound gRPC address.
    pub advertise_addr: String,
    /// Failure zone for replica placement; empty: none.
    pub zone: String,
    /// Local shards live under `<data_dir>/<collection>-<incarnation>/shard-<nnnn>`.
    pub data_dir: PathBuf,
    /// Writes queued or running per shard before writes get "busy".
    pub mailbox_capacity: usize,
    /// Most points grouped into one engine write.
    pub write_group_points: usize,
    /// Search threads (0: one per core).
    pub search_threads: usize,
    /// Reads waiting for a search thread before reads get "busy".
    pub read_queue: usize,
    /// Largest gRPC message, in bytes.
    pub max_message_bytes: usize,
    /// READER refresh period.
    pub reader_refresh_ms: u64,
    /// Graceful shutdown bound.
    pub shutdown_timeout_ms: u64,
    /// Memory the shards may claim, by estimate ([`crate::budget`]); 0: unlimited.
    pub memory_budget_bytes: u64,
    /// Bytes of recent writes a replicated shard's primary keeps to resend.
    pub replica_tail_bytes: usize,
    /// A replicated write's wait without a deadline, and one follower call's deadline.
    pub replica_ack_timeout_ms: u64,
    /// With `all`: how long a follower may hold back writes before it leaves the ISR.
    pub replica_lag_timeout_ms: u64,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSection {
    /// Router gRPC addresses (`host:port`).
    pub routers: Vec<String>,
    /// Heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Deadline of one call to a router.
    pub rpc_timeout_ms: u64,
    /// Object-store prefixes shards may live under (empty: local shards only).
    pub allowed_storage: Vec<String>,
    /// This node's TLS certificate chain (PEM); with `tls_key` and `tls_ca`.
    pub tls_cert: String,
    /// This node's TLS private key (PEM).
    pub tls_key: String,
    /// The cluster CA (PEM).
    pub tls_ca: String,
    /// The cluster secret (clusters without TLS).
    pub secret: String,
    /// A file holding the cluster secret.
    pub secret_file: String,
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSection {
    /// Memtable size per shard.
    pub memtable_bytes: usize,
    /// Block cache bound per object-store shard.
    pub block_cache_bytes: u64,
    /// On-disk cache directory (empty: none).
    pub cache_dir: String,
    /// Size bound of the cache directory.
    pub cache_dir_bytes: u64,
    /// Ranged GETs in flight per object-store shard.
    pub object_requests: usize,
    /// `none`, `upper-layers` or `all`.
    pub prefetch: String,
    /// Candidates a lazy search expands per round of block reads.
    pub read_batch: usize,
    /// Widen to `read_batch` only in rounds that read blocks.
    pub read_batch_adaptive: bool,
    /// `auto`, `v1` or `v2`.
    pub segment_format: String,
    /// `sync` or `buffered`.
    pub durability: String,
    /// Merge policy cap on segments per shard.
    pub max_segments: usize,
    /// Background (flush and compaction) threads; 0: all cores but one.
    pub background_threads: usize,
    /// Manifest commit store of object-store shards: empty or `dynamodb:TABLE`.
    pub commit_store: String,
}

/// A configuration that cannot be used, naming the key (or file) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A key has a bad value, or is unknown.
    #[error("config key `{key}`: {message}")]
    Key {
        /// The dotted key, e.g. `node.grpc_addr`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file cannot be read or parsed.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why it cannot be used.
        message: String,
    },
}

impl ConfigError {
    /// The key at fault, if the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            ConfigError::File { .. } => None,
        }
    }

    fn key_err(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl Default for NodeConfig {
    /// The built-in defaults, not yet validated (`node.id` is empty until
    /// [`NodeConfig::validated`] fills in the host name; [`crate::start`] validates).
    fn default() -> Self {
        Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("the built-in defaults deserialize")
    }
}

/// Load the configuration: defaults, then `path` (if given), then the process's
/// `VECSHARD__SECTION__KEY` variables; validated.
pub fn load_config(path: Option<&Path>) -> Result<NodeConfig, ConfigError> {
    load_layers(path, None)
}

/// Like [`load_config`] but with the environment given as a map (for tests and for
/// embedding: the process environment is not read).
pub fn load_config_with_env(
    path: Option<&Path>,
    env: HashMap<String, String>,
) -> Result<NodeConfig, ConfigError> {
    load_layers(path, Some(env))
}

fn load_layers(
    path: Option<&Path>,
    env: Option<HashMap<String, String>>,
) -> Result<NodeConfig, ConfigError> {
    let mut builder =
        Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml).required(true));
    if let Some(p) = path {
        if !p.is_file() {
            return Err(ConfigError::File {
                path: p.display().to_string(),
                message: "no such file".into(),
            });
        }
        builder = builder.add_source(File::from(p).format(FileFormat::Toml).required(true));
    }
    let environment = Environment::with_prefix("VECSHARD")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("cluster.routers")
        .with_list_parse_key("cluster.allowed_storage")
        .source(env);
    let built = builder
        .add_source(environment)
        .build()
        .map_err(|e| from_config_error(e, path))?;
    check_unknown_keys(&built)?;
    let cfg: NodeConfig = built
        .try_deserialize()
        .map_err(|e| from_config_error(e, path))?;
    cfg.validated()
}

/// Reject keys the node does not know inside its own sections.
fn check_unknown_keys(built: &Config) -> Result<(), ConfigError> {
    let known = Config::builder()
        .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
        .build()
        .expect("built-in defaults parse");
    for section in SECTIONS {
        let allowed: BTreeSet<String> = known
            .get_table(section)
            .map(|t| t.into_keys().collect())
            .unwrap_or_default();
        let Ok(value) = built.get::<Value>(section) else {
            continue;
        };
        let ValueKind::Table(table) = value.kind else {
            return Err(ConfigError::key_err(section, "must be a table of keys"));
        };
        if let Some((key, v)) = table.iter().find(|(k, _)| !allowed.contains(*k)) {
            let from = v
                .origin()
                .map(|o| format!(" (set in {o})"))
                .unwrap_or_default();
            let expected: Vec<&str> = allowed.iter().map(String::as_str).collect();
            return Err(ConfigError::key_err(
                &format!("{section}.{key}"),
                format!(
                    "unknown key{from}; the keys of [{section}] are: {}",
                    expected.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn from_config_error(e: config::ConfigError, path: Option<&Path>) -> ConfigError {
    use config::ConfigError as C;
    match e {
        C::Type {
            origin,
            unexpected,
            expected,
            key,
        } => ConfigError::Key {
            key: key.unwrap_or_else(|| "?".into()),
            message: format!(
                "invalid value: found {unexpected}, expected {expected}{}",
                origin.map(|o| format!(" (set in {o})")).unwrap_or_default()
            ),
        },
        C::At { error, origin, key } => ConfigError::Key {
            key: key.unwrap_or_else(|| "?".into()),
            message: format!(
                "{error}{}",
                origin.map(|o| format!(" (set in {o})")).unwrap_or_default()
            ),
        },
        C::NotFound(key) => ConfigError::key_err(&key, "missing"),
        // Name the file as the user gave it (the config crate rewrites it relative to the
        // working directory).
        C::FileParse { uri, cause } => ConfigError::File {
            path: path
                .map(|p| p.display().to_string())
                .or(uri)
                .unwrap_or_else(|| "<defaults>".into()),
            message: cause.to_string(),
        },
        other => ConfigError::File {
            path: path
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "<environment>".into()),
            message: other.to_string(),
        },
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::key_err(
            key,
            format!("{value:?} is not a listen address (expected IP:PORT, e.g. 127.0.0.1:7100)"),
        )
    })
}

fn at_least<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::key_err(
            key,
            format!("must be at least {min} (got {value})"),
        ));
    }
    Ok(())
}

fn check_host_port(key: &str, value: &str) -> Result<(), ConfigError> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(ConfigError::key_err(
            key,
            format!("{value:?} is not an address (expected host:port)"),
        )),
    }
}

/// `engine.commit_store`: empty, or `dynamodb:TABLE` with a valid table name in a build
/// with DynamoDB support.
fn check_commit_store(value: &str) -> Result<(), ConfigError> {
    const KEY: &str = "engine.commit_store";
    if value.is_empty() {
        return Ok(());
    }
    let Some(table) = value.strip_prefix("dynamodb:") else {
        return Err(ConfigError::key_err(
            KEY,
            format!("{value:?} is not \"\" or \"dynamodb:TABLE\""),
        ));
    };
    let valid = (3..=255).contains(&table.len())
        && table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(ConfigError::key_err(
            KEY,
            format!(
                "{table:?} is not a DynamoDB table name (3 to 255 letters, digits, '_', '.', '-')"
            ),
        ));
    }
    if !cfg!(feature = "dynamodb") {
        return Err(ConfigError::key_err(
            KEY,
            "this build has no DynamoDB support (feature `dynamodb` of vecshard-node)",
        ));
    }
    Ok(())
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim().to_string();
    (!name.is_empty()).then_some(name)
}

impl NodeConfig {
    /// Check every key; fill in derived defaults (the node id).
    pub fn validated(mut self) -> Result<NodeConfig, ConfigError> {
        if self.node.id.is_empty() {
            self.node.id = host_name().ok_or_else(|| {
                ConfigError::key_err("node.id", "empty and the host name is unknown; set one")
            })?;
        }
        if !self
            .node
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::key_err(
                "node.id",
                format!(
                    "{:?} may contain only letters, digits, '-', '_' and '.'",
                    self.node.id
                ),
            ));
        }
        vecshard_model::validate::zone(&self.node.zone)
            .map_err(|e| ConfigError::key_err("node.zone", e.message()))?;
        let grpc = parse_addr("node.grpc_addr", &self.node.grpc_addr)?;
        parse_addr("node.http_addr", &self.node.http_addr)?;
        if !self.node.advertise_addr.is_empty() {
            check_host_port("node.advertise_addr", &self.node.advertise_addr)?;
        } else if grpc.ip().is_unspecified() && !self.cluster.routers.is_empty() {
            return Err(ConfigError::key_err(
                "node.advertise_addr",
                format!(
                    "required: node.grpc_addr {} listens on every interface, so routers need the address to dial",
                    self.node.grpc_addr
                ),
            ));
        }
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::key_err("node.data_dir", "must not be empty"));
        }
        at_least("node.mailbox_capacity", self.node.mailbox_capacity, 1)?;
        at_least("node.write_group_points", self.node.write_group_points, 1)?;
        at_least(
            "node.replica_tail_bytes",
            self.node.replica_tail_bytes,
            4096,
        )?;
        at_least(
            "node.replica_ack_timeout_ms",
            self.node.replica_ack_timeout_ms,
            10,
        )?;
        at_least("node.read_queue", self.node.read_queue, 1)?;
        at_least("node.max_message_bytes", self.node.max_message_bytes, 4096)?;
        at_least("node.reader_refresh_ms", self.node.reader_refresh_ms, 10)?;
        for (i, r) in self.cluster.routers.iter().enumerate() {
            check_host_port(&format!("cluster.routers[{i}]"), r)?;
        }
        at_least(
            "cluster.heartbeat_interval_ms",
            self.cluster.heartbeat_interval_ms,
            10,
        )?;
        at_least("cluster.rpc_timeout_ms", self.cluster.rpc_timeout_ms, 10)?;
        for (i, p) in self.cluster.allowed_storage.iter().enumerate() {
            crate::placement::parse_storage_url(p).map_err(|why| {
                ConfigError::key_err(
                    &format!("cluster.allowed_storage[{i}]"),
                    format!("{p:?} {why}"),
                )
            })?;
        }
        at_least(
            "engine.memtable_bytes",
            self.engine.memtable_bytes,
            64 << 10,
        )?;
        at_least("engine.max_segments", self.engine.max_segments, 2)?;
        at_least("engine.read_batch", self.engine.read_batch, 1)?;
        at_least("engine.object_requests", self.engine.object_requests, 1)?;
        if self.engine.read_batch > 64 {
            return Err(ConfigError::key_err(
                "engine.read_batch",
                format!("{} is more than 64", self.engine.read_batch),
            ));
        }
        self.durability()?;
        self.prefetch()?;
        self.segment_format()?;
        check_commit_store(&self.engine.commit_store)?;
        self.security()?;
        Ok(self)
    }

    /// The TLS files and cluster secret the `[cluster]` keys name, read and checked.
    pub fn security(&self) -> Result<(Option<TlsFiles>, Option<Secret>), ConfigError> {
        let c = &self.cluster;
        let tls = TlsFiles::load("cluster.", &c.tls_cert, &c.tls_key, &c.tls_ca)
            .map_err(|e| ConfigError::key_err("cluster.tls", e.0))?;
        let secret = Secret::load(
            &c.secret,
            "cluster.secret",
            &c.secret_file,
            "cluster.secret_file",
        )
        .map_err(|e| ConfigError::key_err("cluster.secret", e.0))?;
        Ok((tls, secret))
    }

    /// The engine durability named by `engine.durability`.
    pub fn durability(&self) -> Result<Durability, ConfigError> {
        match self.engine.durability.as_str() {
            "sync" => Ok(Durability::Sync),
            "buffered" => Ok(Durability::Buffered),
            other => Err(ConfigError::key_err(
                "engine.durability",
                format!("{other:?} is not one of \"sync\", \"buffered\""),
            )),
        }
    }

    /// The object-store prefetch policy named by `engine.prefetch`.
    pub fn prefetch(&self) -> Result<Prefetch, ConfigError> {
        match self.engine.prefetch.as_str() {
            "none" => Ok(Prefetch::None),
            "upper-layers" => Ok(Prefetch::UpperLayers),
            "all" => Ok(Prefetch::All),
            other => Err(ConfigError::key_err(
                "engine.prefetch",
                format!("{other:?} is not one of \"none\", \"upper-layers\", \"all\""),
            )),
        }
    }

    /// The format of new segments named by `engine.segment_format`.
    pub fn segment_format(&self) -> Result<SegmentFormat, ConfigError> {
        match self.engine.segment_format.as_str() {
            "auto" => Ok(SegmentFormat::Auto),
            "v1" => Ok(SegmentFormat::V1),
            "v2" => Ok(SegmentFormat::V2),
            other => Err(ConfigError::key_err(
                "engine.segment_format",
                format!("{other:?} is not one of \"auto\", \"v1\", \"v2\""),
            )),
        }
    }

    /// The gRPC listen address (validated).
    pub fn grpc_listen(&self) -> SocketAddr {
        self.node.grpc_addr.parse().expect("validated")
    }

    /// The HTTP listen address (validated).
    pub fn http_listen(&self) -> SocketAddr {
        self.node.http_addr.parse().expect("validated")
    }

    /// Search threads, resolving 0 to the number of cores.
    pub fn search_threads(&self) -> usize {
        match self.node.search_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// Engine options for a shard with this node's defaults (no epoch, writable). The
    /// commit store applies to object-store shards (`local`: false) only.
    pub fn engine_options(&self, local: bool) -> Options {
        let e = &self.engine;
        let commit_store = (!local && !e.commit_store.is_empty()).then(|| e.commit_store.clone());
        Options {
            memtable_bytes: e.memtable_bytes,
            block_cache_bytes: e.block_cache_bytes,
            cache_dir: (!e.cache_dir.is_empty()).then(|| PathBuf::from(&e.cache_dir)),
            cache_dir_bytes: e.cache_dir_bytes,
            object_requests: e.object_requests,
            durability: self.durability().unwrap_or_default(),
            prefetch: self.prefetch().unwrap_or_default(),
            read_ahead: vecshard_engine::ReadAhead {
                batch: e.read_batch,
                adaptive: e.read_batch_adaptive && e.read_batch > 1,
                ..vecshard_engine::ReadAhead::EXACT
            },
            segment_format: self.segment_format().unwrap_or_default(),
            max_segments: e.max_segments,
            background_threads: e.background_threads,
            commit_store,
            ..Options::default()
        }
    }

    /// The allowed object-store prefixes, normalized (validated).
    pub fn allowed_storage(&self) -> Vec<String> {
        self.cluster
            .allowed_storage
            .iter()
            .filter_map(|p| crate::placement::parse_storage_url(p).ok())
            .collect()
    }

    /// The READER refresh period.
    pub fn reader_refresh(&self) -> Duration {
        Duration::from_millis(self.node.reader_refresh_ms)
    }

    /// The heartbeat period.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.cluster.heartbeat_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_are_valid() {
        let mut d = NodeConfig::default();
        d.node.id = "n1".into();
        assert_eq!(d.clone().validated().unwrap(), d);
        let c = load_config_with_env(None, env(&[("VECSHARD__NODE__ID", "n1")])).unwrap();
        assert_eq!(c.node.id, "n1");
        assert_eq!(c.node.mailbox_capacity, 256);
        assert_eq!(c.engine.memtable_bytes, 64 << 20);
        assert!(c.cluster.routers.is_empty());
    }

    #[test]
    fn object_requests_reach_the_shard_storage() {
        let c = load_config_with_env(None, env(&[("VECSHARD__NODE__ID", "n1")])).unwrap();
        assert_eq!(c.engine_options(false).storage_options().max_requests, 64);
        let f = file("[node]\nid = \"n1\"\n[engine]\nobject_requests = 7\n");
        let c = load_config_with_env(Some(f.path()), env(&[])).unwrap();
        assert_eq!(c.engine_options(false).storage_options().max_requests, 7);
    }

    #[test]
    fn file_then_env_override() {
        let f = file(
            "[node]\nid = \"from-file\"\nmailbox_capacity = 8\n[cluster]\nrouters = [\"r1:7000\"]\n",
        );
        let c = load_config_with_env(
            Some(f.path()),
            env(&[
                ("VECSHARD__NODE__MAILBOX_CAPACITY", "16"),
                ("VECSHARD__CLUSTER__ROUTERS", "a:1,b:2"),
                ("VECSHARD__ENGINE__DURABILITY", "buffered"),
            ]),
        )
        .unwrap();
        assert_eq!(c.node.id, "from-file");
        assert_eq!(c.node.mailbox_capacity, 16);
        assert_eq!(c.cluster.routers, vec!["a:1", "b:2"]);
        assert_eq!(c.durability(), Ok(Durability::Buffered));
    }

    #[test]
    fn unknown_key_is_named() {
        let f = file("[node]\nid = \"n\"\nmailbx_capacity = 8\n");
        let e = load_config_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(e.key(), Some("node.mailbx_capacity"), "{e}");
        assert!(e.to_string().contains("unknown key"), "{e}");
        let e =
            load_config_with_env(None, env(&[("VECSHARD__ENGINE__MEMTABLE", "1")])).unwrap_err();
        assert_eq!(e.key(), Some("engine.memtable"), "{e}");
    }

    #[test]
    fn other_sections_are_left_alone() {
        let f = file("[node]\nid = \"n\"\n[router]\nraft_dir = \"x\"\n");
        load_config_with_env(Some(f.path()), env(&[])).unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v, key) in [
            (
                "VECSHARD__NODE__MAILBOX_CAPACITY",
                "lots",
                "node.mailbox_capacity",
            ),
            (
                "VECSHARD__NODE__MAILBOX_CAPACITY",
                "0",
                "node.mailbox_capacity",
            ),
            ("VECSHARD__NODE__GRPC_ADDR", "localhost", "node.grpc_addr"),
            (
                "VECSHARD__NODE__HTTP_ADDR",
                "1.2.3.4:99999",
                "node.http_addr",
            ),
            (
                "VECSHARD__ENGINE__MEMTABLE_BYTES",
                "1000",
                "engine.memtable_bytes",
            ),
            ("VECSHARD__ENGINE__DURABILITY", "maybe", "engine.durability"),
            ("VECSHARD__NODE__ZONE", "eu west", "node.zone"),
            ("VECSHARD__ENGINE__PREFETCH", "some", "engine.prefetch"),
            ("VECSHARD__ENGINE__READ_BATCH", "0", "engine.read_batch"),
            ("VECSHARD__ENGINE__READ_BATCH", "65", "engine.read_batch"),
            (
                "VECSHARD__ENGINE__OBJECT_REQUESTS",
                "0",
                "engine.object_requests",
            ),
            (
                "VECSHARD__ENGINE__SEGMENT_FORMAT",
                "v3",
                "engine.segment_format",
            ),
            (
                "VECSHARD__CLUSTER__ROUTERS",
                "nocolon",
                "cluster.routers[0]",
            ),
            ("VECSHARD__NODE__ID", "a b", "node.id"),
        ] {
            let e = load_config_with_env(None, env(&[("VECSHARD__NODE__ID", "n"), (k, v)]))
                .unwrap_err();
            assert_eq!(e.key(), Some(key), "{k}={v}: {e}");
            // The key is named once, not again by the rule's own field.
            let last = key.rsplit('.').next().unwrap_or(key);
            assert!(!e.to_string().contains(&format!("{last}: {last}")), "{e}");
        }
        let f = file("[node]\nid = \"n\"\nsearch_threads = \"two\"\n");
        let e = load_config_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert_eq!(e.key(), Some("node.search_threads"), "{e}");
    }

    #[test]
    fn lazy_reads_widen_only_when_they_miss_by_default() {
        let load = |vars: &[(&str, &str)]| {
            let mut all = vec![("VECSHARD__NODE__ID", "n")];
            all.extend_from_slice(vars);
            load_config_with_env(None, env(&all))
                .unwrap()
                .engine_options(false)
                .read_ahead
        };
        assert_eq!(load(&[]), vecshard_engine::ReadAhead::adaptive(8));
        assert_eq!(
            load(&[("VECSHARD__ENGINE__READ_BATCH", "1")]),
            vecshard_engine::ReadAhead::EXACT
        );
        let every_round = load(&[("VECSHARD__ENGINE__READ_BATCH_ADAPTIVE", "false")]);
        assert_eq!((every_round.batch, every_round.adaptive), (8, false));
    }

    #[test]
    fn commit_store_is_checked_and_applies_to_object_store_shards() {
        let load = |v: &str| {
            load_config_with_env(
                None,
                env(&[
                    ("VECSHARD__NODE__ID", "n"),
                    ("VECSHARD__ENGINE__COMMIT_STORE", v),
                ]),
            )
        };
        for bad in ["etcd:x", "dynamodb:", "dynamodb:a b", "dynamodb"] {
            let e = load(bad).unwrap_err();
            assert_eq!(e.key(), Some("engine.commit_store"), "{bad}: {e}");
        }
        let c = load("").unwrap();
        assert_eq!(c.engine_options(false).commit_store, None);
        let loaded = load("dynamodb:vecshard-commits");
        if cfg!(feature = "dynamodb") {
            let c = loaded.unwrap();
            let want = Some("dynamodb:vecshard-commits".to_string());
            assert_eq!(c.engine_options(false).commit_store, want);
            assert_eq!(c.engine_options(true).commit_store, None, "local shards");
        } else {
            let e = loaded.unwrap_err();
            assert_eq!(e.key(), Some("engine.commit_store"), "{e}");
            assert!(e.to_string().contains("no DynamoDB support"), "{e}");
        }
    }

    #[test]
    fn unspecified_listen_needs_advertise_with_routers() {
        let e = load_config_with_env(
            None,
            env(&[
                ("VECSHARD__NODE__ID", "n"),
                ("VECSHARD__NODE__GRPC_ADDR", "0.0.0.0:7100"),
                ("VECSHARD__CLUSTER__ROUTERS", "r:1"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("node.advertise_addr"), "{e}");
    }

    #[test]
    fn missing_and_broken_files() {
        let e = load_config_with_env(Some(Path::new("/nonexistent/x.toml")), env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }), "{e}");
        let f = file("[node\nid=");
        let e = load_config_with_env(Some(f.path()), env(&[])).unwrap_err();
        assert!(
            e.to_string().contains(&f.path().display().to_string()),
            "{e}"
        );
    }
}
