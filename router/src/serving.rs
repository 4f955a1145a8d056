//! Serving threads (`router.serving_threads`): a listener's connections served on N
//! single-threaded runtimes instead of the process's multi-thread runtime.
//!
//! One acceptor task (on the caller's runtime) hands each accepted connection to the next
//! thread in turn. Every task of that connection — the HTTP/2 or HTTP/1 connection task,
//! one task per request, the search itself (run inline by the node) — then runs on that
//! one thread: a request is read, served and answered without waking another thread, and
//! the thread sleeps in its own `epoll_wait` between requests. On the multi-thread runtime
//! the same request can wake a second, idle worker (work stealing, the shared I/O driver),
//! which is most of the gap between one client's server CPU and the engine's
//! (`docs/design/016-served-path.md`). Connections, not requests, are spread: one
//! connection's requests stay on one thread, and its multi-shard searches run one shard
//! after another there (as they do on the multi-thread runtime).
//!
//! Everything else (Raft, the control loop, the internal listener) stays on the caller's
//! runtime. Clients towards remote nodes that a serving thread creates live on that
//! thread's runtime, which runs until the router stops.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Connections waiting for one serving thread (the acceptor waits when it is full).
const QUEUE: usize = 64;

/// A server's future, built on the caller's thread and run on a serving thread.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// N threads, each running a single-threaded runtime that serves the connections handed
/// to it. Dropping it stops the threads: their runtimes drop every connection, as
/// aborting a server task does on the multi-thread runtime.
pub struct ServingThreads {
    jobs: Vec<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for ServingThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServingThreads({})", self.jobs.len())
    }
}

impl ServingThreads {
    /// Start `n` threads (at least one) named `name-I`.
    pub fn start(n: usize, name: &str) -> std::io::Result<ServingThreads> {
        let mut jobs = Vec::new();
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            // A handful of servers (one per listener) per thread.
            let (tx, mut rx) = mpsc::channel::<Job>(8);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let mut servers = tokio::task::JoinSet::new();
                        while let Some(job) = rx.recv().await {
                            servers.spawn(job);
                        }
                    });
                })?;
            jobs.push(tx);
        }
        Ok(ServingThreads { jobs })
    }

    /// Serve `listener` on every thread: `server(connections)` is one thread's server over
    /// the connections handed to that thread (a tonic `serve_with_incoming_shutdown`, an
    /// `axum::serve`). Returns the acceptor task, running on the caller's runtime;
    /// aborting it stops handing out connections.
    pub fn serve<F, Fut>(&self, listener: TcpListener, server: F) -> JoinHandle<()>
    where
        F: Fn(Handed) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let local = listener.local_addr();
        let mut queues = Vec::with_capacity(self.jobs.len());
        for jobs in &self.jobs {
            let (tx, rx) = mpsc::channel(QUEUE);
            let handed = Handed {
                rx,
                local: local.as_ref().ok().copied(),
            };
            // The thread exits only when `self` is dropped, so this cannot fail while
            // `self` lives; a server that cannot start is the thread's loss, not a panic.
            let _ = jobs.try_send(Box::pin(server(handed)));
            queues.push(tx);
        }
        tokio::spawn(accept(listener, queues))
    }
}

/// Accept connections and hand them out in turn; a thread whose queue is full is waited
/// for (backpressure on accepting), a thread that stopped is skipped.
async fn accept(listener: TcpListener, mut queues: Vec<mpsc::Sender<std::net::TcpStream>>) {
    let mut next = 0;
    while !queues.is_empty() {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small answers must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        // Leaves this runtime's I/O driver; the serving thread registers it with its own.
        let Ok(std_tcp) = tcp.into_std() else {
            continue;
        };
        next %= queues.len();
        if queues[next].send(std_tcp).await.is_err() {
            queues.remove(next);
            continue;
        }
        next += 1;
    }
}

/// The connections handed to one serving thread: a stream of accepted TCP streams for
/// tonic's `serve_with_incoming*`, and an `axum::serve` listener.
#[derive(Debug)]
pub struct Handed {
    rx: mpsc::Receiver<std::net::TcpStream>,
    local: Option<std::net::SocketAddr>,
}

impl Stream for Handed {
    type Item = std::io::Result<TcpStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // `from_std` registers the stream with the runtime polling this stream: the
        // serving thread's.
        self.rx.poll_recv(cx).map(|c| c.map(TcpStream::from_std))
    }
}

impl axum::serve::Listener for Handed {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some(std_tcp) = self.rx.recv().await else {
                // The acceptor stopped (the router is stopping): accept nothing more.
                return std::future::pending().await;
            };
            let Ok(tcp) = TcpStream::from_std(std_tcp) else {
                continue;
            };
            match tcp.peer_addr() {
                Ok(addr) => return (tcp, addr),
                Err(_) => continue, // gone already
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.local
            .ok_or_else(|| std::io::Error::other("the listener had no local address"))
    }
}
