//! Router configuration: built-in defaults, then a TOML file, then environment variables
//! `VECSHARD__ROUTER__<KEY>` (for example `VECSHARD__ROUTER__FAILURE_TIMEOUT_MS=5000`,
//! `VECSHARD__ROUTER__RAFT__HEARTBEAT_MS=100`). The settings live under a `[router]`
//! table so one file can also hold other sections (such as `[node]`), which the router
//! ignores. Validated at load; errors name the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Serialize};

use crate::api::keys::KeySpec;
use crate::error::{Error, Result};

/// Every default, as TOML.
pub const DEFAULTS: &str = r#"
[router]
id = 1
data_dir = "vecshard-router"
grpc_listen = "127.0.0.1:7000"
http_listen = "127.0.0.1:7080"
internal_listen = "127.0.0.1:7001"
members = []
default_shard_count = 2
read_replicas = 0
hedge_after_ms = 0
follower_reads = false
failure_timeout_ms = 10000
control_interval_ms = 500
search_timeout_ms = 10000
write_timeout_ms = 30000
node_connect_timeout_ms = 1000
max_request_bytes = 67108864
max_concurrent_requests = 1024
serving_threads = 0
api_keys = []
keys = []
metrics_need_key = false
allowed_storage = []
backup_locations = []
allow_replication = true
tls_cert = ""
tls_key = ""
tls_ca = ""
cluster_secret = ""
cluster_secret_file = ""

[router.raft]
heartbeat_ms = 200
election_timeout_min_ms = 1000
election_timeout_max_ms = 2000
snapshot_every = 1000
logs_to_keep = 1000
"#;

/// A router's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterConfig {
    /// This router's Raft id: unique among routers, at least 1.
    pub id: u64,
    /// Where the Raft log, vote and snapshots live. Losing it loses this router's copy of
    /// the shard map (the others still have it; the router can rejoin as a new member).
    pub data_dir: PathBuf,
    /// Client gRPC API (`vecshard.v1.VecShard`). Port 0 picks a free port.
    pub grpc_listen: String,
    /// Client REST/JSON API. Port 0 picks a free port.
    pub http_listen: String,
    /// Peer-only gRPC (`RouterInternal`: Raft between routers, node registration and
    /// heartbeats). For trusted cluster peers only: do not expose it to clients.
    pub internal_listen: String,
    /// Host that other processes use to reach this router (default: the listen host, or
    /// 127.0.0.1 when that is unspecified such as 0.0.0.0).
    #[serde(default)]
    pub advertise_host: Option<String>,
    /// The initial Raft members (including this router) for a cluster formed at start.
    /// Empty: a one-router group. A router whose id is not listed starts empty and waits to
    /// be added (`POST /v1/cluster/routers` on any member). Ignored once the data
    /// directory holds Raft state.
    pub members: Vec<Member>,
    /// Shards of a collection created with `shard_count = 0`.
    pub default_shard_count: u32,
    /// Read replicas per object-store shard (0: none). Replicas serve searches when the
    /// owner cannot; each costs a read-only engine (memory, object-store GETs) on a node.
    pub read_replicas: u32,
    /// Hedged searches: when an object-store shard has read replicas and its owner has not
    /// answered after this many milliseconds, the search also asks a replica and takes the
    /// first answer (0: off; replicas are asked only after the owner fails). Replicas lag
    /// the writer by their refresh interval, so a hedged answer may miss the latest writes.
    pub hedge_after_ms: u64,
    /// Reads (searches, gets, scans, counts) of a replicated shard also go to its live
    /// in-sync followers while its primary is alive: after the primary fails a call, and
    /// `hedge_after_ms` after the first call when hedging is on. Off: followers serve
    /// only while the primary is down. A follower serves what it applied: with `majority`
    /// it may miss the last acknowledged writes; with `all` it holds every write
    /// acknowledged while the shard map (as this router last saw it) counted it in sync.
    pub follower_reads: bool,
    /// A node silent this long is declared down; its object-store shards move. Shorter
    /// detects failures sooner but risks moving shards on a long GC pause or network blip
    /// (harmless thanks to fencing, but it costs a shard reopen).
    pub failure_timeout_ms: u64,
    /// How often the leader checks liveness, placement and node assignments.
    pub control_interval_ms: u64,
    /// Default deadline of a search.
    pub search_timeout_ms: u64,
    /// Default deadline of a write, get or scan (retries within it).
    pub write_timeout_ms: u64,
    /// Bound on connecting to a node or a peer router.
    pub node_connect_timeout_ms: u64,
    /// Largest accepted request (gRPC message or HTTP body), bytes.
    pub max_request_bytes: usize,
    /// Client requests (gRPC and REST together) this router serves at once; beyond it a
    /// request is refused at once (gRPC RESOURCE_EXHAUSTED, REST 429 with `retry-after`)
    /// rather than queued. Bounds memory and tail latency under overload; 0: no cap.
    pub max_concurrent_requests: usize,
    /// Client connections (public gRPC and plaintext REST) are served on this many
    /// threads of their own, each a single-threaded runtime that keeps a connection's
    /// requests on one thread (design note 016). 0: on the process's runtime with
    /// everything else, where a lone client's REST request wakes a second, idle worker
    /// (18–32 µs more server CPU per search in note 016's run) and several clients cost
    /// 5–23 µs more per search. A connection stays on its thread, so fewer connections
    /// than threads leave cores idle. TLS REST connections stay on the process's runtime.
    pub serving_threads: usize,
    /// Admin keys (every right, every collection). With these or `keys` non-empty, client
    /// requests need `authorization: Bearer <key>` (or `x-api-key`) with a known key.
    /// The internal service does not use them.
    pub api_keys: Vec<String>,
    /// Keys with a role (`read`, `write`, `admin`), optionally limited to collections,
    /// given inline, by environment variable or by file (`[[router.keys]]`).
    pub keys: Vec<KeySpec>,
    /// Whether `GET /metrics` needs a key (any role) when keys are configured.
    pub metrics_need_key: bool,
    /// Object-store prefixes collections may use besides `local`, such as
    /// `s3://bucket/prefix` (a collection's storage must equal one or lie below it). Empty:
    /// only `local`. Nodes check their own list (`cluster.allowed_storage`) too, so list
    /// the same prefixes there.
    pub allowed_storage: Vec<String>,
    /// Where backups may be written, listed, described, restored from and deleted:
    /// `s3://bucket/prefix`, `file:///abs/dir` or an absolute directory; a backup location
    /// must equal one or lie below it. Empty: backups are off (every location refused),
    /// as `allowed_storage` allows no object store until listed — a backup location is a
    /// place nodes write to and `backup delete` empties, so the operator names it.
    pub backup_locations: Vec<String>,
    /// Whether collections may be created with `replication_factor` > 1 (design note
    /// 014). Off: such creates are refused with FAILED_PRECONDITION naming this setting
    /// (for a cluster whose routers or nodes include builds older than replication).
    pub allow_replication: bool,
    /// TLS certificate chain (PEM) of this router, used on all three listeners and as
    /// its client certificate towards nodes and peer routers. With `tls_key` and
    /// `tls_ca`; all empty: plaintext.
    pub tls_cert: String,
    /// TLS private key (PEM).
    pub tls_key: String,
    /// The cluster CA (PEM): servers this router dials, and clients of its internal
    /// listener, must have certificates it signed.
    pub tls_ca: String,
    /// Shared secret every internal call carries (at least 16 characters), for clusters
    /// without TLS; it must equal the nodes' `cluster.secret`. Prefer
    /// `cluster_secret_file` or the environment (`VECSHARD__ROUTER__CLUSTER_SECRET`).
    pub cluster_secret: String,
    /// A file holding the cluster secret.
    pub cluster_secret_file: String,
    /// Raft timing and log compaction.
    pub raft: RaftSettings,
}

