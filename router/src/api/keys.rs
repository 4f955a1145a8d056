//! API keys with roles. A key is `read` (search, get, scan, describe, count, list,
//! cluster status), `write` (also upsert and delete) or `admin` (also create and drop
//! collections and the cluster operations), optionally limited to some collections.
//! Keys come from the configuration, an environment variable or a file; they are compared
//! in constant time. No key configured: every request passes (development).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::config::RouterConfig;
use crate::error::{Error, ErrorKind, Result};

/// What a key may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Search, get, scan, describe, count, list collections, cluster status.
    Read,
    /// Also upsert and delete points.
    Write,
    /// Also create and drop collections and change the cluster.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// One configured key (`[[router.keys]]`): exactly one of `key`, `key_env` (the name of
/// an environment variable holding it) and `key_file` (a file holding it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The key itself.
    #[serde(default)]
    pub key: String,
    /// An environment variable that holds the key.
    #[serde(default)]
    pub key_env: String,
    /// A file that holds the key (surrounding whitespace is ignored).
    #[serde(default)]
    pub key_file: String,
    /// What the key may do.
    pub role: Role,
    /// The collections it may touch; empty: all.
    #[serde(default)]
    pub collections: Vec<String>,
}

struct Entry {
    secret: Vec<u8>,
    role: Role,
    collections: Option<Arc<BTreeSet<String>>>,
}

/// The keys a router accepts.
#[derive(Default)]
pub struct Keys {
    entries: Vec<Entry>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} keys)", self.entries.len())
    }
}

/// What an authenticated request may do.
#[derive(Debug, Clone)]
pub struct Grant {
    role: Role,
    collections: Option<Arc<BTreeSet<String>>>,
}

impl Grant {
    /// Everything (no keys configured, or an in-process caller).
    pub fn all() -> Grant {
        Grant {
            role: Role::Admin,
            collections: None,
        }
    }

    /// PERMISSION_DENIED unless the key has role `need` and, when the request names a
    /// collection, may touch it. The message says which role or collection is missing.
    pub fn allow(&self, need: Role, collection: Option<&str>) -> Result<()> {
        if self.role < need {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "this API key has the {} role; this request needs the {need} role",
                    self.role
                ),
            ));
        }
        match (&self.collections, collection) {
            (Some(allowed), Some(c)) if !allowed.contains(c) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("this API key may not access collection {c:?}"),
            )),
            (Some(_), None) if need == Role::Admin => Err(Error::new(
                ErrorKind::PermissionDenied,
                "this API key is limited to some collections; this request needs an admin key for every collection",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the key is limited to some collections.
    pub fn is_scoped(&self) -> bool {
        self.collections.is_some()
    }
}

fn resolve(i: usize, spec: &KeySpec) -> Result<String> {
    let key = |k: &str| format!("router.keys[{i}].{k}");
    let given = [&spec.key, &spec.key_env, &spec.key_file]
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    if given != 1 {
        return Err(Error::invalid(format!(
            "router.keys[{i}]: set exactly one of key, key_env and key_file"
        )));
    }
    let text = if !spec.key.is_empty() {
        spec.key.clone()
    } else if !spec.key_env.is_empty() {
        std::env::var(&spec.key_env).map_err(|_| {
            Error::invalid(format!(
                "{}: environment variable {} is not set",
                key("key_env"),
                spec.key_env
            ))
        })?
    } else {
        std::fs::read_to_string(&spec.key_file)
            .map_err(|e| Error::invalid(format!("{} {}: {e}", key("key_file"), spec.key_file)))?
    };
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(Error::invalid(format!(
            "router.keys[{i}]: the key is empty"
        )));
    }
    Ok(text)
}

impl Keys {
    /// The keys of `cfg`: `api_keys` (admin, all collections) and `keys`.
    pub fn load(cfg: &RouterConfig) -> Result<Keys> {
        let mut entries = Vec::new();
        for k in &cfg.api_keys {
            if k.is_empty() {
                return Err(Error::invalid("router.api_keys: keys must not be empty"));
            }
            entries.push(Entry {
                secret: k.trim().as_bytes().to_vec(),
                role: Role::Admin,
                collections: None,
            });
        }
        for (i, spec) in cfg.keys.iter().enumerate() {
            let collections = (!spec.collections.is_empty())
                .then(|| Arc::new(spec.collections.iter().cloned().collect()));
            entries.push(Entry {
                secret: resolve(i, spec)?.into_bytes(),
                role: spec.role,
                collections,
            });
        }
        Ok(Keys { entries })
    }

    /// Keys for tests: `(key, role)` pairs over all collections.
    pub fn of(keys: &[(&str, Role)]) -> Keys {
        let entries = keys
            .iter()
            .map(|(k, role)| Entry {
                secret: k.as_bytes().to_vec(),
                role: *role,
                collections: None,
            })
            .collect();
        Keys { entries }
    }

    /// No keys: requests need none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A key with every right, for calls this router forwards to the leader.
    pub fn forwarding_key(&self) -> Option<String> {
        self.entries
            .iter()
            .find(|e| e.role == Role::Admin && e.collections.is_none())
            .map(|e| String::from_utf8_lossy(&e.secret).into_owned())
    }

