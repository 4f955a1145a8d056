//! Metadata filters: `and` / `or` / `not` over `eq`, `ne`, `in`, `range` and `exists`.
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

use crate::error::{Error, Result};
use crate::types::{Metadata, Value};

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
pub(crate) fn value_eq(stored: &Value, wanted: &Value) -> bool {
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

    /// Parse the JSON form; errors say what is wrong and where.
    pub fn from_json(v: &serde_json::Value) -> Result<Filter> {
        parse(v, "filter")
    }

    /// Parse JSON text.
    pub fn parse_str(s: &str) -> Result<Filter> {
        let v: serde_json::Value = serde_json::from_str(s)
            .map_err(|e| Error::invalid(format!("malformed filter: not valid JSON: {e}")))?;
        Filter::from_json(&v)
    }

    /// The JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let list =
            |fs: &[Filter]| serde_json::Value::Array(fs.iter().map(Filter::to_json).collect());
        match self {
            Filter::And(fs) => json!({ "and": list(fs) }),
            Filter::Or(fs) => json!({ "or": list(fs) }),
            Filter::Not(f) => json!({ "not": f.to_json() }),
            Filter::Eq(field, v) => json!({ "field": field, "eq": v.to_json() }),
            Filter::Ne(field, v) => json!({ "field": field, "ne": v.to_json() }),
            Filter::In(field, vs) => {
                json!({ "field": field, "in": vs.iter().map(Value::to_json).collect::<Vec<_>>() })
            }
            Filter::Range(field, r) => {
                let mut b = serde_json::Map::new();
                for (name, bound) in [
                    ("gt", &r.gt),
                    ("gte", &r.gte),
                    ("lt", &r.lt),
                    ("lte", &r.lte),
                ] {
                    if let Some(v) = bound {
                        b.insert(name.to_string(), v.to_json());
                    }
                }
                json!({ "field": field, "range": b })
            }
            Filter::Exists(field) => json!({ "field": field, "exists": true }),
        }
    }
}

fn bad(at: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("malformed filter at {at}: {what}"))
}

fn parse(v: &serde_json::Value, at: &str) -> Result<Filter> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(at, format!("expected an object, got {v}")))?;
    if let Some(field) = obj.get("field") {
        let field = field
            .as_str()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| bad(at, "\"field\" must be a non-empty string"))?;
        let ops: Vec<_> = obj.iter().filter(|(k, _)| k.as_str() != "field").collect();
        let [(op, arg)] = ops.as_slice() else {
            return Err(bad(
                at,
                "a field condition needs exactly one of eq, ne, in, range, exists",
            ));
        };
        let at = format!("{at}.{op}");
        let value =
            |a: &serde_json::Value| Value::from_json(field, a).map_err(|e| bad(&at, e.message()));
        return Ok(match op.as_str() {
            "eq" => Filter::Eq(field.to_string(), value(arg)?),
            "ne" => Filter::Ne(field.to_string(), value(arg)?),
            "in" => {
                let items = arg
                    .as_array()
                    .ok_or_else(|| bad(&at, "\"in\" takes a list of values"))?;
                Filter::In(
                    field.to_string(),
                    items.iter().map(value).collect::<Result<_>>()?,
                )
            }
            "range" => Filter::Range(field.to_string(), parse_range(arg, &at, field)?),
            "exists" => match arg {
                serde_json::Value::Bool(true) => Filter::Exists(field.to_string()),
                serde_json::Value::Bool(false) => {
                    Filter::Not(Box::new(Filter::Exists(field.to_string())))
                }
                _ => return Err(bad(&at, "\"exists\" takes true or false")),
            },
            other => {
                return Err(bad(
                    &at,
                    format!("unknown operator {other:?} (expected eq, ne, in, range, exists)"),
                ));
            }
        });
    }
    let [(op, arg)] = obj.iter().collect::<Vec<_>>()[..] else {
        return Err(bad(
            at,
            "expected one of and, or, not, or a {\"field\": …} condition",
        ));
    };
    let at = format!("{at}.{op}");
    let list = |a: &serde_json::Value| -> Result<Vec<Filter>> {
        let items = a
            .as_array()
            .ok_or_else(|| bad(&at, "expected a list of filters"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, f)| parse(f, &format!("{at}[{i}]")))
            .collect()
    };
    match op.as_str() {
        "and" => Ok(Filter::And(list(arg)?)),
        "or" => Ok(Filter::Or(list(arg)?)),
        "not" => Ok(Filter::Not(Box::new(parse(arg, &at)?))),
        other => Err(bad(
            &at,
            format!("unknown key {other:?} (expected and, or, not, field)"),
        )),
    }
}

fn parse_range(arg: &serde_json::Value, at: &str, field: &str) -> Result<Range> {
    let obj = arg
        .as_object()
        .ok_or_else(|| bad(at, "\"range\" takes an object with gt, gte, lt, lte"))?;
    let mut r = Range::default();
    for (k, v) in obj {
        let value = Value::from_json(field, v).map_err(|e| bad(at, e.message()))?;
        if matches!(value, Value::StrList(_)) {
            return Err(bad(at, "range bounds must be numbers, strings or bools"));
        }
        let slot = match k.as_str() {
            "gt" => &mut r.gt,
            "gte" => &mut r.gte,
            "lt" => &mut r.lt,
            "lte" => &mut r.lte,
            other => {
                return Err(bad(
                    at,
                    format!("unknown range bound {other:?} (expected gt, gte, lt, lte)"),
                ));
            }
        };
        *slot = Some(value);
    }
    if r == Range::default() {
        return Err(bad(at, "a range needs at least one of gt, gte, lt, lte"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> Metadata {
        crate::types::metadata_from_json(&v).unwrap()
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
    }

    #[test]
    fn malformed_filters_are_named() {
        for (text, needle) in [
            ("{", "not valid JSON"),
            ("[]", "expected an object"),
            (r#"{"field":"a"}"#, "exactly one"),
            (r#"{"field":"a","like":"x"}"#, "unknown operator"),
            (r#"{"field":"a","range":{}}"#, "at least one"),
            (r#"{"field":"a","range":{"gt":[1]}}"#, "filter.range"),
            (r#"{"and":[{"xor":[]}]}"#, "filter.and[0].xor"),
            (r#"{"field":"a","eq":null}"#, "unsupported value"),
        ] {
            let err = Filter::parse_str(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        }
    }
}
