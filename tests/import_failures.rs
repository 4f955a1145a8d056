//! A failing import stops promptly and says how far it got: `vecshard local import` and
//! `vecshard import --router` with a file of the wrong dimension, into a read-only shard,
//! with a NaN halfway through the file and with a truncated last row. Each run is guarded by
//! a deadline (the process is killed and the test fails if it overruns). The shard then holds
//! exactly the acknowledged prefix of the file, with the file's vectors — plus, with several
//! writers, only whole batches that the error says were written too.

mod cluster_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_support::{Cluster, bin};
use vecshard_engine::{Key, Options, Shard};
use vecshard_proto::v1 as pb;
use vecshard_test_support::write_fvecs;

/// Far above what a failing import needs (it stops within a batch of the failure); only a
/// hang reaches it.
const DEADLINE: Duration = Duration::from_secs(30);
const ROWS: u64 = 2_000;
const BATCH: u64 = 100;
const NAN_ROW: u64 = 1_234;

/// The file's vector of row `i`.
fn row(i: u64, dim: usize) -> Vec<f32> {
    (0..dim as u64)
        .map(|d| ((i * 31 + d * 7) % 997) as f32 / 100.0)
        .collect()
}

/// An 8-d file whose row `NAN_ROW` holds a NaN.
fn nan_file(path: &Path) {
    write_fvecs(
        path,
        (0..ROWS).map(|i| {
            let mut v = row(i, 8);
            if i == NAN_ROW {
                v[3] = f32::NAN;
            }
            v
        }),
    );
}

struct Exit {
    success: bool,
    stderr: String,
}

/// Run `vecshard args`, killing it (and failing) if it is still running after `DEADLINE`.
/// Output goes to files: a pipe nobody reads could block the child.
fn run_guarded(args: &[&str]) -> Exit {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "vecshard {args:?} still running after {DEADLINE:?}: killed\nstderr: {}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exit {
        success: status.success(),
        stderr: std::fs::read_to_string(err.path()).unwrap(),
    }
}

/// The count in "stopped after N acknowledged points" (local) or "after N acknowledged
/// points" (router).
fn acked_in(stderr: &str) -> u64 {
    let (_, rest) = stderr
        .split_once("after ")
        .unwrap_or_else(|| panic!("no acknowledged count in: {stderr}"));
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no acknowledged count in: {stderr}"))
}

/// Points of later batches the error says were written too (0 if it says nothing).
fn written_too(stderr: &str) -> u64 {
    stderr
        .split_once(" points of batches after the failure were written too")
        .and_then(|(before, _)| before.rsplit(' ').next())
        .map(|n| n.parse().expect("a count before \"points of batches\""))
        .unwrap_or(0)
}

/// Every point of a local shard: key → vector.
fn local_contents(dir: &Path) -> BTreeMap<u64, Vec<f32>> {
    let shard = Shard::open(dir.to_str().unwrap(), Options::default()).unwrap();
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = shard.scan(after.as_ref(), 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for p in page {
            let Key::Int(k) = p.key else {
                panic!("string key {} in an fvecs import", p.key)
            };
            assert!(out.insert(k, p.vector).is_none(), "key {k} scanned twice");
        }
    }
    shard.close().unwrap();
    out
}

