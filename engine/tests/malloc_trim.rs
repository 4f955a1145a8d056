//! `malloc::trim_in_background` gives back the free pages left among long-lived
//! allocations once enough object-store reads were noted. A test binary of its own: RSS and
//! the trimming thread are process-wide.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::time::Duration;

/// This process's resident set in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in kB");
    kib >> 10
}

#[tokio::test]
async fn free_pages_among_kept_blocks_go_back_after_reads() {
    assert!(vecshard_engine::malloc::trim_in_background());
    // As a read does: a short-lived buffer (written, so resident) and, beside it, a small
    // allocation that stays; 4000 times. glibc can return none of the buffers' pages on
    // its own: each lies below a kept allocation.
    let mut kept = Vec::with_capacity(4000);
    let mut buffers = Vec::with_capacity(4000);
    for i in 0..4000u32 {
        buffers.push(vec![i as u8; 16 << 10]);
        kept.push(Box::new([i; 16]));
    }
    drop(buffers);
    let before = rss_mib();
    vecshard_engine::malloc::note_churn(64 << 20);
    let after = vecshard_test_support::eventually(
        "the free 16 KiB buffers' pages go back",
        Duration::from_secs(30),
        || async {
            let now = rss_mib();
            (now + 32 <= before).then_some(now)
        },
    )
    .await;
    assert!(kept.iter().enumerate().all(|(i, k)| k[15] == i as u32));
    eprintln!("RSS {before} MiB -> {after} MiB");
}
