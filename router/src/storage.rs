//! Where a collection's shards may live: `local` (each shard on its node's disk), or an
//! object-store URL under one of the prefixes the cluster allows
//! (`router.allowed_storage`). Only object stores that every node reaches (S3) qualify: a
//! shard there can move to another node, so a `memory://` or `file://` location — private
//! to one process or one machine — would be reopened empty elsewhere. Clients never choose
//! a location outside the allow-list, so they cannot make nodes write anywhere else.

use crate::error::{Error, Result};

use vecshard_model::storage_url::is_under as under;
pub use vecshard_model::storage_url::{SHARED_SCHEMES, is_shared, parse as parse_url};

/// A collection's storage as stored in the shard map: `local` (also for an empty value),
/// or an object-store URL under one of `allowed`. Anything else is a client error that
/// names the field and the allowed values.
pub fn collection_storage(storage: &str, allowed: &[String]) -> Result<String> {
    let s = storage.trim();
    if s.is_empty() || s == "local" {
        return Ok("local".into());
    }
    let allowed_values = if allowed.is_empty() {
        "this cluster allows only \"local\" (router.allowed_storage is empty; an operator can \
         allow object-store prefixes such as \"s3://bucket/prefix\")"
            .to_string()
    } else {
        format!(
            "use \"local\" or a URL under one of router.allowed_storage: {}",
            allowed.join(", ")
        )
    };
    let refuse = |why: String| {
        Error::invalid(format!(
            "storage {s:?} is not allowed: it {why}; {allowed_values}"
        ))
    };
    let url = parse_url(s).map_err(refuse)?;
    if !allowed.iter().any(|p| under(&url, p)) {
        return Err(refuse("is outside the allowed prefixes".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_urls_under_an_allowed_prefix_pass() {
        let allowed = vec!["s3://vecshard/tenant-a".to_string()];
        for (input, want) in [
            ("", "local"),
            ("local", "local"),
            ("s3://vecshard/tenant-a", "s3://vecshard/tenant-a"),
            ("s3://vecshard/tenant-a/", "s3://vecshard/tenant-a"),
            ("s3://vecshard/tenant-a/x/y", "s3://vecshard/tenant-a/x/y"),
        ] {
            assert_eq!(
                collection_storage(input, &allowed).unwrap(),
                want,
                "{input}"
            );
        }
        for bad in [
            "s3://vecshard/tenant-ab",
            "s3://vecshard",
            "s3://vecshard/other",
            "s3://vecshard/tenant-a/../b",
            "s3://vecshard/tenant-a//b",
            "s3://vecshard/tenant-a/./b",
            "s3://vecshard/tenant-a/a b",
            "memory://vecshard/tenant-a",
            "file:///vecshard/tenant-a",
            "gs://vecshard/tenant-a",
            "/var/lib/x",
            "s3://",
        ] {
            let e = collection_storage(bad, &allowed).unwrap_err();
            let m = e.message();
            assert!(
                m.contains("storage") && m.contains(bad) && m.contains("s3://vecshard/tenant-a"),
                "{bad}: {m}"
            );
        }
        let e = collection_storage("s3://vecshard/x", &[]).unwrap_err();
        assert!(
            e.message().contains("router.allowed_storage is empty"),
            "{e}"
        );
    }

    #[test]
    fn shared_schemes() {
        assert!(is_shared("s3://b/p"));
        for s in ["local", "memory://b", "file:///d", "gs://b/p", ""] {
            assert!(!is_shared(s), "{s}");
        }
    }
}
