//! The thread pool that runs background flushes and compactions.
//!
//! Compaction rebuilds a segment's graph on many threads. On the global rayon pool it would
//! take every core and queue searches behind it; here it runs on a pool of its own, sized to
//! leave a core to foreground work (`Options::background_threads`, default: cores − 1, at
//! least one), whose threads run at a lower scheduling priority (nice 5 on Linux), so a
//! search that needs a core gets it first. One pool per size is shared by every shard in the
//! process: a node with many shards does not multiply its background threads.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Niceness of background threads: CFS weighs a nice-5 thread at about a third of a
/// nice-0 one, so searches win a contended core while background work, which writers wait
/// on when memtables pile up, still progresses.
const BACKGROUND_NICE: i32 = 5;

/// How many threads background work gets when the option is 0: all cores but one.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1)
}

/// The shared background pool with `threads` threads (0: [`default_threads`]), or `None`
/// when it cannot be started (the caller then runs on the current thread's pool).
pub(crate) fn background(threads: usize) -> Option<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let threads = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    let mut pools = POOLS.get_or_init(Default::default).lock();
    if let Some(p) = pools.get(&threads) {
        return Some(p.clone());
    }
    let built = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("vecshard-bg-{i}"))
        .start_handler(|_| lower_priority())
        .build();
    match built {
        Ok(p) => {
            let p = Arc::new(p);
            pools.insert(threads, p.clone());
            Some(p)
        }
        Err(e) => {
            tracing::warn!(error = %e, threads, "cannot start the background pool; background work shares the global pool");
            None
        }
    }
}

/// Run `work` on the shared background pool of `threads` threads (see [`background`]),
/// or on the current thread when that pool cannot be started.
pub(crate) fn run<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    match background(threads) {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Lower the calling thread's scheduling priority (Linux: per-thread niceness).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS and a thread id
        // changes only that thread's niceness and reports failure through its return value.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE)
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the background thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_shared_per_size_and_sized_as_asked() {
        let a = background(2).expect("pool");
        let b = background(2).expect("pool");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.current_num_threads(), 2);
        assert_eq!(
            background(0).expect("pool").current_num_threads(),
            default_threads()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn background_threads_run_at_a_lower_priority() {
        let pool = background(1).expect("pool");
        let nice = pool.install(|| {
            // SAFETY: getpriority of the calling thread; -1 is a valid niceness, errno unused.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        });
        assert_eq!(nice, BACKGROUND_NICE);
    }
}
