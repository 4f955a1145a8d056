//! `VECSHARD_LOG_FORMAT=json`: the binary logs one JSON object per line on stderr; an
//! unknown format is refused with a message naming the variable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = \"json-logs\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            dir.path().join("data").to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["node", "--config"])
        .arg(&config)
        .env("VECSHARD_LOG", "info")
        .env("VECSHARD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut started = None;
    let mut lines = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        lines += 1;
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
        if v["fields"]["message"] == "node started" {
            started = Some(v);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = started.unwrap_or_else(|| panic!("no `node started` line among {lines}"));
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["node"], "json-logs");
    assert!(v["target"].as_str().unwrap().starts_with("vecshard"), "{v}");

    let out = Command::new(env!("CARGO_BIN_EXE_vecshard"))
        .args(["node", "--config"])
        .arg(&config)
        .env("VECSHARD_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VECSHARD_LOG_FORMAT must be `text` or `json`, got \"yaml\""),
        "{err}"
    );
}
