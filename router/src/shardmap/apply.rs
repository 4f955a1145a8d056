//! Applying commands to the shard map: deterministic, so every router ends in the same
//! state from the same log.

use super::types::*;

impl ShardMap {
    /// Apply `cmd`, the entry at Raft log index `index`.
    pub fn apply(&mut self, cmd: &Command, index: u64) -> CommandResult {
        match cmd {
            Command::RegisterNode { id, address, zone } => {
                self.register_node(id, address, zone.as_deref())
            }
            Command::SetLiveness { changes, at_ms } => {
                for (id, state) in changes {
                    if let Some(n) = self.nodes.get_mut(id) {
                        n.state = *state;
                        if *state == Liveness::Alive {
                            n.last_heartbeat_ms = Some(*at_ms);
                        }
                    }
                }
                CommandResult::Ok
            }
            Command::CreateCollection {
                spec,
                owners,
                layout,
            } => self.create(spec, owners, *layout, index),
            Command::RestoreCollection {
                spec,
                owners,
                restore,
            } => {
                let r = self.create(spec, owners, Layout::Incarnation, index);
                if r == CommandResult::Ok
                    && let Some(c) = self.collections.get_mut(&spec.name)
                {
                    c.restore = Some(restore.clone());
                }
                r
            }
            Command::CreateReplicated {
                spec,
                replication,
                replicas,
                followers_in_sync,
            } => self.create_replicated(spec, *replication, replicas, *followers_in_sync, index),
            Command::Promote {
                collection,
                shard,
                from_epoch,
                from_in_sync,
                primary,
                start_seq,
                in_sync,
            } => self.replica_set(collection, *shard, *from_epoch, |a, set| {
                if set.in_sync != *from_in_sync {
                    return Err(format!(
                        "in-sync set is {:?}, not {from_in_sync:?}",
                        set.in_sync
                    ));
                }
                if in_sync.first() != Some(primary)
                    || in_sync.iter().any(|n| !set.replicas.contains(n))
                {
                    return Err(format!(
                        "{in_sync:?} is not the replica {primary:?} and other replicas"
                    ));
                }
                a.epoch += 1;
                a.owner = Some(primary.clone());
                set.epoch_starts.push((a.epoch, *start_seq));
                set.in_sync = in_sync.clone();
                Ok(())
            }),
            Command::ShrinkIsr {
                collection,
                shard,
                epoch,
                node,
            } => self.replica_set(collection, *shard, *epoch, |a, set| {
                if a.owner.as_ref() == Some(node) {
                    return Err(format!("{node:?} is the primary"));
                }
                set.in_sync.retain(|n| n != node);
                Ok(())
            }),
            Command::ExpandIsr {
                collection,
                shard,
                epoch,
                node,
                seq: _,
            } => self.replica_set(collection, *shard, *epoch, |_, set| {
                if !set.replicas.contains(node) {
                    return Err(format!("{node:?} is not a replica"));
                }
                if !set.in_sync.contains(node) {
                    set.in_sync.push(node.clone());
                }
                Ok(())
            }),
            Command::DropCollection { name } => self.drop_collection(name),
            Command::DataDeleted { incarnation, shard } => {
                self.data_deleted(*incarnation, *shard);
                CommandResult::Ok
            }
            Command::FollowerDataDeleted {
                incarnation,
                shard,
                node,
            } => {
                self.follower_data_deleted(*incarnation, *shard, node);
                CommandResult::Ok
            }
            Command::Move { moves } => {
                // One epoch step per shard and entry: the first epoch of a re-created
                // collection (its entry's index) relies on it.
                let mut moved = std::collections::BTreeSet::new();
                let applied = moves
                    .iter()
                    .filter(|m| moved.insert((&m.collection, m.shard)) && self.apply_move(m))
                    .count();
                CommandResult::Moved { applied }
            }
            Command::SetReaders {
                collection,
                shard,
                epoch,
                readers,
            } => self.set_readers(collection, *shard, *epoch, readers),
            Command::RemoveNode { id } => self.remove_node(id),
        }
    }

    fn register_node(&mut self, id: &str, address: &str, zone: Option<&str>) -> CommandResult {
        match self.nodes.get_mut(id) {
            Some(n) => {
                n.address = address.to_string();
                n.zone = zone.map(str::to_string);
                CommandResult::Registered { created: false }
            }
            None => {
                self.nodes.insert(
                    id.to_string(),
                    NodeRecord {
                        id: id.to_string(),
                        address: address.to_string(),
                        state: Liveness::Joining,
                        zone: zone.map(str::to_string),
                        last_heartbeat_ms: None,
                    },
                );
                CommandResult::Registered { created: true }
            }
        }
    }

