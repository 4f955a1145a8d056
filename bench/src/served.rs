//! `vecshard bench-served`: server CPU per query of a RUNNING router and node (another
//! process, e.g. `vecshard dev`), measured from outside: the server's CPU time
//! (`/proc/PID/stat`, user + system, every thread) before and after a timed pass of
//! searches from this process, divided by the searches answered. The same pass straight
//! to a node's internal gRPC service (no router), and the embedded engine on the node's
//! shard directories (after the server stopped) give the two baselines.
//! `scripts/profile-server.sh` drives it; `docs/design/016-served-path.md` explains it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use vecshard_engine::{Options, SearchRequest, Shard};
use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use crate::Dataset;

#[derive(Args)]
pub struct BenchServedArgs {
    /// Directory with base.fvecs, query.fvecs and groundtruth.ivecs (L2).
    #[arg(long)]
    pub dataset: PathBuf,
    /// The router's gRPC address.
    #[arg(long)]
    pub router: Option<String>,
    /// A node's internal gRPC address: also measure searches sent to it directly.
    #[arg(long)]
    pub node: Option<String>,
    /// The server process (router and node; `vecshard dev`) whose CPU is measured.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Collection.
    #[arg(long, default_value = "served")]
    pub collection: String,
    /// Create the collection with this many shards and import the base vectors first.
    #[arg(long)]
    pub load: Option<u32>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Search width.
    #[arg(long, default_value_t = 16)]
    pub ef: u32,
    /// Concurrent clients per pass (each a thread with its own connection).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub clients: Vec<usize>,
    /// Seconds per timed pass.
    #[arg(long, default_value_t = 5.0)]
    pub secs: f64,
    /// The router's REST address (host:port): also measure the binary REST search
    /// (`application/x-vecshard-f32` in, packed hits out, HTTP/1.1 keep-alive).
    #[arg(long)]
    pub rest: Option<String>,
    /// Only create and load the collection (`--load`) and wait for the server to settle.
    #[arg(long)]
    pub load_only: bool,
    /// Instead of the server: open these shard locations with the embedded engine (the
    /// server must be stopped) and measure one thread searching each of them per query.
    #[arg(long, num_args = 1..)]
    pub engine: Vec<String>,
    /// Count the server's system calls (in total and of the kinds a served request makes),
    /// context switches and wake-ups per query in every pass with this `perf` binary
    /// (`perf stat -p PID` over the timed part of the pass); needs `--pid`.
    #[arg(long)]
    pub perf_stat: Option<String>,
}

/// The events `--perf-stat` counts, with the label each is printed under.
const COUNTED: &[(&str, &str)] = &[
    ("raw_syscalls:sys_enter", "syscalls"),
    ("syscalls:sys_enter_epoll_wait", "epoll_wait"),
    ("syscalls:sys_enter_recvfrom", "recvfrom"),
    ("syscalls:sys_enter_read", "read"),
    ("syscalls:sys_enter_readv", "readv"),
    ("syscalls:sys_enter_sendto", "sendto"),
    ("syscalls:sys_enter_write", "write"),
    ("syscalls:sys_enter_writev", "writev"),
    ("syscalls:sys_enter_futex", "futex"),
    ("syscalls:sys_enter_sched_yield", "sched_yield"),
    ("sched:sched_switch", "sched_switch"),
    ("sched:sched_wakeup", "wakeups by the server"),
];

/// A `perf stat` counting [`COUNTED`] in process `pid` until [`PerfStat::finish`].
struct PerfStat {
    child: std::process::Child,
}

impl PerfStat {
    fn start(perf: &str, pid: u32) -> Result<PerfStat> {
        let events: Vec<&str> = COUNTED.iter().map(|(e, _)| *e).collect();
        let child = std::process::Command::new(perf)
            .args(["stat", "-x", ",", "-e", &events.join(","), "-p"])
            .arg(pid.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("start {perf} stat"))?;
        Ok(PerfStat { child })
    }

