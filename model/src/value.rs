//! Typed, filterable metadata values.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A typed, filterable metadata value. The serde form is the storage form; the JSON form
/// of the APIs is in [`crate::json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A list of strings (`eq`/`in` match any element).
    StrList(Vec<String>),
}

/// Typed metadata of one point, by field name.
pub type Metadata = BTreeMap<String, Value>;

impl Value {
    /// Numeric view for range comparisons.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// Total order between two values of comparable types (numbers with numbers, strings
    /// with strings, bools with bools); `None` across types.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    /// The type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bool(_) => "bool",
            Value::StrList(_) => "list of strings",
        }
    }
}
