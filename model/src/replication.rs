//! Replication settings of a local-disk collection (docs/design/014-replication.md): the
//! replication factor and the write acknowledgement rule, and the quorum arithmetic both
//! the primary (acknowledging) and the router (promoting) use.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, ValidationError, ValidationKind};

/// The largest replication factor.
pub const MAX_REPLICATION_FACTOR: u32 = 5;

/// A replication factor: 1 to [`MAX_REPLICATION_FACTOR`].
pub fn replication_factor(n: u32) -> Result<()> {
    if !(1..=MAX_REPLICATION_FACTOR).contains(&n) {
        return Err(ValidationError::new(
            ValidationKind::OutOfRange,
            "replication_factor",
            format!("must be in 1..={MAX_REPLICATION_FACTOR}, got {n}"),
        ));
    }
    Ok(())
}

/// When the primary acknowledges a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteAck {
    /// ⌊RF/2⌋ + 1 replicas, the primary included, have the write durable.
    #[default]
    Majority,
    /// Every member of the in-sync set has the write durable.
    All,
}

impl WriteAck {
    /// The lower-case name (`majority`, `all`).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteAck::Majority => "majority",
            WriteAck::All => "all",
        }
    }

    /// Parse a request's value: empty means the default (`majority`).
    pub fn parse_or_default(s: &str) -> Result<WriteAck> {
        if s.is_empty() {
            Ok(WriteAck::default())
        } else {
            s.parse()
        }
    }
}

impl std::str::FromStr for WriteAck {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<WriteAck> {
        match s.to_ascii_lowercase().as_str() {
            "majority" => Ok(WriteAck::Majority),
            "all" => Ok(WriteAck::All),
            other => Err(ValidationError::new(
                ValidationKind::Malformed,
                "write_ack",
                format!("unknown write acknowledgement rule {other:?} (expected majority or all)"),
            )),
        }
    }
}

impl fmt::Display for WriteAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ⌊rf/2⌋ + 1: how many replicas (the primary included) make a majority of `rf`.
pub fn majority(rf: u32) -> u32 {
    rf / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_and_rules_are_checked() {
        for n in 1..=5 {
            replication_factor(n).unwrap();
        }
        for n in [0, 6, 100] {
            let e = replication_factor(n).unwrap_err();
            assert!(e.to_string().contains("replication_factor"), "{e}");
            assert!(e.to_string().contains(&n.to_string()), "{e}");
        }
        assert_eq!(WriteAck::parse_or_default("").unwrap(), WriteAck::Majority);
        assert_eq!("ALL".parse::<WriteAck>().unwrap(), WriteAck::All);
        assert_eq!("majority".parse::<WriteAck>().unwrap(), WriteAck::Majority);
        let e = "quorum".parse::<WriteAck>().unwrap_err();
        assert!(e.to_string().contains("quorum"), "{e}");
        assert_eq!(
            [1, 2, 3, 4, 5].map(majority),
            [1, 2, 2, 3, 3],
            "majority of RF counts the primary"
        );
    }
}
