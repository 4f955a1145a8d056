use super::placement::*;
use super::*;

fn spec(name: &str, shards: u32, storage: &str) -> CollectionSpec {
    CollectionSpec {
        name: name.into(),
        dimension: 4,
        metric: Metric::L2,
        shard_count: shards,
        storage: storage.into(),
        index: IndexParams::default(),
    }
}

fn map_with_nodes(ids: &[&str]) -> ShardMap {
    let mut m = ShardMap::default();
    for (i, id) in ids.iter().enumerate() {
        m.apply(
            &Command::RegisterNode {
                id: id.to_string(),
                address: format!("127.0.0.1:{}", 9000 + i),
                zone: None,
            },
            1,
        );
    }
    let changes = ids
        .iter()
        .map(|i| (i.to_string(), Liveness::Alive))
        .collect();
    m.apply(&Command::SetLiveness { changes, at_ms: 5 }, 2);
    m
}

fn create(m: &mut ShardMap, s: CollectionSpec, index: u64) -> CommandResult {
    let owners = place_new(m, s.shard_count)
        .unwrap()
        .into_iter()
        .map(Some)
        .collect();
    m.apply(
        &Command::CreateCollection {
            spec: s,
            owners,
            layout: Layout::Incarnation,
        },
        index,
    )
}

fn owners(m: &ShardMap, c: &str) -> Vec<String> {
    m.collections[c]
        .shards
        .iter()
        .map(|a| a.owner.clone().unwrap_or_default())
        .collect()
}

#[test]
fn register_is_idempotent_and_updates_addresses() {
    let mut m = map_with_nodes(&["a"]);
    let r = m.apply(
        &Command::RegisterNode {
            id: "a".into(),
            address: "h:1".into(),
            zone: None,
        },
        3,
    );
    assert_eq!(r, CommandResult::Registered { created: false });
    assert_eq!(m.nodes["a"].address, "h:1");
    assert_eq!(m.nodes["a"].state, Liveness::Alive);
    assert_eq!(m.nodes["a"].last_heartbeat_ms, Some(5));
}

#[test]
fn create_places_evenly_and_rejects_duplicates() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    assert_eq!(create(&mut m, spec("x", 4, "local"), 10), CommandResult::Ok);
    assert_eq!(owners(&m, "x"), ["a", "b", "c", "a"]);
    // The next collection starts on the least-loaded nodes.
    assert_eq!(create(&mut m, spec("y", 2, "local"), 11), CommandResult::Ok);
    assert_eq!(owners(&m, "y"), ["b", "c"]);
    // Epochs start at the incarnation, the creating entry's index.
    assert!(m.collections["x"].shards.iter().all(|a| a.epoch == 10));
    assert_eq!(m.collections["x"].incarnation, 10);
    assert!(matches!(
        create(&mut m, spec("x", 1, "local"), 12),
        CommandResult::Rejected(Rejection::AlreadyExists(_))
    ));
    assert!(place_new(&ShardMap::default(), 2).is_none(), "no live node");
}

#[test]
fn shard_storage_paths_are_per_incarnation() {
    let mut m = map_with_nodes(&["a"]);
    create(&mut m, spec("x", 2, "s3://b/p/"), 7);
    assert_eq!(
        m.collections["x"].shard_storage(1),
        "s3://b/p/x-7/shard-0001"
    );
    create(&mut m, spec("l", 1, "local"), 8);
    assert_eq!(m.collections["l"].shard_storage(0), "local");
}

#[test]
fn moves_apply_only_at_their_epoch() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("x", 2, "file:///d"), 3);
    let mv = Move {
        collection: "x".into(),
        shard: 0,
        from_epoch: 3,
        to: "b".into(),
    };
    assert_eq!(
        m.apply(
            &Command::Move {
                moves: vec![mv.clone()]
            },
            4
        ),
        CommandResult::Moved { applied: 1 }
    );
    assert_eq!(m.collections["x"].shards[0].epoch, 4);
    assert_eq!(m.collections["x"].shards[0].owner.as_deref(), Some("b"));
    // The same move again is stale: nothing changes, epochs only grow.
    assert_eq!(
        m.apply(&Command::Move { moves: vec![mv] }, 5),
        CommandResult::Moved { applied: 0 }
    );
    assert_eq!(m.collections["x"].shards[0].epoch, 4);
}

