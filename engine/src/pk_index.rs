//! Primary key → location of the live row. Ordered, so scans page by key. Integer keys
//! cost one `u64` key and one packed `u64` location (plus B-tree overhead).

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::types::Key;

/// Where a live row is: a container (memtable or segment) and a row in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub container: u32,
    pub row: u32,
}

impl Loc {
    fn pack(self) -> u64 {
        (self.container as u64) << 32 | self.row as u64
    }

    fn unpack(v: u64) -> Loc {
        Loc {
            container: (v >> 32) as u32,
            row: v as u32,
        }
    }
}

/// The primary-key index of a shard.
#[derive(Debug, Default)]
pub(crate) struct PkIndex {
    ints: BTreeMap<u64, u64>,
    strs: BTreeMap<Box<str>, u64>,
}

impl PkIndex {
    pub(crate) fn get(&self, key: &Key) -> Option<Loc> {
        match key {
            Key::Int(k) => self.ints.get(k),
            Key::Str(s) => self.strs.get(s.as_str()),
        }
        .map(|v| Loc::unpack(*v))
    }

    /// Point `key` at `loc`; returns the previous location.
    pub(crate) fn insert(&mut self, key: &Key, loc: Loc) -> Option<Loc> {
        match key {
            Key::Int(k) => self.ints.insert(*k, loc.pack()),
            Key::Str(s) => self.strs.insert(s.as_str().into(), loc.pack()),
        }
        .map(Loc::unpack)
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Loc> {
        match key {
            Key::Int(k) => self.ints.remove(k),
            Key::Str(s) => self.strs.remove(s.as_str()),
        }
        .map(Loc::unpack)
    }

    pub(crate) fn len(&self) -> usize {
        self.ints.len() + self.strs.len()
    }

    /// Up to `limit` keys after `after` (exclusive; from the start when `None`), in key order
    /// (integers first).
    pub(crate) fn page(&self, after: Option<&Key>, limit: usize) -> Vec<(Key, Loc)> {
        let mut out = Vec::with_capacity(limit.min(self.len()));
        let ints: Box<dyn Iterator<Item = (&u64, &u64)>> = match after {
            None => Box::new(self.ints.iter()),
            Some(Key::Int(k)) => Box::new(self.ints.range((Bound::Excluded(*k), Bound::Unbounded))),
            Some(Key::Str(_)) => Box::new(std::iter::empty()),
        };
        out.extend(
            ints.take(limit)
                .map(|(k, v)| (Key::Int(*k), Loc::unpack(*v))),
        );
        let strs: Box<dyn Iterator<Item = (&Box<str>, &u64)>> = match after {
            Some(Key::Str(s)) => Box::new(
                self.strs
                    .range::<str, _>((Bound::Excluded(s.as_str()), Bound::Unbounded)),
            ),
            _ => Box::new(self.strs.iter()),
        };
        let room = limit - out.len();
        out.extend(
            strs.take(room)
                .map(|(k, v)| (Key::Str(k.to_string()), Loc::unpack(*v))),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_in_key_order() {
        let mut pk = PkIndex::default();
        for k in [
            Key::Str("b".into()),
            Key::Int(5),
            Key::Int(1),
            Key::Str("a".into()),
        ] {
            pk.insert(
                &k,
                Loc {
                    container: 1,
                    row: 0,
                },
            );
        }
        let keys = |p: Vec<(Key, Loc)>| p.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(pk.page(None, 3)),
            vec![Key::Int(1), Key::Int(5), Key::Str("a".into())]
        );
        assert_eq!(
            keys(pk.page(Some(&Key::Int(5)), 10)),
            vec![Key::Str("a".into()), Key::Str("b".into())]
        );
        assert_eq!(
            keys(pk.page(Some(&Key::Str("a".into())), 10)),
            vec![Key::Str("b".into())]
        );
        assert_eq!(
            pk.insert(
                &Key::Int(5),
                Loc {
                    container: 2,
                    row: 7
                }
            ),
            Some(Loc {
                container: 1,
                row: 0
            })
        );
        assert_eq!(
            pk.get(&Key::Int(5)),
            Some(Loc {
                container: 2,
                row: 7
            })
        );
    }
}