/// An initial Raft member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Raft id.
    pub id: u64,
    /// Client gRPC address (`host:port`).
    pub grpc: String,
    /// Internal gRPC address.
    pub internal: String,
    /// REST address.
    pub http: String,
}

/// Raft settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSettings {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// Election timeout range; a follower that hears no leader for this long campaigns.
    pub election_timeout_min_ms: u64,
    /// Upper end of the election timeout range.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (for slightly lagging followers).
    pub logs_to_keep: u64,
}

#[derive(Deserialize)]
struct Root {
    router: RouterConfig,
}

/// Load the settings: defaults, then `file` (if given), then the environment.
pub fn load_config(file: Option<&Path>) -> Result<RouterConfig> {
    let mut b = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
    if let Some(f) = file {
        if !f.exists() {
            return Err(Error::invalid(format!(
                "config file {} does not exist",
                f.display()
            )));
        }
        b = b.add_source(File::from(f).format(FileFormat::Toml));
    }
    b = b.add_source(
        Environment::with_prefix("VECSHARD")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("router.api_keys")
            .with_list_parse_key("router.allowed_storage")
            .with_list_parse_key("router.backup_locations"),
    );
    let where_ = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "defaults".into());
    let root: Root = b
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| Error::invalid(format!("configuration ({where_}): {e}")))?;
    root.router.validate()?;
    Ok(root.router)
}

impl RouterConfig {
    /// The built-in defaults (no file, no environment).
    pub fn defaults() -> Self {
        let root: Root = Config::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("the built-in defaults parse (tested)");
        root.router
    }

    /// The defaults with `data_dir` and every listener on 127.0.0.1 port 0 (tests, `dev`).
    pub fn local(data_dir: &Path) -> Self {
        let mut c = Self::defaults();
        c.data_dir = data_dir.to_path_buf();
        c.grpc_listen = "127.0.0.1:0".into();
        c.http_listen = "127.0.0.1:0".into();
        c.internal_listen = "127.0.0.1:0".into();
        c
    }

