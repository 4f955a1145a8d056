//! The node's memory budget (`node.memory_budget_bytes`): what one shard is estimated to
//! cost, and whether one more assignment fits. Pure functions; the lifecycle asks them
//! before it opens anything.
//!
//! The estimate is a bound on what the engine may hold in memory for a shard, not what it
//! holds now (an empty memtable costs a few kilobytes and grows with its rows):
//!
//! - a writer: `engine.memtable_bytes × (1 + max_frozen_memtables)`: the active memtable
//!   and the full ones waiting for their flush (the engine's default allows 2);
//! - an object-store shard, writer or reader: plus `engine.block_cache_bytes`;
//! - a local reader: nothing beyond its segments, which are memory-mapped (page cache);
//! - a copy of a replicated shard, primary or follower: plus `node.replica_tail_bytes`, the
//!   recent frames it keeps to resend.

use vecshard_engine::Options;

use crate::placement::{Role, ShardId};

/// Bytes a shard opened with `opts` in `role` may hold in memory (see the module docs);
/// `replica_tail`: the replicated copy's tail bound, 0 for an unreplicated shard.
pub fn shard_estimate(opts: &Options, role: Role, local: bool, replica_tail: u64) -> u64 {
    let memtables = match role {
        Role::Writer | Role::Follower => {
            (opts.memtable_bytes as u64).saturating_mul(1 + opts.max_frozen_memtables as u64)
        }
        Role::Reader => 0,
    };
    let cache = if local { 0 } else { opts.block_cache_bytes };
    memtables.saturating_add(cache).saturating_add(replica_tail)
}

/// Whether a shard asking for `ask` bytes fits a `budget` (0: unlimited) of which `used`
/// bytes are held by `held` shards; otherwise why not, naming the budget, the ask and
/// what is used.
pub fn admit(budget: u64, used: u64, held: usize, ask: u64, shard: &ShardId) -> Result<(), String> {
    if budget == 0 || used.saturating_add(ask) <= budget {
        return Ok(());
    }
    Err(format!(
        "node memory budget exceeded: shard {shard} needs an estimated {ask} bytes, and {held} \
         open shards already use {used} of node.memory_budget_bytes = {budget} \
         ({} bytes left)",
        budget.saturating_sub(used)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ShardId {
        ShardId {
            collection: "c".into(),
            shard: 3,
        }
    }

    #[test]
    fn writers_count_their_memtables_and_object_stores_their_cache() {
        let opts = Options {
            memtable_bytes: 1 << 20,
            block_cache_bytes: 5 << 20,
            ..Options::default()
        };
        assert_eq!(shard_estimate(&opts, Role::Writer, true, 0), 3 << 20);
        assert_eq!(shard_estimate(&opts, Role::Writer, false, 0), 8 << 20);
        assert_eq!(shard_estimate(&opts, Role::Reader, true, 0), 0);
        assert_eq!(shard_estimate(&opts, Role::Reader, false, 0), 5 << 20);
        // A replicated copy also keeps its tail of recent frames.
        assert_eq!(shard_estimate(&opts, Role::Writer, true, 7 << 20), 10 << 20);
        assert_eq!(
            shard_estimate(&opts, Role::Follower, true, 7 << 20),
            10 << 20
        );
    }

    #[test]
    fn admits_within_the_budget_and_explains_a_refusal() {
        assert!(
            admit(0, u64::MAX, 9, u64::MAX, &id()).is_ok(),
            "0 is unlimited"
        );
        assert!(admit(10, 4, 1, 6, &id()).is_ok());
        let why = admit(10, 5, 2, 6, &id()).unwrap_err();
        for needle in [
            "c/3",
            "6 bytes",
            "2 open shards",
            "use 5",
            "= 10",
            "5 bytes left",
        ] {
            assert!(why.contains(needle), "{needle:?} not in {why:?}");
        }
    }
}
