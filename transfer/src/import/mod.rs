//! A file's points into vecshard, in batches, stopping on the first failure: a bad row of
//! the file or a batch refused. The error says what failed and how many points are
//! acknowledged — always the first N points of the file, so an import can be resumed from
//! point N. Progress is reported as that acknowledged prefix grows.

pub mod local;
pub mod router;
