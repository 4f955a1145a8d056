//! How the process's allocator keeps memory: a cap on glibc's malloc arenas, and free heap
//! pages given back to the system after object-store reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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

/// Bytes of object-store reads since the trimming thread last looked.
static CHURN: AtomicU64 = AtomicU64::new(0);

/// Whether [`trim_in_background`] has started its thread.
static TRIMMING: AtomicBool = AtomicBool::new(false);

/// Churn after which the trimming thread gives free pages back.
const TRIM_AFTER_BYTES: u64 = 8 << 20;

/// How often the trimming thread looks.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Note `bytes` read from an object store: each read allocates buffers for a short while
/// beside the blocks the cache keeps (see [`trim_in_background`]).
pub fn note_churn(bytes: u64) {
    CHURN.fetch_add(bytes, Ordering::Relaxed);
}

/// Starts (once per process) a thread that, once a second after at least 8 MiB of
/// object-store reads, gives the heap's free pages back to the system (glibc's
/// `malloc_trim`; about 1 ms for a 250 MB heap). Returns whether the thread runs: not
/// when the allocator is not glibc's.
///
/// glibc returns freed memory to the system only from the top of the heap. A read's
/// buffers (the HTTP client's headers, signing strings, read buffers) are freed while the
/// blocks copied out of them stay cached, so their pages stay resident among the blocks:
/// over 50k single-block GETs at 1M rows, ~18 MB free but resident beyond a 203 MB cache
/// (design note 015). The node calls this first thing in `main`; an embedding program may.
pub fn trim_in_background() -> bool {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return false;
    }
    if TRIMMING.swap(true, Ordering::SeqCst) {
        return true;
    }
    let started = std::thread::Builder::new()
        .name("malloc-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_EVERY);
                if CHURN.load(Ordering::Relaxed) >= TRIM_AFTER_BYTES {
                    CHURN.store(0, Ordering::Relaxed);
                    trim();
                }
            }
        });
    if started.is_err() {
        TRIMMING.store(false, Ordering::SeqCst);
    }
    started.is_ok()
}

/// Give the heap's free pages back to the system now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
