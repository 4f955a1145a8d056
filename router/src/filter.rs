//! Metadata filters at the router: the engine's JSON form parsed into the proto `Filter`
//! (the router does not depend on the engine; this mirrors its syntax), and structural
//! validation of a proto filter before it is passed through to every shard.
//!
//! JSON form: `{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`, or a condition
//! `{"field": "f", "<op>": operand}` with op `eq`, `ne`, `in` (a list), `range` (an object
//! with `gt`, `gte`, `lt`, `lte`) or `exists` (true/false).

use serde_json::Value as J;
use vecshard_proto::v1::{
    Condition, Filter, FilterList, Range, ValueList, condition, filter, value,
};

use crate::error::{Error, Result};
use crate::json::value_from_json;

/// Filters nested deeper than this are rejected.
pub const MAX_DEPTH: usize = 32;

fn bad(at: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("malformed filter at {at}: {what}"))
}

/// Parse JSON text.
pub fn parse_str(text: &str) -> Result<Filter> {
    let v: J = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("malformed filter: not valid JSON: {e}")))?;
    from_json(&v)
}

/// Parse the JSON form, then validate it.
pub fn from_json(v: &J) -> Result<Filter> {
    let f = parse(v, "filter", 1)?;
    validate(&f)?;
    Ok(f)
}

