//! Fault injection against a dockerised cluster: the compose file in `deploy/` with 3
//! routers, 3 nodes and an S3 server, all in containers on a network the test creates.
//! Faults are container operations: `docker kill -s KILL` (crash), `docker pause` (a
//! process that stops answering but is alive), `docker network disconnect` (partition),
//! restarts. The harness builds the images from this checkout (no registry needed).

mod compose;
mod data;

pub use compose::Compose;
pub use data::{Cluster, int_key, point};

/// Dimension of the test vectors.
pub fn data_dim() -> usize {
    data::DIM
}
