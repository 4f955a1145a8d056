//! A cluster of real `vecshard` processes on 127.0.0.1 for the cluster tests: routers
//! (`vecshard router --config`) and data nodes (`vecshard node --config`) with fixed free
//! ports. Object-store shards go to the local S3 endpoint (`VECSHARD_TEST_S3_ENDPOINT`;
//! scripts/test.sh starts one) under a prefix unique to the cluster, which routers and nodes
//! allow (`allowed_storage`); a test that asks for it without the endpoint fails with how to
//! start it. Process output goes to log files that are printed when a test fails.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use vecshard_proto::v1 as pb;
pub use vecshard_test_support::api::{
    Client, alive_nodes, assert_all_found, assert_same_hits, int_key, point, scan_all, upsert,
};
use vecshard_test_support::eventually_every;
pub use vecshard_test_support::{exact, free_port, l2, vector};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vecshard"))
}

/// One child process with its log file.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, args: &[&str], log: PathBuf, env: &[(String, String)]) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin())
            .args(args)
            .env("VECSHARD_LOG", "info,openraft=warn,vecshard_router=info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {}", self.name);
    }

    /// kill -9, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stays, frozen. Returns once every thread is stopped: the
    /// kernel stops a process's threads one by one after `kill` returns (the thread that
    /// takes the signal first has to be scheduled), so on a busy machine the others can
    /// still answer a request sent right after the signal.
    pub fn stop(&self) {
        self.signal("-STOP");
        let tasks = format!("/proc/{}/task", self.pid());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let running: Vec<String> = std::fs::read_dir(&tasks)
                .unwrap_or_else(|e| panic!("{}: read {tasks}: {e}", self.name))
                .flatten()
                .filter(|t| {
                    // `pid (comm) S ...`: the state follows the last `)`; T: stopped. A
                    // thread that has exited meanwhile counts as stopped.
                    std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().next())
                            .is_some_and(|state| !matches!(state, "T" | "t" | "Z" | "X"))
                    })
                })
                .map(|t| t.file_name().to_string_lossy().into_owned())
                .collect();
            if running.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: threads {running:?} still not stopped 30 s after SIGSTOP",
                self.name
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGCONT.
    pub fn cont(&self) {
        self.signal("-CONT");
    }

    /// Whether the process is still running (not crashed).
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_ref() {
            // A stopped process must be continued to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill9();
    }
}

pub struct RouterSpec {
    pub id: u64,
    pub grpc: String,
    pub internal: String,
    pub http: String,
    config: PathBuf,
    pub proc: Option<Proc>,
}

pub struct NodeSpec {
    pub id: String,
    /// The node's HTTP listener (health, metrics), `127.0.0.1:port`.
    pub http: String,
    config: PathBuf,
    /// Environment variables the node process gets besides the test's own.
    env: Vec<(String, String)>,
    pub proc: Option<Proc>,
}

/// The cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub routers: Vec<RouterSpec>,
    pub nodes: Vec<NodeSpec>,
    /// Object-store URL prefix for collections, when the local S3 endpoint is configured.
    storage: Option<String>,
}

/// Settings of a test cluster beyond its size.
pub struct Options {
    /// The leader's control interval.
    pub control_interval_ms: u64,
    /// Silence after which a node is down.
    pub failure_timeout_ms: u64,
    /// Object-store prefixes routers and nodes allow besides the cluster's own.
    pub extra_allowed_storage: Vec<String>,
    /// The routers' write deadline.
    pub write_timeout_ms: u64,
    /// The nodes' `node.replica_lag_timeout_ms`.
    pub replica_lag_timeout_ms: u64,
    /// The nodes' `node.replica_tail_bytes`.
    pub replica_tail_bytes: usize,
    /// `node.zone` of the first nodes, in order (the others have none).
    pub zones: Vec<&'static str>,
    /// More `key = value` lines for every router's `[router]` section.
    pub router_settings: Vec<&'static str>,
    /// Environment variables for every node process (e.g. another `AWS_ENDPOINT_URL`).
    pub node_env: Vec<(String, String)>,
    /// More `key = value` lines for every node's `[engine]` section.
    pub engine_settings: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            control_interval_ms: 200,
            failure_timeout_ms: 2000,
            extra_allowed_storage: Vec::new(),
            write_timeout_ms: 30000,
            replica_lag_timeout_ms: 10000,
            replica_tail_bytes: 64 << 20,
            zones: Vec::new(),
            router_settings: Vec::new(),
            node_env: Vec::new(),
            engine_settings: Vec::new(),
        }
    }
}

pub const HOW_TO_START_S3: &str = "start the local S3 first: eval \"$(scripts/test-services.sh start)\" (from the repository root)";

