//! Fault injection against a dockerised cluster: the compose file in `deploy/` with 3
//! routers, 3 nodes and an S3 server, all in containers on networks the test creates.
//! A randomized nemesis in the spirit of Jepsen: concurrent clients write, overwrite, delete,
//! read and search through the routers while seeded faults hit the cluster (SIGKILL,
//! `docker pause`, network partitions of nodes and of the Raft leader, a frozen S3,
//! restarts of routers and of everything; for the replicated collection: SIGKILL and
//! isolation of its primary, a wiped follower copy); every operation is recorded with its outcome,
//! and the history is checked for lost, resurrected, stale, damaged or invented data, for
//! wrong search answers, for requests that outlived their deadline, for a damaged
//! shard map, and for replica copies that diverged from what the routers serve. The harness builds the images from this checkout (no registry needed).

mod checker;
mod compose;
mod history;
mod model;
mod nemesis;
mod quiet;
mod replicas;
mod report;
mod routers;
mod run;
mod settings;
mod workload;

pub use compose::{Compose, NODES, ROUTERS, S3, S3Container, build_s3_image};
pub use report::Report;
pub use routers::{Client, Routers};
pub use run::run;
pub use settings::{Settings, parse_duration};
