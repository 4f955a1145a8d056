//! Membership: register with the routers, then send every router a heartbeat with the
//! states of the node's shards every interval. A router that answers NOT_FOUND has
//! forgotten the node: it registers again. Routers that the answers list are added to
//! the set the node talks to. The Raft leader's answer carries the read lease of the
//! node's replaceable writer slots (note 014, "Read leases"); a read refused for want of
//! one asks for a round early.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tonic::Code;
use vecshard_proto::internal::v1 as pb;
use vecshard_proto::internal::v1::router_internal_client::RouterInternalClient;

use vecshard_security::{AuthChannel, Outbound};

use crate::conversions::{Target, status_to_proto, target_from_proto};
use crate::service::NodeState;

type Client = RouterInternalClient<AuthChannel>;

/// The least time between heartbeat rounds sent early because a read found no lease.
const EARLY_GAP: Duration = Duration::from_millis(50);

struct Routers {
    timeout: Duration,
    outbound: Outbound,
    known: BTreeSet<String>,
    clients: BTreeMap<String, Client>,
}

impl Routers {
    fn client(&mut self, addr: &str) -> Option<Client> {
        if let Some(c) = self.clients.get(addr) {
            return Some(c.clone());
        }
        let endpoint = self
            .outbound
            .endpoint(addr)
            .map_err(|e| tracing::warn!(router = addr, error = %e, "bad router address"))
            .ok()?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            // A connection whose peer vanished without a FIN (a network cut, a container
            // that came back with a new address) is noticed by the missing ping replies.
            .http2_keep_alive_interval(self.timeout)
            .keep_alive_timeout(self.timeout)
            .keep_alive_while_idle(true);
        let client = RouterInternalClient::new(self.outbound.connect_lazy(&endpoint));
        self.clients.insert(addr.to_string(), client.clone());
        Some(client)
    }

    /// Forget the channel to `addr` after a failed call: the next call opens a new
    /// connection instead of waiting on one that may be dead for good.
    fn failed(&mut self, addr: &str) {
        self.clients.remove(addr);
    }
}

/// Register and send heartbeats until `shutdown` flips. `ready` turns true after the
/// first registration (at once when no routers are configured).
pub async fn run(
    state: Arc<NodeState>,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = &state.config.cluster;
    if cfg.routers.is_empty() {
        ready.store(true, Ordering::Release);
        return;
    }
    let mut routers = Routers {
        timeout: Duration::from_millis(cfg.rpc_timeout_ms),
        outbound: state.outbound.clone(),
        known: cfg.routers.iter().cloned().collect(),
        clients: BTreeMap::new(),
    };
    let period = state.config.heartbeat_interval();
    let clock = state.clock.clone();
    // The first round at once, then one `period` after the start of the previous round
    // (a round that overran delays the next rather than bunching them).
    let mut next = clock.now();
    let mut last = next;
    let mut registered = false;
    loop {
        tokio::select! {
            _ = clock.sleep(next.saturating_duration_since(clock.now())) => {}
            _ = state.registry.lease_wanted.notified(), if registered => {
                // A read wants a lease: a round now, but at most one per EARLY_GAP.
                let early = last + EARLY_GAP.min(period);
                tokio::select! {
                    _ = clock.sleep(early.saturating_duration_since(clock.now())) => {}
                    _ = shutdown.changed() => return,
                }
            }
            _ = shutdown.changed() => return,
        }
        last = clock.now();
        next = last + period;
        if !registered {
            registered = register(&state, &mut routers).await;
            if registered {
                ready.store(true, Ordering::Release);
            } else {
                continue;
            }
        }
        registered = heartbeat(&state, &mut routers).await;
    }
}

async fn register(state: &NodeState, routers: &mut Routers) -> bool {
    let req = pb::RegisterNodeRequest {
        node_id: state.config.node.id.clone(),
        address: state.advertise.clone(),
        zone: state.config.node.zone.clone(),
    };
    for addr in routers.known.clone() {
        let Some(mut client) = routers.client(&addr) else {
            continue;
        };
        match client.register_node(req.clone()).await {
            Ok(r) => {
                tracing::info!(router = %addr, created = r.get_ref().created, "registered");
                return true;
            }
            Err(s) => {
                tracing::warn!(router = %addr, code = ?s.code(), message = s.message(), "register failed");
                routers.failed(&addr);
            }
        }
    }
    false
}

/// One round of heartbeats to every known router. False when a router no longer knows
/// the node (register again).
async fn heartbeat(state: &NodeState, routers: &mut Routers) -> bool {
    let registry = state.registry.clone();
    // Closed shards stay in the report until a router has received it.
    let statuses = match tokio::task::spawn_blocking(move || registry.statuses(false)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "collecting shard statuses failed");
            return true;
        }
    };
    let beat = pb::Heartbeat {
        node_id: state.config.node.id.clone(),
        address: state.advertise.clone(),
        shards: statuses.iter().cloned().map(status_to_proto).collect(),
    };
    // A lease counts from before the heartbeat left: the leader records it from when
    // it answered, which is later, so this node's lease always ends first.
    let sent = state.clock.now();
    let mut calls = tokio::task::JoinSet::new();
    for addr in routers.known.clone() {
        if let Some(mut client) = routers.client(&addr) {
            let beat = beat.clone();
            calls.spawn(async move { (addr, client.heartbeat(beat).await) });
        }
    }
    let mut still_registered = true;
    let mut delivered = false;
    while let Some(done) = calls.join_next().await {
        let Ok((addr, result)) = done else { continue };
        match result {
            Ok(r) => {
                delivered = true;
                let answer = r.get_ref();
                if answer.lease_ms > 0 {
                    let leased: Vec<Target> = answer
                        .leased
                        .iter()
                        .filter_map(|t| target_from_proto(Some(t.clone())).ok())
                        .collect();
                    let until = sent + Duration::from_millis(answer.lease_ms);
                    state.registry.grant_leases(until, &leased, &statuses);
                }
                for router in &answer.routers {
                    if !router.address.is_empty() && routers.known.insert(router.address.clone()) {
                        tracing::info!(router = %router.address, "learned a router");
                    }
                }
            }
            Err(s) if s.code() == Code::NotFound => {
                tracing::warn!(router = %addr, "the router does not know this node; registering again");
                still_registered = false;
            }
            Err(s) => {
                tracing::debug!(router = %addr, code = ?s.code(), message = s.message(), "heartbeat failed");
                routers.failed(&addr);
            }
        }
    }
    if delivered {
        state.registry.forget_closed(&statuses);
    }
    still_registered
}
