//! The distance used to rank points.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationError, ValidationKind};

/// The distance used to rank points. Serialized lower-case (`"l2"`); the capitalised
/// names of older shard maps (`"L2"`) are accepted when reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Squared Euclidean distance; the score is the squared distance, lower is better.
    #[serde(alias = "L2")]
    L2,
    /// Cosine similarity; vectors are normalised on write; score in [-1, 1], higher is better.
    #[serde(alias = "Cosine")]
    Cosine,
    /// Inner product; the score is the dot product, higher is better.
    #[serde(alias = "Dot")]
    Dot,
}

impl Metric {
    /// The lower-case name (`l2`, `cosine`, `dot`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        }
    }

    /// Convert an internal distance (lower is better) to the user-facing score.
    pub fn score(self, distance: f32) -> f32 {
        match self {
            Metric::L2 => distance,
            Metric::Cosine => 1.0 - distance,
            Metric::Dot => -distance,
        }
    }

    /// Whether a higher score is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::L2)
    }
}

impl std::str::FromStr for Metric {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Metric, ValidationError> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclid" | "euclidean" => Ok(Metric::L2),
            "cosine" | "cos" => Ok(Metric::Cosine),
            "dot" | "ip" | "inner_product" => Ok(Metric::Dot),
            other => Err(ValidationError::new(
                ValidationKind::Malformed,
                "metric",
                format!("unknown metric {other:?} (expected l2, cosine or dot)"),
            )),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_serialize() {
        for (text, m) in [
            ("l2", Metric::L2),
            ("COS", Metric::Cosine),
            ("ip", Metric::Dot),
        ] {
            assert_eq!(text.parse::<Metric>().unwrap(), m);
        }
        assert!(
            "hamming"
                .parse::<Metric>()
                .unwrap_err()
                .to_string()
                .contains("hamming")
        );
        assert_eq!(
            serde_json::to_string(&Metric::Cosine).unwrap(),
            "\"cosine\""
        );
        let old: Metric = serde_json::from_str("\"Dot\"").unwrap();
        assert_eq!(old, Metric::Dot);
    }
}
