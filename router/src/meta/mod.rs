//! Operations on the shard map: collections, cluster status, node registration and
//! heartbeats, and the operator's commands. Changes run on the Raft leader; other routers
//! forward them.

mod admin;
mod collections;
mod membership;
mod status;

use std::time::Duration;

/// How long a forwarded or retried metadata change may take.
pub(crate) const META_DEADLINE: Duration = Duration::from_secs(15);
