//! Primary key → location of the live row. Ordered, so scans page by key. Integer keys
//! cost one `u64` key and one packed `u64` location (plus B-tree overhead).
//!
//! While a compaction builds its new index off to the side (a [`PkIndex::snapshot`] with
//! the merged rows' locations rewritten), the live index keeps a journal of its changes,
//! which the compaction replays onto its copy right before publishing it.

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

/// One change to the index: the key, where it was, where it is now (`None`: absent).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub key: Key,
    pub old: Option<Loc>,
    pub new: Option<Loc>,
}

/// The primary-key index of a shard.
#[derive(Debug, Default)]
pub(crate) struct PkIndex {
    ints: BTreeMap<u64, u64>,
    strs: BTreeMap<Box<str>, u64>,
    /// Changes since [`PkIndex::start_journal`], while a compaction runs.
    journal: Option<Vec<Change>>,
}

impl PkIndex {
    /// The index of `entries` (keys in any order, about `expected` of them), built in
    /// bulk: sorted, then laid into the trees in one pass, which at a million keys is
    /// several times faster than inserting them one by one. `Err(key)` names a key that
    /// occurs twice.
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (Key, Loc)>,
        expected: usize,
    ) -> Result<PkIndex, Key> {
        let mut ints = Vec::with_capacity(expected);
        let mut strs = Vec::new();
        for (key, loc) in entries {
            match key {
                Key::Int(k) => ints.push((k, loc)),
                Key::Str(s) => strs.push((s.into_boxed_str(), loc)),
            }
        }
        PkIndex::from_parts(ints, strs)
    }

    /// [`PkIndex::from_entries`] with the integer and string keys apart.
    pub(crate) fn from_parts(
        mut ints: Vec<(u64, Loc)>,
        mut strs: Vec<(Box<str>, Loc)>,
    ) -> Result<PkIndex, Key> {
        // Segments mostly hold their keys in order: sorting a sorted run is one pass.
        ints.sort_unstable_by_key(|e| e.0);
        if let Some(w) = ints.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Key::Int(w[0].0));
        }
        strs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = strs.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Key::Str(w[0].0.to_string()));
        }
        Ok(PkIndex {
            ints: ints.into_iter().map(|(k, l)| (k, l.pack())).collect(),
            strs: strs.into_iter().map(|(k, l)| (k, l.pack())).collect(),
            journal: None,
        })
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Loc> {
        match key {
            Key::Int(k) => self.ints.get(k),
            Key::Str(s) => self.strs.get(s.as_str()),
        }
        .map(|v| Loc::unpack(*v))
    }

    /// Point `key` at `loc`; returns the previous location.
    pub(crate) fn insert(&mut self, key: &Key, loc: Loc) -> Option<Loc> {
        let old = match key {
            Key::Int(k) => self.ints.insert(*k, loc.pack()),
            Key::Str(s) => self.strs.insert(s.as_str().into(), loc.pack()),
        }
        .map(Loc::unpack);
        self.record(key, old, Some(loc));
        old
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Loc> {
        let old = match key {
            Key::Int(k) => self.ints.remove(k),
            Key::Str(s) => self.strs.remove(s.as_str()),
        }
        .map(Loc::unpack);
        if old.is_some() {
            self.record(key, old, None);
        }
        old
    }

    fn record(&mut self, key: &Key, old: Option<Loc>, new: Option<Loc>) {
        if let Some(j) = &mut self.journal {
            j.push(Change {
                key: key.clone(),
                old,
                new,
            });
        }
    }

    /// Record every later change until [`PkIndex::take_journal`].
    pub(crate) fn start_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Stop recording; the changes since [`PkIndex::start_journal`], oldest first.
    pub(crate) fn take_journal(&mut self) -> Vec<Change> {
        self.journal.take().unwrap_or_default()
    }

    /// A copy of the index (without a journal).
    pub(crate) fn snapshot(&self) -> PkIndex {
        PkIndex {
            ints: self.ints.clone(),
            strs: self.strs.clone(),
            journal: None,
        }
    }

    /// Rewrite every location through `f` (`None`: keep it). Stops at the first error.
    pub(crate) fn relocate<E>(
        &mut self,
        mut f: impl FnMut(Loc) -> Result<Option<Loc>, E>,
    ) -> Result<(), E> {
        for v in self.ints.values_mut().chain(self.strs.values_mut()) {
            if let Some(loc) = f(Loc::unpack(*v))? {
                *v = loc.pack();
            }
        }
        Ok(())
    }

    /// Apply `change` (a journal entry of another index).
    pub(crate) fn apply(&mut self, change: &Change) {
        match change.new {
            Some(loc) => {
                self.insert(&change.key, loc);
            }
            None => {
                self.remove(&change.key);
            }
        }
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
    fn a_bulk_build_equals_inserting_and_names_a_key_given_twice() {
        let loc = |row| Loc { container: 3, row };
        let keys: Vec<Key> = (0..500u64)
            .rev()
            .map(|i| match i % 3 {
                0 => Key::Str(format!("k{}", i * 7919 % 1000)),
                _ => Key::Int(i * 2_654_435_761 % 100_003),
            })
            .collect();
        let mut one_by_one = PkIndex::default();
        for (row, k) in keys.iter().enumerate() {
            assert!(one_by_one.insert(k, loc(row as u32)).is_none());
        }
        let entries = || {
            keys.iter()
                .cloned()
                .enumerate()
                .map(|(r, k)| (k, loc(r as u32)))
        };
        let bulk = PkIndex::from_entries(entries(), 0).unwrap();
        assert_eq!(
            bulk.page(None, usize::MAX),
            one_by_one.page(None, usize::MAX)
        );
        assert_eq!(bulk.len(), keys.len());

        let twice = entries().chain([(keys[7].clone(), loc(9_999))]);
        assert_eq!(PkIndex::from_entries(twice, 500).unwrap_err(), keys[7]);
        let twice = entries().chain([(keys[9].clone(), loc(9_999))]);
        assert_eq!(PkIndex::from_entries(twice, 501).unwrap_err(), keys[9]);
    }

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

    #[test]
    fn a_journal_replayed_on_a_relocated_snapshot_matches_the_index() {
        let loc = |container, row| Loc { container, row };
        let mut pk = PkIndex::default();
        for k in 0..10u64 {
            pk.insert(&Key::Int(k), loc(1, k as u32));
        }
        pk.start_journal();
        let mut copy = pk.snapshot();
        copy.relocate(|l| Ok::<_, ()>((l.container == 1).then(|| loc(9, l.row))))
            .unwrap();
        pk.insert(&Key::Int(3), loc(2, 0));
        pk.remove(&Key::Int(4));
        pk.remove(&Key::Int(99));
        pk.insert(&Key::Str("s".into()), loc(2, 1));
        let journal = pk.take_journal();
        assert_eq!(
            journal.len(),
            3,
            "a remove of an absent key changes nothing"
        );
        assert_eq!(journal[0].old, Some(loc(1, 3)));
        for c in &journal {
            copy.apply(c);
        }
        assert_eq!(copy.len(), pk.len());
        assert_eq!(copy.get(&Key::Int(3)), Some(loc(2, 0)));
        assert_eq!(copy.get(&Key::Int(4)), None);
        assert_eq!(copy.get(&Key::Int(5)), Some(loc(9, 5)));
        assert_eq!(copy.get(&Key::Str("s".into())), Some(loc(2, 1)));
        pk.insert(&Key::Int(6), loc(3, 0));
        assert!(pk.take_journal().is_empty(), "the journal stopped");
    }
}
