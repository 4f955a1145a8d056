//! How the process's allocator keeps memory: a cap on glibc's malloc arenas.

/// Caps glibc's malloc arenas at the machine's cores (at least 2) and returns the cap, unless
/// `MALLOC_ARENA_MAX` is set (glibc applies that) or the allocator is not glibc's: `None`.
///
/// glibc gives each thread an arena of its own when it first allocates, up to 8 per core,
/// and memory a thread frees goes back to the arena it came from, reused only by the threads
/// of that arena. A process whose block cache is filled by many threads (object-store reads
/// on the runtime's workers and blocking threads, the read pool, the prefetch thread) so
/// keeps, in every arena, what its threads allocated and freed along the way: at 1M rows
/// 41 MB beyond a 203 MB block cache (design note 015). With one arena per core that
/// memory is reused by whichever thread allocates next. The node calls this first thing
/// in `main`; an embedding program may too. Call it before other threads start.
pub fn limit_arenas() -> Option<usize> {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return None;
    }
    let cap = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    set_arena_max(cap).then_some(cap)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(cap: usize) -> bool {
    let cap = libc::c_int::try_from(cap).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets a parameter of the allocator.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cap) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_cap: usize) -> bool {
    false
}
