//! Placement rules, as pure functions of the shard map (the leader turns their answers
//! into commands):
//!
//! - a new collection's shards go round the live nodes, least loaded first (load = shards
//!   owned), ties by node id;
//! - an object-store shard whose owner is down (or that has none) moves to a live reader of
//!   the shard if there is one, else to the least-loaded live node; local-disk shards wait;
//! - rebalancing moves one object-store shard at a time from the most to the least loaded
//!   live node while they differ by two or more;
//! - read replicas: each object-store shard gets `replicas` live readers other than its
//!   owner, least reader-loaded first;
//! - a dropped shard's data is deleted by its last owner (local disk: the only copy is
//!   there, so it waits for that node) or, on an object store, by its last owner if alive,
//!   else by the first live node.

use std::collections::BTreeMap;

use super::types::{Liveness, Move, ShardMap};

/// A deletion of a dropped shard's data that a live node can do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The dropped collection's incarnation (its key in `ShardMap::dropping`).
    pub incarnation: u64,
    /// Shard number.
    pub shard: u32,
    /// The live node to do it.
    pub node: String,
    /// A follower's copy of a replicated shard (confirmed by `FollowerDataDeleted`), not
    /// the owner's.
    pub follower: bool,
}

/// The deletions of dropped collections' data that can happen now.
pub fn deletions(map: &ShardMap) -> Vec<Deletion> {
    let mut out = Vec::new();
    for (incarnation, d) in &map.dropping {
        let c = &d.collection;
        for n in &d.pending {
            let owner = c
                .shards
                .get(*n as usize)
                .and_then(|a| a.owner.as_deref())
                .filter(|o| is_live(map, o));
            let node = if c.spec.is_object_store() {
                owner.or_else(|| live_nodes(map).next())
            } else {
                owner
            };
            if let Some(node) = node {
                out.push(Deletion {
                    incarnation: *incarnation,
                    shard: *n,
                    node: node.to_string(),
                    follower: false,
                });
            }
        }
        for (n, node) in &d.followers {
            if is_live(map, node) {
                out.push(Deletion {
                    incarnation: *incarnation,
                    shard: *n,
                    node: node.clone(),
                    follower: true,
                });
            }
        }
    }
    out
}

/// Shards owned per live node (every live node present, possibly with 0).
fn owner_load(map: &ShardMap) -> BTreeMap<&str, usize> {
    let mut load: BTreeMap<&str, usize> = live_nodes(map).map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for a in &c.shards {
            if let Some(l) = a.owner.as_deref().and_then(|o| load.get_mut(o)) {
                *l += 1;
            }
        }
    }
    load
}

/// Ids of nodes whose state is `Alive`, in id order.
pub fn live_nodes(map: &ShardMap) -> impl Iterator<Item = &str> {
    map.nodes
        .values()
        .filter(|n| n.state == Liveness::Alive)
        .map(|n| n.id.as_str())
}

/// Whether node `id` is alive in the map.
pub fn is_live(map: &ShardMap, id: &str) -> bool {
    map.nodes
        .get(id)
        .is_some_and(|n| n.state == Liveness::Alive)
}

/// The least-loaded node among `load` (ties: smallest id), excluding `except`.
fn least_loaded<'a>(load: &BTreeMap<&'a str, usize>, except: &[&str]) -> Option<&'a str> {
    least_loaded_where(load, |n| !except.contains(&n))
}

fn least_loaded_where<'a>(
    load: &BTreeMap<&'a str, usize>,
    keep: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    load.iter()
        .filter(|(n, _)| keep(n))
        .min_by_key(|(n, l)| (**l, **n))
        .map(|(n, _)| *n)
}

/// Owners for a new collection's `shards` shards, or `None` when no node is alive.
pub fn place_new(map: &ShardMap, shards: u32) -> Option<Vec<String>> {
    let mut load = owner_load(map);
    (0..shards)
        .map(|_| {
            let n = least_loaded(&load, &[])?;
            *load.get_mut(n)? += 1;
            Some(n.to_string())
        })
        .collect()
}

/// Too few live nodes for a replicated collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFewNodes {
    /// Live nodes.
    pub live: usize,
    /// The replication factor asked for.
    pub factor: u32,
}