    fn create(
        &mut self,
        spec: &CollectionSpec,
        owners: &[Option<String>],
        layout: Layout,
        index: u64,
    ) -> CommandResult {
        if self.collections.contains_key(&spec.name) {
            return CommandResult::Rejected(Rejection::AlreadyExists(format!(
                "collection {:?} already exists",
                spec.name
            )));
        }
        if owners.len() != spec.shard_count as usize {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "placement has {} owners for {} shards",
                owners.len(),
                spec.shard_count
            )));
        }
        // Every earlier epoch of this name is below `index`: an entry raises a shard's
        // epoch by at most one, and the earlier incarnation's entries all precede this one.
        let first_epoch = match layout {
            Layout::Legacy => 1,
            Layout::Incarnation => index,
        };
        let shards = owners
            .iter()
            .map(|o| Assignment {
                owner: o.clone(),
                epoch: first_epoch,
                readers: Vec::new(),
                replicas: None,
            })
            .collect();
        if layout == Layout::Legacy && spec.storage == "local" {
            // A legacy local collection takes over the name's shared paths: a dropped
            // legacy one of the same name no longer owns those files.
            self.dropping.retain(|_, d| {
                let c = &d.collection;
                !(c.spec.name == spec.name
                    && c.layout == Layout::Legacy
                    && c.spec.storage == "local")
            });
        }
        self.collections.insert(
            spec.name.clone(),
            Collection {
                spec: spec.clone(),
                incarnation: index,
                layout,
                shards,
                restore: None,
                replication: None,
            },
        );
        CommandResult::Ok
    }

    /// A replicated collection: every shard's replicas must be `factor` distinct nodes.
    fn create_replicated(
        &mut self,
        spec: &CollectionSpec,
        replication: Replication,
        replicas: &[Vec<String>],
        followers_in_sync: bool,
        index: u64,
    ) -> CommandResult {
        if spec.storage != "local" {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "collection {:?}: replication needs local storage, not {:?}",
                spec.name, spec.storage
            )));
        }
        for (n, r) in replicas.iter().enumerate() {
            let distinct: std::collections::BTreeSet<&String> = r.iter().collect();
            if r.len() != replication.factor as usize || distinct.len() != r.len() {
                return CommandResult::Rejected(Rejection::Conflict(format!(
                    "shard {n} has replicas {r:?}, not {} distinct nodes",
                    replication.factor
                )));
            }
        }
        let owners: Vec<Option<String>> = replicas.iter().map(|r| r.first().cloned()).collect();
        let created = self.create(spec, &owners, Layout::Incarnation, index);
        if created != CommandResult::Ok {
            return created;
        }
        if let Some(c) = self.collections.get_mut(&spec.name) {
            c.replication = Some(replication);
            for (a, r) in c.shards.iter_mut().zip(replicas) {
                let in_sync = if followers_in_sync {
                    r.clone()
                } else {
                    r[..1].to_vec()
                };
                a.replicas = Some(ReplicaSet {
                    replicas: r.clone(),
                    in_sync,
                    epoch_starts: Vec::new(),
                });
            }
        }
        CommandResult::Ok
    }

    /// Move a collection from `collections` to `dropping`, with every shard whose data
    /// some node can delete pending: a local shard's last owner, and any node for a shared
    /// object store. (URLs of other schemes, from maps written before storage was
    /// checked, are never opened by nodes, so nothing can delete them.)
    fn drop_collection(&mut self, name: &str) -> CommandResult {
        let Some(c) = self.collections.remove(name) else {
            return reject_not_found(format!("collection {name:?} does not exist"));
        };
        let pending: std::collections::BTreeSet<u32> = (0..c.shards.len() as u32)
            .filter(|n| {
                if c.spec.storage == "local" {
                    c.shards[*n as usize].owner.is_some()
                } else {
                    c.spec.is_object_store()
                }
            })
            .collect();
        // Every follower of a replicated local shard holds a copy of its own.
        let followers: std::collections::BTreeSet<(u32, String)> = if c.spec.storage == "local" {
            c.shards
                .iter()
                .enumerate()
                .flat_map(|(n, a)| {
                    let owner = a.owner.clone();
                    a.replicas
                        .iter()
                        .flat_map(|set| set.replicas.iter())
                        .filter(move |r| Some(*r) != owner.as_ref())
                        .map(move |r| (n as u32, r.clone()))
                })
                .collect()
        } else {
            Default::default()
        };
        if !pending.is_empty() || !followers.is_empty() {
            self.dropping.insert(
                c.incarnation,
                Dropping {
                    collection: c,
                    pending,
                    followers,
                },
            );
        }
        CommandResult::Ok
    }

    /// Shard `shard` of the dropped incarnation is deleted; the collection leaves
    /// `dropping` with its last shard. Repeats are no-ops.
    fn data_deleted(&mut self, incarnation: u64, shard: u32) {
        if let Some(d) = self.dropping.get_mut(&incarnation) {
            d.pending.remove(&shard);
            if d.pending.is_empty() && d.followers.is_empty() {
                self.dropping.remove(&incarnation);
            }
        }
    }

    /// Follower `node`'s copy of shard `shard` of the dropped incarnation is deleted.
    fn follower_data_deleted(&mut self, incarnation: u64, shard: u32, node: &str) {
        if let Some(d) = self.dropping.get_mut(&incarnation) {
            d.followers.remove(&(shard, node.to_string()));
            if d.pending.is_empty() && d.followers.is_empty() {
                self.dropping.remove(&incarnation);
            }
        }
    }

    fn apply_move(&mut self, m: &Move) -> bool {
        let Some(a) = self
            .collections
            .get_mut(&m.collection)
            .and_then(|c| c.shards.get_mut(m.shard as usize))
        else {
            return false;
        };
        if a.epoch != m.from_epoch {
            return false;
        }
        a.owner = Some(m.to.clone());
        a.epoch += 1;
        a.readers.retain(|r| *r != m.to);
        true
    }

    fn set_readers(
        &mut self,
        collection: &str,
        shard: u32,
        epoch: u64,
        readers: &[String],
    ) -> CommandResult {
        let a = match self.assignment_at(collection, shard, epoch) {
            Ok(a) => a,
            Err(rejected) => return rejected,
        };
        a.readers = readers
            .iter()
            .filter(|r| Some(*r) != a.owner.as_ref())
            .cloned()
            .collect();
        CommandResult::Ok
    }

    /// Change a replicated shard's assignment and replica set with `f`, only at `epoch`
    /// (a stale command is refused as a conflict and changes nothing). `f` checks before
    /// it changes anything: its error must leave both as they were.
    fn replica_set(
        &mut self,
        collection: &str,
        shard: u32,
        epoch: u64,
        f: impl FnOnce(&mut Assignment, &mut ReplicaSet) -> Result<(), String>,
    ) -> CommandResult {
        let a = match self.assignment_at(collection, shard, epoch) {
            Ok(a) => a,
            Err(rejected) => return rejected,
        };
        let Some(mut set) = a.replicas.take() else {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "shard {collection}/{shard} is not replicated"
            )));
        };
        let r = f(a, &mut set);
        a.replicas = Some(set);
        match r {
            Ok(()) => CommandResult::Ok,
            Err(why) => CommandResult::Rejected(Rejection::Conflict(format!(
                "shard {collection}/{shard}: {why}"
            ))),
        }
    }

    /// The assignment of `collection`/`shard`, only while it is at `epoch`: otherwise the
    /// rejection to answer (not found, or a conflict naming both epochs).
    fn assignment_at(
        &mut self,
        collection: &str,
        shard: u32,
        epoch: u64,
    ) -> Result<&mut Assignment, CommandResult> {
        let Some(a) = self
            .collections
            .get_mut(collection)
            .and_then(|c| c.shards.get_mut(shard as usize))
        else {
            return Err(reject_not_found(format!(
                "shard {collection}/{shard} does not exist"
            )));
        };
        if a.epoch != epoch {
            return Err(CommandResult::Rejected(Rejection::Conflict(format!(
                "shard {collection}/{shard} is at epoch {}, not {epoch}",
                a.epoch
            ))));
        }
        Ok(a)
    }

    fn remove_node(&mut self, id: &str) -> CommandResult {
        if !self.nodes.contains_key(id) {
            return reject_not_found(format!("node {id:?} is not registered"));
        }
        let holds = self
            .collections
            .values()
            .any(|c| c.shards.iter().any(|a| a.held_by(id)));
        if holds {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "node {id:?} still holds shards; move them first"
            )));
        }
        self.nodes.remove(id);
        // Its copies of dropped local shards cannot be deleted any more. Should the node
        // come back, they sit under paths no collection uses again.
        let gone: Vec<(u64, u32)> = self
            .dropping
            .iter()
            .filter(|(_, d)| d.collection.spec.storage == "local")
            .flat_map(|(inc, d)| {
                d.pending
                    .iter()
                    .filter(|n| {
                        let a = d.collection.shards.get(**n as usize);
                        a.and_then(|a| a.owner.as_deref()) == Some(id)
                    })
                    .map(|n| (*inc, *n))
            })
            .collect();
        let gone_followers: Vec<(u64, u32)> = self
            .dropping
            .iter()
            .flat_map(|(inc, d)| {
                d.followers
                    .iter()
                    .filter(|(_, node)| node == id)
                    .map(|(n, _)| (*inc, *n))
            })
            .collect();
        for (incarnation, shard) in gone_followers {
            self.follower_data_deleted(incarnation, shard, id);
        }
        for (incarnation, shard) in gone {
            self.data_deleted(incarnation, shard);
        }
        CommandResult::Ok
    }
}

fn reject_not_found(message: String) -> CommandResult {
    CommandResult::Rejected(Rejection::NotFound(message))
}
