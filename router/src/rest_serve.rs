//! Serving the REST API's connections: `axum::serve`'s accept loop, except that each
//! connection's task is polled again at once when it wakes itself during its own poll
//! ([`PollAgain`]) instead of being rescheduled.
//!
//! Why: hyper's HTTP/1 connection hands a request's body to the handler through a
//! channel, and both ends of that channel live in the connection's one task: when the
//! handler asks for the body and when the connection pushes the bytes into the channel,
//! the task wakes itself while it is running. Tokio treats a task woken while it runs as
//! a task that yielded: it goes to the back of the worker's queue and **an idle worker is
//! woken** to help — which finds nothing to do and goes back to sleep. With one client
//! that is a second context switch per REST request (and the futex calls to wake and park
//! it), measured in `docs/design/016-served-path.md`. Polling the connection again at once
//! keeps the request on the one worker that read it; a wake that comes from anything else
//! (the socket, another task) is passed on unchanged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use axum::serve::Listener;
use futures::task::AtomicWaker;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;

/// At most this many immediate re-polls per poll; after that the wake goes to the
/// runtime (a future that keeps waking itself must not hold the worker).
const MAX_AGAIN: usize = 4;

/// `VECSHARD_REST_POLL_AGAIN=0` in the environment serves REST connections as
/// `axum::serve` does (no [`PollAgain`]): the A/B switch of the measurements in note 016.
pub const POLL_AGAIN_ENV: &str = "VECSHARD_REST_POLL_AGAIN";

fn poll_again() -> bool {
    !std::env::var(POLL_AGAIN_ENV).is_ok_and(|v| v.trim() == "0")
}

/// Serve `app` on `listener` until `shutdown` completes; then stop accepting, close every
/// connection gracefully (requests in flight are answered) and return when all are closed.
/// The same as `axum::serve(listener, app).with_graceful_shutdown(shutdown)`, with each
/// connection's task wrapped in [`PollAgain`].
pub async fn serve<L>(
    mut listener: L,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener,
{
    let (signal_tx, signal_rx) = watch::channel(());
    let again = poll_again();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let io = tokio::select! {
            (io, _addr) = listener.accept() => io,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let mut signal = signal_rx.clone();
        let connection = async move {
            let builder = Builder::new(TokioExecutor::new());
            let mut conn =
                std::pin::pin!(builder.serve_connection_with_upgrades(TokioIo::new(io), service));
            let mut closing = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(error = %e, "REST connection ended");
                        }
                        break;
                    }
                    // Changed (stopping) or closed (the server is gone): close after
                    // the request in flight either way.
                    _ = signal.changed(), if !closing => {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(signal);
        };
        if again {
            tokio::spawn(PollAgain::new(connection));
        } else {
            tokio::spawn(connection);
        }
    }
    drop(listener);
    // Tell every connection to close, then wait until they have.
    let _ = signal_tx.send(());
    drop(signal_rx);
    signal_tx.closed().await;
}

/// A future polled again at once, up to [`MAX_AGAIN`] times, when it wakes itself while
/// it is being polled; any other wake is passed on to the task's waker as it is.
pub struct PollAgain<F> {
    inner: Pin<Box<F>>,
    state: Arc<State>,
    waker: Waker,
}

struct State {
    /// The inner future is being polled (wakes are recorded in `woken`, not passed on).
    polling: AtomicBool,
    /// It woke itself during the poll.
    woken: AtomicBool,
    /// The task's waker, from the last poll.
    task: AtomicWaker,
}

impl<F: Future> PollAgain<F> {
    pub fn new(inner: F) -> PollAgain<F> {
        let state = Arc::new(State {
            polling: AtomicBool::new(false),
            woken: AtomicBool::new(false),
            task: AtomicWaker::new(),
        });
        PollAgain {
            inner: Box::pin(inner),
            waker: Waker::from(state.clone()),
            state,
        }
    }
}

impl Wake for State {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(SeqCst) {
            self.woken.store(true, SeqCst);
            // If the poll ended meanwhile without seeing the flag, pass the wake on;
            // if a new poll started, that poll sees the flag.
            if self.polling.load(SeqCst) || !self.woken.swap(false, SeqCst) {
                return;
            }
        }
        self.task.wake();
    }
}

impl<F: Future> Future for PollAgain<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.state.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(&this.waker);
        for _ in 0..=MAX_AGAIN {
            this.state.polling.store(true, SeqCst);
            let r = this.inner.as_mut().poll(&mut inner_cx);
            this.state.polling.store(false, SeqCst);
            if r.is_ready() {
                return r;
            }
            if !this.state.woken.swap(false, SeqCst) {
                return Poll::Pending;
            }
            // A task out of its cooperative budget gets nothing more from tokio's
            // resources in this poll: let the runtime reschedule it.
            if !tokio::task::coop::has_budget_remaining() {
                break;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wakes it receives.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    fn counting() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_self_wake_is_polled_again_without_waking_the_task() {
        // Wakes itself on its first two polls, ready on the third.
        let mut polls = 0;
        let mut f = PollAgain::new(std::future::poll_fn(move |cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        }));
        let (count, waker) = counting();
        let r = Pin::new(&mut f).poll(&mut Context::from_waker(&waker));
        assert_eq!(r, Poll::Ready(3));
        assert_eq!(count.0.load(SeqCst), 0);
    }

    #[test]
    fn a_future_that_keeps_waking_itself_is_handed_back_to_the_runtime() {
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let mut f = PollAgain::new(std::future::poll_fn(move |cx| {
            p.fetch_add(1, SeqCst);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        let (count, waker) = counting();
        let r = Pin::new(&mut f).poll(&mut Context::from_waker(&waker));
        assert_eq!(r, Poll::Pending);
        assert_eq!(polls.load(SeqCst), MAX_AGAIN + 1);
        // The task is woken once, so the runtime polls it again later.
        assert_eq!(count.0.load(SeqCst), 1);
    }

    #[test]
    fn a_wake_after_the_poll_reaches_the_task() {
        let stash: Arc<std::sync::Mutex<Option<Waker>>> = Default::default();
        let s = stash.clone();
        let mut f = PollAgain::new(std::future::poll_fn(move |cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        let (count, waker) = counting();
        assert_eq!(
            Pin::new(&mut f).poll(&mut Context::from_waker(&waker)),
            Poll::Pending
        );
        assert_eq!(count.0.load(SeqCst), 0);
        let later = stash.lock().unwrap().take().unwrap();
        std::thread::spawn(move || later.wake()).join().unwrap();
        assert_eq!(count.0.load(SeqCst), 1);
    }
}
