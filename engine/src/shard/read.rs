//! The read path: get, scan and search over one consistent snapshot.

use roaring::RoaringBitmap;

use super::Inner;
use super::view::{Container, View};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::index::{self, Neighbor, Vectors, Within};
use crate::memtable::Memtable;
use crate::segment::Segment;
use crate::types::{Hit, Key, Point, SearchRequest};
use vecshard_model::validate;

/// How many of its own best rows (percent of k) each walk after the first finds before
/// the bound from the others may stop it (see `Within::keep`); a walk whose own share of
/// `ef` is at most this is not cut by the bound. Measured with `segments_bench` (1M
/// clustered 32-d rows in 3 segments) and `tests/multi_segment.rs` (16-d Gaussian
/// clusters, 6.6k rows in 3 segments and a memtable): at 30 % the walks cost a quarter
/// less at equal ef but lost 0.01 recall@10 on the first and 0.06 at ef 128 on the
/// second (a narrow walk stuck before its nearest rows); at 100 % still 0.02 there; at
/// 300 % none on either. `segments_bench --segments` (200k 32-d rows in 3 and 8 equal
/// segments, efC 64): at 100 % and 50 % recall stops rising with ef (3 segments: 0.975 at
/// ef 64, 0.978 at 128, against 0.988 and 0.991 at 300 %).
const KEEP_PERCENT: usize = 300;

/// Most points in one scan page.
pub const MAX_SCAN_PAGE: usize = 10_000;

/// How the containers (segments and memtables) of one shard are searched together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Largest first, each later walk bounded by the k-th best distance found so far and
    /// given a share of `ef` by its size (the default).
    Shared,
    /// Each container walked on its own with the full `ef`, the lists merged (the path
    /// before issue 14; kept to compare the two in benches and tests).
    Separate,
}

/// What a search needs in every container.
struct Query<'a> {
    vector: &'a [f32],
    k: usize,
    ef: usize,
    filter: Option<&'a Filter>,
    exact: bool,
    snap: u64,
}

impl Inner {
    pub(super) fn get(&self, key: &Key) -> Result<Option<Point>> {
        self.check_open()?;
        vecshard_model::validate::key(key)?;
        let pk = self.keys()?;
        let view = self.current.read().view.clone();
        let Some(loc) = pk.get(key) else {
            return Ok(None);
        };
        drop(pk);
        let c = view
            .get(loc.container)
            .ok_or_else(|| Error::new(crate::ErrorKind::Io, "index and view disagree"))?;
        c.point(loc.row).map(Some)
    }

    pub(super) fn scan(&self, after: Option<&Key>, limit: usize) -> Result<Vec<Point>> {
        self.check_open()?;
        if limit == 0 || limit > MAX_SCAN_PAGE {
            return Err(Error::invalid(format!(
                "scan limit {limit} out of range 1..={MAX_SCAN_PAGE}"
            )));
        }
        let pk = self.keys()?;
        let view = self.current.read().view.clone();
        let page = pk.page(after, limit);
        drop(pk);
        page.into_iter()
            .map(|(_, loc)| {
                let c = view
                    .get(loc.container)
                    .ok_or_else(|| Error::new(crate::ErrorKind::Io, "index and view disagree"))?;
                c.point(loc.row)
            })
            .collect()
    }

