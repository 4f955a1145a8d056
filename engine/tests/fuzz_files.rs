//! The engine's file readers on damaged bytes: a shard with segments, a manifest and a
//! WAL is copied, one of its files is mutated at random (bit flips, overwritten runs,
//! truncation, extension, a zeroed file), and the copy is opened, read and searched. Every
//! outcome may be an error or a shard that works; none may panic.
//!
//! Short mode (the default): 15 mutated opens (a damaged copy that still opens replays and
//! reindexes, seconds each in a debug build). `VECSHARD_FUZZ_FILES=N` runs N;
//! `VECSHARD_FUZZ_SEED` replays a run.

use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use vecshard_engine::{Key, Metric, Options, SearchRequest, Shard, ShardSpec};
use vecshard_test_support::model::point4 as point;

fn opts() -> Options {
    Options {
        background: false,
        ..Options::default()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "LOCK") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        let rel = f.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, dest).unwrap();
    }
}

/// Damage `bytes` in one of several ways; returns what was done (for the failure message).
fn mutate(bytes: &mut Vec<u8>, rng: &mut SmallRng) -> String {
    if bytes.is_empty() {
        bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>()));
        return "filled an empty file".into();
    }
    let at = rng.random_range(0..bytes.len());
    match rng.random_range(0..6) {
        0 => {
            let bit = rng.random_range(0..8);
            bytes[at] ^= 1 << bit;
            format!("flipped bit {bit} at {at}")
        }
        1 => {
            let n = rng.random_range(1..=16).min(bytes.len() - at);
            for b in &mut bytes[at..at + n] {
                *b = rng.random();
            }
            format!("overwrote {n} bytes at {at}")
        }
        2 => {
            bytes.truncate(at);
            format!("truncated to {at}")
        }
        3 => {
            let n = rng.random_range(1..4096);
            bytes.extend((0..n).map(|_| rng.random::<u8>()));
            format!("appended {n} bytes")
        }
        4 => {
            // A length or count field turned huge.
            let n = 4.min(bytes.len() - at);
            for b in &mut bytes[at..at + n] {
                *b = 0xff;
            }
            format!("set {n} bytes at {at} to 0xff")
        }
        _ => {
            bytes.iter_mut().for_each(|b| *b = 0);
            "zeroed the file".into()
        }
    }
}

/// Read and search a shard that opened despite the damage, then close it.
fn use_shard(shard: Shard) {
    let _ = shard.get(&Key::Int(3));
    let _ = shard.scan(None, 1000);
    let _ = shard.search(&SearchRequest::new(vec![1.0, 2.0, 1.0, -1.0], 5));
    let _ = shard.close();
}

/// Open (plainly, then accepting WAL loss), read and search a damaged copy; any panic
/// fails the test.
fn exercise(loc: &str) {
    if let Ok(shard) = Shard::open(loc, opts()) {
        use_shard(shard);
    }
    if let Ok((shard, _)) = Shard::open_accepting_wal_loss(loc, opts()) {
        use_shard(shard);
    }
}

#[test]
fn damaged_files_give_errors_never_panics() {
    let runs: usize = std::env::var("VECSHARD_FUZZ_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let seed: u64 = std::env::var("VECSHARD_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    // On tmpfs where there is one: every open fsyncs, which a shared disk makes slow.
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let good = root.path().join("good");
    let loc = good.to_str().unwrap();
    let s = Shard::create(loc, ShardSpec::new(4, Metric::L2), opts()).unwrap();
    s.upsert((0..300).map(point).collect()).unwrap();
    s.flush().unwrap();
    s.upsert((300..400).map(point).collect()).unwrap();
    s.delete(vec![Key::Int(5)]).unwrap();
    s.close().unwrap();
    let targets = files(&good);
    let kinds = |needle: &str| targets.iter().any(|p| p.to_string_lossy().contains(needle));
    assert!(
        kinds("segments") && kinds("manifest") && kinds("wal"),
        "{targets:?}"
    );

    let mut rng = SmallRng::seed_from_u64(seed);
    for run in 0..runs {
        let copy = root.path().join(format!("run-{run}"));
        copy_dir(&good, &copy);
        let victim = &files(&copy)[rng.random_range(0..targets.len())];
        let mut bytes = std::fs::read(victim).unwrap();
        let what = mutate(&mut bytes, &mut rng);
        std::fs::write(victim, &bytes).unwrap();
        let loc = copy.to_str().unwrap().to_string();
        let outcome = std::panic::catch_unwind(|| exercise(&loc));
        assert!(
            outcome.is_ok(),
            "seed {seed} run {run}: opening after damage to {} ({what}) panicked",
            victim.display()
        );
        std::fs::remove_dir_all(&copy).unwrap();
    }
}