fn parse(v: &J, at: &str, depth: usize) -> Result<Filter> {
    if depth > MAX_DEPTH {
        return Err(bad(at, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let obj = v
        .as_object()
        .ok_or_else(|| bad(at, format!("expected an object, got {v}")))?;
    if let Some(field) = obj.get("field") {
        return parse_condition(obj, field, at).map(|c| Filter {
            kind: Some(filter::Kind::Condition(c)),
        });
    }
    let [(op, arg)] = obj.iter().collect::<Vec<_>>()[..] else {
        return Err(bad(
            at,
            "expected one of and, or, not, or a {\"field\": …} condition",
        ));
    };
    let at = format!("{at}.{op}");
    let list = |a: &J| -> Result<FilterList> {
        let items = a
            .as_array()
            .ok_or_else(|| bad(&at, "expected a list of filters"))?;
        let filters = items
            .iter()
            .enumerate()
            .map(|(i, f)| parse(f, &format!("{at}[{i}]"), depth + 1))
            .collect::<Result<_>>()?;
        Ok(FilterList { filters })
    };
    let kind = match op.as_str() {
        "and" => filter::Kind::And(list(arg)?),
        "or" => filter::Kind::Or(list(arg)?),
        "not" => filter::Kind::Not(Box::new(parse(arg, &at, depth + 1)?)),
        other => {
            return Err(bad(
                &at,
                format!("unknown key {other:?} (expected and, or, not, field)"),
            ));
        }
    };
    Ok(Filter { kind: Some(kind) })
}

fn parse_condition(obj: &serde_json::Map<String, J>, field: &J, at: &str) -> Result<Condition> {
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
    let value = |a: &J| value_from_json(field, a).map_err(|e| bad(&at, e.message()));
    let op = match op.as_str() {
        "eq" => condition::Op::Eq(value(arg)?),
        "ne" => condition::Op::Ne(value(arg)?),
        "in" => condition::Op::In(ValueList {
            values: arg
                .as_array()
                .ok_or_else(|| bad(&at, "\"in\" takes a list of values"))?
                .iter()
                .map(value)
                .collect::<Result<_>>()?,
        }),
        "range" => {
            let bounds = arg
                .as_object()
                .ok_or_else(|| bad(&at, "\"range\" takes an object with gt, gte, lt, lte"))?;
            let mut r = Range::default();
            for (k, v) in bounds {
                let slot = match k.as_str() {
                    "gt" => &mut r.gt,
                    "gte" => &mut r.gte,
                    "lt" => &mut r.lt,
                    "lte" => &mut r.lte,
                    other => {
                        return Err(bad(
                            &at,
                            format!("unknown range bound {other:?} (expected gt, gte, lt, lte)"),
                        ));
                    }
                };
                *slot = Some(value(v)?);
            }
            condition::Op::Range(r)
        }
        "exists" => condition::Op::Exists(
            arg.as_bool()
                .ok_or_else(|| bad(&at, "\"exists\" takes true or false"))?,
        ),
        other => {
            return Err(bad(
                &at,
                format!("unknown operator {other:?} (expected eq, ne, in, range, exists)"),
            ));
        }
    };
    Ok(Condition {
        field: field.to_string(),
        op: Some(op),
    })
}

/// Check a filter's structure: every oneof set, conditions named, ranges bounded by
/// numbers, strings or bools, floats finite, depth at most [`MAX_DEPTH`].
pub fn validate(f: &Filter) -> Result<()> {
    check(f, "filter", 1)
}

fn check(f: &Filter, at: &str, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(bad(at, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    match &f.kind {
        None => Err(bad(at, "empty filter (set one of and, or, not, condition)")),
        Some(filter::Kind::And(l)) | Some(filter::Kind::Or(l)) => {
            let op = if matches!(f.kind, Some(filter::Kind::And(_))) {
                "and"
            } else {
                "or"
            };
            l.filters
                .iter()
                .enumerate()
                .try_for_each(|(i, f)| check(f, &format!("{at}.{op}[{i}]"), depth + 1))
        }
        Some(filter::Kind::Not(inner)) => check(inner, &format!("{at}.not"), depth + 1),
        Some(filter::Kind::Condition(c)) => check_condition(c, at),
    }
}

fn check_condition(c: &Condition, at: &str) -> Result<()> {
    if c.field.is_empty() {
        return Err(bad(at, "a condition needs a field name"));
    }
    let value = |v: &vecshard_proto::v1::Value, at: &str, bound: bool| match &v.kind {
        None => Err(bad(at, "empty value")),
        Some(value::Kind::FloatValue(x)) if !x.is_finite() => Err(bad(at, "values must be finite")),
        Some(value::Kind::StringListValue(_)) if bound => {
            Err(bad(at, "range bounds must be numbers, strings or bools"))
        }
        Some(_) => Ok(()),
    };
    match &c.op {
        None => Err(bad(
            at,
            format!("condition on {:?} has no operator", c.field),
        )),
        Some(condition::Op::Eq(v)) => value(v, &format!("{at}.eq"), false),
        Some(condition::Op::Ne(v)) => value(v, &format!("{at}.ne"), false),
        Some(condition::Op::In(l)) => l
            .values
            .iter()
            .try_for_each(|v| value(v, &format!("{at}.in"), false)),
        Some(condition::Op::Range(r)) => {
            let bounds = [&r.gt, &r.gte, &r.lt, &r.lte];
            if bounds.iter().all(|b| b.is_none()) {
                return Err(bad(
                    &format!("{at}.range"),
                    "a range needs at least one of gt, gte, lt, lte",
                ));
            }
            bounds
                .iter()
                .filter_map(|b| b.as_ref())
                .try_for_each(|v| value(v, &format!("{at}.range"), true))
        }
        Some(condition::Op::Exists(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_engine_json_form() {
        let f = parse_str(
            r#"{"and": [{"field": "color", "eq": "red"},
                        {"field": "price", "range": {"gte": 10, "lt": 20.5}},
                        {"not": {"field": "tags", "in": ["sale", "old"]}},
                        {"or": [{"field": "stock", "exists": true}, {"field": "id", "ne": 3}]}]}"#,
        )
        .unwrap();
        let Some(filter::Kind::And(l)) = &f.kind else {
            panic!("{f:?}")
        };
        assert_eq!(l.filters.len(), 4);
        let Some(filter::Kind::Condition(c)) = &l.filters[1].kind else {
            panic!()
        };
        let Some(condition::Op::Range(r)) = &c.op else {
            panic!()
        };
        assert!(r.gte.is_some() && r.lt.is_some() && r.gt.is_none());
    }

    #[test]
    fn malformed_filters_are_named() {
        for (text, needle) in [
            ("{", "not valid JSON"),
            ("[]", "expected an object"),
            (r#"{"field":"a"}"#, "exactly one"),
            (r#"{"field":"a","like":"x"}"#, "unknown operator"),
            (r#"{"field":"a","range":{}}"#, "at least one"),
            (r#"{"field":"a","range":{"gt":["x"]}}"#, "range bounds"),
            (r#"{"and":[{"xor":[]}]}"#, "filter.and[0].xor"),
            (r#"{"field":"a","eq":null}"#, "unsupported value"),
            (r#"{"field":"","eq":1}"#, "non-empty"),
        ] {
            let err = parse_str(text).unwrap_err();
            assert!(err.message().contains(needle), "{text}: {err}");
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn depth_is_limited() {
        let mut text = r#"{"field":"a","exists":true}"#.to_string();
        for _ in 0..31 {
            text = format!(r#"{{"not":{text}}}"#);
        }
        assert!(parse_str(&text).is_ok(), "32 levels are allowed");
        let deeper = format!(r#"{{"not":{text}}}"#);
        assert!(
            parse_str(&deeper)
                .unwrap_err()
                .message()
                .contains("deeper than 32")
        );

        let mut f = Filter {
            kind: Some(filter::Kind::And(FilterList::default())),
        };
        for _ in 0..32 {
            f = Filter {
                kind: Some(filter::Kind::Not(Box::new(f))),
            };
        }
        assert!(
            validate(&f)
                .unwrap_err()
                .message()
                .contains("deeper than 32")
        );
    }

    #[test]
    fn structural_checks_on_proto_filters() {
        assert!(
            validate(&Filter::default())
                .unwrap_err()
                .message()
                .contains("empty filter")
        );
        let c = Filter {
            kind: Some(filter::Kind::Condition(Condition {
                field: "x".into(),
                op: Some(condition::Op::Eq(vecshard_proto::v1::Value {
                    kind: Some(value::Kind::FloatValue(f64::NAN)),
                })),
            })),
        };
        assert!(validate(&c).unwrap_err().message().contains("finite"));
    }
}