/// Replicas for a new replicated collection's `shards` shards, `factor` distinct live
/// nodes each, primary first. The primary goes to the node owning the fewest shards (as
/// for unreplicated collections), each follower to the node holding the fewest replicas
/// (of any role) not already chosen for the shard; ties by node id.
pub fn place_replicated(
    map: &ShardMap,
    shards: u32,
    factor: u32,
) -> Result<Vec<Vec<String>>, TooFewNodes> {
    let live = live_nodes(map).count();
    if live < factor as usize || live == 0 {
        return Err(TooFewNodes { live, factor });
    }
    let mut owners = owner_load(map);
    let mut held: BTreeMap<&str, usize> = live_nodes(map).map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for a in &c.shards {
            for (n, l) in held.iter_mut() {
                if a.held_by(n) {
                    *l += 1;
                }
            }
        }
    }
    let mut out = Vec::with_capacity(shards as usize);
    for _ in 0..shards {
        let primary = least_loaded(&owners, &[]).ok_or(TooFewNodes { live, factor })?;
        let mut chosen = vec![primary];
        while chosen.len() < factor as usize {
            // A node in a zone no chosen replica is in (a node without a zone label is a
            // zone of its own); when every zone already holds one, any other node.
            let new_zone = |n: &str| {
                !chosen.contains(&n)
                    && zone(map, n).is_none_or(|z| chosen.iter().all(|c| zone(map, c) != Some(z)))
            };
            let f = least_loaded_where(&held, new_zone)
                .or_else(|| least_loaded(&held, &chosen))
                .ok_or(TooFewNodes { live, factor })?;
            chosen.push(f);
        }
        for n in &chosen {
            *held.entry(n).or_default() += 1;
        }
        *owners.entry(primary).or_default() += 1;
        out.push(chosen.into_iter().map(str::to_string).collect());
    }
    Ok(out)
}

fn zone<'m>(map: &'m ShardMap, node: &str) -> Option<&'m str> {
    map.nodes.get(node)?.zone.as_deref()
}

/// Moves for object-store shards whose owner is not alive (or missing).
pub fn failover_moves(map: &ShardMap) -> Vec<Move> {
    let mut load = owner_load(map);
    let mut moves = Vec::new();
    for (name, c) in &map.collections {
        if !c.spec.is_object_store() {
            continue;
        }
        for (n, a) in c.shards.iter().enumerate() {
            if a.owner.as_deref().is_some_and(|o| is_live(map, o)) {
                continue;
            }
            let reader = a
                .readers
                .iter()
                .find(|r| is_live(map, r))
                .map(String::as_str);
            let Some(to) = reader.or_else(|| least_loaded(&load, &[])) else {
                return moves;
            };
            if let Some(l) = load.get_mut(to) {
                *l += 1;
            }
            moves.push(Move {
                collection: name.clone(),
                shard: n as u32,
                from_epoch: a.epoch,
                to: to.to_string(),
            });
        }
    }
    moves
}

/// One move that evens out object-store shards across live nodes, if any is worth it.
pub fn rebalance_move(map: &ShardMap) -> Option<Move> {
    let load = owner_load(map);
    let (min_node, min) = load.iter().min_by_key(|(n, l)| (**l, **n))?;
    let mut by_load: Vec<_> = load.iter().collect();
    by_load.sort_by_key(|(n, l)| (std::cmp::Reverse(**l), **n));
    for (node, l) in by_load {
        if *l < min + 2 {
            return None;
        }
        for (name, c) in &map.collections {
            if !c.spec.is_object_store() {
                continue;
            }
            if let Some((n, a)) = c
                .shards
                .iter()
                .enumerate()
                .find(|(_, a)| a.owner.as_deref() == Some(*node))
            {
                return Some(Move {
                    collection: name.clone(),
                    shard: n as u32,
                    from_epoch: a.epoch,
                    to: min_node.to_string(),
                });
            }
        }
    }
    None
}

/// A desired change of one shard's readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderChange {
    /// Collection.
    pub collection: String,
    /// Shard number.
    pub shard: u32,
    /// The shard's epoch.
    pub epoch: u64,
    /// The new reader set.
    pub readers: Vec<String>,
}

/// Reader sets that should change so that every object-store shard with an owner has
/// `replicas` live readers (as many as there are live nodes besides the owner).
pub fn reader_changes(map: &ShardMap, replicas: usize) -> Vec<ReaderChange> {
    let mut load: BTreeMap<&str, usize> = live_nodes(map).map(|n| (n, 0)).collect();
    for c in map.collections.values() {
        for a in &c.shards {
            for r in &a.readers {
                if let Some(l) = load.get_mut(r.as_str()) {
                    *l += 1;
                }
            }
        }
    }
    let mut changes = Vec::new();
    for (name, c) in &map.collections {
        if !c.spec.is_object_store() {
            continue;
        }
        for (n, a) in c.shards.iter().enumerate() {
            let Some(owner) = a.owner.as_deref() else {
                continue;
            };
            let mut want: Vec<&str> = a
                .readers
                .iter()
                .map(String::as_str)
                .filter(|r| is_live(map, r) && *r != owner)
                .take(replicas)
                .collect();
            while want.len() < replicas {
                let mut except = want.clone();
                except.push(owner);
                let Some(r) = least_loaded(&load, &except) else {
                    break;
                };
                if let Some(l) = load.get_mut(r) {
                    *l += 1;
                }
                want.push(r);
            }
            if want
                .iter()
                .copied()
                .ne(a.readers.iter().map(String::as_str))
            {
                changes.push(ReaderChange {
                    collection: name.clone(),
                    shard: n as u32,
                    epoch: a.epoch,
                    readers: want.into_iter().map(str::to_string).collect(),
                });
            }
        }
    }
    changes
}
