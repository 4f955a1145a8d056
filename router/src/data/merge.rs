//! Merging shards' hits into the global top k, deterministically: by distance (lower is
//! better under every metric), then by key (integers before strings, integers
//! numerically, strings bytewise).

use std::cmp::Ordering;

use vecshard_proto::internal::v1::ShardHit;
use vecshard_proto::v1::{Key, key};

/// The order of keys: integers before strings, integers numerically, strings bytewise;
/// a key with no kind sorts last.
pub fn cmp_keys(a: &Key, b: &Key) -> Ordering {
    use key::Kind::{Int, Str};
    match (&a.kind, &b.kind) {
        (Some(Int(x)), Some(Int(y))) => x.cmp(y),
        (Some(Str(x)), Some(Str(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(Int(_)), Some(Str(_))) => Ordering::Less,
        (Some(Str(_)), Some(Int(_))) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Best first: by distance (`-0.0` equals `0.0`), then by key.
pub fn cmp_hits(a: &ShardHit, b: &ShardHit) -> Ordering {
    // Adding 0.0 turns -0.0 into 0.0, so total_cmp treats the two zeros as equal.
    (a.distance + 0.0)
        .total_cmp(&(b.distance + 0.0))
        .then_with(|| {
            cmp_keys(
                a.key.as_ref().unwrap_or(&Key::default()),
                b.key.as_ref().unwrap_or(&Key::default()),
            )
        })
}

/// The best `k` hits of all shards' lists, best first. A single list already in this
/// order (one shard's answer: nodes return their hits best first) is forwarded as it is.
pub fn top_k(mut lists: Vec<Vec<ShardHit>>, k: usize) -> Vec<ShardHit> {
    if lists.len() == 1 && lists[0].is_sorted_by(|a, b| cmp_hits(a, b) != Ordering::Greater) {
        let mut only = lists.pop().unwrap_or_default();
        only.truncate(k);
        return only;
    }
    let mut all: Vec<ShardHit> = lists.into_iter().flatten().collect();
    if all.len() > k && k > 0 {
        all.select_nth_unstable_by(k - 1, cmp_hits);
        all.truncate(k);
    }
    all.sort_unstable_by(cmp_hits);
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(k: key::Kind, d: f32) -> ShardHit {
        ShardHit {
            key: Some(Key { kind: Some(k) }),
            distance: d,
            score: d,
            ..Default::default()
        }
    }
    fn ids(h: &[ShardHit]) -> Vec<String> {
        h.iter()
            .map(|h| match h.key.as_ref().and_then(|k| k.kind.as_ref()) {
                Some(key::Kind::Int(v)) => v.to_string(),
                Some(key::Kind::Str(s)) => format!("{s:?}"),
                None => "-".into(),
            })
            .collect()
    }

    #[test]
    fn merges_by_distance_then_key() {
        use key::Kind::{Int, Str};
        let a = vec![
            hit(Int(5), 0.1),
            hit(Str("b".into()), 0.5),
            hit(Int(9), 0.9),
        ];
        let b = vec![
            hit(Str("a".into()), 0.5),
            hit(Int(7), 0.5),
            hit(Int(1), 0.7),
        ];
        let c = vec![hit(Int(3), -0.0), hit(Int(2), 0.0)];
        let merged = top_k(vec![a, b, c], 6);
        assert_eq!(ids(&merged), ["2", "3", "5", "7", "\"a\"", "\"b\""]);
    }

    #[test]
    fn ties_are_deterministic_in_any_input_order() {
        use key::Kind::{Int, Str};
        let lists = vec![
            vec![hit(Int(10), 1.0), hit(Str("x".into()), 1.0)],
            vec![
                hit(Int(2), 1.0),
                hit(Str("é".into()), 1.0),
                hit(Str("z".into()), 1.0),
            ],
            vec![hit(Int(u64::MAX), 1.0)],
        ];
        let expect = top_k(lists.clone(), 4);
        assert_eq!(ids(&expect), ["2", "10", "18446744073709551615", "\"x\""]);
        let mut rev: Vec<_> = lists
            .into_iter()
            .rev()
            .map(|l| l.into_iter().rev().collect())
            .collect();
        assert_eq!(top_k(std::mem::take(&mut rev), 4), expect);
    }

    #[test]
    fn one_list_is_forwarded_when_in_order_and_sorted_when_not() {
        use key::Kind::Int;
        let sorted = vec![hit(Int(4), 0.1), hit(Int(2), 0.5), hit(Int(3), 0.5)];
        assert_eq!(ids(&top_k(vec![sorted.clone()], 2)), ["4", "2"]);
        assert_eq!(ids(&top_k(vec![sorted], 0)), Vec::<String>::new());
        // Equal distances out of key order: merged order, not the node's.
        let ties = vec![hit(Int(3), 0.5), hit(Int(2), 0.5), hit(Int(1), 0.1)];
        assert_eq!(ids(&top_k(vec![ties], 3)), ["1", "2", "3"]);
    }

    #[test]
    fn fewer_hits_than_k_and_k_zero() {
        use key::Kind::Int;
        assert_eq!(top_k(vec![vec![hit(Int(1), 0.2)], vec![]], 10).len(), 1);
        assert!(top_k(vec![vec![hit(Int(1), 0.2)]], 0).is_empty());
    }
}
