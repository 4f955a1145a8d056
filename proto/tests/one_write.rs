//! A unary call through vecshard's client stack (`coalesce` + `fast_unary::OneFrame`) leaves
//! in one write: its HEADERS and its DATA frame, which ends the stream. Through tonic's
//! channel as it is, the same call takes several writes (the reason for both).
//!
//! A real tonic server (the gRPC health service) on one end of an in-memory pipe, a real
//! tonic channel on the other; every write the client's HTTP/2 connection makes is
//! recorded and parsed into frames.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tonic::transport::{Channel, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vecshard_proto::coalesce::Coalesce;
use vecshard_proto::fast_unary::{OneFrame, sends_one_message};

type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

/// The client's end of the pipe, recording each write.
struct Recorded {
    io: DuplexStream,
    writes: Writes,
}

impl AsyncRead for Recorded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, b))?;
        self.writes.lock().unwrap().push(b[..n].to_vec());
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

const HEADERS: u8 = 1;
const DATA: u8 = 0;
const END_STREAM: u8 = 1;

/// The frames in one write: (type, flags, stream id). The client preface is skipped.
fn frames(mut b: &[u8]) -> Vec<(u8, u8, u32)> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if b.starts_with(PREFACE) {
        b = &b[PREFACE.len()..];
    }
    let mut out = Vec::new();
    while b.len() >= 9 {
        let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
        let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff;
        out.push((b[3], b[4], stream));
        b = &b[(9 + len).min(b.len())..];
    }
    assert!(b.is_empty(), "a write ends inside a frame header");
    out
}

/// A channel to a health server over an in-memory pipe, and the client's recorded writes.
async fn channel(coalesce: bool) -> (Channel, Writes) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let (_, health) = tonic_health::server::health_reporter();
    tokio::spawn(Server::builder().add_service(health).serve_with_incoming(
        tonic::codegen::tokio_stream::once(Ok::<_, io::Error>(server_io)),
    ));
    let writes = Writes::default();
    let pipe = Arc::new(Mutex::new(Some(Recorded {
        io: client_io,
        writes: writes.clone(),
    })));
    let connector = tower::service_fn(move |_| {
        let io = pipe.lock().unwrap().take();
        async move {
            let io = io.ok_or_else(|| io::Error::other("one connection only"))?;
            let io: Pin<Box<dyn AsyncReadWrite>> = if coalesce {
                Box::pin(Coalesce::new(io))
            } else {
                Box::pin(io)
            };
            Ok::<_, io::Error>(TokioIo::new(io))
        }
    });
    let ch = Endpoint::from_static("http://in-memory")
        .connect_with_connector(connector)
        .await
        .unwrap();
    (ch, writes)
}

trait AsyncReadWrite: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> AsyncReadWrite for T {}

/// A health check whose request is larger than h2 copies into its write buffer (it sends
/// such a body as a chunk of its own), as a search's vector is.
fn request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: "s".repeat(600),
    }
}

/// The writes of one call on a warm connection, as frames, after two calls that settle
/// the connection (preface, settings, acknowledgements).
async fn one_call<S>(mut client: HealthClient<S>, writes: &Writes) -> Vec<Vec<(u8, u8, u32)>>
where
    S: tonic::client::GrpcService<tonic::body::Body>,
    S::Error: Into<tonic::codegen::StdError>,
    S::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <S::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    for _ in 0..2 {
        let e = client.check(request()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
    }
    writes.lock().unwrap().clear();
    let e = client.check(request()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "the call is answered: {e}");
    let writes = writes.lock().unwrap();
    writes.iter().map(|w| frames(w)).collect()
}

/// The stream of the call: the one its HEADERS frame opened.
fn call_stream(calls: &[Vec<(u8, u8, u32)>]) -> u32 {
    calls
        .iter()
        .flatten()
        .find(|f| f.0 == HEADERS)
        .expect("the call's HEADERS frame")
        .2
}

#[tokio::test]
async fn a_unary_call_leaves_in_one_write() {
    let (ch, writes) = channel(true).await;
    let calls = one_call(
        HealthClient::new(OneFrame::new(ch, sends_one_message)),
        &writes,
    )
    .await;
    let stream = call_stream(&calls);
    let with_stream: Vec<_> = calls
        .iter()
        .filter(|w| w.iter().any(|f| f.2 == stream))
        .collect();
    assert_eq!(
        with_stream,
        vec![&vec![(HEADERS, 0x4, stream), (DATA, END_STREAM, stream)]],
        "one write with the headers and the data that ends the stream (all writes: {calls:?})"
    );
}

#[tokio::test]
async fn tonic_alone_writes_a_call_in_several_writes() {
    let (ch, writes) = channel(false).await;
    let calls = one_call(HealthClient::new(ch), &writes).await;
    let stream = call_stream(&calls);
    let n = calls
        .iter()
        .filter(|w| w.iter().any(|f| f.2 == stream))
        .count();
    assert!(
        n >= 2,
        "hyper now writes a call at once, so coalesce and OneFrame may be unneeded: {calls:?}"
    );
}
