//! A gRPC request whose deadline (`grpc-timeout`) passes before it is answered gets
//! DEADLINE_EXCEEDED.
//!
//! tonic's server enforces the same header around every service, but it answers CANCELLED
//! ("Timeout expired"), which a client cannot tell from its own cancellation. This layer
//! sits inside tonic's and starts its clock first, so whenever tonic's timer has fired,
//! this one has too, and tonic polls it first.

use std::future::Future;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::codegen::http;
use vecshard_proto::fast_unary::BoxFuture;

/// The layer for the public gRPC server.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner }
    }
}

/// A gRPC service answering DEADLINE_EXCEEDED at the request's deadline.
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for DeadlineService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let limit = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(vecshard_model::deadline::parse_grpc_timeout);
        let started = Instant::now();
        let answer = self.inner.call(req);
        let Some(limit) = limit else {
            return Box::pin(answer);
        };
        let deadline = started + limit;
        Box::pin(async move {
            let mut answer = std::pin::pin!(answer);
            let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline.into()));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = answer.as_mut().poll(cx) {
                    return Poll::Ready(r);
                }
                // The clock, not only the timer: tonic's timer may wake this task first.
                if Instant::now() >= deadline || timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ok(expired(limit).into_http()));
                }
                Poll::Pending
            })
            .await
        })
    }
}

/// What a request whose deadline passed is told.
fn expired(limit: Duration) -> tonic::Status {
    tonic::Status::deadline_exceeded(format!(
        "deadline exceeded: the request's deadline (grpc-timeout {limit:?}) passed before the router answered"
    ))
}
