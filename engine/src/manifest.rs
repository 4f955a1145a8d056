//! The manifest: which segments make up the shard, how far the WAL is covered, and the
//! writer epoch. Versions are immutable and created once through a [`CommitStore`]; the
//! highest version is current.
//!
//! Encoding: `"VSHDMAN1"`, format version u32, body length u32, CRC32C u32, then the body
//! as JSON (small, and readable when debugging).
//! - Format 1: the CRC covers the body; nothing follows it.
//! - Format 2 (written now; 1 is still read): the body is followed by the **deletion
//!   vectors** — u32 count, then per segment u64 id, u32 length and a serialized roaring
//!   bitmap of its dead rows — and the CRC covers body and vectors.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::commit::CommitStore;
use crate::error::{Error, ErrorKind, Result};
use crate::options::ShardSpec;

const MAGIC: &[u8; 8] = b"VSHDMAN1";
const FORMAT_VERSION: u32 = 2;
/// The first format, without deletion vectors.
const FORMAT_V1: u32 = 1;
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
    /// Format 2: bytes from the start of the directory to the end of the file, so that an
    /// open reads the directory in the same round as the header (a 1M-row segment's is
    /// 13 MB, far past the 64 KiB read from the tail otherwise). 0: not known (written
    /// before this field, or format 1); not written then.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tail_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// Deletion vectors (format 2): for each segment with dead rows, the rows deleted or
    /// superseded by operations at or before `flushed_seq`; a segment not listed has none.
    /// `None`: not recorded (a format-1 version, or a commit that could not see every
    /// segment's marks); readers then rebuild them from the keys of every segment.
    #[serde(skip)]
    pub deletes: Option<BTreeMap<u64, RoaringBitmap>>,
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
            deletes: Some(BTreeMap::new()),
        }
    }

    pub(crate) fn encode(&self) -> Bytes {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut rest = body.clone();
        encode_deletes(self.deletes.as_ref(), &mut rest);
        let mut out = Vec::with_capacity(HEADER_LEN + rest.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&rest).to_le_bytes());
        out.extend_from_slice(&rest);
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
        if version != FORMAT_VERSION && version != FORMAT_V1 {
            return Err(Error::corrupt(
                name,
                format!("unsupported manifest format version {version}"),
            ));
        }
        let body = data
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or_else(|| Error::corrupt(name, "manifest truncated"))?;
        let rest = &data[HEADER_LEN..];
        let whole = version != FORMAT_V1 || data.len() == HEADER_LEN + len;
        if !whole || crc32c::crc32c(rest) != crc {
            return Err(Error::corrupt(name, "manifest checksum mismatch"));
        }
        let mut m: Manifest = serde_json::from_slice(body)
            .map_err(|e| Error::corrupt(name, format!("manifest body: {e}")))?;
        m.deletes = match version {
            FORMAT_V1 => None,
            _ => decode_deletes(name, &rest[len..])?,
        };
        Ok(m)
    }
}

/// The count that says "deletion vectors not recorded".
const NOT_RECORDED: u32 = u32::MAX;

/// Append the deletion vectors of format 2 ([`NOT_RECORDED`] when there are none).
fn encode_deletes(deletes: Option<&BTreeMap<u64, RoaringBitmap>>, out: &mut Vec<u8>) {
    let Some(deletes) = deletes else {
        out.extend_from_slice(&NOT_RECORDED.to_le_bytes());
        return;
    };
    out.extend_from_slice(&(deletes.len() as u32).to_le_bytes());
    for (id, dead) in deletes {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(dead.serialized_size() as u32).to_le_bytes());
        // Writing into a Vec cannot fail.
        let _ = dead.serialize_into(&mut *out);
    }
}

