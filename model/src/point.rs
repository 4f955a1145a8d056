//! One stored point.

use serde::{Deserialize, Serialize};

use crate::key::Key;
use crate::value::{Metadata, Value};

/// One stored point. The serde form is the storage form (WAL); the JSON form of the APIs
/// and import files is [`crate::json::JsonPoint`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Primary key; an upsert with an existing key replaces that point.
    pub key: Key,
    /// The vector; its length must equal the collection's dimension.
    pub vector: Vec<f32>,
    /// Filterable metadata.
    pub metadata: Metadata,
    /// Opaque payload returned with results, never filtered on.
    pub payload: Vec<u8>,
}

impl Point {
    /// A point with a key and a vector and nothing else.
    pub fn new(key: impl Into<Key>, vector: Vec<f32>) -> Self {
        Point {
            key: key.into(),
            vector,
            ..Default::default()
        }
    }

    /// Builder: add a metadata field.
    pub fn with(mut self, field: &str, value: Value) -> Self {
        self.metadata.insert(field.to_string(), value);
        self
    }

    /// Builder: set the payload.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }
}
