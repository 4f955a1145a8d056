//! Crash test: a child process imports through the CLI and reports acknowledged points;
//! it is killed with SIGKILL at random moments (small memtables, so flushes and
//! compactions run all the time). After reopening, the shard must hold exactly the
//! acknowledged prefix of the file, or that prefix plus the batch that was in flight —
//! every acknowledged key with its latest acknowledged value, and nothing never written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use vecshard_engine::{Key, Options, Point, Shard};

const LINES: usize = 2_500;
const ROUNDS: usize = 24;

fn line_point(i: usize) -> Point {
    let key = if i.is_multiple_of(5) {
        Key::Str(format!("s{}", i % 97))
    } else {
        Key::Int((i % 311) as u64)
    };
    let vector = (0..8)
        .map(|d| ((i * 7 + d * 13) % 101) as f32 / 10.0)
        .collect();
    Point::new(key, vector).with("line", vecshard_engine::Value::Int(i as i64))
}

fn write_input(path: &std::path::Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..LINES {
        let p = line_point(i);
        let line = serde_json::json!({
            "id": vecshard_model::json::key_to_json(&p.key),
            "vector": p.vector,
            "metadata": vecshard_model::json::metadata_to_json(&p.metadata),
        });
        writeln!(f, "{line}").unwrap();
    }
}

fn acked_count(line: &str) -> usize {
    line.strip_prefix("acked ")
        .and_then(|n| n.parse().ok())
        .expect("acked N lines")
}

/// A key whose value differs, with the input line each side holds.
fn first_difference(got: &BTreeMap<Key, Point>, want: &BTreeMap<Key, Point>) -> Option<String> {
    let line = |p: Option<&Point>| p.and_then(|p| p.metadata.get("line").cloned());
    want.keys()
        .chain(got.keys())
        .find(|k| got.get(*k) != want.get(*k))
        .map(|k| {
            format!(
                "key {k}: shard has line {:?}, acknowledged line {:?}",
                line(got.get(k)),
                line(want.get(k))
            )
        })
}

fn model(lines: usize) -> BTreeMap<Key, Point> {
    let mut m = BTreeMap::new();
    for i in 0..lines.min(LINES) {
        let p = line_point(i);
        m.insert(p.key.clone(), p);
    }
    m
}

/// The shard's points, and how many segments it had when reopened.
fn contents(dir: &str) -> (BTreeMap<Key, Point>, u64) {
    let shard = Shard::open(
        dir,
        Options {
            background: false,
            ..Options::default()
        },
    )
    .expect("reopen after kill");
    let segments = shard.stats().segments;
    let mut out = BTreeMap::new();
    let mut after = None;
    loop {
        let page = shard.scan(after.as_ref(), 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key.clone());
        for p in page {
            out.insert(p.key.clone(), p);
        }
    }
    shard.close().unwrap();
    (out, segments)
}

#[test]
fn sigkill_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    crash_rounds(ROUNDS, 2, |round| {
        tmp.path()
            .join(format!("shard-{round}"))
            .to_str()
            .unwrap()
            .to_string()
    });
}

/// The same against the local S3 endpoint: kills land during WAL uploads (one object per
/// group commit), segment uploads and manifest commits.
#[test]
fn sigkill_on_s3_loses_no_acknowledged_write() {
    let endpoint = std::env::var("VECSHARD_TEST_S3_ENDPOINT").expect(
        "VECSHARD_TEST_S3_ENDPOINT is not set: start the local S3 first: eval \"$(scripts/test-services.sh start)\"",
    );
    let bucket =
        std::env::var("VECSHARD_TEST_S3_BUCKET").unwrap_or_else(|_| "vecshard-test".into());
    assert_eq!(
        std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
        Some(endpoint.as_str()),
        "AWS_ENDPOINT_URL must point at the test endpoint"
    );
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    crash_rounds(S3_ROUNDS, 0, |round| {
        format!("s3://{bucket}/crash-{run}-{round}")
    });
}

const S3_ROUNDS: usize = 10;

/// `rounds` import-and-kill rounds on `location(round)`; at least `min_with_segments` of
/// them must have been killed after a flush.
fn crash_rounds(rounds: usize, min_with_segments_div: usize, location: impl Fn(usize) -> String) {
    let seed: u64 = std::env::var("VECSHARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.jsonl");
    write_input(&input);
    let bin = env!("CARGO_BIN_EXE_vecshard");
    let mut rounds_with_segments = 0;
    for round in 0..rounds {
        let dir = location(round);
        let dir = dir.as_str();
        let ok = Command::new(bin)
            .args(["local", "create", dir, "--dim", "8", "--metric", "l2"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success());
        let batch: usize = rng.random_range(1..=150);
        let kill_after: usize = rng.random_range(0..LINES);
        let mut child = Command::new(bin)
            .args(["local", "import", dir])
            .arg(&input)
            .args([
                "--batch",
                &batch.to_string(),
                "--memtable-bytes",
                "65536",
                "--max-segments",
                "2",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = 0;
        for line in lines.by_ref() {
            acked = acked_count(&line.unwrap());
            if acked >= kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The importer may have acknowledged more than we had read when we killed it: the
        // last `acked N` it printed is the floor.
        let acked = lines
            .map_while(|l| l.ok())
            .map(|l| acked_count(&l))
            .fold(acked, usize::max);
        let (got, segments) = contents(dir);
        rounds_with_segments += usize::from(segments > 0);
        // Durable = a prefix of whole batches, at least everything acknowledged (the
        // importer keeps writing while its acks are printed, so more may be durable).
        let durable_prefix = (0..=LINES.div_ceil(batch))
            .map(|j| (acked + j * batch).min(LINES))
            .find(|n| got == model(*n));
        assert!(
            durable_prefix.is_some(),
            "{dir} round {round} (seed {seed}, batch {batch}): after {acked} acknowledged points the shard \
             holds {} keys, which is no prefix of whole batches at or beyond the acknowledged one: {:?}",
            got.len(),
            first_difference(&got, &model(acked))
        );
    }
    if let Some(min) = rounds.checked_div(min_with_segments_div) {
        assert!(
            rounds_with_segments > min,
            "most kills should land after flushes began ({rounds_with_segments})"
        );
    }
}
