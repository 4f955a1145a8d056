//! A replicated primary whose own copy is empty — no manifest at its local location: a
//! new collection, or a wiped data directory — asks its followers for their positions
//! before it opens (note 014, "A wiped primary does not serve"). An empty log is only
//! right for a new shard: if any follower holds writes, or any cannot be asked, the
//! primary refuses to open and the shard answers no writes and no reads through it
//! (a wiped primary reopened empty would serve empty reads, and with `all` could
//! acknowledge writes alone once its followers were dropped from the in-sync set).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::replica_internal_client::ReplicaInternalClient;

use super::PrimaryPlan;
use crate::placement::ShardId;

/// What one follower answered: its (durable sequence number, catching up), or why not.
pub type Answer = Result<(u64, bool), String>;

/// Whether an empty primary copy may open: only if every follower answered and none holds
/// a write. The error names the follower that decides it.
pub fn verdict(answers: &BTreeMap<String, Answer>) -> Result<(), String> {
    if let Some((node, (seq, _))) = answers
        .iter()
        .find_map(|(n, a)| a.as_ref().ok().filter(|(seq, _)| *seq > 0).map(|a| (n, a)))
    {
        return Err(format!(
            "this primary's copy is empty (a wiped or new data directory) but follower {node} holds writes up to {seq}: it does not open as primary (an operator moves the primary to an in-sync follower, or restores this copy)"
        ));
    }
    if let Some((node, why)) = answers
        .iter()
        .find_map(|(n, a)| a.as_ref().err().map(|e| (n, e)))
    {
        return Err(format!(
            "this primary's copy is empty (a wiped or new data directory) and follower {node} cannot say whether the shard holds writes ({why}): it does not open as primary"
        ));
    }
    Ok(())
}

/// Ask each follower of `id` at `epoch` for its position, again every 200 ms, until each
/// answered or `patience` passed.
pub async fn ask_followers(
    id: &ShardId,
    epoch: u64,
    plan: &PrimaryPlan,
    patience: Duration,
) -> BTreeMap<String, Answer> {
    let until = Instant::now() + patience;
    let mut answers = BTreeMap::new();
    for peer in &plan.followers {
        let answer = loop {
            let asked = async {
                let channel = plan
                    .outbound
                    .channel(&peer.address, plan.ack_timeout)
                    .map_err(|e| format!("{}: {e}", peer.address))?;
                let mut client = ReplicaInternalClient::new(channel);
                let mut req = tonic::Request::new(pb::PositionRequest {
                    target: Some(pb::ShardTarget {
                        collection: id.collection.clone(),
                        shard: id.shard,
                        epoch,
                    }),
                });
                req.set_timeout(plan.ack_timeout);
                client
                    .position(req)
                    .await
                    .map(|r| {
                        let r = r.into_inner();
                        (r.durable_seq, r.catching_up)
                    })
                    .map_err(|s| format!("{}: {}", peer.address, s.message()))
            };
            let answer = tokio::time::timeout(plan.ack_timeout, asked)
                .await
                .unwrap_or_else(|_| Err(format!("{}: no answer", peer.address)));
            if answer.is_ok() || Instant::now() >= until {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        answers.insert(peer.node_id.clone(), answer);
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_primary_opens_only_when_every_follower_is_empty() {
        let of = |v: Vec<(&str, Answer)>| {
            v.into_iter()
                .map(|(n, a)| (n.to_string(), a))
                .collect::<BTreeMap<_, _>>()
        };
        // A new collection: followers empty, catching up or not.
        verdict(&of(vec![("b", Ok((0, true))), ("c", Ok((0, false)))])).unwrap();
        verdict(&of(vec![])).unwrap();
        let e = verdict(&of(vec![("b", Ok((0, true))), ("c", Ok((120, false)))])).unwrap_err();
        assert!(e.contains("follower c holds writes up to 120"), "{e}");
        let e = verdict(&of(vec![
            ("b", Err("b:1: refused".into())),
            ("c", Ok((0, false))),
        ]))
        .unwrap_err();
        assert!(
            e.contains("follower b cannot say") && e.contains("b:1: refused"),
            "{e}"
        );
    }
}