/// The contents are the file's rows `0..acked`, plus (several writers) `extra` points of
/// batches after the failed batch `refused` (whole batches if `whole`), each with the file's
/// vector.
fn assert_prefix(
    got: &BTreeMap<u64, Vec<f32>>,
    acked: u64,
    refused: Option<u64>,
    extra: u64,
    whole: bool,
) {
    for (k, v) in got {
        assert!(*k < ROWS, "key {k} was never in the file");
        assert_eq!(
            *v,
            row(*k, 8),
            "key {k} holds another vector than the file's"
        );
    }
    let missing: Vec<u64> = (0..acked)
        .filter(|k| !got.contains_key(k))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "acknowledged keys missing: {missing:?}");
    let beyond: Vec<u64> = got.keys().copied().filter(|k| *k >= acked).collect();
    assert_eq!(
        beyond.len() as u64,
        extra,
        "keys beyond the acknowledged prefix"
    );
    if let Some(refused) = refused {
        let failed = refused * BATCH..(refused + 1) * BATCH;
        assert!(
            beyond.iter().all(|k| !failed.contains(k)),
            "a point of the refused batch {failed:?} is present"
        );
    }
    for k in beyond.iter().filter(|_| whole) {
        let batch = k / BATCH;
        let whole = (batch * BATCH..((batch + 1) * BATCH).min(ROWS)).all(|j| got.contains_key(&j));
        assert!(whole, "key {k} is present without the rest of its batch");
    }
}

fn create_local(dir: &Path, dim: &str) {
    let e = run_guarded(&["local", "create", dir.to_str().unwrap(), "--dim", dim]);
    assert!(e.success, "{}", e.stderr);
}

fn local_import(dir: &Path, file: &Path, threads: &str, extra: &[&str]) -> Exit {
    let mut args = vec![
        "local",
        "import",
        dir.to_str().unwrap(),
        file.to_str().unwrap(),
        "--batch",
        "100",
        "--threads",
        threads,
    ];
    args.extend_from_slice(extra);
    run_guarded(&args)
}

const THREADS: [&str; 2] = ["1", "4"];

#[test]
fn local_import_of_the_wrong_dimension_fails_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("base48.fvecs");
    write_fvecs(&file, (0..ROWS).map(|i| row(i, 48)));
    for threads in THREADS {
        let dir = tmp.path().join(format!("shard-{threads}"));
        create_local(&dir, "8");
        let e = local_import(&dir, &file, threads, &[]);
        assert!(!e.success, "threads {threads}: import succeeded");
        assert!(
            e.stderr
                .contains("dimension 48 does not match the collection's dimension 8"),
            "threads {threads}: {}",
            e.stderr
        );
        assert_eq!(acked_in(&e.stderr), 0, "{}", e.stderr);
        assert!(e.stderr.contains("base48.fvecs"), "{}", e.stderr);
        assert!(local_contents(&dir).is_empty());
    }
}

#[test]
fn local_import_into_a_read_only_shard_fails_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("base.fvecs");
    write_fvecs(&file, (0..ROWS).map(|i| row(i, 8)));
    let dir = tmp.path().join("shard");
    create_local(&dir, "8");
    for threads in THREADS {
        let e = local_import(&dir, &file, threads, &["--read-only"]);
        assert!(!e.success, "threads {threads}: import succeeded");
        assert!(e.stderr.contains("read-only"), "{}", e.stderr);
        assert_eq!(acked_in(&e.stderr), 0, "{}", e.stderr);
    }
    assert!(local_contents(&dir).is_empty());
}

#[test]
fn local_import_with_a_nan_midway_keeps_exactly_the_acknowledged_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("nan.fvecs");
    nan_file(&file);
    for threads in THREADS {
        let dir = tmp.path().join(format!("shard-{threads}"));
        create_local(&dir, "8");
        let e = local_import(&dir, &file, threads, &[]);
        assert!(!e.success, "threads {threads}: import succeeded");
        assert!(
            e.stderr
                .contains(&format!("(key {NAN_ROW}).vector: non-finite value")),
            "{}",
            e.stderr
        );
        // Every batch before the refused one is written, none after it is started once
        // the failure is known.
        let acked = acked_in(&e.stderr);
        assert_eq!(acked, NAN_ROW / BATCH * BATCH, "{}", e.stderr);
        let extra = written_too(&e.stderr);
        if threads == "1" {
            assert_eq!(extra, 0, "{}", e.stderr);
        }
        assert_prefix(
            &local_contents(&dir),
            acked,
            Some(NAN_ROW / BATCH),
            extra,
            true,
        );
    }
}

