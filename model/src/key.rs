//! A point's primary key.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point's primary key: an unsigned 64-bit integer or a UTF-8 string.
///
/// Keys order integers before strings, integers numerically and strings bytewise; this is
/// the deterministic tie-break between hits with equal scores. The serde form is the
/// storage form (WAL, segments); the JSON form of the APIs is in [`crate::json`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    /// An integer key.
    Int(u64),
    /// A string key (1 to [`crate::limits::MAX_KEY_BYTES`] bytes).
    Str(String),
}

impl Key {
    /// Parse a key given on a command line: digits make an integer key, anything else a
    /// string key.
    pub fn parse_cli(s: &str) -> Key {
        s.parse::<u64>()
            .map(Key::Int)
            .unwrap_or_else(|_| Key::Str(s.to_string()))
    }

    /// Bytes fed to the cluster's stable partitioning hash.
    pub fn hash_bytes(&self) -> Vec<u8> {
        match self {
            Key::Int(v) => [&[0u8][..], &v.to_le_bytes()].concat(),
            Key::Str(s) => [&[1u8][..], s.as_bytes()].concat(),
        }
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::Int(0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(v) => write!(f, "{v}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<u64> for Key {
    fn from(v: u64) -> Self {
        Key::Int(v)
    }
}

impl From<&str> for Key {
    fn from(v: &str) -> Self {
        Key::Str(v.to_string())
    }
}

impl From<String> for Key {
    fn from(v: String) -> Self {
        Key::Str(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_cli_and_hash_bytes() {
        assert!(Key::Int(u64::MAX) < Key::Str(String::new()));
        assert_eq!(Key::parse_cli("42"), Key::Int(42));
        assert_eq!(Key::parse_cli("-1"), Key::Str("-1".into()));
        assert_eq!(Key::Int(1).hash_bytes(), vec![0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Key::from("ab").hash_bytes(), vec![1, b'a', b'b']);
    }
}
