//! The manifest: which segments make up the shard, how far the WAL is covered, and the
//! writer epoch. Versions are immutable and created once through a [`CommitStore`]; the
//! highest version is current.
//!
//! Encoding: `"VSHDMAN1"`, format version u32, body length u32, CRC32C of the body u32,
//! then the body as JSON (small, and readable when debugging).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::commit::CommitStore;
use crate::error::{Error, ErrorKind, Result};
use crate::options::ShardSpec;

const MAGIC: &[u8; 8] = b"VSHDMAN1";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 20;

/// One segment as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Segment id (`segments/<id>`).
    pub id: u64,
    /// Rows stored (including superseded ones).
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// Highest sequence number in the segment.
    pub max_seq: u64,
}

/// A file no manifest references any more, kept until `since_ms + grace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obsolete {
    /// Path inside the shard root.
    pub path: String,
    /// When it became unreferenced (ms since the Unix epoch).
    pub since_ms: u64,
}

/// The body of one manifest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The shard's fixed properties.
    pub spec: ShardSpec,
    /// Epoch of the writer that created this version; only grows.
    pub writer_epoch: u64,
    /// Live segments.
    pub segments: Vec<SegmentMeta>,
    /// Every operation with a sequence number at or below this is in `segments`.
    pub flushed_seq: u64,
    /// WAL units below this number are fully covered by segments.
    pub wal_min_unit: u64,
    /// Files awaiting garbage collection.
    #[serde(default)]
    pub obsolete: Vec<Obsolete>,
    /// When this version was written (ms since the Unix epoch).
    pub written_ms: u64,
    /// Random per writer handle: two writers never produce byte-identical versions, so a
    /// retried create that finds identical bytes really found its own.
    #[serde(default)]
    pub writer_nonce: u64,
}

impl Manifest {
    pub(crate) fn new(spec: ShardSpec) -> Self {
        Manifest {
            spec,
            writer_epoch: 0,
            segments: Vec::new(),
            flushed_seq: 0,
            wal_min_unit: 0,
            obsolete: Vec::new(),
            written_ms: now_ms(),
            writer_nonce: rand::random(),
        }
    }

    pub(crate) fn encode(&self) -> Bytes {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    pub(crate) fn decode(name: &str, data: &[u8]) -> Result<Manifest> {
        if data.len() < HEADER_LEN || &data[..8] != MAGIC {
            return Err(Error::corrupt(
                name,
                "not a vecshard manifest (bad magic or too short)",
            ));
        }
        let word =
            |at: usize| u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let (version, len, crc) = (word(8), word(12) as usize, word(16));
        if version != FORMAT_VERSION {
            return Err(Error::corrupt(
                name,
                format!("unsupported manifest format version {version}"),
            ));
        }
        let body = data
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or_else(|| Error::corrupt(name, "manifest truncated"))?;
        if data.len() != HEADER_LEN + len || crc32c::crc32c(body) != crc {
            return Err(Error::corrupt(name, "manifest checksum mismatch"));
        }
        serde_json::from_slice(body)
            .map_err(|e| Error::corrupt(name, format!("manifest body: {e}")))
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Read the current (highest) version; `None` if the shard has none.
pub(crate) fn load_latest(
    store: &dyn CommitStore,
    location: &str,
) -> Result<Option<(u64, Manifest)>> {
    // A version can be listed and then garbage-collected before we read it (a writer moved
    // on); retry with the newer listing.
    for _ in 0..10 {
        let Some(version) = store.latest_version()? else {
            return Ok(None);
        };
        match store.read(version) {
            Ok(data) => {
                return Ok(Some((
                    version,
                    Manifest::decode(&manifest_name(location, version), &data)?,
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(
        ErrorKind::Io,
        format!("{location}: manifest kept changing while being read"),
    ))
}

pub(crate) fn manifest_name(location: &str, version: u64) -> String {
    format!("{location}/{}", crate::paths::manifest(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Metric;

    #[test]
    fn round_trip_and_corruption() {
        let mut m = Manifest::new(ShardSpec::new(8, Metric::Cosine));
        m.segments.push(SegmentMeta {
            id: 3,
            rows: 10,
            bytes: 100,
            max_seq: 9,
        });
        let bytes = m.encode();
        assert_eq!(Manifest::decode("m", &bytes).unwrap(), m);
        for i in [0, 9, 13, 17, 25, bytes.len() - 1] {
            let mut b = bytes.to_vec();
            b[i] ^= 0x10;
            let err = Manifest::decode("manifest/7", &b).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupt);
            assert!(err.to_string().contains("manifest/7"));
        }
        assert!(Manifest::decode("m", &bytes[..bytes.len() - 1]).is_err());
    }
}
