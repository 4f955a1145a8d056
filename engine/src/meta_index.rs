//! In-memory filter index of one segment: per field, the rows that have it, an equality
//! index (value → roaring bitmap) and a sorted numeric index for ranges. Filters evaluate
//! to a bitmap of matching rows, which also tells the planner the selectivity.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use crate::filter::{Filter, Range, value_eq};
use crate::types::{Metadata, Value};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum EqKey {
    Int(i64),
    Float(u64),
    Str(Box<str>),
    Bool(bool),
}

/// The equality key of a scalar value (`None` for lists, which are indexed per element).
fn eq_key(v: &Value) -> Option<EqKey> {
    Some(match v {
        Value::Int(i) => EqKey::Int(*i),
        Value::Float(f) if f.fract() == 0.0 && *f >= i64::MIN as f64 && *f < i64::MAX as f64 => {
            EqKey::Int(*f as i64)
        }
        Value::Float(f) => EqKey::Float(f.to_bits()),
        Value::Str(s) => EqKey::Str(s.as_str().into()),
        Value::Bool(b) => EqKey::Bool(*b),
        Value::StrList(_) => return None,
    })
}

#[derive(Debug, Default)]
struct FieldIndex {
    present: RoaringBitmap,
    /// (row, value), ascending by row.
    values: Vec<(u32, Value)>,
    eq: HashMap<EqKey, RoaringBitmap>,
    /// (number, index into `values`), ascending by number.
    numeric: Vec<(f64, u32)>,
}

/// Filter index over a segment's rows.
#[derive(Debug, Default)]
pub(crate) struct MetaIndex {
    rows: u32,
    fields: HashMap<String, FieldIndex>,
}

impl MetaIndex {
    /// Build from each row's metadata, in row order.
    pub(crate) fn build(rows: u32, metadata: impl Iterator<Item = (u32, Metadata)>) -> Self {
        let mut fields: HashMap<String, FieldIndex> = HashMap::new();
        for (row, meta) in metadata {
            for (name, value) in meta {
                let f = fields.entry(name).or_default();
                f.present.insert(row);
                match &value {
                    Value::StrList(items) => {
                        for item in items {
                            f.eq.entry(EqKey::Str(item.as_str().into()))
                                .or_default()
                                .insert(row);
                        }
                    }
                    scalar => {
                        if let Some(k) = eq_key(scalar) {
                            f.eq.entry(k).or_default().insert(row);
                        }
                        if let Some(n) = scalar.as_f64() {
                            f.numeric.push((n, f.values.len() as u32));
                        }
                    }
                }
                f.values.push((row, value));
            }
        }
        for f in fields.values_mut() {
            f.numeric
                .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        MetaIndex { rows, fields }
    }

    fn all(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.rows);
        b
    }

    /// Rows whose metadata matches `filter`.
    pub(crate) fn eval(&self, filter: &Filter) -> RoaringBitmap {
        match filter {
            Filter::And(fs) => {
                let mut it = fs.iter();
                let Some(first) = it.next() else {
                    return self.all();
                };
                let mut acc = self.eval(first);
                for f in it {
                    if acc.is_empty() {
                        break;
                    }
                    acc &= self.eval(f);
                }
                acc
            }
            Filter::Or(fs) => fs
                .iter()
                .fold(RoaringBitmap::new(), |acc, f| acc | self.eval(f)),
            Filter::Not(f) => self.all() - self.eval(f),
            Filter::Exists(field) => self
                .fields
                .get(field)
                .map(|f| f.present.clone())
                .unwrap_or_default(),
            Filter::Eq(field, v) => self.eq(field, v),
            Filter::Ne(field, v) => self
                .fields
                .get(field)
                .map(|f| &f.present - self.eq(field, v))
                .unwrap_or_default(),
            Filter::In(field, vs) => vs
                .iter()
                .fold(RoaringBitmap::new(), |acc, v| acc | self.eq(field, v)),
            Filter::Range(field, r) => self.range(field, r),
        }
    }

    fn eq(&self, field: &str, v: &Value) -> RoaringBitmap {
        let Some(f) = self.fields.get(field) else {
            return RoaringBitmap::new();
        };
        match eq_key(v) {
            Some(k) => f.eq.get(&k).cloned().unwrap_or_default(),
            None => f
                .values
                .iter()
                .filter(|(_, s)| value_eq(s, v))
                .map(|(r, _)| *r)
                .collect(),
        }
    }

    fn range(&self, field: &str, r: &Range) -> RoaringBitmap {
        let Some(f) = self.fields.get(field) else {
            return RoaringBitmap::new();
        };
        let bounds = [&r.gt, &r.gte, &r.lt, &r.lte];
        if !bounds
            .iter()
            .all(|b| b.as_ref().is_none_or(|v| v.as_f64().is_some()))
        {
            return f
                .values
                .iter()
                .filter(|(_, v)| r.contains(v))
                .map(|(row, _)| *row)
                .collect();
        }
        // Numeric bounds: narrow with the sorted index (one ulp wider), then check exactly.
        let lo = [&r.gt, &r.gte]
            .iter()
            .filter_map(|b| b.as_ref()?.as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        let hi = [&r.lt, &r.lte]
            .iter()
            .filter_map(|b| b.as_ref()?.as_f64())
            .fold(f64::INFINITY, f64::min);
        let start = f.numeric.partition_point(|(n, _)| *n < lo.next_down());
        let end = f.numeric.partition_point(|(n, _)| *n <= hi.next_up());
        f.numeric
            .get(start..end.max(start))
            .unwrap_or_default()
            .iter()
            .map(|(_, i)| &f.values[*i as usize])
            .filter(|(_, v)| r.contains(v))
            .map(|(row, _)| *row)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bitmaps_agree_with_row_matching() {
        let metas: Vec<Metadata> = (0..200i64)
            .map(|i| {
                let mut v = json!({"n": i % 17, "f": (i as f64) / 3.0, "s": format!("s{}", i % 5), "b": i % 2 == 0});
                if i % 3 == 0 {
                    v["tags"] = json!([format!("t{}", i % 4), "all"]);
                }
                vecshard_model::json::metadata_from_json(&v).unwrap()
            })
            .collect();
        let idx = MetaIndex::build(
            200,
            metas
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, m)| (i as u32, m)),
        );
        for text in [
            r#"{"field":"n","eq":3}"#,
            r#"{"field":"n","eq":3.0}"#,
            r#"{"field":"n","ne":3}"#,
            r#"{"field":"f","range":{"gt":10,"lte":20.5}}"#,
            r#"{"field":"s","range":{"gte":"s2"}}"#,
            r#"{"field":"tags","eq":"t1"}"#,
            r#"{"field":"tags","in":["t0","t2"]}"#,
            r#"{"not":{"field":"tags","exists":true}}"#,
            r#"{"and":[{"field":"b","eq":true},{"or":[{"field":"n","in":[1,2]},{"field":"s","eq":"s4"}]}]}"#,
            r#"{"and":[]}"#,
            r#"{"or":[]}"#,
            r#"{"field":"missing","range":{"lt":1}}"#,
        ] {
            let f = Filter::parse_str(text).unwrap();
            let want: RoaringBitmap = metas
                .iter()
                .enumerate()
                .filter(|(_, m)| f.matches(m))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(idx.eval(&f), want, "{text}");
        }
    }
}