    pub(super) fn search(&self, req: &SearchRequest, plan: Plan) -> Result<Vec<Hit>> {
        self.check_open()?;
        validate::search_params(req.k, req.ef)?;
        validate::vector(&req.vector, self.spec.dim, self.spec.metric)
            .map_err(|e| e.within("query"))?;
        if let Some(f) = &req.filter {
            validate::filter(f)?;
        }
        let mut vector = req.vector.clone();
        if self.spec.metric == crate::types::Metric::Cosine {
            validate::normalize(&mut vector);
        }
        let (view, snap) = self.snapshot();
        let q = Query {
            vector: &vector,
            k: req.k,
            ef: req.ef.unwrap_or(self.spec.index.ef_search).max(req.k),
            filter: req.filter.as_ref(),
            exact: req.exact,
            snap,
        };
        // Containers are searched one after another, largest first, and each walk after
        // the first gets the k-th best distance found so far as a bound (`Within`): it
        // stops once its frontier cannot beat that bound (after finding its own `keep`
        // best rows) instead of filling its own `ef` results, and a container gets a share
        // of `ef` by its size relative to the largest (at least k). Deletions, superseded
        // rows and filters are applied inside each walk (`accept`), so the bound only ever
        // comes from rows that can be returned. Exact searches use no bound.
        // `Plan::Separate` walks every container with the full `ef` and no bound.
        let shared = plan == Plan::Shared;
        let mut order: Vec<usize> = (0..view.containers.len()).collect();
        order.sort_by_key(|&ci| std::cmp::Reverse(view.containers[ci].rows()));
        let largest = order
            .first()
            .map_or(1, |&ci| view.containers[ci].rows().max(1));
        let keep = (q.k * KEEP_PERCENT).div_ceil(100).max(1);
        let mut kth = KthBest::new(q.k);
        let mut cands: Vec<(Neighbor, usize)> = Vec::new();
        for ci in order {
            let c = &view.containers[ci];
            let within = if q.exact || !shared {
                Within::NONE
            } else {
                Within {
                    dist: kth.bound(),
                    keep,
                }
            };
            let ef = if shared {
                let share = f64::from(c.rows()) / f64::from(largest);
                ((q.ef as f64 * share).ceil() as usize).clamp(q.k, q.ef)
            } else {
                q.ef
            };
            let found = match c {
                Container::Mem(m) => self.search_memtable(m, &q, ef, within),
                Container::Seg(s) => self.search_segment(s, &q, ef, within)?,
            };
            for n in &found {
                kth.push(n.dist);
            }
            cands.extend(found.into_iter().map(|n| (n, ci)));
        }
        // The best k by (distance, key): keys are read only for rows up to the k-th
        // distance (ties included).
        cands.sort_by(|a, b| a.0.dist.total_cmp(&b.0.dist));
        if let Some(last) = cands.get(req.k.saturating_sub(1)).map(|c| c.0.dist) {
            let end = cands.partition_point(|c| c.0.dist.total_cmp(&last).is_le());
            cands.truncate(end);
        }
        let mut keyed: Vec<(Neighbor, usize, Key)> = cands
            .into_iter()
            .map(|(n, ci)| (n, ci, view.containers[ci].key(n.row)))
            .collect();
        keyed.sort_by(|a, b| a.0.dist.total_cmp(&b.0.dist).then_with(|| a.2.cmp(&b.2)));
        keyed.truncate(req.k);
        keyed
            .into_iter()
            .map(|(n, ci, key)| self.hit(&view, ci, n, key, req))
            .collect()
    }

    fn hit(
        &self,
        view: &View,
        ci: usize,
        n: Neighbor,
        key: Key,
        req: &SearchRequest,
    ) -> Result<Hit> {
        let c = &view.containers[ci];
        Ok(Hit {
            key,
            score: self.spec.metric.score(n.dist),
            distance: n.dist,
            metadata: if req.with_metadata {
                Some(c.metadata(n.row)?)
            } else {
                None
            },
            payload: req.with_payload.then(|| c.payload(n.row)).transpose()?,
            vector: req.with_vector.then(|| c.vector(n.row)).transpose()?,
        })
    }

    fn search_memtable(&self, m: &Memtable, q: &Query, ef: usize, within: Within) -> Vec<Neighbor> {
        let accept = |row: u32| {
            m.visible(row, q.snap)
                && q.filter
                    .is_none_or(|f| m.row(row).is_some_and(|r| f.matches(&r.metadata)))
        };
        if !q.exact {
            let found = m
                .index()
                .search_within(m.vectors(), q.vector, q.k, ef, &accept, within);
            if found.len() >= within.needed(q.k) {
                return found;
            }
        }
        exact_with_ties(
            self.spec.metric,
            m.vectors(),
            q.vector,
            0..m.rows() as u32,
            q.k,
            &accept,
        )
    }