#[test]
fn failover_moves_object_store_shards_only() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    create(&mut m, spec("obj", 3, "s3://b/p"), 3);
    create(&mut m, spec("loc", 3, "local"), 4);
    // URLs a map may hold from before storage was checked are not shared storage: a
    // `memory://` or `file://` shard reopened elsewhere would be empty.
    create(&mut m, spec("mem", 3, "memory://x"), 5);
    create(&mut m, spec("file", 3, "file:///d"), 6);
    m.apply(
        &Command::SetLiveness {
            changes: vec![("a".into(), Liveness::Down)],
            at_ms: 9,
        },
        7,
    );
    let moves = failover_moves(&m);
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(
        (
            moves[0].collection.as_str(),
            moves[0].shard,
            moves[0].from_epoch
        ),
        ("obj", 0, 3)
    );
    assert_ne!(moves[0].to, "a");
    m.apply(&Command::Move { moves }, 8);
    assert!(failover_moves(&m).is_empty());
    // The local shard on "a" stays put, waiting for its node.
    assert_eq!(m.collections["loc"].shards[0].owner.as_deref(), Some("a"));
}

#[test]
fn failover_prefers_a_live_reader() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    create(&mut m, spec("obj", 1, "s3://b/p"), 3);
    for c in reader_changes(&m, 1) {
        m.apply(
            &Command::SetReaders {
                collection: c.collection,
                shard: c.shard,
                epoch: c.epoch,
                readers: c.readers,
            },
            4,
        );
    }
    let reader = m.collections["obj"].shards[0].readers[0].clone();
    assert_ne!(Some(&reader), m.collections["obj"].shards[0].owner.as_ref());
    let owner = m.collections["obj"].shards[0].owner.clone().unwrap();
    m.apply(
        &Command::SetLiveness {
            changes: vec![(owner, Liveness::Down)],
            at_ms: 9,
        },
        5,
    );
    let moves = failover_moves(&m);
    assert_eq!(moves[0].to, reader);
    m.apply(&Command::Move { moves }, 6);
    assert!(
        m.collections["obj"].shards[0].readers.is_empty(),
        "the reader became the owner"
    );
}

#[test]
fn rebalance_moves_onto_a_new_node_one_at_a_time() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("obj", 6, "s3://b/p"), 3);
    assert_eq!(rebalance_move(&m), None, "balanced");
    m.apply(
        &Command::RegisterNode {
            id: "c".into(),
            address: "h:3".into(),
            zone: None,
        },
        4,
    );
    assert_eq!(rebalance_move(&m), None, "c is not alive yet");
    m.apply(
        &Command::SetLiveness {
            changes: vec![("c".into(), Liveness::Alive)],
            at_ms: 9,
        },
        5,
    );
    let mut index = 6;
    while let Some(mv) = rebalance_move(&m) {
        assert_eq!(mv.to, "c");
        m.apply(&Command::Move { moves: vec![mv] }, index);
        index += 1;
    }
    let mut load = std::collections::BTreeMap::new();
    for o in owners(&m, "obj") {
        *load.entry(o).or_insert(0) += 1;
    }
    assert_eq!(load.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
}

#[test]
fn local_shards_never_rebalance() {
    let mut m = map_with_nodes(&["a"]);
    create(&mut m, spec("loc", 4, "local"), 3);
    m.apply(
        &Command::RegisterNode {
            id: "b".into(),
            address: "h:2".into(),
            zone: None,
        },
        4,
    );
    m.apply(
        &Command::SetLiveness {
            changes: vec![("b".into(), Liveness::Alive)],
            at_ms: 9,
        },
        5,
    );
    assert_eq!(rebalance_move(&m), None);
}

