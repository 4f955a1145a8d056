//! Who may call what inside the cluster. A caller is identified by its certificate
//! (mutual TLS) and/or proves membership with the cluster secret; with neither configured
//! the cluster is open (development on loopback), which [`ClusterAuth::warn_if_exposed`]
//! makes loud.
//!
//! | callee | call | accepted from |
//! |---|---|---|
//! | node | every gRPC call (shard lifecycle, data) | routers |
//! | router internal | Raft (append, vote, snapshot) | routers |
//! | router internal | RegisterNode, Heartbeat for node `X` | node `X` (a router forwarding a registration to the leader too) |
//! | node | `ReplicaInternal.Replicate` (a primary's frames) | any member: nodes (primaries) and routers |

use std::net::SocketAddr;
use std::sync::Arc;

use tonic::Status;

use crate::identity::Identity;
use crate::secret::{SECRET_HEADER, Secret};

/// Who is calling, as far as it could be established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A member with this certificate identity (mutual TLS).
    Member(Identity),
    /// Some member: it holds the cluster secret (no certificates configured).
    SecretHolder,
    /// Anyone: the cluster has no authentication.
    Anyone,
}

impl Caller {
    fn is_router(&self) -> bool {
        !matches!(self, Caller::Member(Identity::Node(_)))
    }
}

/// The cluster authentication of a process.
#[derive(Debug, Clone)]
pub struct ClusterAuth {
    mutual_tls: bool,
    secret: Option<Secret>,
}

impl ClusterAuth {
    /// Identify callers by certificate when `mutual_tls` (the listener requires client
    /// certificates signed by the cluster CA), and require `secret` when given.
    pub fn new(mutual_tls: bool, secret: Option<Secret>) -> Self {
        ClusterAuth { mutual_tls, secret }
    }

    /// No authentication at all.
    pub fn is_open(&self) -> bool {
        !self.mutual_tls && self.secret.is_none()
    }

    /// Log a loud warning when an open cluster listens beyond loopback.
    pub fn warn_if_exposed(&self, what: &str, addr: SocketAddr) {
        if self.is_open() && !addr.ip().is_loopback() {
            tracing::warn!(
                listener = what,
                %addr,
                "UNAUTHENTICATED CLUSTER: {what} listens on {addr} without TLS client certificates or a cluster secret; anyone who reaches it can change the cluster. Set tls_cert/tls_key/tls_ca or a cluster secret."
            );
        }
    }

    /// Establish who is calling: UNAUTHENTICATED when the secret is missing or wrong, or
    /// the certificate names no member.
    pub fn caller<T>(&self, r: &tonic::Request<T>) -> Result<Caller, Status> {
        if let Some(secret) = &self.secret {
            let given = r.metadata().get(SECRET_HEADER).map(|v| v.as_bytes());
            if !given.is_some_and(|g| secret.matches(g)) {
                return Err(Status::unauthenticated(
                    "internal calls need the cluster secret (missing or wrong)",
                ));
            }
        }
        if self.mutual_tls {
            let certs = r.peer_certs().ok_or_else(|| {
                Status::unauthenticated("internal calls need a client certificate of the cluster")
            })?;
            let first = certs.first().ok_or_else(|| {
                Status::unauthenticated("internal calls need a client certificate of the cluster")
            })?;
            return Identity::of_certificate(first)
                .map(Caller::Member)
                .map_err(Status::unauthenticated);
        }
        Ok(if self.secret.is_some() {
            Caller::SecretHolder
        } else {
            Caller::Anyone
        })
    }

    /// Only routers: PERMISSION_DENIED for a node's certificate.
    pub fn require_router<T>(&self, r: &tonic::Request<T>) -> Result<Caller, Status> {
        let caller = self.caller(r)?;
        if !caller.is_router() {
            return Err(denied(&caller, "only routers may make this call"));
        }
        Ok(caller)
    }

    /// Only node `node_id` itself (or, when `forwarded`, a router passing the node's call
    /// on): a heartbeat or registration cannot speak for another node, so it cannot move
    /// that node to a new address.
    pub fn require_node<T>(
        &self,
        r: &tonic::Request<T>,
        node_id: &str,
        forwarded: bool,
    ) -> Result<Caller, Status> {
        let caller = self.caller(r)?;
        match &caller {
            Caller::Member(Identity::Node(id)) if id == node_id => Ok(caller),
            Caller::Member(Identity::Router(_)) if forwarded => Ok(caller),
            Caller::Member(_) => Err(denied(
                &caller,
                &format!("only node {node_id:?} may speak for node {node_id:?}"),
            )),
            Caller::SecretHolder | Caller::Anyone => Ok(caller),
        }
    }
}

fn denied(caller: &Caller, why: &str) -> Status {
    match caller {
        Caller::Member(id) => Status::permission_denied(format!("{why}; the caller is {id}")),
        _ => Status::permission_denied(why.to_string()),
    }
}

/// A tonic interceptor that lets only routers through (a node's gRPC service).
#[derive(Debug, Clone)]
pub struct RouterOnly(pub Arc<ClusterAuth>);

impl tonic::service::Interceptor for RouterOnly {
    fn call(&mut self, r: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        self.0.require_router(&r)?;
        Ok(r)
    }
}

/// A tonic interceptor that lets any cluster member through: a certificate of the
/// cluster (router or node) or the cluster secret (a node's replication service, which
/// primaries on other nodes call).
#[derive(Debug, Clone)]
pub struct MembersOnly(pub Arc<ClusterAuth>);

impl tonic::service::Interceptor for MembersOnly {
    fn call(&mut self, r: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        self.0.caller(&r)?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_secret(s: Option<&str>) -> tonic::Request<()> {
        let mut r = tonic::Request::new(());
        if let Some(s) = s {
            r.metadata_mut().insert(SECRET_HEADER, s.parse().unwrap());
        }
        r
    }

    #[test]
    fn the_secret_is_required_when_set() {
        let secret = Secret::new("0123456789abcdef", "k").unwrap();
        let auth = ClusterAuth::new(false, Some(secret));
        assert!(!auth.is_open());
        assert_eq!(
            auth.caller(&with_secret(None)).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.caller(&with_secret(Some("0123456789abcdeX")))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            auth.caller(&with_secret(Some("0123456789abcdef"))).unwrap(),
            Caller::SecretHolder
        );
    }

    #[test]
    fn mutual_tls_without_a_certificate_is_refused_and_open_is_open() {
        let auth = ClusterAuth::new(true, None);
        let e = auth.require_router(&with_secret(None)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let open = ClusterAuth::new(false, None);
        assert!(open.is_open());
        assert_eq!(
            open.require_node(&with_secret(None), "n", false).unwrap(),
            Caller::Anyone
        );
    }
}
