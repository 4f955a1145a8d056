//! The Raft storage: openraft's own conformance suite on the redb log store and the
//! state machine, and a state-machine apply / snapshot / restart round trip.

use std::collections::BTreeMap;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder};
use tempfile::TempDir;
use vecshard_router::raft::log_store::LogStore;
use vecshard_router::raft::state_machine::StateMachine;
use vecshard_router::raft::{RouterNode, StorageError, TypeConfig};
use vecshard_router::shardmap::{
    CollectionSpec, Command, CommandResult, IndexParams, Layout, Liveness, Metric, Move,
};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(dir.path()).expect("log store");
        let (sm, _) = StateMachine::open(dir.path()).expect("state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_conformance_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload,
    }
}

fn commands() -> Vec<Command> {
    let spec = CollectionSpec {
        name: "docs".into(),
        dimension: 8,
        metric: Metric::Cosine,
        shard_count: 2,
        storage: "s3://bucket/p".into(),
        index: IndexParams::default(),
    };
    vec![
        Command::RegisterNode {
            id: "n1".into(),
            address: "127.0.0.1:1".into(),
            zone: None,
        },
        Command::RegisterNode {
            id: "n2".into(),
            address: "127.0.0.1:2".into(),
            zone: None,
        },
        Command::SetLiveness {
            changes: vec![
                ("n1".into(), Liveness::Alive),
                ("n2".into(), Liveness::Alive),
            ],
            at_ms: 1000,
        },
        Command::CreateCollection {
            spec,
            owners: vec![Some("n1".into()), Some("n2".into())],
            layout: Layout::Incarnation,
        },
        Command::Move {
            moves: vec![Move {
                collection: "docs".into(),
                shard: 0,
                from_epoch: 5,
                to: "n2".into(),
            }],
        },
    ]
}

#[tokio::test]
async fn apply_snapshot_and_restart_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sm, rx) = StateMachine::open(dir.path()).unwrap();
    let routers = BTreeMap::from([(
        1u64,
        RouterNode {
            grpc: "a:1".into(),
            internal: "a:2".into(),
            http: "a:3".into(),
        },
    )]);
    let mut entries = vec![entry(
        1,
        EntryPayload::Membership(Membership::new(vec![[1u64].into()], routers)),
    )];
    entries.extend(
        commands()
            .into_iter()
            .enumerate()
            .map(|(i, c)| entry(i as u64 + 2, EntryPayload::Normal(c))),
    );
    let results = sm.apply(entries).await.unwrap();
    assert_eq!(results.len(), 6);
    assert_eq!(results[1], CommandResult::Registered { created: true });
    assert_eq!(results[5], CommandResult::Moved { applied: 1 });
    let view = rx.borrow().clone();
    assert_eq!(view.version, 6);
    assert_eq!(view.routers[&1].internal, "a:2");
    let docs = &view.map.collections["docs"];
    assert_eq!(docs.incarnation, 5);
    assert_eq!(
        (docs.shards[0].owner.as_deref(), docs.shards[0].epoch),
        (Some("n2"), 6)
    );

    let Snapshot { meta, snapshot } = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(meta.last_log_id.unwrap().index, 6);

    // A restarted router loads the snapshot from disk.
    drop(sm);
    let (mut reopened, rx2) = StateMachine::open(dir.path()).unwrap();
    assert_eq!(rx2.borrow().map, view.map);
    assert_eq!(reopened.applied_state().await.unwrap().0.unwrap().index, 6);

    // A new router installs it from a peer.
    let other = tempfile::tempdir().unwrap();
    let (mut fresh, rx3) = StateMachine::open(other.path()).unwrap();
    fresh.install_snapshot(&meta, snapshot).await.unwrap();
    assert_eq!(rx3.borrow().map, view.map);
    assert_eq!(rx3.borrow().version, 6);
    let current = fresh.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
}

/// A snapshot and log entries written before layouts and drop tracking (frozen in
/// `tests/data/raft-v1`, written by that build) still load: their collections keep the
/// legacy layout (local shards at `<data_dir>/<name>/<shard>`, epochs from 1), an old drop
/// starts waiting for deletions, and an old re-create under the same local name takes the
/// shared path back from it.
#[tokio::test]
async fn a_snapshot_and_log_from_before_drop_tracking_still_load() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/raft-v1");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data.join("snapshot.json"), dir.path().join("snapshot.json")).unwrap();
    let (mut sm, rx) = StateMachine::open(dir.path()).unwrap();
    let map = rx.borrow().map.clone();
    assert_eq!(rx.borrow().version, 6);
    assert!(map.dropping.is_empty());
    for (name, incarnation) in [("docs", 5), ("objs", 6)] {
        let c = &map.collections[name];
        assert_eq!((c.layout, c.incarnation), (Layout::Legacy, incarnation));
        assert_eq!(c.path_incarnation(), 0);
        assert!(c.shards.iter().all(|a| a.epoch == 1));
    }

    let text = std::fs::read_to_string(data.join("entries.jsonl")).unwrap();
    let entries: Vec<Entry<TypeConfig>> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (drop_docs, rest) = entries.split_first().unwrap();
    sm.apply(vec![drop_docs.clone()]).await.unwrap();
    let map = rx.borrow().map.clone();
    assert!(!map.collections.contains_key("docs"));
    assert_eq!(map.dropping[&5].pending, [0, 1].into());

    sm.apply(rest.to_vec()).await.unwrap();
    let map = rx.borrow().map.clone();
    // The old re-create of "docs" (legacy, same local paths) took them back; the old drop
    // of "objs" (incarnation 6) waits for its objects' deletion.
    let docs = &map.collections["docs"];
    assert_eq!((docs.layout, docs.incarnation), (Layout::Legacy, 8));
    assert!(docs.shards.iter().all(|a| a.epoch == 1));
    assert_eq!(map.dropping.keys().copied().collect::<Vec<_>>(), [6]);
    assert_eq!(map.dropping[&6].pending, [0, 1].into());

    // The new state snapshots and reloads whole.
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    drop(sm);
    let (_reopened, rx2) = StateMachine::open(dir.path()).unwrap();
    assert_eq!(rx2.borrow().map, map);
}
