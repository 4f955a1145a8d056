//! `Shard::apply_replicated`: a follower that applies its primary's writes with the
//! primary's sequence numbers holds the primary's points (values, not only keys; deletes
//! stay deleted) across flushes and a reopen, and refuses gaps, repeats and bad points
//! without changing anything (`docs/design/014-replication.md`, step 2's engine part).

mod batches;

use std::collections::BTreeMap;

use batches::{contents, point};
use vecshard_engine::{ErrorKind, Key, Metric, Options, Point, Replicated, Shard, ShardSpec};

fn spec() -> ShardSpec {
    ShardSpec::new(4, Metric::L2)
}

/// Small memtables, so the writes below span several flushes.
fn opts() -> Options {
    Options {
        memtable_bytes: 64 << 10,
        ..Options::default()
    }
}

/// Write `w` on the primary and ship it to the follower as the primary sequenced it.
fn write_both(primary: &Shard, follower: &Shard, w: Replicated) -> u64 {
    let first = primary.next_seq();
    let last = match w.clone() {
        Replicated::Upsert(points) => primary.upsert(points).unwrap(),
        Replicated::Delete(keys) => primary.delete(keys).unwrap(),
    };
    let applied = follower.apply_replicated(first, w).unwrap();
    assert_eq!(
        applied, last,
        "the follower takes the primary's sequence numbers"
    );
    last
}

#[test]
fn a_follower_holds_exactly_the_primarys_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (pp, fp) = (dir.path().join("primary"), dir.path().join("follower"));
    let primary = Shard::create(pp.to_str().unwrap(), spec(), opts()).unwrap();
    let follower = Shard::create(fp.to_str().unwrap(), spec(), opts()).unwrap();
    let mut want: BTreeMap<u64, u64> = BTreeMap::new();
    for batch in 1..=40u64 {
        // Overlapping keys: later batches replace earlier points; every fifth deletes.
        let keys: Vec<u64> = (0..60).map(|i| (batch * 37 + i * 11) % 500).collect();
        if batch % 5 == 0 {
            write_both(
                &primary,
                &follower,
                Replicated::Delete(keys.iter().map(|k| Key::Int(*k)).collect()),
            );
            for k in &keys {
                want.remove(k);
            }
        } else {
            let points: Vec<Point> = keys.iter().map(|k| point(*k, batch)).collect();
            write_both(&primary, &follower, Replicated::Upsert(points));
            for k in &keys {
                want.insert(*k, batch);
            }
        }
        if batch == 17 {
            follower.flush().unwrap();
        }
    }
    assert!(
        follower.stats().flushed_seq > 0,
        "the writes spanned flushes"
    );
    assert_eq!(contents(&primary), want);
    assert_eq!(contents(&follower), want);
    let next = primary.next_seq();
    assert_eq!(follower.next_seq(), next);

    // After a reopen the follower continues from the same position.
    follower.close().unwrap();
    let follower = Shard::open(fp.to_str().unwrap(), opts()).unwrap();
    assert_eq!(follower.next_seq(), next);
    assert_eq!(contents(&follower), want);
    write_both(
        &primary,
        &follower,
        Replicated::Upsert(vec![point(7, 99), point(8, 99)]),
    );
    want.insert(7, 99);
    want.insert(8, 99);
    assert_eq!(contents(&follower), want);
    assert_eq!(contents(&primary), want);
}

#[test]
fn gaps_repeats_and_bad_points_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = Shard::create(dir.path().to_str().unwrap(), spec(), opts()).unwrap();
    assert_eq!(f.next_seq(), 1);
    assert_eq!(
        f.apply_replicated(1, Replicated::Upsert(vec![point(1, 1), point(2, 1)]))
            .unwrap(),
        2
    );
    let before = contents(&f);
    for (first, needle) in [(5, "leaves a gap"), (2, "repeats"), (1, "repeats")] {
        let e = f
            .apply_replicated(first, Replicated::Upsert(vec![point(3, 2)]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let msg = e.to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains(&format!("sequence number {first}")), "{msg}");
        assert!(msg.contains("the next is 3"), "{msg}");
    }
    let e = f
        .apply_replicated(3, Replicated::Delete(Vec::new()))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let wrong_dim = Point::new(9u64, vec![1.0, 2.0]);
    let e = f
        .apply_replicated(3, Replicated::Upsert(vec![wrong_dim]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("points[0]"), "{e}");
    assert_eq!(f.next_seq(), 3, "nothing refused took a sequence number");
    assert_eq!(contents(&f), before);
    // The next write in order still applies.
    assert_eq!(
        f.apply_replicated(3, Replicated::Delete(vec![Key::Int(1)]))
            .unwrap(),
        3
    );
    assert_eq!(contents(&f), BTreeMap::from([(2, 1)]));
}
