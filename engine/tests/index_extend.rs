//! A segment graph extended with more rows (what a merge does with its largest input):
//! recall against brute force as good as a graph built over all rows at once, also when
//! some base rows are dropped (their neighbours' links repaired), the base rows' links
//! kept, and bad inputs refused with a message instead of a panic.

#[path = "index_util.rs"]
mod util;

use vecshard_engine::Metric;
use vecshard_engine::index::{
    FrozenIndex, IndexBytes, IndexParams, MemIndex, SliceVectors, build, extend,
};

const DIM: usize = 32;
const K: usize = 10;
const NQ: usize = 100;

fn params() -> IndexParams {
    IndexParams {
        m: 12,
        ef_construction: 80,
        ..IndexParams::default()
    }
}

/// Recall@10 of a segment index over the first `rows` rows, searched at `ef`.
fn recall(
    bytes: &IndexBytes,
    metric: Metric,
    data: &[f32],
    rows: usize,
    queries: &[f32],
    ef: usize,
) -> f64 {
    let vectors = SliceVectors {
        data: &data[..rows * DIM],
        dim: DIM,
    };
    let frozen = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, rows as u32)
        .expect("open the written index");
    let all = |_: u32| true;
    let truth = util::truth(metric, &vectors, queries, rows as u32, K, &all);
    let found: Vec<_> = queries
        .chunks_exact(DIM)
        .map(|q| frozen.search(&bytes.graph, &bytes.codes, &vectors, q, K, ef, &all, 1.0))
        .collect();
    assert!(found.iter().all(|f| f.len() == K && util::well_formed(f)));
    util::recall(&found, &truth)
}

/// A segment index over the first `rows` rows, built the way a flush writes one.
fn segment(metric: Metric, data: &[f32], rows: usize) -> IndexBytes {
    let vectors = SliceVectors {
        data: &data[..rows * DIM],
        dim: DIM,
    };
    let mem = MemIndex::new(params(), metric, DIM, rows);
    for r in 0..rows as u32 {
        mem.insert(r, &vectors);
    }
    mem.to_bytes(rows as u32, &vectors)
}

/// A segment index over the first rows of some data, opened: what `extend` starts from.
struct Base {
    metric: Metric,
    bytes: IndexBytes,
    index: FrozenIndex,
}

impl Base {
    /// The index a flush writes for the first `base_rows` rows of `data`.
    fn new(metric: Metric, data: &[f32], base_rows: usize) -> Self {
        let bytes = segment(metric, data, base_rows);
        let index = FrozenIndex::open(&bytes.graph, &bytes.codes, metric, DIM, base_rows as u32)
            .expect("open the base index");
        Base {
            metric,
            bytes,
            index,
        }
    }

    /// `extend` with the base rows `kept` and `rows` rows in all, read from `vectors`;
    /// `graph` is the section passed as the base graph (normally `self.bytes.graph`).
    fn extend(
        &self,
        params: IndexParams,
        graph: &[u8],
        kept: &[u32],
        rows: usize,
        vectors: &[f32],
    ) -> Result<IndexBytes, String> {
        let vectors = SliceVectors {
            data: vectors,
            dim: DIM,
        };
        extend(
            params,
            self.metric,
            DIM,
            &self.index,
            graph,
            kept,
            rows as u32,
            &vectors,
        )
    }
}

/// A base segment of `base_rows` rows, of which those `drop` says are dropped, extended
/// to `total` rows; compared with a rebuild over the same rows.
fn check(metric: Metric, base_rows: usize, total: usize, drop: impl Fn(usize) -> bool) {
    let data = util::clustered(7, total + NQ, DIM, 40, metric);
    let (rows, queries) = data.split_at(total * DIM);
    let base = Base::new(metric, rows, base_rows);
    let kept: Vec<u32> = (0..base_rows)
        .filter(|r| !drop(*r))
        .map(|r| r as u32)
        .collect();
    // The merged rows: the kept base rows first, then the rest.
    let mut merged: Vec<f32> = Vec::with_capacity(total * DIM);
    for &r in &kept {
        merged.extend_from_slice(&rows[r as usize * DIM..(r as usize + 1) * DIM]);
    }
    merged.extend_from_slice(&rows[base_rows * DIM..]);
    let n = merged.len() / DIM;
    let all = SliceVectors {
        data: &merged,
        dim: DIM,
    };
    let extended = base
        .extend(params(), &base.bytes.graph, &kept, n, &merged)
        .expect("extend");
    let rebuilt = build(params(), metric, DIM, n as u32, &all);
    for ef in [16, 64] {
        let (e, b) = (
            recall(&extended, metric, &merged, n, queries, ef),
            recall(&rebuilt, metric, &merged, n, queries, ef),
        );
        eprintln!("{metric:?} ef {ef}: recall@10 extended {e:.3}, rebuilt {b:.3}");
        assert!(
            e >= b - 0.02,
            "{metric:?} ef {ef}: extended {e}, rebuilt {b}"
        );
        assert!(
            e >= if ef == 16 { 0.85 } else { 0.97 },
            "{metric:?} ef {ef}: extended {e}"
        );
    }
}

#[test]
fn an_extended_graph_finds_what_a_rebuilt_one_finds() {
    check(Metric::L2, 2_000, 4_000, |_| false);
    check(Metric::Cosine, 3_000, 4_000, |_| false);
    check(Metric::Dot, 1_000, 3_000, |_| false);
}

#[test]
fn dropped_base_rows_are_repaired_around() {
    // 10 % of the base rows dropped (every tenth, and the entry point's layer mates
    // with them), and a run of 200 in one place.
    check(Metric::L2, 4_000, 6_000, |r| {
        r % 10 == 3 || (1_000..1_200).contains(&r)
    });
    // Every base row dropped but one: the graph is the new rows' own.
    check(Metric::L2, 1_000, 3_000, |r| r != 500);
}

#[test]
fn extending_by_nothing_keeps_the_graph() {
    let data = util::clustered(3, 2_000, DIM, 10, Metric::L2);
    let base = Base::new(Metric::L2, &data, 2_000);
    let kept: Vec<u32> = (0..2_000).collect();
    let same = base
        .extend(params(), &base.bytes.graph, &kept, 2_000, &data)
        .unwrap();
    assert_eq!(
        same.graph, base.bytes.graph,
        "the same links, layers and entry point"
    );
}

#[test]
fn bad_extensions_are_refused_by_name() {
    let data = util::clustered(5, 1_000, DIM, 10, Metric::L2);
    let base = Base::new(Metric::L2, &data, 500);
    let graph = &base.bytes.graph;
    let kept: Vec<u32> = (0..500).collect();
    let fewer = base.extend(params(), graph, &kept, 400, &data).unwrap_err();
    assert!(fewer.contains("400"), "{fewer}");
    let other_m = IndexParams { m: 8, ..params() };
    let degrees = base
        .extend(other_m, graph, &kept, 1_000, &data)
        .unwrap_err();
    assert!(degrees.contains("does not fit"), "{degrees}");
    let e = base
        .extend(params(), graph, &[3, 2, 1], 1_000, &data)
        .unwrap_err();
    assert!(e.contains("ascending"), "{e}");
    let e = base
        .extend(params(), graph, &[499, 500], 1_000, &data)
        .unwrap_err();
    assert!(e.contains("does not fit"), "{e}");
    // The codes section where the graph belongs.
    let wrong = base
        .extend(params(), &base.bytes.codes, &kept, 1_000, &data)
        .unwrap_err();
    assert!(!wrong.is_empty());
}
