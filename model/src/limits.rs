//! Limits of the data model. Requests beyond them get an invalid-argument error naming
//! the limit; the same numbers hold in the engine, the node, the router and the CLI.

/// Longest collection name, in bytes (it becomes a directory name).
pub const MAX_NAME_LEN: usize = 255;
/// Largest vector dimension.
pub const MAX_DIM: usize = 16_384;
/// Most shards of a collection.
pub const MAX_SHARDS: u32 = 4096;
/// Longest string key, in bytes.
pub const MAX_KEY_BYTES: usize = 1_024;
/// Largest payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Largest metadata of one point, in bytes as stored ([`crate::validate::metadata_len`]).
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// Most points or keys in one upsert, delete or get batch.
pub const MAX_BATCH: usize = 100_000;
/// Largest `k`.
pub const MAX_K: usize = 10_000;
/// Most searches in one batch search.
pub const MAX_SEARCH_BATCH: usize = 1_024;
/// Largest `ef` (query-time search width, and `ef_search` of an index).
pub const MAX_EF: usize = 100_000;
/// Largest scan page.
pub const MAX_SCAN_LIMIT: u32 = 10_000;
/// Scan page when a request says 0.
pub const DEFAULT_SCAN_LIMIT: u32 = 1000;
/// Deepest nesting of a filter (the top level is 1).
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most sub-filters of one `and` or `or`.
pub const MAX_FILTER_BREADTH: usize = 1_024;
/// Most values of one `in` list.
pub const MAX_IN_VALUES: usize = 10_000;
/// Allowed graph degree `m` of an index.
pub const INDEX_M: std::ops::RangeInclusive<usize> = 2..=256;