/// `s3://BUCKET` of the local S3 test endpoint, if its environment is set (and
/// `AWS_ENDPOINT_URL`, which the processes use, points at it, never at real AWS).
pub fn test_bucket() -> Option<String> {
    let endpoint = std::env::var("VECSHARD_TEST_S3_ENDPOINT").ok()?;
    let bucket = std::env::var("VECSHARD_TEST_S3_BUCKET").ok()?;
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
        Some(endpoint.as_str()),
        "AWS_ENDPOINT_URL must be the test endpoint: {HOW_TO_START_S3}"
    );
    Some(format!("s3://{bucket}"))
}

/// Where a cluster's object-store shards go: a prefix of the test bucket unique to it.
fn object_storage(dir: &Path) -> Option<String> {
    let unique = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(['.', '_'], "-");
    Some(format!("{}/cluster-tests/{unique}", test_bucket()?))
}

/// A TOML array of strings.
fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

impl Cluster {
    /// Write configurations for `routers` routers and `nodes` nodes and start them all.
    pub fn start(routers: u64, nodes: usize) -> Cluster {
        Cluster::start_with(routers, nodes, Options::default())
    }

    /// [`Cluster::start`] with other settings.
    pub fn start_with(routers: u64, nodes: usize, o: Options) -> Cluster {
        let mut dir = tempfile::tempdir().unwrap();
        if std::env::var_os("VECSHARD_TEST_KEEP_DIR").is_some() {
            // Debugging: keep the logs and data of the run, and say where they are.
            dir.disable_cleanup(true);
            eprintln!("cluster directory (kept): {}", dir.path().display());
        }
        let storage = object_storage(dir.path());
        let allowed = toml_list(
            &storage
                .iter()
                .chain(&o.extra_allowed_storage)
                .cloned()
                .collect::<Vec<_>>(),
        );
        // Backups go under the cluster's directory or next to its object-store prefix.
        let backup_locations = toml_list(
            &std::iter::once(dir.path().join("backups").to_string_lossy().into_owned())
                .chain(storage.iter().map(|s| format!("{s}-backups")))
                .collect::<Vec<_>>(),
        );
        let specs: Vec<(u64, String, String, String)> = (1..=routers)
            .map(|id| {
                let a = || format!("127.0.0.1:{}", free_port());
                (id, a(), a(), a())
            })
            .collect();
        let mut members = String::new();
        for (id, g, i, h) in &specs {
            members.push_str(&format!(
                "[[router.members]]\nid = {id}\ngrpc = \"{g}\"\ninternal = \"{i}\"\nhttp = \"{h}\"\n"
            ));
        }
        let router_specs = specs
            .iter()
            .map(|(id, g, i, h)| {
                let config = dir.path().join(format!("router-{id}.toml"));
                let data = dir.path().join(format!("router-{id}"));
                std::fs::write(
                    &config,
                    format!(
                        "[router]\nid = {id}\ndata_dir = \"{}\"\ngrpc_listen = \"{g}\"\ninternal_listen = \"{i}\"\nhttp_listen = \"{h}\"\n\
                         failure_timeout_ms = {}\ncontrol_interval_ms = {}\nsearch_timeout_ms = 10000\nwrite_timeout_ms = {}\n\
                         default_shard_count = 3\nallowed_storage = {allowed}\nbackup_locations = {backup_locations}\n{extra}\n[router.raft]\nheartbeat_ms = 100\nelection_timeout_min_ms = 600\n\
                         election_timeout_max_ms = 1200\nsnapshot_every = 50\nlogs_to_keep = 20\n\n{members}",
                        data.display(),
                        o.failure_timeout_ms,
                        o.control_interval_ms,
                        o.write_timeout_ms,
                        extra = o.router_settings.iter().map(|l| format!("{l}\n")).collect::<String>(),
                    ),
                )
                .unwrap();
                RouterSpec {
                    id: *id,
                    grpc: g.clone(),
                    internal: i.clone(),
                    http: h.clone(),
                    config,
                    proc: None,
                }
            })
            .collect::<Vec<_>>();
        let internals: Vec<String> = router_specs
            .iter()
            .map(|r| format!("\"{}\"", r.internal))
            .collect();
        let node_specs = (1..=nodes)
            .map(|n| {
                let id = format!("node-{n}");
                let config = dir.path().join(format!("{id}.toml"));
                let http = format!("127.0.0.1:{}", free_port());
                std::fs::write(
                    &config,
                    format!(
                        "[node]\nid = \"{id}\"\nzone = \"{}\"\ngrpc_addr = \"127.0.0.1:{}\"\nhttp_addr = \"{http}\"\ndata_dir = \"{}\"\n\
                         shutdown_timeout_ms = 2000\nreplica_lag_timeout_ms = {}\nreplica_tail_bytes = {}\n\n[cluster]\nrouters = [{}]\nheartbeat_interval_ms = 200\nrpc_timeout_ms = 1000\n\
                         allowed_storage = {allowed}\n\n\
                         [engine]\nmemtable_bytes = 4194304\n{}",
                        o.zones.get(n - 1).copied().unwrap_or_default(),
                        free_port(),
                        dir.path().join(&id).display(),
                        o.replica_lag_timeout_ms,
                        o.replica_tail_bytes,
                        internals.join(", "),
                        o.engine_settings
                            .iter()
                            .map(|l| format!("{l}\n"))
                            .collect::<String>(),
                    ),
                )
                .unwrap();
                NodeSpec {
                    id,
                    http,
                    config,
                    env: o.node_env.clone(),
                    proc: None,
                }
            })
            .collect();
        let mut c = Cluster {
            dir,
            routers: router_specs,
            nodes: node_specs,
            storage,
        };
        for i in 0..c.routers.len() {
            c.start_router(i);
        }
        for i in 0..c.nodes.len() {
            c.start_node(i);
        }
        c
    }

