//! Replication of local-disk shards (`docs/design/014-replication.md`, step 2): the
//! primary ships its WAL frames to its followers after local durability and acknowledges
//! a write when the acknowledgement rule holds; followers apply frames strictly in order.
//!
//! - [`ack`]: which replicas hold which sequence number, and which writes may be
//!   acknowledged (pure, unit-tested);
//! - [`follow`]: what a follower does with a frame given its position (pure);
//! - [`tail`]: the primary's bounded in-memory tail of frames, resent from a follower's
//!   position after a gap (pure);
//! - [`checkpoint`]: a checkpoint's files as a stream of chunks with a CRC per file, and
//!   their reception into a staging directory (checkpoint catch-up);
//! - [`store`]: a copy's durable replication position and a follower's recent frames;
//! - [`observe`]: what the primary reports of its followers (lag, catch-up bytes) and
//!   of its writes' waits;
//! - [`primary`]: the primary's shipping tasks (one unary `Replicate` call in flight per
//!   follower, over one HTTP/2 connection each) and its waiting writes;
//! - [`wiped`]: a primary whose copy is empty opens only if no follower holds writes.

pub mod ack;
pub mod checkpoint;
pub mod follow;
pub mod observe;
pub mod primary;
pub mod store;
pub mod tail;
pub mod wiped;

pub use primary::{PrimaryPlan, Replicator};
