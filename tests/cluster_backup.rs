//! Cluster backups with real processes (routers, nodes, and the `vecshard backup` command
//! line): a backup of a collection on local disk and of one on S3 restores under a new
//! name with identical points and identical exact-search results; writes during a backup
//! do not break it; deleting a backup leaves the live collection alone; a failed or
//! interrupted backup is never listed as complete; bad input fails clearly and quickly.

mod cluster_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_support::*;
use serde_json::Value;
use vecshard_proto::v1 as pb;
use vecshard_test_support::api::key_id;

const DIM: usize = 8;

/// Run `vecshard backup ARGS…`; (exit status success, stdout, stderr). A run over a
/// minute is a hang and fails the test.
async fn cli(args: &[&str]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.arg("backup").args(args).env("VECSHARD_LOG", "warn");
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`vecshard backup {args:?}` hung"))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cli` that must succeed.
async fn cli_ok(c: &Cluster, args: &[&str]) -> String {
    let (ok, out, err) = cli(args).await;
    assert!(ok, "`vecshard backup {args:?}` failed: {err}\n{}", c.logs());
    out
}

/// `cli` that must fail with every needle in its error.
async fn cli_fails(args: &[&str], needles: &[&str]) {
    let (ok, out, err) = cli(args).await;
    assert!(!ok, "`vecshard backup {args:?}` succeeded: {out}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in the error of {args:?}: {err}");
    }
}

