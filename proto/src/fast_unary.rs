//! One unary RPC served without tonic's per-call stack (design note 016, tenth session).
//!
//! A unary gRPC call is one length-prefixed protobuf message each way and a status in the
//! trailers. tonic serves it through its route table (an axum router), the interceptor's
//! conversion into a `tonic::Request` and back, a streaming decoder and a streaming encoder;
//! for a search that is a measurable share of a server's CPU per query. [`FastUnaryLayer`]
//! answers one path itself, with the same interceptor and the same handler as the tonic
//! service: it builds the `tonic::Request<()>` from the HTTP headers and extensions (so TLS
//! peer certificates and metadata are there), runs the interceptor *before* reading the
//! body, reads the one message (bounded), calls the handler, and writes the answer as one
//! data frame and a `grpc-status: 0` trailer (an error: tonic's trailers-only answer). Every
//! other call, and a compressed one, goes on to tonic unchanged. Placed with
//! `Server::layer`, it sits inside tonic's own outer layers (the `grpc-timeout` deadline,
//! error recovery, connection info) and inside any layer added before it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{self, HeaderValue, header};
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;

/// gRPC's message prefix: a compressed flag and a big-endian length.
const PREFIX: usize = 5;

/// `VECSHARD_GRPC_FAST_SEARCH=0` in the environment leaves every call to tonic: the A/B
/// switch of the measurements in note 016.
pub const FAST_UNARY_ENV: &str = "VECSHARD_GRPC_FAST_SEARCH";

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The RPC a [`FastUnaryLayer`] serves: its path, its request bound and its handler (the
/// tonic service's own method, so both paths give the same answers).
pub trait Unary: Clone + Send + Sync + 'static {
    /// The request message.
    type Req: Message + Default + Send + 'static;
    /// The answer message.
    type Resp: Message + Send + 'static;
    /// The RPC's path, e.g. `/vecshard.v1.VecShard/Search`.
    const PATH: &'static str;
    /// The largest request message accepted, and the setting that sets it (named in the
    /// refusal).
    fn limit(&self) -> (usize, &'static str);
    /// Answer one call.
    fn call(
        &self,
        r: tonic::Request<Self::Req>,
    ) -> BoxFuture<Result<tonic::Response<Self::Resp>, Status>>;
}

/// Serves `U::PATH` itself after interceptor `I`; passes every other call on.
#[derive(Clone)]
pub struct FastUnaryLayer<I, U> {
    interceptor: I,
    unary: U,
    on: bool,
}

impl<I, U> FastUnaryLayer<I, U> {
    /// The layer (on unless [`FAST_UNARY_ENV`] is `0`).
    pub fn new(interceptor: I, unary: U) -> Self {
        let on = !std::env::var(FAST_UNARY_ENV).is_ok_and(|v| v.trim() == "0");
        FastUnaryLayer {
            interceptor,
            unary,
            on,
        }
    }
}

impl<S, I: Clone, U: Clone> tower::Layer<S> for FastUnaryLayer<I, U> {
    type Service = FastUnary<S, I, U>;

    fn layer(&self, inner: S) -> Self::Service {
        FastUnary {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of a [`FastUnaryLayer`].
#[derive(Clone)]
pub struct FastUnary<S, I, U> {
    layer: FastUnaryLayer<I, U>,
    inner: S,
}

impl<S, I, U> tonic::codegen::Service<http::Request<Body>> for FastUnary<S, I, U>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    I: Interceptor + Clone + Send + 'static,
    U: Unary,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if !self.layer.on || !is_plain_call(&req, U::PATH) {
            return Box::pin(self.inner.call(req));
        }
        let FastUnaryLayer {
            interceptor, unary, ..
        } = self.layer.clone();
        Box::pin(async move {
            Ok(serve(interceptor, unary, req)
                .await
                .unwrap_or_else(|s| s.into_http()))
        })
    }
}

/// A call to `path` this layer can answer: POST, not compressed (a compressed call goes
/// to tonic, which answers it as it answers every compressed call).
fn is_plain_call(req: &http::Request<Body>, path: &str) -> bool {
    req.uri().path() == path
        && req.method() == http::Method::POST
        && req
            .headers()
            .get("grpc-encoding")
            .is_none_or(|e| e == "identity")
}

async fn serve<I: Interceptor, U: Unary>(
    mut interceptor: I,
    unary: U,
    req: http::Request<Body>,
) -> Result<http::Response<Body>, Status> {
    let (parts, body) = req.into_parts();
    let admitted = interceptor.call(tonic::Request::from_parts(
        MetadataMap::from_headers(parts.headers),
        parts.extensions,
        (),
    ))?;
    let (limit, setting) = unary.limit();
    let body = Limited::new(body, limit.saturating_add(PREFIX))
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => too_large(None, limit, setting),
            Err(e) => Status::cancelled(format!("reading the request failed: {e}")),
        })?
        .to_bytes();
    let message = decode::<U::Req>(&body, limit, setting)?;
    let (metadata, extensions, ()) = admitted.into_parts();
    let answer = unary
        .call(tonic::Request::from_parts(metadata, extensions, message))
        .await?;
    Ok(encode(answer))
}

