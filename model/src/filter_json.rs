//! The JSON grammar of filters (see [`crate::filter`] for the form): parse with a path in
//! every error (`filter.and[1].range`), then [`crate::validate::filter`]; print back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value as J, json};

use crate::error::{Result, ValidationError, ValidationKind};
use crate::filter::{Filter, Range};
use crate::json::{value_from_json, value_to_json};
use crate::limits::MAX_FILTER_DEPTH;
use crate::validate;
use crate::value::Value;

fn bad(at: &str, what: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(
        ValidationKind::Malformed,
        at,
        format!("malformed filter: {what}"),
    )
}

impl Filter {
    /// Parse the JSON form and check its limits; errors say what is wrong and where.
    pub fn from_json(v: &J) -> Result<Filter> {
        let f = parse(v, "filter", 1)?;
        validate::filter(&f)?;
        Ok(f)
    }

    /// Parse JSON text.
    pub fn parse_str(s: &str) -> Result<Filter> {
        let v: J = serde_json::from_str(s).map_err(|e| {
            ValidationError::new(
                ValidationKind::Malformed,
                "filter",
                format!("malformed filter: not valid JSON: {e}"),
            )
        })?;
        Filter::from_json(&v)
    }

    /// The JSON form.
    pub fn to_json(&self) -> J {
        let list = |fs: &[Filter]| J::Array(fs.iter().map(Filter::to_json).collect());
        match self {
            Filter::And(fs) => json!({ "and": list(fs) }),
            Filter::Or(fs) => json!({ "or": list(fs) }),
            Filter::Not(f) => json!({ "not": f.to_json() }),
            Filter::Eq(field, v) => json!({ "field": field, "eq": value_to_json(v) }),
            Filter::Ne(field, v) => json!({ "field": field, "ne": value_to_json(v) }),
            Filter::In(field, vs) => {
                json!({ "field": field, "in": vs.iter().map(value_to_json).collect::<Vec<_>>() })
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
                        b.insert(name.to_string(), value_to_json(v));
                    }
                }
                json!({ "field": field, "range": b })
            }
            Filter::Exists(field) => json!({ "field": field, "exists": true }),
        }
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter {
    /// The JSON form (a filter is small: it is read as a JSON tree, then parsed).
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Filter, D::Error> {
        let v = J::deserialize(d)?;
        Filter::from_json(&v).map_err(serde::de::Error::custom)
    }
}

fn parse(v: &J, at: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(ValidationError::new(
            ValidationKind::TooLarge,
            at,
            format!("malformed filter: nested deeper than {MAX_FILTER_DEPTH} levels"),
        ));
    }
    let obj = v
        .as_object()
        .ok_or_else(|| bad(at, format!("expected an object, got {v}")))?;
    if let Some(field) = obj.get("field") {
        return parse_condition(obj, field, at);
    }
    let [(op, arg)] = obj.iter().collect::<Vec<_>>()[..] else {
        return Err(bad(
            at,
            "expected one of and, or, not, or a {\"field\": …} condition",
        ));
    };
    let at = format!("{at}.{op}");
    let list = |a: &J| -> Result<Vec<Filter>> {
        let items = a
            .as_array()
            .ok_or_else(|| bad(&at, "expected a list of filters"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, f)| parse(f, &format!("{at}[{i}]"), depth + 1))
            .collect()
    };
    match op.as_str() {
        "and" => Ok(Filter::And(list(arg)?)),
        "or" => Ok(Filter::Or(list(arg)?)),
        "not" => Ok(Filter::Not(Box::new(parse(arg, &at, depth + 1)?))),
        other => Err(bad(
            &at,
            format!("unknown key {other:?} (expected and, or, not, field)"),
        )),
    }
}

fn parse_condition(obj: &serde_json::Map<String, J>, field: &J, at: &str) -> Result<Filter> {
    let field = field
        .as_str()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| bad(at, "\"field\" must be a non-empty string"))?
        .to_string();
    let ops: Vec<_> = obj.iter().filter(|(k, _)| k.as_str() != "field").collect();
    let [(op, arg)] = ops.as_slice() else {
        return Err(bad(
            at,
            "a field condition needs exactly one of eq, ne, in, range, exists",
        ));
    };
    let at = format!("{at}.{op}");
    let value = |a: &J| value_from_json(&field, a).map_err(|e| bad(&at, e.message()));
    Ok(match op.as_str() {
        "eq" => Filter::Eq(field.clone(), value(arg)?),
        "ne" => Filter::Ne(field.clone(), value(arg)?),
        "in" => {
            let items = arg
                .as_array()
                .ok_or_else(|| bad(&at, "\"in\" takes a list of values"))?;
            Filter::In(
                field.clone(),
                items.iter().map(value).collect::<Result<_>>()?,
            )
        }
        "range" => Filter::Range(field.clone(), parse_range(arg, &at, &field)?),
        "exists" => match arg {
            J::Bool(true) => Filter::Exists(field),
            J::Bool(false) => Filter::Not(Box::new(Filter::Exists(field))),
            _ => return Err(bad(&at, "\"exists\" takes true or false")),
        },
        other => {
            return Err(bad(
                &at,
                format!("unknown operator {other:?} (expected eq, ne, in, range, exists)"),
            ));
        }
    })
}

fn parse_range(arg: &J, at: &str, field: &str) -> Result<Range> {
    let obj = arg
        .as_object()
        .ok_or_else(|| bad(at, "\"range\" takes an object with gt, gte, lt, lte"))?;
    let mut r = Range::default();
    for (k, v) in obj {
        let value = value_from_json(field, v).map_err(|e| bad(at, e.message()))?;
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
    Ok(r)
}
