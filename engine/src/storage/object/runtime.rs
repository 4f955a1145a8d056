//! The engine's own small tokio runtime for object-store and DynamoDB I/O.
//!
//! The engine is synchronous and may be called from a thread that already runs a tokio or
//! actix runtime, where `Runtime::block_on` would panic ("cannot start a runtime from within
//! a runtime"). So every future is spawned on this dedicated runtime and the caller waits
//! for its result without entering any runtime.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

use crate::error::{Error, ErrorKind, Result};

/// Worker threads of the I/O runtime. Object-store calls are network-bound; two workers
/// keep many requests in flight without competing with search threads for cores.
const WORKER_THREADS: usize = 2;
const THREAD_NAME: &str = "vecshard-object-io";

fn runtime() -> Result<&'static Runtime> {
    static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name(THREAD_NAME)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot start the object-store I/O runtime: {e}"),
            )
        })
}

/// Run `fut` on the I/O runtime and wait for its output on the calling thread.
///
/// Safe to call from any thread, including a tokio worker or an actix arbiter (it blocks
/// that thread while it waits, as every synchronous engine call does).
pub(crate) fn run<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if std::thread::current().name() == Some(THREAD_NAME) {
        // Waiting here could block the very workers the future needs.
        return Err(Error::new(
            ErrorKind::Io,
            "synchronous storage call from an object-store I/O thread (would deadlock)",
        ));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        // The receiver only goes away if the caller's thread is gone.
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| {
        Error::new(
            ErrorKind::Io,
            "object-store I/O task failed (panicked or the runtime shut down)",
        )
    })
}
