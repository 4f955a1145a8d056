//! Whether a store really creates conditionally: writers on an object store are fenced by
//! create-once WAL units (and, without a separate commit store, manifest versions). A
//! store that ignores `If-None-Match` overwrites instead, and a deposed writer could then
//! replace the new owner's WAL claim and acknowledge writes nobody replays.

use bytes::Bytes;

use super::Storage;
use crate::error::{Error, Result};
use crate::paths;

/// Create a probe object twice with different bytes: the second create must report that
/// the object exists, and the first bytes must still be there. Refuses (naming the store
/// and why) otherwise. The probe is deleted afterwards.
pub fn check_conditional_create(storage: &dyn Storage) -> Result<()> {
    let probe = paths::fence_probe(rand::random());
    let first = Bytes::from_static(b"vecshard conditional-create probe: first");
    let second = Bytes::from_static(b"vecshard conditional-create probe: second");
    let outcome = probe_with(storage, &probe, first, second);
    if let Err(e) = storage.delete(&probe) {
        tracing::warn!(location = storage.location(), %probe, error = %e, "cannot delete the conditional-create probe");
    }
    outcome
}

fn probe_with(storage: &dyn Storage, probe: &str, first: Bytes, second: Bytes) -> Result<()> {
    let refuse = |what: &str| {
        Error::invalid(format!(
            "storage {} cannot fence writers: {what} at {}/{probe}. WAL units (and manifest \
             versions kept in the store) are created only if absent, so that a deposed writer's \
             next append fails; on this store it would overwrite the new owner's WAL unit and \
             still acknowledge writes that are then lost. A DynamoDB commit store fences \
             manifest versions only, not WAL units. Use a store with conditional writes \
             (If-None-Match: *) for writers; read-only opens work on any store",
            storage.location(),
            storage.location()
        ))
    };
    if !storage.put_if_absent(probe, first.clone())? {
        return Err(refuse(
            "a conditional create of a new object reported it as existing",
        ));
    }
    if storage.put_if_absent(probe, second)? {
        return Err(refuse(
            "a second conditional create of the same object succeeded instead of failing",
        ));
    }
    if storage.get(probe)? != first {
        return Err(refuse(
            "a failed conditional create still replaced the object's bytes",
        ));
    }
    Ok(())
}
