//! The block cache's bound is the memory it holds: what the allocator hands out per cached
//! block (the block, its entry, its check mark and residency watch, the `Bytes` sharing,
//! and the owner entry and eviction watcher of the lazy segment's block table that keeps
//! it, as every block a lazy search reads is kept) stays within the per-block cost the
//! cache counts. A test binary of its own: it reads the process's allocator totals, which
//! other tests would move.
#![cfg(all(feature = "object-store", target_os = "linux", target_env = "gnu"))]

use bytes::Bytes;
use vecshard_engine::index::BlockTable;
use vecshard_engine::storage::{StorageOptions, open_storage};

/// Bytes the allocator has handed out and not taken back, over every arena.
fn in_use() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

#[test]
fn cached_blocks_cost_what_the_cache_counts() {
    const BLOCK: u64 = 4 << 10;
    const BLOCKS: u64 = 16_000;
    let opts = StorageOptions {
        block_cache_bytes: 256 << 20,
        ..StorageOptions::default()
    };
    let s = open_storage("memory://block-cache-memory", &opts).unwrap();
    let data = Bytes::from(vec![7u8; (BLOCK * BLOCKS) as usize]);
    s.put("segments/1", data).unwrap();
    // A lazy segment's table of the section's blocks (its addresses are there from the
    // open), the runtime and the first entries' bookkeeping before the count starts.
    let table = BlockTable::new(BLOCKS as usize, BLOCK as usize, (BLOCK * BLOCKS) as usize);
    s.get_range("segments/1", 0..BLOCK).unwrap();
    let (before, resident_before) = (in_use(), s.cache_resident_bytes());
    // Scattered single blocks, as a search reads them, a round of 50 at a time; every
    // answer dropped, so only what the cache keeps stays allocated.
    for round in (1..BLOCKS).step_by(2).collect::<Vec<_>>().chunks(50) {
        let ranges: Vec<_> = round.iter().map(|b| b * BLOCK..(b + 1) * BLOCK).collect();
        let got = s.get_blocks("segments/1", &ranges).unwrap();
        assert_eq!(got.len(), ranges.len());
        for (b, f) in round.iter().zip(&got) {
            let resident = f.resident.as_ref().expect("a cached block");
            table.keep(*b as usize, &f.bytes, resident);
        }
    }
    assert_eq!(table.held() as u64, BLOCKS / 2);
    let cached = (s.cache_resident_bytes() - resident_before) as f64;
    let allocated = in_use().saturating_sub(before) as f64;
    let blocks = (BLOCKS / 2) as f64;
    assert!(cached >= blocks * BLOCK as f64, "{cached} B counted");
    assert!(
        allocated <= cached * 1.01,
        "the cache counts {cached} B for {blocks} blocks; the allocator holds {allocated} B \
         more ({:.0} B per block beyond its 4 KiB)",
        allocated / blocks - BLOCK as f64,
    );
}