#[test]
fn drop_and_remove_node() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("x", 1, "local"), 3);
    let holder = owners(&m, "x")[0].clone();
    assert!(matches!(
        m.apply(&Command::RemoveNode { id: holder.clone() }, 4),
        CommandResult::Rejected(Rejection::Conflict(_))
    ));
    assert_eq!(
        m.apply(&Command::DropCollection { name: "x".into() }, 5),
        CommandResult::Ok
    );
    assert!(matches!(
        m.apply(&Command::DropCollection { name: "x".into() }, 6),
        CommandResult::Rejected(Rejection::NotFound(_))
    ));
    // Its files wait on the holder; forgetting the node forgets them (nothing reuses the
    // path of a dropped incarnation).
    assert_eq!(m.dropping[&3].pending, [0].into());
    assert_eq!(
        m.apply(&Command::RemoveNode { id: holder }, 7),
        CommandResult::Ok
    );
    assert_eq!(m.nodes.len(), 1);
    assert!(m.dropping.is_empty());
}

fn set_liveness(m: &mut ShardMap, id: &str, state: Liveness, index: u64) {
    let changes = vec![(id.to_string(), state)];
    m.apply(&Command::SetLiveness { changes, at_ms: 9 }, index);
}

#[test]
fn a_recreated_collection_starts_above_every_epoch_of_the_old_one() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("x", 2, "s3://bucket/p"), 3);
    let mut index = 4;
    // Move shard 0 back and forth: one epoch per entry.
    for to in ["b", "a", "b", "a", "b"] {
        let from_epoch = m.collections["x"].shards[0].epoch;
        let mv = Move {
            collection: "x".into(),
            shard: 0,
            from_epoch,
            to: to.into(),
        };
        m.apply(&Command::Move { moves: vec![mv] }, index);
        index += 1;
    }
    // Two moves of one shard in one entry: only the first applies.
    let from_epoch = m.collections["x"].shards[1].epoch;
    let twice = (0..2)
        .map(|i| Move {
            collection: "x".into(),
            shard: 1,
            from_epoch: from_epoch + i,
            to: "a".into(),
        })
        .collect();
    let r = m.apply(&Command::Move { moves: twice }, index);
    assert_eq!(r, CommandResult::Moved { applied: 1 });
    index += 1;
    let old = m.collections["x"].clone();
    assert_eq!(old.shards[0].epoch, 8);
    assert_eq!(old.shards[1].epoch, 4);
    m.apply(&Command::DropCollection { name: "x".into() }, index);
    create(&mut m, spec("x", 2, "s3://bucket/p"), index + 1);
    let new = &m.collections["x"];
    let old_max = old.shards.iter().map(|a| a.epoch).max().unwrap();
    assert!(new.shards.iter().all(|a| a.epoch > old_max), "{new:?}");
    assert_ne!(new.shard_storage(0), old.shard_storage(0));
    assert_eq!(new.path_incarnation(), index + 1);
    // The dropped one waits for its data to be deleted.
    assert_eq!(m.dropping[&3].collection, old);
    assert_eq!(m.dropping[&3].pending, [0, 1].into());
}

