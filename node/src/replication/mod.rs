//! Replication of local-disk shards (`docs/design/014-replication.md`, step 2): the
//! primary ships its WAL frames to its followers after local durability and acknowledges
//! a write when the acknowledgement rule holds; followers apply frames strictly in order.
//!
//! - [`ack`]: which replicas hold which sequence number, and which writes may be
//!   acknowledged (pure, unit-tested);
//! - [`follow`]: what a follower does with a frame given its position (pure);
//! - [`tail`]: the primary's bounded in-memory tail of frames, resent from a follower's
//!   position after a gap (pure);
//! - [`store`]: a copy's durable replication position and a follower's recent frames;
//! - [`observe`]: what the primary reports of its followers (lag, catch-up bytes) and
//!   of its writes' waits;
//! - [`primary`]: the primary's shipping tasks (one unary `Replicate` call in flight per
//!   follower, over one HTTP/2 connection each) and its waiting writes.

pub mod ack;
pub mod follow;
pub mod observe;
pub mod primary;
pub mod store;
pub mod tail;

pub use primary::{PrimaryPlan, Replicator};
