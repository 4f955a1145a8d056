//! Plain-text renderings of the router's answers, as `vecshard collection …` and `vecshard
//! status` print them: one line per collection, aligned tables of shards, nodes and routers.

use std::fmt::{self, Write};

use vecshard_proto::v1 as pb;

/// `name: 8-d l2, 2 shards, storage local, m=16 ef_construction=200 ef_search=64`.
pub fn spec_line(s: &pb::CollectionSpec) -> String {
    let metric = pb::Metric::try_from(s.metric)
        .map(|m| enum_name(m.as_str_name(), "METRIC_"))
        .unwrap_or_default();
    let i = s.index.unwrap_or_default();
    let replication = if s.replication_factor > 1 {
        format!(
            ", replication factor {} (write ack {})",
            s.replication_factor, s.write_ack
        )
    } else {
        String::new()
    };
    format!(
        "{}: {}-d {metric}, {} shards, storage {}{replication}, m={} ef_construction={} ef_search={}",
        s.name,
        s.dimension,
        s.shard_count,
        s.storage,
        i.m.unwrap_or_default(),
        i.ef_construction.unwrap_or_default(),
        i.ef_search.unwrap_or_default()
    )
}

/// A shard state's name (`serving`, `opening`, …; `unknown` for a value this build lacks).
pub fn shard_state(s: i32) -> String {
    pb::ShardState::try_from(s)
        .map(|x| enum_name(x.as_str_name(), "SHARD_STATE_"))
        .unwrap_or_else(|_| "unknown".into())
}

/// `METRIC_COSINE` → `cosine`.
fn enum_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

/// `vecshard collection describe`: the spec line, then a table of the shards.
pub fn describe(d: &pb::DescribeCollectionResponse) -> String {
    let mut out = String::new();
    if let Some(s) = &d.spec {
        out.push_str(&spec_line(s));
        out.push('\n');
    }
    let mut t = Table::new(&["SHARD", "OWNER", "EPOCH", "STATE", "POINTS"]);
    for s in &d.shards {
        t.row(vec![
            s.number.to_string(),
            s.owner_node.clone(),
            s.epoch.to_string(),
            shard_state(s.state),
            s.live_points
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let _ = write!(out, "{t}");
    out
}

/// `vecshard status`: tables of the routers, the nodes and every shard's placement, then
/// each shard's error.
pub fn cluster_status(s: &pb::ClusterStatusResponse) -> String {
    let mut t = Table::new(&["ROUTER", "ADDRESS", "ROLE"]);
    for r in &s.routers {
        let role = if r.leader { "leader" } else { "follower" };
        t.row(vec![r.id.to_string(), r.address.clone(), role.into()]);
    }
    let mut out = format!("{t}\n");
    let mut t = Table::new(&[
        "NODE",
        "ADDRESS",
        "ZONE",
        "HEALTH",
        "LAST HEARTBEAT",
        "SHARDS",
    ]);
    for n in &s.nodes {
        let health = pb::NodeState::try_from(n.state)
            .map(|x| enum_name(x.as_str_name(), "NODE_STATE_"))
            .unwrap_or_default();
        let hb = n
            .last_heartbeat_ms_ago
            .map(|ms| format!("{:.1}s ago", ms as f64 / 1000.0))
            .unwrap_or_else(|| "never".into());
        t.row(vec![
            n.id.clone(),
            n.address.clone(),
            if n.zone.is_empty() {
                "-".into()
            } else {
                n.zone.clone()
            },
            health,
            hb,
            n.shards.len().to_string(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    let mut t = Table::new(&["COLLECTION", "SHARD", "OWNER", "EPOCH", "READERS", "STATE"]);
    let dash = |s: String| if s.is_empty() { "-".into() } else { s };
    for p in &s.shards {
        t.row(vec![
            p.collection.clone(),
            p.number.to_string(),
            dash(p.owner.clone()),
            p.epoch.to_string(),
            dash(p.readers.join(",")),
            shard_state(p.state),
        ]);
    }
    let _ = write!(out, "{t}");
    if s.shards.iter().any(|p| !p.replicas.is_empty()) {
        let mut t = Table::new(&[
            "COLLECTION",
            "SHARD",
            "REPLICA",
            "ROLE",
            "EPOCH",
            "IN SYNC",
            "LAG (SEQS)",
            "LAG (S)",
        ]);
        for p in &s.shards {
            for r in &p.replicas {
                t.row(vec![
                    p.collection.clone(),
                    p.number.to_string(),
                    r.node.clone(),
                    r.role.clone(),
                    r.epoch.to_string(),
                    if r.in_sync { "yes" } else { "no" }.into(),
                    r.lag_seqs.map_or("-".into(), |l| l.to_string()),
                    r.lag_seconds.map_or("-".into(), |l| format!("{l:.1}")),
                ]);
            }
        }
        let _ = write!(out, "\n{t}");
    }
    for p in s.shards.iter().filter(|p| !p.error.is_empty()) {
        let _ = writeln!(out, "{}/{}: {}", p.collection, p.number, p.error);
    }
    out
}

/// A plain-text table with aligned columns, the header first.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
                .collect();
            writeln!(f, "{}", line.join("  ").trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_the_last() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.to_string(), "A          LONG HEADER\nwide cell  x\n");
    }

    #[test]
    fn status_marks_missing_owners_and_readers_and_lists_errors() {
        let s = pb::ClusterStatusResponse {
            shards: vec![pb::ShardPlacement {
                collection: "c".into(),
                number: 1,
                state: 12345,
                error: "disk full".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = cluster_status(&s);
        assert!(
            text.contains("c           1      -      0      -        unknown\n"),
            "{text}"
        );
        assert!(text.ends_with("c/1: disk full\n"), "{text}");
        assert!(!text.contains("REPLICA"), "{text}");
    }

    #[test]
    fn status_lists_the_replicas_of_replicated_shards() {
        let replica = |node: &str, role: &str, in_sync, lag: Option<(u64, f64)>| pb::ReplicaInfo {
            node: node.into(),
            role: role.into(),
            epoch: 7,
            in_sync,
            lag_seqs: lag.map(|l| l.0),
            lag_seconds: lag.map(|l| l.1),
        };
        let s = pb::ClusterStatusResponse {
            shards: vec![pb::ShardPlacement {
                collection: "c".into(),
                number: 0,
                owner: "n2".into(),
                epoch: 7,
                replicas: vec![
                    replica("n2", "primary", true, Some((0, 0.0))),
                    replica("n1", "follower", false, Some((120, 2.34))),
                    replica("n3", "follower", true, None),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = cluster_status(&s);
        assert!(
            text.contains(
                "COLLECTION  SHARD  REPLICA  ROLE      EPOCH  IN SYNC  LAG (SEQS)  LAG (S)\n\
                 c           0      n2       primary   7      yes      0           0.0\n\
                 c           0      n1       follower  7      no       120         2.3\n\
                 c           0      n3       follower  7      yes      -           -\n"
            ),
            "{text}"
        );
    }
}
