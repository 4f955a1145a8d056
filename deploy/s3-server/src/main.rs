//! s3s-fs with atomic conditional writes: every mutation of one object key (put, multipart
//! completion, copy into it, delete) holds that key's lock for its whole duration, so the
//! `If-None-Match: *` / `If-Match` check and the write it guards happen as one step.
//!
//! Usage: `vecshard-s3-server [--host H] [--port P] [--access-key A --secret-key S] ROOT`

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;

/// Bodies longer than this are read again in 1 MiB reads (see `Atomic::get_object`).
const REREAD_ABOVE: u64 = 64 << 10;

/// (bucket, key) → the async lock of the requests mutating that object.
type Held = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// One async lock per object key that some request is mutating right now.
#[derive(Default)]
struct KeyLocks {
    held: Mutex<Held>,
}

impl KeyLocks {
    async fn lock(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let id = (bucket.to_string(), key.to_string());
        let lock = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.entry(id.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyGuard {
            locks: self,
            id,
            lock,
            _guard: Some(guard),
        }
    }
}

struct KeyGuard<'a> {
    locks: &'a KeyLocks,
    id: (String, String),
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self._guard = None;
        let mut held = self.locks.held.lock().unwrap_or_else(|e| e.into_inner());
        // The map's entry and ours: nobody else waits for this key, forget it.
        if Arc::strong_count(&self.lock) == 2 {
            held.remove(&self.id);
        }
    }
}

struct Atomic {
    fs: FileSystem,
    locks: KeyLocks,
    /// The buckets' directory, as s3s-fs resolved it.
    root: PathBuf,
}

impl Atomic {
    /// Where s3s-fs keeps `bucket`/`key`, for names made of plain components only (others
    /// are left to s3s-fs, which resolves them within the root).
    fn plain_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let plain = |s: &str| {
            !s.is_empty()
                && std::path::Path::new(s)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        (plain(bucket) && plain(key)).then(|| self.root.join(bucket).join(key))
    }
}

#[async_trait::async_trait]
impl S3 for Atomic {
    // Reads, and calls that touch no single object, go straight to s3s-fs.

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    /// s3s-fs's answer, a long body read again in 1 MiB reads: s3s-fs streams in 4 KiB
    /// reads through tokio's blocking pool, about 100 MB/s per request on a 2-core machine,
    /// which made every benchmark over this server measure the server.
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let Some(path) = self.plain_path(&req.input.bucket, &req.input.key) else {
            return self.fs.get_object(req).await;
        };
        let mut resp = self.fs.get_object(req).await?;
        let out = &mut resp.output;
        let len = out
            .content_length
            .and_then(|l| u64::try_from(l).ok())
            .unwrap_or(0);
        let start = out
            .content_range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes "))
            .and_then(|r| r.split_once('-'))
            .and_then(|(first, _)| first.parse::<u64>().ok())
            .unwrap_or(0);
        // A few 4 KiB reads cost less than opening the file again.
        if len <= REREAD_ABOVE {
            return Ok(resp);
        }
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            return Ok(resp);
        };
        // The file reopened must be the one s3s-fs described (a put replaces a file by a
        // rename): else its own body, which reads the file it opened.
        let same = match (file.metadata().await, &out.last_modified) {
            (Ok(m), Some(when)) => m
                .modified()
                .is_ok_and(|t| Timestamp::from(t) == *when && m.len() >= start + len),
            _ => false,
        };
        if !same || file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            return Ok(resp);
        }
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), 1 << 20);
        out.body = Some(StreamingBlob::wrap(body));
        Ok(resp)
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    // Calls that change one object: serialised per key.

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _key = self.locks.lock(&req.input.bucket, &req.input.key).await;
        self.fs.put_object(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let _key = self.locks.lock(&req.input.bucket, &req.input.key).await;
        self.fs.copy_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let _key = self.locks.lock(&req.input.bucket, &req.input.key).await;
        self.fs.delete_object(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _key = self.locks.lock(&req.input.bucket, &req.input.key).await;
        self.fs.complete_multipart_upload(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let mut keys: Vec<String> = req
            .input
            .delete
            .objects
            .iter()
            .map(|o| o.key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        // Sorted order: two batch deletes never wait for each other in a cycle.
        let mut guards = Vec::with_capacity(keys.len());
        for key in &keys {
            guards.push(self.locks.lock(&bucket, key).await);
        }
        self.fs.delete_objects(req).await
    }
}

struct Opts {
    host: String,
    port: u16,
    auth: Option<(String, String)>,
    root: PathBuf,
}

fn parse_args() -> Result<Opts, String> {
    let (mut host, mut port, mut ak, mut sk, mut root) =
        ("localhost".to_string(), 8014u16, None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--host" => host = value("--host")?,
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port: not a port number: {v:?}"))?;
            }
            "--access-key" => ak = Some(value("--access-key")?),
            "--secret-key" => sk = Some(value("--secret-key")?),
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            dir => root = Some(PathBuf::from(dir)),
        }
    }
    let auth = match (ak, sk) {
        (Some(a), Some(s)) => Some((a, s)),
        (None, None) => None,
        _ => return Err("--access-key and --secret-key go together".into()),
    };
    let root = root.ok_or("missing the root directory of the buckets")?;
    Ok(Opts {
        host,
        port,
        auth,
        root,
    })
}

#[tokio::main]
async fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "vecshard-s3-server: {e}\nusage: vecshard-s3-server [--host H] [--port P] [--access-key A --secret-key S] ROOT"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(opts).await {
        eprintln!("vecshard-s3-server: {e}");
        std::process::exit(1);
    }
}

async fn serve(opts: Opts) -> Result<(), Box<dyn std::error::Error>> {
    let fs = FileSystem::new(&opts.root).map_err(|e| format!("{}: {e:?}", opts.root.display()))?;
    let root = std::env::current_dir()?.join(&opts.root).canonicalize()?;
    let mut builder = S3ServiceBuilder::new(Atomic {
        fs,
        locks: KeyLocks::default(),
        root,
    });
    if let Some((ak, sk)) = opts.auth {
        builder.set_auth(SimpleAuth::from_single(ak, sk));
    }
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    eprintln!(
        "vecshard-s3-server: serving {} at http://{}",
        opts.root.display(),
        listener.local_addr()?
    );
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let socket = tokio::select! {
            res = listener.accept() => match res {
                Ok((socket, _)) => socket,
                Err(e) => { eprintln!("vecshard-s3-server: accept: {e}"); continue; }
            },
            _ = stop.as_mut() => break,
        };
        // Answers go out as headers then body: with Nagle's algorithm the body waits for
        // the client's delayed ACK of the headers (~40 ms per small ranged GET).
        if let Err(e) = socket.set_nodelay(true) {
            eprintln!("vecshard-s3-server: set TCP_NODELAY: {e}");
        }
        let conn = http.serve_connection(TokioIo::new(socket), service.clone());
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}