#[test]
fn a_dropped_replicated_shard_is_deleted_by_its_owner_and_each_follower() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    let r = m.apply(
        &Command::CreateReplicated {
            spec: spec("r", 1, "local"),
            replication: replication(3, WriteAck::Majority),
            replicas: vec![vec!["a".into(), "b".into(), "c".into()]],
            followers_in_sync: true,
        },
        3,
    );
    assert_eq!(r, CommandResult::Ok);
    set_liveness(&mut m, "c", Liveness::Down, 4);
    m.apply(&Command::DropCollection { name: "r".into() }, 5);
    let d = deletions(&m);
    let want = |node: &str, follower| Deletion {
        incarnation: 3,
        shard: 0,
        node: node.into(),
        follower,
    };
    assert_eq!(d, [want("a", false), want("b", true)], "c is down");
    m.apply(
        &Command::DataDeleted {
            incarnation: 3,
            shard: 0,
        },
        6,
    );
    let follower_done = |node: &str| Command::FollowerDataDeleted {
        incarnation: 3,
        shard: 0,
        node: node.into(),
    };
    m.apply(&follower_done("b"), 7);
    assert!(m.dropping.contains_key(&3), "c's copy is left");
    set_liveness(&mut m, "c", Liveness::Alive, 8);
    assert_eq!(deletions(&m), [want("c", true)]);
    assert_eq!(m.apply(&follower_done("c"), 9), CommandResult::Ok);
    assert!(m.dropping.is_empty());
    assert_eq!(
        m.apply(&follower_done("c"), 10),
        CommandResult::Ok,
        "a repeat"
    );
}

#[test]
fn a_dropped_local_shard_is_deleted_by_its_owner_once_alive() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("x", 2, "local"), 3);
    assert_eq!(owners(&m, "x"), ["a", "b"]);
    set_liveness(&mut m, "b", Liveness::Down, 4);
    m.apply(&Command::DropCollection { name: "x".into() }, 5);
    assert!(!m.collections.contains_key("x"));
    // Only "a" can delete now; "b"'s copy waits for it.
    let d = deletions(&m);
    assert_eq!(
        d,
        [Deletion {
            incarnation: 3,
            shard: 0,
            node: "a".into(),
            follower: false,
        }]
    );
    m.apply(
        &Command::DataDeleted {
            incarnation: 3,
            shard: 0,
        },
        6,
    );
    assert_eq!(m.dropping[&3].pending, [1].into());
    assert!(deletions(&m).is_empty(), "b is down");
    set_liveness(&mut m, "b", Liveness::Alive, 7);
    assert_eq!(deletions(&m)[0].node, "b");
    let done = Command::DataDeleted {
        incarnation: 3,
        shard: 1,
    };
    assert_eq!(m.apply(&done, 8), CommandResult::Ok);
    assert!(m.dropping.is_empty());
    // A repeat is harmless.
    assert_eq!(m.apply(&done, 9), CommandResult::Ok);
}

#[test]
fn a_dropped_object_store_shard_is_deleted_by_any_live_node() {
    let mut m = map_with_nodes(&["a", "b"]);
    create(&mut m, spec("x", 2, "s3://bucket/p"), 3);
    set_liveness(&mut m, "a", Liveness::Down, 4);
    m.apply(&Command::DropCollection { name: "x".into() }, 5);
    let nodes: Vec<String> = deletions(&m).into_iter().map(|d| d.node).collect();
    assert_eq!(nodes, ["b", "b"]);
    // URLs of other schemes (maps from before storage was checked) are never opened by
    // nodes: nothing waits for them.
    create(&mut m, spec("old", 2, "file:///d"), 6);
    m.apply(&Command::DropCollection { name: "old".into() }, 7);
    assert!(!m.dropping.contains_key(&6));
}

fn replication(factor: u32, write_ack: WriteAck) -> Replication {
    Replication { factor, write_ack }
}

