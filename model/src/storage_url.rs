//! Object-store URLs a collection's shards may live under: the one check the router (a
//! collection's `storage`) and the node (`cluster.allowed_storage`, each assignment) apply.
//! Only object stores every node reaches qualify: a `memory://` or `file://` location is
//! private to one process or machine, so a shard there would reopen empty elsewhere.

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
/// `/`, or why it is not one (a phrase that follows "it", e.g. "has bucket …").
pub fn parse(url: &str) -> Result<String, String> {
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

/// Whether `url` lies under `prefix` (both as returned by [`parse`]): equal, or below it at
/// a `/` boundary (`s3://b/ab` is not under `s3://b/a`).
pub fn is_under(url: &str, prefix: &str) -> bool {
    url == prefix
        || url
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_prefixes() {
        for (input, want) in [
            ("s3://bucket", Ok("s3://bucket")),
            ("s3://bucket/a/b/", Ok("s3://bucket/a/b")),
            ("s3://bucket/a_b.c-d", Ok("s3://bucket/a_b.c-d")),
            ("bucket/a", Err("is not an object-store URL")),
            ("file:///tmp/x", Err("has scheme file://")),
            ("memory://x", Err("has scheme memory://")),
            ("s3://BUCKET/a", Err("has bucket \"BUCKET\"")),
            ("s3://ab", Err("has bucket \"ab\"")),
            ("s3://bucket/a//b", Err("has path segment \"\"")),
            ("s3://bucket/../b", Err("has path segment \"..\"")),
            ("s3://bucket/a b", Err("has path segment \"a b\"")),
        ] {
            match (parse(input), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{input}"),
                (Err(got), Err(w)) => assert!(got.starts_with(w), "{input}: {got}"),
                (got, w) => panic!("{input}: got {got:?}, want {w:?}"),
            }
        }
        assert!(is_shared("s3://b/x") && !is_shared("file:///x") && !is_shared("local"));
        assert!(is_under("s3://b/a", "s3://b/a") && is_under("s3://b/a/x", "s3://b/a"));
        assert!(!is_under("s3://b/ab", "s3://b/a") && !is_under("s3://b", "s3://b/a"));
    }
}
