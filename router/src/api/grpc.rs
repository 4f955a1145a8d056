//! The public gRPC service `vecshard.v1.VecShard`: thin adapters onto [`Core`].

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_server::VecShard;

use super::{FORWARDED_HEADER, deadline};
use crate::core::Core;

/// The service.
pub struct PublicService {
    core: Arc<Core>,
}

impl PublicService {
    /// A service on `core`.
    pub fn new(core: Arc<Core>) -> Self {
        PublicService { core }
    }
}

fn grpc_timeout<T>(r: &Request<T>) -> Option<&str> {
    r.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
}

fn forwarded<T>(r: &Request<T>) -> bool {
    r.metadata().contains_key(FORWARDED_HEADER)
}

type Answer<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl VecShard for PublicService {
    async fn create_collection(
        &self,
        r: Request<pb::CreateCollectionRequest>,
    ) -> Answer<pb::CreateCollectionResponse> {
        let fwd = forwarded(&r);
        Ok(Response::new(
            self.core
                .measured(
                    "create_collection",
                    self.core.create_collection(r.into_inner(), fwd),
                )
                .await?,
        ))
    }

    async fn list_collections(
        &self,
        _: Request<pb::ListCollectionsRequest>,
    ) -> Answer<pb::ListCollectionsResponse> {
        Ok(Response::new(self.core.list_collections()))
    }

    async fn describe_collection(
        &self,
        r: Request<pb::DescribeCollectionRequest>,
    ) -> Answer<pb::DescribeCollectionResponse> {
        Ok(Response::new(
            self.core.describe_collection(&r.get_ref().name)?,
        ))
    }

    async fn drop_collection(
        &self,
        r: Request<pb::DropCollectionRequest>,
    ) -> Answer<pb::DropCollectionResponse> {
        let fwd = forwarded(&r);
        Ok(Response::new(
            self.core
                .measured(
                    "drop_collection",
                    self.core.drop_collection(r.into_inner().name, fwd),
                )
                .await?,
        ))
    }

    async fn upsert(&self, r: Request<pb::UpsertRequest>) -> Answer<pb::UpsertResponse> {
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        self.core
            .measured("upsert", self.core.upsert(r.into_inner(), d))
            .await?;
        Ok(Response::new(pb::UpsertResponse {}))
    }

    async fn delete(&self, r: Request<pb::DeleteRequest>) -> Answer<pb::DeleteResponse> {
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        self.core
            .measured("delete", self.core.delete(r.into_inner(), d))
            .await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn get(&self, r: Request<pb::GetRequest>) -> Answer<pb::GetResponse> {
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        Ok(Response::new(
            self.core
                .measured("get", self.core.get(r.into_inner(), d))
                .await?,
        ))
    }

    async fn scan(&self, r: Request<pb::ScanRequest>) -> Answer<pb::ScanResponse> {
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        Ok(Response::new(
            self.core
                .measured("scan", self.core.scan(r.into_inner(), d))
                .await?,
        ))
    }

    async fn search(&self, r: Request<pb::SearchRequest>) -> Answer<pb::SearchResponse> {
        let d = deadline(
            self.core.cfg.search_timeout_ms,
            r.get_ref().timeout_ms,
            grpc_timeout(&r),
        );
        Ok(Response::new(
            self.core
                .measured("search", self.core.search(r.into_inner(), d))
                .await?,
        ))
    }

    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Answer<pb::ClusterStatusResponse> {
        Ok(Response::new(self.core.cluster_status()))
    }
}