#[test]
fn replicas_go_to_distinct_nodes_and_spread_primaries_and_copies() {
    let mut m = map_with_nodes(&["a", "b", "c", "d"]);
    let replicas = place_replicated(&m, 4, 3).unwrap();
    assert_eq!(replicas.len(), 4);
    for r in &replicas {
        let distinct: std::collections::BTreeSet<_> = r.iter().collect();
        assert_eq!(distinct.len(), 3, "{r:?}");
    }
    let primaries: Vec<&str> = replicas.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(primaries, ["a", "b", "c", "d"], "one primary per node");
    let mut copies = std::collections::BTreeMap::new();
    for n in replicas.iter().flatten() {
        *copies.entry(n.as_str()).or_insert(0) += 1;
    }
    assert_eq!(copies.values().copied().collect::<Vec<_>>(), [3, 3, 3, 3]);

    let r = m.apply(
        &Command::CreateReplicated {
            spec: spec("r", 4, "local"),
            replication: replication(3, WriteAck::Majority),
            replicas: replicas.clone(),
            followers_in_sync: true,
        },
        7,
    );
    assert_eq!(r, CommandResult::Ok);
    let c = &m.collections["r"];
    assert_eq!(c.replication, Some(replication(3, WriteAck::Majority)));
    assert_eq!((c.incarnation, c.layout), (7, Layout::Incarnation));
    for (a, r) in c.shards.iter().zip(&replicas) {
        assert_eq!(a.owner.as_ref(), Some(&r[0]));
        assert_eq!(a.epoch, 7);
        let set = a.replicas.as_ref().unwrap();
        assert_eq!((&set.replicas, &set.in_sync), (r, r));
        assert!(set.epoch_starts.is_empty());
    }
    // Followers count as load: the next collection's copies start on the emptiest nodes,
    // and a node holding a follower cannot be removed.
    assert!(m.collections["r"].shards.iter().any(|a| a.held_by("d")));
    assert!(matches!(
        m.apply(&Command::RemoveNode { id: "d".into() }, 8),
        CommandResult::Rejected(Rejection::Conflict(_))
    ));

    // Followers that will not receive the writes start outside the in-sync set; an entry
    // written without the flag (serde default) means the same.
    let cmd = Command::CreateReplicated {
        spec: spec("r2", 1, "local"),
        replication: replication(2, WriteAck::All),
        replicas: vec![vec!["b".into(), "c".into()]],
        followers_in_sync: false,
    };
    let json = serde_json::to_value(&cmd).unwrap();
    let mut old = json.clone();
    old["CreateReplicated"]
        .as_object_mut()
        .unwrap()
        .remove("followers_in_sync");
    assert_eq!(
        serde_json::from_value::<Command>(old).unwrap(),
        cmd,
        "{json}"
    );
    assert_eq!(m.apply(&cmd, 9), CommandResult::Ok);
    let set = m.collections["r2"].shards[0].replicas.clone().unwrap();
    assert_eq!(set.replicas, ["b", "c"]);
    assert_eq!(set.in_sync, ["b"]);
}

#[test]
fn too_few_live_nodes_name_both_numbers() {
    let mut m = map_with_nodes(&["a", "b"]);
    assert_eq!(
        place_replicated(&m, 1, 3),
        Err(TooFewNodes { live: 2, factor: 3 })
    );
    m.apply(
        &Command::SetLiveness {
            changes: vec![("b".into(), Liveness::Down)],
            at_ms: 9,
        },
        3,
    );
    assert_eq!(
        place_replicated(&m, 1, 2),
        Err(TooFewNodes { live: 1, factor: 2 })
    );
    assert_eq!(place_replicated(&m, 2, 1).unwrap(), [["a"], ["a"]]);
}

#[test]
fn replicated_creates_are_checked_when_applied() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    let bad = [
        (
            spec("x", 1, "local"),
            vec![vec!["a".to_string(), "a".into()]],
        ),
        (spec("x", 1, "local"), vec![vec!["a".to_string()]]),
        (
            spec("x", 1, "s3://b/p"),
            vec![vec!["a".to_string(), "b".into()]],
        ),
        (
            spec("x", 2, "local"),
            vec![vec!["a".to_string(), "b".into()]],
        ),
    ];
    for (s, replicas) in bad {
        let r = m.apply(
            &Command::CreateReplicated {
                spec: s,
                replication: replication(2, WriteAck::All),
                replicas,
                followers_in_sync: true,
            },
            5,
        );
        assert!(matches!(r, CommandResult::Rejected(_)), "{r:?}");
        assert!(m.collections.is_empty());
    }
}