    fn search_segment(
        &self,
        s: &Segment,
        q: &Query,
        ef: usize,
        within: Within,
    ) -> Result<Vec<Neighbor>> {
        // Unfiltered: every row matches, without a bitmap of them all.
        let matching: Option<RoaringBitmap> = q.filter.map(|f| s.matching(Some(f)));
        let count = matching
            .as_ref()
            .map_or(s.rows() as usize, |m| m.len() as usize);
        if count == 0 {
            return Ok(Vec::new());
        }
        // In a segment whose writes all precede the snapshot (every segment of a view:
        // flushes and merges take only published writes; checked anyway, it is free) only
        // deletions hide rows, so the per-row sequence number, a cache miss for each row a
        // walk reaches, is not read: 7-20 % off p50 at every ef and segment count
        // (`segments_bench --segments`, design note 008).
        let whole = s.max_seq() <= q.snap;
        let visible = |row: u32| {
            if whole {
                s.deleted.alive_at(row, q.snap)
            } else {
                s.visible(row, q.snap)
            }
        };
        if !q.exact && !index::use_brute_force(s.rows() as usize, count, q.k, ef) {
            let accept =
                |row: u32| matching.as_ref().is_none_or(|m| m.contains(row)) && visible(row);
            let selectivity = count as f32 / s.rows().max(1) as f32;
            let found = s.ann(q.vector, q.k, ef, &accept, selectivity, within)?;
            if found.len() >= within.needed(q.k) {
                return Ok(found);
            }
        }
        // The rows to scan: the visible matching ones (a lazy segment reads their
        // vectors, in one round).
        let rows: Vec<u32> = match &matching {
            Some(m) => m.iter().filter(|r| visible(*r)).collect(),
            None => (0..s.rows()).filter(|r| visible(*r)).collect(),
        };
        let vectors = s.vectors_of(&rows)?;
        Ok(exact_with_ties(
            self.spec.metric,
            &vectors,
            q.vector,
            rows.into_iter(),
            q.k,
            &|_| true,
        ))
    }
}

/// The k-th smallest of the distances pushed so far.
struct KthBest {
    k: usize,
    heap: std::collections::BinaryHeap<Dist>,
}

impl KthBest {
    fn new(k: usize) -> Self {
        KthBest {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    fn push(&mut self, d: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Dist(d));
        } else if self.heap.peek().is_some_and(|top| d < top.0) {
            self.heap.pop();
            self.heap.push(Dist(d));
        }
    }

    /// The k-th best distance, `INFINITY` while fewer than k were pushed.
    fn bound(&self) -> f32 {
        match self.heap.peek() {
            Some(top) if self.heap.len() >= self.k => top.0,
            _ => f32::INFINITY,
        }
    }
}

/// A distance ordered by `total_cmp`.
#[derive(PartialEq)]
struct Dist(f32);

impl Eq for Dist {}
impl PartialOrd for Dist {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dist {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Exact top-k by distance, extended with every row tying the k-th distance so the caller
/// can break ties by key.
fn exact_with_ties(
    metric: crate::Metric,
    vectors: &dyn Vectors,
    query: &[f32],
    rows: impl Iterator<Item = u32>,
    k: usize,
    accept: &dyn Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let mut all: Vec<Neighbor> = rows
        .filter(|r| accept(*r))
        .map(|row| Neighbor {
            dist: crate::distance::distance(metric, query, vectors.get(row)),
            row,
        })
        .collect();
    if all.len() > k {
        all.select_nth_unstable_by(k - 1, |a, b| a.dist.total_cmp(&b.dist));
        let kth = all[k - 1].dist;
        let ties: Vec<Neighbor> = all[k..].iter().filter(|n| n.dist == kth).copied().collect();
        all.truncate(k);
        all.extend(ties);
    }
    all
}
