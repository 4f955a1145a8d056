//! Client connections that send a call's frames in one write (design note 016).
//!
//! hyper's HTTP/2 client writes a new call's HEADERS frame before its body can follow: the
//! stream is opened, and given send capacity, by the connection task, which flushes the
//! headers in the same turn; the body's DATA frame comes a turn later. Two small TCP
//! segments per call cost the server twice: it may wake for each, and two small pushed
//! segments in a row make its kernel acknowledge at once instead of with the answer (a pure
//! ACK: 5–9 µs of the server's CPU per call on loopback). gRPC's C core (grpcio) writes
//! a call as one segment; [`Coalesce`] makes ours do the same. It buffers what the
//! connection writes, and on the first flush of a turn yields once to the runtime, so the
//! tasks woken meanwhile (the body's pipe) can queue their frames; the next flush writes
//! everything in one `writev`. Writes of more than [`PASS_THROUGH`] bytes go straight to the
//! socket, after what is buffered. [`connect`] and [`connect_lazy`] open channels over it
//! (with `fast_unary::OneFrame` on top).
//! `VECSHARD_GRPC_COALESCE=0` turns it off (A/B).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::codegen::http::Uri;
use tonic::transport::Endpoint;

use crate::fast_unary::{OneFrameChannel, one_frame};

/// Writes up to this size are buffered until the flush; larger ones go through.
pub const PASS_THROUGH: usize = 64 << 10;

/// `VECSHARD_GRPC_COALESCE=0` in the environment: channels write as hyper does.
pub const COALESCE_ENV: &str = "VECSHARD_GRPC_COALESCE";

/// A connection that holds small writes until a flush, and defers each flush by one turn
/// of the runtime (see the module's note).
pub struct Coalesce<T> {
    io: T,
    buf: Vec<u8>,
    /// Written out of `buf` so far.
    sent: usize,
    /// This flush already yielded once.
    yielded: bool,
    on: bool,
}

impl<T> Coalesce<T> {
    /// Wrap a connection (on unless [`COALESCE_ENV`] is `0`).
    pub fn new(io: T) -> Self {
        let on = !std::env::var(COALESCE_ENV).is_ok_and(|v| v.trim() == "0");
        Coalesce {
            io,
            buf: Vec::new(),
            sent: 0,
            yielded: false,
            on,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Write out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(data)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let len: usize = data.iter().map(|s| s.len()).sum();
        if !me.on || me.buf.len() + len > PASS_THROUGH {
            ready!(me.poll_drain(cx))?;
            if !me.on || len > PASS_THROUGH {
                return Pin::new(&mut me.io).poll_write_vectored(cx, data);
            }
        }
        for s in data {
            me.buf.extend_from_slice(s);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.buf.is_empty() && !me.yielded {
            // Let the tasks woken during this turn queue their frames first.
            me.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(me.poll_drain(cx))?;
        me.yielded = false;
        Pin::new(&mut me.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain(cx))?;
        Pin::new(&mut me.io).poll_shutdown(cx)
    }
}

/// Opens a TCP connection (no Nagle) to a URI's authority, wrapped in [`Coalesce`].
async fn open(uri: Uri) -> io::Result<TokioIo<Coalesce<TcpStream>>> {
    let authority = uri
        .authority()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri} has no host")))?;
    let port = authority.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(Coalesce::new(stream)))
}

/// `endpoint.connect()` for vecshard's clients: over [`Coalesce`]d TCP connections (TLS,
/// when the endpoint has it, runs on top; so does its connect timeout), with unary calls
/// sent as one frame ([`one_frame`]): a call leaves in one write.
pub async fn connect(endpoint: &Endpoint) -> Result<OneFrameChannel, tonic::transport::Error> {
    let channel = endpoint
        .connect_with_connector(tower::service_fn(open))
        .await?;
    Ok(one_frame(channel))
}

/// [`connect`], connecting on first use (`endpoint.connect_lazy()`).
pub fn connect_lazy(endpoint: &Endpoint) -> OneFrameChannel {
    one_frame(endpoint.connect_with_connector_lazy(tower::service_fn(open)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Waker;

    /// A connection that records each write it is given.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().push(b.to_vec());
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn coalesce(r: &Recorder) -> Coalesce<Recorder> {
        Coalesce {
            io: r.clone(),
            buf: Vec::new(),
            sent: 0,
            yielded: false,
            on: true,
        }
    }

    #[test]
    fn small_writes_leave_together_one_turn_after_the_flush() {
        let r = Recorder::default();
        let mut c = coalesce(&r);
        let count = Arc::new(Count(0.into()));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut c = Pin::new(&mut c);
        assert!(matches!(
            c.as_mut().poll_write(&mut cx, b"head"),
            Poll::Ready(Ok(4))
        ));
        let parts = [IoSlice::new(b"-data"), IoSlice::new(b"-end")];
        assert!(matches!(
            c.as_mut().poll_write_vectored(&mut cx, &parts),
            Poll::Ready(Ok(9))
        ));
        assert!(
            r.0.lock().unwrap().is_empty(),
            "nothing is written before the flush"
        );

        // The first flush yields: woken at once, nothing written yet.
        assert!(c.as_mut().poll_flush(&mut cx).is_pending());
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(r.0.lock().unwrap().is_empty());
        // What is written meanwhile joins the same write.
        assert!(matches!(
            c.as_mut().poll_write(&mut cx, b"+more"),
            Poll::Ready(Ok(5))
        ));
        assert!(matches!(
            c.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(*r.0.lock().unwrap(), vec![b"head-data-end+more".to_vec()]);

        // An empty flush neither yields nor writes; the next one yields again.
        assert!(matches!(
            c.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert!(matches!(
            c.as_mut().poll_write(&mut cx, b"x"),
            Poll::Ready(Ok(1))
        ));
        assert!(c.as_mut().poll_flush(&mut cx).is_pending());
        assert!(matches!(
            c.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(r.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_large_write_goes_through_after_what_is_buffered() {
        let r = Recorder::default();
        let mut c = coalesce(&r);
        let mut cx = Context::from_waker(Waker::noop());
        let mut c = Pin::new(&mut c);
        assert!(matches!(
            c.as_mut().poll_write(&mut cx, b"small"),
            Poll::Ready(Ok(5))
        ));
        let big = vec![7u8; PASS_THROUGH + 1];
        assert!(
            matches!(c.as_mut().poll_write(&mut cx, &big), Poll::Ready(Ok(n)) if n == big.len())
        );
        assert_eq!(*r.0.lock().unwrap(), vec![b"small".to_vec(), big.clone()]);
        // Buffered writes that together pass the bound drain first, then buffer anew.
        let half = vec![1u8; PASS_THROUGH / 2 + 1];
        assert!(c.as_mut().poll_write(&mut cx, &half).is_ready());
        assert!(c.as_mut().poll_write(&mut cx, &half).is_ready());
        assert_eq!(r.0.lock().unwrap().len(), 3, "the first half drained");
        assert!(matches!(
            c.as_mut().poll_shutdown(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(r.0.lock().unwrap().len(), 4, "shutdown drains the rest");
        assert_eq!(r.0.lock().unwrap()[3], half);
    }
}
