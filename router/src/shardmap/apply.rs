//! Applying commands to the shard map: deterministic, so every router ends in the same
//! state from the same log.

use super::types::*;

impl ShardMap {
    /// Apply `cmd`, the entry at Raft log index `index`.
    pub fn apply(&mut self, cmd: &Command, index: u64) -> CommandResult {
        match cmd {
            Command::RegisterNode { id, address } => self.register_node(id, address),
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
            Command::CreateCollection { spec, owners } => self.create(spec, owners, index),
            Command::DropCollection { name } => match self.collections.remove(name) {
                Some(_) => CommandResult::Ok,
                None => reject_not_found(format!("collection {name:?} does not exist")),
            },
            Command::Move { moves } => CommandResult::Moved {
                applied: moves.iter().filter(|m| self.apply_move(m)).count(),
            },
            Command::SetReaders {
                collection,
                shard,
                epoch,
                readers,
            } => self.set_readers(collection, *shard, *epoch, readers),
            Command::RemoveNode { id } => self.remove_node(id),
        }
    }

    fn register_node(&mut self, id: &str, address: &str) -> CommandResult {
        match self.nodes.get_mut(id) {
            Some(n) => {
                n.address = address.to_string();
                CommandResult::Registered { created: false }
            }
            None => {
                self.nodes.insert(
                    id.to_string(),
                    NodeRecord {
                        id: id.to_string(),
                        address: address.to_string(),
                        state: Liveness::Joining,
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
        let shards = owners
            .iter()
            .map(|o| Assignment {
                owner: o.clone(),
                epoch: 1,
                readers: Vec::new(),
            })
            .collect();
        self.collections.insert(
            spec.name.clone(),
            Collection {
                spec: spec.clone(),
                incarnation: index,
                shards,
            },
        );
        CommandResult::Ok
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
        let Some(a) = self
            .collections
            .get_mut(collection)
            .and_then(|c| c.shards.get_mut(shard as usize))
        else {
            return reject_not_found(format!("shard {collection}/{shard} does not exist"));
        };
        if a.epoch != epoch {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "shard {collection}/{shard} is at epoch {}, not {epoch}",
                a.epoch
            )));
        }
        a.readers = readers
            .iter()
            .filter(|r| Some(*r) != a.owner.as_ref())
            .cloned()
            .collect();
        CommandResult::Ok
    }

    fn remove_node(&mut self, id: &str) -> CommandResult {
        if !self.nodes.contains_key(id) {
            return reject_not_found(format!("node {id:?} is not registered"));
        }
        let holds = self.collections.values().any(|c| {
            c.shards
                .iter()
                .any(|a| a.owner.as_deref() == Some(id) || a.readers.iter().any(|r| r == id))
        });
        if holds {
            return CommandResult::Rejected(Rejection::Conflict(format!(
                "node {id:?} still holds shards; move them first"
            )));
        }
        self.nodes.remove(id);
        CommandResult::Ok
    }
}

fn reject_not_found(message: String) -> CommandResult {
    CommandResult::Rejected(Rejection::NotFound(message))
}