#[test]
fn factor_one_maps_serialize_as_before_replication() {
    let mut m = map_with_nodes(&["a"]);
    assert_eq!(
        create(&mut m, spec("one", 1, "local"), 3),
        CommandResult::Ok
    );
    let json = serde_json::to_string(&m).unwrap();
    assert!(!json.contains("replica"), "{json}");
    assert!(!json.contains("replication"), "{json}");
    let back: ShardMap = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
}

#[test]
fn the_promotion_rule_waits_for_enough_answers_and_takes_the_highest_position() {
    use super::replication::{Position, Promotion, decide};
    let set = ReplicaSet {
        replicas: vec!["a".into(), "b".into(), "c".into()],
        in_sync: vec!["a".into(), "c".into()],
        epoch_starts: Vec::new(),
    };
    let pos = |n: &str, e, s| Position {
        node: n.into(),
        last_epoch: e,
        last_seq: s,
    };
    let majority = replication(3, WriteAck::Majority);
    let all = replication(3, WriteAck::All);
    // One answer is not a majority of three, and a stranger or a repeat does not count.
    assert_eq!(
        decide(
            &set,
            majority,
            &[pos("b", 1, 9), pos("b", 1, 9), pos("z", 9, 9)]
        ),
        Promotion::Wait { have: 1, need: 2 }
    );
    // The higher epoch wins over the higher sequence number.
    assert_eq!(
        decide(&set, majority, &[pos("b", 1, 90), pos("c", 2, 5)]),
        Promotion::Promote {
            primary: "c".into(),
            start_seq: 5,
            in_sync: vec!["c".into()],
        }
    );
    // `all`: an answer outside the in-sync set is not enough; a tie prefers the in-sync
    // replica, and both join the new set.
    assert_eq!(
        decide(&set, all, &[pos("b", 1, 9)]),
        Promotion::Wait { have: 0, need: 1 }
    );
    assert_eq!(
        decide(&set, all, &[pos("b", 1, 9), pos("c", 1, 9)]),
        Promotion::Promote {
            primary: "c".into(),
            start_seq: 9,
            in_sync: vec!["c".into(), "b".into()],
        }
    );
}

#[test]
fn promotions_and_isr_changes_apply_only_where_they_were_computed() {
    let mut m = map_with_nodes(&["a", "b", "c"]);
    let create = Command::CreateReplicated {
        spec: spec("r", 1, "local"),
        replication: replication(3, WriteAck::All),
        replicas: vec![vec!["a".into(), "b".into(), "c".into()]],
        followers_in_sync: true,
    };
    assert_eq!(m.apply(&create, 5), CommandResult::Ok);
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let shard = |m: &ShardMap| m.collections["r"].shards[0].clone();
    let promote = |from_epoch, from: &[&str], primary: &str, in_sync: &[&str]| Command::Promote {
        collection: "r".into(),
        shard: 0,
        from_epoch,
        from_in_sync: names(from),
        primary: primary.into(),
        start_seq: 42,
        in_sync: names(in_sync),
    };
    let shrink = |epoch, node: &str| Command::ShrinkIsr {
        collection: "r".into(),
        shard: 0,
        epoch,
        node: node.into(),
    };
    let before = shard(&m);

    // Refused, nothing changes: a stale epoch, a stale in-sync set, a primary not first,
    // a stranger in the set, the primary shrunk away, an unknown shard.
    for bad in [
        promote(4, &["a", "b", "c"], "b", &["b"]),
        promote(5, &["a", "b"], "b", &["b"]),
        promote(5, &["a", "b", "c"], "b", &["c", "b"]),
        promote(5, &["a", "b", "c"], "b", &["b", "z"]),
        shrink(5, "a"),
        shrink(4, "b"),
        Command::ShrinkIsr {
            collection: "r".into(),
            shard: 1,
            epoch: 5,
            node: "b".into(),
        },
    ] {
        let r = m.apply(&bad, 6);
        assert!(matches!(r, CommandResult::Rejected(_)), "{bad:?}: {r:?}");
        assert_eq!(shard(&m), before, "{bad:?}");
    }

    // The primary shrinks the set; a promotion computed before the shrink is then stale.
    assert_eq!(m.apply(&shrink(5, "c"), 7), CommandResult::Ok);
    let computed_before = promote(5, &["a", "b", "c"], "c", &["c"]);
    assert!(matches!(
        m.apply(&computed_before, 8),
        CommandResult::Rejected(_)
    ));
    assert_eq!(
        m.apply(&promote(5, &["a", "b"], "b", &["b"]), 9),
        CommandResult::Ok
    );
    let a = shard(&m);
    assert_eq!((a.owner.as_deref(), a.epoch), (Some("b"), 6));
    let set = a.replicas.clone().unwrap();
    assert_eq!(set.in_sync, ["b"]);
    assert_eq!(set.epoch_starts, [(6, 42)]);
    // The deposed primary's shrink at its old epoch is a no-op; the new one's expand works.
    assert!(matches!(
        m.apply(&shrink(5, "b"), 10),
        CommandResult::Rejected(_)
    ));
    let expand = |node: &str| Command::ExpandIsr {
        collection: "r".into(),
        shard: 0,
        epoch: 6,
        node: node.into(),
        seq: 50,
    };
    assert!(matches!(
        m.apply(&expand("z"), 11),
        CommandResult::Rejected(_)
    ));
    assert_eq!(m.apply(&expand("a"), 12), CommandResult::Ok);
    assert_eq!(m.apply(&expand("a"), 13), CommandResult::Ok, "idempotent");
    assert_eq!(shard(&m).replicas.unwrap().in_sync, ["b", "a"]);
}

