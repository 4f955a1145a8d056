//! The only place that builds file and object keys inside a shard's root.
//!
//! ```text
//! LOCK                       local only: exclusive writer lock
//! manifest/<20-digit id>     immutable manifest versions; the highest is current
//! wal/<20-digit unit>        write-ahead log units
//! segments/<20-digit id>     immutable segment files
//! .tmp-fence-probe-<hex>     object stores: a writer's check of conditional creates
//! ```

/// The writer lock file (local disk only).
pub const LOCK: &str = "LOCK";
/// Directory of manifest versions.
pub const MANIFEST_DIR: &str = "manifest";
/// Directory of WAL units.
pub const WAL_DIR: &str = "wal";
/// Directory of segment files.
pub const SEGMENT_DIR: &str = "segments";
/// Prefix of temporary files, never listed.
pub const TEMP_PREFIX: &str = ".tmp-";

/// `dir/name`, or `name` when `dir` is empty.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The path of manifest version `id`.
pub fn manifest(id: u64) -> String {
    format!("{MANIFEST_DIR}/{id:020}")
}

/// The path of WAL unit `unit`.
pub fn wal(unit: u64) -> String {
    format!("{WAL_DIR}/{unit:020}")
}

/// The path of segment `id`.
pub fn segment(id: u64) -> String {
    format!("{SEGMENT_DIR}/{id:020}")
}

/// A writer's probe of the store's conditional creates, at the root (never listed).
pub fn fence_probe(nonce: u64) -> String {
    format!("{TEMP_PREFIX}fence-probe-{nonce:016x}")
}

/// The number at the end of a listed path (`manifest/00000000000000000012` → 12); `None`
/// for anything else (temporary or foreign files).
pub fn number_of(path: &str) -> Option<u64> {
    let name = path.rsplit('/').next()?;
    if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        assert_eq!(number_of(&manifest(12)), Some(12));
        assert_eq!(number_of(&wal(u64::MAX)), Some(u64::MAX));
        assert_eq!(number_of("segments/.tmp-x"), None);
        assert_eq!(number_of("segments/00000000000000000001.del"), None);
    }
}
