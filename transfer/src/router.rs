//! What import and export need of a router: upsert and scan pages, and a collection's spec.
//! Implemented for the generated gRPC client over a channel (unary calls in one write) with any interceptor
//! (`vecshard-client`'s adds an API key).

use std::future::Future;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use vecshard_proto::fast_unary::OneFrameChannel;
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_client::VecShardClient;

/// A router's client API, as far as moving points needs it.
pub trait Router: Clone + Send + Sync + 'static {
    /// Upsert a batch of points.
    fn upsert(
        &mut self,
        req: pb::UpsertRequest,
    ) -> impl Future<Output = Result<(), tonic::Status>> + Send;
    /// One page of a collection's scan.
    fn scan(
        &mut self,
        req: pb::ScanRequest,
    ) -> impl Future<Output = Result<pb::ScanResponse, tonic::Status>> + Send;
    /// A collection's spec.
    fn describe(
        &mut self,
        collection: &str,
    ) -> impl Future<Output = Result<pb::CollectionSpec, tonic::Status>> + Send;
}

impl<I> Router for VecShardClient<InterceptedService<OneFrameChannel, I>>
where
    I: Interceptor + Clone + Send + Sync + 'static,
{
    async fn upsert(&mut self, req: pb::UpsertRequest) -> Result<(), tonic::Status> {
        VecShardClient::upsert(self, req).await.map(|_| ())
    }

    async fn scan(&mut self, req: pb::ScanRequest) -> Result<pb::ScanResponse, tonic::Status> {
        VecShardClient::scan(self, req)
            .await
            .map(tonic::Response::into_inner)
    }

    async fn describe(&mut self, collection: &str) -> Result<pb::CollectionSpec, tonic::Status> {
        let req = pb::DescribeCollectionRequest {
            name: collection.to_string(),
        };
        let spec = VecShardClient::describe_collection(self, req)
            .await?
            .into_inner()
            .spec;
        spec.ok_or_else(|| tonic::Status::internal("the router described no spec"))
    }
}
