//! Time as a value passed in: the router's control loop, its failure detection and the
//! node's heartbeat timer read the time and sleep through a [`Clock`], so tests advance a
//! [`ManualClock`] instead of waiting out real timeouts.
//!
//! [`SystemClock`] (feature `tokio`) is the real one and the default everywhere.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of monotonic time and of timers.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;

    /// A future that completes once [`Clock::now`] has moved `d` past the call.
    fn sleep(&self, d: Duration) -> Sleep;

    /// How long since `earlier` (zero if `earlier` is in the future).
    fn since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// The real clock: `Instant::now` and tokio's timer.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(feature = "tokio")]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The system clock as a shared [`Clock`] (what every component uses unless a test passes
/// another).
#[cfg(feature = "tokio")]
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until [`ManualClock::advance`] moves it; sleepers wake when
/// it passes their deadline. Clones share one time.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Manual>,
}

struct Manual {
    start: Instant,
    state: Mutex<ManualState>,
}

#[derive(Default)]
struct ManualState {
    elapsed: Duration,
    sleepers: Vec<Waker>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock(+{:?})", self.elapsed())
    }
}

impl ManualClock {
    /// A clock standing at the real current instant.
    pub fn new() -> Self {
        ManualClock {
            inner: Arc::new(Manual {
                start: Instant::now(),
                state: Mutex::new(ManualState::default()),
            }),
        }
    }

    /// Move time forward by `d` and wake every sleeper whose deadline has come.
    pub fn advance(&self, d: Duration) {
        let woken = {
            let mut st = self.lock();
            st.elapsed += d;
            std::mem::take(&mut st.sleepers)
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// How far the clock has been advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.start + self.elapsed()
    }

    fn sleep(&self, d: Duration) -> Sleep {
        let deadline = self.elapsed() + d;
        Box::pin(ManualSleep {
            clock: self.clone(),
            deadline,
        })
    }
}

struct ManualSleep {
    clock: ManualClock,
    /// In time since the clock's start.
    deadline: Duration,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.clock.lock();
        if st.elapsed >= self.deadline {
            return Poll::Ready(());
        }
        if !st.sleepers.iter().any(|w| w.will_wake(cx.waker())) {
            st.sleepers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_manual_sleep_ends_exactly_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut sleep = clock.sleep(Duration::from_secs(2));
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_millis(1999));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken to look again");
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        clock.advance(Duration::from_millis(1));
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        assert_eq!(clock.since(t0), Duration::from_secs(2));
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
        assert!(
            clock
                .sleep(Duration::ZERO)
                .as_mut()
                .poll(&mut cx)
                .is_ready()
        );
        // Clones share the time.
        clock.clone().advance(Duration::from_secs(1));
        assert_eq!(clock.since(t0), Duration::from_secs(3));
        assert_eq!(clock.since(t0 + Duration::from_secs(10)), Duration::ZERO);
    }
}
