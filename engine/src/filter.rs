//! Metadata filters: the model's (`vecshard_model::filter`), re-exported; the engine
//! evaluates them (`Filter::matches`) and narrows them with its metadata index.

pub use vecshard_model::filter::{Filter, Range, value_eq};
