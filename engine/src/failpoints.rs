//! Named fail points at the steps where a crash or a lost race matters, for tests that must
//! stop between two steps instead of racing them.
//!
//! With the `failpoints` feature (tests only: the engine's own dev-dependencies enable it,
//! release and default builds compile every point to nothing) each point is a
//! [`fail`](https://docs.rs/fail) fail point. Configure one with `fail::cfg(NAME, "...")`
//! or `fail::cfg_callback(NAME, f)` inside a `fail::FailScenario` (fail points are
//! process-global: the scenario serialises tests of one process and clears them after).
//! Every point accepts `return` (the step fails with an `Io` error naming the point, as if
//! the storage had failed there), `panic`, `pause`, `sleep(ms)` and callbacks.

/// Before a WAL unit is created (a local file, or an object-store unit with its frames,
/// including a writer's claim unit at open).
pub const WAL_CREATE_BEFORE: &str = "wal-create-before";
/// After a WAL unit was created (and, on local disk, its header synced).
pub const WAL_CREATE_AFTER: &str = "wal-create-after";
/// Before a new segment file (flush or compaction) is written to storage.
pub const SEGMENT_UPLOAD_BEFORE: &str = "segment-upload-before";
/// After a segment file was written, before any manifest references it.
pub const SEGMENT_UPLOAD_AFTER: &str = "segment-upload-after";
/// Before the next manifest version is created (the commit point of flushes, compactions
/// and writer claims).
pub const MANIFEST_CREATE_BEFORE: &str = "manifest-create-before";
/// After the next manifest version was created, before the handle uses it (an injected
/// error here stops the handle, as an unknown commit outcome does).
pub const MANIFEST_CREATE_AFTER: &str = "manifest-create-after";
/// Before a flush deletes WAL units its committed manifest covers.
pub const WAL_DELETE_BEFORE: &str = "wal-delete-before";
/// After those WAL units were deleted.
pub const WAL_DELETE_AFTER: &str = "wal-delete-after";
/// A compaction committed its manifest and is about to publish the new view (gets and
/// searches must keep answering meanwhile).
pub const COMPACTION_PUBLISH_BEFORE: &str = "compaction-publish-before";
/// A compaction published its new view.
pub const COMPACTION_PUBLISH_AFTER: &str = "compaction-publish-after";
/// A checkpoint pinned its files and is about to copy them.
pub const CHECKPOINT_COPY_BEFORE: &str = "checkpoint-copy-before";
/// A checkpoint copied its segments and is about to create its manifest.
pub const CHECKPOINT_MANIFEST_BEFORE: &str = "checkpoint-manifest-before";

/// Every fail point, for documentation and tests.
pub const ALL: &[&str] = &[
    WAL_CREATE_BEFORE,
    WAL_CREATE_AFTER,
    SEGMENT_UPLOAD_BEFORE,
    SEGMENT_UPLOAD_AFTER,
    MANIFEST_CREATE_BEFORE,
    MANIFEST_CREATE_AFTER,
    WAL_DELETE_BEFORE,
    WAL_DELETE_AFTER,
    COMPACTION_PUBLISH_BEFORE,
    COMPACTION_PUBLISH_AFTER,
    CHECKPOINT_COPY_BEFORE,
    CHECKPOINT_MANIFEST_BEFORE,
];

/// The error a `return` action makes a step fail with.
#[cfg(feature = "failpoints")]
pub(crate) fn injected(name: &str, arg: Option<String>) -> crate::Error {
    let msg = match arg {
        Some(a) => format!("fail point {name}: {a}"),
        None => format!("fail point {name}"),
    };
    crate::Error::new(crate::ErrorKind::Io, msg)
}

/// `fail_point!(NAME)` in a function returning `crate::Result<_>`: with the `failpoints`
/// feature, runs the point's configured action (`return` makes the function return the
/// injected error); without it, nothing.
macro_rules! fail_point {
    ($name:expr) => {
        #[cfg(feature = "failpoints")]
        fail::fail_point!($name, |arg| Err($crate::failpoints::injected($name, arg)));
        #[cfg(not(feature = "failpoints"))]
        let _ = $name;
    };
}
pub(crate) use fail_point;

/// Fail point `name` as a value: `Err` when its action is `return` (for steps after which
/// an error must also stop the handle).
pub(crate) fn check(name: &str) -> crate::Result<()> {
    fail_point!(name);
    Ok(())
}