    /// Check every setting; the error names the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, why: String| Err(Error::invalid(format!("router.{key}: {why}")));
        if self.id == 0 {
            return bad("id", "must be at least 1".into());
        }
        for (key, v) in [
            ("grpc_listen", &self.grpc_listen),
            ("http_listen", &self.http_listen),
            ("internal_listen", &self.internal_listen),
        ] {
            if let Err(e) = v.parse::<SocketAddr>() {
                return bad(
                    key,
                    format!("{v:?} is not an address like 127.0.0.1:7000 ({e})"),
                );
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if m.id == 0 || !ids.insert(m.id) {
                return bad(
                    &format!("members[{i}].id"),
                    format!("{} is 0 or repeated", m.id),
                );
            }
            for (key, v) in [
                ("grpc", &m.grpc),
                ("internal", &m.internal),
                ("http", &m.http),
            ] {
                if !v.contains(':') {
                    return bad(
                        &format!("members[{i}].{key}"),
                        format!("{v:?} is not host:port"),
                    );
                }
            }
        }
        for (key, v) in [
            ("failure_timeout_ms", self.failure_timeout_ms),
            ("control_interval_ms", self.control_interval_ms),
            ("search_timeout_ms", self.search_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("node_connect_timeout_ms", self.node_connect_timeout_ms),
            ("raft.heartbeat_ms", self.raft.heartbeat_ms),
            ("raft.snapshot_every", self.raft.snapshot_every),
        ] {
            if v == 0 {
                return bad(key, "must be greater than 0".into());
            }
        }
        if !(1..=4096).contains(&self.default_shard_count) {
            return bad(
                "default_shard_count",
                format!("{} is not in 1..=4096", self.default_shard_count),
            );
        }
        if self.serving_threads > 1024 {
            return bad(
                "serving_threads",
                format!("{} is more than 1024", self.serving_threads),
            );
        }
        if self.max_request_bytes < 1 << 20 {
            return bad("max_request_bytes", "must be at least 1 MiB".into());
        }
        let r = &self.raft;
        if r.election_timeout_min_ms <= r.heartbeat_ms
            || r.election_timeout_max_ms <= r.election_timeout_min_ms
        {
            return bad(
                "raft",
                "need heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms".into(),
            );
        }
        if self.api_keys.iter().any(|k| k.is_empty()) {
            return bad("api_keys", "keys must not be empty".into());
        }
        crate::security::Security::load(self)?;
        for (i, p) in self.allowed_storage.iter().enumerate() {
            if let Err(why) = crate::storage::parse_url(p) {
                return bad(&format!("allowed_storage[{i}]"), format!("{p:?} {why}"));
            }
        }
        for (i, l) in self.backup_locations.iter().enumerate() {
            if let Err(e) = crate::backup::store::parse(l) {
                return bad(&format!("backup_locations[{i}]"), e.message().to_string());
            }
        }
        Ok(())
    }

    /// The allowed backup locations, normalized (no trailing `/`; validated).
    pub fn backup_prefixes(&self) -> Vec<String> {
        self.backup_locations
            .iter()
            .filter_map(|l| crate::backup::store::parse(l).ok())
            .collect()
    }

    /// The allowed object-store prefixes, normalized (no trailing `/`; validated).
    pub fn allowed_prefixes(&self) -> Vec<String> {
        self.allowed_storage
            .iter()
            .filter_map(|p| crate::storage::parse_url(p).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        RouterConfig::defaults().validate().unwrap();
    }

    #[test]
    fn defaults_load_and_file_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.toml");
        std::fs::write(
            &f,
            "[router]\nid = 3\nfailure_timeout_ms = 1500\n[[router.members]]\nid = 3\ngrpc = \"a:1\"\ninternal = \"a:2\"\nhttp = \"a:3\"\n[node]\nwhatever = 1\n",
        )
        .unwrap();
        let c = load_config(Some(&f)).unwrap();
        assert_eq!(c.id, 3);
        assert_eq!(c.failure_timeout_ms, 1500);
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.raft.heartbeat_ms, 200);
    }

    #[test]
    fn bad_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needle) in [
            ("[router]\nid = 0\n", "router.id"),
            (
                "[router]\ngrpc_listen = \"nowhere\"\n",
                "router.grpc_listen",
            ),
            (
                "[router]\nfailure_timeout_ms = \"soon\"\n",
                "failure_timeout_ms",
            ),
            ("[router]\nfailur_timeout_ms = 5\n", "failur_timeout_ms"),
            ("[router.raft]\nheartbeat_ms = 5000\n", "router.raft"),
            (
                "[router]\nallowed_storage = [\"s3://b-1/p\", \"file:///data\"]\n",
                "router.allowed_storage[1]",
            ),
            (
                "[router]\nallowed_storage = [\"s3://b-1/../p\"]\n",
                "router.allowed_storage[0]",
            ),
            (
                "[router]\nbackup_locations = [\"/backups\", \"relative/dir\"]\n",
                "router.backup_locations[1]",
            ),
            (
                "[router]\nbackup_locations = [\"gs://b/x\"]\n",
                "router.backup_locations[0]",
            ),
        ] {
            let f = dir.path().join("bad.toml");
            std::fs::write(&f, text).unwrap();
            let e = load_config(Some(&f)).unwrap_err();
            assert!(e.message().contains(needle), "{text}: {e}");
        }
    }
}