/// The deletion vectors after a format-2 body.
fn decode_deletes(name: &str, mut data: &[u8]) -> Result<Option<BTreeMap<u64, RoaringBitmap>>> {
    let bad = |what: &str| Error::corrupt(name, format!("manifest deletion vectors: {what}"));
    let mut take = |n: usize| -> Result<&[u8]> {
        let (head, tail) = data.split_at_checked(n).ok_or_else(|| bad("truncated"))?;
        data = tail;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad("truncated"))?);
    if count == NOT_RECORDED {
        return match data.is_empty() {
            true => Ok(None),
            false => Err(bad("trailing bytes")),
        };
    }
    let mut out = BTreeMap::new();
    for _ in 0..count {
        let id = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad("truncated"))?);
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad("truncated"))?);
        let dead = RoaringBitmap::deserialize_from(take(len as usize)?)
            .map_err(|e| bad(&format!("segment {id}: {e}")))?;
        if out.insert(id, dead).is_some() {
            return Err(bad(&format!("segment {id} listed twice")));
        }
    }
    if !data.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(Some(out))
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
            tail_bytes: 0,
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

    #[test]
    fn a_segments_tail_length_is_kept_and_optional() {
        let mut m = Manifest::new(ShardSpec::new(8, Metric::L2));
        m.segments.push(SegmentMeta {
            id: 3,
            rows: 10,
            bytes: 100_000,
            max_seq: 9,
            tail_bytes: 4_096,
        });
        m.segments.push(SegmentMeta {
            id: 4,
            rows: 10,
            bytes: 100,
            max_seq: 9,
            tail_bytes: 0,
        });
        assert_eq!(Manifest::decode("m", &m.encode()).unwrap(), m);
        let body = serde_json::to_string(&m.segments).unwrap();
        assert_eq!(body.matches("tail_bytes").count(), 1, "{body}");
        // A manifest written before the field reads as "not known".
        let old: SegmentMeta =
            serde_json::from_str(r#"{"id":1,"rows":2,"bytes":3,"max_seq":4}"#).unwrap();
        assert_eq!(old.tail_bytes, 0);
    }

    fn with_segments() -> Manifest {
        let mut m = Manifest::new(ShardSpec::new(8, Metric::L2));
        for id in [3, 5] {
            m.segments.push(SegmentMeta {
                id,
                rows: 100_000,
                bytes: 100,
                max_seq: 9,
                tail_bytes: 0,
            });
        }
        m
    }

    #[test]
    fn deletion_vectors_round_trip() {
        let mut m = with_segments();
        let dead: RoaringBitmap = (0..70_000).step_by(3).chain([99_999]).collect();
        m.deletes = Some(BTreeMap::from([(5, dead)]));
        let bytes = m.encode();
        assert_eq!(&bytes[8..12], &2u32.to_le_bytes(), "written as format 2");
        assert_eq!(Manifest::decode("m", &bytes).unwrap(), m);
        // Not recorded stays distinct from "no dead rows".
        for deletes in [None, Some(BTreeMap::new())] {
            m.deletes = deletes;
            assert_eq!(Manifest::decode("m", &m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn damaged_deletion_vectors_are_named() {
        let mut m = with_segments();
        m.deletes = Some(BTreeMap::from([(3, (10..20).collect())]));
        let bytes = m.encode();
        // A flipped bit anywhere in the vectors fails the checksum.
        let mut b = bytes.to_vec();
        let last = b.len() - 3;
        b[last] ^= 1;
        let err = Manifest::decode("manifest/9", &b).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.to_string().contains("manifest/9"), "{err}");
        // Bytes that pass the checksum but do not parse: named as deletion vectors.
        let body_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let mut rest = bytes[HEADER_LEN..HEADER_LEN + body_len].to_vec();
        rest.extend_from_slice(&1u32.to_le_bytes());
        rest.extend_from_slice(&3u64.to_le_bytes());
        rest.extend_from_slice(&1000u32.to_le_bytes());
        let mut forged = bytes[..16].to_vec();
        forged.extend_from_slice(&crc32c::crc32c(&rest).to_le_bytes());
        forged.extend_from_slice(&rest);
        let err = Manifest::decode("manifest/9", &forged).unwrap_err();
        assert!(err.to_string().contains("deletion vectors"), "{err}");
    }

    /// Format-1 versions (every shard before deletion vectors) still open, without
    /// vectors: a frozen one from `tests/data/shard-v1`, and one encoded here as v1 did.
    #[test]
    fn format_1_is_still_read() {
        let golden = include_bytes!("../tests/data/shard-v1/manifest/00000000000000000004");
        assert_eq!(&golden[8..12], &1u32.to_le_bytes());
        let m = Manifest::decode("manifest/4", golden).unwrap();
        assert_eq!(m.deletes, None);
        assert!(!m.segments.is_empty());

        let mut m = with_segments();
        m.deletes = None;
        let body = serde_json::to_vec(&m).unwrap();
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        v1.extend_from_slice(&body);
        assert_eq!(Manifest::decode("m", &v1).unwrap(), m);
        v1.push(0);
        assert!(
            Manifest::decode("m", &v1).is_err(),
            "v1 has nothing after its body"
        );
    }
}
