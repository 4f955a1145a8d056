//! A TCP proxy that adds first-byte latency: each time a client sends bytes (a request),
//! the first bytes the upstream sends back wait `delay` before they are passed on; the
//! rest of the answer flows at once. Put in front of an S3 endpoint (the processes'
//! `AWS_ENDPOINT_URL`), it makes every object request slow without touching the server,
//! and the delay can change while connections are open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy; it stops accepting when dropped (open connections end with their peers).
pub struct DelayProxy {
    addr: SocketAddr,
    counts: Arc<Counts>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    delay_ms: AtomicU64,
    /// Requests seen (client bytes after an answer, or the first on a connection).
    requests: AtomicU64,
    /// Answers passed on after waiting a non-zero delay.
    delayed: AtomicU64,
}

impl DelayProxy {
    /// Listen on a free loopback port and forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counts = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe(client, server, counts).await;
                    }
                });
            }
        });
        Ok(DelayProxy {
            addr,
            counts,
            accept,
        })
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first-byte latency of answers to requests sent from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.counts
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::Relaxed);
    }

    /// Requests the proxy has seen so far.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::Acquire)
    }

    /// Answers it has passed on after waiting a non-zero delay.
    pub fn delayed_answers(&self) -> u64 {
        self.counts.delayed.load(Ordering::Acquire)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pipe(client: TcpStream, server: TcpStream, counts: Arc<Counts>) {
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    // Set when the client sent bytes the upstream has not answered yet.
    let asked = Arc::new(AtomicBool::new(false));
    let asked_up = asked.clone();
    let counts_up = counts.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !asked_up.swap(true, Ordering::AcqRel) {
                        counts_up.requests.fetch_add(1, Ordering::AcqRel);
                    }
                    if server_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_tx.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let ms = counts.delay_ms.load(Ordering::Relaxed);
                    let wait = asked.swap(false, Ordering::AcqRel) && ms > 0;
                    if wait {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if wait {
                        counts.delayed.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
        }
        let _ = client_tx.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_pass_through_and_wait_the_delay_first() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = DelayProxy::start(upstream).await.unwrap();
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut got = [0u8; 5];
        c.write_all(b"hello").await.unwrap();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        proxy.set_delay(Duration::from_millis(300));
        let asked = tokio::time::Instant::now();
        c.write_all(b"again").await.unwrap();
        c.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"again");
        assert!(asked.elapsed() >= Duration::from_millis(300));
        assert_eq!((proxy.requests(), proxy.delayed_answers()), (2, 1));
    }
}