    /// Stop counting (SIGINT, as Ctrl-C) and return each event's count, in [`COUNTED`]
    /// order (`None` when perf could not count it).
    fn finish(self) -> Result<Vec<Option<u64>>> {
        let pid = self.child.id().to_string();
        let interrupted = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .context("kill -INT perf")?;
        if !interrupted.success() {
            bail!("could not interrupt perf stat (pid {pid})");
        }
        let out = self
            .child
            .wait_with_output()
            .context("wait for perf stat")?;
        let text = String::from_utf8_lossy(&out.stderr);
        let count = |event: &str| {
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() > 2 && f[2] == event)
                    .then(|| f[0].trim().parse::<u64>().ok())
                    .flatten()
            })
        };
        let counts: Vec<Option<u64>> = COUNTED.iter().map(|(e, _)| count(e)).collect();
        if counts[0].is_none() {
            bail!("perf stat counted nothing: {}", text.trim());
        }
        Ok(counts)
    }
}

/// CPU seconds (user + system) of process `pid`, every thread, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat (is the server running?)"))?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("unexpected /proc/PID/stat format")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here (0-based after state).
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / clock_ticks())
}

/// CPU seconds of the calling thread (nanoseconds from `/proc/thread-self/schedstat`).
fn thread_cpu() -> Result<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: f64 = s
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?;
    Ok(ns / 1e9)
}

/// Busy CPU seconds of the whole machine (every core: user, nice, system, irq, softirq,
/// steal) from `/proc/stat`.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7)) / clock_ticks()
}

/// Context switches (voluntary + involuntary) of every thread of process `pid`, by
/// thread name, from `/proc/PID/task/*/status`: how often its threads went to sleep or
/// were preempted. Threads that exited are not counted.
fn context_switches(pid: u32) -> Result<Vec<(String, u64)>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("read {dir}"))? {
        let Ok(status) = std::fs::read_to_string(e?.path().join("status")) else {
            continue; // exited meanwhile
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let switches: u64 = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
            .iter()
            .filter_map(|n| field(n)?.parse::<u64>().ok())
            .sum();
        out.push((field("Name:").unwrap_or_default(), switches));
    }
    Ok(out)
}

/// Per thread name: the switches in `after` minus those in `before`, most first.
fn switches_by_name(before: &[(String, u64)], after: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut by: std::collections::BTreeMap<&str, i64> = Default::default();
    for (n, c) in after {
        *by.entry(n).or_default() += *c as i64;
    }
    for (n, c) in before {
        *by.entry(n).or_default() -= *c as i64;
    }
    let mut v: Vec<(String, u64)> = by
        .into_iter()
        .map(|(n, d)| (n.to_string(), d.max(0) as u64))
        .collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1));
    v
}

