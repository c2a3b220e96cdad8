//! A real S3-compatible server for tests: `s3s-fs` serving a temporary folder on 127.0.0.1, checking
//! SigV4 signatures against a random key pair, path-style. Faults are injected by a thin layer in
//! front of it (the server itself is never mocked): PutObject or DeleteObject can be made to answer
//! HTTP 500 like an unhealthy S3 would, or every connection dropped unanswered like a dead one.
//!
//! [`service`] and [`serve`] are the same server without the faults, for `heart-s3` (bench/).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use rand::distributions::{Alphanumeric, DistString};
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};

/// The S3 API over the folder `root` (one sub-folder per bucket), path-style, accepting only
/// requests signed (SigV4) with `access_key` / `secret_key`.
pub fn service(root: &Path, access_key: &str, secret_key: &str) -> Result<S3Service, String> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("s3s-fs: {e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(
        access_key.to_owned(),
        secret_key.to_owned(),
    ));
    Ok(builder.build())
}

/// Answers every connection `listener` accepts with `handle` (HTTP/1 and HTTP/2), until dropped.
/// An `Err` from `handle` closes that connection without an answer.
pub async fn serve<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<s3s::Body>, s3s::HttpError>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let service = hyper::service::service_fn(handle.clone());
        tokio::spawn(async move {
            let _ = ConnectionBuilder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Debug, Default)]
struct Faults {
    /// `Some(n)`: n more PutObject calls succeed, then they all fail.
    puts_before_failing: Option<usize>,
    fail_deletes: bool,
    /// Every request's connection is closed without an answer.
    down: bool,
}

/// What the fault layer does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Serve,
    Answer500,
    CloseConnection,
}

/// A running server with one bucket. Stops when dropped.
#[derive(Debug)]
pub struct TestS3 {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The one bucket, `heart-media`.
    pub bucket: String,
    /// The access key id requests must be signed with.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    root: tempfile::TempDir,
    faults: Arc<Mutex<Faults>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    PutObject,
    DeleteObject,
    Other,
}

/// The S3 operation a path-style request is, as far as faults care.
fn operation_of<B>(request: &Request<B>) -> Operation {
    let on_object = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty());
    let query = request.uri().query().unwrap_or_default();
    let multipart = query.contains("uploadId") || query.contains("partNumber");
    let copy = request.headers().contains_key("x-amz-copy-source");
    match *request.method() {
        Method::PUT if on_object && !multipart && !copy => Operation::PutObject,
        Method::DELETE if on_object && !multipart => Operation::DeleteObject,
        _ => Operation::Other,
    }
}

fn injected_failure() -> Response<s3s::Body> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Error><Code>InternalError</Code><Message>fault injected by the test</Message></Error>";
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body.to_owned()))
        .expect("fault response")
}

impl Faults {
    /// What to do with a request; counts the PutObject calls let through.
    fn verdict(&mut self, operation: Operation) -> Verdict {
        let fail = match operation {
            _ if self.down => return Verdict::CloseConnection,
            Operation::PutObject => match &mut self.puts_before_failing {
                Some(0) => true,
                Some(left) => {
                    *left -= 1;
                    false
                }
                None => false,
            },
            Operation::DeleteObject => self.fail_deletes,
            Operation::Other => false,
        };
        if fail {
            Verdict::Answer500
        } else {
            Verdict::Serve
        }
    }
}

impl TestS3 {
    /// Starts a server on a random port with its bucket created.
    pub async fn start() -> TestS3 {
        let root = tempfile::tempdir().expect("temp dir");
        let bucket = "heart-media".to_owned();
        std::fs::create_dir(root.path().join(&bucket)).expect("bucket folder");
        let access_key = Alphanumeric
            .sample_string(&mut rand::thread_rng(), 20)
            .to_ascii_uppercase();
        let secret_key = Alphanumeric.sample_string(&mut rand::thread_rng(), 40);

        let s3 = service(root.path(), &access_key, &secret_key).expect("s3s-fs");

        let faults = Arc::new(Mutex::new(Faults::default()));
        let handle = {
            let faults = faults.clone();
            move |request: Request<Incoming>| {
                let s3 = s3.clone();
                let verdict = lock(&faults).verdict(operation_of(&request));
                async move {
                    match verdict {
                        Verdict::Serve => s3.call(request.map(s3s::Body::from)).await,
                        Verdict::Answer500 => Ok(injected_failure()),
                        // An error from the service makes hyper close the connection unanswered.
                        Verdict::CloseConnection => Err(s3s::HttpError::new("S3 is down".into())),
                    }
                }
            }
        };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(serve(listener, handle));
        TestS3 {
            endpoint,
            bucket,
            access_key,
            secret_key,
            root,
            faults,
            server,
        }
    }

    /// After `n` more successful PutObject calls, every PutObject answers 500.
    pub fn fail_puts_after(&self, n: usize) {
        lock(&self.faults).puts_before_failing = Some(n);
    }

    /// While `on`, every DeleteObject answers 500.
    pub fn fail_deletes(&self, on: bool) {
        lock(&self.faults).fail_deletes = on;
    }

    /// Every request fails as if the server had died: the connection closes without an answer.
    pub fn stop(&self) {
        lock(&self.faults).down = true;
    }

    /// Answers again after [`TestS3::stop`] (other faults stay as they were).
    pub fn resume(&self) {
        lock(&self.faults).down = false;
    }

    /// No more faults of any kind.
    pub fn heal(&self) {
        *lock(&self.faults) = Faults::default();
    }

    /// The keys in the bucket, sorted, read from the server's folder.
    pub fn keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        collect_keys(&self.root.path().join(&self.bucket), "", &mut keys);
        keys.sort();
        keys
    }

    /// The stored bytes of `key`, read from the server's folder.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root.path().join(&self.bucket).join(key)).ok()
    }

    /// The `HEART_S3_*` variables that point the app at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("HEART_S3_BUCKET", self.bucket.as_str()),
            ("HEART_S3_ENDPOINT", self.endpoint.as_str()),
            ("HEART_S3_REGION", "us-east-1"),
            ("HEART_S3_FORCE_PATH_STYLE", "true"),
            ("HEART_S3_ACCESS_KEY_ID", self.access_key.as_str()),
            ("HEART_S3_SECRET_ACCESS_KEY", self.secret_key.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for TestS3 {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(faults: &Mutex<Faults>) -> MutexGuard<'_, Faults> {
    // A test that panicked while holding the lock must not hide the other tests' results.
    faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn collect_keys(dir: &Path, prefix: &str, keys: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_keys(&entry.path(), &key, keys),
            Ok(t) if t.is_file() => keys.push(key),
            _ => {}
        }
    }
}
