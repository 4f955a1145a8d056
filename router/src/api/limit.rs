//! The cap on concurrent client requests of one router (`router.max_concurrent_requests`),
//! shared by the gRPC and REST listeners. Beyond it a request is refused at once —
//! RESOURCE_EXHAUSTED on gRPC, 429 with `retry-after` on REST — instead of queueing
//! behind the others and growing memory and latency without bound.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;
use vecshard_proto::fast_unary::BoxFuture;

/// What a refused request is told.
pub const BUSY: &str = "the router is at its limit of concurrent requests (router.max_concurrent_requests); retry shortly";

/// Seconds a refused REST client is asked to wait (`retry-after`).
pub const RETRY_AFTER_S: u32 = 1;

/// The shared cap (0: none).
#[derive(Clone, Debug)]
pub struct Limit(Option<Arc<Semaphore>>);

impl Limit {
    /// At most `max` requests at once; 0: unlimited.
    pub fn new(max: usize) -> Self {
        Limit((max > 0).then(|| Arc::new(Semaphore::new(max))))
    }

    /// A place for one request, held until dropped; `None` when the router is full.
    pub fn try_enter(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.0 {
            None => Some(None),
            Some(s) => s.clone().try_acquire_owned().ok().map(Some),
        }
    }
}

/// The cap as a tower layer for the gRPC server.
#[derive(Clone, Debug)]
pub struct LimitLayer(pub Limit);

impl<S> tower::Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            limit: self.0.clone(),
            inner,
        }
    }
}

/// The gRPC service behind the cap.
#[derive(Clone, Debug)]
pub struct LimitService<S> {
    limit: Limit,
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for LimitService<S>
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
        match self.limit.try_enter() {
            None => {
                let busy = tonic::Status::resource_exhausted(BUSY).into_http();
                Box::pin(async move { Ok(busy) })
            }
            Some(permit) => {
                let answer = self.inner.call(req);
                Box::pin(async move {
                    let r = answer.await;
                    drop(permit);
                    r
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_admits_up_to_its_size() {
        let l = Limit::new(2);
        let a = l.try_enter().unwrap();
        let _b = l.try_enter().unwrap();
        assert!(l.try_enter().is_none());
        drop(a);
        assert!(l.try_enter().is_some());
        let unlimited = Limit::new(0);
        let held: Vec<_> = (0..100).map(|_| unlimited.try_enter().unwrap()).collect();
        assert_eq!(held.len(), 100);
    }
}