#[test]
fn local_import_of_a_truncated_file_keeps_the_rows_before_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cut.fvecs");
    write_fvecs(&file, (0..ROWS).map(|i| row(i, 8)));
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    for threads in THREADS {
        let dir = tmp.path().join(format!("shard-{threads}"));
        create_local(&dir, "8");
        let e = local_import(&dir, &file, threads, &[]);
        assert!(!e.success, "threads {threads}: import succeeded");
        assert!(
            e.stderr.contains(&format!("row {} is truncated", ROWS - 1)),
            "{}",
            e.stderr
        );
        let acked = acked_in(&e.stderr);
        assert_eq!(acked, (ROWS - 1) / BATCH * BATCH, "{}", e.stderr);
        assert_prefix(&local_contents(&dir), acked, None, 0, true);
    }
}

/// Every point of the collection: key → vector.
async fn cluster_contents(c: &Cluster, collection: &str) -> BTreeMap<u64, Vec<f32>> {
    let mut client = c.any_client().await;
    let mut out = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .scan(pb::ScanRequest {
                collection: collection.into(),
                cursor: cursor.clone(),
                limit: 1000,
            })
            .await
            .unwrap()
            .into_inner();
        for p in page.points {
            let Some(pb::key::Kind::Int(k)) = p.key.and_then(|k| k.kind) else {
                panic!("a point without an integer key")
            };
            assert!(out.insert(k, p.vector).is_none(), "key {k} scanned twice");
        }
        if page.next_cursor.is_empty() {
            return out;
        }
        cursor = page.next_cursor;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_import_fails_promptly_with_the_acknowledged_prefix() {
    let c = Cluster::start(1, 1);
    c.wait_ready(1).await;
    let router = c.routers[0].grpc.clone();
    let tmp = tempfile::tempdir().unwrap();
    let nan = tmp.path().join("nan.fvecs");
    nan_file(&nan);
    let wide = tmp.path().join("base48.fvecs");
    write_fvecs(&wide, (0..ROWS).map(|i| row(i, 48)));
    for parallel in ["1", "4"] {
        let collection = format!("nan-{parallel}");
        let e = run_guarded(&[
            "collection",
            "create",
            "--router",
            &router,
            &collection,
            "--dim",
            "8",
            "--shards",
            "2",
        ]);
        assert!(e.success, "{}", e.stderr);
        c.wait_serving(&collection).await;
        let import = |file: &Path| {
            let (router, collection, file) = (router.clone(), collection.clone(), file.to_owned());
            tokio::task::spawn_blocking(move || {
                run_guarded(&[
                    "import",
                    "--router",
                    &router,
                    "--collection",
                    &collection,
                    file.to_str().unwrap(),
                    "--batch",
                    "100",
                    "--parallel",
                    parallel,
                ])
            })
        };
        let e = import(&wide).await.unwrap();
        assert!(!e.success, "parallel {parallel}: import succeeded");
        assert!(e.stderr.contains("dimension 48"), "{}", e.stderr);
        assert_eq!(acked_in(&e.stderr), 0, "{}", e.stderr);

        let e = import(&nan).await.unwrap();
        assert!(!e.success, "parallel {parallel}: import succeeded");
        assert!(e.stderr.contains("non-finite"), "{}", e.stderr);
        let acked = acked_in(&e.stderr);
        assert_eq!(acked, NAN_ROW / BATCH * BATCH, "{}", e.stderr);
        let got = cluster_contents(&c, &collection).await;
        // Batches in flight beside the refused one were cancelled by the client: whether
        // the router wrote them (or the part for one shard) is unknown.
        let extra = got.keys().filter(|k| **k >= acked).count() as u64;
        if parallel == "1" {
            assert_eq!(extra, 0, "nothing after the refused batch was sent");
        }
        assert_prefix(&got, acked, Some(NAN_ROW / BATCH), extra, false);
    }
}