/// The one message of a unary call's body.
fn decode<M: Message + Default>(body: &[u8], limit: usize, setting: &str) -> Result<M, Status> {
    let bad = |what: String| Status::invalid_argument(format!("malformed gRPC request: {what}"));
    if body.len() < PREFIX {
        return Err(bad(format!(
            "{} bytes, shorter than a message's 5-byte prefix",
            body.len()
        )));
    }
    if body[0] != 0 {
        return Err(bad(
            "a compressed message without a grpc-encoding header".into()
        ));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if len > limit {
        return Err(too_large(Some(len), limit, setting));
    }
    let message = &body[PREFIX..];
    if message.len() != len {
        return Err(bad(format!(
            "the prefix announces {len} bytes, the body holds {} (a unary call sends one message)",
            message.len()
        )));
    }
    M::decode(message).map_err(|e| {
        let name = std::any::type_name::<M>().rsplit("::").next().unwrap_or("");
        bad(format!("not a {name}: {e}"))
    })
}

/// RESOURCE_EXHAUSTED, worded like tonic's refusal of a large message.
fn too_large(len: Option<usize>, limit: usize, setting: &str) -> Status {
    let found = len.map_or_else(|| "more".to_string(), |l| l.to_string());
    Status::resource_exhausted(format!(
        "decoded message length too large: found {found} bytes, the limit is: {limit} bytes ({setting})"
    ))
}

/// A successful unary answer: the message in one data frame, then `grpc-status: 0`.
fn encode<M: Message>(answer: tonic::Response<M>) -> http::Response<Body> {
    let (metadata, message, extensions) = answer.into_parts();
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    message
        .encode(&mut buf)
        .expect("the buffer was sized by encoded_len");
    let mut trailers = http::HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let body = Full::new(buf.freeze()).with_trailers(async move { Some(Ok(trailers)) });
    let mut r = http::Response::new(Body::new(body));
    *r.headers_mut() = metadata.into_headers();
    *r.extensions_mut() = extensions;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    r
}

/// Client side: sends a unary call's request as one HTTP/2 frame.
///
/// tonic's client encodes a unary request as a streaming body that ends only when polled
/// again, so hyper writes three frames in three `writev`s: the headers, the message, and an
/// empty data frame that ends the stream. Each reaches the server as its own TCP segment,
/// and two small segments in a row make the server's kernel acknowledge at once instead of
/// with the answer (a pure ACK per call: 5–9 µs of the server's CPU on loopback, design
/// note 016). [`OneFrame`] collects such a body (it is ready at once: the message is
/// already encoded) and sends it as one data frame that ends the stream, so the call leaves
/// in one write. Calls whose path `unary` rejects (client streams) pass through unchanged.
#[derive(Clone)]
pub struct OneFrame<S> {
    inner: S,
    unary: fn(&str) -> bool,
    on: bool,
}

/// `VECSHARD_GRPC_ONE_FRAME=0` in the environment leaves every call as tonic sends it (the
/// A/B switch of the measurements in note 016).
pub const ONE_FRAME_ENV: &str = "VECSHARD_GRPC_ONE_FRAME";

impl<S> OneFrame<S> {
    /// Wrap a channel; `unary(path)` says which calls send one message. On unless
    /// [`ONE_FRAME_ENV`] is `0`.
    pub fn new(inner: S, unary: fn(&str) -> bool) -> Self {
        let on = !std::env::var(ONE_FRAME_ENV).is_ok_and(|v| v.trim() == "0");
        OneFrame { inner, unary, on }
    }
}

impl<S> tonic::codegen::Service<http::Request<Body>> for OneFrame<S>
where
    S: tonic::codegen::Service<http::Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if !self.on || !(self.unary)(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        // The instance polled ready is the one that must take the call.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match body.collect().await {
                // A request body has no trailers.
                Ok(all) => Body::new(Full::new(all.to_bytes())),
                // Encoding failed (e.g. over max_encoding_message_size): tonic reports it
                // when the body fails, so the new body fails the same way.
                Err(status) => Body::new(Failed(Some(status))),
            };
            ready.call(http::Request::from_parts(parts, body)).await
        })
    }
}

