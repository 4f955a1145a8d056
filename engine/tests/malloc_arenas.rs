//! `malloc::limit_arenas` caps glibc's arenas: threads that allocate at the same time share
//! at most the cap instead of getting one arena each. A test binary of its own: the cap is
//! process-wide and must be set before the threads start.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::sync::{Arc, Barrier};

/// Arenas glibc has made so far: the `<heap nr=…>` entries of `malloc_info`.
fn arenas() -> usize {
    let mut buf: *mut libc::c_char = std::ptr::null_mut();
    let mut len: libc::size_t = 0;
    // SAFETY: open_memstream gives a stream writing into a buffer it allocates; the
    // stream is closed before the buffer is read and freed.
    let xml = unsafe {
        let stream = libc::open_memstream(&mut buf, &mut len);
        assert!(!stream.is_null(), "open_memstream failed");
        assert_eq!(libc::malloc_info(0, stream), 0, "malloc_info failed");
        libc::fclose(stream);
        let xml = std::slice::from_raw_parts(buf as *const u8, len).to_vec();
        libc::free(buf.cast());
        xml
    };
    String::from_utf8_lossy(&xml).matches("<heap nr=").count()
}

#[test]
fn threads_allocating_together_share_at_most_the_capped_arenas() {
    let cap = match vecshard_engine::malloc::limit_arenas() {
        Some(cap) => cap,
        // Set by whoever runs the tests: glibc applies that cap instead.
        None => std::env::var("MALLOC_ARENA_MAX")
            .expect("limit_arenas sets a cap unless MALLOC_ARENA_MAX is set")
            .parse()
            .expect("MALLOC_ARENA_MAX is a number"),
    };
    let threads = 4 * cap + 4;
    let all = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let all = all.clone();
            std::thread::spawn(move || {
                // Every thread allocates while all of them are alive: without a cap each
                // one gets an arena of its own (glibc allows 8 per core).
                let first = vec![i as u8; 4096];
                all.wait();
                let second = vec![i as u8; 64 << 10];
                all.wait();
                first.len() + second.len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), 4096 + (64 << 10));
    }
    let made = arenas();
    assert!(
        made <= cap,
        "{made} malloc arenas for {threads} threads, cap {cap}"
    );
}
