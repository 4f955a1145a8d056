//! `vecshard dev`: one router and N nodes in one process, the demo, and a second run on the
//! same data directory (the shard map and the data come back from disk).

mod cluster_support;

use std::process::Command;

use cluster_support::bin;

fn dev(data: &std::path::Path) -> String {
    let out = Command::new(bin())
        .args([
            "dev",
            "--nodes",
            "2",
            "--demo-only",
            "--any-port",
            "--points",
            "3000",
            "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn dev_runs_the_demo_and_restarts_from_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let first = dev(dir.path());
    assert!(
        first.contains("node-0") && first.contains("node-1"),
        "{first}"
    );
    assert!(first.contains("imported 3000 points"), "{first}");
    assert!(first.contains("nearest red ones"), "{first}");
    assert_eq!(
        first.matches("  id ").count(),
        15,
        "three searches of five hits\n{first}"
    );
    let red = first.split("nearest red ones").nth(1).unwrap();
    let red = red.split("\n\n").next().unwrap();
    assert!(
        red.lines().skip(1).all(|l| l.contains("color red")),
        "{red}"
    );
    let second = dev(dir.path());
    assert!(second.contains("imported 3000 points"), "{second}");
}