#[test]
fn replicas_spread_over_zones_when_there_are_enough() {
    let mut m = map_with_nodes(&["a", "b", "c", "d", "e", "f"]);
    // a, b in zone 1; c, d in zone 2; e in zone 3; f has no zone (a zone of its own).
    for (i, (id, zone)) in [
        ("a", "z1"),
        ("b", "z1"),
        ("c", "z2"),
        ("d", "z2"),
        ("e", "z3"),
    ]
    .into_iter()
    .enumerate()
    {
        let address = m.nodes[id].address.clone();
        m.apply(
            &Command::RegisterNode {
                id: id.into(),
                address,
                zone: Some(zone.into()),
            },
            10 + i as u64,
        );
    }
    assert_eq!(m.nodes["a"].zone.as_deref(), Some("z1"));
    assert_eq!(m.nodes["f"].zone, None);
    let zone = |n: &str| {
        m.nodes[n]
            .zone
            .clone()
            .unwrap_or_else(|| format!("own-{n}"))
    };
    for factor in [2, 3, 4] {
        let replicas = place_replicated(&m, 6, factor).unwrap();
        for r in &replicas {
            let nodes: std::collections::BTreeSet<_> = r.iter().collect();
            let zones: std::collections::BTreeSet<_> = r.iter().map(|n| zone(n)).collect();
            assert_eq!(nodes.len(), factor as usize, "{r:?}");
            assert_eq!(zones.len(), factor as usize, "factor {factor}: {r:?}");
        }
    }
    // Five replicas over four zones: distinct nodes still, one zone holds two.
    for r in place_replicated(&m, 3, 5).unwrap() {
        let nodes: std::collections::BTreeSet<_> = r.iter().collect();
        let zones: std::collections::BTreeSet<_> = r.iter().map(|n| zone(n)).collect();
        assert_eq!((nodes.len(), zones.len()), (5, 4), "{r:?}");
    }
    // Re-registering without a zone clears it; entries written before zones read as none.
    let cmd = Command::RegisterNode {
        id: "a".into(),
        address: "h:9".into(),
        zone: None,
    };
    let json = serde_json::to_string(&cmd).unwrap();
    assert!(!json.contains("zone"), "{json}");
    assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
    m.apply(&cmd, 20);
    assert_eq!(m.nodes["a"].zone, None);
}