async fn create(c: &Cluster, name: &str, shards: u32, storage: &str) {
    let mut client = c.any_client().await;
    client
        .create_collection(pb::CreateCollectionRequest {
            name: name.into(),
            dimension: DIM as u32,
            metric: pb::Metric::L2 as i32,
            shard_count: shards,
            storage: storage.into(),
            index: None,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}\n{}", c.logs()));
    c.wait_serving(name).await;
}

/// Every point of a collection, complete (vector, metadata, payload), by key.
async fn points(c: &Cluster, collection: &str) -> BTreeMap<u64, pb::Point> {
    let mut client = c.any_client().await;
    let (mut cursor, mut out) = (String::new(), BTreeMap::new());
    loop {
        let page = client
            .scan(pb::ScanRequest {
                collection: collection.into(),
                cursor,
                limit: 500,
            })
            .await
            .unwrap_or_else(|e| panic!("scan {collection}: {e:?}\n{}", c.logs()))
            .into_inner();
        for p in page.points {
            assert!(out.insert(key_id(p.key.as_ref()), p).is_none());
        }
        if page.next_cursor.is_empty() {
            return out;
        }
        cursor = page.next_cursor;
    }
}

/// Exact top-10 (keys and scores, with metadata and payload) for a few queries.
async fn exact_results(c: &Cluster, collection: &str) -> Vec<Vec<(u64, u32, Vec<u8>)>> {
    let mut client = c.any_client().await;
    let mut out = Vec::new();
    for q in 0..8u64 {
        let r = client
            .search(pb::SearchRequest {
                collection: collection.into(),
                vector: vector(1_000_000 + q, DIM),
                k: 10,
                exact: true,
                with_payload: true,
                with_metadata: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("search {collection}: {e:?}\n{}", c.logs()))
            .into_inner();
        assert_eq!(r.hits.len(), 10);
        out.push(
            r.hits
                .iter()
                .map(|h| (key_id(h.key.as_ref()), h.score.to_bits(), h.payload.clone()))
                .collect(),
        );
    }
    out
}

/// Upsert points `ids` and delete `deleted` (so tombstones are in the backup too).
async fn fill(c: &Cluster, collection: &str, ids: std::ops::Range<u64>, deleted: &[u64]) {
    let mut client = c.any_client().await;
    upsert(&mut client, collection, ids, DIM).await;
    if deleted.is_empty() {
        return;
    }
    client
        .delete(pb::DeleteRequest {
            collection: collection.into(),
            keys: deleted.iter().map(|i| int_key(*i)).collect(),
        })
        .await
        .unwrap();
}

async fn describe(c: &Cluster, location: &str) -> Value {
    let http = &c.routers[0].http;
    let out = cli_ok(
        c,
        &[
            "describe",
            "--router",
            http,
            "--location",
            location,
            "--json",
        ],
    )
    .await;
    serde_json::from_str(&out).unwrap()
}

/// `vecshard backup list --json` at `location`: backup name → status.
async fn statuses(c: &Cluster, http: &str, location: &str) -> BTreeMap<String, String> {
    let out = cli_ok(
        c,
        &["list", "--router", http, "--location", location, "--json"],
    )
    .await;
    let list: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().into(),
                b["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Back up, restore as `restored`, and check points and exact search are identical.
async fn round_trip(c: &Cluster, collection: &str, to: &str, restored: &str) {
    let http = c.routers[0].http.clone();
    let before = points(c, collection).await;
    let out = cli_ok(
        c,
        &[
            "create",
            "--router",
            &http,
            "--collection",
            collection,
            "--to",
            to,
        ],
    )
    .await;
    assert!(out.contains("complete"), "{out}");
    let d = describe(c, to).await;
    assert_eq!(d["status"], "complete", "{d}");
    let m = &d["manifest"];
    assert_eq!(m["points"], before.len() as u64, "{d}");
    assert_eq!(m["collection"]["name"], collection);
    let shards = m["shards"].as_array().unwrap();
    assert_eq!(
        shards.len() as u64,
        m["collection"]["shard_count"].as_u64().unwrap()
    );
    assert!(
        shards
            .iter()
            .all(|s| s["manifest_crc32c"].as_u64().unwrap() != 0),
        "{d}"
    );
    let out = cli_ok(
        c,
        &["restore", "--router", &http, "--from", to, "--as", restored],
    )
    .await;
    assert!(out.contains(&format!("as {restored}")), "{out}");
    let after = points(c, restored).await;
    assert_eq!(after.len(), before.len());
    assert!(
        after == before,
        "restored points differ from {collection}'s"
    );
    assert_eq!(
        exact_results(c, collection).await,
        exact_results(c, restored).await,
        "exact search differs"
    );
    let mut client = c.any_client().await;
    let spec = |name: &str| pb::DescribeCollectionRequest { name: name.into() };
    let a = client
        .describe_collection(spec(collection))
        .await
        .unwrap()
        .into_inner();
    let b = client
        .describe_collection(spec(restored))
        .await
        .unwrap()
        .into_inner();
    let (a, b) = (a.spec.unwrap(), b.spec.unwrap());
    assert_eq!(
        (a.dimension, a.metric, a.shard_count, &a.storage, &a.index),
        (b.dimension, b.metric, b.shard_count, &b.storage, &b.index)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_of_local_and_s3_collections_restore_identically() {
    let c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    let storage = c.storage();
    create(&c, "loc", 3, "local").await;
    create(&c, "obj", 2, &storage).await;
    fill(&c, "loc", 0..1500, &[3, 30, 300]).await;
    fill(&c, "obj", 0..900, &[5, 50]).await;
    let dir = c.dir.path().join("backups");
    let local_to = dir.join("loc-1").to_string_lossy().into_owned();
    round_trip(&c, "loc", &local_to, "loc_restored").await;
    let s3_to = format!("{storage}-backups/obj-1");
    round_trip(&c, "obj", &s3_to, "obj_restored").await;
    // A local collection backed up to S3 restores too, and `list` shows both backups.
    let to = format!("{storage}-backups/loc-2");
    round_trip(&c, "loc", &to, "loc_from_s3").await;
    let http = c.routers[0].http.clone();
    let statuses = statuses(&c, &http, &format!("{storage}-backups")).await;
    assert_eq!(
        statuses,
        [
            ("loc-2".into(), "complete".into()),
            ("obj-1".into(), "complete".into())
        ]
        .into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_backup_and_deleting_it_leave_the_collection_intact() {
    let c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    create(&c, "live", 3, "local").await;
    fill(&c, "live", 0..2000, &[]).await;
    let http = c.routers[0].http.clone();
    let to = c
        .dir
        .path()
        .join("backups/live-1")
        .to_string_lossy()
        .into_owned();
    // A writer adds new keys (2000, 2001, …) all through the backup.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writer_client = c.any_client().await;
    let writer_stop = stop.clone();
    let writer = tokio::spawn(async move {
        let mut next = 2000u64;
        while !writer_stop.load(std::sync::atomic::Ordering::Relaxed) {
            upsert(&mut writer_client, "live", next..next + 50, DIM).await;
            next += 50;
        }
        next
    });
    // Wait for the writer to be under way, then back up while it writes.
    let mut client = c.any_client().await;
    c.eventually("the writer to write", Duration::from_secs(30), || {
        let mut client = client.clone();
        async move { (scan_all(&mut client, "live").await.len() > 2100).then_some(()) }
    })
    .await;
    let acked_before = scan_all(&mut client, "live").await;
    cli_ok(
        &c,
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "live",
            "--to",
            &to,
        ],
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written > 2100);
    cli_ok(
        &c,
        &["restore", "--router", &http, "--from", &to, "--as", "snap"],
    )
    .await;
    let original = points(&c, "live").await;
    let restored = points(&c, "snap").await;
    // Every write acknowledged before the backup began is in it; later ones may be;
    // each restored point is exactly what was written.
    for k in &acked_before {
        assert!(
            restored.contains_key(k),
            "key {k}, acknowledged before the backup, is missing"
        );
    }
    for (k, p) in &restored {
        assert_eq!(Some(p), original.get(k), "restored key {k} differs");
    }
    // The backup's count is what was restored.
    let d = describe(&c, &to).await;
    assert_eq!(d["manifest"]["points"], restored.len() as u64);

    // Deleting the backup leaves the live collection (and the restored one) intact.
    let out = cli_ok(&c, &["delete", "--router", &http, "--location", &to]).await;
    assert!(out.contains("deleted"), "{out}");
    assert!(!std::path::Path::new(&to).exists(), "{to} still exists");
    assert_eq!(points(&c, "live").await, original);
    assert_eq!(points(&c, "snap").await, restored);
    cli_fails(
        &["describe", "--router", &http, "--location", &to],
        &["NOT_FOUND", "no backup"],
    )
    .await;
    let out = cli_ok(
        &c,
        &[
            "list",
            "--router",
            &http,
            "--location",
            &c.dir.path().join("backups").to_string_lossy(),
        ],
    )
    .await;
    assert!(out.contains("no backups"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_clearly() {
    let c = Cluster::start(1, 1);
    c.wait_ready(1).await;
    create(&c, "src", 2, "local").await;
    fill(&c, "src", 0..300, &[]).await;
    create(&c, "taken", 1, "local").await;
    let http = c.routers[0].http.clone();
    let backups = c.dir.path().join("backups");
    let to = backups.join("b1").to_string_lossy().into_owned();
    cli_fails(
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "nope",
            "--to",
            &to,
        ],
        &["NOT_FOUND", "nope"],
    )
    .await;
    cli_fails(
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "src",
            "--to",
            "relative/dir",
        ],
        &["INVALID_ARGUMENT", "not absolute"],
    )
    .await;
    cli_fails(
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "src",
            "--to",
            "gs://b/x",
        ],
        &["INVALID_ARGUMENT", "gs://"],
    )
    .await;
    cli_ok(
        &c,
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "src",
            "--to",
            &to,
        ],
    )
    .await;
    // The same location twice.
    cli_fails(
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "src",
            "--to",
            &to,
        ],
        &["ALREADY_EXISTS", "already"],
    )
    .await;
    // Restoring onto an existing name, from nowhere, or under a bad name.
    cli_fails(
        &["restore", "--router", &http, "--from", &to, "--as", "taken"],
        &["ALREADY_EXISTS", "taken"],
    )
    .await;
    let missing = backups.join("missing").to_string_lossy().into_owned();
    cli_fails(
        &[
            "restore", "--router", &http, "--from", &missing, "--as", "x",
        ],
        &["NOT_FOUND", "no backup"],
    )
    .await;
    cli_fails(
        &[
            "restore",
            "--router",
            &http,
            "--from",
            &to,
            "--as",
            "bad name!",
        ],
        &["INVALID_ARGUMENT"],
    )
    .await;
    cli_fails(
        &["delete", "--router", &http, "--location", &missing],
        &["NOT_FOUND", "no backup"],
    )
    .await;
    // A corrupt manifest: restore and describe name it; list shows it as corrupt.
    let corrupt = backups.join("corrupt");
    copy_dir(std::path::Path::new(&to), &corrupt);
    let manifest = corrupt.join("backup.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("\"points\": 300", "\"points\": 301", 1),
    )
    .unwrap();
    let corrupt = corrupt.to_string_lossy().into_owned();
    cli_fails(
        &[
            "restore", "--router", &http, "--from", &corrupt, "--as", "y",
        ],
        &["DATA_LOSS", "corrupt backup manifest", "checksum"],
    )
    .await;
    std::fs::write(&manifest, "{ not json").unwrap();
    cli_fails(
        &["describe", "--router", &http, "--location", &corrupt],
        &["DATA_LOSS", "backup.json"],
    )
    .await;
    let out = cli_ok(
        &c,
        &[
            "list",
            "--router",
            &http,
            "--location",
            &backups.to_string_lossy(),
        ],
    )
    .await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("corrupt") && l.contains("corrupt")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("complete") && l.contains("b1")),
        "{out}"
    );
    // A shard checkpoint that does not match the manifest's checksum: the restore fails,
    // names it, and leaves no collection behind.
    let tampered = backups.join("tampered");
    copy_dir(std::path::Path::new(&to), &tampered);
    let shard_manifests = tampered.join("shard-0001/manifest");
    let f = std::fs::read_dir(&shard_manifests)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&f).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let tampered = tampered.to_string_lossy().into_owned();
    cli_fails(
        &[
            "restore", "--router", &http, "--from", &tampered, "--as", "z",
        ],
        &["shard 1", "CRC32C", "dropped again"],
    )
    .await;
    let mut client = c.any_client().await;
    let names: Vec<String> = client
        .list_collections(pb::ListCollectionsRequest {})
        .await
        .unwrap()
        .into_inner()
        .collections
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["src", "taken"]);
    // An unreachable router fails at once with its address.
    let port = free_port();
    cli_fails(
        &[
            "list",
            "--router",
            &format!("127.0.0.1:{port}"),
            "--location",
            &to,
        ],
        &["cannot reach", &port.to_string()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_interrupted_backups_are_never_listed_complete() {
    let mut c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    create(&c, "x", 4, "local").await;
    fill(&c, "x", 0..800, &[]).await;
    let http = c.routers[0].http.clone();
    let backups = c.dir.path().join("backups");
    let placements = c.wait_serving("x").await;
    let victim = placements[0].owner.clone();

    // 1. A node freezes mid-backup and the router is killed: the backup is interrupted.
    let frozen = c.node_index(&victim);
    c.nodes[frozen].proc.as_ref().unwrap().stop();
    let interrupted = backups.join("interrupted").to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args([
        "backup",
        "create",
        "--router",
        &http,
        "--collection",
        "x",
        "--to",
        &interrupted,
    ])
    .kill_on_drop(true)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut backup = cmd.spawn().unwrap();
    let started = std::path::Path::new(&interrupted).join("backup-started.json");
    c.eventually("the backup to start", Duration::from_secs(30), || async {
        started.exists().then_some(())
    })
    .await;
    c.routers[0].proc.as_mut().unwrap().kill9();
    let status = tokio::time::timeout(Duration::from_secs(30), backup.wait())
        .await
        .expect("the CLI hung after its router died")
        .unwrap();
    assert!(!status.success());
    c.nodes[frozen].proc.as_ref().unwrap().cont();
    c.start_router(0);
    c.wait_ready(2).await;
    c.wait_serving("x").await;

    // 2. A node is killed: the backup fails (its local shards cannot move) and says so.
    c.nodes[frozen].proc.as_mut().unwrap().kill9();
    let failed = backups.join("failed").to_string_lossy().into_owned();
    cli_fails(
        &[
            "create",
            "--router",
            &http,
            "--collection",
            "x",
            "--to",
            &failed,
            "--timeout-s",
            "20",
        ],
        &["UNAVAILABLE", &victim],
    )
    .await;

    let statuses = statuses(&c, &http, &backups.to_string_lossy()).await;
    assert_eq!(
        statuses,
        [
            ("failed".into(), "failed".into()),
            ("interrupted".into(), "incomplete".into())
        ]
        .into()
    );
    for (from, needle) in [(&interrupted, "incomplete"), (&failed, "failed")] {
        cli_fails(
            &["restore", "--router", &http, "--from", from, "--as", "r"],
            &["FAILED_PRECONDITION", needle],
        )
        .await;
    }
    // Both can be deleted.
    for l in [&interrupted, &failed] {
        cli_ok(&c, &["delete", "--router", &http, "--location", l]).await;
    }
}

/// The same operations over the public gRPC API: a backup started as a job and polled,
/// described and listed, restored (waiting) with identical points and exact-search
/// results, deleted; bad input answers with the codes REST (and so the CLI) answers. (The
/// admin role on these RPCs: `router/tests/security.rs`, whose router has API keys.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_backup_operations_round_trip_and_refuse_bad_input() {
    use tonic::Code;
    let c = Cluster::start(1, 2);
    c.wait_ready(2).await;
    create(&c, "g", 3, "local").await;
    fill(&c, "g", 0..1200, &[7, 70]).await;
    create(&c, "taken", 1, "local").await;
    let backups = c.dir.path().join("backups");
    let to = backups.join("g-1").to_string_lossy().into_owned();
    let mut client = c.any_client().await;
    let before = points(&c, "g").await;

    let job = client
        .create_backup(pb::CreateBackupRequest {
            collection: "g".into(),
            to: to.clone(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("CreateBackup: {e:?}\n{}", c.logs()))
        .into_inner();
    assert_eq!(
        (job.kind.as_str(), job.location.as_str()),
        ("backup", to.as_str())
    );
    let done = c
        .eventually("the backup job to end", Duration::from_secs(60), || {
            let (mut client, id) = (client.clone(), job.id.clone());
            async move {
                let j = client
                    .get_backup_job(pb::GetBackupJobRequest { id })
                    .await
                    .unwrap()
                    .into_inner();
                (j.state != pb::BackupJobState::Running as i32).then_some(j)
            }
        })
        .await;
    assert_eq!(done.state, pb::BackupJobState::Done as i32, "{done:?}");
    assert_eq!((done.shards_total, done.shards_done), (3, 3));
    assert_eq!(done.points_done, before.len() as u64);
    let Some(pb::backup_job::Result::Backup(m)) = done.result.clone() else {
        panic!("no manifest in {done:?}")
    };
    assert_eq!(m.points, before.len() as u64);
    assert_eq!(m.shards.len(), 3);
    assert_eq!(m.collection.as_ref().unwrap().name, "g");
    assert!(m.shards.iter().all(|s| s.manifest_crc32c != 0), "{m:?}");

    let d = client
        .describe_backup(pb::DescribeBackupRequest {
            location: to.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let summary = d.backup.unwrap();
    assert_eq!(summary.status, pb::BackupStatus::Complete as i32);
    assert_eq!(
        (summary.collection.as_str(), summary.points),
        ("g", m.points)
    );
    assert_eq!(d.manifest, Some(m.clone()));
    let listed = client
        .list_backups(pb::ListBackupsRequest {
            location: backups.to_string_lossy().into_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<(String, i32)> = listed
        .backups
        .into_iter()
        .map(|b| (b.name, b.status))
        .collect();
    assert_eq!(
        listed,
        [("g-1".to_string(), pb::BackupStatus::Complete as i32)]
    );

    let r = client
        .restore_backup(pb::RestoreBackupRequest {
            location: to.clone(),
            as_collection: "g_restored".into(),
            wait: true,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("RestoreBackup: {e:?}\n{}", c.logs()))
        .into_inner();
    assert_eq!(r.state, pb::BackupJobState::Done as i32, "{r:?}");
    let Some(pb::backup_job::Result::Restore(restored)) = r.result else {
        panic!("no restore result in {r:?}")
    };
    assert_eq!(
        (
            restored.collection.as_str(),
            restored.points,
            restored.shard_count
        ),
        ("g_restored", before.len() as u64, 3)
    );
    assert!(
        points(&c, "g_restored").await == before,
        "restored points differ"
    );
    assert_eq!(
        exact_results(&c, "g").await,
        exact_results(&c, "g_restored").await,
        "exact search differs"
    );

    // Bad input, each with the code and words REST answers.
    let create_req = |collection: &str, to: &str, timeout_s| pb::CreateBackupRequest {
        collection: collection.into(),
        to: to.into(),
        timeout_s,
        wait: true,
    };
    let restore_req = |from: &str, name: &str| pb::RestoreBackupRequest {
        location: from.into(),
        as_collection: name.into(),
        wait: true,
        ..Default::default()
    };
    let to2 = backups.join("g-2").to_string_lossy().into_owned();
    let outside = c
        .dir
        .path()
        .join("elsewhere/g")
        .to_string_lossy()
        .into_owned();
    let missing = backups.join("missing").to_string_lossy().into_owned();
    type Case<'a> = (&'a str, Result<(), tonic::Status>, Code, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "unknown collection",
            client
                .create_backup(create_req("nope", &to2, None))
                .await
                .map(drop),
            Code::NotFound,
            vec!["nope"],
        ),
        (
            "unsupported scheme",
            client
                .create_backup(create_req("g", "gs://b/x", None))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec!["gs://"],
        ),
        (
            "relative location",
            client
                .create_backup(create_req("g", "relative/dir", None))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec!["not absolute"],
        ),
        (
            "location outside backup_locations",
            client
                .create_backup(create_req("g", &outside, None))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec![outside.as_str(), "router.backup_locations"],
        ),
        (
            "zero timeout",
            client
                .create_backup(create_req("g", &to2, Some(0)))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec!["timeout_s"],
        ),
        (
            "location that holds a backup",
            client
                .create_backup(create_req("g", &to, None))
                .await
                .map(drop),
            Code::AlreadyExists,
            vec!["already"],
        ),
        (
            "restore over an existing name",
            client
                .restore_backup(restore_req(&to, "taken"))
                .await
                .map(drop),
            Code::AlreadyExists,
            vec!["taken"],
        ),
        (
            "restore under a bad name",
            client
                .restore_backup(restore_req(&to, "bad name!"))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec!["bad name!"],
        ),
        (
            "restore from nothing",
            client
                .restore_backup(restore_req(&missing, "x"))
                .await
                .map(drop),
            Code::NotFound,
            vec!["no backup"],
        ),
        (
            "restore from outside backup_locations",
            client
                .restore_backup(restore_req(&outside, "x"))
                .await
                .map(drop),
            Code::InvalidArgument,
            vec!["router.backup_locations"],
        ),
        (
            "unknown job",
            client
                .get_backup_job(pb::GetBackupJobRequest {
                    id: "backup-999".into(),
                })
                .await
                .map(drop),
            Code::NotFound,
            vec!["backup-999"],
        ),
        (
            "delete nothing",
            client
                .delete_backup(pb::DeleteBackupRequest {
                    location: missing.clone(),
                })
                .await
                .map(drop),
            Code::NotFound,
            vec!["no backup"],
        ),
    ];
    for (what, r, code, needles) in cases {
        let e = r.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        for n in needles {
            assert!(e.message().contains(n), "{what}: {n:?} not in {e:?}");
        }
    }
    assert!(
        !std::path::Path::new(&outside).exists(),
        "{outside} was created"
    );

    // Deleting the backup over gRPC leaves both collections intact.
    let del = client
        .delete_backup(pb::DeleteBackupRequest {
            location: to.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(del.location, to);
    assert!(del.files_deleted > 3, "{del:?}");
    assert!(!std::path::Path::new(&to).exists(), "{to} still exists");
    assert_eq!(points(&c, "g").await, before);
    assert_eq!(points(&c, "g_restored").await, before);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
