//! Metadata filters: `and` / `or` / `not` over `eq`, `ne`, `in`, `range` and `exists`,
//! and how they match. The JSON grammar is in `filter_json.rs`; the structural limits in
//! [`crate::validate::filter`].
//!
//! JSON form (used by the CLI and the APIs):
//!
//! ```json
//! {"and": [
//!   {"field": "color", "eq": "red"},
//!   {"field": "price", "range": {"gte": 10, "lt": 20}},
//!   {"not": {"field": "tags", "in": ["sale", "old"]}},
//!   {"or": [{"field": "stock", "exists": true}, {"field": "id", "ne": 3}]}
//! ]}
//! ```
//!
//! Semantics: `eq` on a list-of-strings field matches when any element is equal; numbers
//! compare across int and float; `ne` and `range` match only points that have the field (use
//! `not` + `eq` to include points without it); `exists` matches points that have the field.

use crate::value::{Metadata, Value};

/// A filter over a point's metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must match (an empty list matches everything).
    And(Vec<Filter>),
    /// Any must match (an empty list matches nothing).
    Or(Vec<Filter>),
    /// The inner filter must not match.
    Not(Box<Filter>),
    /// The field equals the value.
    Eq(String, Value),
    /// The field exists and does not equal the value.
    Ne(String, Value),
    /// The field equals one of the values.
    In(String, Vec<Value>),
    /// The field lies within the bounds.
    Range(String, Range),
    /// The field is present.
    Exists(String),
}

/// Bounds of a range filter; at least one is set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Range {
    /// Greater than.
    pub gt: Option<Value>,
    /// Greater than or equal.
    pub gte: Option<Value>,
    /// Less than.
    pub lt: Option<Value>,
    /// Less than or equal.
    pub lte: Option<Value>,
}

impl Range {
    /// Whether `v` lies within every bound (values of other types never do).
    pub fn contains(&self, v: &Value) -> bool {
        use std::cmp::Ordering::*;
        let ok = |bound: &Option<Value>, allowed: &[std::cmp::Ordering]| match bound {
            None => true,
            Some(b) => v.compare(b).is_some_and(|o| allowed.contains(&o)),
        };
        ok(&self.gt, &[Greater])
            && ok(&self.gte, &[Greater, Equal])
            && ok(&self.lt, &[Less])
            && ok(&self.lte, &[Less, Equal])
    }
}

/// Whether a stored value equals a filter value (lists: any element; numbers across types).
pub fn value_eq(stored: &Value, wanted: &Value) -> bool {
    match (stored, wanted) {
        (Value::StrList(items), Value::Str(w)) => items.iter().any(|i| i == w),
        (a, b) => a.compare(b) == Some(std::cmp::Ordering::Equal) || a == b,
    }
}

impl Filter {
    /// Whether a point with metadata `m` matches.
    pub fn matches(&self, m: &Metadata) -> bool {
        match self {
            Filter::And(fs) => fs.iter().all(|f| f.matches(m)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(m)),
            Filter::Not(f) => !f.matches(m),
            Filter::Eq(field, v) => m.get(field).is_some_and(|s| value_eq(s, v)),
            Filter::Ne(field, v) => m.get(field).is_some_and(|s| !value_eq(s, v)),
            Filter::In(field, vs) => m
                .get(field)
                .is_some_and(|s| vs.iter().any(|v| value_eq(s, v))),
            Filter::Range(field, r) => m.get(field).is_some_and(|s| r.contains(s)),
            Filter::Exists(field) => m.contains_key(field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::metadata_from_json;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> Metadata {
        metadata_from_json(&v).unwrap()
    }

    #[test]
    fn parses_and_matches() {
        let f = Filter::from_json(&json!({"and": [
            {"field": "color", "eq": "red"},
            {"field": "price", "range": {"gte": 10, "lt": 20.5}},
            {"not": {"field": "tags", "in": ["sale"]}},
        ]}))
        .unwrap();
        assert!(f.matches(&meta(json!({"color": "red", "price": 10, "tags": ["new"]}))));
        assert!(!f.matches(&meta(
            json!({"color": "red", "price": 10, "tags": ["sale", "x"]})
        )));
        assert!(!f.matches(&meta(json!({"color": "red", "price": 20.5}))));
        assert!(!f.matches(&meta(json!({"color": "blue", "price": 12}))));
        assert_eq!(Filter::from_json(&f.to_json()).unwrap(), f);
    }

    #[test]
    fn numbers_compare_across_types_and_ne_needs_the_field() {
        let eq = Filter::parse_str(r#"{"field":"n","eq":3}"#).unwrap();
        assert!(eq.matches(&meta(json!({"n": 3.0}))));
        let ne = Filter::parse_str(r#"{"field":"n","ne":3}"#).unwrap();
        assert!(!ne.matches(&meta(json!({}))));
        assert!(ne.matches(&meta(json!({"n": 4}))));
        let list = Filter::parse_str(r#"{"field":"t","eq":"a"}"#).unwrap();
        assert!(list.matches(&meta(json!({"t": ["b", "a"]}))));
        let empty_or = Filter::Or(vec![]);
        assert!(!empty_or.matches(&Metadata::new()));
        assert!(Filter::And(vec![]).matches(&Metadata::new()));
    }
}