    /// The object-store URL prefix for this cluster's collections (fails when the local S3
    /// endpoint is not configured).
    pub fn storage(&self) -> String {
        self.storage
            .clone()
            .unwrap_or_else(|| panic!("this test needs the local S3 endpoint: {HOW_TO_START_S3}"))
    }

    pub fn start_router(&mut self, i: usize) {
        let r = &mut self.routers[i];
        let log = self.dir.path().join(format!("router-{}.log", r.id));
        let config = r.config.to_string_lossy().into_owned();
        r.proc = Some(Proc::spawn(
            &format!("router-{}", r.id),
            &["router", "--config", &config],
            log,
            &[],
        ));
    }

    /// Node `i`'s data directory.
    pub fn node_data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.nodes[i].id)
    }

    pub fn start_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let log = self.dir.path().join(format!("{}.log", n.id));
        let config = n.config.to_string_lossy().into_owned();
        n.proc = Some(Proc::spawn(
            &n.id,
            &["node", "--config", &config],
            log,
            &n.env,
        ));
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let procs = self
            .routers
            .iter()
            .filter_map(|r| r.proc.as_ref())
            .chain(self.nodes.iter().filter_map(|n| n.proc.as_ref()));
        for p in procs {
            let text = p.log_text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("\n===== {} (last lines) =====\n", p.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// A client of router `i` (retrying until it answers).
    pub async fn client(&self, i: usize) -> Client {
        let addr = &self.routers[i].grpc;
        let what = format!("router {i} at {addr} to accept a connection");
        self.eventually(&what, Duration::from_secs(30), || async {
            let c = vecshard_test_support::api::try_connect(addr).await.ok()?;
            Some(c.max_decoding_message_size(256 << 20))
        })
        .await
    }

    /// A client of any router whose process runs.
    pub async fn any_client(&self) -> Client {
        let i = self
            .routers
            .iter()
            .position(|r| r.proc.is_some())
            .expect("a router runs");
        self.client(i).await
    }

    /// Poll `f` until it returns `Some` (failing with every process's log after `timeout`).
    pub async fn eventually<T, F, Fut>(&self, what: &str, timeout: Duration, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let every = Duration::from_millis(50);
        eventually_every(what, timeout, every, || self.logs(), f).await
    }

    pub async fn status(&self) -> Option<pb::ClusterStatusResponse> {
        let mut c = self.any_client().await;
        Some(
            c.cluster_status(pb::ClusterStatusRequest {})
                .await
                .ok()?
                .into_inner(),
        )
    }

    /// Wait until a router is leader and `n` nodes are alive.
    pub async fn wait_ready(&self, n: usize) {
        self.eventually(
            "a leader and live nodes",
            Duration::from_secs(60),
            || async {
                let s = self.status().await?;
                (alive_nodes(&s) >= n && s.routers.iter().any(|r| r.leader)).then_some(())
            },
        )
        .await
    }

    /// Index of the Raft leader among the routers.
    pub async fn leader(&self) -> usize {
        self.eventually("a leader", Duration::from_secs(30), || async {
            let s = self.status().await?;
            let id = s.routers.iter().find(|r| r.leader)?.id;
            self.routers
                .iter()
                .position(|r| r.id == id && r.proc.is_some())
        })
        .await
    }

    /// Wait until every shard of `collection` is serving; returns the placements.
    pub async fn wait_serving(&self, collection: &str) -> Vec<pb::ShardPlacement> {
        self.eventually("shards serving", Duration::from_secs(60), || async {
            let s = self.status().await?;
            let shards: Vec<_> = s
                .shards
                .into_iter()
                .filter(|p| p.collection == collection)
                .collect();
            let ok = !shards.is_empty()
                && shards
                    .iter()
                    .all(|p| p.state == pb::ShardState::Serving as i32);
            ok.then_some(shards)
        })
        .await
    }

    pub fn node_index(&self, id: &str) -> usize {
        self.nodes.iter().position(|n| n.id == id).unwrap()
    }

    /// Assert no process crashed.
    pub fn assert_all_alive(&mut self) {
        let logs = self.logs();
        for p in self
            .routers
            .iter_mut()
            .filter_map(|r| r.proc.as_mut())
            .chain(self.nodes.iter_mut().filter_map(|n| n.proc.as_mut()))
        {
            assert!(p.alive(), "{} exited\n{logs}", p.name);
        }
    }
}