fn clock_ticks() -> f64 {
    // USER_HZ; 100 on every Linux this runs on (getconf CLK_TCK).
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

use crate::cluster::status;

/// Wait until the server's background work after a load (flushes, merges: the idle merge
/// starts `idle_merge_after`, 10 s by default, after the last write) has finished, so the
/// passes measure the shard in its steady state: poll the process's CPU over one-second
/// windows until 15 windows in a row use under 5 % of a core each (at most 30 minutes).
fn settle(pid: u32) -> Result<()> {
    const QUIET_WINDOWS: u32 = 15;
    let start = Instant::now();
    let mut quiet = 0;
    while quiet < QUIET_WINDOWS {
        let (c0, t0) = (process_cpu(pid)?, Instant::now());
        std::thread::sleep(Duration::from_secs(1));
        let busy = (process_cpu(pid)? - c0) / t0.elapsed().as_secs_f64();
        quiet = if busy < 0.05 { quiet + 1 } else { 0 };
        if start.elapsed() > Duration::from_secs(1800) {
            bail!(
                "the server was still busy ({:.0} % of a core) after 30 minutes",
                busy * 100.0
            );
        }
    }
    println!(
        "server settled after {:.0} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Run `vecshard bench-served`.
pub fn run(a: BenchServedArgs) -> Result<()> {
    let d = Arc::new(Dataset::load(&a.dataset, false)?);
    if !a.engine.is_empty() {
        return engine(&a, &d);
    }
    let Some(router) = a.router.clone() else {
        bail!("give --router (and --pid), or --engine");
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(shards) = a.load {
        rt.block_on(load(&router, &a, &d, shards))?;
    }
    if let Some(pid) = a.pid {
        settle(pid)?;
    }
    if a.load_only {
        return Ok(());
    }
    let mut c = rt.block_on(vecshard_cluster::connect(&router, None))?;
    // A restarted server reopens its shards in the background: wait until it answers.
    let started = Instant::now();
    while let Err(e) = rt.block_on(c.search(router_req(&a, &d.queries[0]))) {
        if e.code() != tonic::Code::Unavailable || started.elapsed() > Duration::from_secs(120) {
            return Err(status(e));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Recall: every query once.
    let mut found = Vec::with_capacity(d.queries.len());
    for q in &d.queries {
        let r = rt
            .block_on(c.search(router_req(&a, q)))
            .map_err(status)?
            .into_inner();
        found.push(
            r.hits
                .iter()
                .map(|h| match h.key.as_ref().and_then(|k| k.kind.as_ref()) {
                    Some(pb::key::Kind::Int(v)) => *v as i64,
                    _ => -1,
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(t) = &d.truth {
        let k = a.k as usize;
        let hits: usize = found
            .iter()
            .zip(t)
            .map(|(r, t)| {
                r.iter()
                    .filter(|id| t[..k].contains(&(**id as i32)))
                    .count()
            })
            .sum();
        println!(
            "recall@{k} {:.3} (ef {})",
            hits as f64 / (found.len() * k) as f64,
            a.ef
        );
    }
    if let Some(pid) = a.pid {
        // The server's own background work (heartbeats, Raft, timers), which the passes
        // below include: CPU per second with no searches.
        let (c0, t0) = (process_cpu(pid)?, Instant::now());
        std::thread::sleep(Duration::from_secs(2));
        let idle = (process_cpu(pid)? - c0) / t0.elapsed().as_secs_f64();
        println!("server idle: {:.1} ms CPU per second", idle * 1e3);
    }
    println!(
        "| path | clients | QPS | server CPU µs/query | client CPU µs/query | server switches/query | foreign cores |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &n in &a.clients {
        let (addr, coll, ef, k) = (router.clone(), a.collection.clone(), a.ef, a.k);
        let dd = d.clone();
        pass("router", n, &a, move |i| {
            let (addr, coll, dd) = (addr.clone(), coll.clone(), dd.clone());
            Box::new(move |stop: &AtomicBool, done: &AtomicUsize| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let mut c = rt.block_on(vecshard_cluster::connect(&addr, None))?;
                let mut q = i * 97;
                while !stop.load(Ordering::Relaxed) {
                    let v = &dd.queries[q % dd.queries.len()];
                    let req = pb::SearchRequest {
                        collection: coll.clone(),
                        vector: v.clone(),
                        k,
                        ef: Some(ef),
                        ..Default::default()
                    };
                    rt.block_on(c.search(req)).map_err(status)?;
                    done.fetch_add(1, Ordering::Relaxed);
                    q += 1;
                }
                Ok(())
            })
        })?;
    }
    if let Some(rest) = &a.rest {
        for &n in &a.clients {
            let url = format!(
                "http://{rest}/v1/collections/{}/search?k={}&ef={}",
                a.collection, a.k, a.ef
            );
            let dd = d.clone();
            pass("router, binary REST", n, &a, move |i| {
                let (url, dd) = (url.clone(), dd.clone());
                Box::new(move |stop: &AtomicBool, done: &AtomicUsize| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
                    let mut q = i * 97;
                    while !stop.load(Ordering::Relaxed) {
                        let v = &dd.queries[q % dd.queries.len()];
                        let body: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                        rt.block_on(async {
                            let r = http
                                .post(&url)
                                .header("content-type", "application/x-vecshard-f32")
                                .body(body)
                                .send()
                                .await?;
                            let code = r.status();
                            let b = r.bytes().await?;
                            if !code.is_success() {
                                bail!(
                                    "binary REST search: {code}: {}",
                                    String::from_utf8_lossy(&b)
                                );
                            }
                            anyhow::Ok(())
                        })?;
                        done.fetch_add(1, Ordering::Relaxed);
                        q += 1;
                    }
                    Ok(())
                })
            })?;
        }
    }
    if let Some(node) = &a.node {
        let mut n = rt.block_on(node_client(node))?;
        let held = rt
            .block_on(n.node_status(pi::NodeStatusRequest {}))
            .map_err(status)?
            .into_inner();
        let mut targets: Vec<pi::ShardTarget> = held
            .shards
            .iter()
            .filter(|s| s.collection == a.collection)
            .map(|s| pi::ShardTarget {
                collection: s.collection.clone(),
                shard: s.shard,
                epoch: s.epoch,
            })
            .collect();
        targets.sort_by_key(|t| t.shard);
        if targets.is_empty() {
            bail!("node {node} holds no shard of {:?}", a.collection);
        }
        let targets = Arc::new(targets);
        for &c in &a.clients {
            let (addr, targets, dd, ef, k) = (node.clone(), targets.clone(), d.clone(), a.ef, a.k);
            pass("node direct (every shard)", c, &a, move |i| {
                let (addr, targets, dd) = (addr.clone(), targets.clone(), dd.clone());
                Box::new(move |stop: &AtomicBool, done: &AtomicUsize| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let mut n = rt.block_on(node_client(&addr))?;
                    let mut q = i * 97;
                    while !stop.load(Ordering::Relaxed) {
                        let v = &dd.queries[q % dd.queries.len()];
                        // One query = one search of every shard, as the router sends.
                        for t in targets.iter() {
                            let req = pi::SearchRequest {
                                target: Some(t.clone()),
                                vector: v.clone(),
                                k,
                                ef: Some(ef),
                                ..Default::default()
                            };
                            rt.block_on(n.search(req)).map_err(status)?;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        q += 1;
                    }
                    Ok(())
                })
            })?;
        }
    }
    Ok(())
}

type Worker = Box<dyn FnOnce(&AtomicBool, &AtomicUsize) -> Result<()> + Send>;

/// `clients` workers (`make(i)`) for `a.secs`; prints QPS and CPU per query (the
/// server's from `/proc/PID/stat`, this process's own), the server's context switches per
/// query (every thread; the threads that switched most in a footnote line), and the
/// cores other processes used meanwhile (`foreign cores`: machine busy time minus the
/// server's and this process's, per second; 0 means the pass had the machine alone).
fn pass(
    what: &str,
    clients: usize,
    a: &BenchServedArgs,
    make: impl Fn(usize) -> Worker,
) -> Result<()> {
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let me = std::process::id();
    // Warm up (connections, caches) for a fifth of the pass, then measure.
    let warm = Duration::from_secs_f64(a.secs / 5.0);
    let secs = Duration::from_secs_f64(a.secs);
    let m = std::thread::scope(|s| -> Result<_> {
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                let w = make(i);
                let (stop, done) = (&stop, &done);
                s.spawn(move || w(stop, done))
            })
            .collect();
        std::thread::sleep(warm);
        let perf = match (&a.perf_stat, a.pid) {
            (Some(bin), Some(pid)) => Some(PerfStat::start(bin, pid)?),
            _ => None,
        };
        let switches0 = a.pid.map(context_switches).transpose()?;
        let server0 = a.pid.map(process_cpu).transpose()?;
        let own0 = process_cpu(me)?;
        let busy0 = machine_busy();
        let n0 = done.load(Ordering::Relaxed);
        let t0 = Instant::now();
        std::thread::sleep(secs);
        let n1 = done.load(Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let busy1 = machine_busy();
        let server1 = a.pid.map(process_cpu).transpose()?;
        let own1 = process_cpu(me)?;
        let switches1 = a.pid.map(context_switches).transpose()?;
        let counted = perf.map(PerfStat::finish).transpose();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        }
        let server = server0.zip(server1).map(|(x, y)| y - x);
        let counted = counted?;
        Ok(Measured {
            counted,
            n: n1 - n0,
            server,
            own: own1 - own0,
            foreign: ((busy1 - busy0) - server.unwrap_or(0.0) - (own1 - own0)).max(0.0) / elapsed,
            switches: switches0
                .zip(switches1)
                .map(|(x, y)| switches_by_name(&x, &y)),
            elapsed,
        })
    })?;
    let n = m.n;
    if n == 0 {
        bail!("{what}: no search finished in {:.1} s", m.elapsed);
    }
    let per = |cpu: f64| format!("{:.0}", cpu * 1e6 / n as f64);
    let switches = m
        .switches
        .as_ref()
        .map(|v| v.iter().map(|(_, c)| c).sum::<u64>());
    println!(
        "| {what} | {clients} | {:.0} | {} | {} | {} | {:.2} |",
        n as f64 / m.elapsed,
        m.server.map(per).unwrap_or_else(|| "-".into()),
        per(m.own),
        switches
            .map(|c| format!("{:.2}", c as f64 / n as f64))
            .unwrap_or_else(|| "-".into()),
        m.foreign,
    );
    if let Some(v) = &m.switches {
        let top: Vec<String> = v
            .iter()
            .take(4)
            .filter(|(_, c)| *c > 0)
            .map(|(name, c)| format!("{name} {:.2}", *c as f64 / n as f64))
            .collect();
        eprintln!(
            "  switches/query by thread ({what}, {clients}): {}",
            top.join(", ")
        );
    }
    if let Some(c) = &m.counted {
        let per: Vec<String> = COUNTED
            .iter()
            .zip(c)
            .filter_map(|((_, label), c)| Some(format!("{label} {:.2}", (*c)? as f64 / n as f64)))
            .collect();
        eprintln!(
            "  perf stat per query ({what}, {clients}): {}",
            per.join(", ")
        );
    }
    Ok(())
}

/// One pass's figures.
struct Measured {
    n: usize,
    /// `--perf-stat`: the counts of [`COUNTED`] over (about) the timed part of the pass.
    counted: Option<Vec<Option<u64>>>,
    server: Option<f64>,
    own: f64,
    foreign: f64,
    switches: Option<Vec<(String, u64)>>,
    elapsed: f64,
}

/// A client of a node's internal API that sends searches as a router does (one write each).
async fn node_client(
    addr: &str,
) -> Result<pi::node_client::NodeClient<vecshard_proto::fast_unary::OneFrameChannel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
    let ch = vecshard_proto::coalesce::connect(&endpoint).await?;
    Ok(pi::node_client::NodeClient::new(ch))
}

fn router_req(a: &BenchServedArgs, q: &[f32]) -> pb::SearchRequest {
    pb::SearchRequest {
        collection: a.collection.clone(),
        vector: q.to_vec(),
        k: a.k,
        ef: Some(a.ef),
        ..Default::default()
    }
}

/// Create the collection (M 16, efConstruction 200) and import the base vectors.
async fn load(router: &str, a: &BenchServedArgs, d: &Dataset, shards: u32) -> Result<()> {
    let mut c = vecshard_cluster::connect(router, None).await?;
    crate::cluster::create_collection(&mut c, &a.collection, d.base[0].len() as u32, shards, a.ef)
        .await?;
    let start = Instant::now();
    let batches = (0..d.base.len()).step_by(1000).map(|from| {
        let to = (from + 1000).min(d.base.len());
        pb::UpsertRequest {
            collection: a.collection.clone(),
            points: (from..to)
                .map(|i| pb::Point {
                    key: Some(pb::Key {
                        kind: Some(pb::key::Kind::Int(i as u64)),
                    }),
                    vector: d.base[i].clone(),
                    ..Default::default()
                })
                .collect(),
        }
    });
    let sends = futures::stream::iter(batches)
        .map(|req| {
            let mut c = c.clone();
            async move {
                // Shards open in the background right after the create: retry until then.
                loop {
                    match c.upsert(req.clone()).await {
                        Err(e) if e.code() == tonic::Code::Unavailable => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        r => return r.map_err(status),
                    }
                }
            }
        })
        .buffer_unordered(4);
    let mut sends = std::pin::pin!(sends);
    while let Some(r) = sends.next().await {
        r?;
    }
    eprintln!(
        "loaded {} points into {} shard(s) in {:.1} s",
        d.base.len(),
        shards,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The embedded engine on the node's shard directories: one thread, each query searched
/// in every shard; CPU of that thread per query.
fn engine(a: &BenchServedArgs, d: &Dataset) -> Result<()> {
    let shards = a
        .engine
        .iter()
        .map(|l| Shard::open(l, Options::default()).with_context(|| format!("open shard {l}")))
        .collect::<Result<Vec<_>>>()?;
    let reqs: Vec<SearchRequest> = d
        .queries
        .iter()
        .map(|q| SearchRequest {
            ef: Some(a.ef as usize),
            ..SearchRequest::new(q.clone(), a.k as usize)
        })
        .collect();
    let search = |i: usize| -> Result<()> {
        for s in &shards {
            s.search(&reqs[i % reqs.len()])?;
        }
        Ok(())
    };
    for i in 0..reqs.len() {
        search(i)?;
    }
    let (cpu0, t0) = (thread_cpu()?, Instant::now());
    let mut n = 0;
    while t0.elapsed().as_secs_f64() < a.secs {
        search(n)?;
        n += 1;
    }
    let cpu = thread_cpu()? - cpu0;
    println!(
        "| engine ({} shard(s), 1 thread) | 1 | {:.0} | {:.1} | - |",
        shards.len(),
        n as f64 / t0.elapsed().as_secs_f64(),
        cpu * 1e6 / n as f64
    );
    for s in shards {
        s.close()?;
    }
    Ok(())
}