    /// Who is calling, from `authorization: Bearer KEY` or `x-api-key: KEY`:
    /// UNAUTHENTICATED for a missing or unknown key.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        x_api_key: Option<&str>,
    ) -> Result<Grant> {
        if self.entries.is_empty() {
            return Ok(Grant::all());
        }
        let given = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .or(x_api_key)
            .map(str::trim);
        let Some(given) = given else {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "this router needs an API key: send `authorization: Bearer <key>` or `x-api-key: <key>`",
            ));
        };
        match self.find(given) {
            Some(e) => Ok(Grant {
                role: e.role,
                collections: e.collections.clone(),
            }),
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "the API key is not valid",
            )),
        }
    }

    /// The entry whose key is `given`, in a time that does not depend on where a guess
    /// first differs from a key: every key is compared in full with a constant-time
    /// comparison (only the lengths may show), and a match does not end the loop early.
    fn find(&self, given: &str) -> Option<&Entry> {
        let mut hit = None;
        for e in &self.entries {
            if bool::from(e.secret.as_slice().ct_eq(given.as_bytes())) {
                hit = Some(e);
            }
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn keys_authenticate_and_roles_nest() {
        let keys = Keys::of(&[("r", Role::Read), ("w", Role::Write), ("a", Role::Admin)]);
        let kind = |r: Result<Grant>| r.unwrap_err().kind();
        assert_eq!(
            kind(keys.authenticate(None, None)),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            kind(keys.authenticate(Some("Bearer nope"), None)),
            ErrorKind::Unauthenticated
        );
        let read = keys.authenticate(None, Some("r")).unwrap();
        read.allow(Role::Read, Some("c")).unwrap();
        let e = read.allow(Role::Write, Some("c")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.message().contains("needs the write role"), "{e}");
        let write = keys.authenticate(Some("Bearer w"), None).unwrap();
        write.allow(Role::Write, None).unwrap();
        assert!(
            write
                .allow(Role::Admin, None)
                .unwrap_err()
                .message()
                .contains("admin")
        );
        keys.authenticate(Some("Bearer a"), None)
            .unwrap()
            .allow(Role::Admin, None)
            .unwrap();
        assert_eq!(keys.forwarding_key().as_deref(), Some("a"));
        Keys::default()
            .authenticate(None, None)
            .unwrap()
            .allow(Role::Admin, None)
            .unwrap();
        for wrong in ["rr", "", "W", "a "] {
            let given = format!("Bearer {wrong}x");
            assert!(keys.authenticate(Some(&given), None).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn keys_come_from_the_environment_and_files_and_may_be_scoped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "from-a-file\n").unwrap();
        // SAFETY: the variable is unique to this test.
        unsafe { std::env::set_var("VECSHARD_TEST_KEY_FROM_ENV", "from-the-env") };
        let mut cfg = RouterConfig::defaults();
        let spec = |key: &str, env: &str, f: &str, role, cols: &[&str]| KeySpec {
            key: key.into(),
            key_env: env.into(),
            key_file: f.into(),
            role,
            collections: cols.iter().map(|c| c.to_string()).collect(),
        };
        cfg.keys = vec![
            spec("", "VECSHARD_TEST_KEY_FROM_ENV", "", Role::Write, &["a"]),
            spec("", "", file.to_str().unwrap(), Role::Read, &[]),
        ];
        let keys = Keys::load(&cfg).unwrap();
        let scoped = keys.authenticate(None, Some("from-the-env")).unwrap();
        scoped.allow(Role::Write, Some("a")).unwrap();
        let e = scoped.allow(Role::Read, Some("b")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.message().contains("\"b\""), "{e}");
        keys.authenticate(None, Some("from-a-file"))
            .unwrap()
            .allow(Role::Read, Some("b"))
            .unwrap();
        assert_eq!(keys.forwarding_key(), None);
        let admin_of_a = Grant {
            role: Role::Admin,
            collections: Some(Arc::new(BTreeSet::from(["a".to_string()]))),
        };
        admin_of_a.allow(Role::Admin, Some("a")).unwrap();
        assert!(admin_of_a.allow(Role::Admin, None).is_err());
        cfg.keys = vec![spec("x", "", "/nope", Role::Read, &[])];
        assert!(
            Keys::load(&cfg)
                .unwrap_err()
                .message()
                .contains("router.keys[0]")
        );
        cfg.keys = vec![spec(
            "",
            "VECSHARD_TEST_KEY_NOT_SET_ANYWHERE",
            "",
            Role::Read,
            &[],
        )];
        assert!(
            Keys::load(&cfg)
                .unwrap_err()
                .message()
                .contains("router.keys[0].key_env")
        );
    }

    /// The time to reject a guess must not depend on how long a prefix of the key it got
    /// right (a byte-by-byte `==` returns at the first difference, which lets a client
    /// find a key one byte at a time). Keys are large so the difference would be
    /// thousands of times, not a few percent; the minimum of many runs filters noise.
    #[test]
    fn key_comparison_time_does_not_depend_on_the_matching_prefix() {
        let key = "k".repeat(256 << 10);
        let keys = Keys::of(&[(&key, Role::Admin)]);
        let mut early = key.clone().into_bytes();
        early[0] = b'x';
        let mut late = key.into_bytes();
        let last = late.len() - 1;
        late[last] = b'x';
        let (early, late) = (
            String::from_utf8(early).unwrap(),
            String::from_utf8(late).unwrap(),
        );
        let fastest = |guess: &str| {
            (0..30)
                .map(|_| {
                    let t = Instant::now();
                    assert!(keys.find(std::hint::black_box(guess)).is_none());
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        // Warm up, then alternate so both see the same machine.
        fastest(&late);
        let (mut e, mut l) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            e = e.min(fastest(&early));
            l = l.min(fastest(&late));
        }
        let ratio = l.as_secs_f64() / e.as_secs_f64();
        assert!(
            (0.25..4.0).contains(&ratio),
            "rejecting a guess with a 256 KiB matching prefix took {l:?}, one wrong at byte 0 {e:?}"
        );
    }
}
