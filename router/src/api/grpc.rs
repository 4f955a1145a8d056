//! The public gRPC service `vecshard.v1.VecShard`: thin adapters onto [`Core`].

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Response, Status};
use vecshard_proto::fast_unary::{BoxFuture, Unary};
use vecshard_proto::v1 as pb;
use vecshard_proto::v1::vec_shard_server::VecShard;

use super::grpc_backups as backups;
use super::keys::{Grant, Role};
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

/// PERMISSION_DENIED unless the request's key (checked by the server's interceptor, which
/// put its [`Grant`] in the request) has role `need` for `collection`. A request without a
/// grant came from inside this process and may do anything.
fn allow<T>(r: &Request<T>, need: Role, collection: Option<&str>) -> Result<(), Status> {
    match r.extensions().get::<Grant>() {
        Some(g) => Ok(g.allow(need, collection)?),
        None => Ok(()),
    }
}

type Answer<T> = Result<Response<T>, Status>;

/// The public API's interceptor: the request's API key (`authorization: Bearer` or
/// `x-api-key`) is checked and its [`Grant`] put in the request for [`allow`].
#[derive(Clone)]
pub struct ApiKeys(pub Arc<Core>);

impl Interceptor for ApiKeys {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let m = req.metadata();
        let header = |n: &str| m.get(n).and_then(|v| v.to_str().ok());
        let grant = self
            .0
            .security
            .keys
            .authenticate(header("authorization"), header("x-api-key"))?;
        req.extensions_mut().insert(grant);
        Ok(req)
    }
}

/// `Search` served by [`FastUnaryLayer`](vecshard_proto::fast_unary::FastUnaryLayer):
/// the same handler as tonic's route, without tonic's per-call stack.
#[derive(Clone)]
pub struct FastSearch(Arc<PublicService>);

impl FastSearch {
    /// `Search` of `core`'s public service.
    pub fn new(core: Arc<Core>) -> Self {
        FastSearch(Arc::new(PublicService::new(core)))
    }
}

impl Unary for FastSearch {
    type Req = pb::SearchRequest;
    type Resp = pb::SearchResponse;
    const PATH: &'static str = "/vecshard.v1.VecShard/Search";

    fn limit(&self) -> (usize, &'static str) {
        (
            self.0.core.cfg.max_request_bytes,
            "router.max_request_bytes",
        )
    }

    fn call(&self, r: Request<pb::SearchRequest>) -> BoxFuture<Answer<pb::SearchResponse>> {
        let svc = self.0.clone();
        Box::pin(async move { svc.search(r).await })
    }
}

#[tonic::async_trait]
impl VecShard for PublicService {
    async fn create_collection(
        &self,
        r: Request<pb::CreateCollectionRequest>,
    ) -> Answer<pb::CreateCollectionResponse> {
        allow(&r, Role::Admin, Some(&r.get_ref().name))?;
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
        r: Request<pb::ListCollectionsRequest>,
    ) -> Answer<pb::ListCollectionsResponse> {
        allow(&r, Role::Read, None)?;
        Ok(Response::new(self.core.list_collections()))
    }

    async fn describe_collection(
        &self,
        r: Request<pb::DescribeCollectionRequest>,
    ) -> Answer<pb::DescribeCollectionResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().name))?;
        Ok(Response::new(
            self.core.describe_collection(&r.get_ref().name)?,
        ))
    }

    async fn drop_collection(
        &self,
        r: Request<pb::DropCollectionRequest>,
    ) -> Answer<pb::DropCollectionResponse> {
        allow(&r, Role::Admin, Some(&r.get_ref().name))?;
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
        allow(&r, Role::Write, Some(&r.get_ref().collection))?;
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        self.core
            .measured("upsert", self.core.upsert(r.into_inner(), d))
            .await?;
        Ok(Response::new(pb::UpsertResponse {}))
    }

    async fn delete(&self, r: Request<pb::DeleteRequest>) -> Answer<pb::DeleteResponse> {
        allow(&r, Role::Write, Some(&r.get_ref().collection))?;
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        self.core
            .measured("delete", self.core.delete(r.into_inner(), d))
            .await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn get(&self, r: Request<pb::GetRequest>) -> Answer<pb::GetResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().collection))?;
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        Ok(Response::new(
            self.core
                .measured("get", self.core.get(r.into_inner(), d))
                .await?,
        ))
    }

    async fn scan(&self, r: Request<pb::ScanRequest>) -> Answer<pb::ScanResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().collection))?;
        let d = deadline(self.core.cfg.write_timeout_ms, None, grpc_timeout(&r));
        Ok(Response::new(
            self.core
                .measured("scan", self.core.scan(r.into_inner(), d))
                .await?,
        ))
    }

    async fn search(&self, r: Request<pb::SearchRequest>) -> Answer<pb::SearchResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().collection))?;
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

    async fn search_batch(
        &self,
        r: Request<pb::SearchBatchRequest>,
    ) -> Answer<pb::SearchBatchResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().collection))?;
        let d = deadline(
            self.core.cfg.search_timeout_ms,
            r.get_ref().timeout_ms,
            grpc_timeout(&r),
        );
        Ok(Response::new(
            self.core
                .measured("search_batch", self.core.search_batch(r.into_inner(), d))
                .await?,
        ))
    }

    async fn count(&self, r: Request<pb::CountRequest>) -> Answer<pb::CountResponse> {
        allow(&r, Role::Read, Some(&r.get_ref().collection))?;
        let d = deadline(self.core.cfg.search_timeout_ms, None, grpc_timeout(&r));
        let count = self
            .core
            .measured("count", self.core.count(r.into_inner(), d))
            .await?;
        Ok(Response::new(pb::CountResponse { count }))
    }

    async fn cluster_status(
        &self,
        r: Request<pb::ClusterStatusRequest>,
    ) -> Answer<pb::ClusterStatusResponse> {
        allow(&r, Role::Read, None)?;
        Ok(Response::new(self.core.cluster_status()))
    }

    async fn create_backup(&self, r: Request<pb::CreateBackupRequest>) -> Answer<pb::BackupJob> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(
            backups::create(&self.core, r.into_inner()).await?,
        ))
    }

    async fn get_backup_job(&self, r: Request<pb::GetBackupJobRequest>) -> Answer<pb::BackupJob> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(backups::job(&self.core, r.get_ref())?))
    }

    async fn list_backups(
        &self,
        r: Request<pb::ListBackupsRequest>,
    ) -> Answer<pb::ListBackupsResponse> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(backups::list(&self.core, r.get_ref()).await?))
    }

    async fn describe_backup(
        &self,
        r: Request<pb::DescribeBackupRequest>,
    ) -> Answer<pb::DescribeBackupResponse> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(
            backups::describe(&self.core, r.get_ref()).await?,
        ))
    }

    async fn restore_backup(&self, r: Request<pb::RestoreBackupRequest>) -> Answer<pb::BackupJob> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(
            backups::restore(&self.core, r.into_inner()).await?,
        ))
    }

    async fn delete_backup(
        &self,
        r: Request<pb::DeleteBackupRequest>,
    ) -> Answer<pb::DeleteBackupResponse> {
        allow(&r, Role::Admin, None)?;
        Ok(Response::new(
            backups::delete(&self.core, r.get_ref()).await?,
        ))
    }
}
