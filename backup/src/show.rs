//! Plain-text output of the backup commands.

use std::fmt::Write;

use serde_json::Value;

fn mb(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64 / 1e6
}

/// After `backup create`.
pub fn created(r: &Value) -> String {
    let m = &r["manifest"];
    let secs = (m["created_ms"].as_u64().unwrap_or(0))
        .saturating_sub(m["started_ms"].as_u64().unwrap_or(0)) as f64
        / 1000.0;
    format!(
        "backup of {} complete at {}: {} shards, {} points, {:.1} MB in {:.2} s",
        m["collection"]["name"].as_str().unwrap_or("?"),
        r["location"].as_str().unwrap_or("?"),
        m["shards"].as_array().map_or(0, Vec::len),
        m["points"],
        mb(&m["bytes"]),
        secs
    )
}

/// After `backup restore`.
pub fn restored(r: &Value) -> String {
    format!(
        "restored {} as {}: {} shards, {} points, {:.1} MB in {:.2} s",
        r["from"].as_str().unwrap_or("?"),
        r["collection"].as_str().unwrap_or("?"),
        r["shard_count"],
        r["points"],
        mb(&r["bytes"]),
        r["seconds"].as_f64().unwrap_or(0.0)
    )
}

/// `backup list`.
pub fn list(backups: &Value) -> String {
    let mut out = String::new();
    let rows = backups.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "no backups there\n".into();
    }
    let _ = writeln!(
        out,
        "{:<11} {:<20} {:>12} {:>10}  LOCATION",
        "STATUS", "COLLECTION", "POINTS", "MB"
    );
    for b in rows {
        let _ = writeln!(
            out,
            "{:<11} {:<20} {:>12} {:>10.1}  {}{}",
            b["status"].as_str().unwrap_or("?"),
            b["collection"].as_str().unwrap_or("-"),
            b["points"].as_u64().map_or("-".into(), |p| p.to_string()),
            mb(&b["bytes"]),
            b["location"].as_str().unwrap_or("?"),
            b["error"]
                .as_str()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    out
}

/// `backup describe`.
pub fn describe(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "location: {}", v["location"].as_str().unwrap_or("?"));
    let _ = writeln!(out, "status:   {}", v["status"].as_str().unwrap_or("?"));
    if let Some(e) = v["error"].as_str() {
        let _ = writeln!(out, "error:    {e}");
    }
    let m = &v["manifest"];
    if m.is_null() {
        return out;
    }
    let c = &m["collection"];
    let _ = writeln!(
        out,
        "collection: {} ({}-d {}, {} shards, storage {})",
        c["name"].as_str().unwrap_or("?"),
        c["dimension"],
        c["metric"].as_str().unwrap_or("?"),
        c["shard_count"],
        c["storage"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "points: {}, {:.1} MB, shard map version {}, manifest crc32c {:#010x}",
        m["points"],
        mb(&m["bytes"]),
        m["shard_map_version"],
        m["crc32c"].as_u64().unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "SHARD  NODE         POINTS       MB  SEGMENTS  CHECKSUM    PATH"
    );
    for s in m["shards"].as_array().cloned().unwrap_or_default() {
        let _ = writeln!(
            out,
            "{:>5}  {:<10} {:>8} {:>8.1} {:>9}  {:#010x}  {}",
            s["shard"],
            s["node"].as_str().unwrap_or("?"),
            s["points"],
            mb(&s["bytes"]),
            s["segments"],
            s["manifest_crc32c"].as_u64().unwrap_or(0),
            s["path"].as_str().unwrap_or("?")
        );
    }
    out
}
