//! A flipped byte in the WAL, end to end through the CLI (issue 10's reproduction): import,
//! kill -9 while the points sit in the WAL, flip one byte in the middle of the WAL file.
//! `local stats` must fail naming the file and the byte offset and leave the file as it
//! was; `local repair --accept-wal-loss` reports what it drops; afterwards the shard opens
//! and holds every point written before the damage, with its values.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vecshard_engine::{Key, Options, Shard};

const POINTS: u64 = 50_000;
const BATCH: u64 = 100;
const KILL_AFTER: u64 = 3_000;

fn vector(i: u64) -> Vec<f32> {
    (0..8)
        .map(|d| ((i * 7 + d * 13) % 101) as f32 / 10.0)
        .collect()
}

fn write_input(path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..POINTS {
        writeln!(f, "{}", serde_json::json!({"id": i, "vector": vector(i)})).unwrap();
    }
}

fn vecshard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(args)
        .output()
        .unwrap()
}

/// Start offsets of the complete frames of a WAL file (32-byte header, then
/// `[len u32][crc u32][len bytes]`); a final frame cut short by the kill is left out.
fn frames(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 32;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        if pos + 8 + len > bytes.len() {
            break;
        }
        out.push(pos);
        pos += 8 + len;
    }
    out
}

fn largest_wal_file(shard: &Path) -> PathBuf {
    std::fs::read_dir(shard.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

#[test]
fn a_flipped_wal_byte_is_refused_then_repaired_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("points.jsonl");
    write_input(&input);
    let shard = tmp.path().join("s");
    let loc = shard.to_str().unwrap();
    let out = vecshard(&["local", "create", loc, "--dim", "8", "--metric", "l2"]);
    assert!(out.status.success(), "{out:?}");

    // One writer thread, so batch i is WAL frame i. Killed while importing: the acknowledged
    // points are in the WAL only.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["local", "import", loc])
        .arg(&input)
        .args(["--batch", &BATCH.to_string(), "--threads", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = 0u64;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        acked = line.unwrap()["acked ".len()..].parse().unwrap();
        if acked >= KILL_AFTER {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        (KILL_AFTER..POINTS).contains(&acked),
        "killed mid-import after {acked} points"
    );

    // Flip one byte in the middle frame of the WAL.
    let wal = largest_wal_file(&shard);
    let mut bytes = std::fs::read(&wal).unwrap();
    let starts = frames(&bytes);
    let damaged = starts.len() / 2;
    assert!(damaged >= 10, "{} frames", starts.len());
    let at = starts[damaged] + 40;
    bytes[at] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();

    // A plain open refuses, naming the file and the damaged frame's offset.
    let out = vecshard(&["local", "stats", loc]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "stats opened a damaged shard: {out:?}"
    );
    assert!(stderr.contains(&wal.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("byte offset {}", starts[damaged])),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        bytes,
        "the WAL file is left as it was"
    );

    // The repair needs the operator's confirmation.
    let out = vecshard(&["local", "repair", loc]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--accept-wal-loss"),
        "{out:?}"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), bytes);

    let out = vecshard(&["local", "repair", loc, "--accept-wal-loss"]);
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let after = (starts.len() - damaged - 1) as u64;
    assert_eq!(report["dropped_records"], after, "{report}");
    assert_eq!(report["dropped_points"], after * BATCH, "{report}");
    assert_eq!(report["files"][0]["file"], wal.display().to_string());
    assert_eq!(report["files"][0]["offset"], starts[damaged] as u64);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(&format!("dropped {after} readable WAL records")),
        "{summary}"
    );

    // The shard opens again and holds exactly the batches before the damaged one.
    let out = vecshard(&["local", "stats", loc]);
    assert!(out.status.success(), "{out:?}");
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = damaged as u64 * BATCH;
    assert_eq!(stats["live_points"], kept, "{stats}");
    let s = Shard::open(loc, Options::default()).unwrap();
    for i in 0..kept {
        let p = s.get(&Key::Int(i)).unwrap();
        assert_eq!(p.map(|p| p.vector), Some(vector(i)), "key {i}");
    }
    assert!(s.get(&Key::Int(kept)).unwrap().is_none());
    s.close().unwrap();
}