/// The calls of vecshard's services that send one request message: all but the client
/// streams (`ReplicaInternal.InstallCheckpoint`). The `unary` argument of [`OneFrame`].
pub fn sends_one_message(path: &str) -> bool {
    path != "/vecshard.internal.v1.ReplicaInternal/InstallCheckpoint"
}

/// A channel whose unary calls leave in one write (see [`OneFrame`]).
pub type OneFrameChannel = OneFrame<tonic::transport::Channel>;

/// [`OneFrame`] over a channel, for vecshard's services.
pub fn one_frame(channel: tonic::transport::Channel) -> OneFrameChannel {
    OneFrame::new(channel, sends_one_message)
}

/// A body whose first poll fails with the status it holds.
struct Failed(Option<Status>);

impl http_body::Body for Failed {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1 as pb;
    use bytes::Bytes;

    /// A unary gRPC body holding `m`.
    fn frame(m: &impl Message) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u8(0);
        b.put_u32(m.encoded_len() as u32);
        m.encode(&mut b).unwrap();
        b.freeze()
    }

    #[test]
    fn a_body_decodes_and_bad_ones_are_named() {
        let r = pb::SearchRequest {
            collection: "c".into(),
            vector: vec![1.0, 2.0],
            k: 3,
            ..Default::default()
        };
        let body = frame(&r);
        let limit = 1 << 20;
        let decode = |b: &[u8], limit| decode::<pb::SearchRequest>(b, limit, "a.setting");
        assert_eq!(decode(&body, limit).unwrap(), r);

        let e = decode(&body[..3], limit).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("5-byte prefix"), "{}", e.message());

        let e = decode(&body[..body.len() - 1], limit).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("announces"), "{}", e.message());

        let mut compressed = body.to_vec();
        compressed[0] = 1;
        let e = decode(&compressed, limit).unwrap_err();
        assert!(e.message().contains("compressed"), "{}", e.message());

        let e = decode(&body, 4).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(
            e.message().contains("too large") && e.message().contains("(a.setting)"),
            "{}",
            e.message()
        );

        let mut garbage = body.to_vec();
        garbage[PREFIX] = 0xff;
        let e = decode(&garbage, limit).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("not a SearchRequest"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn an_answer_is_one_prefixed_message_then_the_status() {
        let a = pb::SearchResponse {
            hits: vec![pb::Hit {
                score: 0.5,
                payload: b"p".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut answer = tonic::Response::new(a.clone());
        answer
            .metadata_mut()
            .insert("x-answered-by", "test".parse().unwrap());
        let r = encode(answer);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(r.headers()["x-answered-by"], "test");
        let collected = futures_executor(r.into_body().collect()).unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), frame(&a));
    }

    /// Runs a future that never waits on I/O (a collected in-memory body).
    fn futures_executor<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("an in-memory body was not ready"),
        }
    }
}
