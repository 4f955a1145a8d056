//! Counting live points, optionally those matching a filter, over one snapshot without
//! materialising any point: a segment's rows come from its filter index (a bitmap), the
//! memtable's from its rows' metadata, and each row counts when it is visible at the
//! snapshot (deleted and superseded rows carry deletion marks, so they never count).

use super::Inner;
use super::view::Container;
use crate::error::Result;
use crate::filter::Filter;
use vecshard_model::validate;

impl Inner {
    pub(super) fn count(&self, filter: Option<&Filter>) -> Result<u64> {
        self.check_open()?;
        if let Some(f) = filter {
            validate::filter(f)?;
        }
        let (view, snap) = self.snapshot();
        let mut n = 0u64;
        for c in view.containers.iter() {
            n += match c {
                Container::Mem(m) => (0..m.rows() as u32)
                    .filter(|&row| {
                        m.visible(row, snap)
                            && filter
                                .is_none_or(|f| m.row(row).is_some_and(|r| f.matches(&r.metadata)))
                    })
                    .count() as u64,
                Container::Seg(s) => s
                    .matching(filter)
                    .iter()
                    .filter(|&row| s.visible(row, snap))
                    .count() as u64,
            };
        }
        Ok(n)
    }
}
