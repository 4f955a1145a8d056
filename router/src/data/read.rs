//! Gets (by key, from each key's shard owner) and scans (shard by shard, with a cursor
//! that holds the shard number and the last key returned; no state on the router).

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Instant;

use vecshard_proto::internal::v1 as pi;
use vecshard_proto::v1 as pb;

use super::call::{Serve, WhenDown, shard_failures};
use super::write::by_shard;
use crate::core::Core;
use crate::error::{Error, Result};
use vecshard_model::{limits, proto as model_pb, validate};

/// Keys per Get call to a node (bounds the answer's size).
const GET_CHUNK: usize = 1000;

impl Core {
    /// Fetch points by key, in the order of the keys; missing keys are left out.
    pub async fn get(&self, req: pb::GetRequest, deadline: Instant) -> Result<pb::GetResponse> {
        let view = self.view();
        let coll = Core::collection(&view, &req.collection)?;
        validate::batch_len(req.keys.len(), "get")?;
        model_pb::keys_from_proto(&req.keys)?;
        let part = self.partitioner(coll.spec.shard_count);
        let groups = by_shard(req.keys.clone(), |k| Some(k), &part);
        let name = &req.collection;
        let fetches = groups.into_iter().map(|(shard, keys)| async move {
            let mut found = Vec::new();
            for chunk in keys.chunks(GET_CHUNK) {
                let resp = self
                    .call_shard(
                        name,
                        shard,
                        Serve::Read,
                        WhenDown::Wait,
                        deadline,
                        |mut c, target, left| {
                            let mut r = tonic::Request::new(pi::GetRequest {
                                target: Some(target),
                                keys: chunk.to_vec(),
                            });
                            r.set_timeout(left);
                            async move { c.get(r).await }
                        },
                    )
                    .await
                    .map_err(|e| (shard, e))?;
                found.extend(resp.points);
            }
            Ok(found)
        });
        let mut by_key: HashMap<pb::Key, pb::Point> = HashMap::new();
        let mut failed = Vec::new();
        for r in futures::future::join_all(fetches).await {
            match r {
                Ok(points) => {
                    by_key.extend(points.into_iter().filter_map(|p| Some((p.key.clone()?, p))))
                }
                Err(f) => failed.push(f),
            }
        }
        if !failed.is_empty() {
            return Err(shard_failures(name, "get", failed));
        }
        let points = req
            .keys
            .iter()
            .filter_map(|k| by_key.get(k).cloned())
            .collect();
        Ok(pb::GetResponse { points })
    }

    /// One page of a scan.
    pub async fn scan(&self, req: pb::ScanRequest, deadline: Instant) -> Result<pb::ScanResponse> {
        let view = self.view();
        let coll = Core::collection(&view, &req.collection)?;
        let limit = match req.limit {
            0 => limits::DEFAULT_SCAN_LIMIT,
            l if l > limits::MAX_SCAN_LIMIT => {
                return Err(Error::invalid(format!(
                    "scan limit must be at most {}, got {l}",
                    limits::MAX_SCAN_LIMIT
                )));
            }
            l => l,
        };
        let (mut shard, mut after) = decode_cursor(&req.cursor)?;
        let shards = coll.spec.shard_count;
        if shard >= shards {
            return Err(Error::invalid(format!(
                "malformed cursor: collection {:?} has {shards} shards",
                req.collection
            )));
        }
        let name = &req.collection;
        loop {
            let page = self
                .call_shard(
                    name,
                    shard,
                    Serve::Read,
                    WhenDown::Wait,
                    deadline,
                    |mut c, target, left| {
                        let mut r = tonic::Request::new(pi::ScanRequest {
                            target: Some(target),
                            start_after: after.clone(),
                            limit,
                        });
                        r.set_timeout(left);
                        async move { c.scan(r).await }
                    },
                )
                .await
                .map_err(|e| e.context(format!("scan of shard {shard} of {name:?}")))?;
            let next = match page.next_start_after {
                Some(k) => Some((shard, Some(k))),
                None if shard + 1 < shards => Some((shard + 1, None)),
                None => None,
            };
            // Skip empty shards instead of returning empty pages.
            if page.points.is_empty()
                && let Some((s, a)) = &next
                && a.is_none()
            {
                shard = *s;
                after = None;
                continue;
            }
            return Ok(pb::ScanResponse {
                points: page.points,
                next_cursor: next
                    .map(|(s, a)| encode_cursor(s, a.as_ref()))
                    .unwrap_or_default(),
            });
        }
    }
}

/// `<shard>` to start a shard, `<shard>:i:<int>` or `<shard>:s:<hex of UTF-8>` to continue
/// after a key.
pub fn encode_cursor(shard: u32, after: Option<&pb::Key>) -> String {
    let mut c = shard.to_string();
    match after.and_then(|k| k.kind.as_ref()) {
        None => {}
        Some(pb::key::Kind::Int(v)) => {
            let _ = write!(c, ":i:{v}");
        }
        Some(pb::key::Kind::Str(s)) => {
            c.push_str(":s:");
            for b in s.as_bytes() {
                let _ = write!(c, "{b:02x}");
            }
        }
    }
    c
}

/// The shard and key of a cursor; the empty cursor starts at shard 0.
pub fn decode_cursor(c: &str) -> Result<(u32, Option<pb::Key>)> {
    if c.is_empty() {
        return Ok((0, None));
    }
    let bad = || {
        Error::invalid(format!(
            "malformed cursor {c:?}; pass back a next_cursor unchanged"
        ))
    };
    let mut parts = c.splitn(3, ':');
    let shard: u32 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let kind = match (parts.next(), parts.next()) {
        (None, None) => return Ok((shard, None)),
        (Some("i"), Some(v)) => pb::key::Kind::Int(v.parse().map_err(|_| bad())?),
        (Some("s"), Some(hex)) => {
            if hex.len() % 2 != 0 {
                return Err(bad());
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(hex.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())
                })
                .collect::<Result<Vec<u8>>>()?;
            pb::key::Kind::Str(String::from_utf8(bytes).map_err(|_| bad())?)
        }
        _ => return Err(bad()),
    };
    Ok((shard, Some(pb::Key { kind: Some(kind) })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let keys = [
            None,
            Some(pb::Key {
                kind: Some(pb::key::Kind::Int(u64::MAX)),
            }),
            Some(pb::Key {
                kind: Some(pb::key::Kind::Str("a:b/é".into())),
            }),
            Some(pb::Key {
                kind: Some(pb::key::Kind::Str(String::new())),
            }),
        ];
        for k in keys {
            let c = encode_cursor(7, k.as_ref());
            assert_eq!(decode_cursor(&c).unwrap(), (7, k.clone()), "{c}");
        }
        assert_eq!(decode_cursor("").unwrap(), (0, None));
        for bad in [
            "x", "1:i:", "1:i:-3", "1:s:abc", "1:s:zz", "1:q:1", "1:s:ff",
        ] {
            assert!(
                decode_cursor(bad)
                    .unwrap_err()
                    .message()
                    .contains("malformed cursor"),
                "{bad}"
            );
        }
    }
}
