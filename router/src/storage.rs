//! Where a collection's shards may live: `local` (each shard on its node's disk), or an
//! object-store URL under one of the prefixes the cluster allows
//! (`router.allowed_storage`). Only object stores that every node reaches (S3) qualify: a
//! shard there can move to another node, so a `memory://` or `file://` location — private
//! to one process or one machine — would be reopened empty elsewhere. Clients never choose
//! a location outside the allow-list, so they cannot make nodes write anywhere else.

use crate::error::{Error, Result};

/// URL schemes of object stores that every node shares.
pub const SHARED_SCHEMES: &[&str] = &["s3"];

/// Whether `storage` names a shared object store (its shards may move between nodes).
pub fn is_shared(storage: &str) -> bool {
    storage
        .split_once("://")
        .is_some_and(|(scheme, _)| SHARED_SCHEMES.contains(&scheme))
}

/// Check an object-store URL: a shared scheme, a bucket, and path segments of letters,
/// digits, `.`, `_` and `-` (no empty, `.` or `..` segment). Returns it without a trailing
/// `/`, or why it is not one.
pub fn parse_url(url: &str) -> std::result::Result<String, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("is not an object-store URL (scheme://bucket/prefix)".into());
    };
    if !SHARED_SCHEMES.contains(&scheme) {
        return Err(format!(
            "has scheme {scheme}://, which is not an object store shared by the nodes (supported: {})",
            SHARED_SCHEMES
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut segments = rest.split('/');
    let bucket = segments.next().unwrap_or_default();
    if bucket.len() < 3
        || bucket.len() > 63
        || !bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(format!(
            "has bucket {bucket:?}; a bucket name has 3 to 63 lower-case letters, digits, '.' and '-'"
        ));
    }
    if let Some(bad) = segments.find(|s| {
        s.is_empty()
            || *s == "."
            || *s == ".."
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    }) {
        return Err(format!(
            "has path segment {bad:?}; segments are non-empty letters, digits, '.', '_' and '-' (not '.' or '..')"
        ));
    }
    Ok(format!("{scheme}://{rest}"))
}

/// Whether `url` (checked by [`parse_url`]) lies under the allowed `prefix` (also
/// checked): equal, or below it at a `/` boundary.
fn under(url: &str, prefix: &str) -> bool {
    url == prefix
        || url
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

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
