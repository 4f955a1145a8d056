//! Where backups may go: the router's `backup_locations` allow-list. Every backup
//! operation (create, list, describe, restore, delete) checks its location here before
//! it touches anything, so a client with an admin key still cannot make the router and
//! the nodes write, read or delete outside the places the operator listed. An empty list
//! refuses every location (backups are off), as an empty `allowed_storage` allows no
//! object store.

use vecshard_model::storage_url::is_under;

use super::store;
use crate::core::Core;
use crate::error::{Error, Result};

/// A location as compared: `file:///x` and `/x` are the same directory.
fn comparable(url: &str) -> &str {
    url.strip_prefix("file://").unwrap_or(url)
}

/// `location` normalised (see [`store::parse`]) if it equals one of `allowed` (normalised
/// the same way) or lies below one at a `/` boundary; otherwise an INVALID_ARGUMENT
/// error naming the location and the setting.
pub fn check(location: &str, allowed: &[String]) -> Result<String> {
    let url = store::parse(location)?;
    if allowed
        .iter()
        .any(|a| is_under(comparable(&url), comparable(a)))
    {
        return Ok(url);
    }
    Err(Error::invalid(if allowed.is_empty() {
        format!(
            "backup location {url} is not allowed: backups are off on this router \
             (router.backup_locations is empty; an operator lists where backups may go, \
             such as \"s3://bucket/backups\" or \"/var/backups/vecshard\")"
        )
    } else {
        format!(
            "backup location {url} is not allowed: it is outside router.backup_locations ({})",
            allowed.join(", ")
        )
    }))
}

impl Core {
    /// `location` normalised, if `router.backup_locations` allows it.
    pub fn backup_location(&self, location: &str) -> Result<String> {
        check(location, &self.cfg.backup_prefixes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_inside_the_list_pass_and_others_are_named() {
        let allowed: Vec<String> = ["s3://bucket/backups", "/var/b", "file:///srv/x"]
            .map(String::from)
            .into();
        for ok in [
            "s3://bucket/backups",
            "s3://bucket/backups/a/b/",
            "/var/b/one",
            "file:///var/b/one",
            "/srv/x",
            "/srv/x/y",
        ] {
            assert!(check(ok, &allowed).is_ok(), "{ok}");
        }
        for bad in [
            "s3://bucket/backupsX",
            "s3://bucket",
            "s3://other/backups",
            "/var/bb",
            "/var",
            "file:///etc",
        ] {
            let e = check(bad, &allowed).unwrap_err();
            let m = e.message();
            assert!(
                m.contains("router.backup_locations") && m.contains(bad.trim_end_matches('/')),
                "{bad}: {m}"
            );
        }
        // A malformed location says what is wrong with it, not that it is outside.
        let e = check("relative/x", &allowed).unwrap_err();
        assert!(e.message().contains("not absolute"), "{e:?}");
        let e = check("/var/b/x", &[]).unwrap_err();
        assert!(e.message().contains("backups are off"), "{e:?}");
    }
}
