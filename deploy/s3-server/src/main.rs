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

/// One async lock per object key that some request is mutating right now.
#[derive(Default)]
struct KeyLocks {
    held: Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    async fn lock(&self, bucket: &str, key: &str) -> KeyGuard<'_> {
        let id = (bucket.to_string(), key.to_string());
        let lock = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.entry(id.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyGuard { locks: self, id, lock, _guard: Some(guard) }
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
}

/// Calls that read, or that touch no single object, go straight to s3s-fs.
macro_rules! pass {
    ($($name:ident: $input:ty => $output:ty;)*) => {$(
        async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
            self.fs.$name(req).await
        }
    )*};
}

/// Calls that change one object: serialised per key.
macro_rules! locked {
    ($($name:ident: $input:ty => $output:ty;)*) => {$(
        async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
            let _key = self.locks.lock(&req.input.bucket, &req.input.key).await;
            self.fs.$name(req).await
        }
    )*};
}

#[async_trait::async_trait]
impl S3 for Atomic {
    pass! {
        create_bucket: CreateBucketInput => CreateBucketOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        get_object: GetObjectInput => GetObjectOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
        list_objects: ListObjectsInput => ListObjectsOutput;
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
        upload_part: UploadPartInput => UploadPartOutput;
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    }

    locked! {
        put_object: PutObjectInput => PutObjectOutput;
        copy_object: CopyObjectInput => CopyObjectOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput;
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let bucket = req.input.bucket.clone();
        let mut keys: Vec<String> = req.input.delete.objects.iter().map(|o| o.key.clone()).collect();
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
                port = v.parse().map_err(|_| format!("--port: not a port number: {v:?}"))?;
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
    Ok(Opts { host, port, auth, root })
}

#[tokio::main]
async fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vecshard-s3-server: {e}\nusage: vecshard-s3-server [--host H] [--port P] [--access-key A --secret-key S] ROOT");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(opts).await {
        eprintln!("vecshard-s3-server: {e}");
        std::process::exit(1);
    }
}

async fn serve(opts: Opts) -> Result<(), Box<dyn std::error::Error>> {
    let fs = FileSystem::new(&opts.root)?;
    let mut builder = S3ServiceBuilder::new(Atomic { fs, locks: KeyLocks::default() });
    if let Some((ak, sk)) = opts.auth {
        builder.set_auth(SimpleAuth::from_single(ak, sk));
    }
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    eprintln!("vecshard-s3-server: serving {} at http://{}", opts.root.display(), listener.local_addr()?);
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
        let conn = http.serve_connection(TokioIo::new(socket), service.clone());
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}
